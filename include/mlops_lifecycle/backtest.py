"""Back-test a model's policy over a range of days, isolated from its live stores.

``mlops backtest MODEL --from-date D1 --to-date D2`` answers "what would this spec have done
on this history?" before the spec goes live. Every day of the range goes through the same
stage functions the daily DAG's tasks call, in the same order (ingest, validate, features,
champion, score, drift, late labels, retraining decision), and every retraining the
decision asks for goes through those of the retraining DAG (window, training-set
validation, train and register, compare and promote). The decisions are the spec's and the
stage modules' own: nothing here re-implements a check, a threshold or a rule. The stage
functions are called in-process rather than through ``DAG.test``, and skip what nobody
reads in a back-test where they offer it (Great Expectations Data Docs: ``docs=False``).

**Isolation.** A back-test never changes production state. It runs in a scratch folder of
its own (a fresh temporary folder, or ``work_dir``): a data lake and a SQLite MLflow store
(experiment, registered model, artifacts) that only the back-test sees, selected by pointing
``MLOPS_DATA_DIR``, ``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` and
``MLOPS_MLFLOW_ARTIFACT_ROOT`` at it for the duration of the run (and restoring them after).
The model's live lake and live registry are only *read* for the source files (a source
path's ``{data_dir}`` is resolved to the live folder before the switch); alerts are written
to the scratch lake and never sent to the spec's channels (its ``notifications`` are
dropped). The only file written outside the scratch folder is the back-test's own report,
``lake/<model>/backtests/<from>_<to>.json`` (:func:`mlops_lifecycle.lake.backtest_file`),
which the ``/mlops`` pages render. The scratch folder is removed afterwards unless kept.

**What is reported**, per calendar month and over the whole range (see
``docs/adding-a-model.md``, "Reading a back-test"):

- the spec's promotion metric of what was actually scored (each day's predictions, joined
  with the labels that came with the batch or arrived later, as the spec's ``labels``
  section says), against two baselines scored on the very same rows: a *stale* first model
  (the first champion, never replaced) and a *periodic refit* (every ``refit_every_days``
  days, trained by the same training stage on the last ``refit_window_days`` days, in a
  registry of its own so it never interferes with the policy's);
- counts of quarantined and missing days, validation warnings, alerts (by kind), retraining
  requests, promotions, rejections and failed retrainings;
- for each promotion or rejection, whether it was right: the challenger against the champion
  it was compared with, on the labelled rows of the ``judge_days`` days that follow.

The first champion is trained before the range, as a new model's first training is: the
``training.window_days`` days before ``from`` are ingested and validated with the daily
DAG's stages (like ``mlops ingest-history``), then trained on through the retraining DAG's
stages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_lifecycle import config, lake
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)

ACTOR = "backtest"
# Environment variables that choose the stores (read in config.py and by MLflow); a
# back-test points all of them at its scratch folder.
STORE_VARIABLES = ("MLOPS_DATA_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLOPS_MLFLOW_ARTIFACT_ROOT")
DECIDED = ("promoted", "rejected")


class BacktestError(ValueError):
    """The back-test cannot run as asked: bad arguments, dates outside the data, no first model."""


@dataclass(frozen=True)
class Options:
    """How the baselines and the judgement are made."""

    refit_every_days: int = 30
    refit_window_days: int = 60
    judge_days: int = 14


@dataclass
class _Refit:
    """The periodic-refit baseline: the model in use from a day on."""

    since: dt.date
    version: str | None
    model: Any
    window: str


@dataclass
class _State:
    days: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    refits: list[_Refit] = field(default_factory=list)
    refit_log: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


# ---- arguments -------------------------------------------------------------------------------


def parse_day(text: str, option: str) -> dt.date:
    """A ``YYYY-MM-DD`` day given for ``option``, else :class:`BacktestError` naming it."""
    try:
        if len(str(text)) != 10:
            raise ValueError
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise BacktestError(f"{option} {text!r} is not a day (YYYY-MM-DD)") from None


def check_options(spec: ModelSpec, start: dt.date, end: dt.date, options: Options) -> None:
    """Refuse a reversed range and baselines that cannot be built, naming the option."""
    if end < start:
        raise BacktestError(f"--to-date {end} is before --from-date {start}")
    if options.refit_every_days < 1:
        raise BacktestError(f"--refit-every-days must be at least 1 (got {options.refit_every_days})")
    needed = spec.training.validation_days + spec.training.holdout_days + 1
    if options.refit_window_days < needed:
        raise BacktestError(
            f"--refit-window-days {options.refit_window_days} cannot hold a training split of {spec.name}: it needs "
            f"at least {needed} days (training.validation_days {spec.training.validation_days} + holdout_days "
            f"{spec.training.holdout_days} + 1)")
    if options.judge_days < 1:
        raise BacktestError(f"--judge-days must be at least 1 (got {options.judge_days})")


def backtest_spec(spec: ModelSpec, live_data_dir: Path) -> ModelSpec:
    """The spec a back-test runs with: the same policy, reading the live source files, sending no alert.

    A file source's ``{data_dir}`` is resolved to the live data folder (the back-test's own
    data folder holds no landing files), and ``notifications`` are dropped so that alerts stay
    in the scratch lake. Everything else (features, validation, training, drift, retraining,
    promotion) is the spec as it is.
    """
    from mlops_lifecycle.spec import NotificationsSpec

    folder = str(live_data_dir).replace("{", "{{").replace("}", "}}")

    def resolved(source: Any) -> Any:
        if getattr(source, "kind", None) != "file" or "{data_dir}" not in source.path:
            return source
        return source.model_copy(update={"path": source.path.replace("{data_dir}", folder)})

    update: dict[str, Any] = {"source": resolved(spec.source), "notifications": NotificationsSpec(events=[])}
    if spec.labels is not None:
        update["labels"] = spec.labels.model_copy(update={"source": resolved(spec.labels.source)})
    return spec.model_copy(update=update)


def check_data_covers(spec: ModelSpec, start: dt.date, end: dt.date) -> None:
    """Refuse a range whose first or last day has no batch at the source (dates outside the data).

    ``spec`` is a :func:`backtest_spec` (its source resolved); nothing is written.
    """
    from mlops_lifecycle import ingestion

    for day, option in ((start, "--from-date"), (end, "--to-date")):
        try:
            found = ingestion.look_for_source(spec, day)
        except (ingestion.SourceFailed, ingestion.SourceUnreadable) as exc:
            raise BacktestError(f"{option} {day}: the source of {spec.name} cannot be read: {exc}") from exc
        if found is None:
            raise BacktestError(
                f"{option} {day} is outside the data of {spec.name}: no batch at "
                f"{ingestion.describe_source(spec, day)}. Choose days the source holds.")


def work_folder(work_dir: str | Path | None, model: str) -> Path:
    """The back-test's scratch folder: a new temporary folder, or ``work_dir`` if it is empty
    and not part of the live stores.

    Raises:
        BacktestError: ``work_dir`` holds files, or is (inside) the live data folder's lake or
            MLflow store, or contains the live data folder.
    """
    if work_dir is None:
        return Path(tempfile.mkdtemp(prefix=f"mlops-backtest-{model}-"))
    folder = Path(work_dir).expanduser().resolve()
    live = config.data_dir()
    for protected in (live / "lake", live / "mlflow", live / "landing"):
        if folder == protected or folder.is_relative_to(protected):
            raise BacktestError(f"--work-dir {folder} is inside the live store {protected}; a back-test must not "
                                "write there: choose a folder of its own")
    if live.is_relative_to(folder):
        raise BacktestError(f"--work-dir {folder} contains the live data folder {live}; choose a folder of its own")
    if folder.exists() and any(folder.iterdir()):
        raise BacktestError(f"--work-dir {folder} is not empty; a back-test starts from an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def isolated_stores(folder: Path) -> Iterator[Path]:
    """Point the package's and MLflow's stores at ``folder/data`` until the block ends.

    The lake, the SQLite MLflow store (tracking and registry) and the artifacts all live
    under it. MLflow also keeps a process-wide tracking and registry URI (which
    ``mlflow.register_model`` follows, and which its setters copy into the environment): both
    are pointed at the scratch store too, and afterwards the variables and MLflow's URIs are
    put back exactly as they were, so nothing registered here can land in another store.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{data / 'mlflow' / 'mlflow.db'}"
    saved_env = {k: os.environ.get(k) for k in STORE_VARIABLES}
    saved_uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    os.environ.update({"MLOPS_DATA_DIR": str(data), "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
                       "MLOPS_MLFLOW_ARTIFACT_ROOT": (data / "mlflow" / "artifacts").as_uri()})
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield data
    finally:
        mlflow.set_tracking_uri(saved_uris[0])
        registry_utils._registry_uri = saved_uris[1]
        for key, value in saved_env.items():  # after the setters, which write the environment
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---- the daily and retraining DAGs' stages -------------------------------------------------


