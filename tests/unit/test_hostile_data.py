"""Regression tests of the data-side defects of issue 15, one or more per defect, on small
in-memory batches and a lake in a temporary folder (real Great Expectations, real Parquet).

- D1: an int feature accepted 12.5 (the int type check accepted float64, nothing checked
  whole numbers);
- D2: a day of numeric ids passed validation, then broke every training window holding it;
- landing symlinks followed out of the landing root, their content copied to quarantine
  with wider permissions; a second rejection replaced the first quarantine record; a
  rejected run deleted other days' Data Docs pages; a directory where the day's file should
  be was reported as "no file"; the run-days row said "passed" for a rejected re-delivery;
  truncated CSV rows, NUL bytes past the first 4 KiB and duplicated header names passed the reader.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DAY = dt.date(2026, 2, 10)
ROWS = 150


@pytest.fixture
def clean():
    from mlops_lifecycle.examples import late_delivery

    return late_delivery.generate_day(DAY, rows=ROWS)


def _csv_spec(spec):
    return spec.model_copy(update={"source": spec.source.model_copy(update={"path": "{data_dir}/landing/{model}/{ds}.csv"})})


def _failures(result) -> dict:
    return {f["expectation"]: f for f in result["failures"]}


# ---- D1: an int column holds whole numbers --------------------------------------------------------


def test_an_int_feature_with_a_fraction_is_rejected_naming_the_check_and_the_rows(example_spec, clean):
    from mlops_lifecycle import validation

    bad = clean.astype({"drivers_available": "float64"})
    bad.loc[bad.index[[3, 8]], "drivers_available"] = 12.5
    result = validation.validate_frame(example_spec, bad, day=DAY)
    failed = _failures(result)["expect_column_values_to_be_whole_numbers"]
    assert failed["check"] == "drivers_available holds whole numbers (type int)"
    assert failed["examples"] == [12.5] and failed["unexpected_count"] == 2
    assert failed["example_ids"] == list(clean["package_id"].iloc[[3, 8]])
    assert [f["check"] for f in result["failures"]] == [failed["check"]], "nothing else is wrong with the day"
    message = validation.failure_message("batch", result)
    assert "drivers_available holds whole numbers (type int) (expect_column_values_to_be_whole_numbers)" in message
    assert "e.g. [12.5]" in message


def test_an_int_column_read_as_floats_because_of_nulls_passes_when_its_values_are_whole(example_spec, clean):
    from mlops_lifecycle import validation

    nullable = example_spec.model_copy(update={"features": [
        f.model_copy(update={"nullable": True, "max_null_fraction": 0.1}) if f.name == "drivers_available" else f
        for f in example_spec.features]})
    with_nulls = clean.astype({"drivers_available": "float64"})
    with_nulls.loc[with_nulls.index[[1, 5]], "drivers_available"] = np.nan
    assert with_nulls["drivers_available"].dtype == "float64"
    result = validation.validate_frame(nullable, with_nulls, day=DAY)
    assert result["success"], validation.failure_message("whole floats", result)


def test_a_fraction_in_a_csv_int_column_is_rejected_through_ingest_and_validate(data_dir, example_spec, clean):
    from mlops_lifecycle import ingestion, lake, validation

    spec = _csv_spec(example_spec)
    bad = clean.astype({"drivers_available": "float64"})
    bad.loc[bad.index[4], "drivers_available"] = 40.25
    lake.write_bytes(Path(ingestion.source_path(spec, DAY)), bad.to_csv(index=False).encode())
    ingestion.ingest(spec, DAY)
    with pytest.raises(validation.ValidationFailed, match=r"holds whole numbers .* e\.g\. \[40\.25\]"):
        validation.validate_partition(spec, DAY, docs=False)
    assert not lake.data_file(spec.name, "validated", DAY).exists()


# ---- D2: one entity-id type across days ---------------------------------------------------------------


def _int_ids(frame):
    return frame.assign(package_id=np.arange(6420, 6420 + len(frame), dtype="int64"))


def test_numeric_ids_are_rejected_when_the_spec_declares_string_ids(example_spec, clean):
    from mlops_lifecycle import validation

    assert example_spec.entity_id_type == "string"
    result = validation.validate_frame(example_spec, _int_ids(clean), day=DAY)
    failed = next(f for f in result["failures"] if f["column"] == "package_id")
    assert failed["check"] == "entity id package_id has type string (spec entity_id_type)"
    assert failed["examples"][:2] == [6420, 6421] and failed["observed_dtype"] == "int64"
    assert "another type than the model's ids" in validation.failure_message("batch", result)


def test_without_a_declared_type_the_validated_days_decide_the_id_type(data_dir, example_spec, clean):
    from mlops_lifecycle import lake, validation

    spec = example_spec.model_copy(update={"entity_id_type": None})
    # No validated day yet: text ids and number ids are both accepted (the first day decides).
    assert validation.validate_frame(spec, clean, day=DAY)["success"]
    assert validation.validate_frame(spec, _int_ids(clean), day=DAY)["success"]

    earlier = DAY - dt.timedelta(days=1)
    lake.write_parquet(lake.data_file(spec.name, "validated", earlier), clean)
    result = validation.validate_frame(spec, _int_ids(clean), day=DAY)
    check = f"entity id package_id has type string (as in the validated day {earlier}; set entity_id_type in the spec"
    assert any(f["check"].startswith(check) for f in result["failures"]), result["failures"]
    assert validation.validate_frame(spec, clean, day=DAY)["success"]


def test_a_day_of_numeric_ids_never_reaches_the_training_window(data_dir, example_spec):
    """The trial's case: one day with customer ids as numbers among days of text ids."""
    from mlops_lifecycle import ingestion, lake, training, validation
    from mlops_lifecycle.examples import late_delivery

    spec = example_spec.model_copy(update={"entity_id_type": None})
    days = [DAY + dt.timedelta(days=i) for i in range(4)]
    for i, day in enumerate(days):
        frame = late_delivery.generate_day(day, rows=ROWS)
        lake.write_parquet(Path(ingestion.source_path(spec, day)), _int_ids(frame) if i == 2 else frame)
        ingestion.ingest(spec, day)
        if i == 2:
            with pytest.raises(validation.ValidationFailed, match="entity id package_id has type string"):
                validation.validate_partition(spec, day, docs=False)
        else:
            validation.validate_partition(spec, day, docs=False)
    assert lake.partitions(spec.name, "validated") == [days[0], days[1], days[3]]
    small = spec.model_copy(update={"training": spec.training.model_copy(update={"min_rows": 100})})
    window = training.assemble_window(small, days[-1])
    assert pd.read_parquet(window["path"])["package_id"].map(type).eq(str).all()


