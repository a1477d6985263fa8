"""Ingestion: wait for one day's batch, then copy it from its source into the lake's raw zone.

The spec names one of three kinds of source; each yields one frame for the day:

- ``file``: a path template on a local disk or any fsspec URL (``file://``, ``s3://``,
  ``memory://``...; with ``conn_id``, opened through Airflow's object storage), CSV or
  Parquet; a glob (``*``) names several files a day, read in name order and stacked.
- ``sql``: a query over an Airflow connection through the common-sql provider's hook,
  with the day bound as parameters (``ds``, ``next_ds``, ``ds_nodash``), never pasted in.
- ``python``: ``package.module:function`` called as ``fn(ds, spec)``.

No file, no rows, or None means the partition is not there (yet): the sensor waits.
The frame is read as it is (no cleaning: validation judges it next) and written as
Parquet to ``raw/ds=<day>``. A rerun replaces that partition, except on a day that
already has a validated batch: there the new one waits beside it until it passes
validation (see :func:`ingest`).

Bytes that cannot even be read as the declared format never reach the raw zone:
they are quarantined with a validation result that names the failed check and shows
what was found instead (an empty file, a truncated Parquet file, a PNG image, UTF-16
text, a CSV split by ``;``...).

Landing files are taken as they are only when they are what they claim to be. On a local
disk (a path or ``file://``) the day's file must be a regular file: a directory there is
refused as "a directory, not a file" (a Spark-style folder of part files is read through a
glob of its files instead), and so is a FIFO or a device. Symbolic links are followed only
inside the *landing root*, the fixed folder of ``source.path`` before its first part that
names the day or holds a glob (``{data_dir}/landing/{model}`` for
``{data_dir}/landing/{model}/{ds}.parquet``): a link to a file under it is read like the
file, a link that leads anywhere else (``/etc/passwd``, another feed, another model's lake)
is refused unread, and its quarantine record names the link and where it leads but copies
nothing. A file larger than ``source.max_bytes`` is refused from its size, before a byte is
read. A rejected file's copy in quarantine is made from the bytes that were judged (never
by opening the path again) and keeps the source file's permissions at most.

Why the CSV dialect is declared, not sniffed: the spec is the contract with the
upstream feed. Guessing an encoding can turn ``Zürich`` into ``ZÃ¼rich`` and still
"succeed", and delimiter sniffers misfire on quoted text and one-column files, so
loaders built for production (Snowflake file formats, BigQuery load jobs, PostgreSQL
``COPY``) read with a declared dialect and reject what does not match. The product
does the same, but says what it found: the likely delimiter or encoding and the
spec field to change (``source.delimiter``, ``source.encoding``) if the change upstream
was intended.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from mlops_lifecycle import config, lake
from mlops_lifecycle.spec import FileSourceSpec, ModelSpec, PythonSourceSpec, SourceSpec, SqlSourceSpec

log = logging.getLogger(__name__)

# Leading bytes of formats that are sometimes dropped where a data file should be.
MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Excel .xlsx workbook)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (e.g. Excel .xls)"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3", "a SQLite database"),
]
# Text that is data of another kind, named when it sits where a Parquet file should be.
TEXT_HINTS = [(b"{", "JSON text"), (b"[", "JSON text"), (b"<", "HTML or XML text")]
BOMS = [
    (b"\xff\xfe\x00\x00", "utf-32", "UTF-32 (byte-order mark ff fe 00 00)"),
    (b"\x00\x00\xfe\xff", "utf-32", "UTF-32 (byte-order mark 00 00 fe ff)"),
    (b"\xff\xfe", "utf-16", "UTF-16 (byte-order mark ff fe)"),
    (b"\xfe\xff", "utf-16", "UTF-16 (byte-order mark fe ff)"),
]
OTHER_DELIMITERS = [",", ";", "\t", "|"]


class SourceMissing(FileNotFoundError):
    """The day's partition is not (yet) at its source."""


class SourceFailed(RuntimeError):
    """The source could not be asked: its connection is unknown, the query failed, or the
    callable does not import or returned something that is not a DataFrame."""


