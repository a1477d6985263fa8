"""``mlops check``: beyond the schema, every problem a spec would only show at run time,
printed with its file and field, and a non-zero exit."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml

from mlops_lifecycle import cli
from mlops_lifecycle.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "dags" / "specs" / "late_delivery.yaml"


def _spec(folder: Path, file_name: str, name: str | None = None, **changes) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["name"] = name or Path(file_name).stem
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = folder / file_name
    path.write_text(yaml.safe_dump(data))
    return path


def _blocks(output: str) -> dict[str, str]:
    """The INVALID message of each file, keyed by file name."""
    found = {}
    for block in output.split("INVALID ")[1:]:
        match = re.search(r"(?:invalid model spec|model spec) (\S+?):?\n", block)
        found[Path(match.group(1)).name] = block
    return found


def test_check_prints_every_problem_with_its_file_and_field(tmp_path, capsys):
    _spec(tmp_path, "ok_model.yaml")
    _spec(tmp_path, "shares_a.yaml", registered_model_name="shared")
    _spec(tmp_path, "shares_b.yaml", registered_model_name="shared")
    _spec(tmp_path, "twice.yaml")
    _spec(tmp_path, "twice.yml")
    _spec(tmp_path, "sources.yaml", source={"kind": "python", "callable": "nope.mod:load"},
          labels={"source": {"kind": "python", "callable": "mlops_lifecycle.features:no_such_function"}})
    _spec(tmp_path, "xgb.yaml", training__xgboost={"max_dept": 5, "learnig_rate": 0.1, "objective": "binary:logistic",
                                                   "n_estimators": 50, "eta": 0.1, "lambda": 1.0})
    _spec(tmp_path, "drift_name.yaml", drift__method="kss")
    _spec(tmp_path, "drift_type.yaml", drift__method="ks")  # late_delivery has category features
    _spec(tmp_path, "stem.yaml", name="not_the_stem")
    _spec(tmp_path, "feats.yaml", features_function="nope.mod:fn")

    code = cli.main(["check", "--specs", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^ok +ok_model ", out, re.M)
    blocks = _blocks(out)
    expected = {
        "shares_a.yaml": [("registered_model_name", "'shared' is also defined by shares_b.yaml")],
        "shares_b.yaml": [("registered_model_name", "'shared' is also defined by shares_a.yaml")],
        "twice.yaml": [("name", "model 'twice' is also defined by twice.yml")],
        "twice.yml": [("name", "model 'twice' is also defined by twice.yaml")],
        "sources.yaml": [("source.callable", "cannot import module 'nope.mod'"),
                         ("labels.source.callable", "has no function 'no_such_function'")],
        "xgb.yaml": [("training.xgboost.max_dept", "did you mean 'max_depth'?"),
                     ("training.xgboost.learnig_rate", "did you mean 'learning_rate'?"),
                     ("training.xgboost.objective", "set by the trainer from target.task")],
        "drift_name.yaml": [("drift.method", "'kss' is not one of Evidently's stat tests: ")],
        "drift_type.yaml": [("drift.method", "'ks' tests numerical columns only, and ['delivery_region'")],
        "stem.yaml": [("name", "'not_the_stem' must match the file name 'stem'")],
        "feats.yaml": [("features_function", "cannot import module 'nope.mod'")],
    }
    assert set(blocks) == set(expected), out
    for file_name, problems in expected.items():
        assert str(tmp_path / file_name) in blocks[file_name]
        for field, needle in problems:
            line = next((x for x in blocks[file_name].splitlines() if x.startswith(f"  - {field}: ")), "")
            assert needle in line, blocks[file_name]
    assert "n_estimators" not in blocks["xgb.yaml"] and "eta" not in blocks["xgb.yaml"]


def _checked(tmp_path: Path, **changes):
    return load_spec(_spec(tmp_path, "late_delivery.yaml", **changes))


def test_every_parameter_of_the_sklearn_wrapper_and_the_booster_docs_passes(tmp_path):
    import xgboost as xgb

    params = set(xgb.XGBClassifier().get_params()) | cli.XGBOOST_BOOSTER_PARAMS
    params -= set(cli.XGBOOST_SET_BY_TRAINER)
    spec = _checked(tmp_path, training__xgboost={p: 1 for p in sorted(params)})
    assert cli._xgboost_problems(spec) == []
    regression = _checked(tmp_path, target__task="regression", promotion__metric="rmse", promotion__floor=None,
                          training__xgboost={"reg_lambda": 2.0, "tweedie_variance_power": 1.5, "max_bin": 64})
    assert cli._xgboost_problems(regression) == []


def _unused_by_xgboost(params: dict, dmatrix) -> set[str]:
    """The parameters XGBoost's own validation reports as not used, training with ``params``."""
    import xgboost as xgb

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xgb.train({"validate_parameters": True, **params}, dmatrix, num_boost_round=2)
    text = " ".join(str(w.message) for w in caught)
    found = re.search(r"Parameters: \{(.*?)\} are not used", text, re.S)
    return set(re.findall(r'"(\w+)"', found.group(1))) if found else set()


