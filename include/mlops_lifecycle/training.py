"""Training: assemble a window of validated data, fit XGBoost, log and register it, and
decide whether it replaces the champion.

The three stage functions map to the retraining DAG's tasks:

1. :func:`assemble_window` gathers validated partitions into one training set and
   records exactly which partitions (and which bytes) it used;
2. :func:`train_and_register` splits it by time (train / validation / holdout), fits
   with early stopping, runs the model tests and logs everything to MLflow before
   registering a new version;
3. :func:`compare_and_promote` scores the champion on the challenger's holdout (the
   same rows) and promotes, parks or rejects the challenger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from mlops_lifecycle import config, evaluation, features, lake, promotion, registry
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)


class InsufficientData(RuntimeError):
    """The training window holds too few days or labelled rows to train on."""


class MixedColumnTypes(ValueError):
    """Validated days of a training window hold a column with types that cannot be
    stacked (text ids on some days, numbers on another); the message names the days."""


def _column_kind(arrow_type: Any) -> str:
    """A column type as far as stacking days goes: ints and floats stack, text and numbers do not."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):  # a pandas category column: judged by its values
        arrow_type = arrow_type.value_type
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):  # any unit stacks
        return "timestamp"
    if pa.types.is_null(arrow_type):  # an all-null column stacks with anything
        return "null"
    return str(arrow_type)


def check_window_types(spec: ModelSpec, paths: dict[dt.date, Path]) -> None:
    """Refuse a window whose days disagree on a column's type, before reading any day.

    Validation enforces one entity-id type, but a day validated before that check, or a
    file edited after validation, would otherwise fail deep inside pyarrow ("Expected
    bytes, got a 'int' object") on every retraining that includes it.

    Raises:
        MixedColumnTypes: names the column, its type on most days and the odd days.
    """
    import pyarrow.parquet as pq

    kinds: dict[str, dict[str, list[dt.date]]] = {}
    for day, path in paths.items():
        schema = pq.read_schema(path)
        for name in schema.names:
            kinds.setdefault(name, {}).setdefault(_column_kind(schema.field(name).type), []).append(day)
    for column, by_kind in kinds.items():
        real = {k: v for k, v in by_kind.items() if k != "null"}
        if len(real) > 1:
            usual = max(real, key=lambda k: len(real[k]))
            odd = {k: v for k, v in real.items() if k != usual}
            shown = "; ".join(f"{k} on {', '.join(d.isoformat() for d in days[:5])}" for k, days in odd.items())
            raise MixedColumnTypes(
                f"{spec.name}: the training window's validated days disagree on the type of column {column!r}: "
                f"{usual} on {len(real[usual])} day(s), but {shown}. Re-deliver those days with the usual type "
                f"(or remove their validated partitions) and train again"
            )


class PromotionBlocked(RuntimeError):
    """The challenger cannot be compared with the champion; nothing was promoted."""


