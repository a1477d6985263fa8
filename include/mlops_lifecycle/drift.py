"""Drift: an Evidently ``DataDriftPreset`` report of a day against a reference sample.

Evidently decides everything here; this module only configures it from the spec and
reads its verdicts back:

- per column, Evidently's own drift test (``include_tests=True``) says whether the
  column drifted, with the method and threshold it chose (K-S / chi-square p-values
  on small samples, Wasserstein / Jensen-Shannon distances on large ones, or the
  spec's ``drift.method`` and ``drift.threshold``);
- the dataset drifts when the share of drifted feature columns reaches the spec's
  ``drift.drift_share``; each column weighs its share of the model's importance
  (XGBoost total gain, recorded at training) when ``drift.weight_by_importance`` and the
  version recorded it, else the same (then the share is the preset's own
  ``DriftedColumnsCount``, kept as ``evidently_drift_share``). Columns listed in
  ``drift.watch_only`` are tested and reported (``watched_drifted``) but weigh nothing;
- prediction drift is a separate ``ValueDrift`` on the model's output column, so it
  is reported on its own and does not change the feature share.

The HTML report is Evidently's, swapped in together with its JSON summary as one folder.

Large days are sampled, not cut short. A full Evidently run costs about 100 s and
1.6 GB for 1 M x 1 M rows x 20 columns, almost all of it spent on work whose result
does not depend on the row count (plots, correlations, three passes per column). When
a side has more than ``max_rows`` rows (``MAX_ROWS`` = 50 000 by default, or
``MLOPS_DRIFT_MAX_ROWS``), Evidently runs on a deterministic, seeded sample of that
many rows, stratified by position (one row drawn from each of ``max_rows`` equal
slices, so the whole day is covered and its order kept), and:

- each column keeps the test a full run would pick: the automatic choice depends on
  the row count (K-S / chi-square at <= 1000 reference rows, Wasserstein /
  Jensen-Shannon above) and on the number of distinct values, so it is resolved on
  all rows and pinned with ``per_column_method``;
- sampling is used only when every column's test is a *distance* (Wasserstein,
  Jensen-Shannon, PSI, K-L, Hellinger, energy): a distance estimates a property of
  the two distributions, which a sample of 50 000 rows pins down to about +-0.005
  (measured by ``bench/run.py``, against thresholds of 0.1), so the verdicts match a
  full run. A p-value test (K-S, chi-square, ...) grows more sensitive with every row,
  so its verdict on a sample would not be the full run's: those runs use all rows.

The summary says what was sampled (``sampled``) and keeps the full row counts.

One of Evidently's choices is replaced. For categorical columns at <= 1000 reference
rows Evidently picks ``chisquare``, a goodness-of-fit test that takes the reference
proportions as exact: with a few hundred reference rows their own sampling noise is
read as drift, and unshifted days fail it (seen here: 3 of 5 categorical columns of an
unshifted day "drifted" at p < 0.01 against a 400-row reference). This module
registers ``chisquare_2sample`` with Evidently, the chi-square test of homogeneity
(``scipy.stats.chi2_contingency`` on the two samples' counts), which accounts for the
noise of both samples, and uses it for categorical columns unless the spec names a
``drift.method``. The report and its verdicts are still Evidently's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mlops_lifecycle import lake
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)

PREDICTION = "prediction"
# Rows per side above which the report runs on a sample; see the module docstring.
MAX_ROWS = 50_000
# Evidently's tests whose score is a distance between the distributions (drift when the
# score >= threshold): a sample estimates it without bias in the decision.
DISTANCE_METHODS = frozenset({"wasserstein", "jensenshannon", "psi", "kl_div", "hellinger", "ed"})


def default_max_rows() -> int:
    """Rows per side above which drift runs on a sample (``MLOPS_DRIFT_MAX_ROWS``, default 50 000)."""
    raw = os.environ.get("MLOPS_DRIFT_MAX_ROWS", "").strip()
    if not raw:
        return MAX_ROWS
    if not raw.isdigit() or int(raw) < 1001:
        # At <= 1000 reference rows Evidently would switch to p-value tests.
        raise ValueError(f"MLOPS_DRIFT_MAX_ROWS={raw!r} must be a whole number above 1000")
    return int(raw)


CHI2_TWO_SAMPLE = "chisquare_2sample"


def _chi2_two_sample(reference_data: Any, current_data: Any, feature_type: Any, threshold: float) -> tuple[float, bool]:
    """Chi-square test of homogeneity of a categorical column's two samples."""
    import pandas as pd
    from scipy.stats import chi2_contingency

    counts = pd.concat(
        [reference_data.value_counts(dropna=True).rename("ref"), current_data.value_counts(dropna=True).rename("cur")],
        axis=1,
    ).fillna(0)
    counts = counts[(counts["ref"] + counts["cur"]) > 0]
    if len(counts) < 2 or counts["ref"].sum() == 0 or counts["cur"].sum() == 0:
        return 1.0, False  # one category on both sides (or an empty side): nothing to compare
    p_value = float(chi2_contingency(counts.to_numpy().T, correction=False)[1])
    return p_value, p_value < threshold


