"""Validation with severities, categoricals of any cardinality, and a scaffold that fits a
seasonal feed (issue 12, part 1).

Real Great Expectations, XGBoost and MLflow run every check here. The feed is generated
(``tests/seasonal_feed.py``): ~900 rows a day, a 94-level category, clock/hour/weekday/
month columns, weather with a strong seasonal rise that a join leaves partly empty.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import seasonal_feed as feed

from mlops_lifecycle import features, scaffold, validation, volume

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 2, 10)
WINTER = dt.date(2026, 1, 1)  # the sample: two winter months
SUMMER = [dt.date(2026, 6, 20), dt.date(2026, 7, 15), dt.date(2026, 8, 1)]


def _feature(spec, name, **changes):
    """The spec with one feature changed."""
    feats = [f.model_copy(update=changes) if f.name == name else f for f in spec.features]
    return spec.model_copy(update={"features": feats})


@pytest.fixture
def clean(example_spec):
    from mlops_lifecycle.examples import late_delivery

    return late_delivery.generate_day(DAY, rows=300)


# ---- severities on the example spec ------------------------------------------------------------


def test_warning_checks_use_gx_severity_and_blocking_ones_stay_critical(example_spec):
    spec = _feature(example_spec, "weather", max_unknown_fraction=0.05)
    spec = _feature(spec, "traffic_index", plausible_min=10.0, plausible_max=90.0)
    suite = validation.build_suite(spec, day=DAY)
    severity = {e.meta["check"]: str(e.severity.value) for e in suite.expectations}
    assert severity["weather: categories never seen before (scored as unknown)"] == "warning"
    assert severity["weather in the declared categories (at most 5.0% of rows unseen)"] == "critical"
    assert severity["traffic_index within the plausible [10.0, 90.0] (outside warns)"] == "warning"
    assert severity["schema: exactly the spec's columns"] == "critical"
    # The example spec itself (no warning fields) is exactly as strict as before: every check blocks.
    assert {str(e.severity.value) for e in validation.build_suite(example_spec, day=DAY).expectations} == {"critical"}


def test_an_unseen_category_within_the_tolerated_share_warns_and_beyond_it_blocks(example_spec, clean):
    spec = _feature(example_spec, "weather", max_unknown_fraction=0.05)
    few = clean.copy()
    few.loc[few.index[[4]], "weather"] = "hail"  # 1 of 300 rows
    result = validation.validate_frame(spec, few, day=DAY)
    assert result["success"] and result["failed"] == 0 and result["warned"] == 1
    warned = result["warnings"][0]
    assert warned["check"] == "weather: categories never seen before (scored as unknown)" and warned["examples"] == ["hail"]
    assert "~ weather: categories never seen before" in validation.warning_message("b", result)

    many = clean.copy()
    many.loc[many.index[:60], "weather"] = "hail"  # 20 %: a changed feed
    result = validation.validate_frame(spec, many, day=DAY)
    assert not result["success"]
    assert [f["check"] for f in result["failures"]] == ["weather in the declared categories (at most 5.0% of rows unseen)"]


def test_plausible_band_warns_and_impossible_limits_block(example_spec, clean):
    spec = _feature(example_spec, "traffic_index", plausible_min=0.0, plausible_max=50.0)
    assert spec.feature("traffic_index").max == 100  # the example's impossible limit
    beyond = clean.assign(traffic_index=clean["traffic_index"].clip(upper=49.0))
    beyond.loc[beyond.index[[1, 2]], "traffic_index"] = 77.0
    result = validation.validate_frame(spec, beyond, day=DAY)
    assert result["success"] and [w["check"] for w in result["warnings"]] == [
        "traffic_index within the plausible [0.0, 50.0] (outside warns)"]
    beyond.loc[beyond.index[3], "traffic_index"] = 250.0
    result = validation.validate_frame(spec, beyond, day=DAY)
    assert not result["success"] and result["failures"][0]["check"] == "traffic_index within [0.0, 100.0]"


def test_nulls_between_the_history_and_the_blocking_share_warn(example_spec, clean):
    spec = _feature(example_spec, "traffic_index", nullable=True, max_null_fraction=0.25, warn_null_fraction=0.05)
    some = clean.copy()
    some.loc[some.index[: int(0.075 * len(some))], "traffic_index"] = np.nan  # a join left 7.5 % empty
    result = validation.validate_frame(spec, some, day=DAY)
    assert result["success"] and result["warnings"][0]["check"].startswith("traffic_index at most 5% null")
    some.loc[some.index[: len(some) // 2], "traffic_index"] = np.nan
    result = validation.validate_frame(spec, some, day=DAY)
    assert not result["success"] and result["failures"][0]["check"] == "traffic_index at most 25% null"


def test_constant_column_and_volume_spike_warn_when_the_spec_says_so(example_spec, clean):
    v = example_spec.validation.model_copy(update={"on_constant_column": "warn", "on_volume_spike": "warn"})
    spec = example_spec.model_copy(update={"validation": v})
    bounds = {"median": 100, "days": ["a", "b"], "min": 30, "max": 300}
    stuck = clean.assign(package_type="standard")
    result = validation.validate_frame(spec, stuck, day=DAY, volume={**bounds, "max": 200})
    assert result["success"]
    assert {w["check"] for w in result["warnings"]} == {
        "package_type is not constant", "volume at most 3.0 x the median (100 rows, so at most 200) of the 2 previous "
        "validated day(s)"}
    collapsed = validation.validate_frame(spec, clean.iloc[:150], day=DAY,
                                          volume={"median": 1000, "days": ["a"], "min": 300, "max": 3000})
    assert not collapsed["success"]
    assert [f["check"] for f in collapsed["failures"]] == [
        "volume at least 0.3 x the median (1000 rows, so at least 300) of the 1 previous validated day(s)"]


def test_a_spec_with_a_plausible_band_outside_its_limits_is_refused():
    from pydantic import ValidationError

    from mlops_lifecycle.spec import FeatureSpec

    with pytest.raises(ValidationError, match="plausible_max 120.0 is above max 100.0"):
        FeatureSpec(name="hum", type="float", min=0, max=100, plausible_max=120)
    with pytest.raises(ValidationError, match="apply to categories only"):
        FeatureSpec(name="hum", type="float", max_levels=3)


def test_capped_category_sends_rare_and_unseen_levels_to_the_unknown_level(example_spec):
    from mlops_lifecycle.spec import FeatureSpec

    dest = FeatureSpec(name="weather", type="category", categories=["clear", "rain", "fog", "storm"], max_levels=2,
                       max_unknown_fraction=0.05)
    spec = example_spec.model_copy(update={"features": [dest, *[f for f in example_spec.features
                                                                if f.name != "weather"]]})
    cols = features.feature_columns(spec)
    assert cols[:3] == ["weather__clear", "weather__rain", "weather__other"]
    frame = pd.DataFrame({"weather": ["clear", "rain", "fog", "volcano", None]})
    for f in spec.features[1:]:
        frame[f.name] = 1.0 if f.type != "category" else f.categories[0]
    m = features.build_matrix(spec, frame)
    np.testing.assert_array_equal(m[:, :3], [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]])


# ---- scaffolding what real feeds hold ------------------------------------------------------------


@pytest.mark.parametrize("name,values,limits", [
    ("dep_time", [5, 100, 859, 1230, 1745, 2359] * 10, (0, 2359)),
    ("arr_hhmm", [0, 130, 2400, 1015] * 10, (0, 2400)),
    ("hour", list(range(1, 24)), (0, 23)),
    ("weekday", [0, 1, 2, 3, 4, 5, 6], (0, 6)),
    ("day_of_week", [1, 2, 3, 4, 5, 6, 7], (1, 7)),
    ("month", [1, 2], (1, 12)),
    ("cloud_share", [0.0, 0.1, 0.32], (0, 1)),
    ("humidity", [12.0, 55.0, 97.0], (0, 100)),
])
def test_clock_hour_weekday_month_and_scale_columns_get_their_true_limits(name, values, limits):
    integer = all(float(v).is_integer() for v in values)
    entries, note = scaffold.number_bands(name, pd.Series(values), integer=integer)
    assert (entries["min"], entries["max"]) == limits, note
    assert entries.get("plausible_max", entries["max"]) <= limits[1]
    assert f"outside {limits[0]}..{limits[1]} is impossible" in note
    assert "2731" not in note and "27" != str(entries["max"])


def test_the_comment_says_the_value_written_for_a_range_below_one():
    """The old scaffold wrote 'max kept at 1' above max: 0.384."""
    entries, note = scaffold.number_bands("rain_mm", pd.Series([0.0, 0.1, 0.32]), integer=False)
    assert entries["plausible_max"] == 0.384 and f"plausible 0..{entries['plausible_max']}" in note
    assert f"above {entries['max']}" in note and "kept at 1" not in note


def test_row_bounds_never_reject_a_day_of_their_history():
    counts = [24, 23, 24, 8, 22, 24, 24, 23, 24, 60, 24, 3]
    b = volume.row_bounds(counts)
    assert b.min_rows <= min(counts)
    for i in range(1, len(counts)):
        median = float(np.median(counts[max(0, i - 7):i]))
        assert np.floor(median * b.volume_min_ratio) <= counts[i] <= np.ceil(median * b.volume_max_ratio), i
    assert volume.row_bounds([900] * 30) == volume.RowBounds(450, 0.3, 3.0, 1.0, 1.0, 1)


@pytest.fixture(scope="module")
def winter(tmp_path_factory):
    """A spec scaffolded, with no edits, from two winter months of the generated feed (a CSV)."""
    base = tmp_path_factory.mktemp("winter")
    sample = feed.generate_days(WINTER, 59)
    path = base / "flights.csv"
    sample.to_csv(path, index=False)
    made = scaffold.new_model("flights", path, "delayed", specs_dir=base / "specs")
    return made, sample


def test_a_94_level_text_column_is_a_feature_with_an_unknown_level(winter):
    made, sample = winter
    dest = made.spec.feature("dest")
    assert dest.type == "category" and len(dest.categories) == 94 == sample["dest"].nunique()
    assert 1 <= dest.max_levels < 94 and dest.max_unknown_fraction == scaffold.UNKNOWN_SHARE
    counts = sample["dest"].value_counts()
    listed = [int(counts[c]) for c in dest.categories]
    assert listed == sorted(listed, reverse=True), "most frequent first"
    assert all(counts[c] >= scaffold.LEVEL_MIN_SHARE * len(sample) for c in dest.categories[: dest.max_levels])
    assert "dest__other" in features.feature_columns(made.spec)


def test_an_id_like_text_column_is_refused_and_a_repeating_one_is_not(tmp_path, data_dir):
    sample = feed.generate_days(WINTER, 4, rows=200)
    sample["ticket_ref"] = [f"T{i:06d}" for i in range(len(sample))]  # unique per row
    sample["customer_key"] = [f"C{i % 300:04d}" for i in range(len(sample))]  # repeats, but a key with 300 values
    sample.to_parquet(tmp_path / "s.parquet", index=False)
    with pytest.raises(scaffold.ScaffoldError) as err:
        scaffold.new_model("flights", tmp_path / "s.parquet", "delayed", entity_id="flight_id",
                           specs_dir=tmp_path / "specs")
    msg = str(err.value)
    assert "ticket_ref is text with 800 distinct values in 800 rows (100% of its values are distinct)" in msg
    assert "customer_key is text with 300 distinct values in 800 rows (it is named like a key" in msg
    assert "dest" not in msg and "carrier" not in msg


def test_the_winter_scaffold_gives_clock_columns_true_limits_and_marks_calendar_columns(winter):
    made, _ = winter
    spec = made.spec
    assert (spec.feature("dep_hhmm").min, spec.feature("dep_hhmm").max) == (0, 2359)
    assert (spec.feature("dep_hour").min, spec.feature("dep_hour").max) == (0, 23)
    assert (spec.feature("weekday").min, spec.feature("weekday").max) == (0, 6)
    assert (spec.feature("month").min, spec.feature("month").max) == (1, 12)
    assert spec.feature("weekday").may_be_constant and spec.feature("month").may_be_constant
    temp = spec.feature("temp")
    assert temp.plausible_max < 30 < temp.max, "winter's plausible band; the impossible limit far beyond"
    assert spec.validation.on_constant_column == "warn"
    text = made.spec_path.read_text()
    assert "# observed 500..2359; a clock time HHMM: outside 0..2359 is impossible (blocks)" in text


def test_the_scaffolds_claim_holds_for_every_day_of_the_sample(winter):
    """'The sample passed all checks': true of each day as the daily DAG validates it, with
    the volume check against the days before (not only of the sample as a whole)."""
    made, sample = winter
    spec = made.spec
    assert made.sample_check["success"] and made.sample_check["days"] == 59
    days = sample["departed_at"].dt.date
    counts: list[int] = []
    for day in sorted(set(days))[::3] + [max(days)]:  # every third day (GX costs ~1 s a day) and the last
        before = [int((days == d).sum()) for d in sorted(set(days)) if d < day][-7:]
        median = float(np.median(before)) if before else None
        bounds = None if median is None else {
            "median": median, "days": ["x"] * len(before), "min": int(np.floor(median * spec.validation.volume_min_ratio)),
            "max": int(np.ceil(median * spec.validation.volume_max_ratio))}
        result = validation.validate_frame(spec, sample[days == day].reset_index(drop=True), day=day, volume=bounds)
        assert result["success"], validation.failure_message(str(day), result)
        counts.append(result["rows"])
    assert spec.validation.min_rows <= min(counts)


def test_summer_days_pass_the_winter_scaffold_with_warnings(winter):
    made, _ = winter
    spec = made.spec
    for day in SUMMER:
        batch = feed.generate_day(day)
        result = validation.validate_frame(spec, batch, day=day)
        assert result["success"], validation.failure_message(str(day), result)
        assert any(w["check"].startswith("temp within the plausible") for w in result["warnings"]), day
    # A join that left 7.5 % of the day's weather empty: a warning, not a quarantine.
    joined = validation.validate_frame(spec, feed.generate_day(SUMMER[0], weather_nulls=0.075), day=SUMMER[0])
    assert joined["success"] and any(w["check"].startswith("temp at most") for w in joined["warnings"])


def test_impossible_values_still_block_the_winter_scaffold(winter):
    made, _ = winter
    day = SUMMER[1]
    for column, value, check in [("dep_hhmm", 2731, "dep_hhmm within [0.0, 2359.0]"),
                                 ("hum", 130.0, "hum within [0.0, 100.0]"),
                                 ("wind", -4.0, "wind within [0.0, ")]:
        batch = feed.generate_day(day)
        batch.loc[batch.index[7], column] = value
        result = validation.validate_frame(made.spec, batch, day=day)
        assert not result["success"] and result["failures"][0]["check"].startswith(check), column


def test_a_new_category_in_a_tenth_of_a_percent_of_rows_is_scored_with_a_warning(winter, tmp_path, monkeypatch):
    """Through the real stages: ingest, validate (a warning and its alert), features with the
    unknown level, and scoring by a champion trained on the sample's last days."""
    from bad_batches import isolated_stores

    from mlops_lifecycle import alerts, ingestion, lake, scoring, training
    from mlops_lifecycle.spec import load_spec

    made, _ = winter
    base = tmp_path / "stores"
    with isolated_stores(base):
        spec = load_spec(made.spec_path)
        spec = spec.model_copy(update={"training": spec.training.model_copy(
            update={"max_latency_ms_per_1k_rows": 10_000, "min_rows": 1000})})
        history = [WINTER + dt.timedelta(days=i) for i in range(53, 59)]
        for day in history:
            lake.write_bytes(Path(ingestion.source_path(spec, day)), feed.generate_day(day).to_csv(index=False).encode())
            ingestion.ingest(spec, day)
            validation.validate_partition(spec, day, docs=False)
        trained = training.train_and_register(spec, training.assemble_window(spec, history[-1]),
                                              trigger={"reason": "test", "by": "pytest"})
        assert training.compare_and_promote(spec, trained, actor="pytest")["outcome"] == "promoted"

        day = history[-1] + dt.timedelta(days=1)
        batch = feed.generate_day(day, new_levels={"Z99": 1})  # one row of 900: 0.1 %
        lake.write_bytes(Path(ingestion.source_path(spec, day)), batch.to_csv(index=False).encode())
        ingestion.ingest(spec, day)
        summary = validation.validate_partition(spec, day, docs=False)
        assert summary["warned"] == 1 and summary["warnings"] == ["dest: categories never seen before (scored as unknown)"]
        report = lake.read_json(lake.report_dir(spec.name, "validation", day) / "result.json")
        assert report["success"] and report["warnings"][0]["examples"] == ["Z99"]
        alert = alerts.read_alerts(spec.name, "validation_warning")[-1]
        assert alert["details"]["ds"] == day.isoformat() and "Z99" in alert["message"]

        feats = scoring.materialize_features(spec, day)
        scored = scoring.score_partition(spec, day, version=scoring.champion_info(spec)["version"],
                                         airflow_run_id="pytest")
        predictions = pd.read_parquet(scored["predictions_path"])
        assert len(predictions) == len(batch) and scored["rows"] == len(batch)
        new_row = batch.loc[batch["dest"] == "Z99", "flight_id"].item()
        assert new_row in set(predictions[spec.entity_id])
        matrix = features.build_matrix(spec, batch[batch["dest"] == "Z99"])
        cols = features.feature_columns(spec)
        assert matrix[0, cols.index("dest__other")] == 1.0 and feats["rows"] == len(batch)

        # The next day: the same new level (an episode going on: in the day's result, no new alert)
        # and a temperature beyond the winter's plausible band (a new warning: an alert), scored.
        later = day + dt.timedelta(days=1)
        warm = feed.generate_day(later, new_levels={"Z99": 1})
        warm.loc[warm.index[3], "temp"] = spec.feature("temp").plausible_max + 8
        lake.write_bytes(Path(ingestion.source_path(spec, later)), warm.to_csv(index=False).encode())
        ingestion.ingest(spec, later)
        summary = validation.validate_partition(spec, later, docs=False)
        temp_check = next(w for w in summary["warnings"] if w.startswith("temp within the plausible"))
        assert summary["warned"] == 2
        raised = alerts.read_alerts(spec.name, "validation_warning")
        assert [(a["details"]["ds"], a["details"]["new"]) for a in raised] == [
            (day.isoformat(), ["dest: categories never seen before (scored as unknown)"]), (later.isoformat(), [temp_check])]
        scoring.materialize_features(spec, later)
        scored = scoring.score_partition(spec, later, version=scoring.champion_info(spec)["version"],
                                         airflow_run_id="pytest")
        assert scored["rows"] == len(warm)


