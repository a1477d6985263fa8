"""The retraining decision of the daily DAG: drift streak, minimum new data, cooldown,
one request per day. Real lake files (drift summaries, validated Parquet partitions)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_lifecycle import lake, monitoring

DAY = dt.date(2026, 3, 20)


def _spec(example_spec, **retraining):
    policy = example_spec.retraining.model_copy(update=retraining)
    return example_spec.model_copy(update={"retraining": policy})


def _day(spec, day: dt.date, *, rows: int, drifted: bool, predictions_drifted: bool = False) -> dict:
    lake.write_parquet(lake.data_file(spec.name, "validated", day), pd.DataFrame({"x": range(rows)}))
    summary = {"ds": day.isoformat(), "dataset_drift": drifted, "drift_share": 0.6 if drifted else 0.0,
               "drifted_columns": ["x"] if drifted else [], "model_version": "1",
               "prediction_drift": {"drifted": predictions_drifted, "score": 0.3 if predictions_drifted else 0.01}}
    lake.write_json(lake.report_dir(spec.name, "drift", day) / "summary.json", summary)
    # What check_drift hands the decision: the prediction verdict as a flag.
    return {**summary, "prediction_drift": predictions_drifted}


@pytest.fixture
def spec(example_spec, data_dir):
    return _spec(example_spec, drift_days_required=3, min_rows=2000, cooldown_days=7)


def test_drift_on_fewer_days_than_required_does_not_retrain(spec):
    _day(spec, DAY - dt.timedelta(days=2), rows=1000, drifted=False)
    _day(spec, DAY - dt.timedelta(days=1), rows=1000, drifted=True)
    check = _day(spec, DAY, rows=1000, drifted=True)
    decision = monitoring.decide_retraining(spec, DAY, check, run_id="pytest")
    assert decision["retrain"] is False and "fewer than 3 consecutive" in decision["reason"]
    assert lake.events(spec.name, "retrain_requests") == []


def test_a_streak_with_too_few_rows_waits_for_more_data(spec):
    for back in (2, 1):
        _day(spec, DAY - dt.timedelta(days=back), rows=600, drifted=True)
    check = _day(spec, DAY, rows=600, drifted=True)
    decision = monitoring.decide_retraining(spec, DAY, check, run_id="pytest")
    assert decision["retrain"] is False
    assert "1800 validated rows" in decision["reason"] and "retraining.min_rows is 2000" in decision["reason"]
    assert lake.events(spec.name, "retrain_requests") == []
    # One more drifted day brings the streak's rows over the minimum.
    check = _day(spec, DAY + dt.timedelta(days=1), rows=900, drifted=True)
    decision = monitoring.decide_retraining(spec, DAY + dt.timedelta(days=1), check, run_id="pytest")
    assert decision["retrain"] is True and decision["reason"] == "data_drift"


def test_a_second_streak_inside_the_cooldown_does_not_retrain_and_the_same_day_asks_once(spec):
    for back in (2, 1):
        _day(spec, DAY - dt.timedelta(days=back), rows=1000, drifted=True)
    check = _day(spec, DAY, rows=1000, drifted=True)
    first = monitoring.decide_retraining(spec, DAY, check, run_id="run-1")
    again = monitoring.decide_retraining(spec, DAY, check, run_id="run-2")
    assert first["retrain"] is True and again["retrain"] is True and again["already_requested"] is True
    assert [e["ds"] for e in lake.events(spec.name, "retrain_requests")] == [DAY.isoformat()]
    later = DAY + dt.timedelta(days=3)
    for back in (2, 1, 0):
        check = _day(spec, later - dt.timedelta(days=back), rows=1000, drifted=True)
    decision = monitoring.decide_retraining(spec, later, check, run_id="run-3")
    assert decision["retrain"] is False and decision["reason"].startswith("cooldown")


@pytest.mark.parametrize("counted", [False, True])
def test_prediction_drift_alone_retrains_only_when_the_spec_counts_it(example_spec, data_dir, counted):
    spec = _spec(example_spec, drift_days_required=2, min_rows=100, cooldown_days=7, on_prediction_drift=counted)
    _day(spec, DAY - dt.timedelta(days=1), rows=500, drifted=False, predictions_drifted=True)
    check = _day(spec, DAY, rows=500, drifted=False, predictions_drifted=True)
    decision = monitoring.decide_retraining(spec, DAY, check, run_id="pytest")
    assert decision["retrain"] is counted
    assert decision["prediction_drift"] is True
    if counted:
        assert decision["reason"] == "prediction_drift" and "prediction drift on 2 consecutive" in decision["detail"]
    else:
        assert decision["reason"] == "no drift" and lake.events(spec.name, "retrain_requests") == []
    # Drifted predictions page only when the spec counts them; otherwise they stay in the
    # day's summary and report (no alert fatigue from a score distribution that moves).
    from mlops_lifecycle import alerts

    paged = [a for a in alerts.read_alerts(spec.name, "drift") if "prediction drift" in a["message"]]
    assert len(paged) == (1 if counted else 0)


def test_a_drift_episode_pages_once_and_a_new_episode_after_calm_days_pages_again(example_spec, data_dir):
    """Drifted days 1-6 (one calm day inside), calm days 7-10, drifted days 11-13: two
    episodes, two alerts; every day's health recorded."""
    from mlops_lifecycle import alerts

    spec = _spec(example_spec, drift_days_required=30, min_rows=100)  # no retraining: only the paging
    start = DAY
    drifted = {0, 1, 2, 4, 5, 10, 11, 12}
    decisions = []
    for i in range(13):
        day = start + dt.timedelta(days=i)
        check = _day(spec, day, rows=500, drifted=i in drifted)
        decisions.append(monitoring.decide_retraining(spec, day, check, run_id="pytest"))
    paged = alerts.read_alerts(spec.name, "drift")
    first, second = start + dt.timedelta(days=2), start + dt.timedelta(days=12)
    # Each episode pages on its third drifted day (drift.episode_min_days), and only then.
    assert sorted(a["details"]["ds"] for a in paged) == [first.isoformat(), second.isoformat()], paged
    assert [a["details"]["episode_start"] for a in sorted(paged, key=lambda a: a["details"]["ds"])] == [
        start.isoformat(), (start + dt.timedelta(days=10)).isoformat()]
    assert decisions[5]["episode_start"] == start.isoformat(), "one calm day does not end an episode"
    assert len(lake.events(spec.name, "health")) == 13
    # A rerun of a paged day does not page twice.
    monitoring.decide_retraining(spec, first, _day(spec, first, rows=500, drifted=True), run_id="rerun")
    assert len(alerts.read_alerts(spec.name, "drift")) == 2
