"""Labels that arrive in their own source, ``labels.delay_days`` after the day they label.

A real lake: history validated by Great Expectations, a champion trained with XGBoost and
registered in MLflow (SQLite), its predictions for day D. The labels of D are delivered as
a CSV file of their own; the daily run of D + delay joins them with D's predictions,
keeps the joined rows in the lake and measures concept drift from them, and a metric
drop beyond ``drift.max_metric_drop`` takes the same retraining path as data drift.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from bad_batches import build_lake_with_champion, isolated_stores, write_small_spec

from mlops_lifecycle import lake

START = dt.date(2026, 4, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(8, 0, -1)]
EVENT_DAY = HISTORY[-1]  # scored by the champion when the lake was built
DELAY = 3
ARRIVAL = EVENT_DAY + dt.timedelta(days=DELAY)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("late-labels")
    with isolated_stores(base):
        write_small_spec(
            base / "specs",
            training={"max_latency_ms_per_1k_rows": 10_000},
            labels={"source": {"path": "{data_dir}/labels/{ds}.csv"}, "delay_days": DELAY},
            drift={"max_metric_drop": 0.1},
            # One event day's labels are delivered here: let one hurt day ask for retraining.
            retraining={"label_days_required": 1},
        )
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        built = build_lake_with_champion(spec, HISTORY)
        assert built["decision"]["outcome"] == "promoted", built["decision"]
        yield {"spec": spec, "data": base / "data", **built}


def _deliver_labels(world, *, flip: bool = False) -> Path:
    """The labels of EVENT_DAY as their own CSV file: entity id and label only, shuffled."""
    spec = world["spec"]
    rows = pd.read_parquet(lake.data_file(spec.name, "validated", EVENT_DAY))[[spec.entity_id, spec.target.column]]
    if flip:
        rows[spec.target.column] = 1 - rows[spec.target.column]
    path = world["data"] / "labels" / f"{EVENT_DAY}.csv"
    lake.write_text(path, rows.sample(frac=1.0, random_state=1).to_csv(index=False))
    return path


def _no_data_drift(world) -> dict:
    return {"model": "late_delivery", "ds": ARRIVAL.isoformat(), "model_version": world["champion"]["version"],
            "drift_share": 0.0, "dataset_drift": False, "drifted_columns": [], "prediction_drift": False,
            "concept": {"labelled_rows": 0}, "report_html": None}


def test_labels_that_have_not_arrived_are_waited_for_not_failed(world):
    from mlops_lifecycle import monitoring

    out = monitoring.collect_labels(world["spec"], ARRIVAL)

    assert out["status"] == "not_arrived" and out["event_ds"] == EVENT_DAY.isoformat()
    assert "labels" in out["detail"] and not lake.data_file("late_delivery", "labels", EVENT_DAY).exists()


def test_labels_arriving_later_are_joined_with_their_days_predictions(world):
    from mlops_lifecycle import monitoring

    _deliver_labels(world)
    spec = world["spec"]

    out = monitoring.collect_labels(spec, ARRIVAL)

    preds = pd.read_parquet(lake.data_file(spec.name, "predictions", EVENT_DAY))
    assert out["status"] == "joined" and out["rows"] == len(preds) == out["labels_rows"]
    assert out["source"].endswith(f"labels/{EVENT_DAY}.csv")
    joined = pd.read_parquet(lake.data_file(spec.name, "labels", EVENT_DAY))
    assert set(joined.columns) >= {spec.entity_id, "prediction", "model_version", spec.target.column}
    concept = out["concept"]
    assert concept["metric"] == "roc_auc" and concept["labelled_rows"] == len(preds)
    assert concept["baseline"] is not None and concept["value"] > 0.6 and concept["degraded"] is False
    saved = lake.read_json(lake.report_dir(spec.name, "concept", EVENT_DAY) / "summary.json")
    assert saved["concept"] == concept and saved["event_ds"] == EVENT_DAY.isoformat()

    decision = monitoring.decide_retraining(spec, ARRIVAL, _no_data_drift(world), run_id="pytest", labels=out)
    assert decision["retrain"] is False and decision["concept"]["event_ds"] == EVENT_DAY.isoformat()


def test_late_labels_showing_a_metric_drop_request_retraining(world):
    from mlops_lifecycle import monitoring

    _deliver_labels(world, flip=True)  # the world changed: the champion is now wrong
    spec = world["spec"]

    out = monitoring.collect_labels(spec, ARRIVAL)
    decision = monitoring.decide_retraining(spec, ARRIVAL, _no_data_drift(world), run_id="pytest", labels=out)

    assert out["concept"]["degraded"] is True and out["concept"]["drop"] > 0.1
    assert decision["retrain"] is True and decision["reason"] == "concept_drift"
    assert f"on the labels of {EVENT_DAY}" in decision["detail"]
    request = lake.read_json(lake.event_file(spec.name, "retrain_requests", ARRIVAL.isoformat()))
    assert request["reason"] == "concept_drift"


def test_labels_missing_their_columns_are_rejected_by_name(world):
    from mlops_lifecycle import monitoring

    lake.write_text(world["data"] / "labels" / f"{EVENT_DAY}.csv", "package_id,label\nx,1\n")

    with pytest.raises(monitoring.LabelsError, match=r"lack column\(s\) \['is_late'\]"):
        monitoring.collect_labels(world["spec"], ARRIVAL)


def test_training_takes_late_labels_from_the_labels_zone(world, data_dir):
    """Batches delivered without labels train once their labels are in (and the data version says so)."""
    from mlops_lifecycle import training

    spec = world["spec"]
    days = [dt.date(2026, 5, 1) + dt.timedelta(days=i) for i in range(spec.training.window_days)]
    from mlops_lifecycle.examples import late_delivery

    for day in days:
        frame = late_delivery.generate_day(day, rows=300)
        lake.write_parquet(lake.data_file(spec.name, "validated", day), frame.assign(is_late=float("nan")))
        lake.write_parquet(lake.data_file(spec.name, "labels", day), frame[[spec.entity_id, "is_late"]])

    window = training.assemble_window(spec, days[-1])

    assembled = pd.read_parquet(window["path"])
    assert window["labelled_rows"] == window["rows"] and assembled["is_late"].notna().all()
    lake.remove_partition(spec.name, "labels", days[-1])
    assert training.assemble_window(spec, days[-1])["data_version"] != window["data_version"]


def test_concept_drift_is_measured_on_as_few_labelled_rows_as_the_spec_allows(world):
    """A low-volume model (24 labels a day) sets drift.min_labelled_rows below the default 30."""
    from mlops_lifecycle import monitoring

    spec = world["spec"]
    version = world["champion"]["version"]
    preds = pd.read_parquet(lake.data_file(spec.name, "predictions", EVENT_DAY))[[spec.entity_id, "prediction"]]
    rows = pd.read_parquet(lake.data_file(spec.name, "validated", EVENT_DAY))[[spec.entity_id, spec.target.column]]
    day = rows.merge(preds, on=spec.entity_id)
    day = pd.concat([day[day[spec.target.column] == v].head(12) for v in (0, 1)])  # 24 labels, both classes

    assert spec.drift.min_labelled_rows == 30
    assert monitoring.concept_metrics(spec, day, version) == {"labelled_rows": 24}
    low = spec.model_copy(update={"drift": spec.drift.model_copy(update={"min_labelled_rows": 20})})
    concept = monitoring.concept_metrics(low, day, version)
    assert concept["labelled_rows"] == 24 and concept["metric"] == "roc_auc" and "drop" in concept
