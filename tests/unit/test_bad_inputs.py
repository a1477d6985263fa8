"""The bad-input corpus through the stage functions (ingestion.ingest + validation.validate_partition).

One lake is built per module with the real stack: history validated by Great
Expectations, a champion trained with XGBoost and promoted in an MLflow (SQLite)
registry, and its predictions for the last history day. Every kind of broken batch in
``tests/bad_batches.py`` is then delivered for a day of its own and must be

- rejected with an error that names the failed check and shows example values,
- quarantined with its validation result (``quarantine/ds=<day>/validation.json``),
- stopped before anything downstream (no validated, features or predictions partition),
- harmless: every other file of the data folder (every model's lake zones, the landing
  files, the Data Docs site and its results, the MLflow store) and the registry's aliases
  and versions are byte-for-byte what they were.

Batches that look odd but are valid (``ACCEPTED``) must pass, and those listed with a
drift must be flagged by the drift check against the champion. The corpus runs with Data
Docs on, as the daily DAG does, so a rejection that touched another day's page would show.

A few kinds also run through the real daily DAG in ``tests/e2e/test_faults.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd
import pytest
from bad_batches import (
    ACCEPTED,
    KINDS,
    OVERSIZED,
    OVERSIZED_BYTES,
    ROWS,
    BadBatch,
    build_lake_with_champion,
    csv_variant,
    deliver,
    downstream_of,
    fingerprint,
    isolated_stores,
    kind,
    volume_spike,
    write_oversized,
    write_small_spec,
)

START = dt.date(2026, 4, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(8, 0, -1)]
CAUGHT = [k for k in KINDS if k.stage != "wait"]
REQUIRED = {  # the kinds issue 5 names, by the corpus entry that covers each
    "empty file": "empty_file", "header only": "header_only_csv", "missing column": "missing_column",
    "extra column": "extra_column", "renamed column": "renamed_column", "wrong type": "wrong_type_csv",
    "NULL spike": "null_spike", "negative values": "negative_values", "out-of-range values": "out_of_range_values",
    "unknown category": "unknown_category", "duplicate ids": "duplicate_ids", "duplicate rows": "duplicate_rows",
    "volume drop": "volume_drop", "volume spike": "volume_spike", "all-constant column": "all_constant_column",
    "dates outside the partition": "dates_outside_partition", "truncated Parquet": "truncated_parquet",
    "wrong encoding": "utf16_csv", "different delimiter": "semicolon_csv", "not data at all": "png_instead_of_parquet",
    "missing partition": "missing_partition",
}
REQUIRED_15 = {  # the kinds issue 15 adds, by the corpus entry (or accepted batch) that covers each
    "UTF-16 without BOM": "utf16_without_bom_csv", "whitespace-only": "whitespace_only_csv",
    "truncated CSV": "truncated_csv", "gzip named .csv": "gzip_named_csv", "Parquet named .csv": "parquet_named_csv",
    "NUL bytes": "nul_bytes_in_csv", "duplicated column": "duplicated_column_csv",
    "header with trailing space": "header_with_trailing_space_csv", "fractional int": "fractional_int",
    "Yes/No in an int column": "yes_no_in_int_column", "thousands commas": "thousands_separators_csv",
    "decimal commas": "decimal_commas_csv", "NaN text": "nan_text_csv", "all-null column": "all_null_column",
    "null share over its limit": "null_share_over_its_limit", "category case": "category_case",
    "category padding": "category_padding", "numbers in a category": "numbers_among_categories_csv",
    "integer ids": "integer_ids_csv", "label absent": "label_absent", "label Yes/No": "label_yes_no_csv",
    "label all empty": "label_all_empty", "times partly from another day": "times_partly_from_another_day",
    "mixed zones": "mixed_time_zones_csv", "out-of-range dates": "out_of_range_dates_csv",
    "epoch dates": "epoch_dates", "directory": "directory_instead_of_file", "symlinks": "symlink_to_system_file",
    "a 200 MB file": "oversized_200mb_csv",
}
ACCEPTED_15 = {  # accepted kinds issue 15 lists
    "reversed order": "reversed_column_order", "CRLF": "crlf_csv", "offsets": "event_time_offsets_csv",
    "unit change (drift flagged)": "unit_change_km_to_miles", "collapsed categories (drift flagged)":
    "collapsed_categories", "int read as float64 because of nulls": "int_column_with_nulls_read_as_float",
}


def _corpus_features() -> list[dict]:
    """The example's features, with two of them nullable: a null share has a limit to go
    over (warehouse_workload), and an int column with nulls is read back as floats
    (drivers_available)."""
    import yaml
    from bad_batches import _e2e_specs

    features = yaml.safe_load((_e2e_specs().ROOT / "dags" / "specs" / "late_delivery.yaml").read_text())["features"]
    for f in features:
        if f["name"] in {"warehouse_workload", "drivers_available"}:
            f.update(nullable=True, max_null_fraction=0.05)
    return features


@pytest.fixture(scope="module")
def trained_lake(tmp_path_factory):
    """A lake with validated history (and its Data Docs pages), a champion and earlier predictions."""
    base = tmp_path_factory.mktemp("bad-inputs")
    with isolated_stores(base):
        # A loaded shared machine must not fail the champion's latency test.
        write_small_spec(base / "specs", training={"max_latency_ms_per_1k_rows": 10_000}, features=_corpus_features(),
                         source={"max_bytes": 50_000_000})
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        built = build_lake_with_champion(spec, HISTORY, docs=True)
        assert built["decision"]["outcome"] == "promoted", built["decision"]
        every = [k.kind for k in KINDS] + [g.kind for g in ACCEPTED] + [OVERSIZED.kind, "rejected_twice"]
        days = {name: START + dt.timedelta(days=i) for i, name in enumerate(every)}
        yield {"spec": spec, "days": days, **built}


def test_corpus_covers_every_kind_the_issues_name():
    names = {k.kind for k in [*KINDS, OVERSIZED]}
    assert len(names) == len(KINDS) + 1, "kind names must be unique"
    assert set(REQUIRED.values()) <= names
    assert set(REQUIRED_15.values()) <= names, set(REQUIRED_15.values()) - names
    assert set(ACCEPTED_15.values()) <= {g.kind for g in ACCEPTED}
    assert len(names) >= 60


def _assert_rejected_and_nothing_else_changed(spec, bad: BadBatch, day: dt.date, raised, before: dict, *,
                                              raw_before: bytes | None = None) -> dict:
    """What every rejected kind must show; returns the quarantined validation result.
    ``raw_before``: the day's raw partition an earlier attempt left, which must stay as it was."""
    from mlops_lifecycle import lake

    message = str(raised.value)
    # Quarantined with its validation result, which names the failed check...
    qdir = lake.partition_dir(spec.name, "quarantine", day)
    result = json.loads((qdir / "validation.json").read_text())
    assert result["success"] is False and result["ds"] == day.isoformat()
    if bad.kept:
        assert (qdir / "data.parquet").exists() or list(qdir.glob("source.*")), "the rejected bytes are kept"
    else:
        assert not list(qdir.glob("source*")), "nothing of a refused link, directory or FIFO is copied"
    named = [f for f in result["failures"] if f["expectation"] == bad.check]
    assert named, f"{bad.check} not among the failed checks: {[f['expectation'] for f in result['failures']]}"
    # ...and so does the error, with example values.
    assert any(f["check"] in message and f["expectation"] in message for f in named), message
    for shown in bad.shows:
        assert shown in message, f"{shown!r} missing from:\n{message}"
    assert str(qdir) in message
    # Nothing downstream, and nothing else touched: every other file of the data folder
    # (lake zones, landing, Data Docs pages and results, the MLflow store) and the registry.
    assert downstream_of(spec, day) == {"validated": False, "features": False, "predictions": False}
    if bad.stage == "ingest" and raw_before is None:
        assert not lake.partition_dir(spec.name, "raw", day).exists(), "unreadable bytes never reach raw/"
    elif bad.stage == "ingest":
        assert lake.data_file(spec.name, "raw", day).read_bytes() == raw_before, "unreadable bytes never reach raw/"
    assert fingerprint(spec, except_day=day) == before
    return result


