"""Feature materialisation and batch scoring with the champion, streamed.

Each predictions row carries the entity id, the event time, the model name and
version, the MLflow run id of that version and the Airflow run id, and each day's
``manifest.json`` adds the input partition's content hash and the code version:
together they trace any prediction back to the model, the data and the code.

Memory does not grow with the partition: features are computed and written one
record batch at a time, and scoring reads the features Parquet row group by row
group (``ParquetFile.iter_batches``), predicts each batch with the booster's
``inplace_predict`` and appends it to a ``ParquetWriter`` writing a temporary file
that is renamed into place.

A large day is scored in chunks that Airflow maps over (one task per chunk, so
Celery or Kubernetes workers share it):

1. :func:`plan_scoring` splits the features partition into chunks of whole row
   groups (files x row-group ranges, at most ``MLOPS_SCORING_CHUNK_ROWS`` rows each);
   a small day is one chunk.
2. :func:`score_chunk` scores one chunk into its own part file under the run's
   staging folder. It is idempotent: a retry rewrites the same part, atomically.
3. :func:`commit_predictions` publishes every part together as the day's
   ``predictions.parquet`` with its manifest, in one folder swap, so readers see the
   whole previous day's output or the whole new one.

:func:`score_partition` does the same in one call (no staging), for direct use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlops_lifecycle import config, features, lake, registry
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)

# Rows per record batch handed to XGBoost: large enough that per-call overhead is
# noise next to the trees, small enough that a batch stays a few tens of MB.
BATCH_ROWS = 131_072
# Row-group size of the features files: the unit a scoring chunk is made of.
ROW_GROUP_ROWS = 131_072
# Rows per mapped scoring task (a whole number of row groups, so ~1-2 s of work each).
CHUNK_ROWS = 1_048_576
# Airflow refuses to map over more than [core] max_map_length (1024) items; stay well below.
MAX_CHUNKS = 256
LINEAGE_FILE = "lineage.json"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"environment variable {name}={raw!r} must be at least 1")
    return value


def row_group_rows() -> int:
    """Rows per row group of the features files (``MLOPS_FEATURES_ROW_GROUP_ROWS``, default 131072)."""
    return _env_int("MLOPS_FEATURES_ROW_GROUP_ROWS", ROW_GROUP_ROWS)


def chunk_rows() -> int:
    """Target rows per mapped scoring chunk (``MLOPS_SCORING_CHUNK_ROWS``, default 1048576)."""
    return _env_int("MLOPS_SCORING_CHUNK_ROWS", CHUNK_ROWS)


def _streamed(path: Path) -> Any:
    """A Parquet file opened for reading batch by batch in bounded memory.

    ``pre_buffer=False``: with pyarrow's default, ``iter_batches`` pre-reads every
    requested row group's bytes into a cache that lives as long as the iterator, so
    memory grows with the file (about 800 MB more for a 10 M-row features file)
    instead of staying at one row group.
    """
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False)


# ---- lineage ---------------------------------------------------------------------------


def _stat(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _sha256(path: Path, recorded: dict[str, Any] | None) -> str:
    """The file's content hash: the one recorded when it was written, if the file is
    provably the same one (same inode, size and mtime; lake writes always make a new
    inode), else hashed now."""
    if recorded and recorded.get("sha256") and all(recorded.get(k) == v for k, v in _stat(path).items()):
        return str(recorded["sha256"])
    return lake.file_sha256(path)


def materialize_features(spec: ModelSpec, ds: str | dt.date) -> dict[str, Any]:
    """Stage function: compute the day's feature matrix from its validated partition.

    Streams the validated file batch by batch through :func:`features.build_features`
    and writes ``features/ds=<day>/data.parquet`` (entity id, event time, then the
    model's feature columns as float32, row groups of :func:`row_group_rows` rows)
    with a ``lineage.json`` recording the content hashes of the validated input and of
    the features file, so scoring can name them without reading the bytes again. The
    whole folder is swapped in at once.

    Raises:
        FileNotFoundError: the day has no validated partition.
        KeyError: the validated file lacks a column the spec declares.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    day = lake.as_date(ds)
    src = lake.data_file(spec.name, "validated", day)
    if not src.exists():
        raise FileNotFoundError(f"{spec.name} {day}: no validated partition at {src}; did validation pass for this day?")
    cols = features.feature_columns(spec)
    needed = [spec.entity_id, spec.event_time, *spec.feature_names]
    source = _streamed(src)
    missing = [c for c in needed if c not in source.schema_arrow.names]
    if missing:
        raise KeyError(f"{src} lacks columns {missing} that spec {spec.name!r} declares")
    schema = pa.schema(
        [source.schema_arrow.field(spec.entity_id), source.schema_arrow.field(spec.event_time)]
        + [pa.field(c, pa.float32()) for c in cols]
    )
    done: dict[str, Any] = {"rows": 0}

    def build(tmp: Path) -> None:
        out = tmp / "data.parquet"
        # No dictionary encoding: feature values rarely repeat, and building one to abandon it is slow.
        with pq.ParquetWriter(out, schema, use_dictionary=False) as writer:
            for batch in source.iter_batches(batch_size=row_group_rows(), columns=needed):
                matrix = features.build_matrix(spec, batch.to_pandas())
                arrays = [batch.column(spec.entity_id), batch.column(spec.event_time)]
                arrays += [pa.array(matrix[:, j]) for j in range(matrix.shape[1])]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema), row_group_size=row_group_rows())
                done["rows"] += batch.num_rows
        lineage = {
            "validated": {"path": str(src), "sha256": lake.file_sha256(src), **_stat(src)},
            # A folder rename keeps the file's inode, size and mtime: this stays valid after the swap.
            "files": {out.name: {"sha256": lake.file_sha256(out), **_stat(out)}},
        }
        lake.write_json(tmp / LINEAGE_FILE, lineage)
        done["input_sha256"] = lineage["validated"]["sha256"]

    part = lake.replace_dir(lake.partition_dir(spec.name, "features", day), build)
    return {"model": spec.name, "ds": day.isoformat(), "rows": done["rows"], "path": str(part / "data.parquet"),
            "input_sha256": done["input_sha256"]}