def test_a_window_whose_days_disagree_on_a_column_type_is_refused_naming_day_and_column(data_dir, example_spec):
    """A day validated before the id check existed (or edited since) is named, not an ArrowTypeError."""
    from mlops_lifecycle import lake, training
    from mlops_lifecycle.examples import late_delivery

    days = [DAY + dt.timedelta(days=i) for i in range(4)]
    for i, day in enumerate(days):
        frame = late_delivery.generate_day(day, rows=ROWS)
        lake.write_parquet(lake.data_file(example_spec.name, "validated", day), _int_ids(frame) if i == 1 else frame)
    with pytest.raises(training.MixedColumnTypes) as raised:
        training.assemble_window(example_spec, days[-1])
    message = str(raised.value)
    assert "'package_id'" in message and f"number on {days[1]}" in message and "text on 3 day(s)" in message
    assert not lake.training_dir(example_spec.name, days[-1]).exists()


# ---- landing files: links, directories, permissions ------------------------------------------------------


def _landing(spec, day=DAY) -> Path:
    from mlops_lifecycle import ingestion

    path = Path(ingestion.source_path(spec, day))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _parquet_bytes(frame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def test_a_link_out_of_the_landing_root_is_refused_unread_and_nothing_of_it_is_copied(data_dir, example_spec):
    from mlops_lifecycle import ingestion, lake

    spec = _csv_spec(example_spec)
    _landing(spec).symlink_to("/etc/passwd")
    assert ingestion.wait_for_source(spec, DAY, waited_seconds=0) is not None, "something is there: ingest reports it"
    with pytest.raises(ingestion.SourceUnreadable) as raised:
        ingestion.ingest(spec, DAY)
    assert raised.value.check == "source_symlink"
    assert "symbolic link to /etc/passwd, outside the landing root" in str(raised.value)
    qdir = lake.partition_dir(spec.name, "quarantine", DAY)
    assert sorted(p.name for p in qdir.iterdir()) == ["validation.json"], "no copy of the linked file"
    assert "root:" not in (qdir / "validation.json").read_text()
    assert not lake.partition_dir(spec.name, "raw", DAY).exists()


def test_a_link_to_a_good_file_outside_the_landing_root_is_refused_one_inside_is_read(data_dir, example_spec, clean):
    from mlops_lifecycle import ingestion, lake

    outside = data_dir / "another_feed" / "day.parquet"
    outside.parent.mkdir()
    outside.write_bytes(_parquet_bytes(clean))
    _landing(example_spec).symlink_to(outside)
    with pytest.raises(ingestion.SourceUnreadable, match="outside the landing root"):
        ingestion.ingest(example_spec, DAY)

    day = DAY + dt.timedelta(days=1)
    inside = _landing(example_spec, day).parent / "archive" / "day.parquet"
    inside.parent.mkdir()
    inside.write_bytes(_parquet_bytes(clean))
    _landing(example_spec, day).symlink_to(inside)
    assert ingestion.ingest(example_spec, day)["rows"] == len(clean)
    assert lake.parquet_rows(lake.data_file(example_spec.name, "raw", day)) == len(clean)


def test_a_directory_where_the_days_file_should_be_is_named_as_one(data_dir, example_spec, clean):
    from mlops_lifecycle import ingestion, lake

    folder = _landing(example_spec)
    folder.mkdir()
    (folder / "part-00000.parquet").write_bytes(_parquet_bytes(clean))
    found = ingestion.wait_for_source(example_spec, DAY, waited_seconds=0)
    assert found is not None and found["path"] == str(folder), "not reported as missing"
    with pytest.raises(ingestion.SourceUnreadable) as raised:
        ingestion.ingest(example_spec, DAY)
    assert raised.value.check == "source_is_file"
    assert f"{folder} is a directory, not a file" in str(raised.value) and "part-00000.parquet" in str(raised.value)
    assert lake.partition_dir(example_spec.name, "quarantine", DAY).is_dir()


def test_the_quarantine_copy_of_a_private_file_is_never_wider_than_the_file(data_dir, example_spec):
    from mlops_lifecycle import ingestion, lake

    path = _landing(example_spec)
    path.write_bytes(b"id,secret\n1,hunter2\n")  # not Parquet: rejected, its bytes kept
    os.chmod(path, 0o600)
    with pytest.raises(ingestion.SourceUnreadable):
        ingestion.ingest(example_spec, DAY)
    copy = lake.partition_dir(example_spec.name, "quarantine", DAY) / "source.parquet"
    assert copy.read_bytes() == path.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) & 0o077 == 0, oct(copy.stat().st_mode)