def register_tests() -> None:
    """Register :data:`CHI2_TWO_SAMPLE` with Evidently (idempotent; called before a report)."""
    from evidently.legacy.calculations.stattests.registry import (
        StatTest,
        _registered_stat_tests,
        register_stattest,
    )
    from evidently.legacy.core import ColumnType

    if CHI2_TWO_SAMPLE in _registered_stat_tests:
        return
    register_stattest(
        StatTest(
            name=CHI2_TWO_SAMPLE,
            display_name="chi-square two-sample p_value",
            allowed_feature_types=[ColumnType.Categorical],
            default_threshold=0.05,
        ),
        default_impl=_chi2_two_sample,
    )


def _numeric(spec: ModelSpec, column: str) -> bool:
    return column == PREDICTION or spec.feature(column).type in {"float", "int"}


def _definition(spec: ModelSpec, columns: list[str]):
    from evidently import DataDefinition

    numeric = [c for c in columns if _numeric(spec, c)]
    categorical = [c for c in columns if c not in numeric]
    return DataDefinition(numerical_columns=numeric, categorical_columns=categorical)


def _categorical_method(spec: ModelSpec, reference_rows: int | None) -> str | None:
    """:data:`CHI2_TWO_SAMPLE` where Evidently would pick its one-sample chi-square
    (no ``drift.method`` and at most 1000 reference rows), else None (Evidently decides)."""
    if spec.drift.method or reference_rows is None or reference_rows > 1000:
        return None
    return CHI2_TWO_SAMPLE


def build_report(spec: ModelSpec, columns: list[str], *, with_prediction: bool, methods: dict[str, str] | None = None,
                 reference_rows: int | None = None):
    """The Evidently report the spec asks for (features, plus the prediction column).

    ``methods`` pins the test of some columns (what a full run would pick, see
    :func:`full_run_methods`); other columns follow the spec's ``drift.method``.
    ``reference_rows`` (the reference side's length) picks the categorical test, see
    the module docstring.
    """
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    register_tests()
    cfg = spec.drift
    methods = methods or {}
    per_column = {c: m for c, m in methods.items() if c in columns} or None
    metrics: list[Any] = [
        DataDriftPreset(columns=columns, drift_share=cfg.drift_share, method=cfg.method, per_column_method=per_column,
                        threshold=cfg.threshold, cat_method=_categorical_method(spec, reference_rows))
    ]
    if with_prediction:
        metrics.append(ValueDrift(column=PREDICTION, method=methods.get(PREDICTION, cfg.method), threshold=cfg.threshold))
    return Report(metrics, include_tests=True)


def _finite(values: Any) -> Any:
    """A column's values as Evidently tests them: infinities and nulls dropped."""
    import numpy as np

    return values.replace([-np.inf, np.inf], np.nan).dropna()


