"""Drift: an Evidently ``DataDriftPreset`` report of a day against a reference sample.

Evidently decides everything here; this module only configures it from the spec and
reads its verdicts back:

- per column, Evidently's own drift test (``include_tests=True``) says whether the
  column drifted, with the method and threshold it chose (K-S / chi-square p-values
  on small samples, Wasserstein / Jensen-Shannon distances on large ones, or the
  spec's ``drift.method`` and ``drift.threshold``);
- the dataset drifts when the share of drifted feature columns reaches the spec's
  ``drift.drift_share`` (the preset's ``DriftedColumnsCount`` test);
- prediction drift is a separate ``ValueDrift`` on the model's output column, so it
  is reported on its own and does not change the feature share.

The HTML report is Evidently's, saved atomically beside a JSON summary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlops_lifecycle import lake
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)

PREDICTION = "prediction"


def _definition(spec: ModelSpec, columns: list[str]):
    from evidently import DataDefinition

    numeric = [c for c in columns if c == PREDICTION or spec.feature(c).type in {"float", "int"}]
    categorical = [c for c in columns if c not in numeric]
    return DataDefinition(numerical_columns=numeric, categorical_columns=categorical)


def build_report(spec: ModelSpec, columns: list[str], *, with_prediction: bool):
    """The Evidently report the spec asks for (features, plus the prediction column)."""
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    cfg = spec.drift
    metrics: list[Any] = [
        DataDriftPreset(columns=columns, drift_share=cfg.drift_share, method=cfg.method, threshold=cfg.threshold)
    ]
    if with_prediction:
        metrics.append(ValueDrift(column=PREDICTION, method=cfg.method, threshold=cfg.threshold))
    return Report(metrics, include_tests=True)


def compute_drift(spec: ModelSpec, current: Any, reference: Any, *, out_dir: Path | None = None) -> dict[str, Any]:
    """Run the drift report of ``current`` against ``reference``.

    Both frames hold the spec's drift columns and, when ``drift.include_prediction``,
    a ``prediction`` column. With ``out_dir`` the HTML report and nothing else is
    written there (the caller writes the summary it returns).

    Returns a summary: ``drift_share`` and its threshold, ``dataset_drift``,
    ``drifted_columns``, per-column ``columns`` (score, method, threshold, drifted),
    ``prediction_drift`` and ``report_html``.
    """
    from evidently import Dataset

    columns = [c for c in spec.drift_columns]
    missing = [c for c in columns if c not in current.columns or c not in reference.columns]
    if missing:
        raise ValueError(f"{spec.name}: drift columns {missing} are missing from the current or reference data")
    with_prediction = spec.drift.include_prediction and PREDICTION in current.columns and PREDICTION in reference.columns
    used = [*columns, PREDICTION] if with_prediction else columns
    definition = _definition(spec, used)
    snapshot = build_report(spec, columns, with_prediction=with_prediction).run(
        current_data=Dataset.from_pandas(current[used], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[used], data_definition=definition),
    )
    summary = summarize(spec, snapshot.dict(), columns)
    summary["rows"] = {"current": int(len(current)), "reference": int(len(reference))}
    if out_dir is not None:
        html = Path(out_dir) / "report.html"
        with lake.atomic_path(html) as tmp:
            snapshot.save_html(str(tmp))
        summary["report_html"] = str(html)
    return summary


def summarize(spec: ModelSpec, snapshot: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """Read Evidently's metrics and test verdicts into a flat, JSON-ready summary."""
    failed = {t["metric_config"]["metric_id"] for t in snapshot.get("tests", []) if str(t["status"]).endswith("FAIL")}
    per_column: dict[str, dict[str, Any]] = {}
    share = None
    for metric in snapshot["metrics"]:
        cfg = metric["config"]
        kind = cfg.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith("ValueDrift"):
            per_column[cfg["column"]] = {
                "score": float(metric["value"]),
                "method": cfg.get("method"),
                "threshold": cfg.get("threshold"),
                "drifted": metric["id"] in failed,
            }
    if share is None:  # pragma: no cover - the preset always emits the count
        raise RuntimeError("Evidently report has no DriftedColumnsCount metric")
    drifted = [c for c in columns if per_column.get(c, {}).get("drifted")]
    threshold = spec.drift.drift_share
    return {
        "drift_share": share,
        "drift_share_threshold": threshold,
        "dataset_drift": share >= threshold,
        "drifted_columns": drifted,
        "columns": {c: per_column[c] for c in columns if c in per_column},
        "prediction_drift": per_column.get(PREDICTION),
        "report_html": None,
    }
