"""Unit tests of the validation gate and the source reader, on small in-memory batches.

Real Great Expectations runs every suite here; each test names the behaviour it checks.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DAY = dt.date(2026, 2, 10)
EXAMPLE_YAML = Path(__file__).resolve().parents[2] / "dags" / "specs" / "late_delivery.yaml"


@pytest.fixture
def clean(example_spec):
    from mlops_lifecycle.examples import late_delivery

    return late_delivery.generate_day(DAY, rows=150)


def _with_source(spec, **changes):
    return spec.model_copy(update={"source": spec.source.model_copy(update=changes)})


# ---- the suite and its verdicts ------------------------------------------------------------


def test_suite_is_built_from_the_spec(example_spec):
    from mlops_lifecycle import validation

    suite = validation.build_suite(example_spec, day=DAY, volume={"median": 100, "days": ["x"], "min": 30, "max": 300})
    checks = [e.meta["check"] for e in suite.expectations]
    assert checks[0] == "schema: exactly the spec's columns"
    assert any(c.startswith("volume within 0.3..3.0 x the median (100 rows, so 30..300)") for c in checks)
    assert "entity id package_id unique (no duplicates)" in checks
    assert "event times inside the partition 2026-02-10 (UTC)" in checks
    for f in example_spec.features:
        assert f"{f.name} has type {f.type}" in checks and f"{f.name} is not constant" in checks
    assert "weather in the declared categories" in checks and "distance_km within [0.0, 400.0]" in checks


def test_clean_batch_passes_every_check(example_spec, clean):
    from mlops_lifecycle import validation

    result = validation.validate_frame(example_spec, clean, day=DAY)
    assert result["success"], validation.failure_message("clean", result)
    assert result["failed"] == 0 and result["summary"] == []


def test_missing_column_is_named_once_and_its_checks_are_folded(example_spec, clean):
    from mlops_lifecycle import validation

    result = validation.validate_frame(example_spec, clean.drop(columns=["weather"]), day=DAY)
    message = validation.failure_message("batch", result)
    assert "missing ['weather'], unexpected []" in message
    assert "more check(s) could not pass because of missing columns (on weather)" in message
    assert message.count("weather") == 2, message  # the cause, and the folded line


def test_wrong_type_shows_the_offending_values_and_their_rows(example_spec, clean):
    from mlops_lifecycle import validation

    bad = clean.astype({"distance_km": str})
    bad.loc[bad.index[[3, 8]], "distance_km"] = "twenty five"
    result = validation.validate_frame(example_spec, bad, day=DAY)
    typed = next(f for f in result["failures"] if f["check"] == "distance_km has type float")
    assert typed["examples"] == ["twenty five"] and typed["unexpected_count"] == 2
    assert typed["example_ids"] == [clean["package_id"].iloc[3], clean["package_id"].iloc[8]]
    message = validation.failure_message("batch", result)
    assert "because of distance_km has the wrong type" in message  # the range check that could not run


def test_category_column_of_numbers_shows_the_numbers(example_spec, clean):
    from mlops_lifecycle import validation

    bad = clean.assign(weather=np.arange(len(clean)) % 3)
    typed = next(f for f in validation.validate_frame(example_spec, bad, day=DAY)["failures"]
                 if f["check"] == "weather has type category")
    assert typed["observed_dtype"] == "int64" and typed["examples"] == [0, 1, 2]


def test_nulls_are_shown_by_the_rows_that_hold_them(example_spec, clean):
    from mlops_lifecycle import validation

    bad = clean.copy()
    bad.loc[bad.index[[0, 4]], "traffic_index"] = np.nan
    bad.loc[bad.index[[6]], "package_id"] = None
    result = validation.validate_frame(example_spec, bad, day=DAY)
    by_check = {f["check"]: f for f in result["failures"]}
    assert by_check["traffic_index never null"]["example_ids"] == list(clean["package_id"].iloc[[0, 4]])
    assert by_check["entity id package_id present"]["example_ids"] == ["row 7"]


def test_duplicate_rows_are_told_apart_from_shared_ids(example_spec, clean):
    from mlops_lifecycle import validation

    shared = clean.copy()
    shared.loc[shared.index[1], "package_id"] = shared["package_id"].iloc[0]
    check = next(f for f in validation.validate_frame(example_spec, shared, day=DAY)["failures"]
                 if f["expectation"] == "expect_column_values_to_be_unique")
    assert "repeated_rows" not in check

    repeated = pd.concat([clean, clean.iloc[:3]], ignore_index=True)
    result = validation.validate_frame(example_spec, repeated, day=DAY)
    check = next(f for f in result["failures"] if f["expectation"] == "expect_column_values_to_be_unique")
    assert check["repeated_rows"] == 3
    assert "duplicate rows: 3 row(s) repeat an earlier row in full" in validation.failure_message("b", result)


def test_specs_allowing_repeated_ids_still_reject_repeated_rows(example_spec, clean):
    from mlops_lifecycle import validation

    spec = example_spec.model_copy(update={"validation": example_spec.validation.model_copy(
        update={"unique_entity_id": False})})
    shared = clean.copy()
    shared.loc[shared.index[1], "package_id"] = shared["package_id"].iloc[0]
    assert validation.validate_frame(spec, shared, day=DAY)["success"]
    result = validation.validate_frame(spec, pd.concat([clean, clean.iloc[:2]], ignore_index=True), day=DAY)
    assert [f["check"] for f in result["failures"]] == ["no duplicate rows (a row repeated in full)"]


def test_header_only_batch_says_it_has_no_rows(example_spec, clean):
    from mlops_lifecycle import validation

    result = validation.validate_frame(example_spec, clean.iloc[:0], day=DAY)
    message = validation.failure_message("batch", result)
    assert "the batch is empty: a header with 10 column(s) but no rows" in message
    assert "because of no rows" in message
    assert not any(line.startswith("  - distance_km") for line in message.splitlines())


def test_volume_bounds_come_from_recent_validated_days(data_dir, example_spec, clean):
    from mlops_lifecycle import lake, validation

    assert validation.volume_bounds(example_spec, DAY) is None
    for i, rows in enumerate([100, 120, 140]):
        day = DAY - dt.timedelta(days=3 - i)
        lake.write_parquet(lake.data_file(example_spec.name, "validated", day), pd.concat([clean] * 2).iloc[:rows])
        # A report can describe a rejected later attempt: the rows are counted in the partition.
        lake.write_json(lake.report_dir(example_spec.name, "validation", day) / "result.json", {"rows": 7 * rows})
    bounds = validation.volume_bounds(example_spec, DAY)
    assert bounds["median"] == 120 and bounds["min"] == 36 and bounds["max"] == 360


def test_unreadable_source_is_quarantined_with_its_bytes_and_result(data_dir, example_spec, tmp_path):
    from mlops_lifecycle import lake, validation

    src = tmp_path / "day.parquet"
    src.write_bytes(b"not parquet")
    err = validation.record_unreadable(example_spec, DAY, src, "it is text", check="parquet_format",
                                       description="the source file is a Parquet file", examples=["b'not'"])
    qdir = lake.partition_dir(example_spec.name, "quarantine", DAY)
    assert (qdir / "source.parquet").read_bytes() == b"not parquet"
    result = json.loads((qdir / "validation.json").read_text())
    assert result["failures"][0]["expectation"] == "parquet_format"
    assert "the source file is a Parquet file (parquet_format) - it is text; e.g. [\"b'not'\"]" in str(err)
    assert (lake.report_dir(example_spec.name, "validation", DAY) / "result.json").exists()


# ---- the reader: declared dialects are honoured ---------------------------------------------------


def _write(spec, day, data: bytes):
    from mlops_lifecycle import ingestion, lake

    return lake.write_bytes(Path(ingestion.source_path(spec, day)), data)


def test_csv_with_its_declared_delimiter_and_encoding_is_read(data_dir, example_spec, clean):
    from mlops_lifecycle import ingestion

    frame = clean.copy()
    frame.loc[frame.index[0], "weather"] = "Zürich"  # non-ASCII survives the declared encoding
    spec = _with_source(example_spec, path="{data_dir}/in/{ds}.csv", delimiter=";", encoding="latin-1")
    _write(spec, DAY, frame.to_csv(index=False, sep=";").encode("latin-1"))
    read = ingestion.read_source(spec, DAY)
    assert list(read.columns) == list(clean.columns) and read["weather"].iloc[0] == "Zürich"
    assert pd.api.types.is_datetime64_any_dtype(read["dispatched_at"])

    utf16 = _with_source(example_spec, path="{data_dir}/in/{ds}.csv", encoding="utf-16")
    _write(utf16, DAY, clean.to_csv(index=False).encode("utf-16"))
    assert len(ingestion.read_source(utf16, DAY)) == len(clean)


def test_utf8_csv_with_a_byte_order_mark_is_read(data_dir, example_spec, clean):
    from mlops_lifecycle import ingestion

    spec = _with_source(example_spec, path="{data_dir}/in/{ds}.csv")
    _write(spec, DAY, clean.to_csv(index=False).encode("utf-8-sig"))
    assert list(ingestion.read_source(spec, DAY).columns)[0] == "package_id"


def test_undeclared_delimiter_is_rejected_with_the_fix(data_dir, example_spec, clean):
    from mlops_lifecycle import ingestion

    spec = _with_source(example_spec, path="{data_dir}/in/{ds}.csv")
    _write(spec, DAY, clean.to_csv(index=False, sep="|").encode())
    with pytest.raises(ingestion.SourceUnreadable) as raised:
        ingestion.read_source(spec, DAY)
    assert raised.value.check == "csv_delimiter"
    assert "delimited by '|'" in str(raised.value) and "source.delimiter: '|'" in str(raised.value)


def test_wait_for_source_reports_the_file_once_it_is_there(data_dir, example_spec, clean):
    from mlops_lifecycle import ingestion

    path = _write(example_spec, DAY, b"PAR1")
    found = ingestion.wait_for_source(example_spec, DAY, waited_seconds=12.34)
    assert found == {"path": str(path), "bytes": 4, "waited_seconds": 12.3}


def test_spec_rejects_an_unknown_encoding_and_a_long_delimiter(tmp_path):
    import yaml

    from mlops_lifecycle.spec import SpecError, load_spec

    raw = yaml.safe_load(EXAMPLE_YAML.read_text())
    raw["source"].update({"encoding": "klingon-8", "delimiter": ";;"})
    path = tmp_path / "late_delivery.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert "source.encoding" in str(raised.value) and "klingon-8" in str(raised.value)
    assert "source.delimiter" in str(raised.value)


# ---- event times with a time zone ------------------------------------------------------------------


def _zoned(frame, column: str, zone: str, unit: str = "ns"):
    """The same instants (the naive times are UTC) in another zone and unit."""
    return frame.assign(**{column: frame[column].dt.tz_localize("UTC").dt.tz_convert(zone).dt.as_unit(unit)})


@pytest.mark.parametrize("zone,unit", [("UTC", "ns"), ("UTC", "us"), ("Europe/Berlin", "us"),
                                       ("America/New_York", "ms"), ("Asia/Kolkata", "s")])
def test_aware_event_times_of_any_zone_and_unit_pass(example_spec, clean, zone, unit):
    from mlops_lifecycle import validation

    batch = _zoned(clean, example_spec.event_time, zone, unit)
    result = validation.validate_frame(example_spec, batch, day=DAY)
    assert result["success"], validation.failure_message("aware batch", result)
    assert result["event_time_zone"] == zone
    assert str(batch[example_spec.event_time].dtype) == f"datetime64[{unit}, {zone}]", "the caller's frame is kept"
    canonical, _ = validation.canonical_event_time(example_spec, batch)
    assert (canonical[example_spec.event_time] == clean[example_spec.event_time]).all(), "same instants, in UTC"


def test_the_partition_check_compares_aware_times_in_utc(example_spec, clean):
    from mlops_lifecycle import validation

    t = example_spec.event_time
    # Berlin wall-clock times of the day: the first hour of it is still the day before in UTC.
    berlin = clean.assign(**{t: clean[t].dt.tz_localize("Europe/Berlin")})
    result = validation.validate_frame(example_spec, berlin, day=DAY)
    assert [f["check"] for f in result["failures"]] == [f"event times inside the partition {DAY} (UTC)"]
    early = clean[t][clean[t] < pd.Timestamp(DAY) + pd.Timedelta(hours=1)]
    failure = result["failures"][0]
    assert failure["unexpected_count"] == len(early)
    assert failure["examples"][0] == str(early.iloc[0] - pd.Timedelta(hours=1)), "shown in UTC"
    # Tokyo times whose local date is the next day, but which fall inside the UTC day, pass.
    late = clean.assign(**{t: pd.Timestamp(DAY) + pd.Timedelta(hours=23) + (clean[t] - pd.Timestamp(DAY)) / 24})
    tokyo = _zoned(late, t, "Asia/Tokyo")
    assert (tokyo[t].dt.date > DAY).any()
    assert validation.validate_frame(example_spec, tokyo, day=DAY)["success"]


def test_event_times_of_the_wrong_kind_are_still_rejected(example_spec, clean):
    from mlops_lifecycle import validation

    t = example_spec.event_time
    epoch = clean.assign(**{t: clean[t].astype("int64") // 10**9})
    mixed = clean.assign(**{t: pd.Series([v.tz_localize("UTC") if i % 2 else v for i, v in enumerate(clean[t])],
                                         dtype=object, index=clean.index)})
    for batch, shown in [(epoch, "column dtype is int64"),
                         (mixed, "mixes times with a time zone and times without one")]:
        result = validation.validate_frame(example_spec, batch, day=DAY)
        message = validation.failure_message("batch", result)
        assert f"event time {t} is a timestamp (expect_column_values_to_be_in_type_list)" in message
        assert shown in message and "observed" not in message, message


AWARE_DELIVERIES = {  # one day each: how an upstream system might write its event times
    "parquet, Europe/Berlin, us": ("parquet", lambda s: s.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
                                   .dt.as_unit("us")),
    "parquet, UTC, ms": ("parquet", lambda s: s.dt.tz_localize("UTC").dt.as_unit("ms")),
    "csv, ISO ...Z": ("csv", lambda s: s.dt.strftime("%Y-%m-%dT%H:%M:%SZ")),
    "csv, offsets +01:00/+02:00 (DST day)": ("csv", lambda s: s.dt.tz_localize("UTC")
                                            .dt.tz_convert("Europe/Berlin").map(pd.Timestamp.isoformat)),
    "parquet, naive": ("parquet", lambda s: s),
}


def test_aware_batches_go_through_ingest_validate_features_and_training(data_dir, tmp_path):
    """CSV and Parquet days with zoned event times (and a naive one) through the real
    stages; the validated days concatenate into a training window that splits by UTC day."""
    from bad_batches import ROWS, BadBatch, csv_variant, deliver, write_small_spec

    from mlops_lifecycle import ingestion, lake, scoring, training, validation
    from mlops_lifecycle.examples import late_delivery
    from mlops_lifecycle.spec import load_spec

    parquet = load_spec(write_small_spec(tmp_path / "specs"))
    t = parquet.event_time
    days = [dt.date(2026, 3, 26) + dt.timedelta(days=i) for i in range(len(AWARE_DELIVERIES))]
    for day, (name, (fmt, write)) in zip(days, AWARE_DELIVERIES.items(), strict=True):
        spec = csv_variant(parquet) if fmt == "csv" else parquet
        clean = late_delivery.generate_day(day, rows=ROWS)
        path = deliver(spec, BadBatch(name, lambda f, w=write: f.assign(**{t: w(f[t])}), "", (), fmt=fmt), day, clean)
        if "DST" in name:  # 2026-03-29: Berlin moves from +01:00 to +02:00 at 01:00 UTC
            text = path.read_text()
            assert day == dt.date(2026, 3, 29) and "+01:00" in text and "+02:00" in text
        raw = ingestion.ingest(spec, day)
        assert pd.api.types.is_datetime64_any_dtype(pd.read_parquet(raw["raw_path"])[t]), name
        assert validation.validate_partition(spec, day, docs=False)["rows"] == len(clean), name
        validated = pd.read_parquet(lake.data_file(spec.name, "validated", day))
        assert str(validated[t].dtype).startswith("datetime64[") and validated[t].dt.tz is None, name
        assert (validated[t] == clean[t]).all(), f"{name}: the instants, in UTC"
        features = scoring.materialize_features(spec, day)
        assert pd.read_parquet(features["path"])[t].equals(validated[t]), name

    window = training.assemble_window(parquet, days[-1])
    split = training.time_split(parquet, pd.read_parquet(window["path"]))
    assert split["dates"]["train"][0] == str(days[0]) and split["dates"]["holdout"] == [str(days[-1])] * 2
