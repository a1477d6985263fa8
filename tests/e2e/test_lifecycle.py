"""The whole lifecycle through the real DAGs: first training, scoring, a quarantined batch,
drift that triggers exactly one retraining with its evidence, cooldown, idempotent
reruns, and a worse challenger that is not promoted.

Real Airflow (``DAG.test`` on a SQLite metadata DB), MLflow (SQLite store), Great
Expectations, Evidently and XGBoost; small data (300 rows a day) to stay quick. One
scenario is played once per module; each test asserts one behaviour of it.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from e2e_specs import isolated_stores, write_small_spec

pytestmark = pytest.mark.e2e

START = dt.date(2026, 3, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(12, 0, -1)]
DAYS = [START + dt.timedelta(days=i) for i in range(7)]
CORRUPT = DAYS[1]  # day 2
SHIFT = DAYS[2]  # day 3 on
# Drift must last three days (days 3-5) before retraining: then the challenger trains on a
# shifted day, stops early on the next and is judged against the champion on the third.
DRIFT_DAYS = 3
TRIGGER = DAYS[2 + DRIFT_DAYS - 1]  # day 5


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, airflow_db):
    """Play seven days: history seeded, day 1 trains v1, day 2 corrupted, shift from day 3,
    retraining on day 5, days 6-7 in the cooldown."""
    base = tmp_path_factory.mktemp("lifecycle")
    with isolated_stores(base):
        write_small_spec(base / "specs", retraining={"drift_days_required": DRIFT_DAYS})

        from mlops_lifecycle import dag_factory, ingestion, lake, replay
        from mlops_lifecycle.examples import late_delivery
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
        late_delivery.write_landing(template, HISTORY + DAYS, rows=300, shift_start=SHIFT, corrupt_days=(CORRUPT,))
        replay.seed_history(spec, HISTORY)
        dags = replay.load_dags(spec)
        replay.clear_runs(spec)
        retrain_id = dag_factory.dag_id(spec.name, "retrain")
        daily = dags[dag_factory.dag_id(spec.name, "daily")]

        record: dict = {"spec": spec, "dags": dags, "days": {}, "queued": {}, "base": base}
        for d in DAYS:
            logical = dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC)
            if d == CORRUPT:
                record["day1_validated_bytes"] = lake.data_file(spec.name, "validated", DAYS[0]).read_bytes()
            dr = daily.test(logical_date=logical)
            tasks = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
            # What the trigger left for a scheduler, before we run it ourselves.
            record["queued"][d] = [
                {"run_id": r.run_id, "conf": dict(r.conf or {})} for r in replay.queued_runs(retrain_id)
            ]
            if d == DAYS[2]:
                # Rerun day 3 at once (same champion, same reference): outputs must be
                # replaced, not duplicated, and come out identical.
                preds = lake.data_file(spec.name, "predictions", d)
                before = pd.read_parquet(preds)
                rerun = daily.test(logical_date=logical)
                record["rerun"] = (before, pd.read_parquet(preds), str(rerun.state))
            ran = replay.run_queued(dags[retrain_id])
            record["days"][d] = {"state": str(dr.state), "tasks": tasks, "retrain": ran}
        yield record


def _task(record, d, task_id):
    return record["days"][d]["tasks"].get(task_id, "").replace("TaskInstanceState.", "")


def test_day1_without_champion_triggers_first_training_and_v1_becomes_champion(scenario):
    from mlops_lifecycle import registry

    d1 = DAYS[0]
    assert _task(scenario, d1, "trigger_first_training") == "success"
    assert _task(scenario, d1, "plan_scoring") == "skipped"
    queued = scenario["queued"][d1]
    assert len(queued) == 1 and queued[0]["conf"]["reason"] == "no_champion"
    assert scenario["days"][d1]["retrain"][0]["state"].endswith("success")
    v1 = registry.get_version(scenario["spec"], 1)
    assert v1.tags["status"] in {"champion", "retired"}
    assert v1.tags["trigger.reason"] == "no_champion"
    assert v1.tags["trigger.by"].startswith("airflow:late_delivery__retrain/")
    assert "requested_by=airflow:late_delivery__daily/" in v1.tags["trigger.by"]
    audit = registry.audit_log(scenario["spec"])
    assert audit[0]["action"] == "promote" and audit[0]["to_version"] == "1"


def test_corrupted_batch_is_quarantined_with_failed_checks_named(scenario):
    from mlops_lifecycle import lake

    spec = scenario["spec"]
    assert scenario["days"][CORRUPT]["state"].endswith("failed")
    assert _task(scenario, CORRUPT, "validate") == "failed"
    assert _task(scenario, CORRUPT, "plan_scoring") in {"upstream_failed", ""}
    qdir = lake.partition_dir(spec.name, "quarantine", CORRUPT)
    assert (qdir / "data.parquet").exists()
    result = json.loads((qdir / "validation.json").read_text())
    assert result["success"] is False
    failed = json.dumps(result["failures"])
    for needle in ("drivers_available", "distance_km", "weather", "package_id"):
        assert needle in failed, f"{needle} not named among failed checks"
    assert not lake.data_file(spec.name, "validated", CORRUPT).exists()
    assert not lake.data_file(spec.name, "predictions", CORRUPT).exists()
    # Nothing earlier was touched, and the next day went on normally.
    assert lake.data_file(spec.name, "validated", DAYS[0]).read_bytes() == scenario["day1_validated_bytes"]
    assert scenario["days"][DAYS[2]]["state"].endswith("success")


def test_predictions_carry_model_version_and_run_ids(scenario):
    from mlops_lifecycle import lake

    spec = scenario["spec"]
    preds = pd.read_parquet(lake.data_file(spec.name, "predictions", DAYS[2]))  # scored before v2 existed
    assert {"package_id", "prediction", "model_name", "model_version", "mlflow_run_id", "airflow_run_id"} <= set(preds.columns)
    assert preds["package_id"].is_unique
    assert set(preds["model_version"]) == {1}
    manifest = json.loads((lake.partition_dir(spec.name, "predictions", DAYS[2]) / "manifest.json").read_text())
    assert manifest["model_version"] == 1 and len(manifest["validated_sha256"]) == 64 and manifest["code_version"]


def test_drift_is_reported_for_every_scored_day(scenario):
    from mlops_lifecycle import lake

    spec = scenario["spec"]
    for d in (DAYS[2], DAYS[3]):
        rdir = lake.report_dir(spec.name, "drift", d)
        assert (rdir / "report.html").stat().st_size > 10_000
        summary = json.loads((rdir / "summary.json").read_text())
        assert summary["dataset_drift"] is True, summary
        assert "traffic_index" in summary["drifted_columns"]
        # Prediction drift: the champion's scores against its out-of-sample reference scores.
        assert isinstance(summary["prediction_drift"]["drifted"], bool)
        assert summary["prediction_drift"]["score"] is not None


def test_drift_triggers_exactly_one_retraining_with_evidence(scenario):
    # drift_days_required is 3: days 3 and 4 drift but wait; day 5 triggers; days 6-7 are in cooldown.
    for d in (DAYS[2], DAYS[3]):
        assert _task(scenario, d, "trigger_retraining") == "skipped"
    assert _task(scenario, TRIGGER, "trigger_retraining") == "success"
    queued = scenario["queued"][TRIGGER]
    assert len(queued) == 1
    conf = queued[0]["conf"]
    assert conf["reason"] == "data_drift" and conf["ds"] == TRIGGER.isoformat()
    assert conf["drift_share"] >= 0.3 and "traffic_index" in conf["drifted_columns"]
    assert conf["report_html"].endswith("report.html")
    for d in (DAYS[5], DAYS[6]):
        assert _task(scenario, d, "trigger_retraining") == "skipped"
    retrains = [r for d in DAYS for r in scenario["days"][d]["retrain"]]
    assert [r["conf"]["reason"] for r in retrains] == ["no_champion", "data_drift"]


def test_drift_challenger_beats_champion_on_same_holdout_and_scores_the_following_days(scenario):
    import mlflow

    from mlops_lifecycle import lake, registry

    spec = scenario["spec"]
    v2 = registry.get_version(spec, 2)
    assert v2.tags["trigger.reason"] == "data_drift"
    run = mlflow.get_run(v2.run_id)
    # Both models were scored on the challenger's holdout rows (the shifted regime)...
    assert run.data.tags["promotion.compared_with"] == "v1"
    new, old = run.data.metrics["holdout_roc_auc"], run.data.metrics["champion_holdout_roc_auc"]
    # ...and the challenger cleared every rule: floor, margin and the paired noise test.
    assert new >= spec.promotion.floor and new - old >= spec.promotion.margin, (new, old)
    assert run.data.metrics["promotion.p_value"] <= spec.promotion.significance
    assert run.data.tags["promotion.decision"] == "promote"
    assert v2.tags["status"] == "champion" and str(registry.champion(spec).version) == "2"
    assert registry.get_version(spec, 1).tags["status"] == "retired"
    promoted = [e for e in registry.audit_log(spec) if e["to_version"] == "2"]
    assert promoted and promoted[0]["action"] == "promote" and promoted[0]["from_version"] == "1"
    assert "beats champion" in promoted[0]["reason"]
    # Days scored after the retraining carry the new version.
    for d in (DAYS[5], DAYS[6]):
        later = pd.read_parquet(lake.data_file(spec.name, "predictions", d))
        assert set(later["model_version"]) == {2}


def test_drift_challenger_records_the_evidence_that_triggered_it(scenario):
    import mlflow

    from mlops_lifecycle import registry

    spec = scenario["spec"]
    v2 = registry.get_version(spec, 2)
    assert v2.tags["trigger.ds"] == TRIGGER.isoformat()  # the day whose drift asked for it
    assert float(v2.tags["trigger.drift_share"]) >= spec.drift.drift_share
    assert "traffic_index" in json.loads(v2.tags["trigger.drifted_columns"])
    assert v2.tags["trigger.report_html"].endswith(f"ds={TRIGGER.isoformat()}/report.html")
    assert v2.tags["trigger.champion_version"] == "1"
    assert "consecutive day(s)" in v2.tags["trigger.detail"]
    logged = mlflow.artifacts.load_dict(f"runs:/{v2.run_id}/trigger/trigger.json")
    assert logged["evidence"]["drift_share"] == pytest.approx(float(v2.tags["trigger.drift_share"]))
    assert logged["by"] == v2.tags["trigger.by"]


def test_rerunning_a_retraining_on_the_same_data_registers_nothing_twice(scenario):
    from mlops_lifecycle import registry

    spec = scenario["spec"]
    before = [(v.version, v.tags.get("status")) for v in registry.versions(spec)]
    dr = scenario["dags"]["late_delivery__retrain"].test(
        logical_date=dt.datetime.combine(TRIGGER, dt.time(), tzinfo=dt.UTC),
        run_conf={"reason": "rerun of the drift retraining", "requested_by": "pytest"},
    )
    states = {ti.task_id: str(ti.state).replace("TaskInstanceState.", "") for ti in dr.get_task_instances()}
    assert str(dr.state).endswith("success")
    assert states["has_new_data"] == "success" and states["train"] == "skipped", states
    assert [(v.version, v.tags.get("status")) for v in registry.versions(spec)] == before


def test_rerun_replaces_outputs_instead_of_duplicating(scenario):
    before, after, state = scenario["rerun"]
    assert state.endswith("success")
    assert len(after) == len(before)
    assert after["package_id"].is_unique
    pd.testing.assert_series_equal(before["prediction"], after["prediction"])


def test_worse_challenger_is_not_promoted(scenario, tmp_path):
    """Retrain by hand with a crippled model: it must be rejected and the champion kept."""
    from mlops_lifecycle import registry
    from mlops_lifecycle.spec import get_spec

    spec = scenario["spec"]
    champion_before = registry.champion(spec).version
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(scenario["base"] / "data"))
        mp.setenv("MLOPS_SPECS_DIR", str(scenario["base"] / "specs"))
        write_small_spec(scenario["base"] / "specs", training={**get_spec("late_delivery").training.model_dump(),
                                                                "xgboost": {"n_estimators": 1, "max_depth": 1}})
        try:
            retrain = scenario["dags"]["late_delivery__retrain"]
            dr = retrain.test(
                logical_date=dt.datetime.combine(DAYS[5], dt.time(), tzinfo=dt.UTC),
                run_conf={"reason": "manual test", "force": True, "requested_by": "pytest"},
            )
        finally:
            write_small_spec(scenario["base"] / "specs")
        assert str(dr.state).endswith("success")
        newest = registry.versions(spec)[-1]
        assert newest.tags["status"] == "rejected"
        assert "does not beat champion" in newest.tags["rejection_reason"]
        # Who acted, as Airflow's run says it: the user who triggered it beside the conf's requester.
        by = newest.tags["rejected_by"]
        assert by.startswith("airflow:late_delivery__retrain/") and "user=" in by and "requested_by=pytest" in by
        assert registry.champion(spec).version == champion_before
