"""mlops backtest end to end: the example generator's days with a shift and a corrupted batch,
replayed with real GX, XGBoost, MLflow and Evidently, beside a live lake and a live registry that
must come out of it unchanged."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from e2e_specs import write_small_spec

D = dt.date
START, END = D(2026, 3, 24), D(2026, 4, 22)
SHIFT = D(2026, 4, 1)
CORRUPT = D(2026, 3, 27)
HISTORY = 20  # the small spec's training.window_days


def _lake_state(data: Path) -> dict[str, tuple[int, str]]:
    """Every file of the live lake (but the back-test reports) with its size and content hash."""
    out = {}
    for path in sorted((data / "lake").rglob("*")):
        if path.is_file() and "backtests" not in path.relative_to(data / "lake").parts:
            out[str(path.relative_to(data))] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def _registry_state(spec) -> dict:
    from mlops_lifecycle import registry

    c = registry.client()
    model = c.get_registered_model(spec.model_name)
    return {
        "versions": [(v.version, v.run_id, dict(v.tags)) for v in registry.versions(spec)],
        "aliases": dict(model.aliases),
        "tags": dict(model.tags),
        "experiments": sorted(e.name for e in c.search_experiments()),
        "runs": sorted(r.info.run_id for r in c.search_runs([e.experiment_id for e in c.search_experiments()])),
        "uri": registry.config.mlflow_tracking_uri(),
    }


@pytest.fixture(scope="module")
def backtested(tmp_path_factory, airflow_db):
    """A live model (history ingested, v1 champion in a live MLflow store named by
    MLFLOW_TRACKING_URI), then a back-test of 30 days beside it."""
    from mlops_lifecycle import backtest, registry, scaffold, spec, training
    from mlops_lifecycle.examples import late_delivery

    base = tmp_path_factory.mktemp("backtest")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(base / "data"))
        mp.setenv("MLOPS_SPECS_DIR", str(base / "specs"))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{base / 'live-mlflow' / 'mlflow.db'}")
        # Cooldown 3 days: the policy can retrain again soon after a first, too-early request.
        write_small_spec(base / "specs", retraining={"cooldown_days": 3, "drift_days_required": 2, "min_rows": 400})
        s = spec.get_spec("late_delivery")
        history = [START - dt.timedelta(days=i) for i in range(HISTORY, 0, -1)]
        days = [START + dt.timedelta(days=i) for i in range((END - START).days + 1)]
        late_delivery.write_landing(str(base / "data" / "landing" / "late_delivery" / "{ds}.parquet"), history + days,
                                    rows=600, shift_start=SHIFT, corrupt_days=(CORRUPT,))
        # The live model: its history and a champion, as after `mlops ingest-history` and a first training.
        scaffold.ingest_history(s, history[-8:])
        window = training.assemble_window(s, history[-1], 8)
        training.compare_and_promote(s, training.train_and_register(s, window, trigger={"reason": "manual"}),
                                     actor="test")
        lake_before, registry_before = _lake_state(base / "data"), _registry_state(s)
        lines: list[str] = []
        report = backtest.run_backtest(s, START, END, options=backtest.Options(refit_every_days=10, refit_window_days=14,
                                                                               judge_days=5), progress=lines.append)
        yield {"report": report, "spec": s, "base": base, "lines": lines,
               "lake": (lake_before, _lake_state(base / "data")),
               "registry": (registry_before, _registry_state(s)), "champion": registry.champion(s).version}


def test_the_live_lake_and_the_live_registry_are_unchanged(backtested):
    lake_before, lake_after = backtested["lake"]
    assert lake_after == lake_before and len(lake_before) > 20
    before, after = backtested["registry"]
    assert after == before
    assert len(before["versions"]) == 1 and {k: str(v) for k, v in before["aliases"].items()} == {"champion": "1"}
    assert str(backtested["champion"]) == "1"


def test_the_report_is_the_only_file_written_beside_the_live_lake(backtested):
    from mlops_lifecycle import lake

    base = backtested["base"]
    path = Path(backtested["report"]["report_path"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(base / "data"))
        assert path == lake.backtest_file("late_delivery", START, END)
    assert path.is_file() and sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert backtested["report"]["work_dir"] is None  # the scratch stores were removed


def test_every_day_is_replayed_and_the_corrupted_batch_is_quarantined(backtested):
    report = backtested["report"]
    days = report["days"]
    assert [r["ds"] for r in days] == [(START + dt.timedelta(days=i)).isoformat() for i in range(len(days))]
    assert days[-1]["ds"] == END.isoformat()
    bad = [r for r in days if r["status"] != "scored"]
    assert [(r["ds"], r["status"]) for r in bad] == [(CORRUPT.isoformat(), "quarantined")]
    assert "drivers_available" in bad[0]["detail"] or "columns" in bad[0]["detail"]
    assert report["total"]["quarantined_days"] == 1 and report["months"][0]["quarantined_days"] == 1
    assert report["total"]["alerts_by_kind"].get("quarantine") == 1
    assert report["total"]["scored_days"] == len(days) - 1


def test_the_shift_triggers_retraining_and_what_was_scored_beats_the_stale_first_model_after_it(backtested):
    report = backtested["report"]
    april = next(m for m in report["months"] if m["month"] == "2026-04")
    assert april["retrain_requests"] >= 1 and april["promotions"] >= 1
    assert april["labelled_rows"] > 5000
    assert april["gain_vs_stale"] > 0.01, april
    assert april["scored"] > april["stale"]
    versions = {r.get("model_version") for r in report["days"] if r["ds"] >= SHIFT.isoformat()}
    assert len(versions - {None}) >= 2  # a new champion took over after the shift
    # The refit baseline was retrained on schedule, in a registry of its own.
    assert [r["ds"] for r in report["refits"]] == ["2026-04-02", "2026-04-12"]
    assert all("error" not in r for r in report["refits"]), report["refits"]


def test_each_decision_is_judged_on_the_following_days(backtested):
    report = backtested["report"]
    decisions = report["decisions"]
    assert decisions and {d["outcome"] for d in decisions} <= {"promoted", "rejected"}
    for d in decisions:
        if d["ds"] < END.isoformat():
            assert d["right"] in (True, False) and d["judged_rows"] > 0, d
            assert d["judged_days"][0] > d["ds"] and len(d["judged_days"]) <= 5
            assert d["gain"] == pytest.approx(d["challenger_metric"] - d["champion_metric"])
            assert d["right"] == ((d["gain"] > 0) == (d["outcome"] == "promoted"))
    judged = [d for d in decisions if d["right"] is not None]
    total = report["total"]
    assert total["right_decisions"] + total["wrong_decisions"] == len(judged)
    assert total["promotions"] + total["rejections"] == len(decisions)


def test_the_report_says_how_long_a_day_took_and_the_progress_names_each_month(backtested):
    timing = backtested["report"]["timing"]
    assert timing["days"] == 30 and timing["seconds_per_day"] > 0
    assert set(timing["by_stage"]) >= {"ingest", "validate", "score", "drift", "first_model", "refit", "evaluate"}
    lines = backtested["lines"]
    assert any(line.startswith("  2026-03: 7 of 8 day(s) scored, 1 quarantined") for line in lines), lines
    assert any(line.startswith("  2026-04: 22 of 22 day(s) scored") for line in lines), lines