# ---- one record per attempt; Data Docs of other days; the run-days row -----------------------------------


def test_a_second_rejection_of_a_day_keeps_the_first_record(data_dir, example_spec):
    from mlops_lifecycle import ingestion, lake, validation

    path = _landing(example_spec)
    qdir = lake.partition_dir(example_spec.name, "quarantine", DAY)
    for attempt, content in enumerate([b"first bad delivery", b"second bad delivery"], start=1):
        path.write_bytes(content)
        with pytest.raises(ingestion.SourceUnreadable):
            ingestion.ingest(example_spec, DAY)
        assert lake.read_json(qdir / "validation.json")["attempt"] == attempt
    assert (qdir / "source.parquet").read_bytes() == b"second bad delivery"
    assert (qdir / "attempt-1" / "source.parquet").read_bytes() == b"first bad delivery"
    assert lake.read_json(qdir / "attempt-1" / "validation.json")["attempt"] == 1
    assert validation.quarantine_attempts(qdir) == [1, 2]


def test_a_rejection_leaves_the_data_docs_pages_of_other_days(data_dir, example_spec):
    from mlops_lifecycle import lake, validation
    from mlops_lifecycle.examples import late_delivery

    site = lake.data_docs_dir() / example_spec.name
    good, bad = DAY, DAY + dt.timedelta(days=1)
    assert validation.validate_frame(example_spec, late_delivery.generate_day(good, rows=ROWS), day=good,
                                     docs=True)["success"]
    def pages_of(day):
        return {p: p.read_bytes() for p in site.rglob("*.html") if f"/{example_spec.name}-{day}/" in str(p)}

    pages = pages_of(good)
    assert pages, "the accepted day has its validation page"
    broken = late_delivery.generate_day(bad, rows=ROWS).assign(distance_km=-1.0)
    assert not validation.validate_frame(example_spec, broken, day=bad, docs=True)["success"]
    assert pages_of(bad), "the rejected day has its page too"
    assert pages_of(good) == pages, "the earlier page is untouched"
    index = (site / "index.html").read_text()
    assert f"{example_spec.name}-{good}" in index and f"{example_spec.name}-{bad}" in index