def _spec_for(trained_lake, fmt: str):
    return trained_lake["spec"] if fmt == "parquet" else csv_variant(trained_lake["spec"])


@pytest.mark.parametrize("bad", CAUGHT, ids=lambda k: k.kind)
def test_bad_batch_is_rejected_quarantined_and_touches_nothing(trained_lake, bad):
    from mlops_lifecycle import ingestion, validation
    from mlops_lifecycle.examples import late_delivery

    spec = _spec_for(trained_lake, bad.fmt)
    day = trained_lake["days"][bad.kind]
    before = fingerprint(spec, except_day=day)
    deliver(spec, bad, day, late_delivery.generate_day(day, rows=ROWS))

    expected = ingestion.SourceUnreadable if bad.stage == "ingest" else validation.ValidationFailed
    with pytest.raises(expected) as raised:
        ingestion.ingest(spec, day)
        validation.validate_partition(spec, day, docs=True)
    _assert_rejected_and_nothing_else_changed(spec, bad, day, raised, before)


@pytest.mark.parametrize("good", ACCEPTED, ids=lambda k: k.kind)
def test_odd_but_valid_batch_is_accepted(trained_lake, good):
    """Reversed columns, CRLF, a BOM, zoned times, an int column with nulls, a link inside
    the landing root: accepted. A unit change or collapsed categories pass validation (they
    are valid values) and the drift check against the champion flags the column."""
    from mlops_lifecycle import ingestion, lake, monitoring, scoring, validation
    from mlops_lifecycle.examples import late_delivery

    spec = _spec_for(trained_lake, good.fmt)
    day = trained_lake["days"][good.kind]
    before = fingerprint(spec, except_day=day)
    clean = late_delivery.generate_day(day, rows=ROWS)
    deliver(spec, good, day, clean)
    ingestion.ingest(spec, day)
    assert validation.validate_partition(spec, day, docs=True)["rows"] == len(clean)
    validated = pd.read_parquet(lake.data_file(spec.name, "validated", day))
    assert len(validated) == len(clean) and set(validated.columns) == set(clean.columns)
    assert not lake.partition_dir(spec.name, "quarantine", day).exists()
    if good.drifts:
        scoring.materialize_features(spec, day)
        champ = trained_lake["champion"]["version"]
        scoring.score_partition(spec, day, version=champ, airflow_run_id="pytest-drift")
        drift = monitoring.check_drift(spec, day, version=champ)
        for column in good.drifts:
            assert column in drift["drifted_columns"], drift
    # What existed before is unchanged (a drift check may add the reference's local cache).
    after = fingerprint(spec, except_day=day)
    assert {k: after.get(k) for k in before} == before


