"""Monitoring: the daily drift check and the retraining decision.

:func:`check_drift` compares the day's validated inputs and the champion's
predictions with the champion's reference sample (rows of the last weeks of its
training window, logged with the version; by default only those of the day's weekday)
through Evidently, weighs the drifted columns by the champion's feature importance, and,
when the day's labels are in, measures the champion's realised metric against its
expected metric with its uncertainty, and the label rate against the training window's
(see :func:`concept_metrics`).

:func:`collect_labels` does the same for labels that arrive apart from the features
(the spec's ``labels`` section): the run of day D + ``delay_days`` reads the labels of
day D and keeps them in the lake's ``labels`` zone (training reads them there); when
day D was scored it joins them with its predictions and measures concept drift.

:func:`decide_retraining` applies the spec's explicit conditions: drift that has
lasted ``drift_days_required`` days, or labelled days that hurt the model (a significant
metric drop, a label-rate shift) for ``label_days_required`` days in a row; no
retraining inside the cooldown after an earlier request. A decision to retrain is
recorded in the lake before the trigger runs, keyed by day, so reruns and repeated
triggers for the same day make one request, not two. Drift alerts are raised once per
episode (see :func:`_alert_drift`).
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
    expectation = expectation_of(spec, version)
    reference = reference_for_day(spec, reference_sample(spec, version), day)
    out_dir = lake.report_dir(spec.name, "drift", day)
    concept = concept_metrics(spec, current, version, day=day)
    # The report and summary.json are written as one folder swap.
    summary = drift.compute_drift(spec, current[[*spec.drift_columns, "prediction"]], reference, out_dir=out_dir,
                                  extra={"model": spec.name, "ds": day.isoformat(), "model_version": str(version),
                                         "concept": concept, "reference_rows_used": len(reference)},
                                  importance=expectation.get("importance"))
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


# A weekday's reference rows are used alone when there are at least this many; the
# prediction column needs as many out-of-sample scores (else those of every weekday).
MIN_WEEKDAY_REFERENCE = 100


def expectation_of(spec: ModelSpec, version: str | int) -> dict[str, Any]:
    """What a version's training recorded for monitoring (``reference/expectation.json``:
    expected metric and its standard error, label-rate baseline, feature importance),
    cached in the lake; empty for a version trained before it was recorded."""
    cached = lake.reference_file(spec.name, version).with_name("expectation.json")
    if cached.exists():
        return lake.read_json(cached)
    import mlflow.artifacts

    try:
        mv = registry.get_version(spec, version)
        found = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/reference/expectation.json")
    except Exception:  # noqa: BLE001 - an older version has none: monitoring falls back to its tags
        return {}
    lake.write_json(cached, found)
    return found


def reference_for_day(spec: ModelSpec, reference, day: dt.date):
    """The reference rows a day is compared with: with ``drift.reference: same_weekday``
    the rows of the same weekday (a Saturday against Saturdays: the weekly pattern is not
    drift), else the whole reference, which covers whole weeks. A reference without days
    (an older version's) is used whole. When the weekday's rows hold too few out-of-sample
    predictions, those of the other weekdays are added for the prediction column only (their
    feature values left empty, which Evidently's per-column tests skip)."""
    import numpy as np
    import pandas as pd

    if spec.drift.reference != "same_weekday" or "reference_ds" not in reference.columns:
        return reference
    weekday = pd.to_datetime(reference["reference_ds"]).dt.weekday
    same = reference[weekday == day.weekday()]
    if len(same) < MIN_WEEKDAY_REFERENCE:
        return reference
    if "prediction" in same.columns and same["prediction"].notna().sum() < MIN_WEEKDAY_REFERENCE:
        scores = reference[(weekday != day.weekday()) & reference["prediction"].notna()].copy()
        scores[spec.feature_names] = np.nan
        same = pd.concat([same, scores], ignore_index=True)
    return same


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    from statistics import NormalDist

    return 1.0 - NormalDist().cdf(z)


def concept_metrics(spec: ModelSpec, frame, version: str | int, day: dt.date | None = None) -> dict[str, Any]:
    """What the day's labels say of a model version (labelled rows: target and
    ``prediction`` columns), when there are at least ``drift.min_labelled_rows`` of them.

    - The realised metric against the version's expected (holdout) value:
      ``{"metric", "value", "baseline", "drop"}``, with ``std_error`` (the holdout's
      bootstrap error scaled to the day's rows, widened by the day-to-day spread of the
      metric over the training window), ``p_value`` (one-sided, of a drop this
      large by chance) and ``degraded``: the drop is significant at
      ``retraining.metric_significance`` (and, when set, larger than
      ``drift.max_metric_drop``). A version without a recorded error is degraded only by
      ``drift.max_metric_drop``, as before.
    - The label rate (positive rate, or mean target) against the training window's for the
      day's weekday: ``label_rate`` ``{"observed", "expected", "std_error", "z", "p_value"}``
      and ``label_shift`` (two-sided p-value under ``retraining.label_shift_significance``).
      The error allows for the day's count and for the spread of daily rates the training
      window showed, so ordinary days do not count as shifted.

    Only ``labelled_rows`` below ``drift.min_labelled_rows``.
    """
    import math

    labelled = frame[frame[spec.target.column].notna()]
    n = len(labelled)
    concept: dict[str, Any] = {"labelled_rows": n}
    if n < spec.drift.min_labelled_rows:
        return concept
    metric = spec.promotion.metric
    policy = spec.retraining
    mv = registry.get_version(spec, version)
    baseline = mv.tags.get("expected.value") or mv.tags.get(f"holdout_{metric}")
    y = labelled[spec.target.column].to_numpy(dtype=float)
    value = evaluation.metrics(spec, y, labelled["prediction"].to_numpy())[metric]
    expectation = expectation_of(spec, version)
    # The holdout's level times the day's weekday factor (training.metric_by_weekday): a
    # weekly shape of the error is expected, not a sign that the model got worse.
    factor = (expectation.get("by_weekday") or {}).get(str(day.weekday()), 1.0) if day is not None else 1.0
    baseline = float(baseline) * factor if baseline else None
    concept.update(metric=metric, value=value, baseline=baseline, weekday_factor=factor)
    if baseline is not None:
        drop = (float(baseline) - value) if spec.higher_is_better(metric) else (value - float(baseline))
        concept["drop"] = drop
        limit = spec.drift.max_metric_drop
        se_unit, rows = mv.tags.get("expected.std_error"), mv.tags.get("expected.rows")
        spread = float(mv.tags.get("expected.between_day_sd") or 0.0)
        se = (math.sqrt((float(se_unit) * factor) ** 2 * int(rows) / n + spread**2)
              if se_unit and rows and float(se_unit) > 0 else None)
        if se is not None and not math.isnan(value):
            p = _normal_sf(drop / se)
            concept.update(std_error=se, p_value=p)
            if policy.on_metric_drop:
                concept["degraded"] = bool(p < policy.metric_significance and (limit is None or drop > limit))
            else:
                concept["degraded"] = bool(limit is not None and drop > limit)
        else:
            concept["degraded"] = bool(limit is not None and drop > limit)
    rate = expectation.get("label_rate")
    if rate:
        expected = rate["by_weekday"].get(str(day.weekday())) if day is not None else None
        expected = rate["overall"] if expected is None else expected
        unit_var = expected * (1 - expected) if spec.is_classifier else rate["unit_variance"]
        se = math.sqrt(unit_var / n + rate["between_day_sd"] ** 2)
        observed = float(y.mean())
        z = (observed - expected) / se if se > 0 else 0.0
        p = 2 * _normal_sf(abs(z))
        concept["label_rate"] = {"observed": observed, "expected": expected, "std_error": se, "z": z, "p_value": p}
        concept["label_shift"] = bool(policy.on_label_shift and p < policy.label_shift_significance)
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
    concept = concept_metrics(spec, joined, version, day=event_day)
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


def _hurt_kind(concept: dict[str, Any] | None) -> str | None:
    """What a day's labels say hurt the model: ``concept_drift`` (its metric fell
    significantly below what was expected), ``label_shift`` (the label rate moved), or None."""
    concept = concept or {}
    if concept.get("degraded"):
        return "concept_drift"
    if concept.get("label_shift"):
        return "label_shift"
    return None


def _hurt_of(spec: ModelSpec, event_day: dt.date) -> str | None:
    """:func:`_hurt_kind` of the labels of ``event_day``: those that arrived late
    (``reports/concept``) or with the batch (the drift summary's concept section)."""
    for kind in ("concept", "drift"):
        path = lake.report_dir(spec.name, kind, event_day) / "summary.json"
        if path.exists():
            found = _hurt_kind(lake.read_json(path).get("concept"))
            if found:
                return found
    return None


def decide_retraining(spec: ModelSpec, ds: str | dt.date, check: dict[str, Any], *, run_id: str,
                      labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decide whether today's evidence starts a retraining run.

    Two kinds of evidence, each needing several days in a row:

    - drift: ``retraining.drift_days_required`` consecutive drifted days (the
      importance-weighted share of non-watch-only feature columns, or the predictions when
      ``on_prediction_drift``) that hold ``retraining.min_rows`` validated rows;
    - what hurts the model, once labels arrive (with the batch or late):
      ``retraining.label_days_required`` consecutive labelled days whose metric fell
      significantly below the champion's expected metric (``concept_drift``) or whose label
      rate moved away from the training window's (``label_shift``), see :func:`concept_metrics`.

    No request inside the cooldown after an earlier one.

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
    concept = check.get("concept") or {}
    # The labels' streak runs over the days the labels are for (late labels: ds - delay).
    event_day = lake.as_date(concept["event_ds"]) if concept.get("event_ds") else day
    today_hurt = _hurt_kind(concept)
    hurt_days = [event_day - dt.timedelta(days=i) for i in range(policy.label_days_required)]
    hurt_kinds = [today_hurt, *(_hurt_of(spec, d) for d in hurt_days[1:])]
    hurt = all(hurt_kinds)
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
    troubled = [k for k in (kinds[0], today_hurt) if k]
    if not (streak or hurt):
        if today_hurt:
            why = f"{today_hurt.replace('_', ' ')} on fewer than {policy.label_days_required} consecutive labelled day(s)"
        else:
            why = "no drift" if not kinds[0] else f"drift on fewer than {need} consecutive day(s)"
        return _alert_drift(spec, {"retrain": False, "reason": why, **evidence}, check, troubled)
    earlier = [e for e in lake.events(spec.name, "retrain_requests") if e["ds"] != day.isoformat()]
    recent = [e for e in earlier if 0 <= (day - lake.as_date(e["ds"])).days < policy.cooldown_days]
    if recent:
        last = max(e["ds"] for e in recent)
        decision = {"retrain": False, "reason": f"cooldown: retraining was requested on {last} (cooldown {policy.cooldown_days} days)", **evidence}
        return _alert_drift(spec, decision, check, troubled)
    if streak:
        # The challenger learns the new regime from the drifted days: wait until they hold enough rows.
        rows = sum(lake.parquet_rows(path) for d in streak_days
                   if (path := lake.data_file(spec.name, "validated", d)).exists())
        streak = rows >= policy.min_rows
        if not (streak or hurt):
            decision = {"retrain": False, "reason": f"drift on {need} day(s) holds {rows} validated rows; "
                        f"retraining.min_rows is {policy.min_rows}", **evidence}
            return _alert_drift(spec, decision, check, troubled)
    if streak:  # drift first, as before labels counted; the labels' verdict is added to the detail
        reason = "data_drift" if "data_drift" in kinds else "prediction_drift"
        detail = (
            f"{reason.replace('_', ' ')} on {need} consecutive day(s) "
            f"({', '.join(d.isoformat() for d in reversed(streak_days))}); "
            f"share {check.get('drift_share'):.2f} in {check.get('drifted_columns')}"
            + ("; the predictions drifted too" if check.get("prediction_drift") else "")
            + (f"; the labels agree: {_hurt_detail(concept, today_hurt, hurt_days)}" if hurt else "")
        )
    else:
        reason = today_hurt
        detail = _hurt_detail(concept, reason, hurt_days)
    request = {"retrain": True, "reason": reason, "detail": detail, **evidence}
    # Keyed by day: a rerun, or a second trigger for the same day, rewrites this one request
    # (and the trigger's run id drift__<ds> starts at most one retraining run).
    path = lake.event_file(spec.name, "retrain_requests", day.isoformat())
    request["already_requested"] = path.exists()
    lake.write_json(path, request)
    return _alert_drift(spec, request, check, troubled)


def _hurt_detail(concept: dict[str, Any], reason: str, days: list[dt.date]) -> str:
    """One line on what the labels showed, for the request and the new version's tags."""
    span = f"on {len(days)} consecutive labelled day(s) ({', '.join(d.isoformat() for d in reversed(days))})"
    where = f" on the labels of {concept['event_ds']}" if concept.get("event_ds") else ""
    if reason == "concept_drift":
        error = f" (expected within {concept['std_error']:.3f}, p={concept['p_value']:.4f})" if "std_error" in concept else ""
        return f"{concept['metric']} fell {concept['drop']:.3f} below the holdout value{error}{where}; {span}"
    rate = concept["label_rate"]
    return (f"label rate {rate['observed']:.3f} against {rate['expected']:.3f} expected from the training window "
            f"(error {rate['std_error']:.3f}, p={rate['p_value']:.4f}){where}; {span}")


def _episode(spec: ModelSpec, day: dt.date) -> tuple[dt.date, int]:
    """The first day of the episode the troubled ``day`` belongs to, and how many troubled
    days it holds up to ``day``, from the recorded health of the days before it: an episode
    ends after ``drift.episode_calm_days`` calm days in a row."""
    calm = spec.drift.episode_calm_days
    start, count = day, 1
    while True:
        window = [start - dt.timedelta(days=i) for i in range(1, calm + 1)]
        troubled = [d for d in window if _health(spec, d)]
        if not troubled:
            return start, count
        count += len(troubled)
        start = min(troubled)


def _health(spec: ModelSpec, day: dt.date) -> list[str]:
    path = lake.event_file(spec.name, "health", day.isoformat())
    return lake.read_json(path).get("troubled", []) if path.exists() else []


def _alert_drift(spec: ModelSpec, decision: dict[str, Any], check: dict[str, Any],
                 troubled: list[str] | None = None) -> dict[str, Any]:
    """Record the day's health and raise a ``drift`` alert once per episode.

    A day is troubled when its (weighted) feature drift, its labels (metric drop, label
    shift) or, with ``retraining.on_prediction_drift``, its predictions count as drift;
    watch-only columns and prediction drift alone are reported in the summary, never paged.
    The first troubled day after ``drift.episode_calm_days`` calm days starts an episode;
    the episode raises its one alert on the day it holds ``drift.episode_min_days``
    troubled days or asks for a retraining, whichever comes first (an isolated odd day is
    reported, not paged). Every day's health is recorded (``events/health/<ds>.json``).
    Returns ``decision``.
    """
    from mlops_lifecycle import alerts

    ds = decision["ds"]
    day = lake.as_date(ds)
    troubled = list(troubled or [])
    lake.write_json(lake.event_file(spec.name, "health", ds), {"ds": ds, "troubled": troubled,
                                                               "retrain": decision["retrain"]})
    if not troubled:
        return decision
    start, count = _episode(spec, day)
    decision["episode_start"] = start.isoformat()
    ident = f"episode={start.isoformat()}"
    if lake.event_file(spec.name, "alerts", f"drift__{ident}").exists():
        log.info("%s %s: in the episode that started on %s, already alerted (%s)", spec.name, ds, start, troubled)
        return decision
    if count < spec.drift.episode_min_days and not decision["retrain"]:
        log.info("%s %s: %s troubled day(s) since %s (%s); an alert needs %s", spec.name, ds, count, start, troubled,
                 spec.drift.episode_min_days)
        return decision
    concept = check.get("concept") or {}
    what = []
    if check.get("dataset_drift"):
        what.append(f"data drift (share {check.get('drift_share', 0):.2f} in {check.get('drifted_columns')})")
    if check.get("prediction_drift"):
        what.append("prediction drift")
    if concept.get("degraded"):
        what.append(f"{concept.get('metric')} fell {concept.get('drop', 0):.3f} below its holdout value")
    if concept.get("label_shift"):
        rate = concept.get("label_rate") or {}
        what.append(f"label rate {rate.get('observed', 0):.3f} against {rate.get('expected', 0):.3f} expected")
    action = "retraining requested" if decision["retrain"] else f"no retraining: {decision['reason']}"
    alerts.emit(
        spec,
        "drift",
        f"{spec.name}: drift on {ds} ({action})",
        f"{spec.name} on {ds}: {'; '.join(what)}.\n{action}.\nOne alert per episode ({count} troubled day(s) since "
        f"{start}); the days that follow are in the daily reports until {spec.drift.episode_calm_days} calm days in "
        "a row end it.\n"
        f"Report: {check.get('report_html')}",
        details={k: decision.get(k) for k in ("ds", "retrain", "reason", "drift_share", "drifted_columns",
                                              "prediction_drift", "concept", "report_html", "champion_version",
                                              "episode_start")},
        ident=ident,
    )
    return decision