def test_the_run_days_row_of_a_rejected_redelivery_says_failed(data_dir, example_spec):
    """The day's report stays the kept batch's (success) with a pointer to the rejection:
    the row must say FAILED, as the command's exit code does."""
    from mlops_lifecycle import lake, replay

    accepted = {"success": True, "rows": 980, "failed": 0, "checked_at": "2026-02-11T00:10:00+00:00"}
    pointer = {"quarantine": "q", "checked_at": "2026-02-12T00:10:00+00:00", "rows": 6860, "failed": 1, "attempt": 1}
    lake.write_json(lake.report_dir(example_spec.name, "validation", DAY) / "result.json",
                    {**accepted, "rejected_redelivery": pointer})
    result = replay.DayResult(ds=DAY.isoformat(), daily_state="DagRunState.FAILED", tasks={"validate": "failed"})
    row = replay.day_row(example_spec, DAY, result)
    assert row["validation"] == "FAILED (1 checks)" and row["rows"] == 6860
    assert "earlier validated batch kept" in row["retrain"]


# ---- the CSV reader: every row whole, every column once, NUL bytes anywhere ---------------------------------


def _read_csv(spec, day, data: bytes):
    from mlops_lifecycle import ingestion

    _landing(spec, day).write_bytes(data)
    with pytest.raises(ingestion.SourceUnreadable) as raised:
        ingestion.read_source(spec, day)
    return raised.value


def test_a_csv_cut_off_inside_a_row_is_refused_as_truncated(data_dir, example_spec, clean):
    spec = _csv_spec(example_spec)
    data = clean.to_csv(index=False).encode()
    cut = data.index(b"\n", len(data) // 2) + 25
    err = _read_csv(spec, DAY, data[:cut])
    assert err.check == "csv_parse" and "the header has 10" in str(err) and "cut short" in str(err)
    # A row that lost fields in the middle of the file is refused too (pandas filled it with nulls).
    lines = data.decode().split("\n")
    lines[40] = ",".join(lines[40].split(",")[:7])
    err = _read_csv(spec, DAY + dt.timedelta(days=1), "\n".join(lines).encode())
    assert "line 41 has 7 field(s), the header has 10" in str(err) and "cut short" not in str(err)


def test_nul_bytes_deep_in_a_csv_and_a_repeated_header_name_are_refused(data_dir, example_spec, clean):
    spec = _csv_spec(example_spec)
    data = clean.to_csv(index=False).encode()
    deep = data.index(b"\n", 8000) + 10
    err = _read_csv(spec, DAY, data[:deep] + b"\x00" + data[deep:])
    assert err.check == "csv_text" and "NUL bytes" in str(err) and f"offset {deep}" in str(err)

    head, _, rows = data.partition(b"\n")
    repeated = head.replace(b"traffic_index", b"distance_km") + b"\n" + rows
    err = _read_csv(spec, DAY + dt.timedelta(days=1), repeated)
    assert err.check == "csv_header" and "['distance_km'] more than once" in str(err)
