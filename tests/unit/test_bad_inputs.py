"""The bad-input corpus through the stage functions (ingestion.ingest + validation.validate_partition).

One lake is built per module with the real stack: history validated by Great
Expectations, a champion trained with XGBoost and promoted in an MLflow (SQLite)
registry, and its predictions for the last history day. Every kind of broken batch in
``tests/bad_batches.py`` is then delivered for a day of its own and must be

- rejected with an error that names the failed check and shows example values,
- quarantined with its validation result (``quarantine/ds=<day>/validation.json``),
- stopped before anything downstream (no validated, features or predictions partition),
- harmless: every other file of the lake and the registry's aliases and versions are
  byte-for-byte what they were.

A few kinds also run through the real daily DAG in ``tests/e2e/test_faults.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from bad_batches import (
    KINDS,
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


@pytest.fixture(scope="module")
def trained_lake(tmp_path_factory):
    """A lake with validated history, a champion and earlier predictions."""
    base = tmp_path_factory.mktemp("bad-inputs")
    with isolated_stores(base):
        # A loaded shared machine must not fail the champion's latency test.
        write_small_spec(base / "specs", training={"max_latency_ms_per_1k_rows": 10_000})
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        built = build_lake_with_champion(spec, HISTORY)
        assert built["decision"]["outcome"] == "promoted", built["decision"]
        days = {k.kind: START + dt.timedelta(days=i) for i, k in enumerate(KINDS)}
        yield {"spec": spec, "days": days, **built}


def test_corpus_covers_every_kind_the_issue_names():
    names = {k.kind for k in KINDS}
    assert len(names) == len(KINDS), "kind names must be unique"
    assert set(REQUIRED.values()) <= names
    assert len(KINDS) >= 20


@pytest.mark.parametrize("bad", CAUGHT, ids=lambda k: k.kind)
def test_bad_batch_is_rejected_quarantined_and_touches_nothing(trained_lake, bad):
    from mlops_lifecycle import ingestion, lake, validation
    from mlops_lifecycle.examples import late_delivery

    spec = trained_lake["spec"] if bad.fmt == "parquet" else csv_variant(trained_lake["spec"])
    day = trained_lake["days"][bad.kind]
    before = fingerprint(spec, except_day=day)
    deliver(spec, bad, day, late_delivery.generate_day(day, rows=ROWS))

    expected = ingestion.SourceUnreadable if bad.stage == "ingest" else validation.ValidationFailed
    with pytest.raises(expected) as raised:
        ingestion.ingest(spec, day)
        validation.validate_partition(spec, day, docs=False)
    message = str(raised.value)

    # Quarantined with its validation result, which names the failed check...
    qdir = lake.partition_dir(spec.name, "quarantine", day)
    result = json.loads((qdir / "validation.json").read_text())
    assert result["success"] is False and result["ds"] == day.isoformat()
    assert (qdir / "data.parquet").exists() or list(qdir.glob("source.*")), "the rejected bytes are kept"
    named = [f for f in result["failures"] if f["expectation"] == bad.check]
    assert named, f"{bad.check} not among the failed checks: {[f['expectation'] for f in result['failures']]}"
    # ...and so does the error, with example values.
    assert any(f["check"] in message and f["expectation"] in message for f in named), message
    for shown in bad.shows:
        assert shown in message, f"{shown!r} missing from:\n{message}"
    assert str(qdir) in message
    # Nothing downstream, and nothing else touched.
    assert downstream_of(spec, day) == {"validated": False, "features": False, "predictions": False}
    if bad.stage == "ingest":
        assert not lake.partition_dir(spec.name, "raw", day).exists(), "unreadable bytes never reach raw/"
    assert fingerprint(spec, except_day=day) == before


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
    day = START + dt.timedelta(days=len(KINDS) + 1)
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
                                                 "rows": rejected["rows"], "failed": rejected["failed"]}
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
