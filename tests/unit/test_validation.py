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
    assert "event times inside the partition 2026-02-10" in checks
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