class SourceUnreadable(ValueError):
    """The day's file exists but cannot be read as the declared format.

    ``check`` names the failed check (``source_not_empty``, ``parquet_format``,
    ``csv_encoding``, ``csv_delimiter``, ``csv_text``, ``csv_parse``, ``csv_header``,
    ``source_files_match``, ``source_is_file``, ``source_symlink``, ``source_size``);
    ``examples`` shows what was found instead. ``source_name`` says which file it was;
    ``data`` holds the bytes that were judged, or ``local_path`` names a vetted local file
    to copy (a file refused from its size); neither is set when nothing may be copied (a
    link out of the landing root, a directory). ``source_mode`` is the file's permission
    bits, the most the quarantine copy may have.
    """

    def __init__(self, message: str, *, check: str = "readable_source", description: str | None = None,
                 examples: list[Any] | None = None):
        super().__init__(message)
        self.check = check
        self.description = description or "the source file is readable as its declared format"
        self.examples = examples or []
        self.source_name: str | None = None
        self.local_path: Path | None = None
        self.data: bytes | None = None
        self.source_mode: int | None = None


def source_path(spec: ModelSpec, ds: str | dt.date, source: SourceSpec | None = None) -> str:
    """The location of a day's batch (a path, URL or glob), from a file source's template.

    Args:
        source: the source to resolve; default the spec's ``source`` (``spec.labels.source``
            for labels).

    Raises:
        ValueError: the source is not a file source.
    """
    source = source or spec.source
    if source.kind != "file":
        raise ValueError(f"{spec.name}: a {source.kind} source has no path template")
    day = lake.as_date(ds)
    return source.path.format(
        ds=day.isoformat(), ds_nodash=day.strftime("%Y%m%d"), model=spec.name, data_dir=config.data_dir()
    )


def describe_source(spec: ModelSpec, ds: str | dt.date, source: SourceSpec | None = None) -> str:
    """One line naming where a day's batch is read from (for logs, messages and lineage)."""
    source = source or spec.source
    if source.kind == "file":
        return source_path(spec, ds, source)
    if source.kind == "sql":
        return f"sql query on connection {source.conn_id!r} with ds={lake.as_date(ds)}"
    return f"python {source.callable}(ds={lake.as_date(ds)})"


# ---- files: local paths, fsspec URLs, globs --------------------------------------------


# The package that gives fsspec (and so pandas and pyarrow) each common URL scheme.
FSSPEC_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "abfss": "adlfs",
                   "az": "adlfs", "hdfs": "pyarrow's HDFS support", "sftp": "paramiko", "http": "aiohttp",
                   "https": "aiohttp"}
AIRFLOW_STORAGE_PROVIDERS = {"s3": "apache-airflow-providers-amazon[s3fs]", "gs": "apache-airflow-providers-google",
                             "gcs": "apache-airflow-providers-google", "abfs": "apache-airflow-providers-microsoft-azure",
                             "az": "apache-airflow-providers-microsoft-azure"}


def _filesystem(source: FileSourceSpec, location: str) -> tuple[Any, str]:
    """The fsspec filesystem of a path or URL, and the path inside it.

    With ``conn_id`` the filesystem comes from Airflow's object storage, which takes its
    credentials from that connection (the provider of the scheme must be installed).
    """
    scheme = location.split("://", 1)[0] if "://" in location else "file"
    try:
        if source.conn_id:
            from airflow.sdk.io.fs import get_fs

            fs = get_fs(scheme, source.conn_id)
            return fs, type(fs)._strip_protocol(location)
        import fsspec

        return fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as exc:
        # fsspec and Airflow's object storage name a missing package or scheme tersely;
        # say which package serves the scheme, and where it has to be installed.
        package = FSSPEC_PACKAGES.get(scheme, f"the fsspec implementation of {scheme!r}")
        via = (f"Airflow's object storage for connection {source.conn_id!r} needs the provider of {scheme!r} "
               f"(e.g. {AIRFLOW_STORAGE_PROVIDERS.get(scheme, 'its Airflow provider')})" if source.conn_id
               else f"fsspec needs {package}")
        raise SourceFailed(f"cannot open {location}: {via}; install it in every Airflow image/venv ({exc})") from exc


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return bool({"file", "local"} & set(protocols))


def _display(fs: Any, path: str) -> str:
    return path if _is_local(fs) else fs.unstrip_protocol(path)


_DAY_MARK = "\x00day\x00"


def landing_root(spec: ModelSpec, source: FileSourceSpec | None = None) -> str:
    """The landing root of a file source: the resolved ``source.path`` up to (not
    including) its first part that names the day (``{ds}``, ``{ds_nodash}``) or holds a
    glob. Symbolic links are followed only to files under it (see the module docstring).
    """
    source = source or spec.source
    marked = source.path.format(ds=_DAY_MARK, ds_nodash=_DAY_MARK, model=spec.name, data_dir=config.data_dir())
    parts = marked.split("/")
    cut = next((i for i, part in enumerate(parts) if _DAY_MARK in part or any(c in part for c in "*?[")),
               len(parts) - 1)
    return "/".join(parts[:cut]) or ("/" if marked.startswith("/") else ".")


