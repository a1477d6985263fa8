"""Monitoring: the daily drift check and the retraining decision.

:func:`check_drift` compares the day's validated inputs and the champion's
predictions with the champion's reference sample (its holdout rows, logged with the
version) through Evidently, and, when the day's labels are in, measures the
champion's realised metric against its holdout metric (concept drift).

:func:`collect_labels` does the same for labels that arrive apart from the features
(the spec's ``labels`` section): the run of day D + ``delay_days`` reads the labels of
day D and keeps them in the lake's ``labels`` zone (training reads them there); when
day D was scored it joins them with its predictions and measures concept drift.

:func:`decide_retraining` applies the spec's explicit conditions: drift that has
lasted ``drift_days_required`` days, or a metric drop beyond ``max_metric_drop``;
no retraining inside the cooldown after an earlier request. A decision to retrain is
recorded in the lake before the trigger runs, keyed by day, so reruns and repeated
triggers for the same day make one request, not two.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mlops_lifecycle import drift, evaluation, lake, registry
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)


def reference_sample(spec: ModelSpec, version: str | int):
    """The drift reference of a model version: cached in the lake, else fetched from MLflow."""
    import pandas as pd

    cached = lake.reference_file(spec.name, version)
    if cached.exists():
        return pd.read_parquet(cached, engine="pyarrow")
    import mlflow.artifacts

    mv = registry.get_version(spec, version)
    local = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path="reference/reference.parquet")
    frame = pd.read_parquet(local, engine="pyarrow")
    lake.write_parquet(cached, frame)
    return frame


def check_drift(spec: ModelSpec, ds: str | dt.date, *, version: str | int) -> dict[str, Any]:
    """Stage function: Evidently drift report of the day against the champion's reference,
    plus the champion's realised metric when labels are present. Returns the summary."""
    import pandas as pd

    day = lake.as_date(ds)
    validated = pd.read_parquet(lake.data_file(spec.name, "validated", day), engine="pyarrow")
    preds = pd.read_parquet(lake.data_file(spec.name, "predictions", day), engine="pyarrow")
    current = validated[[spec.entity_id, *spec.feature_names, spec.target.column]].merge(
        preds[[spec.entity_id, "prediction"]], on=spec.entity_id, how="inner"
    )
    reference = reference_sample(spec, version)
    out_dir = lake.report_dir(spec.name, "drift", day)
    concept = concept_metrics(spec, current, version)
    # The report and summary.json are written as one folder swap.
    summary = drift.compute_drift(spec, current[[*spec.drift_columns, "prediction"]], reference, out_dir=out_dir,
                                  extra={"model": spec.name, "ds": day.isoformat(), "model_version": str(version),
                                         "concept": concept})
    log.info(
        "%s %s drift share %.2f (threshold %.2f) drifted=%s prediction=%s concept=%s",
        spec.name, day, summary["drift_share"], summary["drift_share_threshold"], summary["drifted_columns"],
        (summary.get("prediction_drift") or {}).get("drifted"), concept,
    )
    return {k: summary[k] for k in ("model", "ds", "model_version", "drift_share", "dataset_drift", "drifted_columns")} | {
        "prediction_drift": (summary.get("prediction_drift") or {}).get("drifted"),
        "concept": concept,
        "report_html": summary.get("report_html"),
    }


def concept_metrics(spec: ModelSpec, frame, version: str | int) -> dict[str, Any]:
    """The realised metric of a model version on labelled rows (target and ``prediction``
    columns) against its holdout value: ``{"labelled_rows", "metric", "value", "baseline",
    "drop", "degraded"}``; only ``labelled_rows`` below ``drift.min_labelled_rows``."""
    labelled = frame[frame[spec.target.column].notna()]
    concept: dict[str, Any] = {"labelled_rows": len(labelled)}
    if len(labelled) >= spec.drift.min_labelled_rows:
        metric = spec.promotion.metric
        mv = registry.get_version(spec, version)
        baseline = mv.tags.get(f"holdout_{metric}")
        value = evaluation.metrics(spec, labelled[spec.target.column].to_numpy(), labelled["prediction"].to_numpy())[metric]
        concept.update(metric=metric, value=value, baseline=float(baseline) if baseline else None)
        if baseline is not None:
            drop = (float(baseline) - value) if spec.higher_is_better(metric) else (value - float(baseline))
            concept["drop"] = drop
            limit = spec.drift.max_metric_drop
            concept["degraded"] = bool(limit is not None and drop > limit)
    return concept


class LabelsError(ValueError):
    """Labels were delivered but cannot be joined: a column is missing or a key repeats."""


def collect_labels(spec: ModelSpec, ds: str | dt.date) -> dict[str, Any]:
    """Stage function: the labels that arrive today, for the rows of ``delay_days`` ago.

    The daily run of day ``ds`` collects the labels of the event day D = ``ds`` -
    ``labels.delay_days`` (see :func:`labels_for_day`) and returns ``{"model", "ds",
    "event_ds", "status", ...}``.
    """
    if spec.labels is None:
        raise ValueError(f"{spec.name}: the spec has no labels section")
    day = lake.as_date(ds)
    event_day = day - dt.timedelta(days=spec.labels.delay_days)
    return {"ds": day.isoformat()} | labels_for_day(spec, event_day)