def _lineage(spec: ModelSpec, ds: str | dt.date, files: list[Path]) -> dict[str, Any]:
    """Content hashes of the features files scored and of the validated partition."""
    part = lake.partition_dir(spec.name, "features", ds)
    recorded: dict[str, Any] = {}
    if (part / LINEAGE_FILE).exists():
        recorded = lake.read_json(part / LINEAGE_FILE)
    per_file = [{"file": f.name, "sha256": _sha256(f, recorded.get("files", {}).get(f.name))} for f in files]
    if len(per_file) == 1:
        features_sha = per_file[0]["sha256"]
    else:  # several files: a hash of the sorted (name, hash) list names them all
        features_sha = hashlib.sha256("".join(f"{p['file']}:{p['sha256']}\n" for p in per_file).encode()).hexdigest()
    validated = lake.data_file(spec.name, "validated", ds)
    return {
        "features_path": str(files[0] if len(files) == 1 else part),
        "features_sha256": features_sha,
        "features_files": per_file,
        "validated_sha256": _sha256(validated, recorded.get("validated")) if validated.exists() else None,
    }


# ---- the model ---------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _cached_model(tracking_uri: str, model_name: str, version: str) -> Any:
    # Keyed by tracking URI too, so tests that switch stores never see another store's model.
    import mlflow.xgboost

    return mlflow.xgboost.load_model(f"models:/{model_name}/{version}")


def champion_info(spec: ModelSpec) -> dict[str, Any] | None:
    """The champion's version and run id, or None when there is none yet."""
    champ = registry.champion(spec)
    if champ is None:
        return None
    return {"version": champ.version, "run_id": champ.run_id}


def _load(spec: ModelSpec, version: str | int) -> tuple[Any, Any]:
    """The registered version's metadata and its XGBoost Booster.

    Raises:
        features.FeatureLayoutMismatch: the spec's features no longer make the columns
            the version was trained on (XGBoost would score shifted columns silently).
    """
    mv = registry.get_version(spec, version)
    registry.client()
    booster = _cached_model(config.mlflow_tracking_uri(), spec.model_name, str(mv.version)).get_booster()
    check_layout(spec, mv, booster)
    return mv, booster