def _peak_rss_growth(call) -> tuple[object, int]:
    """Run ``call``; its result and how far the process's peak resident memory rose above
    what it was before, in bytes (Linux: the peak is reset through /proc/self/clear_refs)."""
    import re
    from pathlib import Path

    def status(key: str) -> int:
        return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024

    Path("/proc/self/clear_refs").write_text("5")
    start = status("VmRSS")
    try:
        out = call()
    except Exception as exc:  # noqa: BLE001 - measured like a return
        out = exc
    return out, status("VmHWM") - start


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_a_200_mb_file_is_refused_unread_in_bounded_memory(trained_lake):
    """A runaway export of 200 MB (generated here, a block at a time) is refused from its
    size: the worker's peak memory grows by a small fraction of the file, the quarantine
    keeps a streamed copy, and nothing else changes."""
    from mlops_lifecycle import ingestion, lake
    from mlops_lifecycle.examples import late_delivery

    spec = csv_variant(trained_lake["spec"])
    day = trained_lake["days"][OVERSIZED.kind]
    before = fingerprint(spec, except_day=day)
    path = ingestion.source_path(spec, day)
    size = write_oversized(__import__("pathlib").Path(path), late_delivery.generate_day(day, rows=ROWS))
    assert size == OVERSIZED_BYTES

    raised, growth = _peak_rss_growth(lambda: ingestion.ingest(spec, day))
    assert isinstance(raised, ingestion.SourceUnreadable), raised
    assert growth < 40 * 1024 * 1024, f"peak memory grew by {growth / 2**20:.0f} MiB for a 200 MiB file"
    kept = lake.partition_dir(spec.name, "quarantine", day) / "source.csv"
    assert kept.stat().st_size == OVERSIZED_BYTES
    _assert_rejected_and_nothing_else_changed(spec, OVERSIZED, day, pytest.ExceptionInfo.from_exc_info(
        (type(raised), raised, raised.__traceback__)), before)
    kept.unlink()  # 200 MB less in the test's temp folder