def test_the_documented_booster_parameters_are_parameters_xgboost_uses():
    """Guards the hand-kept list against a typo of its own: XGBoost itself must use each name
    (with the booster or objective it belongs to)."""
    import numpy as np
    import xgboost as xgb

    rows = np.random.default_rng(0).random((40, 3))
    labels = (rows[:, 0] > 0.5).astype(float)
    plain = xgb.DMatrix(rows, labels)
    ranked = xgb.DMatrix(rows, labels, qid=np.repeat(np.arange(4), 10))
    survival = xgb.DMatrix(rows)
    survival.set_float_info("label_lower_bound", labels + 1)
    survival.set_float_info("label_upper_bound", labels + 2)
    groups = [
        ({"objective": "binary:logistic", "tree_method": "hist", "nthread": 1, "disable_default_eval_metric": 1,
          "num_feature": 3, "use_rmm": False, "eta": 0.3, "min_split_loss": 0, "lambda": 1, "alpha": 0,
          "updater": "grow_quantile_histmaker", "refresh_leaf": 1, "process_type": "default",
          "max_cached_hist_node": 512, "seed_per_iteration": False}, plain),
        ({"booster": "dart", "sample_type": "uniform", "normalize_type": "tree", "rate_drop": 0.1, "one_drop": 0,
          "skip_drop": 0.1}, plain),
        ({"booster": "gblinear", "updater": "coord_descent", "feature_selector": "greedy", "top_k": 2}, plain),
        ({"objective": "multi:softprob", "num_class": 2}, plain),
        ({"objective": "reg:tweedie", "tweedie_variance_power": 1.5}, plain),
        ({"objective": "reg:pseudohubererror", "huber_slope": 1.0}, plain),
        ({"objective": "reg:quantileerror", "quantile_alpha": 0.5}, plain),
        ({"objective": "survival:aft", "aft_loss_distribution": "normal", "aft_loss_distribution_scale": 1.0},
         survival),
        ({"objective": "rank:ndcg", "lambdarank_pair_method": "topk", "lambdarank_num_pair_per_sample": 2,
          "lambdarank_normalization": True, "lambdarank_score_normalization": True, "lambdarank_unbiased": False,
          "lambdarank_bias_norm": 2.0, "ndcg_exp_gain": True}, ranked),
    ]
    # Used only with external memory on a GPU: XGBoost reports it unused in memory on a CPU.
    external_memory_only = {"extmem_single_page"}
    tried = set().union(*(params for params, _ in groups))
    assert cli.XGBOOST_BOOSTER_PARAMS - external_memory_only <= tried
    for params, dmatrix in groups:
        assert _unused_by_xgboost(params, dmatrix) == set(), params
    assert _unused_by_xgboost({"max_dept": 3}, plain) == {"max_dept"}  # the probe does see a misspelling


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({"drift__method": "psi"}, True),
        ({"drift__method": "jensenshannon"}, True),
        ({"drift__method": "wasserstein", "drift__columns": ["distance_km", "traffic_index"]}, True),
        ({"drift__method": "chisquare", "drift__columns": ["weather"], "drift__include_prediction": False}, True),
        ({"drift__method": "chisquare", "drift__columns": ["weather"]}, False),  # the prediction is a number
        ({"drift__method": "wasserstein"}, False),
        ({"drift__method": "Wasserstein"}, False),
    ],
)
def test_drift_methods_are_evidently_stat_tests_for_the_columns_they_test(tmp_path, changes, ok):
    problems = cli._drift_problems(_checked(tmp_path, **changes))
    assert (problems == []) == ok, problems


