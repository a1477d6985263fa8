"""The data-lake layout, and the only way the package writes files.

Every path the pipeline reads or writes is decided here, partitioned by model and
by the run's logical date (never by wall-clock time)::

    $MLOPS_DATA_DIR/lake/<model>/
        raw/ds=YYYY-MM-DD/data.parquet            the day's batch as ingested
        validated/ds=.../data.parquet             batches that passed validation
        quarantine/ds=.../data.parquet            batches that failed, with validation.json
        features/ds=.../data.parquet              the model inputs computed from validated rows
        predictions/ds=.../predictions.parquet    scored rows, with manifest.json
        labels/ds=.../data.parquet                late labels of the day's rows joined with their predictions
        training/end=YYYY-MM-DD/                  the assembled training window and its holdout
        reports/validation/ds=.../result.json     GX results for every batch
        reports/drift/ds=.../report.html          Evidently report, with summary.json
        reports/concept/ds=.../summary.json       realised metric of a day's predictions, once its labels are in
        reference/v<N>/reference.parquet          the drift reference of model version N
        staging/<zone>/ds=.../<run>/              a run's partial outputs (mapped scoring), committed together
        events/<kind>/<key>.json                  retrain requests, promotions, alerts

Writes go to a temporary name in the same folder and are renamed into place, so a
reader sees the old file or the new one, never half of one; a rerun replaces its own
outputs. Model names are validated identifiers, so no path can escape the lake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_lifecycle import config
from mlops_lifecycle.spec import IDENTIFIER

if TYPE_CHECKING:
    import pandas as pd

ZONES = ("raw", "validated", "quarantine", "features", "predictions", "labels")


class LakeError(ValueError):
    """A path would leave the lake, or a partition key is malformed."""


def root() -> Path:
    """The lake root: ``$MLOPS_DATA_DIR/lake``."""
    return config.data_dir() / "lake"


def _model_dir(model: str) -> Path:
    if not IDENTIFIER.match(model):
        raise LakeError(f"model name {model!r} is not a safe identifier; refusing to build a lake path from it")
    return root() / model


def as_date(ds: str | dt.date) -> dt.date:
    """Parse a partition key (``YYYY-MM-DD``) or pass a date through."""
    if isinstance(ds, dt.datetime):
        return ds.date()
    if isinstance(ds, dt.date):
        return ds
    try:
        return dt.date.fromisoformat(str(ds))
    except ValueError:
        raise LakeError(f"partition date {ds!r} is not YYYY-MM-DD") from None


def partition_dir(model: str, zone: str, ds: str | dt.date) -> Path:
    """Folder of one day's partition in a zone (raw, validated, quarantine, predictions, labels)."""
    if zone not in ZONES:
        raise LakeError(f"unknown lake zone {zone!r}; expected one of {ZONES}")
    return _model_dir(model) / zone / f"ds={as_date(ds).isoformat()}"


def data_file(model: str, zone: str, ds: str | dt.date) -> Path:
    """The Parquet file of a partition (``predictions.parquet`` in the predictions zone)."""
    name = "predictions.parquet" if zone == "predictions" else "data.parquet"
    return partition_dir(model, zone, ds) / name


def report_dir(model: str, kind: str, ds: str | dt.date) -> Path:
    """Folder of one day's report of a kind (``validation`` or ``drift``)."""
    if kind not in {"validation", "drift", "concept"}:
        raise LakeError(f"unknown report kind {kind!r}")
    return _model_dir(model) / "reports" / kind / f"ds={as_date(ds).isoformat()}"


def training_dir(model: str, end_ds: str | dt.date) -> Path:
    """Folder of the training set assembled for a window ending on ``end_ds``."""
    return _model_dir(model) / "training" / f"end={as_date(end_ds).isoformat()}"


def data_docs_dir() -> Path:
    """Where Great Expectations builds its Data Docs site (all models)."""
    return config.data_dir() / "data_docs"


def reference_file(model: str, version: str | int) -> Path:
    """Local cache of the drift reference sample logged with a model version."""
    return _model_dir(model) / "reference" / f"v{int(version)}" / "reference.parquet"


def staging_dir(model: str, zone: str, ds: str | dt.date, run_id: str) -> Path:
    """Private work folder of one run's partial outputs for a zone and day
    (``staging/<zone>/ds=.../<run key>``), published into the zone by a later commit.

    The run id is turned into a safe folder name (with a short hash, so two ids that
    differ only in unsafe characters never share a folder).
    """
    if zone not in ZONES:
        raise LakeError(f"unknown lake zone {zone!r}; expected one of {ZONES}")
    safe = "".join(c if c.isalnum() or c in "-_=." else "_" for c in str(run_id))[:80].lstrip(".") or "run"
    key = f"{safe}-{hashlib.sha256(str(run_id).encode()).hexdigest()[:10]}"
    return _model_dir(model) / "staging" / zone / f"ds={as_date(ds).isoformat()}" / key


def event_file(model: str, kind: str, key: str) -> Path:
    """One recorded event (a retrain request, an alert) keyed by something stable."""
    if not IDENTIFIER.match(kind) or not all(c.isalnum() or c in "-_=." for c in key) or ".." in key:
        raise LakeError(f"bad event kind/key {kind!r}/{key!r}")
    return _model_dir(model) / "events" / kind / f"{key}.json"


def partitions(model: str, zone: str) -> list[dt.date]:
    """Dates that have a complete partition in a zone, oldest first."""
    base = _model_dir(model) / zone
    if not base.is_dir():
        return []
    out = []
    for child in base.iterdir():
        if child.name.startswith("ds=") and (child / data_file(model, zone, child.name[3:]).name).exists():
            out.append(as_date(child.name[3:]))
    return sorted(out)


def events(model: str, kind: str) -> list[dict[str, Any]]:
    """All recorded events of a kind, sorted by file name."""
    base = _model_dir(model) / "events" / kind
    if not base.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(base.glob("*.json"))]


# ---- atomic writes ---------------------------------------------------------


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any error the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def write_text(target: Path, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: Path, payload: Any) -> Path:
    """Write JSON atomically (sorted keys, dates and paths as strings)."""
    return write_text(target, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(target: Path, frame: pd.DataFrame) -> Path:
    """Write a frame as Parquet atomically (pyarrow, no pandas index)."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, engine="pyarrow", index=False)
    return target


def replace_dir(target: Path, build: Any) -> Path:
    """Build a whole folder at a temporary name, then swap it in for ``target``.

    ``build(tmp_dir)`` fills the folder. The old folder is moved aside before the new
    one is renamed in and only deleted after, so a crash leaves one complete folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def remove_partition(model: str, zone: str, ds: str | dt.date) -> None:
    """Delete a day's partition in one zone (used when a rerun moves a batch elsewhere)."""
    path = partition_dir(model, zone, ds)
    if path.exists():
        shutil.rmtree(path)


def file_sha256(path: Path) -> str:
    """Content hash of a file, for lineage (which bytes a model or prediction came from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