def labels_for_day(spec: ModelSpec, event_day: str | dt.date) -> dict[str, Any]:
    """Read the labels of ``event_day`` from ``labels.source`` and keep them in the lake.

    The labels (join key and target) go to ``labels/ds=<event day>`` whether or not that
    day was scored: training reads them from there, so a model whose labels only ever
    arrive on their own can still train its first version. When the day was scored, the
    labels are joined with its predictions and the champion's realised metric (concept
    drift) goes to ``reports/concept/ds=<event day>/summary.json``.

    Returns:
        ``{"model", "event_ds", "status", ...}``: ``status`` is ``joined`` (scored day:
        with ``rows``, ``predictions_rows``, ``model_version`` and the ``concept``
        section), ``stored`` (kept for training; the day has no predictions to measure)
        or ``not_arrived`` (nothing at the source yet).

    Raises:
        LabelsError: the labels lack the join key or the target column, or repeat a key.
        ingestion.SourceUnreadable, ingestion.SourceFailed: the labels source is broken.
    """
    import pandas as pd

    from mlops_lifecycle import ingestion

    if spec.labels is None:
        raise ValueError(f"{spec.name}: the spec has no labels section")
    event_day = lake.as_date(event_day)
    out: dict[str, Any] = {"model": spec.name, "event_ds": event_day.isoformat()}
    try:
        labels, lineage = ingestion.read_frame(spec, event_day, spec.labels.source, where="labels.source")
    except ingestion.SourceMissing as exc:
        log.warning("%s: the labels of %s have not arrived (%s days after): %s", spec.name, event_day,
                    spec.labels.delay_days, exc)
        return out | {"status": "not_arrived", "detail": str(exc)}
    key, target = spec.labels_join_key, spec.target.column
    missing = [c for c in (key, target) if c not in labels.columns]
    if missing:
        raise LabelsError(f"{spec.name}: the labels of {event_day} lack column(s) {missing}; they have "
                          f"{list(map(str, labels.columns))} ({lineage['source']})")
    labels = labels[[key, target]].dropna(subset=[target])
    repeated = labels[key][labels[key].duplicated()].unique().tolist()
    if repeated:
        raise LabelsError(f"{spec.name}: the labels of {event_day} repeat {key} {repeated[:5]} "
                          f"({len(repeated)} key(s)); one label per row, please")
    preds_path = lake.data_file(spec.name, "predictions", event_day)
    if not preds_path.exists():
        target_path = lake.write_parquet(lake.data_file(spec.name, "labels", event_day), labels)
        log.info("%s: kept %s labels of %s for training (the day was not scored)", spec.name, len(labels), event_day)
        return out | {"status": "stored", "labels_rows": len(labels), "labels_path": str(target_path), **lineage}
    preds = pd.read_parquet(preds_path, engine="pyarrow")
    rows = preds[[spec.entity_id, "prediction", "model_version"]]
    if key != spec.entity_id:
        validated = pd.read_parquet(lake.data_file(spec.name, "validated", event_day), engine="pyarrow")
        rows = rows.merge(validated[[spec.entity_id, key]], on=spec.entity_id, how="inner")
    if rows[key].dtype != labels[key].dtype:  # e.g. ids that a CSV read as numbers
        rows, labels = rows.assign(**{key: rows[key].astype(str)}), labels.assign(**{key: labels[key].astype(str)})
    # Every label is kept (training wants them all); the scored ones carry their prediction.
    kept = labels.merge(rows, on=key, how="left")
    target_path = lake.write_parquet(lake.data_file(spec.name, "labels", event_day), kept)
    joined = kept[kept["prediction"].notna()]
    version = int(joined["model_version"].mode().iloc[0]) if len(joined) else int(preds["model_version"].iloc[0])
    concept = concept_metrics(spec, joined, version)
    summary = out | {
        "status": "joined", "labels_rows": len(labels), "rows": len(joined), "predictions_rows": len(preds),
        "labels_path": str(target_path), "model_version": str(version), "concept": concept, **lineage,
    }
    lake.write_json(lake.report_dir(spec.name, "concept", event_day) / "summary.json", summary)
    log.info("%s: %s labels of %s joined %s of %s predictions; concept %s", spec.name, len(labels), event_day,
             len(joined), len(preds), concept)
    return summary


def _drift_of(spec: ModelSpec, day: dt.date) -> str | None:
    """What drifted on ``day`` by the spec's rules: ``data_drift`` (the share of drifted
    feature columns reached ``drift.drift_share``), ``prediction_drift`` (only the
    predictions, counted when ``retraining.on_prediction_drift``), or None."""
    path = lake.report_dir(spec.name, "drift", day) / "summary.json"
    if not path.exists():
        return None
    summary = lake.read_json(path)
    if summary.get("dataset_drift"):
        return "data_drift"
    if spec.retraining.on_prediction_drift and (summary.get("prediction_drift") or {}).get("drifted"):
        return "prediction_drift"
    return None


