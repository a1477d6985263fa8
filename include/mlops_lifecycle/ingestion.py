"""Ingestion: copy one day's batch from its source into the lake's raw zone.

The source file is read as it is (no cleaning: validation judges it next) and
written as Parquet to ``raw/ds=<day>``; a rerun of the day replaces that partition.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from mlops_lifecycle import config, lake
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)


class SourceMissing(FileNotFoundError):
    """The day's partition is not (yet) at its source."""


class SourceUnreadable(ValueError):
    """The day's file exists but cannot be read as the declared format."""


def source_path(spec: ModelSpec, ds: str | dt.date) -> str:
    """The source location of a day's batch, from the spec's path template."""
    day = lake.as_date(ds)
    return spec.source.path.format(
        ds=day.isoformat(), ds_nodash=day.strftime("%Y%m%d"), model=spec.name, data_dir=config.data_dir()
    )


def read_source(spec: ModelSpec, ds: str | dt.date):
    """Read a day's batch from the spec's source into a DataFrame, unmodified but for
    parsing the event-time column as datetimes where it parses cleanly.

    Raises:
        SourceMissing: no file at the resolved path.
        SourceUnreadable: the file is not valid CSV/Parquet.
    """
    import pandas as pd

    path = Path(source_path(spec, ds))
    if not path.exists():
        raise SourceMissing(f"{spec.name}: no batch for {lake.as_date(ds)} at {path}")
    fmt = spec.source.resolved_format()
    try:
        if fmt == "csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - any reader failure means the same thing to the user
        raise SourceUnreadable(f"{spec.name}: {path} is not a readable {fmt} file: {exc}") from exc
    if spec.event_time in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[spec.event_time]):
        parsed = pd.to_datetime(frame[spec.event_time], errors="coerce")
        if parsed.notna().sum() == frame[spec.event_time].notna().sum():
            frame[spec.event_time] = parsed
    return frame


def ingest(spec: ModelSpec, ds: str | dt.date) -> dict[str, Any]:
    """Stage function: land the day's batch in ``raw/``. Returns rows, path and source hash.

    Raises:
        SourceMissing: nothing at the source path.
        SourceUnreadable: the bytes are not the declared format; they are copied to
            quarantine with a validation result naming the reader's error.
    """
    try:
        frame = read_source(spec, ds)
    except SourceUnreadable as exc:
        from mlops_lifecycle import validation

        failure = validation.record_unreadable(spec, ds, Path(source_path(spec, ds)), str(exc))
        raise SourceUnreadable(str(failure)) from exc
    target = lake.write_parquet(lake.data_file(spec.name, "raw", ds), frame)
    src = source_path(spec, ds)
    summary = {
        "model": spec.name,
        "ds": lake.as_date(ds).isoformat(),
        "rows": len(frame),
        "columns": list(map(str, frame.columns)),
        "source": src,
        "source_sha256": lake.file_sha256(Path(src)),
        "raw_path": str(target),
    }
    log.info("ingested %s rows of %s for %s from %s", summary["rows"], spec.name, summary["ds"], src)
    return summary
