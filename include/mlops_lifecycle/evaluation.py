"""Model tests beyond one accuracy number: metrics, per-slice metrics, latency and size.

Pure functions on arrays and frames; the training stage logs what they return.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_lifecycle.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def metrics(spec: ModelSpec, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Every metric the spec's task type knows, for predictions ``y_pred``
    (probabilities of the positive class for classifiers)."""
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred, dtype=float)
    if spec.is_classifier:
        labels = (y_pred >= 0.5).astype(int)
        two_classes = len(np.unique(y_true)) == 2
        return {
            "roc_auc": float(skm.roc_auc_score(y_true, y_pred)) if two_classes else float("nan"),
            "log_loss": float(skm.log_loss(y_true, np.clip(y_pred, 1e-7, 1 - 1e-7), labels=[0, 1])),
            "precision": float(skm.precision_score(y_true, labels, zero_division=0)),
            "recall": float(skm.recall_score(y_true, labels, zero_division=0)),
            "f1": float(skm.f1_score(y_true, labels, zero_division=0)),
            "accuracy": float(skm.accuracy_score(y_true, labels)),
        }
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }


def slice_metrics(spec: ModelSpec, frame: pd.DataFrame, y_pred: np.ndarray, min_rows: int = 30) -> dict[str, dict]:
    """The promotion metric per value of the spec's slice column (slices under ``min_rows`` skipped)."""
    column = spec.training.slice_column
    if not column:
        return {}
    out: dict[str, dict] = {}
    target = frame[spec.target.column].to_numpy()
    for value in sorted(frame[column].dropna().unique(), key=str):
        mask = (frame[column] == value).to_numpy()
        if mask.sum() < min_rows:
            continue
        m = metrics(spec, target[mask], y_pred[mask])
        out[str(value)] = {"rows": int(mask.sum()), spec.promotion.metric: m[spec.promotion.metric]}
    return out


def predict(spec: ModelSpec, model: Any, matrix: np.ndarray) -> np.ndarray:
    """Predictions of an XGBoost sklearn-API model on a float32 matrix: the positive-class
    probability for classifiers, the value for regressors."""
    booster = model.get_booster()
    return booster.inplace_predict(matrix)


def latency_ms_per_1k(spec: ModelSpec, model: Any, matrix: np.ndarray, repeats: int = 5) -> float:
    """Best-of-``repeats`` scoring time per 1,000 rows, in milliseconds, timed on at least
    1,000 rows (a small holdout is repeated): on a few hundred rows the fixed cost of a
    call, and a busy machine's thread scheduling, would be billed as per-row latency."""
    import numpy as np

    if 0 < len(matrix) < 1000:
        matrix = np.tile(matrix, (-(-1000 // len(matrix)), 1))
    rows = max(len(matrix), 1)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict(spec, model, matrix)
        best = min(best, time.perf_counter() - start)
    return best * 1000 * 1000 / rows


def model_size_mb(model: Any) -> float:
    """Size of the serialised booster (UBJSON), in megabytes."""
    raw = model.get_booster().save_raw(raw_format="ubj")
    return len(raw) / 1e6


def plots(spec: ModelSpec, y_true: np.ndarray, y_pred: np.ndarray, out_dir: Path) -> list[Path]:
    """Holdout plots for the model's run, written as PNG files into ``out_dir``.

    Classifiers: ROC curve, precision-recall curve and a calibration (reliability)
    curve. Regressors: predicted against actual, and the residuals' histogram.
    Returns the files written (none when the holdout is empty or has one class only).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if len(y_true) == 0:
        return []
    figures: dict[str, Any] = {}
    if spec.is_classifier:
        if len(np.unique(y_true)) < 2:
            return []
        fpr, tpr, _ = skm.roc_curve(y_true, y_pred)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(fpr, tpr, label=f"AUC {skm.roc_auc_score(y_true, y_pred):.3f}")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve (holdout)")
        ax.legend(loc="lower right")
        figures["roc_curve.png"] = fig
        precision, recall, _ = skm.precision_recall_curve(y_true, y_pred)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(recall, precision, label=f"AP {skm.average_precision_score(y_true, y_pred):.3f}")
        ax.axhline(y_true.mean(), linestyle="--", color="grey", label="base rate")
        ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve (holdout)")
        ax.legend(loc="upper right")
        figures["precision_recall_curve.png"] = fig
        edges = np.linspace(0, 1, 11)
        bins = np.clip(np.digitize(y_pred, edges[1:-1]), 0, 9)
        filled = [b for b in range(10) if (bins == b).any()]
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([y_pred[bins == b].mean() for b in filled], [y_true[bins == b].mean() for b in filled], marker="o")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlabel="Mean predicted probability", ylabel="Observed rate", title="Calibration (holdout, 10 bins)")
        figures["calibration.png"] = fig
    else:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(y_true, y_pred, s=4, alpha=0.4)
        low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
        ax.plot([low, high], [low, high], linestyle="--", color="grey")
        ax.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual (holdout)")
        figures["predicted_vs_actual.png"] = fig
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.hist(y_pred - y_true, bins=40)
        ax.set(xlabel="Residual (predicted - actual)", ylabel="Rows", title="Residuals (holdout)")
        figures["residuals.png"] = fig
    written = []
    for name, fig in figures.items():
        fig.tight_layout()
        fig.savefig(out_dir / name)
        plt.close(fig)
        written.append(out_dir / name)
    return written
