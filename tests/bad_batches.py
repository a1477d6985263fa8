"""A corpus of broken daily batches for the ``late_delivery`` example, and the lake
fixtures the trust tests share: a lake with history, a champion and earlier predictions,
and a fingerprint of everything that a bad batch must leave untouched.

Each :class:`BadBatch` turns a clean day (from the example's generator) into the bytes
an upstream system might deliver instead, and says which check must reject it and which
example values the error must show.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROWS = 300  # rows of a clean day; the e2e spec's volume bounds are relative to it
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"
       + bytes(range(256)) * 4)
NOTE = b"Hi team,\nthe export failed again today; I will resend the file tomorrow.\n-- Bob\n"


@dataclass(frozen=True)
class BadBatch:
    """One kind of broken batch.

    ``make(clean_frame)`` returns the delivered content: a DataFrame (written in the
    source's format) or raw bytes (written as they are); None means nothing arrives.
    ``check`` is the id of the check that must fail (a GX expectation type or a reader
    check of :mod:`mlops_lifecycle.ingestion`); ``shows`` are strings the error must contain.
    """

    kind: str
    make: Callable[[pd.DataFrame], pd.DataFrame | bytes | None]
    check: str
    shows: tuple[str, ...]
    fmt: str = "parquet"
    stage: str = "validate"  # where it is caught: "ingest" (reader), "validate" (GX) or "wait" (sensor)
    extra: dict[str, Any] = field(default_factory=dict)


def _set(frame: pd.DataFrame, column: str, rows: slice | list[int], value: Any, *, as_object: bool = False) -> pd.DataFrame:
    out = frame.copy()
    if as_object:
        # A column exported as text (as a Parquet string column, or CSV text).
        out[column] = out[column].astype(str)
    out.loc[out.index[rows], column] = value
    return out


def _csv(frame: pd.DataFrame, **kwargs: Any) -> bytes:
    encoding = kwargs.pop("encoding", "utf-8")
    return frame.to_csv(index=False, **kwargs).encode(encoding)


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


def volume_spike(frame: pd.DataFrame, times: int = 4) -> pd.DataFrame:
    """``times`` the usual volume, every row still valid on its own (fresh ids, same day)."""
    parts = []
    for k in range(times):
        part = frame.copy()
        part["package_id"] = part["package_id"] + f"-{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _ragged(frame: pd.DataFrame) -> bytes:
    lines = _csv(frame).decode().splitlines()
    lines[7] += ",surplus,fields"
    return ("\n".join(lines) + "\n").encode()


def _latin1(frame: pd.DataFrame) -> bytes:
    out = frame.copy()
    out.loc[out.index[3:6], "delivery_region"] = "Zürich"
    return _csv(out, encoding="latin-1")


KINDS: list[BadBatch] = [
    # ---- not data, or not the declared format: caught by the reader ----
    BadBatch("empty_file", lambda f: b"", "source_not_empty", ("0 bytes",), stage="ingest"),
    BadBatch("empty_csv_file", lambda f: b"", "source_not_empty", ("0 bytes",), fmt="csv", stage="ingest"),
    BadBatch("truncated_parquet", lambda f: _parquet(f)[: len(_parquet(f)) * 3 // 5], "parquet_format",
             ("truncated", "PAR1"), stage="ingest"),
    BadBatch("png_instead_of_parquet", lambda f: PNG, "parquet_format", ("PNG image",), stage="ingest"),
    BadBatch("text_note_instead_of_parquet", lambda f: NOTE, "parquet_format", ("Hi team",), stage="ingest"),
    BadBatch("csv_instead_of_parquet", lambda f: _csv(f), "parquet_format", ("package_id,dispatched_at",),
             stage="ingest"),
    BadBatch("png_instead_of_csv", lambda f: PNG, "csv_text", ("PNG image",), fmt="csv", stage="ingest"),
    BadBatch("xlsx_instead_of_csv", lambda f: b"PK\x03\x04" + bytes(200), "csv_text", ("ZIP archive", "xlsx"),
             fmt="csv", stage="ingest"),
    BadBatch("utf16_csv", lambda f: _csv(f, encoding="utf-16"), "csv_encoding", ("UTF-16", "source.encoding"),
             fmt="csv", stage="ingest"),
    BadBatch("latin1_csv", _latin1, "csv_encoding", ("Zürich", "line 5", "b'\\xfc'"), fmt="csv", stage="ingest"),
    BadBatch("semicolon_csv", lambda f: _csv(f, sep=";"), "csv_delimiter", ("';'", "source.delimiter"),
             fmt="csv", stage="ingest"),
    BadBatch("tab_csv", lambda f: _csv(f, sep="\t"), "csv_delimiter", ("'\\\\t'",), fmt="csv", stage="ingest"),
    BadBatch("ragged_csv", _ragged, "csv_parse", ("Expected 10 fields", "line 8"), fmt="csv", stage="ingest"),
    # ---- readable, but wrong: caught by the Great Expectations suite ----
    BadBatch("header_only_csv", lambda f: _csv(f.iloc[:0]), "expect_table_row_count_to_be_between",
             ("no rows", "observed 0"), fmt="csv"),
    BadBatch("header_only_parquet", lambda f: f.iloc[:0], "expect_table_row_count_to_be_between",
             ("no rows", "observed 0")),
    BadBatch("text_note_as_csv", lambda f: NOTE, "expect_table_columns_to_match_set",
             ("none of the 10 columns", "Hi team"), fmt="csv"),
    BadBatch("missing_column", lambda f: f.drop(columns=["drivers_available"]), "expect_table_columns_to_match_set",
             ("missing ['drivers_available']",)),
    BadBatch("extra_column", lambda f: f.assign(coupon_code="SPRING"), "expect_table_columns_to_match_set",
             ("unexpected ['coupon_code']",)),
    BadBatch("renamed_column", lambda f: f.rename(columns={"distance_km": "distance"}),
             "expect_table_columns_to_match_set", ("missing ['distance_km']", "unexpected ['distance']")),
    BadBatch("wrong_type_parquet", lambda f: _set(f, "traffic_index", [4, 9], "twenty five", as_object=True),
             "expect_column_values_to_be_in_type_list", ("twenty five", "traffic_index")),
    BadBatch("wrong_type_csv", lambda f: _csv(_set(f, "distance_km", [2], "twenty five", as_object=True)),
             "expect_column_values_to_be_in_type_list", ("twenty five", "distance_km"), fmt="csv"),
    BadBatch("event_time_not_a_date", lambda f: _set(f, "dispatched_at", [0, 1], "yesterday", as_object=True),
             "expect_column_values_to_be_in_type_list", ("yesterday", "dispatched_at")),
    BadBatch("null_spike", lambda f: _set(f, "traffic_index", slice(0, ROWS // 3), np.nan),
             "expect_column_values_to_not_be_null", ("traffic_index never null", "-000000")),
    BadBatch("null_ids", lambda f: _set(f, "package_id", [5, 6], None), "expect_column_values_to_not_be_null",
             ("package_id present",)),
    BadBatch("negative_values", lambda f: _set(f, "distance_km", [1, 2, 3], -12.5),
             "expect_column_values_to_be_between", ("distance_km within", "-12.5")),
    BadBatch("out_of_range_values", lambda f: _set(f, "traffic_index", [7, 8], 250.0),
             "expect_column_values_to_be_between", ("traffic_index within", "250")),
    BadBatch("infinite_values", lambda f: _set(f, "warehouse_workload", [3], np.inf),
             "expect_column_values_to_be_between", ("warehouse_workload within", "inf")),
    BadBatch("unknown_category", lambda f: _set(f, "weather", [10, 11, 12], "hail"),
             "expect_column_values_to_be_in_set", ("weather in the declared categories", "hail")),
    BadBatch("label_out_of_set", lambda f: _set(f, "is_late", [0], 2), "expect_column_values_to_be_in_set",
             ("is_late is 0 or 1", "2")),
    BadBatch("duplicate_ids", lambda f: _set(f, "package_id", [1, 2, 3], f["package_id"].iloc[0]),
             "expect_column_values_to_be_unique", ("unique", "-000000")),
    BadBatch("duplicate_rows", lambda f: pd.concat([f, f.iloc[:10]], ignore_index=True),
             "expect_column_values_to_be_unique", ("duplicate rows: 10 row(s) repeat an earlier row in full",)),
    BadBatch("volume_drop", lambda f: f.iloc[: ROWS // 5], "expect_table_row_count_to_be_between",
             ("volume within", "observed 60")),
    BadBatch("volume_spike", volume_spike, "expect_table_row_count_to_be_between", ("volume within", "observed")),
    BadBatch("all_constant_column", lambda f: f.assign(package_type="standard"),
             "expect_column_unique_value_count_to_be_between", ("package_type is not constant", "observed 1")),
    BadBatch("dates_outside_partition",
             lambda f: f.assign(dispatched_at=f["dispatched_at"] + pd.Timedelta(days=1)),
             "expect_column_values_to_be_between", ("event times inside the partition",)),
    # ---- nothing at all: the sensor waits, then fails saying what it waited for ----
    BadBatch("missing_partition", lambda f: None, "source_present", ("never arrived", "no file at"), stage="wait"),
]


def _e2e_specs() -> Any:
    """``tests/e2e/e2e_specs.py``, loaded by path (the unit tests do not have tests/e2e on sys.path)."""
    import importlib.util

    path = Path(__file__).parent / "e2e" / "e2e_specs.py"
    loader = importlib.util.spec_from_file_location("_e2e_specs_for_bad_batches", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def write_small_spec(specs_dir: Path, **overrides: Any) -> Path:
    """The e2e tests' small-data spec of the example (``tests/e2e/e2e_specs.py``)."""
    return _e2e_specs().write_small_spec(specs_dir, **overrides)


def isolated_stores(base: Path) -> Any:
    """The package's stores under ``base`` for the block (``e2e_specs.isolated_stores``)."""
    return _e2e_specs().isolated_stores(base)


def kind(name: str) -> BadBatch:
    return next(k for k in KINDS if k.kind == name)


def csv_variant(spec: Any) -> Any:
    """The same model reading CSV files (same lake, same registry)."""
    path = spec.source.path.rsplit(".", 1)[0] + ".csv"
    return spec.model_copy(update={"source": spec.source.model_copy(update={"path": path, "format": "csv"})})


def deliver(spec: Any, bad: BadBatch, day: dt.date, clean: pd.DataFrame) -> Path | None:
    """Write the broken batch where the spec's source expects the day's file."""
    from mlops_lifecycle import ingestion, lake

    path = Path(ingestion.source_path(spec, day))
    content = bad.make(clean)
    if path.exists():
        path.unlink()
    if content is None:
        return None
    if isinstance(content, pd.DataFrame):
        content = _csv(content) if bad.fmt == "csv" else _parquet(content)
    lake.write_bytes(path, content)
    return path


# ---- the lake a bad batch must not touch -----------------------------------------------


def build_lake_with_champion(spec: Any, history: list[dt.date], *, rows: int = ROWS) -> dict[str, Any]:
    """History validated, a champion trained and promoted, the last history day scored:
    everything a bad batch could damage."""
    from mlops_lifecycle import ingestion, scoring, training, validation
    from mlops_lifecycle.examples import late_delivery

    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, history, rows=rows)
    for day in history:
        ingestion.ingest(spec, day)
        validation.validate_partition(spec, day, docs=False)
    window = training.assemble_window(spec, history[-1])
    trained = training.train_and_register(spec, window, trigger={"reason": "test", "by": "pytest"})
    decision = training.compare_and_promote(spec, trained, actor="pytest")
    scoring.materialize_features(spec, history[-1])
    champ = scoring.champion_info(spec)
    scored = scoring.score_partition(spec, history[-1], version=champ["version"], airflow_run_id="pytest-baseline")
    return {"trained": trained, "decision": decision, "champion": champ, "scored": scored}


