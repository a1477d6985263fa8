"""Monitoring: the daily drift check and the retraining decision.

:func:`check_drift` compares the day's validated inputs and the champion's
predictions with the champion's reference sample (its holdout rows, logged with the
version) through Evidently, and, when the day's labels are in, measures the
champion's realised metric against its holdout metric (concept drift).

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
    summary = drift.compute_drift(spec, current[[*spec.drift_columns, "prediction"]], reference, out_dir=out_dir)

    labelled = current[current[spec.target.column].notna()]
    concept: dict[str, Any] = {"labelled_rows": len(labelled)}
    if len(labelled) >= 30:
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
    summary.update(model=spec.name, ds=day.isoformat(), model_version=str(version), concept=concept)
    lake.write_json(out_dir / "summary.json", summary)
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


def _drifted_on(spec: ModelSpec, day: dt.date) -> bool:
    path = lake.report_dir(spec.name, "drift", day) / "summary.json"
    return path.exists() and bool(lake.read_json(path).get("dataset_drift"))


def decide_retraining(spec: ModelSpec, ds: str | dt.date, check: dict[str, Any], *, run_id: str) -> dict[str, Any]:
    """Decide whether today's evidence starts a retraining run.

    Returns ``{"retrain": bool, "reason": str, ...evidence}``; when ``retrain`` is true
    the request is also written to ``events/retrain_requests/<ds>.json``.
    """
    day = lake.as_date(ds)
    policy = spec.retraining
    need = policy.drift_days_required
    streak_days = [day - dt.timedelta(days=i) for i in range(need)]
    streak = all(_drifted_on(spec, d) for d in streak_days)
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
        why = "no drift" if not check.get("dataset_drift") else f"drift on fewer than {need} consecutive day(s)"
        return {"retrain": False, "reason": why, **evidence}
    earlier = [e for e in lake.events(spec.name, "retrain_requests") if e["ds"] != day.isoformat()]
    recent = [e for e in earlier if 0 <= (day - lake.as_date(e["ds"])).days < policy.cooldown_days]
    if recent:
        last = max(e["ds"] for e in recent)
        return {"retrain": False, "reason": f"cooldown: retraining was requested on {last} (cooldown {policy.cooldown_days} days)", **evidence}
    reason = "concept_drift" if degraded and not streak else "data_drift"
    detail = (
        f"data drift on {need} consecutive day(s) ({', '.join(d.isoformat() for d in reversed(streak_days))}); "
        f"share {check.get('drift_share'):.2f} in {check.get('drifted_columns')}"
        if streak
        else f"{check['concept']['metric']} fell {check['concept']['drop']:.3f} below the holdout value"
    )
    request = {"retrain": True, "reason": reason, "detail": detail, **evidence}
    lake.write_json(lake.event_file(spec.name, "retrain_requests", day.isoformat()), request)
    return request
