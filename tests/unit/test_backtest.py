"""mlops backtest without a replay: arguments, the back-test's spec, its scratch stores, the report
file and the printed table. The replay itself runs in tests/e2e/test_backtest.py."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest
from backtest_report import REPORT

from mlops_lifecycle import backtest, cli, lake
from mlops_lifecycle.backtest import BacktestError, Options

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_specs import write_small_spec  # noqa: E402

D = dt.date


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "20260301", "2026-3-1", "", "yesterday"])
def test_a_day_that_is_not_yyyy_mm_dd_is_refused_naming_the_option(text):
    with pytest.raises(BacktestError, match=f"--from-date '{text}' is not a day"):
        backtest.parse_day(text, "--from-date")


def test_reversed_dates_are_refused(example_spec):
    with pytest.raises(BacktestError, match="--to-date 2026-03-01 is before --from-date 2026-03-10"):
        backtest.check_options(example_spec, D(2026, 3, 10), D(2026, 3, 1), Options())


@pytest.mark.parametrize("options, message", [
    (Options(refit_every_days=0), "--refit-every-days must be at least 1"),
    (Options(refit_window_days=2), "--refit-window-days 2 cannot hold a training split of late_delivery: it needs "
                                   "at least 3 days"),
    (Options(judge_days=0), "--judge-days must be at least 1"),
])
def test_baselines_that_cannot_be_built_are_refused(example_spec, options, message):
    with pytest.raises(BacktestError, match=message):
        backtest.check_options(example_spec, D(2026, 3, 1), D(2026, 3, 2), options)


def test_the_backtest_spec_reads_the_live_landing_files_and_sends_no_alert(example_spec, tmp_path):
    from mlops_lifecycle.spec import EmailChannel, NotificationsSpec

    live = example_spec.model_copy(update={"notifications": NotificationsSpec(email=EmailChannel(to=["a@b.c"]))})
    bt = backtest.backtest_spec(live, tmp_path / "live{x}")
    assert bt.source.path == f"{tmp_path}/live{{{{x}}}}/landing/late_delivery/{{ds}}.parquet"
    assert bt.notifications.events == [] and bt.notifications.email is None
    # The policy is the spec's own: nothing else differs.
    keep = {"source", "notifications"}
    assert bt.model_dump(exclude=keep) == live.model_dump(exclude=keep)


def test_the_backtest_spec_resolves_a_labels_source_too(tmp_path):
    from mlops_lifecycle.spec import load_spec

    path = write_small_spec(tmp_path / "specs", labels={"source": {"path": "{data_dir}/labels/{ds}.csv"},
                                                        "delay_days": 2})
    bt = backtest.backtest_spec(load_spec(path), tmp_path / "live")
    assert bt.labels.source.path == f"{tmp_path}/live/labels/{{ds}}.csv" and bt.labels.delay_days == 2


def test_dates_outside_the_data_are_refused_naming_the_day_and_the_file(example_spec, data_dir):
    from mlops_lifecycle.examples import late_delivery

    late_delivery.write_landing(str(data_dir / "landing" / "late_delivery" / "{ds}.parquet"),
                                [D(2026, 3, 1), D(2026, 3, 2)], rows=50)
    bt = backtest.backtest_spec(example_spec, data_dir)
    backtest.check_data_covers(bt, D(2026, 3, 1), D(2026, 3, 2))
    with pytest.raises(BacktestError, match=r"--to-date 2026-03-09 is outside the data of late_delivery: no batch at "
                                            rf"{data_dir}/landing/late_delivery/2026-03-09.parquet"):
        backtest.check_data_covers(bt, D(2026, 3, 1), D(2026, 3, 9))
    with pytest.raises(BacktestError, match="--from-date 2026-02-01 is outside the data"):
        backtest.check_data_covers(bt, D(2026, 2, 1), D(2026, 3, 2))


def test_the_work_folder_is_new_or_empty_and_never_a_live_store(data_dir, tmp_path):
    (data_dir / "lake" / "m").mkdir(parents=True)
    for bad, message in [(data_dir / "lake", "is inside the live store"),
                         (data_dir / "lake" / "m" / "scratch", "is inside the live store"),
                         (data_dir / "mlflow", "is inside the live store"),
                         (tmp_path, "contains the live data folder")]:
        with pytest.raises(BacktestError, match=message):
            backtest.work_folder(bad, "m")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(BacktestError, match="is not empty"):
        backtest.work_folder(busy, "m")
    assert (busy / "keep.txt").read_text() == "mine"
    assert backtest.work_folder(tmp_path / "new", "m") == (tmp_path / "new").resolve()
    scratch = backtest.work_folder(None, "m")
    assert scratch.is_dir() and not any(scratch.iterdir()) and not scratch.is_relative_to(data_dir)
    scratch.rmdir()


@pytest.mark.parametrize("live_uri", [None, "sqlite:////somewhere/live.db"])
def test_isolated_stores_switch_every_store_and_put_them_back(data_dir, tmp_path, monkeypatch, live_uri):
    import mlflow

    from mlops_lifecycle import config

    if live_uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", live_uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLOPS_MLFLOW_ARTIFACT_ROOT", raising=False)
    live = config.mlflow_tracking_uri()
    mlflow.set_tracking_uri(live)  # as registry.client() leaves it (MLflow also copies it into the environment)
    before_env = {k: os.environ.get(k) for k in backtest.STORE_VARIABLES}
    with backtest.isolated_stores(tmp_path / "scratch") as data:
        scratch_uri = f"sqlite:///{tmp_path / 'scratch' / 'data' / 'mlflow' / 'mlflow.db'}"
        assert data == tmp_path / "scratch" / "data" and config.data_dir() == data.resolve()
        assert lake.root() == data.resolve() / "lake"
        assert config.mlflow_tracking_uri() == scratch_uri
        assert mlflow.get_tracking_uri() == scratch_uri and mlflow.get_registry_uri() == scratch_uri
        assert config.mlflow_artifact_root() == (data / "mlflow" / "artifacts").as_uri()
    assert {k: os.environ.get(k) for k in backtest.STORE_VARIABLES} == before_env
    assert config.data_dir() == data_dir.resolve()
    assert mlflow.get_tracking_uri() == live and mlflow.get_registry_uri() == live


def test_isolated_stores_put_the_stores_back_after_an_error(data_dir, tmp_path):
    from mlops_lifecycle import config

    with pytest.raises(RuntimeError), backtest.isolated_stores(tmp_path / "scratch"):
        raise RuntimeError("boom")
    assert config.data_dir() == data_dir.resolve() and "MLFLOW_REGISTRY_URI" not in os.environ


@pytest.mark.parametrize("result, count", [
    (None, 0), ({}, 0), ({"warnings": None}, 0), ({"warnings": [{"check": "a"}, {"check": "b"}]}, 2),
    ({"warnings": 3}, 3), ({"warnings": {"a": 1}}, 1), ({"warnings": True}, 0), ({"warnings": "many"}, 0),
    ({"warnings": -1}, 0),
])
def test_validation_warnings_are_read_defensively(result, count):
    assert backtest._warnings(result) == count


def test_the_report_file_is_one_per_range_and_listed_newest_first(data_dir):
    path = lake.backtest_file("m", "2026-03-01", D(2026, 3, 31))
    assert path == data_dir.resolve() / "lake" / "m" / "backtests" / "2026-03-01_2026-03-31.json"
    lake.write_json(path, {})
    lake.write_json(lake.backtest_file("m", D(2026, 1, 1), D(2026, 4, 30)), {})
    (path.parent / "2026-13-01_2026-14-01.json").write_text("{}")
    (path.parent / "notes.json").write_text("{}")
    assert lake.backtests("m") == [(D(2026, 1, 1), D(2026, 4, 30)), (D(2026, 3, 1), D(2026, 3, 31))]
    assert lake.backtests("other") == []




def test_the_printed_table_has_a_line_per_month_the_total_and_each_judged_decision():
    lines = backtest.format_report(REPORT)
    assert lines[0].split()[:4] == ["month", "days", "scored", "quar"]
    march = next(line for line in lines if line.startswith("2026-03"))
    assert march.split() == ["2026-03", "31", "30", "1", "0", "2", "4", "1", "0", "1", "29000", "0.8100", "0.8100",
                             "0.8000", "+0.0000", "+0.0100"]
    assert any(line.startswith("total") for line in lines)
    assert "alerts by kind: drift 3, quarantine 1" in lines
    assert any("2026-03-12  v2 rejected against v1 (data_drift): challenger 0.7400 vs champion 0.7300 on 7000 rows, "
               "gain +0.0100: WRONG" in line for line in lines)
    assert "days not scored: 1, by status and first cause:" in lines
    assert "     1  quarantined weather in set  (2026-03-06)" in lines
    assert lines[-1] == "replayed 31 days in 62.0 s (2.0 s a day); 90.0 s in all"


def test_cli_refuses_an_unknown_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(tmp_path / "specs"))
    write_small_spec(tmp_path / "specs")
    code = cli.main(["backtest", "no_such_model", "--from-date", "2026-03-01", "--to-date", "2026-03-02"])
    assert code == 2 and "error: no model spec named 'no_such_model'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--from-date", "2026-03-10", "--to-date", "2026-03-01"], "error: --to-date 2026-03-01 is before --from-date 2026-03-10"),
    (["--from-date", "2026-03-32", "--to-date", "2026-04-01"], "error: --from-date '2026-03-32' is not a day"),
    (["--from-date", "2026-03-01", "--to-date", "2026-05-01"], "error: --to-date 2026-05-01 is outside the data"),
    (["--from-date", "2026-03-01", "--to-date", "2026-03-02", "--judge-days", "0"], "error: --judge-days must be"),
])
def test_cli_bad_arguments_end_with_one_clear_line_and_write_nothing(data_dir, tmp_path, monkeypatch, args, message):
    from mlops_lifecycle.examples import late_delivery

    monkeypatch.setenv("MLOPS_SPECS_DIR", str(tmp_path / "specs"))
    write_small_spec(tmp_path / "specs")
    late_delivery.write_landing(str(data_dir / "landing" / "late_delivery" / "{ds}.parquet"),
                                [D(2026, 3, 1), D(2026, 3, 2)], rows=50)
    with pytest.raises(SystemExit) as exc:
        cli.main(["backtest", "late_delivery", *args, "--log", str(tmp_path / "bt.log")])
    assert str(exc.value).startswith(message)
    assert sorted(p.name for p in data_dir.iterdir()) == ["landing"]


def test_a_range_with_no_history_before_it_is_refused_and_leaves_no_scratch_folder(example_spec, data_dir, tmp_path):
    from mlops_lifecycle.examples import late_delivery

    late_delivery.write_landing(str(data_dir / "landing" / "late_delivery" / "{ds}.parquet"),
                                [D(2026, 3, 1), D(2026, 3, 2)], rows=50)
    with pytest.raises(BacktestError, match=r"late_delivery: the first model could not be trained on the 45 day\(s\) "
                                            r"before --from-date 2026-03-01 \(0 validated, 2026-01-15..2026-02-28\)"):
        backtest.run_backtest(example_spec, D(2026, 3, 1), D(2026, 3, 2), work_dir=tmp_path / "scratch")
    assert not (tmp_path / "scratch").exists()
    assert sorted(p.name for p in data_dir.iterdir()) == ["landing"]
