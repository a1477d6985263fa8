"""Late labels through the real daily DAG: batches never carry labels, which arrive on their own.

No daily file, history included, has the target column: each day's labels are a CSV
file of their own (``labels.delay_days: 1``). The history's labels have arrived and are
kept when the history is ingested, so the first model trains on labels alone. Day 1
trains v1; the labels of day 1 (not scored) are kept for training; day 2 is scored; the
labels of day 2 contradict the model, so the run of day 3 collects them, finds the
metric fell beyond ``drift.max_metric_drop`` and queues a retraining with the concept
evidence in its conf.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from e2e_specs import isolated_stores, write_small_spec

pytestmark = pytest.mark.e2e

START = dt.date(2026, 3, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(12, 0, -1)]
DAYS = [START + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="module")
def played(tmp_path_factory, airflow_db):
    base = tmp_path_factory.mktemp("late-labels-e2e")
    with isolated_stores(base):
        write_small_spec(
            base / "specs",
            labels={"source": {"path": "{data_dir}/labels/{ds}.csv"}, "delay_days": 1},
            drift={"max_metric_drop": 0.1},
            # One day's labels are flipped here: let one hurt labelled day ask for retraining.
            retraining={"label_days_required": 1},
        )
        from mlops_lifecycle import dag_factory, ingestion, lake, replay
        from mlops_lifecycle.examples import late_delivery
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
        late_delivery.write_landing(template, HISTORY + DAYS, rows=300)
        truth = {}
        labels_dir = base / "data" / "labels"
        for d in HISTORY + DAYS:  # the daily feed has no labels; they come on their own
            path = ingestion.source_path(spec, d)
            frame = pd.read_parquet(path)
            truth[d] = frame[[spec.entity_id, spec.target.column]]
            lake.write_parquet(path, frame.drop(columns=[spec.target.column]))
            if d in HISTORY:  # the history's labels arrived long ago
                lake.write_text(labels_dir / f"{d}.csv", truth[d].to_csv(index=False))
        replay.seed_history(spec, HISTORY)
        dags = replay.load_dags(spec)
        replay.clear_runs(spec)
        daily = dags[dag_factory.dag_id(spec.name, "daily")]
        retrain_id = dag_factory.dag_id(spec.name, "retrain")

        out: dict = {"spec": spec, "tasks": {}, "labels": {}, "truth": truth}
        for i, d in enumerate(DAYS):
            if i == 1:  # the labels of day 1 arrive on day 2, true to the model
                lake.write_text(labels_dir / f"{DAYS[0]}.csv", truth[DAYS[0]].to_csv(index=False))
            if i == 2:  # the labels of day 2 arrive on day 3, and the world has changed
                flipped = truth[DAYS[1]].assign(**{spec.target.column: 1 - truth[DAYS[1]][spec.target.column]})
                lake.write_text(labels_dir / f"{DAYS[1]}.csv", flipped.to_csv(index=False))
            dr = daily.test(logical_date=dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC))
            out["tasks"][d] = {ti.task_id: str(ti.state).replace("TaskInstanceState.", "") for ti in dr.get_task_instances()}
            out["labels"][d] = dr.get_task_instance("collect_labels").xcom_pull(task_ids="collect_labels")
            queued = [{"run_id": r.run_id, "conf": dict(r.conf or {})} for r in replay.queued_runs(retrain_id)]
            out.setdefault("queued", {})[d] = queued
            if i == 0:
                replay.run_queued(dags[retrain_id])  # the first training: v1 becomes champion
        yield out


def test_first_model_trains_on_labels_that_only_ever_arrived_on_their_own(played):
    from mlops_lifecycle import lake, registry

    spec = played["spec"]
    v1 = registry.get_version(spec, 1)
    assert v1.tags["trigger.reason"] == "no_champion" and v1.tags["status"] in {"champion", "retired"}
    # The window is the history plus day 1, whose labels had not arrived: it trained on the history's.
    assert v1.tags["data.partitions"].split(",") == [d.isoformat() for d in [*HISTORY, DAYS[0]]]
    # Every history day's labels were kept in the lake, as delivered.
    assert lake.partitions(spec.name, "labels")[: len(HISTORY)] == HISTORY
    kept = pd.read_parquet(lake.data_file(spec.name, "labels", HISTORY[0]))
    assert len(kept) == len(played["truth"][HISTORY[0]]) and "prediction" not in kept.columns


def test_batches_without_labels_are_validated_and_scored(played):
    day2 = played["tasks"][DAYS[1]]
    assert day2["validate"] == "success" and day2["commit_predictions"] == "success", day2


def test_labels_are_collected_delay_days_later_for_the_day_they_label(played):
    stored = played["labels"][DAYS[1]]  # day 1 was not scored (no champion yet): kept for training
    assert stored["status"] == "stored" and stored["event_ds"] == DAYS[0].isoformat()
    assert stored["labels_rows"] == len(played["truth"][DAYS[0]])
    collected = played["labels"][DAYS[2]]
    assert collected["status"] == "joined" and collected["event_ds"] == DAYS[1].isoformat()
    assert collected["rows"] == collected["predictions_rows"] > 0
    assert collected["concept"]["degraded"] is True


def test_concept_drift_from_late_labels_queues_one_retraining_with_its_evidence(played):
    assert played["tasks"][DAYS[1]]["trigger_retraining"] == "skipped"
    day3 = played["tasks"][DAYS[2]]
    assert day3["collect_labels"] == "success" and day3["trigger_retraining"] == "success", day3
    queued = played["queued"][DAYS[2]]
    assert len(queued) == 1 and queued[0]["run_id"] == f"drift__{DAYS[2]}"
    conf = queued[0]["conf"]
    assert conf["reason"] == "concept_drift" and conf["concept"]["event_ds"] == DAYS[1].isoformat()