def test_a_day_rejected_twice_keeps_both_records(trained_lake):
    """Each rejected attempt has its own record: the second keeps the first in attempt-1/."""
    from mlops_lifecycle import ingestion, lake, validation
    from mlops_lifecycle.examples import late_delivery

    spec = trained_lake["spec"]
    day = trained_lake["days"]["rejected_twice"]
    before = fingerprint(spec, except_day=day)
    clean = late_delivery.generate_day(day, rows=ROWS)
    qdir = lake.partition_dir(spec.name, "quarantine", day)
    first, second = kind("negative_values"), kind("png_instead_of_parquet")

    deliver(spec, first, day, clean)
    ingestion.ingest(spec, day)
    with pytest.raises(validation.ValidationFailed) as raised:
        validation.validate_partition(spec, day, docs=True)
    one = _assert_rejected_and_nothing_else_changed(spec, first, day, raised, before)
    assert one["attempt"] == 1
    kept_first = {p.name: p.read_bytes() for p in qdir.iterdir() if p.is_file()}

    raw = lake.data_file(spec.name, "raw", day).read_bytes()  # the first attempt's rows, as ingested
    deliver(spec, second, day, clean)
    with pytest.raises(ingestion.SourceUnreadable) as raised:
        ingestion.ingest(spec, day)
    two = _assert_rejected_and_nothing_else_changed(spec, second, day, raised, before, raw_before=raw)
    assert two["attempt"] == 2 and "rejected attempt 2 of the day" in str(raised.value)
    earlier = qdir / "attempt-1"
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == kept_first, "the first record is kept as it was"
    assert lake.read_json(earlier / "validation.json")["failures"][0]["expectation"] != "parquet_format"
    assert sorted(p.name for p in qdir.iterdir()) == ["attempt-1", "source.parquet", "validation.json"]


def test_missing_partition_fails_after_its_wait_saying_what_it_waited_for(trained_lake):
    from mlops_lifecycle import ingestion
    from mlops_lifecycle.examples import late_delivery

    bad = kind("missing_partition")
    day = trained_lake["days"][bad.kind]
    before = fingerprint(trained_lake["spec"], except_day=day)
    assert deliver(trained_lake["spec"], bad, day, late_delivery.generate_day(day, rows=ROWS)) is None
    path = ingestion.source_path(trained_lake["spec"], day)

    once = trained_lake["spec"]  # wait_timeout_minutes: 0 -> one look
    with pytest.raises(ingestion.SourceMissing) as raised:
        ingestion.wait_for_source(once, day, waited_seconds=0)
    assert f"no file at {path} on its only check" in str(raised.value)
    for shown in bad.shows:
        assert shown in str(raised.value)

    patient = once.model_copy(update={"source": once.source.model_copy(update={"wait_timeout_minutes": 2})})
    assert ingestion.wait_for_source(patient, day, waited_seconds=90) is None  # still inside the wait
    with pytest.raises(ingestion.SourceMissing) as raised:
        ingestion.wait_for_source(patient, day, waited_seconds=121)
    assert f"no file at {path} after waiting 2.0 min" in str(raised.value)
    assert "wait_timeout_minutes=2" in str(raised.value)

    with pytest.raises(ingestion.SourceMissing):
        ingestion.ingest(once, day)
    assert downstream_of(once, day) == {"validated": False, "features": False, "predictions": False}
    assert fingerprint(once, except_day=day) == before