def decide_retraining(spec: ModelSpec, ds: str | dt.date, check: dict[str, Any], *, run_id: str,
                      labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decide whether today's evidence starts a retraining run.

    Args:
        labels: what :func:`collect_labels` found today; when it joined late labels, its
            concept section (for the event day) is the concept evidence.

    Returns ``{"retrain": bool, "reason": str, ...evidence}``; when ``retrain`` is true
    the request is also written to ``events/retrain_requests/<ds>.json``.
    """
    if labels and labels.get("status") == "joined" and labels.get("concept", {}).get("metric"):
        check = {**check, "concept": {**labels["concept"], "event_ds": labels["event_ds"]}}
    day = lake.as_date(ds)
    policy = spec.retraining
    need = policy.drift_days_required
    streak_days = [day - dt.timedelta(days=i) for i in range(need)]
    kinds = [_drift_of(spec, d) for d in streak_days]
    streak = all(kinds)
    degraded = bool(check.get("concept", {}).get("degraded"))
    evidence = {
        "model": spec.name,
        "ds": day.isoformat(),
        "drift_share": check.get("drift_share"),
        "drifted_columns": check.get("drifted_columns"),
        "prediction_drift": check.get("prediction_drift"),
        "concept": check.get("concept"),
        "report_html": check.get("report_html"),
        "champion_version": check.get("model_version"),
        "requested_by": f"airflow:{spec.name}__daily/{run_id}",
    }
    if not (streak or degraded):
        why = "no drift" if not kinds[0] else f"drift on fewer than {need} consecutive day(s)"
        return _alert_drift(spec, {"retrain": False, "reason": why, **evidence}, check)
    earlier = [e for e in lake.events(spec.name, "retrain_requests") if e["ds"] != day.isoformat()]
    recent = [e for e in earlier if 0 <= (day - lake.as_date(e["ds"])).days < policy.cooldown_days]
    if recent:
        last = max(e["ds"] for e in recent)
        decision = {"retrain": False, "reason": f"cooldown: retraining was requested on {last} (cooldown {policy.cooldown_days} days)", **evidence}
        return _alert_drift(spec, decision, check)
    if streak:
        # The challenger learns the new regime from the drifted days: wait until they hold enough rows.
        rows = sum(lake.parquet_rows(path) for d in streak_days
                   if (path := lake.data_file(spec.name, "validated", d)).exists())
        if rows < policy.min_rows:
            decision = {"retrain": False, "reason": f"drift on {need} day(s) holds {rows} validated rows; "
                        f"retraining.min_rows is {policy.min_rows}", **evidence}
            return _alert_drift(spec, decision, check)
    if streak:
        reason = "data_drift" if "data_drift" in kinds else "prediction_drift"
    else:
        reason = "concept_drift"
    detail = (
        f"{reason.replace('_', ' ')} on {need} consecutive day(s) "
        f"({', '.join(d.isoformat() for d in reversed(streak_days))}); "
        f"share {check.get('drift_share'):.2f} in {check.get('drifted_columns')}"
        + ("; the predictions drifted too" if check.get("prediction_drift") else "")
        if streak
        else f"{check['concept']['metric']} fell {check['concept']['drop']:.3f} below the holdout value"
        + (f" on the labels of {check['concept']['event_ds']}" if check["concept"].get("event_ds") else "")
    )
    request = {"retrain": True, "reason": reason, "detail": detail, **evidence}
    # Keyed by day: a rerun, or a second trigger for the same day, rewrites this one request
    # (and the trigger's run id drift__<ds> starts at most one retraining run).
    path = lake.event_file(spec.name, "retrain_requests", day.isoformat())
    request["already_requested"] = path.exists()
    lake.write_json(path, request)
    return _alert_drift(spec, request, check)


def _alert_drift(spec: ModelSpec, decision: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    """Raise a ``drift`` alert when the day shows data, prediction or concept drift
    (one alert per model and day: a rerun replaces it). Returns ``decision`` unchanged."""
    from mlops_lifecycle import alerts

    concept = check.get("concept") or {}
    if not (check.get("dataset_drift") or check.get("prediction_drift") or concept.get("degraded")):
        return decision
    ds = decision["ds"]
    what = []
    if check.get("dataset_drift"):
        what.append(f"data drift (share {check.get('drift_share', 0):.2f} in {check.get('drifted_columns')})")
    if check.get("prediction_drift"):
        what.append("prediction drift")
    if concept.get("degraded"):
        what.append(f"{concept.get('metric')} fell {concept.get('drop', 0):.3f} below its holdout value")
    action = "retraining requested" if decision["retrain"] else f"no retraining: {decision['reason']}"
    alerts.emit(
        spec,
        "drift",
        f"{spec.name}: drift on {ds} ({action})",
        f"{spec.name} on {ds}: {'; '.join(what)}.\n{action}.\nReport: {check.get('report_html')}",
        details={k: decision.get(k) for k in ("ds", "retrain", "reason", "drift_share", "drifted_columns",
                                              "prediction_drift", "concept", "report_html", "champion_version")},
        ident=f"ds={ds}",
    )
    return decision