def _local_entry(path: str, root: str) -> dict[str, Any] | None:
    """What is at a local path, judged against the landing root (both resolved, so a root
    reached through a link, like a mount point, is fine): ``{"size", "real", "mode"}`` for
    a regular file under the root; ``{"problem": ...}`` for anything that must not be read;
    None when nothing is there (or a link under the root whose target is not there yet)."""
    if not os.path.lexists(path):
        return None
    real = os.path.realpath(path)
    if os.path.commonpath([real, root]) != root:
        return {"problem": "outside", "target": real, "size": 0}
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return {"problem": "directory", "size": 0, "real": real}
    if not stat.S_ISREG(st.st_mode):
        return {"problem": "special", "size": 0, "real": real}
    return {"size": st.st_size, "real": real, "mode": stat.S_IMODE(st.st_mode)}


def _source_files(spec: ModelSpec, source: FileSourceSpec,
                  ds: str | dt.date) -> tuple[str, Any, dict[str, dict[str, Any]]]:
    """The resolved template, its filesystem, and what is there now, in name order:
    path -> ``{"size"}`` (plus ``real`` and ``mode`` on a local disk), or ``{"problem"}``
    for an entry that is there but must not be read (a directory, a link out of the
    landing root, a FIFO or device): those are reported by :func:`_read_files`, never
    skipped as if nothing had arrived."""
    location = source_path(spec, ds, source)
    fs, path = _filesystem(source, location)
    if _is_local(fs):
        _, root = _filesystem(source, landing_root(spec, source))
        root = os.path.realpath(root)
        names = sorted(fs.glob(path)) if source.is_glob else [path]
        entries = {p: _local_entry(p, root) for p in names}
        return location, fs, {p: e for p, e in entries.items() if e is not None}
    if source.is_glob:
        found = fs.glob(path, detail=True)
    else:
        try:
            found = {path: fs.info(path)}
        except FileNotFoundError:
            found = {}
    files = {p: ({"problem": "directory", "size": 0} if info.get("type") == "directory"
                 else {"size": int(info.get("size") or 0)}) for p, info in sorted(found.items())}
    return location, fs, files


def _refusal(spec: ModelSpec, source: FileSourceSpec, name: str, entry: dict[str, Any]) -> SourceUnreadable:
    """The error for an entry that is there but must not be read."""
    problem = entry["problem"]
    if problem == "outside":
        root = landing_root(spec, source)
        return SourceUnreadable(
            f"{name} is a symbolic link to {entry['target']}, outside the landing root {root}: links are followed "
            "only to files under that folder, so it was refused unread (and nothing of it was copied). Deliver the "
            "file itself, or a link to a file under the landing root",
            check="source_symlink", description="the source file is a file under the landing root (no link out of it)",
            examples=[f"{name} -> {entry['target']}"],
        )
    if problem == "directory":
        hint = ""
        real = entry.get("real")
        if real:
            inside = sorted(os.listdir(real))[:3]
            if inside:
                hint = (f" It holds {', '.join(inside)}...: if it is a folder of part files (Spark, Hive), point "
                        "source.path at a glob of them (e.g. .../{ds}.parquet/*.parquet)")
        return SourceUnreadable(
            f"{name} is a directory, not a file.{hint}", check="source_is_file",
            description="the source is a regular file", examples=[f"{name}/ (a directory)"],
        )
    return SourceUnreadable(
        f"{name} is not a regular file (a FIFO, socket or device): refused unread", check="source_is_file",
        description="the source is a regular file", examples=[name],
    )


