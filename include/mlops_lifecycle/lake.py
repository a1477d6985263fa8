"""The data-lake layout, and the only way the package writes files.

Every path the pipeline reads or writes is decided here, partitioned by model and
by the run's logical date (never by wall-clock time)::

    $MLOPS_DATA_DIR/lake/<model>/
        raw/ds=YYYY-MM-DD/data.parquet            the day's batch as ingested
        validated/ds=.../data.parquet             batches that passed validation (event times in UTC, no zone)
        quarantine/ds=.../data.parquet            the latest rejected attempt (or its source.*), with validation.json;
                  ds=.../attempt-<n>/             each earlier rejected attempt of the day, kept as it was
        features/ds=.../data.parquet              the model inputs computed from validated rows
        predictions/ds=.../predictions.parquet    scored rows, with manifest.json
        labels/ds=.../data.parquet                late labels of the day's rows joined with their predictions
        training/end=YYYY-MM-DD/                  the assembled training window and its holdout
        reports/validation/ds=.../result.json     GX result of the batch the day stands on
        reports/drift/ds=.../report.html          Evidently report, with summary.json
        reports/concept/ds=.../summary.json       realised metric of a day's predictions, once its labels are in
        reference/v<N>/reference.parquet          the drift reference of model version N
        staging/<zone>/ds=.../<run>/              a run's partial outputs (mapped scoring), committed together
        staging/raw/ds=.../data.parquet           a re-delivery of a validated day, until validation decides
        events/<kind>/<key>.json                  retrain requests, promotions, alerts
        backtests/<from>_<to>.json                a back-test's report (mlops backtest; it runs in a
                                                  scratch lake of its own and writes only this here)

Writes go to a temporary name in the same folder and are renamed into place, so a
reader sees the old file or the new one, never half of one; a rerun replaces its own
outputs. A partition of several files (features, predictions, quarantine, a drift
report) is built whole under a hidden name and swapped in with one atomic exchange on
Linux (:func:`replace_dir`); where that is not available, a crash in the middle of the
swap is repaired by the next reader or writer of the partition (:func:`recover`).
Model names are validated identifiers, so no path can escape the lake.

A day delivered again once it has a validated batch (a rerun, a backfill, a corrected
export) never overwrites the accepted one before it is judged. Ingestion lands it in
``staging/raw/ds=.../``; ``raw/``, ``validated/`` and everything derived from them go
on describing the accepted batch. If the new batch passes, validation moves it into
``raw/`` and replaces ``validated/`` (the downstream tasks of that run then rebuild
features and predictions). If it fails, it goes to ``quarantine/`` with its result,
whose ``kept`` section names the validated batch that still stands; the day's
``reports/validation/.../result.json`` stays that batch's result and points at the
rejected attempt (``rejected_redelivery``), so a quarantined and a validated batch
of one day always come with a record saying which is which. The run fails saying the
earlier batch was kept. Volume checks count the validated partitions' rows from their
Parquet footers, never from reports.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_lifecycle import config
from mlops_lifecycle.spec import IDENTIFIER

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

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
    """Folder of one day's partition in a zone (raw, validated, quarantine, predictions, labels).

    A partition that an interrupted folder swap left missing is restored first (:func:`recover`).
    """
    if zone not in ZONES:
        raise LakeError(f"unknown lake zone {zone!r}; expected one of {ZONES}")
    return _present(_model_dir(model) / zone / f"ds={as_date(ds).isoformat()}")


def data_file(model: str, zone: str, ds: str | dt.date) -> Path:
    """The Parquet file of a partition (``predictions.parquet`` in the predictions zone)."""
    name = "predictions.parquet" if zone == "predictions" else "data.parquet"
    return partition_dir(model, zone, ds) / name


def report_dir(model: str, kind: str, ds: str | dt.date) -> Path:
    """Folder of one day's report of a kind (``validation``, ``drift`` or ``concept``),
    restored first like :func:`partition_dir`."""
    return _present(_reports(model, kind) / f"ds={as_date(ds).isoformat()}")


def _reports(model: str, kind: str) -> Path:
    if kind not in {"validation", "drift", "concept"}:
        raise LakeError(f"unknown report kind {kind!r}")
    return _model_dir(model) / "reports" / kind


def training_dir(model: str, end_ds: str | dt.date) -> Path:
    """Folder of the training set assembled for a window ending on ``end_ds``."""
    return _model_dir(model) / "training" / f"end={as_date(end_ds).isoformat()}"


def data_docs_dir() -> Path:
    """Where Great Expectations builds its Data Docs site (all models)."""
    return config.data_dir() / "data_docs"


def validation_results_dir(model: str) -> Path:
    """Great Expectations' store of a model's validation results (``$MLOPS_DATA_DIR/gx/
    validation_results/<model>``): what its Data Docs index lists, one JSON per attempt.

    The site's index is rebuilt from this store on every validation; GX deletes the
    pages of results it cannot find there, so the store must hold every day's result.
    """
    _model_dir(model)  # the name check
    return config.data_dir() / "gx" / "validation_results" / model


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


def redelivery_file(model: str, ds: str | dt.date) -> Path:
    """Where a re-delivery of a day that already has a validated batch waits for its
    validation (``staging/raw/ds=.../data.parquet``; see the module docstring)."""
    return _model_dir(model) / "staging" / "raw" / f"ds={as_date(ds).isoformat()}" / "data.parquet"


_BACKTEST = re.compile(r"^(?P<start>[0-9]{4}-[0-9]{2}-[0-9]{2})_(?P<end>[0-9]{4}-[0-9]{2}-[0-9]{2})\.json$")


def backtest_file(model: str, start: str | dt.date, end: str | dt.date) -> Path:
    """The report of a back-test of ``model`` over ``start..end``: ``backtests/<start>_<end>.json``
    (a back-test of the same range again replaces it)."""
    return _model_dir(model) / "backtests" / f"{as_date(start).isoformat()}_{as_date(end).isoformat()}.json"


def backtests(model: str) -> list[tuple[dt.date, dt.date]]:
    """The ``(start, end)`` ranges that have a back-test report, newest range first."""
    base = _model_dir(model) / "backtests"
    if not base.is_dir():
        return []
    out = []
    for child in base.iterdir():
        match = _BACKTEST.match(child.name)
        if match is None:
            continue
        try:
            out.append((as_date(match["start"]), as_date(match["end"])))
        except LakeError:
            continue
    return sorted(out, key=lambda r: (r[1], r[0]), reverse=True)


def parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer (the data is not read)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def event_file(model: str, kind: str, key: str) -> Path:
    """One recorded event (a retrain request, an alert) keyed by something stable."""
    if not IDENTIFIER.match(kind) or not all(c.isalnum() or c in "-_=." for c in key) or ".." in key:
        raise LakeError(f"bad event kind/key {kind!r}/{key!r}")
    return _model_dir(model) / "events" / kind / f"{key}.json"


def partitions(model: str, zone: str) -> list[dt.date]:
    """Dates that have a complete partition in a zone, oldest first (after repairing the
    zone's interrupted folder swaps, see :func:`recover`)."""
    base = _model_dir(model) / zone
    if not base.is_dir():
        return []
    # A folder swap's leftovers: repair their partitions first.
    for name in sorted({m["name"] for c in base.iterdir() if (m := _SIDE.match(c.name)) is not None}):
        recover(base / name)
    out = []
    for child in base.iterdir():
        if child.name.startswith("ds=") and (child / data_file(model, zone, child.name[3:]).name).exists():
            out.append(as_date(child.name[3:]))
    return sorted(out)


def report_days(model: str, kind: str) -> list[dt.date]:
    """Dates that have a report folder of a kind (see :func:`report_dir`), oldest first."""
    base = _reports(model, kind)
    if not base.is_dir():
        return []
    out = []
    for child in base.iterdir():
        if child.is_dir() and child.name.startswith("ds="):
            try:
                out.append(as_date(child.name[3:]))
            except LakeError:
                continue
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


def move_file(source: Path, target: Path) -> Path:
    """Rename a finished file onto ``target`` (same filesystem: one atomic rename)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    return target


def write_parquet(target: Path, frame: pd.DataFrame) -> Path:
    """Write a frame as Parquet atomically (pyarrow, no pandas index)."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, engine="pyarrow", index=False)
    return target


# ---- folder swaps ------------------------------------------------------------------------
#
# A partition folder (features, predictions, quarantine, a drift report) is built whole at
# a hidden temporary name and swapped in for the old one. On Linux the swap is one
# renameat2(RENAME_EXCHANGE) call (glibc >= 2.28, Linux >= 3.15; ext4, xfs, btrfs, tmpfs
# support it): at every instant the partition path is the old folder or the new one, and
# the old one is then deleted from its temporary name. Elsewhere (another OS, or a
# filesystem that refuses the flag, such as NFS) the swap takes two renames, old folder
# aside then new folder in, and for the moment between them the partition is missing.
# A crash there leaves the old folder at ``.<name>.old-<owner>``: the next reader or
# writer of the partition that finds the partition missing renames it back
# (:func:`recover`), and temporary folders left by dead processes are deleted.
#
# Hidden names: ``.<name>.tmp-<pid>-<host>-<token>`` (being built, or the old contents
# being deleted after an exchange) and ``.<name>.old-<pid>-<host>-<token>`` (moved aside
# by the two-rename swap). A leftover is only touched once its owner is gone: a pid that
# no longer runs on this host, or, for another host, a name untouched for STALE_SECONDS.

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
STALE_SECONDS = 600
_SIDE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-(?P<host>[A-Za-z0-9-]*)-[0-9a-f]{8})?$")


