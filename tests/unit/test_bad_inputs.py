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
import json

import pytest
from bad_batches import (
    KINDS,
    ROWS,
    build_lake_with_champion,
    csv_variant,
    deliver,
    downstream_of,
    fingerprint,
    kind,
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
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(base / "data"))
        mp.setenv("MLOPS_SPECS_DIR", str(base / "specs"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
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