def _run_id(day: dt.date) -> str:
    return f"backtest__{day.isoformat()}"


def _warnings(result: dict[str, Any] | None) -> int:
    """Warnings a validation result records (``warnings``: a list, a count or a mapping), else 0."""
    found = (result or {}).get("warnings")
    if isinstance(found, bool) or found is None:
        return 0
    if isinstance(found, int):
        return max(found, 0)
    if isinstance(found, list | tuple | dict):
        return len(found)
    return 0


def _failed_checks(result: dict[str, Any]) -> str:
    names = [str(c.get("check") or c.get("expectation")) for c in result.get("failures", []) if not c.get("consequence_of")]
    return "; ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")


def _evidence(spec: ModelSpec, conf: dict[str, Any]) -> dict[str, Any]:
    """The trigger evidence as the ``train`` task builds it: read from the daily run's recorded
    request that the conf names, never from the conf itself."""
    from mlops_lifecycle import run_conf

    evidence = run_conf.request_evidence(spec, conf)
    return {**({"ds": conf["ds"]} if evidence else {}), **evidence}


def retrain(spec: ModelSpec, day: dt.date, conf: dict[str, Any]) -> dict[str, Any]:
    """The retraining DAG's tasks, in order, for a run of logical date ``day`` with ``conf``.

    assemble_window -> validate_window -> has_new_data -> train -> compare_and_promote, with
    the stage functions those tasks call (see ``dag_factory.build_retrain``); the trigger
    evidence is built from the conf as the ``train`` task builds it.

    Returns:
        ``{"outcome": promoted | rejected | skipped | failed, ...}``; a decision carries the
        compare_and_promote summary (version, champion_version, reasons). With
        ``promotion.mode: manual`` a winner is approved at once (``approved_by_backtest``).
    """
    from mlops_lifecycle import registry, training, validation

    try:
        window = training.assemble_window(spec, day, spec.training.window_days)
        validation.validate_training_set(spec, window["path"])
    except (training.InsufficientData, validation.ValidationFailed) as exc:
        return {"outcome": "failed", "error": str(exc).splitlines()[0]}
    done = training.already_trained(spec, window)
    if done is not None and not training.is_undecided(done):
        return {"outcome": "skipped", "version": str(done.version),
                "error": f"v{done.version} was already trained on this exact data"}
    trigger = {
        "reason": conf.get("reason") or "manual",
        "detail": conf.get("detail"),
        "by": f"{ACTOR}:{spec.name}/{_run_id(day)}",
        "evidence_ds": conf.get("ds"),
        # As the train task: the evidence is read from the daily run's recorded request only.
        "evidence": _evidence(spec, conf),
    }
    trained = training.train_and_register(spec, window, trigger=trigger)
    actor = f"{ACTOR}:{spec.name}"
    try:
        decision = training.compare_and_promote(spec, trained, actor=actor)
    except training.PromotionBlocked as exc:
        return {"outcome": "failed", "version": trained["version"], "error": str(exc).splitlines()[0]}
    if decision["outcome"] == "awaiting_approval":
        # promotion.mode manual: nobody reviews during a back-test, so the winner is approved at
        # once, as a reviewer who agreed would (the approve DAG's stage function).
        registry.approve(spec, actor=actor, reason="back-test: approved at once", version=decision["version"])
        decision = {**decision, "outcome": "promoted", "approved_by_backtest": True}
    return {**decision, "holdout_metrics": trained.get("holdout_metrics")}