def full_run_methods(spec: ModelSpec, current: Any, reference: Any, columns: list[str], *,
                     hint: Any = None) -> dict[str, str]:
    """The test Evidently picks for each column when it sees all rows.

    With ``drift.method`` set, that method. Otherwise Evidently's automatic choice
    (``evidently.legacy.calculations.stattests.registry._get_default_stattest`` in
    0.7.23): with at most 1000 reference values, K-S for numeric columns of more than 5
    distinct values, else chi-square (more than 2 values) or a Z-test, both replaced by
    :data:`CHI2_TWO_SAMPLE` here; above 1000,
    Wasserstein for numeric columns of more than 5 distinct values, else
    Jensen-Shannon. ``hint`` (a sample of ``current``) answers "more than 5 distinct
    values?" cheaply when the sample already has more.
    """
    import pandas as pd

    if spec.drift.method:
        return {c: spec.drift.method for c in columns}

    def distinct(column: str, ref: Any) -> int:
        """Distinct values of both sides together, capped at 6 when the hint shows more."""
        if hint is not None and _finite(hint[column]).nunique() > 5:
            return 6
        return int(pd.concat([ref, _finite(current[column])]).nunique())

    out: dict[str, str] = {}
    for c in columns:
        ref = _finite(reference[c])
        numeric = _numeric(spec, c)
        if len(ref) <= 1000:
            if numeric and distinct(c, ref) > 5:
                out[c] = "ks"
            else:
                out[c] = CHI2_TWO_SAMPLE  # in place of Evidently's chisquare / z, see the module docstring
        else:
            out[c] = "wasserstein" if numeric and distinct(c, ref) > 5 else "jensenshannon"
    return out


def sample_positions(rows: int, size: int, seed: int) -> Any:
    """``size`` row positions out of ``rows``, one drawn at random from each of ``size``
    equal consecutive slices: deterministic for a seed, spread over the whole frame, in order."""
    import numpy as np

    edges = (np.arange(size + 1, dtype=np.int64) * rows) // size
    widths = edges[1:] - edges[:-1]
    offsets = (np.random.default_rng(seed).random(size) * widths).astype(np.int64)
    return edges[:-1] + np.minimum(offsets, widths - 1)


def compute_drift(spec: ModelSpec, current: Any, reference: Any, *, out_dir: Path | None = None,
                  max_rows: int | None = None, extra: dict[str, Any] | None = None,
                  importance: dict[str, float] | None = None) -> dict[str, Any]:
    """Run the drift report of ``current`` against ``reference``.

    Both frames hold the spec's drift columns and, when ``drift.include_prediction``,
    a ``prediction`` column. ``extra`` is merged into the summary. With ``out_dir``
    that folder is replaced, in one swap, by one holding the HTML report
    (``report.html``) and the summary (``summary.json``). A side longer than
    ``max_rows`` (default :func:`default_max_rows`) is sampled when that keeps a full run's
    verdicts (see the module docstring). ``importance`` (feature -> share of the model's
    gain) weighs the drift share, see :func:`weighted_share`.

    Returns a summary: ``drift_share`` and its threshold, ``dataset_drift``,
    ``drifted_columns``, per-column ``columns`` (score, method, threshold, drifted),
    ``prediction_drift``, ``report_html``, the full ``rows`` of each side and
    ``sampled`` (None, or the rows used per side and the pinned methods).
    """
    from evidently import Dataset

    columns = [c for c in spec.drift_columns]
    missing = [c for c in columns if c not in current.columns or c not in reference.columns]
    if missing:
        raise ValueError(f"{spec.name}: drift columns {missing} are missing from the current or reference data")
    with_prediction = spec.drift.include_prediction and PREDICTION in current.columns and PREDICTION in reference.columns
    used = [*columns, PREDICTION] if with_prediction else columns
    limit = max_rows or default_max_rows()
    methods: dict[str, str] | None = None
    sampled: dict[str, Any] | None = None
    cur = ref = None
    if len(current) > limit or len(reference) > limit:
        # Rows are picked before columns: selecting columns first would copy both whole
        # frames (about 300 MB at 1 M rows x 20 columns) only to keep 5 % of them.
        seed = spec.training.seed
        cur_s = current.take(sample_positions(len(current), limit, seed))[used] if len(current) > limit else None
        ref_s = reference.take(sample_positions(len(reference), limit, seed + 1))[used] if len(reference) > limit else None
        methods = full_run_methods(spec, current, reference, used, hint=cur_s)
        exact = sorted(c for c, m in methods.items() if m not in DISTANCE_METHODS)
        if exact:
            log.info("%s: drift on all %d x %d rows: %s use p-value tests, whose verdict a sample would change",
                     spec.name, len(current), len(reference), exact)
            methods = None
        else:
            cur = cur_s if cur_s is not None else current[used]
            ref = ref_s if ref_s is not None else reference[used]
            sampled = {"max_rows": limit, "current": int(len(cur)), "reference": int(len(ref)), "methods": methods}
    if cur is None or ref is None:
        cur, ref = current[used], reference[used]
    definition = _definition(spec, used)
    snapshot = build_report(spec, columns, with_prediction=with_prediction, methods=methods,
                            reference_rows=len(ref)).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    summary = summarize(spec, snapshot.dict(), columns, importance=importance)
    if methods:
        _name_pinned_methods(spec, summary, methods)
    summary["rows"] = {"current": int(len(current)), "reference": int(len(reference))}
    summary["sampled"] = sampled
    summary.update(extra or {})
    if out_dir is not None:
        out_dir = Path(out_dir)
        summary["report_html"] = str(out_dir / "report.html")

        def build(tmp: Path) -> None:
            snapshot.save_html(str(tmp / "report.html"))
            lake.write_json(tmp / "summary.json", summary)

        # One folder swap: a crash or a rerun never pairs a report with another run's summary.
        lake.replace_dir(out_dir, build)
    return summary