def check_layout(spec: ModelSpec, mv: Any, booster: Any) -> None:
    """Refuse to score with a version whose feature layout is not the spec's current one.

    Compares the column count always, and the names in order when the version recorded
    them (tag ``features.sha256``, booster feature names).
    """
    cols = features.feature_columns(spec)
    trained = list(booster.feature_names or [])
    recorded = mv.tags.get("features.sha256")
    if booster.num_features() == len(cols) and (recorded is None or recorded == features.layout_digest(cols)):
        return
    added = [c for c in cols if trained and c not in trained]
    gone = [c for c in trained if c not in cols]
    detail = (f"added {added}, removed {gone}" if (added or gone) else "same columns in another order") if trained else (
        f"{booster.num_features()} columns trained, {len(cols)} now")
    raise features.FeatureLayoutMismatch(
        f"{spec.model_name} v{mv.version} was trained on another feature layout than spec {spec.name!r} now "
        f"makes ({detail}); scoring it would feed the trees the wrong columns. Retrain (the {spec.name}__retrain DAG "
        "with force) or restore the spec's features."
    )


# ---- streaming scoring -----------------------------------------------------------------


def feature_files(spec: ModelSpec, ds: str | dt.date) -> list[Path]:
    """The Parquet files of the day's features partition, in name order.

    Raises:
        FileNotFoundError: the partition holds no Parquet file.
    """
    part = lake.partition_dir(spec.name, "features", ds)
    files = sorted(p for p in part.glob("*.parquet") if not p.name.startswith(".")) if part.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"{spec.name} {lake.as_date(ds)}: no features to score in {part}; did compute_features run for this day?"
        )
    return files


def _output_schema(spec: ModelSpec, source_schema: Any) -> Any:
    import pyarrow as pa

    fields = [source_schema.field(spec.entity_id), source_schema.field(spec.event_time), pa.field("prediction", pa.float32())]
    if spec.is_classifier:
        fields.append(pa.field("predicted_label", pa.int8()))
    fields += [pa.field("model_name", pa.string()), pa.field("model_version", pa.int64()),
               pa.field("mlflow_run_id", pa.string()), pa.field("airflow_run_id", pa.string())]
    return pa.schema(fields)


def _check_columns(spec: ModelSpec, path: Path, schema: Any) -> None:
    import pyarrow as pa

    needed = [spec.entity_id, spec.event_time, *features.feature_columns(spec)]
    missing = [c for c in needed if c not in schema.names]
    if missing:
        raise KeyError(f"features file {path} lacks columns {missing} that model {spec.name!r} needs")
    bad = [c for c in features.feature_columns(spec) if not pa.types.is_floating(schema.field(c).type)
           and not pa.types.is_integer(schema.field(c).type)]
    if bad:
        raise TypeError(f"features file {path}: columns {bad} are not numeric")


def scoring_threads() -> int:
    """Batches predicted at once (``MLOPS_SCORING_THREADS``, default: the CPU count)."""
    return _env_int("MLOPS_SCORING_THREADS", os.cpu_count() or 1)


def _single_threaded(booster: Any) -> Any:
    """A copy of ``booster`` that predicts on one thread (one per scoring thread).

    Scoring runs one such copy per CPU, each on its own batch, instead of one booster
    whose OpenMP threads split every batch: no barrier between the threads, and the
    Parquet reading and writing fill the gaps instead of stalling them. A copy, so the
    cached booster's thread setting is never changed under another user.
    """
    single = booster.copy()
    single.set_param({"nthread": 1})
    return single