def test_the_run_days_table_shows_warnings(data_dir, example_spec):
    from mlops_lifecycle import lake, replay

    lake.write_json(lake.report_dir(example_spec.name, "validation", DAY) / "result.json",
                    {"rows": 900, "success": True, "failed": 0, "warned": 2,
                     "warnings": [{"check": "temp within the plausible [0, 30] (outside warns)"}, {"check": "x"}]})
    row = replay.day_row(example_spec, DAY, replay.DayResult(ds=DAY.isoformat(), daily_state="success", tasks={}))
    assert row["validation"] == "passed, 2 warnings" and row["warnings"][0].startswith("temp within the plausible")


def test_make_new_model_passes_exclude_to_the_cli():
    import sys

    out = subprocess.run(["make", "-n", "new-model", "NAME=m", "SAMPLE=s.csv", "TARGET=y", "EXCLUDE=casual,registered",
                          f"VENV={sys.prefix}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    line = next(x for x in out.splitlines() if "new-model" in x and "--name" in x)
    assert re.search(r"--exclude \"?casual\"? --exclude \"?registered\"?", line), line


def test_messy_columns_of_a_csv_feed_are_kept_not_refused(tmp_path, data_dir):
    """A weather field the join never filled, and 'NA' written for a missing number: the spec
    declares them (a nullable feature, source.null_values) instead of asking for hand edits."""
    sample = feed.generate_days(WINTER, 4, rows=200)
    sample["snow_cm"] = np.nan
    sample["visibility"] = np.round(np.random.default_rng(1).uniform(1, 10, len(sample)), 1).astype(object)
    sample.loc[sample.index[::50], "visibility"] = "NA"
    sample.to_csv(tmp_path / "s.csv", index=False)
    made = scaffold.new_model("flights", tmp_path / "s.csv", "delayed", specs_dir=tmp_path / "specs")
    spec = made.spec
    assert spec.source.null_values == ["", "NA"] and spec.feature("visibility").type == "float"
    snow = spec.feature("snow_cm")
    assert snow.type == "float" and snow.max_null_fraction == 1.0 and snow.min is None
    assert any(w.startswith("snow_cm is null in every row of the sample") for w in made.warnings)


def test_an_id_unique_within_each_day_only_can_be_named(tmp_path, data_dir):
    sample = feed.generate_days(WINTER, 3, rows=150)
    sample["seq"] = sample.groupby(sample["departed_at"].dt.date).cumcount().map(lambda i: f"s{i:04d}")
    sample.drop(columns=["flight_id"]).to_parquet(tmp_path / "s.parquet", index=False)
    made = scaffold.new_model("flights", tmp_path / "s.parquet", "delayed", entity_id="seq", specs_dir=tmp_path / "specs")
    assert made.spec.entity_id == "seq" and made.sample_check["success"]
