"""Retraining on what hurts the model, played day by day on generated data.

The real stage functions (XGBoost training and MLflow registration, scoring, the Evidently
drift check with its same-weekday reference and importance weights, the retraining decision
and its alerts) run on a lake of generated days with a weekly pattern: weekends bring fewer
rows, longer routes and lighter traffic, and the label relation stays the same. Each test
plays its own stretch of days after the same champion's training window:

- eight weeks of that weekly pattern ask for no retraining;
- a label-rate shift with stable features asks for exactly one, on the day the spec says;
- drifting watch-only features ask for none, and the same drift counted asks for one, with
  one alert for the whole episode;
- a holdout sized in rows reaches its minimum, and a comparison on a holdout too small to
  decide says so and keeps the champion.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bad_batches import isolated_stores

from mlops_lifecycle import lake
from mlops_lifecycle.examples import late_delivery
from mlops_lifecycle.spec import ModelSpec

WEEKDAY_ROWS, WEEKEND_ROWS = 400, 240
HISTORY_END = dt.date(2026, 2, 1)  # a Sunday
HISTORY = [HISTORY_END - dt.timedelta(days=i) for i in range(41, -1, -1)]  # six whole weeks


def _after(days: int) -> dt.date:
    return HISTORY_END + dt.timedelta(days=days)


def generate(day: dt.date, *, intercept: float = 0.0, shift: float = 0.0, labelled: bool = True) -> pd.DataFrame:
    """A day of the example's packages with a weekly pattern: on Saturdays and Sundays fewer
    rows, longer routes and lighter traffic. The label relation (the example's) is the same
    every day; ``intercept`` moves the label rate alone, ``shift`` moves distances, traffic,
    workload and drivers (a covariate shift)."""
    rng = np.random.default_rng(1000 + day.toordinal())
    weekend = day.weekday() >= 5
    n = int(rng.normal(WEEKEND_ROWS if weekend else WEEKDAY_ROWS, 8))
    traffic = np.clip(rng.beta(2.0, 4.0, n) * (45 if weekend else 70) + shift * 30, 0, 100)
    frame = pd.DataFrame({
        "package_id": [f"{day:%Y%m%d}-{i:06d}" for i in range(n)],
        "dispatched_at": pd.Timestamp(day) + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n)), unit="s"),
        "distance_km": np.round(np.clip(rng.gamma(2.0, (25.0 if weekend else 15.0) + shift * 15, n), 0.5, 390), 2),
        "weather": rng.choice(late_delivery.WEATHER, n, p=late_delivery.WEATHER_P),
        "traffic_index": np.round(traffic, 1),
        "warehouse_workload": np.round(np.clip(rng.gamma(3.0, 2.0, n) + shift * 6, 0, 50), 2),
        "drivers_available": np.clip(rng.poisson(60 - shift * 30, n), 0, 500).astype("int64"),
        "package_type": rng.choice(late_delivery.PACKAGE, n, p=late_delivery.PACKAGE_P),
        "delivery_region": rng.choice(late_delivery.REGION, n, p=late_delivery.REGION_P),
    })
    logit = (
        -3.2 + intercept
        + 0.03 * frame["distance_km"]
        + frame["weather"].map(late_delivery.WEATHER_EFFECT)
        + 0.02 * frame["traffic_index"]
        + (np.clip(frame["traffic_index"] - 60, 0, None) / 8.0) ** 1.5
        + 0.15 * frame["warehouse_workload"]
        - 0.03 * frame["drivers_available"]
        + frame["package_type"].map(late_delivery.PACKAGE_EFFECT)
        + frame["delivery_region"].map(late_delivery.REGION_EFFECT)
    )
    frame["is_late"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("float64")
    if not labelled:  # a batch whose labels have not come yet
        frame["is_late"] = np.nan
    return frame


def scenario_spec(example_spec: ModelSpec, **sections) -> ModelSpec:
    data = example_spec.model_dump()
    data["training"] = {**data["training"], "window_days": 42, "validation_days": 2, "holdout_days": 2,
                        "min_rows": 1000, "reference_rows": 8000, "early_stopping_rounds": 10,
                        "holdout_min_rows": None,  # sized from the volume
                        "max_latency_ms_per_1k_rows": 10_000,
                        "xgboost": {"n_estimators": 80, "max_depth": 4, "learning_rate": 0.2, "tree_method": "hist"}}
    data["promotion"] = {**data["promotion"], "floor": 0.6}
    data["retraining"] = {**data["retraining"], "drift_days_required": 3, "min_rows": 500, "cooldown_days": 14,
                          "label_days_required": 3}
    for key, value in sections.items():
        data[key] = {**data[key], **value}
    return ModelSpec.model_validate(data)


@pytest.fixture(scope="module")
def world(tmp_path_factory, example_spec_module):
    base = tmp_path_factory.mktemp("retraining-scenarios")
    with isolated_stores(base):
        from mlops_lifecycle import training

        spec = scenario_spec(example_spec_module)
        for day in HISTORY:
            lake.write_parquet(lake.data_file(spec.name, "validated", day), generate(day))
        window = training.assemble_window(spec, HISTORY_END)
        trained = training.train_and_register(spec, window, trigger={"reason": "test", "by": "pytest"})
        decision = training.compare_and_promote(spec, trained, actor="pytest")
        assert decision["outcome"] == "promoted", decision
        yield {"spec": spec, "window": window, "trained": trained, "version": trained["version"]}


@pytest.fixture(scope="module")
def example_spec_module() -> ModelSpec:
    from mlops_lifecycle.spec import load_spec

    return load_spec(Path(__file__).resolve().parents[2] / "dags" / "specs" / "late_delivery.yaml")


def play(spec: ModelSpec, version: str, days: list[dt.date], **generated) -> list[dict]:
    """Run each day through scoring, the drift check and the retraining decision."""
    from mlops_lifecycle import monitoring, scoring

    decisions = []
    for day in days:
        lake.write_parquet(lake.data_file(spec.name, "validated", day), generate(day, **generated))
        scoring.materialize_features(spec, day)
        scoring.score_partition(spec, day, version=version, airflow_run_id=f"pytest-{day}")
        check = monitoring.check_drift(spec, day, version=version)
        decisions.append(monitoring.decide_retraining(spec, day, check, run_id=f"pytest-{day}") | {"check": check})
    return decisions


def requests_between(spec: ModelSpec, first: dt.date, last: dt.date) -> list[dict]:
    return [e for e in lake.events(spec.name, "retrain_requests") if first.isoformat() <= e["ds"] <= last.isoformat()]


def drift_alerts_between(spec: ModelSpec, first: dt.date, last: dt.date) -> list[dict]:
    from mlops_lifecycle import alerts

    return [a for a in alerts.read_alerts(spec.name, "drift") if first.isoformat() <= a["details"]["ds"] <= last.isoformat()]


def test_the_champion_records_what_monitoring_expects_and_its_holdout_reached_its_rows(world):
    from mlops_lifecycle import monitoring, registry

    spec, trained = world["spec"], world["trained"]
    # Auto-sized: 2000 rows (a quarter of the window holds more), found by taking more days back.
    assert trained["holdout_min_rows"] == 2000 and trained["holdout_rows"] >= 2000
    first, last = (dt.date.fromisoformat(d) for d in trained["split"]["holdout"])
    assert (last - first).days + 1 > spec.training.holdout_days
    mv = registry.get_version(spec, world["version"])
    assert mv.tags["holdout.rows"] == str(trained["holdout_rows"]) and mv.tags["holdout.min_rows"] == "2000"
    assert float(mv.tags["expected.std_error"]) > 0 and mv.tags["expected.metric"] == "roc_auc"
    assert float(mv.tags["expected.between_day_sd"]) >= 0
    expectation = monitoring.expectation_of(spec, world["version"])
    weekend = expectation["label_rate"]["by_weekday"]
    assert set(weekend) == {str(d) for d in range(7)}
    importance = expectation["importance"]
    assert set(importance) <= set(spec.feature_names) and abs(sum(importance.values()) - 1) < 1e-9
    # The reference covers whole weeks, every weekday, and only out-of-sample rows carry a score.
    reference = monitoring.reference_sample(spec, world["version"])
    assert pd.to_datetime(reference["reference_ds"]).dt.weekday.nunique() == 7
    scored = reference[reference["prediction"].notna()]
    assert 0 < len(scored) < len(reference)
    assert scored["reference_ds"].min() >= trained["split"]["validation"][0]


def test_a_weekly_pattern_with_the_same_label_relation_asks_for_no_retraining_in_eight_weeks(world):
    spec = world["spec"]
    days = [_after(i) for i in range(1, 57)]
    decisions = play(spec, world["version"], days)
    assert requests_between(spec, days[0], days[-1]) == [], [d["reason"] for d in decisions if d["retrain"]]
    assert drift_alerts_between(spec, days[0], days[-1]) == []
    weekends = [d["check"] for d, day in zip(decisions, days, strict=True) if day.weekday() >= 5]
    assert not any(c["dataset_drift"] for c in weekends)
    assert all(d["check"]["concept"]["labelled_rows"] >= 200 for d in decisions)


def test_the_weekday_reference_is_what_keeps_weekends_calm(world):
    """Control: the same Saturday against the whole reference (every weekday) drifts."""
    from mlops_lifecycle import drift, monitoring

    spec, version = world["spec"], world["version"]
    saturday = _after(90 + (5 - _after(90).weekday()) % 7)
    frame = generate(saturday)[spec.drift_columns]
    reference = monitoring.reference_sample(spec, version)
    importance = monitoring.expectation_of(spec, version)["importance"]
    same = monitoring.reference_for_day(spec, reference, saturday)
    assert pd.to_datetime(same["reference_ds"]).dt.weekday.eq(5).all()
    calm = drift.compute_drift(spec, frame, same[spec.drift_columns], importance=importance)
    whole = drift.compute_drift(spec, frame, reference[spec.drift_columns], importance=importance)
    assert not calm["dataset_drift"] and whole["dataset_drift"], (calm["drift_share"], whole["drift_share"])
    assert "distance_km" in whole["drifted_columns"] + whole["watched_drifted"]


def test_a_label_rate_shift_with_stable_features_asks_once_on_the_day_the_spec_says(world):
    spec = world["spec"]
    need = spec.retraining.label_days_required
    calm = [_after(100 + i) for i in range(4)]
    shifted = [_after(104 + i) for i in range(8)]
    play(spec, world["version"], calm)
    decisions = play(spec, world["version"], shifted, intercept=1.2)
    requested = requests_between(spec, calm[0], shifted[-1])
    assert [r["ds"] for r in requested] == [shifted[need - 1].isoformat()], [d["reason"] for d in decisions]
    request = requested[0]
    assert request["reason"] == "label_shift" and f"on {need} consecutive labelled day(s)" in request["detail"]
    rate = request["concept"]["label_rate"]
    assert rate["observed"] > rate["expected"] + 3 * rate["std_error"]
    assert not any(d["check"]["dataset_drift"] for d in decisions), "the features did not move"
    assert [d["reason"] for d in decisions[need:]] == ["cooldown: retraining was requested on "
                                                       f"{shifted[need - 1]} (cooldown 14 days)"] * (8 - need)
    assert len(drift_alerts_between(spec, calm[0], shifted[-1])) == 1, "one alert for the episode"


def test_drifting_watch_only_columns_do_not_trigger_and_counted_they_do_once_with_one_alert(world):
    spec, version = world["spec"], world["version"]
    moved = ["distance_km", "traffic_index", "warehouse_workload", "drivers_available"]
    watching = spec.model_copy(update={"drift": spec.drift.model_copy(update={"watch_only": moved})})
    days = [_after(130 + i) for i in range(6)]
    decisions = play(watching, version, days, shift=1.0, labelled=False)
    assert requests_between(spec, days[0], days[-1]) == [] and drift_alerts_between(spec, days[0], days[-1]) == []
    for d in decisions:
        assert set(d["check"]["drifted_columns"]) & set(moved) == set() and d["check"]["drift_share"] < 0.3
    summary = lake.read_json(lake.report_dir(spec.name, "drift", days[-1]) / "summary.json")
    assert set(summary["watched_drifted"]) == set(moved), "watched columns are still reported"

    # Control: the same days with the columns counted. Weighted by importance they are most of the model.
    counted = play(spec, version, days, shift=1.0, labelled=False)
    summary = lake.read_json(lake.report_dir(spec.name, "drift", days[0]) / "summary.json")
    assert summary["weighted_by"] == "importance" and summary["drift_share"] >= spec.drift.drift_share
    assert [r["ds"] for r in requests_between(spec, days[0], days[-1])] == [days[2].isoformat()]
    assert requests_between(spec, days[0], days[-1])[0]["reason"] == "data_drift"
    alerts = drift_alerts_between(spec, days[0], days[-1])
    # Paged once, on the day the episode asked for retraining (its third drifted day), never again in it.
    assert len(alerts) == 1 and alerts[0]["details"]["ds"] == days[2].isoformat(), alerts
    assert alerts[0]["details"]["episode_start"] == days[0].isoformat()
    assert all(d["episode_start"] == days[0].isoformat() for d in counted)


def test_a_comparison_on_a_holdout_too_small_to_decide_says_so_and_keeps_the_champion(world):
    import mlflow

    from mlops_lifecycle import registry, training

    spec = world["spec"]
    greedy = spec.model_copy(update={"training": spec.training.model_copy(update={"holdout_min_rows": 1_000_000})})
    trained = training.train_and_register(greedy, world["window"], trigger={"reason": "test", "by": "pytest"})
    # It took every day it could (a quarter of the window) and still fell short.
    assert trained["holdout_min_rows"] == 1_000_000 and trained["holdout_rows"] < 1_000_000
    first, last = (dt.date.fromisoformat(d) for d in trained["split"]["holdout"])
    assert (last - first).days + 1 == spec.training.window_days // 4
    out = training.compare_and_promote(greedy, trained, actor="pytest")
    assert out["outcome"] == "rejected"
    assert any(r.startswith("too small to decide") and "the champion stays" in r for r in out["reasons"]), out["reasons"]
    assert out["holdout"]["too_small_to_decide"] is True and out["holdout"]["min_detectable_gain"] > 0
    assert str(registry.champion(spec).version) == world["version"]
    mv = registry.get_version(spec, trained["version"])
    assert mv.tags["status"] == "rejected" and "too small to decide" in mv.tags["rejection_reason"]
    assert mv.tags["promotion.too_small_to_decide"] == "true"
    assert float(mv.tags["promotion.min_detectable_gain"]) == pytest.approx(out["holdout"]["min_detectable_gain"], abs=1e-6)
    assert mlflow.get_run(trained["run_id"]).data.tags["promotion.holdout_rows"] == str(trained["holdout_rows"])


def test_a_weekly_shape_of_the_error_is_expected_per_weekday_not_taken_for_a_worse_model(example_spec_module):
    """A regression's error follows the level of its target: Saturdays (twice the demand,
    twice the error) get twice the expected error, so a normal Saturday is not concept drift."""
    from mlops_lifecycle import training

    spec = scenario_spec(example_spec_module)
    spec = ModelSpec.model_validate({**spec.model_dump(), "target": {"column": spec.target.column,
                                                                     "task": "regression"},
                                     "promotion": {**spec.promotion.model_dump(), "metric": "rmse"}})
    rng = np.random.default_rng(7)
    days = pd.date_range("2026-03-02", periods=28, freq="D")  # four whole weeks, Monday first
    times = np.repeat(days, 100)
    level = np.where(times.weekday == 5, 2.0, 1.0)
    y = 100 * level
    frame = pd.DataFrame({spec.event_time: times, spec.target.column: y + rng.normal(0, 10, len(y)) * level})
    factors = training.metric_by_weekday(spec, frame, y)
    assert set(factors) == {str(d) for d in range(7)}
    saturday, others = factors["5"], [factors[str(d)] for d in range(7) if d != 5]
    assert saturday == pytest.approx(2 * np.mean(others), rel=0.15)
    assert max(others) < 1.0 < saturday