def _float32_view(array: Any) -> Any:
    """An Arrow numeric column as float32 numpy values, nulls as NaN (XGBoost's missing).

    A float32 column without nulls is viewed in place. ``to_numpy`` would copy it through
    a slower path whenever the column carries a validity bitmap, which Parquet readers
    always attach: that copy cost a quarter of a second of CPU per million rows here.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_float32(array.type):
        if array.null_count:
            array = pc.fill_null(array, np.float32("nan"))
        return np.frombuffer(array.buffers()[1], dtype=np.float32, count=len(array), offset=array.offset * 4)
    return array.to_numpy(zero_copy_only=False).astype(np.float32)


def _score_into(target: Path, spec: ModelSpec, sources: Iterable[tuple[Path, list[int] | None]], booster: Any,
                meta: dict[str, Any]) -> int:
    """Score row groups of feature files into one Parquet file at ``target``; return the row count.

    ``sources`` are (file, row-group indices or None for all). The calling thread reads
    record batches and writes the scored ones in order; :func:`scoring_threads` threads
    predict (XGBoost and pyarrow release the GIL). At most ``threads + 1`` batches are
    in flight, so memory stays a few batches whatever the size of the day.
    """
    from collections import deque

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = features.feature_columns(spec)
    read = [spec.entity_id, spec.event_time, *cols]
    constants = [(meta["model_name"], pa.string()), (meta["model_version"], pa.int64()),
                 (meta["mlflow_run_id"], pa.string()), (meta["airflow_run_id"], pa.string())]
    sources = list(sources)
    if not sources:
        raise ValueError(f"{spec.name}: nothing to score (no features file given)")
    handles = []
    for path, groups in sources:
        handle = _streamed(path)
        _check_columns(spec, path, handle.schema_arrow)
        if groups is not None and any(g < 0 or g >= handle.num_row_groups for g in groups):
            raise ValueError(f"{path} has {handle.num_row_groups} row groups; the plan asked for {groups} "
                             "(the features changed after the scoring plan was made: rerun the day)")
        handles.append((handle, groups))
    schema = _output_schema(spec, handles[0][0].schema_arrow)
    threads = scoring_threads()
    boosters = [_single_threaded(booster) for _ in range(threads)] if threads > 1 else [booster]
    free: deque = deque(boosters)

    def batches() -> Iterator[Any]:
        for handle, groups in handles:
            # One decoding thread: the scoring threads already hold every core, and
            # pyarrow's pool would spin for CPU they need (twice the CPU for the same read).
            yield from handle.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, columns=read, use_threads=False)

    def scored(batch: Any, model: Any) -> Any:
        n = batch.num_rows
        # A float32 matrix in the spec's feature order (the layout the model was trained
        # on), filled column by column: XGBoost predicts it faster than an Arrow table,
        # whose conversion it would do on every call.
        matrix = np.empty((n, len(cols)), dtype=np.float32, order="F")
        for j, c in enumerate(cols):
            matrix[:, j] = _float32_view(batch.column(c))
        pred = model.inplace_predict(matrix)
        arrays = [batch.column(spec.entity_id), batch.column(spec.event_time), pa.array(pred, pa.float32())]
        if spec.is_classifier:
            arrays.append(pa.array((pred >= 0.5).astype(np.int8)))
        arrays += [pa.repeat(pa.scalar(v, t), n) for v, t in constants]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def predict(batch: Any) -> Any:
        model = free.popleft()  # deque operations are atomic: each thread takes its own copy
        try:
            return scored(batch, model)
        finally:
            free.append(model)

    rows = 0
    # Dictionary encoding only where values repeat: on unique ids and scores it is
    # built, abandoned and costs more than the rest of the write.
    repeated = [f.name for f in schema if f.name not in (spec.entity_id, spec.event_time, "prediction")]
    # Min/max statistics everywhere but on the unique ids, where nobody filters by range.
    stats = [f.name for f in schema if f.name != spec.entity_id]
    with pq.ParquetWriter(target, schema, use_dictionary=repeated, write_statistics=stats) as writer, \
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scoring") as pool:
        pending: deque = deque()
        for batch in batches():
            pending.append(pool.submit(predict, batch))
            rows += batch.num_rows
            if len(pending) > threads:
                writer.write_batch(pending.popleft().result())
        while pending:
            writer.write_batch(pending.popleft().result())
    return rows


def _meta(spec: ModelSpec, mv: Any, airflow_run_id: str) -> dict[str, Any]:
    return {"model_name": spec.model_name, "model_version": int(mv.version), "mlflow_run_id": mv.run_id,
            "airflow_run_id": airflow_run_id}


def _publish(spec: ModelSpec, ds: str | dt.date, mv: Any, airflow_run_id: str, files: list[Path], chunks: int,
             write: Callable[[Path], int]) -> dict[str, Any]:
    """Swap in the day's predictions folder: ``write(path)`` fills ``predictions.parquet``
    (returning its rows), then the manifest is written beside it, both in one swap."""
    day = lake.as_date(ds)
    lineage = _lineage(spec, day, files)
    final = lake.data_file(spec.name, "predictions", day)
    manifest: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        rows = write(tmp / final.name)
        manifest.update({
            "model": spec.name,
            "registered_model": spec.model_name,
            "model_version": int(mv.version),
            "mlflow_run_id": mv.run_id,
            "model_data_version": mv.tags.get("data.version"),
            "airflow_run_id": airflow_run_id,
            "ds": day.isoformat(),
            "rows": rows,
            "chunks": chunks,
            **lineage,
            "code_version": config.code_version(),
            "code_fingerprint": config.code_fingerprint(),
            "predictions_path": str(final),
        })
        lake.write_json(tmp / "manifest.json", manifest)

    lake.replace_dir(final.parent, build)
    log.info("scored %s rows of %s %s with v%s in %d chunk(s)", manifest["rows"], spec.name, manifest["ds"],
             mv.version, chunks)
    return {k: manifest[k] for k in ("model", "ds", "rows", "model_version", "mlflow_run_id", "predictions_path")}


def score_partition(spec: ModelSpec, ds: str | dt.date, *, version: str, airflow_run_id: str) -> dict[str, Any]:
    """Stage function: score the day's features with a given registered version, in one call.

    The version is resolved once per DAG run (by the task before this one) and passed
    in, so a promotion that lands mid-run cannot mix two models in one day's output.
    Writes ``predictions/ds=<day>/predictions.parquet`` and ``manifest.json`` together.
    """
    mv, booster = _load(spec, version)
    files = feature_files(spec, ds)
    meta = _meta(spec, mv, airflow_run_id)
    return _publish(spec, ds, mv, airflow_run_id, files, 1,
                    lambda out: _score_into(out, spec, [(f, None) for f in files], booster, meta))


# ---- mapped scoring: plan, score chunks, commit --------------------------------------------


def plan_scoring(spec: ModelSpec, ds: str | dt.date, *, max_rows: int | None = None) -> list[dict[str, Any]]:
    """Split the day's features into chunks of whole row groups, in file and row order.

    Each chunk is ``{"index", "file", "row_groups": [first, end), "rows", "label"}`` and
    holds at most ``max_rows`` rows (default :func:`chunk_rows`) unless one row group is
    larger; a day under that size is a single chunk. At most ``MAX_CHUNKS`` chunks are
    made (chunks grow instead). Only Parquet footers are read.
    """
    import pyarrow.parquet as pq

    files = feature_files(spec, ds)
    groups: list[tuple[str, int, int]] = []
    for f in files:
        md = pq.ParquetFile(f).metadata
        groups += [(f.name, i, md.row_group(i).num_rows) for i in range(md.num_row_groups)]
    total = sum(n for _, _, n in groups)
    limit = max(max_rows or chunk_rows(), math.ceil(total / MAX_CHUNKS))
    chunks: list[dict[str, Any]] = []
    for name, i, n in groups:
        cur = chunks[-1] if chunks else None
        if cur is None or cur["file"] != name or (cur["rows"] and cur["rows"] + n > limit):
            cur = {"index": len(chunks), "file": name, "row_groups": [i, i], "rows": 0}
            chunks.append(cur)
        cur["row_groups"][1] = i + 1
        cur["rows"] += n
    if not chunks:  # an empty day still gets its (empty) predictions file and manifest
        chunks.append({"index": 0, "file": files[0].name, "row_groups": [0, 0], "rows": 0})
    for c in chunks:
        first, end = c["row_groups"]
        c["label"] = f"{c['file']} row groups {first}-{max(first, end - 1)} ({c['rows']} rows)"
    log.info("%s %s: %d rows in %d chunk(s) of at most %d rows", spec.name, lake.as_date(ds), total, len(chunks), limit)
    return chunks


def _staging(spec: ModelSpec, ds: str | dt.date, airflow_run_id: str, version: str | int) -> Path:
    return lake.staging_dir(spec.name, "predictions", ds, airflow_run_id) / f"v{int(version)}"


def score_chunk(spec: ModelSpec, ds: str | dt.date, chunk: dict[str, Any], *, version: str,
                airflow_run_id: str) -> dict[str, Any]:
    """Stage function of one mapped task: score one chunk of :func:`plan_scoring` into
    ``part-<index>.parquet`` in the run's staging folder (atomically; a retry or rerun
    rewrites the same part). Returns ``{"index", "part", "rows", "model_version"}``."""
    mv, booster = _load(spec, version)
    src = lake.partition_dir(spec.name, "features", ds) / chunk["file"]
    if not src.exists():
        raise FileNotFoundError(f"{spec.name} {lake.as_date(ds)}: chunk {chunk['index']} names {src}, which is gone; "
                                "rerun the day's features and scoring")
    first, end = chunk["row_groups"]
    target = _staging(spec, ds, airflow_run_id, mv.version) / f"part-{int(chunk['index']):05d}.parquet"
    with lake.atomic_path(target) as tmp:
        rows = _score_into(tmp, spec, [(src, list(range(first, end)))], booster, _meta(spec, mv, airflow_run_id))
    if rows != chunk["rows"]:
        target.unlink(missing_ok=True)
        raise ValueError(f"{src}: chunk {chunk['index']} has {rows} rows, the plan said {chunk['rows']} "
                         "(the features changed after planning: rerun the day)")
    return {"index": int(chunk["index"]), "part": str(target), "rows": rows, "model_version": int(mv.version)}


def commit_predictions(spec: ModelSpec, ds: str | dt.date, parts: Iterable[dict[str, Any]], *, version: str,
                       airflow_run_id: str) -> dict[str, Any]:
    """Stage function: publish every scored part as the day's predictions, together.

    The parts (results of :func:`score_chunk`) are concatenated in chunk order into
    ``predictions.parquet`` and written with ``manifest.json`` in one folder swap; the
    run's staging folder is removed afterwards.

    Raises:
        ValueError: a part is missing, duplicated, or scored with another model version.
    """
    import pyarrow.parquet as pq

    mv, _ = _load(spec, version)
    parts = sorted(parts, key=lambda p: p["index"])
    indices = [p["index"] for p in parts]
    if not parts or indices != list(range(len(parts))):
        raise ValueError(f"{spec.name} {lake.as_date(ds)}: scored parts {indices} are not one complete set 0..n-1")
    for p in parts:
        if p["model_version"] != int(mv.version):
            raise ValueError(f"part {p['index']} was scored with v{p['model_version']}, not v{mv.version}")
        if not Path(p["part"]).exists():
            raise FileNotFoundError(f"scored part {p['part']} is missing; rerun its score_chunk task")

    expected = sum(int(p["rows"]) for p in parts)

    def write(out: Path) -> int:
        if len(parts) == 1:
            # One part is already the whole file: link it in (copy across file systems).
            try:
                os.link(parts[0]["part"], out)
            except OSError:
                shutil.copyfile(parts[0]["part"], out)
            rows = int(pq.ParquetFile(out).metadata.num_rows)
        else:
            rows = 0
            with pq.ParquetWriter(out, pq.ParquetFile(parts[0]["part"]).schema_arrow) as writer:
                for p in parts:
                    for batch in _streamed(Path(p["part"])).iter_batches(batch_size=BATCH_ROWS):
                        writer.write_batch(batch)
                        rows += batch.num_rows
        if rows != expected:  # checked before the swap: a short output is never published
            raise ValueError(f"{spec.name} {lake.as_date(ds)}: the parts hold {rows} rows, their tasks reported {expected}")
        return rows

    summary = _publish(spec, ds, mv, airflow_run_id, feature_files(spec, ds), len(parts), write)
    shutil.rmtree(lake.staging_dir(spec.name, "predictions", ds, airflow_run_id), ignore_errors=True)
    return summary