def registry_state(spec: Any) -> dict[str, Any]:
    """Aliases and versions of the registered model (what promotion could change)."""
    from mlops_lifecycle import registry

    c = registry.client()
    model = c.get_registered_model(spec.model_name)
    versions = c.search_model_versions(f"name='{spec.model_name}'")
    return {
        "aliases": dict(sorted(model.aliases.items())),
        "versions": sorted((v.version, v.run_id, v.tags.get("status")) for v in versions),
    }


def fingerprint(spec: Any, *, except_day: dt.date | None = None) -> dict[str, str]:
    """sha256 of every file a reader of the model's lake can see (hidden temporary names
    are not part of it; the given day's own partitions and the append-only events are
    left out) plus the registry's aliases and versions."""
    from mlops_lifecycle import lake

    base = lake.root() / spec.name
    skip = f"ds={except_day.isoformat()}" if except_day else None
    out: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        hidden = any(part.startswith(".") for part in rel.parts)
        if not path.is_file() or hidden or rel.parts[0] == "events" or (skip and skip in rel.parts):
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    out["<registry>"] = repr(registry_state(spec))
    return out


def downstream_of(spec: Any, day: dt.date) -> dict[str, bool]:
    """Which zones hold anything for the day past validation (all must be False)."""
    from mlops_lifecycle import lake

    return {zone: lake.partition_dir(spec.name, zone, day).exists() for zone in ("validated", "features", "predictions")}