def test_check_warns_of_thresholds_the_lakes_days_cannot_meet(tmp_path, data_dir, capsys):
    """24 validated rows a day: the defaults can never retrain on drift nor measure concept drift."""
    import datetime as dt

    import pandas as pd

    from mlops_lifecycle import lake

    _spec(tmp_path, "hourly.yaml", drift__max_metric_drop=0.1)
    assert cli.main(["check", "--specs", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().out  # no validated days yet: nothing to judge by

    for i in range(10):
        lake.write_parquet(lake.data_file("hourly", "validated", dt.date(2026, 1, 1) + dt.timedelta(days=i)),
                           pd.DataFrame({"x": range(24)}))
    assert cli.main(["check", "--specs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    warned = dict(re.findall(r"^warning hourly (\S+): (.*)$", out, re.M))
    assert set(warned) == {"retraining.min_rows", "drift.min_labelled_rows", "training.holdout_days",
                           "training.min_rows"}, out
    assert "2000 can never be met" in warned["retraining.min_rows"] and "median of 24 rows" in warned["retraining.min_rows"]
    assert "concept drift is never measured" in warned["drift.min_labelled_rows"]

    _spec(tmp_path, "hourly.yaml", drift__max_metric_drop=0.1, drift__min_labelled_rows=19,
          training__holdout_days=13, training__validation_days=13, training__window_days=110, training__min_rows=748,
          retraining__drift_days_required=7, retraining__min_rows=134)
    assert cli.main(["check", "--specs", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().out


def test_write_suites_writes_missing_suites_and_says_when_nothing_changed(tmp_path, data_dir, capsys):
    _spec(tmp_path, "model_a.yaml")
    suite = tmp_path / "model_a.suite.json"

    assert cli.main(["check", "--specs", str(tmp_path), "--write-suites"]) == 0
    assert "; wrote model_a.suite.json" in capsys.readouterr().out and suite.exists()
    written = suite.stat().st_mtime_ns
    assert cli.main(["check", "--specs", str(tmp_path), "--write-suites"]) == 0
    out = capsys.readouterr().out
    assert "model_a.suite.json unchanged" in out and "rewrote" not in out
    assert suite.stat().st_mtime_ns == written


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
@pytest.mark.parametrize(("flag", "expected"), [("WRITE_SUITES=1", True), ("WRITE_SUITES=", False), (None, False)])
def test_make_check_renews_suites_with_write_suites_1(flag, expected):
    args = ["make", "-s", "-n", "-C", str(ROOT), "check", *([flag] if flag else [])]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if "mlops check" in x)
    assert line.rstrip().endswith("--write-suites") is expected, line


# ---- hostile spec files: refused before parsing, with the file named, never a traceback ---------


def _nested(levels: int) -> str:
    return "name: deep\nowner: x\nextra: " + "[" * levels + "]" * levels + "\n"


def _laughs() -> str:
    """Nine levels of ten aliases: 10^9 values once expanded, 90 lines on disk."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 10)]
    return "name: laughs\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(("file_name", "content", "needle"), [
    ("latin1.yaml", "name: latin1\ndescription: 'caf\xe9'\n".encode("latin-1"), "is not UTF-8 text: byte 0xe9 at offset"),
    ("utf16.yaml", "name: utf16\n".encode("utf-16-le"), "is not UTF-8 text"),
    ("deep.yaml", _nested(5000).encode(), "nests deeper than"),
    ("deep_block.yaml", ("name: deep_block\nx:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60))).encode(),
     "nests deeper than 20 levels (line 22)"),
    ("laughs.yaml", _laughs().encode(), "values (aliases expanded)"),
    ("big.yaml", b"name: big\ntags: [" + b"x, " * 200_000 + b"]\n", "is larger than"),
])
def test_check_reports_hostile_spec_files_as_problems_naming_the_file(tmp_path, capsys, file_name, content, needle):
    """Non-UTF-8, 5,000 levels deep, an alias bomb, a huge file: each an INVALID line naming the
    file and what is wrong, the other specs checked as usual, exit 1, no traceback."""
    _spec(tmp_path, "ok_model.yaml")
    (tmp_path / file_name).write_bytes(content)

    code = cli.main(["check", "--specs", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^ok +ok_model ", out, re.M), out
    invalid = [line for line in out.splitlines() if line.startswith("INVALID")]
    assert len(invalid) == 1 and str(tmp_path / file_name) in invalid[0] and needle in invalid[0], out


@pytest.mark.parametrize("command", [
    ["run-days", "late_delivery", "--from-date", "../../x", "--to-date", "2026-03-02"],
    ["run-days", "late_delivery", "--from-date", "2026-03-01", "--to-date", "2026-02-30"],
    ["ingest-history", "late_delivery", "--from-date", "2026-03-01", "--to-date", "../../etc/passwd"],
    ["ingest-history", "late_delivery", "--from-date", "20260301", "--to-date", "2026-03-02"],
    ["example-data", "--start", "2026-03-01/../../x"],
    ["example-data", "--start", "2026-03-01", "--corrupt", "yesterday"],
])
def test_cli_dates_are_checked_before_use(command, capsys, tmp_path, monkeypatch):
    """A bad date is argparse's usage error naming the argument and the value (exit 2), before
    the command reads a spec or touches a store: no traceback."""
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(command)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "is not a day: write YYYY-MM-DD" in err and "Traceback" not in err, err
    assert not (tmp_path / "data").exists()