def training_fingerprint(spec: ModelSpec, data_version: str) -> str:
    """What makes two trainings the same: the data version, the spec and the code.

    Recorded on every version (tag ``training.fingerprint``) so that a rerun of the same
    retraining (a retried task, a cleared run, a second trigger) does not register the
    same model twice.
    """
    payload = {"data_version": data_version, "spec": spec.sha256(), "code": config.code_fingerprint()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def already_trained(spec: ModelSpec, window: dict[str, Any]) -> Any | None:
    """The registered version trained on exactly this window's data, spec and code, if any."""
    wanted = training_fingerprint(spec, window["data_version"])
    same = [v for v in registry.versions(spec) if v.tags.get("training.fingerprint") == wanted]
    return same[-1] if same else None


# ---- 1. window --------------------------------------------------------------


def assemble_window(spec: ModelSpec, end_ds: str | dt.date, window_days: int | None = None) -> dict[str, Any]:
    """Concatenate the validated partitions of the window ending on ``end_ds`` (inclusive).

    Returns the training-set path, the partitions used with their content hashes,
    one hash for the whole data version, and row counts.

    Raises:
        InsufficientData: fewer days than validation + holdout + 1, or fewer labelled
            rows than ``training.min_rows``.
        MixedColumnTypes: the days disagree on a column's type (see :func:`check_window_types`).
    """
    import pandas as pd

    end = lake.as_date(end_ds)
    days = window_days or spec.training.window_days
    start = end - dt.timedelta(days=days - 1)
    available = [d for d in lake.partitions(spec.name, "validated") if start <= d <= end]
    needed = spec.training.validation_days + spec.training.holdout_days + 1
    if len(available) < needed:
        raise InsufficientData(
            f"{spec.name}: the window {start}..{end} holds {len(available)} validated day(s); "
            f"training needs at least {needed} (validation {spec.training.validation_days} + "
            f"holdout {spec.training.holdout_days} + 1 to train on)"
        )
    check_window_types(spec, {day: lake.data_file(spec.name, "validated", day) for day in available})
    parts = []
    frames = []
    for day in available:
        path = lake.data_file(spec.name, "validated", day)
        parts.append({"ds": day.isoformat(), "sha256": lake.file_sha256(path)})
        frames.append(pd.read_parquet(path, engine="pyarrow"))
    frame = pd.concat(frames, ignore_index=True)
    label_parts: list[dict[str, str]] = []
    if spec.labels is not None:
        frame, label_parts = _with_late_labels(spec, frame, available)
    labelled = int(frame[spec.target.column].notna().sum())
    if labelled < spec.training.min_rows:
        raise InsufficientData(
            f"{spec.name}: the window {start}..{end} has {labelled} labelled rows; training.min_rows is "
            f"{spec.training.min_rows}"
        )
    # Late labels are part of the data: a day whose labels arrived makes a new data version.
    data_version = hashlib.sha256(json.dumps(parts + label_parts, sort_keys=True).encode()).hexdigest()
    target = lake.write_parquet(lake.training_dir(spec.name, end) / "data.parquet", frame)
    return {
        "model": spec.name,
        "end_ds": end.isoformat(),
        "start_ds": start.isoformat(),
        "path": str(target),
        "partitions": parts,
        "data_version": data_version,
        "rows": len(frame),
        "labelled_rows": labelled,
    }


def _with_late_labels(spec: ModelSpec, frame: Any, days: list[dt.date]) -> tuple[Any, list[dict[str, str]]]:
    """Fill the target of the window's rows from the ``labels`` zone (labels that arrived
    after their batch), leaving labels that came with the batch as they are."""
    import pandas as pd

    key, target = spec.labels_join_key, spec.target.column
    parts, frames = [], []
    for day in lake.partitions(spec.name, "labels"):
        if day in days:
            path = lake.data_file(spec.name, "labels", day)
            parts.append({"labels_ds": day.isoformat(), "sha256": lake.file_sha256(path)})
            frames.append(pd.read_parquet(path, engine="pyarrow", columns=[key, target]))
    if not frames:
        return frame, parts
    late = pd.concat(frames, ignore_index=True).drop_duplicates(subset=[key], keep="last")
    keys = frame[key]
    if keys.dtype != late[key].dtype:  # e.g. ids that one source typed as numbers
        keys, late[key] = keys.astype(str), late[key].astype(str)
    filled = frame[target].fillna(keys.map(late.set_index(key)[target]))
    return frame.assign(**{target: filled}), parts


# ---- 2. fit, test, log, register ----------------------------------------------


def time_split(spec: ModelSpec, frame: Any) -> dict[str, Any]:
    """Split labelled rows by day: the last ``holdout_days`` are the holdout, the
    ``validation_days`` before them stop training early, the rest train.

    The holdout is sized in rows as well as days: it takes more days back, up to
    :func:`holdout_needs`' most days, until it holds the rows it needs (``holdout_rows``
    and ``holdout_min_rows`` in the result say what it got and what it needed)."""
    labelled = frame[frame[spec.target.column].notna()].copy()
    day = labelled[spec.event_time].dt.date
    dates = sorted(day.unique())
    hold_n, val_n = spec.training.holdout_days, spec.training.validation_days
    if len(dates) < hold_n + val_n + 1:
        raise InsufficientData(f"{spec.name}: {len(dates)} labelled day(s) cannot make a time split")
    # ---- holdout sized in rows: more days back until the row minimum is reached --------
    need_rows, max_days = holdout_needs(spec, len(labelled))
    per_day = day.value_counts()
    while (int(per_day[per_day.index.isin(dates[-hold_n:])].sum()) < need_rows and hold_n < max_days
           and len(dates) - hold_n - val_n > 1):
        hold_n += 1
    # ---- end of the row-sized holdout ----
    hold_days, val_days = dates[-hold_n:], dates[-hold_n - val_n : -hold_n]
    holdout = labelled[day.isin(hold_days)]
    return {
        "train": labelled[day < val_days[0]],
        "validation": labelled[day.isin(val_days)],
        "holdout": holdout,
        "dates": {
            "train": [str(dates[0]), str(dates[-hold_n - val_n - 1])],
            "validation": [str(val_days[0]), str(val_days[-1])],
            "holdout": [str(hold_days[0]), str(hold_days[-1])],
        },
        "holdout_rows": len(holdout),
        "holdout_min_rows": need_rows,
    }


# ---- holdout sized in rows, and what monitoring should expect of a version ------------------

# A holdout of this many rows lets the paired bootstrap see gains of about 0.02 ROC AUC at a
# 20 % positive rate; the 2-day holdouts of ~1,700 rows before it rejected better challengers.
AUTO_HOLDOUT_ROWS = 2000


def holdout_needs(spec: ModelSpec, labelled_rows: int) -> tuple[int, int]:
    """The rows the holdout needs and the most days it may take to get them.

    ``training.holdout_min_rows``, or from the model's volume: :data:`AUTO_HOLDOUT_ROWS`,
    or a fifth of the window's labelled rows when that is less (a small model is not
    asked for rows it never has: a fifth, so that the quarter of the window's days the
    holdout may take reaches it on a feed with gaps). At most ``training.holdout_max_days``
    days, by default a quarter of the window (never fewer than ``holdout_days``)."""
    t = spec.training
    rows = t.holdout_min_rows if t.holdout_min_rows is not None else min(AUTO_HOLDOUT_ROWS, max(1, labelled_rows // 5))
    days = t.holdout_max_days if t.holdout_max_days is not None else t.window_days // 4
    return int(rows), max(t.holdout_days, int(days))


def label_baseline(spec: ModelSpec, labelled: Any) -> dict[str, Any]:
    """The label rate of the training window (positive rate, or mean target for a
    regression), overall and per weekday, with the spread of the daily rates beyond
    sampling noise (``between_day_sd``): what a day's label rate is tested against."""
    import numpy as np

    y = labelled[spec.target.column].astype(float)
    day = labelled[spec.event_time].dt.date
    daily = y.groupby(day).agg(["mean", "count", "var"])
    weekday = np.array([d.weekday() for d in daily.index])
    by_weekday: dict[str, float] = {}
    for wd in range(7):
        days = daily[weekday == wd]
        if len(days) >= 2:  # one day of a weekday is that day, not the weekday
            by_weekday[str(wd)] = float((days["mean"] * days["count"]).sum() / days["count"].sum())
    overall = float(y.mean())
    unit_var = overall * (1 - overall) if spec.is_classifier else float(y.var(ddof=1) if len(y) > 1 else 0.0)
    expected = np.array([by_weekday.get(str(wd), overall) for wd in weekday])
    noise = unit_var / daily["count"].to_numpy()
    spread = float(np.mean((daily["mean"].to_numpy() - expected) ** 2 - noise)) if len(daily) > 1 else 0.0
    return {"overall": overall, "by_weekday": by_weekday, "unit_variance": unit_var,
            "between_day_sd": float(np.sqrt(max(spread, 0.0))), "days": len(daily), "rows": int(len(y))}


def metric_spread(spec: ModelSpec, labelled: Any, predictions: Any, *, std_error: float, rows: int) -> float:
    """The spread of the promotion metric from day to day beyond sampling noise: the
    variance of the daily metric over the window's days, less the sampling variance each
    day's rows explain (the holdout's ``std_error`` at its ``rows``, scaled), floored at 0.
    In-sample days score higher, but vary alike."""
    import numpy as np

    metric = spec.promotion.metric
    day = labelled[spec.event_time].dt.date.to_numpy()
    y = labelled[spec.target.column].to_numpy(dtype=float)
    daily = []
    for d in np.unique(day):
        mask = day == d
        if mask.sum() >= spec.drift.min_labelled_rows:
            value = promotion.metric_value(spec, metric, y[mask], predictions[mask])
            if value == value:  # NaN: one class only that day
                daily.append((value, int(mask.sum())))

    if len(daily) < 3 or not std_error == std_error:
        return 0.0
    values = np.array([v for v, _ in daily])
    noise = np.mean([std_error**2 * rows / n for _, n in daily])
    return float(np.sqrt(max(float(values.var(ddof=1)) - noise, 0.0)))


def metric_by_weekday(spec: ModelSpec, labelled: Any, predictions: Any) -> dict[str, float]:
    """Each weekday's promotion metric over the window as a share of the whole window's.

    A regression's error grows with the level of its target, and the level follows the week
    (a Saturday's demand): a holdout of a few days cannot say what a Saturday should score.
    The ratio, taken over every labelled day of the window, carries the weekly shape; the
    holdout's value carries the level of unseen data. Weekdays with fewer rows than
    ``drift.min_labelled_rows``, or a metric that is not a positive number, are left out.
    """
    import numpy as np

    metric = spec.promotion.metric
    y = labelled[spec.target.column].to_numpy(dtype=float)
    overall = promotion.metric_value(spec, metric, y, predictions)
    if not overall > 0:
        return {}
    weekday = labelled[spec.event_time].dt.weekday.to_numpy()
    out: dict[str, float] = {}
    for wd in np.unique(weekday):
        mask = weekday == wd
        if mask.sum() >= spec.drift.min_labelled_rows:
            value = promotion.metric_value(spec, metric, y[mask], predictions[mask])
            if value > 0:
                out[str(int(wd))] = float(value / overall)
    return out


def feature_importance(spec: ModelSpec, model: Any, columns: list[str]) -> dict[str, float]:
    """Each spec feature's share of the model's total gain (its encoded columns summed);
    empty when no input column maps to a feature (a custom features function)."""
    scores = model.get_booster().get_score(importance_type="total_gain")
    # Fitted on a bare matrix, the booster names its columns f0, f1, ... (in matrix order).
    scores = {columns[int(k[1:])] if k not in columns and k[:1] == "f" and k[1:].isdigit() else k: v
              for k, v in scores.items()}
    names = sorted(spec.feature_names, key=len, reverse=True)
    out: dict[str, float] = {}
    for column in columns:
        owner = next((n for n in names if column == n or column.startswith(f"{n}__")), None)
        if owner is not None:
            out[owner] = out.get(owner, 0.0) + float(scores.get(column, 0.0))
    total = sum(out.values())
    return {k: v / total for k, v in out.items()} if total > 0 else {}


def drift_reference(spec: ModelSpec, frame: Any, predictions: Any) -> Any:
    """The drift reference: rows of the last ``drift.reference_days`` days of the window
    (whole weeks, so a weekday is compared with its own kind), sampled evenly over the
    weekdays up to ``training.reference_rows``, with ``reference_ds`` (their day) and the
    model's out-of-sample ``prediction`` (validation and holdout rows; empty for rows it
    trained on, whose in-sample scores are sharper than any new day's)."""
    import pandas as pd

    day = frame[spec.event_time].dt.date
    last = max(day)
    recent = frame[day > last - dt.timedelta(days=spec.drift.reference_days)]
    reference = recent[[*spec.feature_names]].copy()
    reference["reference_ds"] = recent[spec.event_time].dt.date.astype(str)
    reference["prediction"] = predictions.reindex(recent.index).to_numpy(dtype=float)
    weekday = recent[spec.event_time].dt.weekday
    per_weekday = max(1, spec.training.reference_rows // max(1, weekday.nunique()))
    parts = [g.sample(n=min(len(g), per_weekday), random_state=spec.training.seed)
             for _, g in reference.groupby(weekday.to_numpy(), sort=True)]
    return pd.concat(parts).sort_index()


def _estimator(spec: ModelSpec, params: dict[str, Any]) -> Any:
    import xgboost as xgb

    base = {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "tree_method": "hist"}
    base.update(params)
    base.update(random_state=spec.training.seed, early_stopping_rounds=spec.training.early_stopping_rounds)
    if spec.is_classifier:
        return xgb.XGBClassifier(objective="binary:logistic", eval_metric="logloss", **base)
    return xgb.XGBRegressor(objective="reg:squarederror", eval_metric="rmse", **base)


def _keep_best_trees(model: Any) -> None:
    """Drop the trees grown after the early-stopping best iteration.

    The booster keeps the ``early_stopping_rounds`` trees past the best one; the model's
    own ``predict`` skips them, but ``Booster.inplace_predict`` (used for evaluation
    and batch scoring) would use them. Truncating once here makes every consumer
    predict with the early-stopped model.
    """
    booster = model.get_booster()
    best = booster.attr("best_iteration")
    if best is None or booster.num_boosted_rounds() <= int(best) + 1:
        return
    kept = booster[: int(best) + 1]
    kept.set_attr(**booster.attributes())  # slicing drops best_iteration / best_score
    model.load_model(bytearray(kept.save_raw(raw_format="ubj")))


def _importance_plot(model: Any, columns: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = model.get_booster().get_score(importance_type="gain")
    items = sorted(((scores.get(c, 0.0), c) for c in columns), reverse=True)[:20]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh([c for _, c in reversed(items)], [s for s, _ in reversed(items)])
    ax.set_title("Feature importance (gain)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold (dates, numpy scalars) turned into text."""
    return json.loads(json.dumps(value, default=str))


def _trigger_tags(trigger: dict[str, Any], window: dict[str, Any]) -> dict[str, str]:
    """Who or what asked for this training, and on what evidence, as version tags.

    The full evidence (drifted columns, concept metrics, report path) is also logged as
    ``trigger/trigger.json`` on the run; the tags hold what the registry UI should show.
    """
    evidence = trigger.get("evidence") or {}
    tags = {
        "trigger.reason": str(trigger.get("reason") or "manual"),
        "trigger.by": str(trigger.get("by") or "unknown"),
        "trigger.window_end": str(window["end_ds"]),
        "trigger.ds": str(trigger.get("evidence_ds") or window["end_ds"]),
    }
    if trigger.get("detail"):
        tags["trigger.detail"] = str(trigger["detail"])[:4900]
    for key in ("drift_share", "drifted_columns", "prediction_drift", "report_html", "champion_version"):
        if evidence.get(key) is not None:
            value = evidence[key]
            tags[f"trigger.{key}"] = (json.dumps(value) if isinstance(value, list | dict) else str(value))[:4900]
    concept = evidence.get("concept") or {}
    if concept.get("metric") and concept.get("value") is not None:
        value = concept["value"]
        # Never a format error after the fit: the evidence is data, whatever its type.
        shown = f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)[:100]
        tags["trigger.concept"] = f"{concept['metric']}={shown} (holdout {concept.get('baseline')})"
    return tags


def _undecided_version(spec: ModelSpec, window: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of a version registered from this exact training but never compared
    (its process died after registering it), so a retry resumes instead of registering twice."""
    import mlflow.artifacts

    done = already_trained(spec, window)
    if done is None or done.tags.get("status") != "candidate":
        return None
    summary = mlflow.artifacts.load_dict(f"runs:/{done.run_id}/training/summary.json")
    holdout = Path(summary["holdout_path"])
    if not holdout.exists():  # judged on the rows the run logged, wherever the lake copy went
        local = mlflow.artifacts.download_artifacts(run_id=done.run_id, artifact_path=f"data/{holdout.name}")
        holdout = lake.write_bytes(holdout, Path(local).read_bytes())
    log.info("%s v%s was registered from this training and never compared: resuming with it", spec.model_name,
             done.version)
    return {**summary, "version": str(done.version), "run_id": done.run_id, "holdout_path": str(holdout)}


def train_and_register(spec: ModelSpec, window: dict[str, Any], *, trigger: dict[str, Any]) -> dict[str, Any]:
    """Fit a challenger on the assembled window, test it, log it to MLflow and register it.

    Logged: XGBoost params, split dates and sizes, validation and holdout metrics,
    per-slice metrics, latency and size, the data version (partitions and hashes),
    the code version and fingerprint, the spec and its hash, the feature layout, a
    signature and input example, evaluation plots, the holdout and the drift reference
    sample, and the trigger with its evidence. The version is registered last, with all
    its tags at once. A retry after a crash that came after the registration resumes
    with that version instead of registering the same training twice.
    """
    config.quiet_third_party()
    end_abandoned_runs(spec)
    resumed = _undecided_version(spec, window)
    if resumed is not None:
        return resumed
    import tempfile

    import mlflow
    import mlflow.xgboost
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from mlflow.models import infer_signature

    frame = pd.read_parquet(window["path"], engine="pyarrow")
    split = time_split(spec, frame)
    cols = features.feature_columns(spec)
    x_train, x_val, x_hold = (features.build_matrix(spec, split[k]) for k in ("train", "validation", "holdout"))
    y = {k: split[k][spec.target.column].to_numpy() for k in ("train", "validation", "holdout")}
    params = dict(spec.training.xgboost)
    model = _estimator(spec, params)
    model.fit(x_train, y["train"], eval_set=[(x_val, y["validation"])], verbose=False)
    _keep_best_trees(model)

    pred_val = evaluation.predict(spec, model, x_val)
    pred_hold = evaluation.predict(spec, model, x_hold)
    val_metrics = evaluation.metrics(spec, y["validation"], pred_val)
    hold_metrics = evaluation.metrics(spec, y["holdout"], pred_hold)
    slices = evaluation.slice_metrics(spec, split["holdout"], pred_hold)
    latency = evaluation.latency_ms_per_1k(spec, model, x_hold)
    size_mb = evaluation.model_size_mb(model)
    tests = {
        "latency": latency <= spec.training.max_latency_ms_per_1k_rows,
        "size": size_mb <= spec.training.max_model_size_mb,
    }

    holdout_path = lake.write_parquet(lake.training_dir(spec.name, window["end_ds"]) / "holdout.parquet", split["holdout"])
    # ---- what monitoring compares later days with (drift reference, expectations) ----
    # The drift reference covers whole weeks of the window's last days (see drift_reference);
    # only rows the model never trained on carry a prediction.
    out_of_sample = pd.concat([pd.Series(pred_val, index=split["validation"].index),
                               pd.Series(pred_hold, index=split["holdout"].index)])
    reference = drift_reference(spec, frame, out_of_sample)
    metric = spec.promotion.metric
    expectation = {
        "metric": metric,
        "value": hold_metrics[metric],
        # The holdout metric's bootstrap standard error and rows: a day of n labelled rows
        # expects the same value with this error times sqrt(rows / n).
        "std_error": promotion.bootstrap_std_error(spec, y["holdout"], pred_hold),
        "rows": int(len(y["holdout"])),
        "label_rate": label_baseline(spec, pd.concat([split["train"], split["validation"], split["holdout"]])),
        "importance": feature_importance(spec, model, cols),
    }
    # Days differ beyond sampling noise (a weekday's mix, a holiday): the spread of the daily
    # metric over the window, beyond what its rows explain, widens the expected error too.
    # In-sample days vary less than new ones; the out-of-sample days (validation, holdout) are
    # few: the larger of the two spreads.
    window_rows = pd.concat([split["train"], split["validation"], split["holdout"]])
    window_pred = np.concatenate([evaluation.predict(spec, model, x_train), pred_val, pred_hold])
    expectation["between_day_sd"] = max(
        metric_spread(spec, window_rows, window_pred, std_error=expectation["std_error"], rows=expectation["rows"]),
        metric_spread(spec, pd.concat([split["validation"], split["holdout"]]), np.concatenate([pred_val, pred_hold]),
                      std_error=expectation["std_error"], rows=expectation["rows"]),
    )
    # The weekly shape of the metric (see metric_by_weekday): monitoring expects a day's
    # metric at the holdout's value times its weekday's factor.
    expectation["by_weekday"] = metric_by_weekday(spec, window_rows, window_pred)
    # ---- end of monitoring expectations ----

    exp_id = registry.ensure_experiment(spec)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{spec.name} window {window['start_ds']}..{window['end_ds']}",
                          tags={TRAINING_RUN_TAG: "training"}) as run:
        mlflow.log_params({f"xgb.{k}": v for k, v in params.items()})
        mlflow.log_params(
            {
                "window_start": window["start_ds"],
                "window_end": window["end_ds"],
                "split.train": "..".join(split["dates"]["train"]),
                "split.validation": "..".join(split["dates"]["validation"]),
                "split.holdout": "..".join(split["dates"]["holdout"]),
                "rows.train": len(x_train),
                "rows.validation": len(x_val),
                "rows.holdout": len(x_hold),
                "best_iteration": int(getattr(model, "best_iteration", -1) or -1),
                "seed": spec.training.seed,
            }
        )
        mlflow.log_metrics({f"val_{k}": v for k, v in val_metrics.items()})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in hold_metrics.items()})
        mlflow.log_metrics({"latency_ms_per_1k_rows": latency, "model_size_mb": size_mb})
        for value, m in slices.items():
            mlflow.log_metric(f"slice.{spec.training.slice_column}.{value}.{spec.promotion.metric}", m[spec.promotion.metric])
        commit = config.git_commit()
        tags = {
            "data.version": window["data_version"],
            "data.partitions": ",".join(p["ds"] for p in window["partitions"]),
            "data.rows": str(window["rows"]),
            "code.version": config.code_version(),
            "code.fingerprint": config.code_fingerprint(),
            **({"mlflow.source.git.commit": commit} if commit else {}),
            "spec.name": spec.name,
            "spec.sha256": spec.sha256(),
            "features.sha256": features.layout_digest(cols),
            "training.fingerprint": training_fingerprint(spec, window["data_version"]),
            **_trigger_tags(trigger, window),
        }
        mlflow.set_tags(tags)
        mlflow.log_dict(window, "data/window.json")
        mlflow.log_dict(json.loads(spec.model_dump_json()), "spec/spec.json")
        mlflow.log_dict({"columns": cols}, "features/columns.json")
        mlflow.log_dict(_jsonable(trigger), "trigger/trigger.json")
        mlflow.log_dict({"slices": slices, "tests": tests, "latency_ms_per_1k_rows": latency, "model_size_mb": size_mb}, "evaluation/model_tests.json")
        with tempfile.TemporaryDirectory() as tmp:
            _importance_plot(model, cols, Path(tmp) / "feature_importance.png")
            for plot in [Path(tmp) / "feature_importance.png",
                         *evaluation.plots(spec, y["holdout"], pred_hold, Path(tmp))]:
                mlflow.log_artifact(str(plot), "evaluation")
            reference.to_parquet(Path(tmp) / "reference.parquet", index=False)
            mlflow.log_artifact(str(Path(tmp) / "reference.parquet"), "reference")
        mlflow.log_dict(_jsonable(expectation), "reference/expectation.json")
        mlflow.log_artifact(str(holdout_path), "data")
        example = pd.DataFrame(x_hold[:5], columns=cols)
        # The booster carries its column names, so whoever loads it from the registry knows the layout.
        model.get_booster().feature_names = list(cols)
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(example, pred_hold[:5]),
            input_example=example,
            pip_requirements=[f"xgboost=={xgb.__version__}", f"mlflow=={mlflow.__version__}"],
        )
        # Registered last, with every tag in the same call: a process killed at any earlier
        # point leaves an unfinished run and no version; a version never exists without
        # its status, lineage and trigger.
        version_tags = {
            "status": "candidate",
            **{k: v for k, v in tags.items() if not k.startswith("mlflow.")},
            f"holdout_{spec.promotion.metric}": f"{hold_metrics[spec.promotion.metric]:.6f}",
            # What monitoring expects of this version's days (reference/expectation.json has it all).
            "expected.metric": metric,
            "expected.value": f"{expectation['value']:.6f}",
            "expected.std_error": f"{expectation['std_error']:.6f}",
            "expected.between_day_sd": f"{expectation['between_day_sd']:.6f}",
            "expected.rows": str(expectation["rows"]),
            "expected.label_rate": f"{expectation['label_rate']['overall']:.6f}",
            "holdout.rows": str(split["holdout_rows"]),
            "holdout.min_rows": str(split["holdout_min_rows"]),
        }
        summary = {
            "model": spec.name,
            "run_id": run.info.run_id,
            "holdout_path": str(holdout_path),
            "holdout_metrics": hold_metrics,
            "validation_metrics": val_metrics,
            "slices": slices,
            "tests": tests,
            "latency_ms_per_1k_rows": latency,
            "model_size_mb": size_mb,
            "split": split["dates"],
            "trigger": _jsonable(trigger),
            "holdout_rows": split["holdout_rows"],
            "holdout_min_rows": split["holdout_min_rows"],
        }
        mlflow.log_dict(summary, "training/summary.json")
        mv = mlflow.register_model(info.model_uri, spec.model_name, tags=version_tags)
        version = str(mv.version)
    # A cache of the run's reference artifact (monitoring fetches it from MLflow when absent).
    lake.write_parquet(lake.reference_file(spec.name, version), reference)
    lake.write_json(lake.reference_file(spec.name, version).with_name("expectation.json"), _jsonable(expectation))
    log.info("registered %s v%s (run %s) holdout %s", spec.model_name, version, run.info.run_id, hold_metrics)
    return {**summary, "version": version}


# ---- 3. compare and promote -------------------------------------------------------


def _matrix_for_version(spec: ModelSpec, mv: Any, frame: Any, matrix: Any) -> Any:
    """The feature matrix a registered version expects for ``frame``.

    ``matrix`` (built with the current spec) when the version was trained on the same
    layout; otherwise the version's own logged spec builds it, so a champion trained
    before a feature was added is still judged on the same rows with its own inputs.

    Raises:
        PromotionBlocked: the version's layout cannot be rebuilt from these rows.
    """
    recorded = mv.tags.get("features.sha256")
    if recorded is None or recorded == features.layout_digest(features.feature_columns(spec)):
        return matrix
    import mlflow.artifacts

    try:
        own = ModelSpec.model_validate(mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/spec/spec.json"))
        rebuilt = features.build_matrix(own, frame)
    except Exception as exc:  # any failure here means the comparison cannot be fair
        raise PromotionBlocked(
            f"{spec.model_name}: champion v{mv.version} was trained on another feature layout and cannot be scored "
            f"on the challenger's holdout ({exc}); nothing was promoted. Review the challenger and promote it "
            f"by hand if it is right: `mlops rollback {spec.name} --to-version N --reason ...`"
        ) from exc
    if features.layout_digest(features.feature_columns(own)) != recorded:
        raise PromotionBlocked(f"{spec.model_name}: champion v{mv.version}'s logged spec does not rebuild its "
                               "feature layout; nothing was promoted")
    return rebuilt


def _power_tags(decision: Any) -> dict[str, str]:
    """What the comparison could see: holdout rows (and the rows it needed), the smallest
    detectable gain, and whether it was too small to decide."""
    power = decision.holdout or {}
    tags = {"promotion.too_small_to_decide": str(bool(power.get("too_small_to_decide"))).lower()}
    if power.get("rows") is not None:
        tags["promotion.holdout_rows"] = str(power["rows"])
    if power.get("min_rows") is not None:
        tags["promotion.holdout_min_rows"] = str(power["min_rows"])
    mde = power.get("min_detectable_gain")
    if mde is not None and mde == mde:  # not NaN
        tags["promotion.min_detectable_gain"] = f"{mde:.6f}"
    return tags


def compare_and_promote(
    spec: ModelSpec, trained: dict[str, Any], *, actor: str, auto_promote: bool | None = None
) -> dict[str, Any]:
    """Compare the challenger with the champion on the challenger's holdout and act.

    ``auto_promote`` overrides the spec's ``promotion.mode`` (False parks a winner as
    ``challenger`` for approval). Returns the decision, with every reason.

    Resumable and idempotent: a version already decided is left as it is (its recorded
    decision is returned), and a decision recorded on the run but not carried out (the
    process was killed in between) is carried out as recorded, not taken again.
    """
    resumed = _resume_decision(spec, trained, actor=actor)
    if resumed is not None:
        return resumed
    import mlflow
    import pandas as pd

    holdout = pd.read_parquet(trained["holdout_path"], engine="pyarrow")
    matrix = features.build_matrix(spec, holdout)
    # Both models come from the registry and are scored on the same rows: the noise test
    # and the slice checks compare them row for row.
    challenger_pred = evaluation.predict(spec, registry.load_model(spec, trained["version"]), matrix)
    champ = registry.champion(spec)
    champ_pred = None
    if champ is not None:
        champ_pred = evaluation.predict(spec, registry.load_model(spec, champ.version),
                                        _matrix_for_version(spec, champ, holdout, matrix))
    evidence = promotion.evaluate_pair(spec, holdout, challenger_pred, champ_pred)
    champ_metrics = evidence["champion_metrics"]
    decision = promotion.decide(
        spec,
        challenger_metrics=evidence["challenger_metrics"],
        champion_metrics=champ_metrics,
        model_tests=trained["tests"],
        paired=evidence["paired"],
        slices=evidence["slices"],
        # The holdout's rows and the rows it needed (absent for a version trained before
        # holdouts were sized in rows): the decision says when it was too small to decide.
        holdout={"rows": len(holdout), "min_rows": trained.get("holdout_min_rows")},
    )
    run_experiment = registry.client().get_run(trained["run_id"]).info.experiment_id
    # Resuming a run needs the fluent API's active experiment to be the run's own: another
    # model's training in the same process may have left its experiment active.
    mlflow.set_experiment(experiment_id=run_experiment)
    with mlflow.start_run(run_id=trained["run_id"]):
        if champ_metrics:
            mlflow.log_metrics({f"champion_holdout_{k}": v for k, v in champ_metrics.items()})
        if evidence["paired"]:
            mlflow.log_metrics({f"promotion.{k}": v for k, v in evidence["paired"].items() if isinstance(v, int | float)})
        mlflow.log_dict(decision.as_dict(), "evaluation/promotion_decision.json")
        mlflow.set_tags(
            {
                "promotion.decision": "promote" if decision.promote else "reject",
                "promotion.reasons": decision.summary[:4900],
                "promotion.compared_with": f"v{champ.version}" if champ else "none",
            }
        )
        mlflow.set_tags(_power_tags(decision))
    # The power of the decision on the version too, beside its status and reason.
    for key, value in _power_tags(decision).items():
        registry.client().set_model_version_tag(spec.model_name, trained["version"], key, value)
    why = f"{trained['trigger'].get('reason', 'manual')}: {decision.summary}"
    wants_auto = spec.promotion.mode == "auto" if auto_promote is None else auto_promote
    if spec.promotion.mode == "manual" and wants_auto:
        # The spec's manual mode is a rule of the model's owners: a run's form may make
        # promotion stricter (auto -> manual), never skip an approval the spec requires.
        log.warning("%s: promotion.mode is manual in the spec; the run asked for auto, the winner waits for approval",
                    spec.name)
        wants_auto = False
        why += " (the run asked for automatic promotion; the spec requires approval)"
    outcome = "rejected" if not decision.promote else "promoted" if wants_auto else "awaiting_approval"
    # The outcome is on the run before the registry changes: a rerun after a kill here carries it out.
    registry.client().set_tag(trained["run_id"], "promotion.outcome", outcome)
    registry.client().set_tag(trained["run_id"], "promotion.why", why[:4900])
    _carry_out(spec, trained["version"], outcome, actor=actor, why=why)
    log.info("%s v%s %s: %s", spec.model_name, trained["version"], outcome, decision.summary)
    return {
        "model": spec.name,
        "version": trained["version"],
        "outcome": outcome,
        "champion_version": champ.version if champ else None,
        **decision.as_dict(),
    }


# ---- runs of killed trainings (issue 15) ------------------------------------------------------

# Marks the MLflow runs a training starts, so the next one can tell its abandoned predecessors.
TRAINING_RUN_TAG = "mlops.stage"


def end_abandoned_runs(spec: ModelSpec) -> list[str]:
    """End the training runs of the model that a killed process left RUNNING.

    Called before a training starts: the retraining DAG runs one at a time per model
    (``max_active_runs=1``), so no other training of the model can be under way and a
    RUNNING one is abandoned. A run that got as far as registering its version is ended
    FINISHED (the version is whole: it was registered last, with all its tags), any other
    KILLED, each tagged with why. Runs of older code (no stage tag) are found by their name.

    Returns:
        The ids of the runs ended.
    """
    c = registry.client()
    exp = c.get_experiment_by_name(spec.name)
    if exp is None:
        return []
    found = {r.info.run_id: r for r in c.search_runs(
        [exp.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000)}
    registered = {v.run_id for v in registry.versions(spec)}
    ended = []
    for run_id, run in found.items():
        tags = run.data.tags
        ours = tags.get(TRAINING_RUN_TAG) == "training" or tags.get("mlflow.runName", "").startswith(f"{spec.name} window ")
        if not ours:
            continue
        status = "FINISHED" if run_id in registered else "KILLED"
        c.set_tag(run_id, "mlops.ended_by", "the next training of the model: the process of this run was killed")
        c.set_terminated(run_id, status=status)
        log.warning("%s: training run %s was left RUNNING by a killed process; ended as %s", spec.name, run_id, status)
        ended.append(run_id)
    return ended


# ---- resuming a decision after a kill (issue 15) --------------------------------------------


# What each status a decision (or a later change) leaves means for the comparison that made it.
_OUTCOME_OF_STATUS = {"champion": "promoted", "retired": "promoted", "rolled_back": "promoted",
                      "rejected": "rejected", "awaiting_approval": "awaiting_approval", "superseded": "awaiting_approval"}


def is_undecided(mv: Any) -> bool:
    """Whether a registered version still waits for its promotion decision (status ``candidate``,
    or none: registered outside :func:`train_and_register`)."""
    return mv.tags.get("status") not in _OUTCOME_OF_STATUS


def _carry_out(spec: ModelSpec, version: str, outcome: str, *, actor: str, why: str, resume: bool = False) -> None:
    """Make the registry say ``outcome`` for ``version`` (``resume``: some of it may be done already)."""
    if outcome == "rejected":
        registry.reject(spec, version, actor=actor, reason=why)
    elif outcome == "promoted":
        registry.set_champion(spec, version, actor=actor, reason=why, resume=resume)
    else:
        registry.mark_challenger(spec, version, actor=actor, reason=why)


def _resume_decision(spec: ModelSpec, trained: dict[str, Any], *, actor: str) -> dict[str, Any] | None:
    """The result of a comparison made before, or None when the version still needs one.

    A version whose status is no longer ``candidate`` was decided: nothing changes. A run
    that holds its outcome (``promotion.outcome``) while its version is still a candidate was
    killed between deciding and recording: the recorded outcome is carried out (the champion
    may already be the challenger itself, so comparing again would judge it against itself).
    """
    import mlflow.artifacts

    mv = registry.get_version(spec, trained["version"])
    run = registry.client().get_run(trained["run_id"])
    outcome = run.data.tags.get("promotion.outcome")
    if is_undecided(mv) and outcome is None:
        return None
    try:
        decision = mlflow.artifacts.load_dict(f"runs:/{trained['run_id']}/evaluation/promotion_decision.json")
    except Exception:  # noqa: BLE001 - a version decided before this record existed (or by hand)
        decision = {}
    if is_undecided(mv):
        why = run.data.tags.get("promotion.why") or run.data.tags.get("promotion.reasons", "")
        log.warning("%s v%s: its %s decision was recorded but not carried out (the run was killed); carrying it out",
                    spec.model_name, mv.version, outcome)
        _carry_out(spec, str(mv.version), outcome, actor=actor, why=why, resume=True)
    else:
        outcome = _OUTCOME_OF_STATUS.get(mv.tags.get("status"), mv.tags.get("status"))
        log.info("%s v%s was decided before (status %s); nothing to do", spec.model_name, mv.version,
                 mv.tags.get("status"))
    compared = run.data.tags.get("promotion.compared_with", "none")
    return {"model": spec.name, "version": str(mv.version), "outcome": outcome,
            "champion_version": None if compared == "none" else compared.lstrip("v"), "resumed": True, **decision}