def test_a_clean_day_passes_in_the_same_lake(trained_lake):
    """The control: the corpus' lake accepts a good batch, so rejections are the batches' fault."""
    from mlops_lifecycle import ingestion, lake, validation
    from mlops_lifecycle.examples import late_delivery

    spec = trained_lake["spec"]
    day = max(trained_lake["days"].values()) + dt.timedelta(days=1)
    lake.write_parquet(ingestion.source_path(spec, day), late_delivery.generate_day(day, rows=ROWS))
    ingestion.ingest(spec, day)
    assert validation.validate_partition(spec, day, docs=False)["rows"] > 0
    assert lake.data_file(spec.name, "validated", day).exists()

    csv = csv_variant(spec)
    day = day + dt.timedelta(days=1)
    path = ingestion.source_path(csv, day)
    with lake.atomic_path(path) as tmp:
        late_delivery.generate_day(day, rows=ROWS).to_csv(tmp, index=False)
    ingestion.ingest(csv, day)
    assert validation.validate_partition(csv, day, docs=False)["rows"] > 0


# ---- a bad re-delivery of a day that was already validated ---------------------------------------

REDELIVERED = [dt.date(2026, 6, 1) + dt.timedelta(days=i) for i in range(3)]
CLEAN = BadBatch("clean", lambda f: f, "", ())
SPIKE_7X = BadBatch("volume_spike_7x", lambda f: volume_spike(f, 7), "expect_table_row_count_to_be_between",
                    ("volume within",))


@pytest.fixture
def small_spec(data_dir, tmp_path):
    from mlops_lifecycle.spec import load_spec

    return load_spec(write_small_spec(tmp_path / "specs"))


def _land(spec, day, batch: BadBatch = CLEAN, rows: int = ROWS) -> dict:
    """Deliver the day's batch (clean, or broken by ``batch``), ingest and validate it."""
    from mlops_lifecycle import ingestion, validation
    from mlops_lifecycle.examples import late_delivery

    deliver(spec, batch, day, late_delivery.generate_day(day, rows=rows))
    ingestion.ingest(spec, day)
    return validation.validate_partition(spec, day, docs=False)


def _standing(spec, day) -> dict[str, str]:
    """sha256 of every file the day's accepted batch stands for: raw, validated, features."""
    from mlops_lifecycle import lake

    return {f"{zone}/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest()
            for zone in ("raw", "validated", "features")
            for path in sorted(lake.partition_dir(spec.name, zone, day).glob("*")) if path.is_file()}


def _report(spec, day) -> dict:
    from mlops_lifecycle import lake

    return lake.read_json(lake.report_dir(spec.name, "validation", day) / "result.json")


def _validated_history(spec, days) -> dict:
    """Days validated and featurised: what a rejected re-delivery must not touch."""
    from mlops_lifecycle import scoring

    for day in days:
        _land(spec, day)
        scoring.materialize_features(spec, day)
    return {"files": _standing(spec, days[-1]), "report": _report(spec, days[-1])}