def _name_pinned_methods(spec: ModelSpec, summary: dict[str, Any], methods: dict[str, str]) -> None:
    """Report a pinned test by the name Evidently gives it when it picks it itself
    ("Wasserstein distance (normed)", not "wasserstein"), so summaries read the same
    whether or not the day was sampled."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    entries = {**summary["columns"], PREDICTION: summary.get("prediction_drift")}
    for column, entry in entries.items():
        if entry and column in methods and not spec.drift.method:
            kind = ColumnType.Numerical if _numeric(spec, column) else ColumnType.Categorical
            entry["method"] = get_registered_stattest(methods[column], kind).display_name


def weighted_share(spec: ModelSpec, drifted: list[str], columns: list[str],
                   importance: dict[str, float] | None = None) -> tuple[float, dict[str, float], str]:
    """The drift share that counts, each counted column's weight, and what weighed them
    (``importance`` or ``columns``).

    ``drift.watch_only`` columns weigh nothing. With ``drift.weight_by_importance`` and an
    ``importance`` that gives the counted columns some weight, each weighs its share of the
    model's importance (a drifted column the model hardly uses hardly matters); otherwise
    each counted column weighs the same."""
    counted = [c for c in columns if c not in set(spec.drift.watch_only)]
    if not counted:
        return 0.0, {}, "columns"
    weights = {c: float((importance or {}).get(c, 0.0)) for c in counted}
    by = "importance"
    if not (spec.drift.weight_by_importance and importance and sum(weights.values()) > 0):
        weights, by = dict.fromkeys(counted, 1.0), "columns"
    total = sum(weights.values())
    weights = {c: w / total for c, w in weights.items()}
    # Rounded: equal weights must add up to the preset's own share (3 x 1/6 is 0.5, not 0.4999...).
    return round(float(sum(w for c, w in weights.items() if c in set(drifted))), 9), weights, by


def summarize(spec: ModelSpec, snapshot: dict[str, Any], columns: list[str],
              importance: dict[str, float] | None = None) -> dict[str, Any]:
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
    tested = [c for c in columns if per_column.get(c, {}).get("drifted")]
    watched = [c for c in tested if c in set(spec.drift.watch_only)]
    drifted = [c for c in tested if c not in set(watched)]
    weighted, weights, by = weighted_share(spec, drifted, columns, importance)
    threshold = spec.drift.drift_share
    return {
        "drift_share": weighted,
        "drift_share_threshold": threshold,
        "dataset_drift": weighted >= threshold,
        "drifted_columns": drifted,
        "watched_drifted": watched,
        "weights": weights,
        "weighted_by": by,
        "evidently_drift_share": share,
        "columns": {c: per_column[c] for c in columns if c in per_column},
        "prediction_drift": per_column.get(PREDICTION),
        "report_html": None,
    }