def _human(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _read_local(real: str) -> bytes:
    """The bytes of a vetted local file, opened without following a link put there since."""
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


# ---- SQL queries and Python callables ----------------------------------------------------


def sql_parameters(ds: str | dt.date) -> dict[str, Any]:
    """The parameters bound to a SQL source's query: ``ds`` and ``next_ds`` (dates) and ``ds_nodash``."""
    day = lake.as_date(ds)
    return {"ds": day, "next_ds": day + dt.timedelta(days=1), "ds_nodash": day.strftime("%Y%m%d")}


def query_source(source: SqlSourceSpec, parameters: dict[str, Any], *, where: str = "source"):
    """Run a SQL source's query with ``parameters`` bound by the database driver, through
    the common-sql hook of the source's Airflow connection.

    Raises:
        SourceFailed: the connection is unknown or has no SQL hook, or the query failed;
            the message names the connection and the database's error.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    try:
        hook = BaseHook.get_connection(source.conn_id).get_hook()
    except Exception as exc:  # noqa: BLE001 - unknown id, unknown type, missing provider: all the same to the user
        raise SourceFailed(f"{where}.conn_id {source.conn_id!r}: cannot open the connection: {exc}") from exc
    if not isinstance(hook, DbApiHook):
        raise SourceFailed(
            f"{where}.conn_id {source.conn_id!r} is a {type(hook).__name__}, not a SQL connection (common-sql DbApiHook)"
        )
    try:
        return hook.get_df(source.query, parameters=parameters, df_type="pandas")
    except Exception as exc:  # noqa: BLE001 - the driver's own error says what went wrong
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise SourceFailed(
            f"{where}: the query on connection {source.conn_id!r} failed ({type(exc).__name__}): {detail[:500]}"
        ) from exc


def _call_source(spec: ModelSpec, source: PythonSourceSpec, ds: str | dt.date, where: str):
    import pandas as pd

    from mlops_lifecycle import features

    fn = features.import_function(source.callable, where=f"{spec.name}: {where}.callable {source.callable!r}",
                                  arguments=("ds", "spec"), error=SourceFailed)
    result = fn(lake.as_date(ds), spec)
    if result is not None and not isinstance(result, pd.DataFrame):
        raise SourceFailed(
            f"{spec.name}: {where}.callable {source.callable!r} returned a {type(result).__name__}, "
            "not a pandas DataFrame (or None while the day is not there yet)"
        )
    return result


# ---- waiting for the batch ------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def look_for_source(spec: ModelSpec, ds: str | dt.date, source: SourceSpec | None = None) -> dict[str, Any] | None:
    """One look for a day's partition at its source, whatever its kind.

    Returns:
        None while nothing is there (no file, an empty glob, no rows, None from the
        callable); otherwise ``{"path", "bytes"}`` for one file, ``{"path", "files",
        "bytes"}`` for a glob, ``{"source", "rows"}`` for a query or a callable.
    """
    source = source or spec.source
    if source.kind == "file":
        location, fs, files = _source_files(spec, source, ds)
        if not files:
            return None
        # Something is there, even a directory or a refused link: ingest reports it rather
        # than the sensor waiting for a file that is already "there" in the wrong shape.
        size = sum(e["size"] for e in files.values())
        if not source.is_glob:
            return {"path": location, "bytes": size}
        return {"path": location, "files": [_display(fs, f) for f in files], "bytes": size}
    frame = _frame_of(spec, source, ds, "source" if source is spec.source else "labels.source")
    if frame is None or frame.empty:
        return None
    return {"source": describe_source(spec, ds, source), "rows": len(frame)}


def _frame_of(spec: ModelSpec, source: SqlSourceSpec | PythonSourceSpec, ds: str | dt.date, where: str):
    if source.kind == "sql":
        return query_source(source, sql_parameters(ds), where=f"{spec.name}: {where}")
    return _call_source(spec, source, ds, where)


def _nothing_there(spec: ModelSpec, source: SourceSpec, ds: str | dt.date) -> str:
    """What "missing" means for this source, in words."""
    if source.kind == "file":
        location = source_path(spec, ds, source)
        return f"no file matches {location}" if source.is_glob else f"no file at {location}"
    if source.kind == "sql":
        return f"the query on connection {source.conn_id!r} returned no rows"
    return f"{source.callable} returned no rows"


def _staged_fetch(spec: ModelSpec, ds: str | dt.date, run_id: str) -> Path:
    return lake.staging_dir(spec.name, "raw", ds, run_id) / "fetched.parquet"


def wait_for_source(spec: ModelSpec, ds: str | dt.date, *, waited_seconds: float,
                    run_id: str | None = None) -> dict[str, Any] | None:
    """One look for the day's batch, as a sensor pokes.

    For a query or a callable the look *is* the fetch: with ``run_id``, the rows found
    are staged for that run and :func:`ingest` of the same run lands them without asking
    the source again, so a query runs once per day, not twice, and a callable that is
    not safe to call twice is not.

    Args:
        waited_seconds: how long the wait has lasted so far (0 on the first look).
        run_id: the Airflow run the look belongs to (names its staging folder).

    Returns:
        What :func:`look_for_source` found, plus ``waited_seconds``, once the batch is
        there; None while it is missing and the wait is still inside
        ``source.wait_timeout_minutes``.

    Raises:
        SourceMissing: the batch is still missing and the wait is over (with a timeout of
            0, on the first look); the message names the source and how long it waited.
        SourceFailed: the query or the callable failed (not a missing batch).
    """
    if spec.source.kind != "file" and run_id is not None:
        try:
            frame, lineage = read_frame(spec, ds)
        except SourceMissing:
            found = None
        else:
            staged = lake.write_parquet(_staged_fetch(spec, ds, run_id), frame)
            lake.write_json(staged.with_suffix(".json"), lineage)
            found = {"source": lineage["source"], "rows": len(frame), "staged": True}
    else:
        found = look_for_source(spec, ds)
    if found is not None:
        return {**found, "waited_seconds": round(waited_seconds, 1)}
    missing = _nothing_there(spec, spec.source, ds)
    timeout = spec.source.wait_timeout_minutes * 60
    if waited_seconds < timeout:
        log.info("%s: no batch for %s yet (%s); waited %s of %s", spec.name, lake.as_date(ds), missing,
                 _duration(waited_seconds), _duration(timeout))
        return None
    how = (f"after waiting {_duration(waited_seconds)}" if timeout > 0
           else "on its only check")
    raise SourceMissing(
        f"{spec.name}: the batch for {lake.as_date(ds)} never arrived: {missing} {how} "
        f"(source.wait_timeout_minutes={spec.source.wait_timeout_minutes:g}). Nothing downstream ran for this day; "
        "deliver the batch and rerun the day."
    )


# ---- reading it -----------------------------------------------------------------------


def _what_is(head: bytes) -> str:
    """A plain description of a file from its first bytes."""
    for magic, name in MAGIC + TEXT_HINTS:
        if head.startswith(magic):
            return name
    for bom, _, name in BOMS:
        if head.startswith(bom):
            return f"{name.split(' ')[0]} text"
    if b"\x00" in head:
        return "binary data"
    text = head.decode("utf-8", errors="replace").strip().splitlines()
    return f"text {text[0][:60]!r}" if text else "blank text"


def _read_parquet(path: str, data: bytes):
    import io

    import pandas as pd

    size = len(data)
    head, tail = data[:64], data[-4:]
    if not head.startswith(b"PAR1"):
        raise SourceUnreadable(
            f"{path} is not a Parquet file: it looks like {_what_is(head)} ({size} bytes)",
            check="parquet_format", description="the source file is a Parquet file", examples=[repr(head[:16])],
        )
    if tail != b"PAR1":
        raise SourceUnreadable(
            f"{path} is a truncated Parquet file: {size} bytes with no footer at its end (the writer "
            "stopped before finishing it)",
            check="parquet_format", description="the source file is a complete Parquet file",
            examples=[f"last bytes {tail!r}, expected b'PAR1'"],
        )
    try:
        return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - any reader failure means the same thing to the user
        raise SourceUnreadable(f"{path} is not a readable Parquet file: {exc}", check="parquet_format",
                               description="the source file is a readable Parquet file") from exc


def _decode_csv(source: FileSourceSpec, path: str, data: bytes, where: str) -> str:
    """The file's text in the declared encoding, or SourceUnreadable saying what it is."""
    import codecs

    declared = source.encoding
    family = codecs.lookup(declared).name
    head = data[:64]
    for bom, bom_family, name in BOMS:
        if head.startswith(bom) and not family.startswith(bom_family):
            raise SourceUnreadable(
                f"{path} is {name}, but the spec declares {where}.encoding: {declared}. Re-export it as "
                f"{declared}, or set {where}.encoding: {bom_family} if the feed changed on purpose",
                check="csv_encoding", description=f"the CSV text is encoded as {declared}", examples=[repr(head[:16])],
            )
    for magic, name in MAGIC:
        if head.startswith(magic):
            raise SourceUnreadable(
                f"{path} is not CSV text: it is {name} ({len(data)} bytes)", check="csv_text",
                description="the source file is CSV text", examples=[repr(head[:16])],
            )
    # Anywhere in the file, not only its head: pandas' C parser ends a field at a NUL byte
    # (the rest of the line silently lost). memchr-fast, so the whole file is searched.
    nul = data.find(b"\x00")
    if nul >= 0 and not family.startswith(("utf-16", "utf-32")):
        line_no = data.count(b"\n", 0, nul) + 1
        start = data.rfind(b"\n", 0, nul) + 1
        # ASCII text in UTF-16 has a NUL in every other byte (odd ones little-endian, even ones big-endian).
        utf16 = max(data[1:64:2].count(0), data[0:64:2].count(0)) >= min(16, len(data[:64]) // 2)
        what = "UTF-16 without a byte-order mark" if utf16 else "binary data, or a file damaged in transfer"
        raise SourceUnreadable(
            f"{path} is not {declared} CSV text: it holds NUL bytes, the first at offset {nul} (line {line_no}): "
            f"{what}",
            check="csv_text", description="the source file is CSV text",
            examples=[f"line {line_no}: {data[start:start + 48]!r}"],
        )
    try:
        return data.decode("utf-8-sig" if family == "utf-8" else declared)
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        line = data[start : end if end >= 0 else len(data)]
        guess = line.decode("cp1252", errors="replace")
        raise SourceUnreadable(
            f"{path} is not valid {declared}: byte {data[exc.start:exc.end]!r} at offset {exc.start} (line {line_no}) "
            f"cannot be decoded. Read as cp1252/latin-1 that line says {guess[:120]!r}; re-export the file as "
            f"{declared}, or set {where}.encoding if the feed changed on purpose",
            check="csv_encoding", description=f"the CSV text is encoded as {declared}",
            examples=[f"line {line_no}: {guess[:120]}"],
        ) from exc


# Only an empty field is a null unless the spec lists more (source.null_values). pandas
# also reads 'n/a', 'NA', 'null', 'None' and a dozen more words as missing, which made
# text in a number column pass as nulls (reported as 'never null', or let through on a
# nullable feature) where a Parquet file of the same rows is rejected for its text; and a
# category 'NA' (Namibia) became a null.
CSV_NULLS = {"keep_default_na": False, "na_values": [""]}


def _read_csv(spec: ModelSpec, source: FileSourceSpec, path: str, data: bytes, where: str):
    import io

    import pandas as pd

    text = _decode_csv(source, path, data, where)
    delimiter = source.delimiter
    header = text.split("\n", 1)[0].rstrip("\r")
    if delimiter not in header:
        expected = {spec.entity_id, spec.event_time, *spec.feature_names, spec.target.column}
        best = max(OTHER_DELIMITERS, key=lambda d: (len(expected & set(header.split(d))), header.count(d)))
        if best != delimiter and header.count(best) > 0:
            shown = "\\t" if best == "\t" else best
            raise SourceUnreadable(
                f"{path} is delimited by {shown!r}, not by the declared {where}.delimiter {delimiter!r}: its header "
                f"{header[:160]!r} splits into {len(header.split(best))} fields on {shown!r}. Re-export it with "
                f"{delimiter!r}, or set {where}.delimiter: {shown!r} if the feed changed on purpose",
                check="csv_delimiter", description=f"the CSV fields are separated by {delimiter!r}",
                examples=[header[:160]],
            )
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, keep_default_na=False, na_values=list(source.null_values))
    except pd.errors.EmptyDataError as exc:
        raise SourceUnreadable(f"{path} holds no CSV header and no rows ({len(data)} bytes of blank text)",
                               check="source_not_empty", description="the source file has a header and rows",
                               examples=[repr(data[:32])]) from exc
    except Exception as exc:  # noqa: BLE001 - ragged rows, bad quoting: the parser's message says where
        detail = " ".join(str(exc).split())
        raise SourceUnreadable(f"{path} is not well-formed CSV: {detail}", check="csv_parse",
                               description="the source file is well-formed CSV", examples=[detail[:200]]) from exc
    expected = {spec.entity_id, spec.event_time, *spec.feature_names, spec.target.column}
    if expected & {str(c) for c in frame.columns}:
        # A file with none of the spec's columns is not this model's batch at all:
        # validation says so, which helps more than a count of fields per line.
        _check_csv_rows(path, text, delimiter, padded=bool(len(frame.columns)) and bool(frame.iloc[:, -1].isna().any()))
    return frame


def _check_csv_rows(path: str, text: str, delimiter: str, *, padded: bool = True) -> None:
    """Every row has the header's number of fields, and the header names each column once.

    pandas fills a short row with nulls and renames a repeated header name to ``name.1``:
    a file cut off mid-row (a truncated transfer) or a row that lost its delimiters would
    pass as missing values, and a duplicated column would be reported as an unknown one.
    The csv module re-reads the text with the same quoting rules (C speed). A short row
    leaves the last column null, so with ``padded`` False (no null there) only the header
    is read: the common case costs nothing.
    """
    import csv
    import io
    from collections import Counter

    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(rows, [])
    repeated = [name for name, n in Counter(header).items() if n > 1]
    if repeated:
        raise SourceUnreadable(
            f"{path}: the header names column(s) {repeated} more than once ({len(header)} names): every column "
            "must appear once",
            check="csv_header", description="the CSV header names each column once", examples=header[:12],
        )
    width = len(header)
    if not padded:
        return
    for row in rows:
        if row and len(row) < width:
            line_no = rows.line_num
            ends_here = next(rows, None) is None and not text.endswith(("\n", "\r"))
            cut = " The file ends inside this row: it was cut short (a truncated transfer or export)." if (
                ends_here) else ""
            raise SourceUnreadable(
                f"{path} is not well-formed CSV: line {line_no} has {len(row)} field(s), the header has {width}.{cut}",
                check="csv_parse", description="the source file is well-formed CSV",
                examples=[f"line {line_no}: {delimiter.join(row)[:160]}"],
            )


def _read_file(spec: ModelSpec, source: FileSourceSpec, name: str, data: bytes, where: str):
    if not data:
        raise SourceUnreadable(f"{name} is empty (0 bytes): the export wrote nothing, not even a header",
                               check="source_not_empty", description="the source file is not empty",
                               examples=["0 bytes"])
    if source.resolved_format() == "csv":
        return _read_csv(spec, source, name, data, where)
    return _read_parquet(name, data)


def _read_files(spec: ModelSpec, source: FileSourceSpec, ds: str | dt.date, where: str):
    """The day's files stacked in name order, with their lineage (names and one content hash)."""
    import hashlib

    import pandas as pd

    location, fs, files = _source_files(spec, source, ds)
    if not files:
        what = "no file matches" if source.is_glob else "no batch for {day} at"
        raise SourceMissing(f"{spec.name}: {what.format(day=lake.as_date(ds))} {location}")
    for path, entry in files.items():
        if "problem" in entry:
            exc = _refusal(spec, source, _display(fs, path), entry)
            exc.source_name = _display(fs, path)
            raise exc
    total = sum(e["size"] for e in files.values())
    if total > source.max_bytes:
        first = next(iter(files))
        exc = SourceUnreadable(
            f"{location} is {total} bytes ({_human(total)}), more than {where}.max_bytes={source.max_bytes} "
            f"({_human(source.max_bytes)}): refused from its size, unread. A day this large is a runaway export; "
            f"if days really grew, raise {where}.max_bytes",
            check="source_size", description=f"the day's source is at most {where}.max_bytes bytes",
            examples=[f"{total} bytes in {len(files)} file(s)"],
        )
        exc.source_name = _display(fs, first)
        if _is_local(fs) and len(files) == 1:  # kept by a streamed copy, never loaded
            exc.local_path, exc.source_mode = Path(files[first]["real"]), files[first]["mode"]
        raise exc
    frames, names, digests = [], [], []
    for path, entry in files.items():
        name = _display(fs, path)
        data = _read_local(entry["real"]) if "real" in entry else fs.cat_file(path)
        try:
            frame = _read_file(spec, source, name, data, where)
            if frames and list(frame.columns) != list(frames[0].columns):
                raise SourceUnreadable(
                    f"{name} has columns {list(map(str, frame.columns))}, but {names[0]} (the first file of the day) "
                    f"has {list(map(str, frames[0].columns))}: every file of a day must have the same columns",
                    check="source_files_match", description="every file of the day has the same columns",
                    examples=[names[0], name],
                )
        except SourceUnreadable as exc:
            exc.source_name, exc.data, exc.source_mode = name, data, entry.get("mode")
            raise
        frames.append(frame)
        names.append(name)
        digests.append(hashlib.sha256(data).hexdigest())
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    # One file: its own hash, as before; several: a hash of the list of (name, hash).
    sha = digests[0] if len(digests) == 1 else hashlib.sha256(
        "\n".join(f"{n} {d}" for n, d in zip(names, digests, strict=True)).encode()
    ).hexdigest()
    return frame, {"source": location, "files": names, "source_sha256": sha}


def _frame_sha256(frame) -> str:
    import hashlib

    import pandas as pd

    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def read_frame(spec: ModelSpec, ds: str | dt.date, source: SourceSpec | None = None, *,
               where: str = "source") -> tuple[Any, dict[str, Any]]:
    """Read a day's frame from any kind of source, unmodified but for parsing the
    event-time column as datetimes where it parses cleanly.

    Args:
        source: default the spec's ``source``; ``spec.labels.source`` for labels.
        where: the spec field the source sits at, for messages (``labels.source``).

    Returns:
        The frame, and its lineage: ``{"source", "source_sha256"}`` (and ``files`` for files).

    Raises:
        SourceMissing: no file (an empty glob), no rows, or None from the callable.
        SourceUnreadable: a file is empty, or not valid CSV/Parquet of the declared
            dialect; ``check`` and the message say which and what was found.
        SourceFailed: the query or the callable failed.
    """
    import pandas as pd

    source = source or spec.source
    if source.kind == "file":
        frame, lineage = _read_files(spec, source, ds, where)
    else:
        frame = _frame_of(spec, source, ds, where)
        if frame is None or frame.empty:
            raise SourceMissing(f"{spec.name}: no batch for {lake.as_date(ds)}: {_nothing_there(spec, source, ds)}")
        lineage = {"source": describe_source(spec, ds, source), "source_sha256": _frame_sha256(frame)}
    # Text only: pandas reads numbers as nanoseconds since 1970, so epoch seconds would
    # "parse" into 1970 and be judged as dates; numbers stay numbers, for the type check.
    if spec.event_time in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[spec.event_time]) and (
            not pd.api.types.is_numeric_dtype(frame[spec.event_time])):
        parsed = pd.to_datetime(frame[spec.event_time], errors="coerce")
        if parsed.notna().sum() == frame[spec.event_time].notna().sum():
            frame[spec.event_time] = parsed
    return frame, lineage