def run_day(spec: ModelSpec, day: dt.date, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """The daily DAG's tasks for ``day``, in order, then the retraining run it would trigger.

    wait_for_batch -> ingest -> validate -> compute_features -> resolve_champion -> (no
    champion: first training) plan_scoring -> score_chunk (each chunk) -> commit_predictions
    -> drift_check -> collect_labels -> decide_retraining -> (retrain), with the stage
    functions those tasks call (see ``dag_factory.build_daily``). A missing, unreadable or
    rejected batch ends the day, as it fails the daily run.

    Returns the day's record: ``status`` (scored, quarantined, missing, no_champion, failed),
    rows, warnings, the champion version, the drift and concept summaries, the retraining
    decision and, when it asked for one, the retraining's outcome.
    """
    from mlops_lifecycle import ingestion, monitoring, scoring, validation

    seconds = seconds if seconds is not None else {}
    run_id = _run_id(day)
    record: dict[str, Any] = {"ds": day.isoformat(), "status": None, "rows": None, "warnings": 0}

    @contextlib.contextmanager
    def timed(stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t0

    try:
        with timed("ingest"):
            ingestion.wait_for_source(spec, day, waited_seconds=spec.source.wait_timeout_minutes * 60, run_id=run_id)
            ingestion.ingest(spec, day, run_id=run_id)
        with timed("validate"):
            checked = validation.validate_partition(spec, day, docs=False)
    except ingestion.SourceMissing as exc:
        return record | {"status": "missing", "detail": str(exc).splitlines()[0]}
    except ingestion.SourceUnreadable as exc:
        return record | {"status": "quarantined", "detail": str(exc).splitlines()[0]}
    except validation.ValidationFailed as exc:
        return record | {"status": "quarantined", "rows": exc.result.get("rows"), "warnings": _warnings(exc.result),
                         "detail": _failed_checks(exc.result)}
    result_file = lake.report_dir(spec.name, "validation", day) / "result.json"
    record["rows"] = checked.get("rows")
    record["warnings"] = max(_warnings(checked), _warnings(lake.read_json(result_file)) if result_file.exists() else 0)
    with timed("score"):
        scoring.materialize_features(spec, day)
        champion = scoring.champion_info(spec)
    if champion is None:  # route -> trigger_first_training
        record.update(status="no_champion")
        conf = {"reason": "no_champion", "detail": "no champion yet: training the first model"}
        with timed("retrain"):
            record["retraining"] = retrain(spec, day, conf)
        return record
    with timed("score"):
        parts = [scoring.score_chunk(spec, day, chunk, version=champion["version"], airflow_run_id=run_id)
                 for chunk in scoring.plan_scoring(spec, day)]
        scored = scoring.commit_predictions(spec, day, parts, version=champion["version"], airflow_run_id=run_id)
    record.update(status="scored", model_version=str(scored["model_version"]))
    with timed("drift"):
        check = monitoring.check_drift(spec, day, version=scored["model_version"])
    record["drift"] = {k: check.get(k) for k in ("drift_share", "dataset_drift", "drifted_columns", "prediction_drift")}
    record["concept"] = check.get("concept")
    labels = None
    if spec.labels is not None:
        with timed("labels"):
            try:
                labels = monitoring.collect_labels(spec, day)
            except (monitoring.LabelsError, ingestion.SourceUnreadable, ingestion.SourceFailed) as exc:
                # collect_labels fails, so decide_retraining (none_failed_min_one_success) does not run.
                record["labels"] = {"status": "failed", "detail": str(exc).splitlines()[0]}
                return record
        record["labels"] = {k: labels.get(k) for k in ("event_ds", "status", "rows")}
    with timed("decide"):
        decision = monitoring.decide_retraining(spec, day, check, run_id=run_id, labels=labels)
    record["decision"] = {"retrain": bool(decision.get("retrain")), "reason": decision.get("reason")}
    if decision.get("retrain"):
        with timed("retrain"):
            record["retraining"] = retrain(spec, day, decision)
    return record


# ---- the periodic refit --------------------------------------------------------------------


def _link_partitions(model: str, source_data: Path, target_data: Path, days: list[dt.date]) -> None:
    """Make the policy lake's validated partitions and late labels of ``days`` visible in the
    refit's lake (hard links, copies across file systems); only what the refit trains on."""
    for zone in ("validated", "labels"):
        for day in days:
            rel = Path(zone) / f"ds={day.isoformat()}" / "data.parquet"
            src = source_data / "lake" / model / rel
            dst = target_data / "lake" / model / rel
            if not src.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.unlink(missing_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)


def refit(spec: ModelSpec, day: dt.date, window_days: int, policy_data: Path, refit_dir: Path) -> _Refit:
    """Train the periodic-refit baseline on the ``window_days`` ending on ``day``.

    The refit has a lake and an MLflow store of its own (``refit_dir``), so its versions never
    meet the policy's (whose already-trained check, aliases and audit log would see them);
    it is trained by the training stage itself, on the validated days (and late labels) the
    policy's lake holds by then. Raises ``training.InsufficientData`` when the window is short.
    """
    from mlops_lifecycle import registry, training

    first = day - dt.timedelta(days=window_days - 1)
    _link_partitions(spec.name, policy_data, refit_dir / "data",
                     [first + dt.timedelta(days=i) for i in range(window_days)])
    with isolated_stores(refit_dir):
        window = training.assemble_window(spec, day, window_days)
        trained = training.train_and_register(spec, window, trigger={
            "reason": "periodic_refit", "by": f"{ACTOR}:{spec.name}/refit",
            "detail": f"back-test baseline: every day's model refitted on the last {window_days} days"})
        model = registry.load_model(spec, trained["version"])
    return _Refit(since=day + dt.timedelta(days=1), version=trained["version"], model=model,
                  window=f"{window['start_ds']}..{window['end_ds']}")


# ---- judging what was scored ---------------------------------------------------------------


def labelled_rows(spec: ModelSpec, day: dt.date) -> tuple[Any, Any, Any] | None:
    """The labelled rows the champion scored on ``day``: ``(y, scored prediction, feature matrix)``.

    Labels are the batch's own, filled from the ``labels`` zone where they arrived later
    (joined on ``labels.join_key``), as training fills them. None when the day has no
    predictions or no labelled row.
    """
    import numpy as np
    import pandas as pd

    from mlops_lifecycle import features

    preds_path = lake.data_file(spec.name, "predictions", day)
    if not preds_path.exists():
        return None
    key, target, entity = spec.labels_join_key, spec.target.column, spec.entity_id
    preds = pd.read_parquet(preds_path, engine="pyarrow", columns=[entity, "prediction"])
    keep = [entity, target] + ([key] if key != entity else [])
    rows = preds.merge(pd.read_parquet(lake.data_file(spec.name, "validated", day), engine="pyarrow", columns=keep),
                       on=entity, how="inner")
    labels_path = lake.data_file(spec.name, "labels", day)
    if spec.labels is not None and labels_path.exists():
        late = pd.read_parquet(labels_path, engine="pyarrow", columns=[key, target]).dropna(subset=[target])
        keys = rows[key]
        if keys.dtype != late[key].dtype:
            keys, late[key] = keys.astype(str), late[key].astype(str)
        late = late.drop_duplicates(subset=[key], keep="last").set_index(key)[target]
        rows[target] = rows[target].fillna(keys.map(late))
    rows = rows[rows[target].notna()]
    if rows.empty:
        return None
    cols = features.feature_columns(spec)
    feats = pd.read_parquet(lake.partition_dir(spec.name, "features", day) / "data.parquet", engine="pyarrow",
                            columns=[entity, *cols])
    rows = rows.merge(feats, on=entity, how="inner")
    matrix = np.ascontiguousarray(rows[cols].to_numpy(dtype=np.float32))
    return rows[target].to_numpy(dtype=float), rows["prediction"].to_numpy(dtype=float), matrix


def metric_of(spec: ModelSpec, y: Any, pred: Any) -> float | None:
    """The spec's promotion metric, None where it cannot be computed (one class, no rows)."""
    import math

    from mlops_lifecycle import promotion

    if len(y) == 0:
        return None
    value = promotion.metric_value(spec, spec.promotion.metric, y, pred)
    return None if math.isnan(value) else float(value)


def gain(spec: ModelSpec, new: float | None, old: float | None) -> float | None:
    """How much better ``new`` is than ``old`` in the promotion metric (positive: better)."""
    if new is None or old is None:
        return None
    return (new - old) if spec.higher_is_better() else (old - new)


def judge(spec: ModelSpec, decision: dict[str, Any], days: list[dt.date], loaded: dict[str, Any]) -> dict[str, Any]:
    """Whether a promotion or a rejection was right on the labelled rows of ``days``.

    The challenger and the champion it was compared with both score the same rows; the
    decision was right when it promoted a challenger that is better there, or rejected one
    that is not. ``right`` is None when no labelled row follows (the end of the range).
    """
    import numpy as np

    from mlops_lifecycle import evaluation, registry

    def model(version: str) -> Any:
        if version not in loaded:
            loaded[version] = registry.load_model(spec, version)
        return loaded[version]

    ys, chal, champ = [], [], []
    used = []
    for day in days:
        rows = labelled_rows(spec, day)
        if rows is None:
            continue
        y, _, matrix = rows
        ys.append(y)
        chal.append(evaluation.predict(spec, model(decision["version"]), matrix))
        champ.append(evaluation.predict(spec, model(decision["champion_version"]), matrix))
        used.append(day.isoformat())
    out: dict[str, Any] = {"judged_days": used, "judged_rows": int(sum(len(y) for y in ys)),
                           "challenger_metric": None, "champion_metric": None, "gain": None, "right": None}
    if not ys:
        return out
    y = np.concatenate(ys)
    out["challenger_metric"] = metric_of(spec, y, np.concatenate(chal))
    out["champion_metric"] = metric_of(spec, y, np.concatenate(champ))
    out["gain"] = gain(spec, out["challenger_metric"], out["champion_metric"])
    if out["gain"] is not None:
        better = out["gain"] > 0
        out["right"] = better if decision["outcome"] == "promoted" else not better
    return out


def _month(day: str) -> str:
    return day[:7]


def _empty_counts() -> dict[str, Any]:
    return {"days": 0, "scored_days": 0, "quarantined_days": 0, "missing_days": 0, "failed_days": 0,
            "warnings": 0, "alerts": 0, "alerts_by_kind": {}, "retrain_requests": 0, "promotions": 0,
            "rejections": 0, "retrain_failures": 0, "right_decisions": 0,
            "wrong_decisions": 0, "champions": []}


def _count(counts: dict[str, Any], rec: dict[str, Any]) -> None:
    counts["days"] += 1
    status = rec["status"]
    key = {"scored": "scored_days", "quarantined": "quarantined_days", "missing": "missing_days"}.get(status)
    if key:
        counts[key] += 1
    elif status in ("failed", "no_champion"):
        counts["failed_days"] += 1
    counts["warnings"] += rec.get("warnings") or 0
    for kind, n in (rec.get("alerts") or {}).items():
        counts["alerts"] += n
        counts["alerts_by_kind"][kind] = counts["alerts_by_kind"].get(kind, 0) + n
    if (rec.get("decision") or {}).get("retrain"):
        counts["retrain_requests"] += 1
    outcome = (rec.get("retraining") or {}).get("outcome")
    if outcome is not None:
        key = {"promoted": "promotions", "rejected": "rejections", "failed": "retrain_failures"}.get(outcome)
        if key:
            counts[key] += 1
    version = rec.get("model_version")
    if version and version not in counts["champions"]:
        counts["champions"].append(version)


def _metrics_block(spec: ModelSpec, ys: list, scored: list, stale: list, refit: list) -> dict[str, Any]:
    import numpy as np

    if not ys:
        return {"labelled_rows": 0, "scored": None, "stale": None, "refit": None,
                "gain_vs_stale": None, "gain_vs_refit": None}
    y = np.concatenate(ys)
    values = {name: metric_of(spec, y, np.concatenate(preds))
              for name, preds in (("scored", scored), ("stale", stale), ("refit", refit))}
    return {"labelled_rows": int(len(y)), **values,
            "gain_vs_stale": gain(spec, values["scored"], values["stale"]),
            "gain_vs_refit": gain(spec, values["scored"], values["refit"])}


def summarize(spec: ModelSpec, state: _State, stale_model: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-month rows and the whole range's totals: counts, and the metric of what was scored
    against the stale first model and the periodic refit, all three on the same labelled rows."""
    from mlops_lifecycle import evaluation

    months: dict[str, dict[str, Any]] = {}
    arrays: dict[str, tuple[list, list, list, list]] = {}
    total = _empty_counts()
    for rec in state.days:
        month = _month(rec["ds"])
        counts = months.setdefault(month, {"month": month, **_empty_counts()})
        _count(counts, rec)
        _count(total, rec)
        day = dt.date.fromisoformat(rec["ds"])
        rows = labelled_rows(spec, day) if rec["status"] == "scored" else None
        if rows is None:
            continue
        y, pred, matrix = rows
        refit = next(r for r in reversed(state.refits) if r.since <= day)
        bucket = arrays.setdefault(month, ([], [], [], []))
        bucket[0].append(y)
        bucket[1].append(pred)
        bucket[2].append(evaluation.predict(spec, stale_model, matrix))
        bucket[3].append(evaluation.predict(spec, refit.model, matrix))
        rec["labelled_rows"] = int(len(y))
    all_arrays: tuple[list, list, list, list] = ([], [], [], [])
    for month, counts in months.items():
        bucket = arrays.get(month, ([], [], [], []))
        counts.update(_metrics_block(spec, *bucket))
        for i in range(4):
            all_arrays[i].extend(bucket[i])
    for d in state.decisions:
        if d.get("right") is None:
            continue
        for counts in (months[_month(d["ds"])], total):
            counts["right_decisions" if d["right"] else "wrong_decisions"] += 1
    total.update(_metrics_block(spec, *all_arrays))
    return sorted(months.values(), key=lambda m: m["month"]), total


# ---- the whole run -------------------------------------------------------------------------


def _alert_files(model: str) -> dict[str, str]:
    """Alert file name -> kind, in the current lake."""
    folder = lake.root() / model / "events" / "alerts"
    if not folder.is_dir():
        return {}
    return {p.name: p.name.split("__", 1)[0] for p in folder.glob("*.json")}


def _new_alerts(before: dict[str, str], after: dict[str, str], rec: dict[str, Any]) -> dict[str, int]:
    """Alerts the day raised: new alert files by kind, plus the one the daily DAG's failure
    callback raises for a quarantined (``quarantine``) or missing (``failure``) batch."""
    counts: dict[str, int] = {}
    for name, kind in after.items():
        if name not in before:
            counts[kind] = counts.get(kind, 0) + 1
    callback = {"quarantined": "quarantine", "missing": "failure", "failed": "failure"}.get(rec["status"])
    if callback:
        counts[callback] = counts.get(callback, 0) + 1
    return counts


def _first_model(spec: ModelSpec, start: dt.date, history_days: int) -> dict[str, Any]:
    """Ingest the days before ``start`` and train the first champion on them, as a new model's
    first training does (``mlops ingest-history``, then the retraining DAG)."""
    from mlops_lifecycle import scaffold

    first = start - dt.timedelta(days=history_days)
    history = [first + dt.timedelta(days=i) for i in range(history_days)]
    loaded = scaffold.ingest_history(spec, history, docs=False)
    validated = [r for r in loaded if r["status"] == "validated"]
    end = start - dt.timedelta(days=1)
    outcome = retrain(spec, end, {"reason": "no_champion",
                                  "detail": "back-test: the first model, trained on the days before the range"})
    if outcome.get("outcome") != "promoted":
        why = outcome.get("error") or "; ".join(outcome.get("reasons") or [])
        raise BacktestError(
            f"{spec.name}: the first model could not be trained on the {history_days} day(s) before --from-date "
            f"{start} ({len(validated)} validated, {first}..{end}): {why}. Start the back-test later, once the "
            "data before it holds a training window.")
    return {"version": str(outcome["version"]), "window_end": end.isoformat(), "history_days": history_days,
            "validated_days": len(validated), "holdout_metrics": outcome.get("holdout_metrics")}


def run_backtest(
    spec: ModelSpec,
    start: dt.date,
    end: dt.date,
    *,
    options: Options = Options(),
    work_dir: str | Path | None = None,
    keep_work_dir: bool = False,
    progress: Callable[[str], None] | None = None,
    quiet: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
) -> dict[str, Any]:
    """Replay ``spec``'s policy over ``start..end`` in scratch stores and report how it did.

    Isolated from the live lake and registry (see the module docstring): the live stores
    are read for the source files only, and the report is written to
    :func:`mlops_lifecycle.lake.backtest_file` of the live lake.

    Args:
        options: the baselines' cadence and window, and the days a decision is judged on.
        work_dir: the scratch folder (empty or new); default a temporary folder.
        keep_work_dir: keep the scratch folder (its lake, reports and MLflow store) to inspect.
        progress: called with one line per month replayed.
        quiet: a context manager factory wrapped around the stage calls (the CLI sends the
            libraries' console output to a log file with it).

    Returns:
        The report (also written as JSON): ``months``, ``total``, ``decisions``, ``days``,
        ``first_model``, ``refits``, ``options``, ``timing``, ``report_path``.

    Raises:
        BacktestError: a reversed range, bad options, a first or last day the source does not
            hold, a work folder that is not empty or belongs to the live stores, or no first
            model could be trained on the days before ``start``.
    """
    t_start = time.perf_counter()
    check_options(spec, start, end, options)
    live_data = config.data_dir()
    bt_spec = backtest_spec(spec, live_data)
    check_data_covers(bt_spec, start, end)
    folder = work_folder(work_dir, spec.name)
    say = progress or (lambda _msg: None)
    hush = quiet or contextlib.nullcontext
    state = _State()
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    try:
        with isolated_stores(folder / "policy") as policy_data:
            from mlops_lifecycle import registry

            say(f"{spec.name}: back-test {start}..{end} ({len(days)} days) in {folder}")
            t0 = time.perf_counter()
            with hush():
                first = _first_model(bt_spec, start, spec.training.window_days)
                stale = registry.load_model(bt_spec, first["version"])
            state.seconds["first_model"] = time.perf_counter() - t0
            state.refits.append(_Refit(since=start, version=None, model=stale, window="the first model"))
            say(f"  first model v{first['version']} trained on the {first['validated_days']} validated day(s) "
                f"before {start} ({time.perf_counter() - t0:.0f} s)")
            t_days = time.perf_counter()
            since_refit = 0
            for day in days:
                before = _alert_files(spec.name)
                with hush():
                    try:
                        rec = run_day(bt_spec, day, state.seconds)
                    except Exception as exc:  # noqa: BLE001 - a failing day fails its run; the next day goes on
                        log.exception("%s %s failed", spec.name, day)
                        rec = {"ds": day.isoformat(), "status": "failed", "rows": None, "warnings": 0,
                               "detail": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
                rec["alerts"] = _new_alerts(before, _alert_files(spec.name), rec)
                state.days.append(rec)
                outcome = rec.get("retraining") or {}
                if outcome.get("outcome") in DECIDED and outcome.get("champion_version") is not None:
                    state.decisions.append({"ds": rec["ds"], "version": str(outcome["version"]),
                                            "champion_version": str(outcome["champion_version"]),
                                            "outcome": outcome["outcome"],
                                            "reason": (rec.get("decision") or {}).get("reason"),
                                            "summary": "; ".join(outcome.get("reasons") or [])})
                since_refit += 1
                if since_refit >= options.refit_every_days and day < end:
                    since_refit = 0
                    t0 = time.perf_counter()
                    with hush():
                        try:
                            state.refits.append(refit(bt_spec, day, options.refit_window_days, policy_data,
                                                      folder / "refit"))
                            state.refit_log.append({"ds": day.isoformat(), "version": state.refits[-1].version,
                                                    "window": state.refits[-1].window})
                        except Exception as exc:  # noqa: BLE001 - the baseline keeps its last model
                            state.refit_log.append({"ds": day.isoformat(), "error": str(exc).splitlines()[0]})
                    state.seconds["refit"] = state.seconds.get("refit", 0.0) + time.perf_counter() - t0
                if day == end or (day + dt.timedelta(days=1)).month != day.month:
                    month = [r for r in state.days if r["ds"].startswith(day.isoformat()[:7])]
                    say(f"  {day.isoformat()[:7]}: {sum(r['status'] == 'scored' for r in month)} of {len(month)} "
                        f"day(s) scored, {sum(r['status'] == 'quarantined' for r in month)} quarantined "
                        f"({time.perf_counter() - t_days:.0f} s so far)")
            replay_s = time.perf_counter() - t_days
            t0 = time.perf_counter()
            with hush():
                _late_labels(bt_spec, state.days)
                loaded = {first["version"]: stale}
                for d in state.decisions:
                    day = dt.date.fromisoformat(d["ds"])
                    following = [day + dt.timedelta(days=k) for k in range(1, options.judge_days + 1)
                                 if day + dt.timedelta(days=k) <= end]
                    d.update(judge(bt_spec, d, following, loaded))
                months, total = summarize(bt_spec, state, stale)
            state.seconds["evaluate"] = time.perf_counter() - t0
    finally:
        if not keep_work_dir:
            shutil.rmtree(folder, ignore_errors=True)
    report = {
        "model": spec.name,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "metric": spec.promotion.metric,
        "higher_is_better": spec.higher_is_better(),
        "options": {"refit_every_days": options.refit_every_days, "refit_window_days": options.refit_window_days,
                    "judge_days": options.judge_days},
        "spec_sha256": spec.sha256(),
        "code_version": config.code_version(),
        "first_model": first,
        "refits": state.refit_log,
        "months": months,
        "total": total,
        "decisions": state.decisions,
        "days": state.days,
        "work_dir": str(folder) if keep_work_dir else None,
        "timing": {"days": len(days), "replay_seconds": round(replay_s, 1),
                   "seconds_per_day": round(replay_s / len(days), 3),
                   "total_seconds": round(time.perf_counter() - t_start, 1),
                   "by_stage": {k: round(v, 1) for k, v in sorted(state.seconds.items())}},
    }
    path = lake.write_json(lake.backtest_file(spec.name, start, end), report)
    report["report_path"] = str(path)
    return report


def _late_labels(spec: ModelSpec, records: list[dict[str, Any]]) -> None:
    """Collect the labels of scored days whose collection day falls after the range, as the
    daily runs after it would (the labels stage itself); days already collected are kept."""
    if spec.labels is None:
        return
    from mlops_lifecycle import ingestion, monitoring

    for rec in records:
        day = dt.date.fromisoformat(rec["ds"])
        if rec["status"] != "scored" or lake.data_file(spec.name, "labels", day).exists():
            continue
        try:
            monitoring.labels_for_day(spec, day)
        except (monitoring.LabelsError, ingestion.SourceUnreadable, ingestion.SourceFailed) as exc:
            log.warning("%s: the labels of %s cannot be read: %s", spec.name, day, exc)


# ---- the printed table ---------------------------------------------------------------------


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def format_report(report: dict[str, Any]) -> list[str]:
    """The back-test as printed by ``mlops backtest``: one line per month, the total, then
    every promotion and rejection with its judgement."""
    metric = report["metric"]
    head = (f"{'month':<8} {'days':>4} {'scored':>6} {'quar':>4} {'miss':>4} {'warn':>4} {'alerts':>6} "
            f"{'retrain':>7} {'prom':>4} {'rej':>3}  {'rows':>7}  {metric + ' scored':>14} {'stale':>7} "
            f"{'refit':>7} {'vs stale':>8} {'vs refit':>8}")
    lines = [head, "-" * len(head)]
    for row in [*report["months"], {**report["total"], "month": "total"}]:
        lines.append(
            f"{row['month']:<8} {row['days']:>4} {row['scored_days']:>6} {row['quarantined_days']:>4} "
            f"{row['missing_days']:>4} {row['warnings']:>4} {row['alerts']:>6} {row['retrain_requests']:>7} "
            f"{row['promotions']:>4} {row['rejections']:>3}  {row['labelled_rows']:>7}  {_num(row['scored']):>14} "
            f"{_num(row['stale']):>7} {_num(row['refit']):>7} {_num(row['gain_vs_stale'], True):>8} "
            f"{_num(row['gain_vs_refit'], True):>8}")
    total = report["total"]
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(total["alerts_by_kind"].items())) or "none"
    lines.append(f"alerts by kind: {kinds}")
    opts = report["options"]
    lines.append(f"stale: the first model v{report['first_model']['version']}, never replaced; refit: retrained every "
                 f"{opts['refit_every_days']} days on the last {opts['refit_window_days']} days; vs: how much better "
                 f"what was scored is ({metric}, positive = better), on the same labelled rows")
    lines.append(f"decisions, judged on the labelled rows of the {opts['judge_days']} days after each:")
    if not report["decisions"]:
        lines.append("  none (no retraining reached a promotion decision)")
    for d in report["decisions"]:
        verdict = {True: "right", False: "WRONG", None: "not judged (no labelled rows follow)"}[d.get("right")]
        lines.append(
            f"  {d['ds']}  v{d['version']} {d['outcome']} against v{d['champion_version']} ({d.get('reason')}): "
            f"challenger {_num(d.get('challenger_metric'))} vs champion {_num(d.get('champion_metric'))} on "
            f"{d.get('judged_rows', 0)} rows, gain {_num(d.get('gain'), True)}: {verdict}")
    failed = [r for r in report["days"] if (r.get("retraining") or {}).get("outcome") in ("failed", "skipped")]
    for r in failed:
        lines.append(f"  {r['ds']}  retraining {r['retraining']['outcome']}: {str(r['retraining'].get('error'))[:200]}")
    odd = [r for r in report["days"] if r["status"] != "scored"]
    if odd:
        groups: dict[tuple[str, str], list[str]] = {}
        for r in odd:  # by the first failed check (or error): one line per cause, not per day
            cause = str(r.get("detail") or "").split("; ")[0][:120]
            groups.setdefault((r["status"], cause), []).append(r["ds"])
        lines.append(f"days not scored: {len(odd)}, by status and first cause:")
        for (status, cause), dates in sorted(groups.items(), key=lambda g: -len(g[1])):
            when = dates[0] if len(dates) == 1 else f"{dates[0]} .. {dates[-1]}"
            lines.append(f"  {len(dates):>4}  {status:<11} {cause}  ({when})")
    timing = report["timing"]
    lines.append(f"replayed {timing['days']} days in {timing['replay_seconds']} s ({timing['seconds_per_day']} s a day); "
                 f"{timing['total_seconds']} s in all")
    return lines