def test_a_rejected_redelivery_keeps_the_validated_day_and_does_not_skew_later_volume(small_spec):
    from mlops_lifecycle import lake, validation

    spec, (day1, day2, day3) = small_spec, REDELIVERED
    before = _validated_history(spec, [day1, day2])
    rows = before["report"]["rows"]

    with pytest.raises(validation.ValidationFailed) as raised:
        _land(spec, day2, SPIKE_7X)
    message = str(raised.value)
    validated = lake.data_file(spec.name, "validated", day2)
    assert "volume within" in message and "re-delivery" in message
    assert f"the earlier validated batch was kept ({rows} rows in {validated})" in message
    # The accepted batch stands, with everything made from it; raw/ does not hold the bad one.
    assert _standing(spec, day2) == before["files"]
    assert not lake.redelivery_file(spec.name, day2).exists()
    # Quarantine holds the rejected attempt, and both records say which batch is which.
    qdir = lake.partition_dir(spec.name, "quarantine", day2)
    rejected = lake.read_json(qdir / "validation.json")
    assert rejected["redelivery"] is True and rejected["rows"] == lake.parquet_rows(qdir / "data.parquet") > 6 * rows
    assert rejected["kept"] == {"path": str(validated), "rows": rows, "sha256": before["files"]["validated/data.parquet"],
                                "checked_at": before["report"]["checked_at"]}
    report = _report(spec, day2)
    assert report.pop("rejected_redelivery") == {"quarantine": str(qdir), "checked_at": rejected["checked_at"],
                                                 "rows": rejected["rows"], "failed": rejected["failed"],
                                                 "attempt": rejected["attempt"]}
    assert report == before["report"], "the day's report is still the accepted batch's"

    # A clean day 3 is judged against the validated days' own row counts, not the rejected 7x.
    first = lake.parquet_rows(lake.data_file(spec.name, "validated", day1))
    assert validation.volume_bounds(spec, day3)["median"] == (first + rows) / 2
    assert _land(spec, day3)["rows"] > 0


def test_an_unreadable_redelivery_keeps_the_day_and_a_good_one_replaces_it(small_spec):
    from mlops_lifecycle import ingestion, lake

    spec, (day1, day2, _) = small_spec, REDELIVERED
    before = _validated_history(spec, [day1, day2])
    with pytest.raises(ingestion.SourceUnreadable) as raised:
        _land(spec, day2, kind("png_instead_of_parquet"))
    assert "PNG image" in str(raised.value) and "the earlier validated batch was kept" in str(raised.value)
    assert _standing(spec, day2) == before["files"]
    assert {k: v for k, v in _report(spec, day2).items() if k != "rejected_redelivery"} == before["report"]
    assert lake.read_json(lake.partition_dir(spec.name, "quarantine", day2) / "validation.json")["kept"]["rows"] == (
        before["report"]["rows"])

    # A corrected re-delivery passes: it replaces raw/ and validated/, and clears the quarantine.
    passed = _land(spec, day2, rows=ROWS + 40)
    assert passed["rows"] != before["report"]["rows"]
    for zone in ("raw", "validated"):
        assert lake.parquet_rows(lake.data_file(spec.name, zone, day2)) == passed["rows"]
    assert not lake.partition_dir(spec.name, "quarantine", day2).exists()
    assert not lake.redelivery_file(spec.name, day2).exists()
    report = _report(spec, day2)
    assert report["rows"] == passed["rows"] and report["redelivery"] is True and "rejected_redelivery" not in report


# ---- a validated day edited afterwards ----------------------------------------------------------------


def test_a_validated_day_edited_afterwards_is_caught_by_the_training_windows_validation(small_spec):
    """Validation judged the day; someone then rewrote its validated file (negative distances
    on some rows). The training window is validated again before anything trains on it, so
    the edit stops the training with the check named, and no model is fitted."""
    from mlops_lifecycle import lake, training, validation

    days = [dt.date(2026, 6, 10) + dt.timedelta(days=i) for i in range(4)]
    for day in days:
        _land(small_spec, day)
    edited = lake.data_file(small_spec.name, "validated", days[1])
    frame = pd.read_parquet(edited)
    frame.loc[frame.index[[2, 3]], "distance_km"] = -40.0
    lake.write_parquet(edited, frame)

    window = training.assemble_window(small_spec, days[-1])
    with pytest.raises(validation.ValidationFailed) as raised:
        validation.validate_training_set(small_spec, window["path"])
    message = str(raised.value)
    assert "training set" in message and "distance_km within [0.0, 400.0]" in message and "-40.0" in message
    assert lake.read_json(lake.training_dir(small_spec.name, days[-1]) / "validation.json")["success"] is False