def read_source(spec: ModelSpec, ds: str | dt.date):
    """Read a day's batch from the spec's source into a DataFrame (see :func:`read_frame`).

    Raises:
        SourceMissing: nothing there for the day.
        SourceUnreadable: the file is empty, or not valid CSV/Parquet of the declared
            dialect; ``check`` and the message say which and what was found.
        SourceFailed: the query or the callable failed.
    """
    return read_frame(spec, ds)[0]


def _quarantine_unreadable(spec: ModelSpec, ds: str | dt.date, exc: SourceUnreadable):
    """Record a rejected source in quarantine: the bytes that were judged (or a streamed
    copy of a vetted local file refused from its size), or only the record when nothing
    may be copied (a link out of the landing root, a directory)."""
    import tempfile

    from mlops_lifecycle import validation

    def record(path: Path | None):
        return validation.record_unreadable(spec, ds, path, str(exc), check=exc.check, description=exc.description,
                                            examples=exc.examples, source_name=exc.source_name,
                                            source_mode=exc.source_mode)

    if exc.data is None:
        return record(exc.local_path)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / (Path((exc.source_name or "source").split("://")[-1]).name or "source")
        copy.write_bytes(exc.data)
        return record(copy)


def ingest(spec: ModelSpec, ds: str | dt.date, *, run_id: str | None = None) -> dict[str, Any]:
    """Stage function: land the day's batch in ``raw/``. Returns rows, path and source lineage.

    ``run_id``: when :func:`wait_for_source` of this run already fetched the rows of a
    query or a callable, they are landed as fetched (and their staging copy removed).

    A day that already has a validated batch keeps it in ``raw/``: the new delivery
    waits in :func:`mlops_lifecycle.lake.redelivery_file` for validation to accept or
    reject it (``redelivery`` is True in the summary).

    With a ``labels`` section the batch may leave out the target column (its labels
    arrive later): it is added, empty, so every batch has the spec's columns.

    Raises:
        SourceMissing: nothing at the source.
        SourceUnreadable: the bytes are not the declared format; they are copied to
            quarantine with a validation result naming the failed check, and the raw
            zone is left as it was.
        SourceFailed: the query or the callable failed.
    """
    staged_path = _staged_fetch(spec, ds, run_id) if run_id is not None and spec.source.kind != "file" else None
    try:
        if staged_path is not None and staged_path.exists():
            import pandas as pd

            frame = pd.read_parquet(staged_path, engine="pyarrow")
            lineage = {**lake.read_json(staged_path.with_suffix(".json")), "fetched_by": "wait_for_batch"}
        else:
            frame, lineage = read_frame(spec, ds)
    except SourceUnreadable as exc:
        failure = _quarantine_unreadable(spec, ds, exc)
        raise SourceUnreadable(str(failure), check=exc.check, description=exc.description,
                               examples=exc.examples) from exc
    if spec.labels is not None and spec.target.column not in frame.columns:
        frame[spec.target.column] = float("nan")
    redelivery = lake.redelivery_file(spec.name, ds)
    if lake.data_file(spec.name, "validated", ds).exists():
        # The day already has a validated batch: raw/ keeps the batch it was made from
        # until validation accepts this one (see mlops_lifecycle.lake).
        target = lake.write_parquet(redelivery, frame)
    else:
        target = lake.write_parquet(lake.data_file(spec.name, "raw", ds), frame)
        redelivery.unlink(missing_ok=True)
    summary = {
        "model": spec.name,
        "ds": lake.as_date(ds).isoformat(),
        "rows": len(frame),
        "columns": list(map(str, frame.columns)),
        "source_kind": spec.source.kind,
        **lineage,
        "raw_path": str(target),
        "redelivery": target == redelivery,
    }
    if staged_path is not None:
        shutil.rmtree(staged_path.parent, ignore_errors=True)
    log.info("ingested %s rows of %s for %s from %s", summary["rows"], spec.name, summary["ds"], summary["source"])
    return summary
