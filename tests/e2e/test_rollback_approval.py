"""Rollback in one step, approval in manual mode, one retraining per drifted day, and
models taken only from the registry: played through the real DAGs.

Real Airflow (``DAG.test`` on the session's SQLite metadata DB), MLflow (SQLite store),
Great Expectations, Evidently and XGBoost on small generated data. One scenario is
played once per module; each test asserts one behaviour of it:

1. v1 is trained with a crippled XGBoost set-up and becomes champion; v2, trained
   normally, beats it and is promoted (auto mode).
2. The rollback DAG (its form: reason, no version) sets v1 back as champion; the daily
   DAG then scores with v1, even with a run conf that names v2's model files.
3. In manual mode a retraining run's winner v3 waits as ``challenger``; the daily DAG
   keeps scoring with v1 until the approve DAG promotes v3; the next day scores with v3.
4. ``mlops rollback`` (the CLI) goes back one step to v1 before the drifted day.
5. The drifted day's daily DAG runs twice: one retraining run is queued, not two.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from e2e_specs import SMALL, write_small_spec

pytestmark = pytest.mark.e2e

START = dt.date(2026, 3, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(12, 0, -1)]
TRAIN_DAY = HISTORY[-1]
DAY1, DAY2, DAY3, DRIFT_DAY = (START + dt.timedelta(days=i) for i in range(4))
WEAK = {
    "n_estimators": 5,
    "max_depth": 1,
    "learning_rate": 0.3,
    "tree_method": "hist",
}  # holdout AUC ~0.67 (floor 0.6), v2 ~0.79


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _states(dr) -> dict[str, str]:
    return {ti.task_id: str(ti.state).replace("TaskInstanceState.", "") for ti in dr.get_task_instances()}


def _scored_by(spec, day: dt.date) -> set[int]:
    from mlops_lifecycle import lake

    return set(pd.read_parquet(lake.data_file(spec.name, "predictions", day))["model_version"])


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, airflow_db):
    base = tmp_path_factory.mktemp("rollback")
    specs = base / "specs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(base / "data"))
        mp.setenv("MLOPS_SPECS_DIR", str(specs))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)

        from mlops_lifecycle import cli, dag_factory, ingestion, registry, replay
        from mlops_lifecycle.examples import late_delivery
        from mlops_lifecycle.spec import get_spec

        weak_training = {**SMALL["training"], "xgboost": WEAK}
        write_small_spec(specs, training=weak_training)
        spec = get_spec("late_delivery")
        template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
        late_delivery.write_landing(
            template, [*HISTORY, DAY1, DAY2, DAY3, DRIFT_DAY], rows=600, shift_start=DRIFT_DAY
        )
        replay.seed_history(spec, HISTORY)
        dags = replay.load_dags(spec)
        replay.clear_runs(spec)
        daily, retrain = (
            dags[dag_factory.dag_id(spec.name, "daily")],
            dags[dag_factory.dag_id(spec.name, "retrain")],
        )
        rollback, approve = (
            dags[dag_factory.dag_id(spec.name, "rollback")],
            dags[dag_factory.dag_id(spec.name, "approve")],
        )
        rec: dict = {"spec": spec, "runs": {}, "champion": {}}

        def champ() -> str:
            return str(registry.champion(spec).version)

        def play(key: str, dag, **kwargs) -> None:
            # States are read at once: a later run for the same logical date replaces this one.
            dr = dag.test(**kwargs)
            rec["runs"][key] = {"state": str(dr.state), "tasks": _states(dr), "run_id": dr.run_id}

        # 1. v1 (weak), then v2 (normal) promoted over it.
        play("train_v1", retrain, logical_date=_at(TRAIN_DAY), run_conf={"reason": "first model"})
        write_small_spec(specs)
        play(
            "train_v2",
            retrain,
            logical_date=_at(TRAIN_DAY),
            run_conf={"reason": "better set-up", "force": True},
        )
        rec["champion"]["after_v2"] = champ()

        # 2. Roll back with the DAG's form, then score; the run conf names v2's files.
        play("rollback", rollback, logical_date=None, run_conf={"reason": "v2 over-predicts lateness"})
        rec["champion"]["after_rollback"] = champ()
        v2_source = registry.get_version(spec, 2).source
        rec["v2_source"] = v2_source
        play(
            "day1",
            daily,
            logical_date=_at(DAY1),
            run_conf={"model_uri": v2_source, "model_path": v2_source, "model_version": 2, "version": "2"},
        )
        rec["scored"] = {DAY1: _scored_by(spec, DAY1)}
        try:
            rollback.test(logical_date=None, run_conf={"reason": "load a file", "to_version": v2_source})
            rec["path_rollback"] = "accepted"
        except Exception as exc:  # noqa: BLE001 - recorded, asserted in a test
            rec["path_rollback"] = f"{type(exc).__name__}: {exc}"
        rec["champion"]["after_path_rollback"] = champ()

        # 3. Manual mode: the winner waits; scoring stays on the champion until approval.
        #    The run asks for automatic promotion: the spec's approval rule still holds.
        write_small_spec(specs, promotion={"mode": "manual"})
        play(
            "train_v3",
            retrain,
            logical_date=_at(TRAIN_DAY),
            run_conf={"reason": "manual mode", "force": True, "promote": "auto"},
        )
        rec["challenger_waiting"] = (
            str(registry.challenger(spec).version) if registry.challenger(spec) else None
        )
        rec["champion"]["while_waiting"] = champ()
        rec["v3_status_while_waiting"] = registry.get_version(spec, 3).tags.get("status")
        play("day2", daily, logical_date=_at(DAY2))
        rec["scored"][DAY2] = _scored_by(spec, DAY2)
        play("approve", approve, logical_date=None, run_conf={"reason": "slices reviewed"})
        rec["champion"]["after_approve"] = champ()
        play("day3", daily, logical_date=_at(DAY3))
        rec["scored"][DAY3] = _scored_by(spec, DAY3)

        # 4. The CLI rolls back one step.
        rec["cli_exit"] = cli.main(
            ["rollback", spec.name, "--reason", "v3 misjudges storms", "--user", "pytest"]
        )
        rec["champion"]["after_cli"] = champ()

        # 5. A drifted day, run twice: one retraining request, one queued run.
        write_small_spec(specs, retraining={"cooldown_days": 7, "drift_days_required": 1, "min_rows": 400})
        retrain_id = dag_factory.dag_id(spec.name, "retrain")
        play("drift_1", daily, logical_date=_at(DRIFT_DAY))
        rec["queued_after_first"] = [(r.run_id, dict(r.conf or {})) for r in replay.queued_runs(retrain_id)]
        play("drift_2", daily, logical_date=_at(DRIFT_DAY))
        rec["queued_after_second"] = [(r.run_id, dict(r.conf or {})) for r in replay.queued_runs(retrain_id)]
        rec["scored"][DRIFT_DAY] = _scored_by(spec, DRIFT_DAY)
        rec["base"] = base
        yield rec


def test_second_version_beats_the_first_and_is_promoted(scenario):
    for key in ("train_v1", "train_v2"):
        assert scenario["runs"][key]["state"].endswith("success"), scenario["runs"][key]["tasks"]
    assert scenario["champion"]["after_v2"] == "2"


def test_rollback_dag_restores_the_previous_champion_and_records_it(scenario):
    from mlops_lifecycle import alerts, registry

    spec = scenario["spec"]
    assert scenario["runs"]["rollback"]["state"].endswith("success")
    assert scenario["champion"]["after_rollback"] == "1"
    entry = next(e for e in registry.audit_log(spec) if e["action"] == "rollback")
    assert (entry["from_version"], entry["to_version"]) == ("2", "1")
    assert entry["reason"] == "v2 over-predicts lateness"
    assert entry["by"].startswith("airflow:late_delivery__rollback/")
    assert registry.get_version(spec, 2).tags["status"] == "rolled_back"
    assert any(a["details"].get("to_version") == "1" for a in alerts.read_alerts(spec.name, "rollback"))


def test_next_scoring_run_after_rollback_uses_the_restored_version(scenario):
    assert scenario["runs"]["day1"]["state"].endswith("success"), scenario["runs"]["day1"]["tasks"]
    assert scenario["scored"][DAY1] == {1}


def test_a_model_path_in_the_run_conf_is_ignored_and_cannot_become_a_version(scenario):
    from mlops_lifecycle import lake

    spec = scenario["spec"]
    # The daily run had v2's artifact location in its conf, and still scored with v1.
    assert scenario["scored"][DAY1] == {1}
    manifest = json.loads((lake.partition_dir(spec.name, "predictions", DAY1) / "manifest.json").read_text())
    assert manifest["model_version"] == 1
    # The rollback form accepts version numbers only: a path is refused before anything runs.
    assert scenario["path_rollback"] != "accepted"
    assert "to_version" in scenario["path_rollback"]
    assert scenario["champion"]["after_path_rollback"] == "1"


def test_manual_mode_parks_the_winner_as_challenger_even_when_the_run_asks_for_auto(scenario):
    from mlops_lifecycle import alerts

    spec = scenario["spec"]
    assert scenario["runs"]["train_v3"]["state"].endswith("success")
    assert scenario["challenger_waiting"] == "3"
    assert scenario["champion"]["while_waiting"] == "1"
    assert scenario["scored"][DAY2] == {1}
    assert scenario["v3_status_while_waiting"] == "awaiting_approval"
    waiting = alerts.read_alerts(spec.name, "approval_needed")
    assert waiting and waiting[0]["details"]["to_version"] == "3" and "approve" in waiting[0]["message"]
    # The run's form asked for "auto"; the record says why it waits anyway.
    assert "the spec requires approval" in waiting[0]["details"]["reason"]


def test_approval_promotes_the_challenger_and_the_next_day_scores_with_it(scenario):
    from mlops_lifecycle import registry

    spec = scenario["spec"]
    assert scenario["runs"]["approve"]["state"].endswith("success")
    assert scenario["champion"]["after_approve"] == "3"
    assert scenario["scored"][DAY3] == {3}
    entry = next(e for e in registry.audit_log(spec) if e["action"] == "approve")
    assert (entry["from_version"], entry["to_version"], entry["reason"]) == ("1", "3", "slices reviewed")
    assert entry["by"].startswith("airflow:late_delivery__approve/")


def test_cli_rollback_is_one_step_and_scoring_follows_it(scenario):
    from mlops_lifecycle import registry

    assert scenario["cli_exit"] == 0
    assert scenario["champion"]["after_cli"] == "1"
    assert registry.audit_log(scenario["spec"])[-1]["by"] == "cli:pytest"
    assert scenario["scored"][DRIFT_DAY] == {1}


def test_two_drift_triggers_for_the_same_day_start_one_retraining_run(scenario):
    from mlops_lifecycle import alerts, lake

    spec = scenario["spec"]
    first, second = scenario["runs"]["drift_1"], scenario["runs"]["drift_2"]
    assert first["tasks"]["trigger_retraining"] == "success", first["tasks"]
    assert second["tasks"]["trigger_retraining"] == "skipped", second["tasks"]
    expected = f"drift__{DRIFT_DAY.isoformat()}"
    assert [run_id for run_id, _ in scenario["queued_after_first"]] == [expected]
    assert [run_id for run_id, _ in scenario["queued_after_second"]] == [expected]
    conf = scenario["queued_after_second"][0][1]
    assert conf["reason"] == "data_drift" and conf["ds"] == DRIFT_DAY.isoformat()
    requests = lake.events(spec.name, "retrain_requests")
    assert [r["ds"] for r in requests] == [DRIFT_DAY.isoformat()]
    drift_alerts = alerts.read_alerts(spec.name, "drift")
    assert len(drift_alerts) == 1 and drift_alerts[0]["details"]["retrain"] is True


def test_every_registry_change_is_in_the_audit_log_in_order(scenario):
    from mlops_lifecycle import registry

    log = registry.audit_log(scenario["spec"])
    assert [(e["action"], e["from_version"], e["to_version"]) for e in log] == [
        ("promote", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
        ("await_approval", None, "3"),
        ("approve", "1", "3"),
        ("rollback", "3", "1"),
    ]
    assert all(e["by"] and e["reason"] and e["at"] for e in log)