def _load_renameat2() -> Any:
    """libc's ``renameat2`` through ctypes, or None where there is none (not Linux, or a
    libc older than glibc 2.28)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``: True when done, False when the kernel or the
    filesystem does not support it (the caller falls back to plain renames).

    Raises:
        OSError: any other failure (``FileExistsError`` for RENAME_NOREPLACE onto an
            existing path, ``FileNotFoundError`` for RENAME_EXCHANGE with a side missing).
    """
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}:
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _side_path(target: Path, kind: str) -> Path:
    """A hidden name beside ``target`` owned by this process (``kind``: tmp or old)."""
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{_host()}-{secrets.token_hex(4)}")


def _owner_gone(match: re.Match[str], path: Path) -> bool:
    """Whether the process that made a hidden swap folder is gone (see the notes above)."""
    host = match["host"]
    if host is not None and host != _host():
        return time.time() - _ctime(path) > STALE_SECONDS
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    if os.name != "posix":  # no harmless liveness probe (os.kill would signal it): go by age
        return time.time() - _ctime(path) > STALE_SECONDS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, failing with FileExistsError rather than replacing it."""
    if not _rename2(src, dst, RENAME_NOREPLACE):
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
        os.rename(src, dst)


def recover(target: Path) -> bool:
    """Clean up after folder swaps of ``target`` that crashed.

    When ``target`` is missing and a dead process left the old folder moved aside
    (``.<name>.old-*``), it is renamed back: the partition is what it was before the
    interrupted swap. Temporary folders of dead processes (half-built, or old contents
    not yet deleted) are removed. Folders of live processes are left alone.

    Returns:
        True when ``target`` was restored.
    """
    target = Path(target)
    try:
        entries = [e.name for e in os.scandir(target.parent) if e.name.startswith(f".{target.name}.")]
    except (FileNotFoundError, NotADirectoryError):
        return False
    sides = []
    for name in entries:
        match = _SIDE.match(name)
        side = target.parent / name
        if match is not None and match["name"] == target.name and _owner_gone(match, side):
            sides.append((match, side))
    restored = False
    # The most recent move aside first: it holds the last complete folder.
    for match, side in sorted(sides, key=lambda ms: _ctime(ms[1]), reverse=True):
        if match["kind"] == "old" and not os.path.lexists(target):
            try:
                _rename_noreplace(side, target)
            except (FileNotFoundError, FileExistsError):  # another reader restored it first
                continue
            restored = True
            log.warning("restored %s from %s, left by an interrupted folder swap", target, side.name)
        else:
            shutil.rmtree(side, ignore_errors=True)
    return restored


def _ctime(path: Path) -> float:
    """When a leftover was last renamed or changed (now, when it is already gone)."""
    try:
        return path.lstat().st_ctime
    except FileNotFoundError:
        return time.time()


def _present(path: Path) -> Path:
    """``path``, restored first when a crashed swap left it missing (one stat when it is there)."""
    if not os.path.lexists(path):
        recover(path)
    return path


def _move_aside(target: Path, old: Path) -> None:
    """First rename of the two-rename swap: the old folder leaves the partition path."""
    os.rename(target, old)


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` at ``target``. Afterwards whatever was at ``target`` is gone
    from it: either at ``tmp`` (exchanged) or deleted (two renames)."""
    for _ in range(3):
        try:
            if os.path.lexists(target):
                if _rename2(tmp, target, RENAME_EXCHANGE):
                    return
            elif _rename2(tmp, target, RENAME_NOREPLACE):
                return
            break  # no renameat2 here
        except (FileNotFoundError, FileExistsError):
            continue  # the target appeared or vanished under us: look again
    old = None
    if os.path.lexists(target):
        old = _side_path(target, "old")
        _move_aside(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        if old is not None and not os.path.lexists(target):
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_dir(target: Path, build: Any) -> Path:
    """Build a whole folder at a temporary name, then swap it in for ``target``.

    ``build(tmp_dir)`` fills the folder. If it raises, ``target`` is left as it was.
    Readers of ``target`` see the old folder or the new one, never a missing or
    half-built one (on Linux; elsewhere a crash mid-swap is repaired on the next access,
    see :func:`recover`). The old contents are deleted after the swap.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    tmp = _side_path(target, "tmp")
    tmp.mkdir()
    try:
        build(tmp)
        if os.name == "posix":  # the new files reach the disk before a rename can show them
            for child in tmp.iterdir():
                if child.is_file():
                    _fsync(child)
            _fsync(tmp)
        _swap_in(tmp, target)
        if os.name == "posix":
            _fsync(target.parent)
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
