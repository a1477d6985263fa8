"""Thresholds that depend on how many rows a day brings.

A daily batch is the unit of everything the lifecycle measures: the holdout and the
validation set are whole days, the drift streak is days, concept drift is one day's
labels. The spec's defaults (a 2-day holdout, 500 rows to retrain on) suit a model of
about a thousand rows a day; a model of 24 rows a day (one an hour) given the same
numbers never acts. :func:`volume_plan` works out numbers that fit a volume, for the
scaffolder; :func:`volume_warnings` says which numbers of a spec can never be met at
the volume the lake has seen, for ``mlops check``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_lifecycle import lake

if TYPE_CHECKING:
    from mlops_lifecycle.spec import ModelSpec

# Rows the holdout (and the validation set) should hold: a metric, a bootstrap and a slice
# on a few hundred rows say something; on 48 they are noise.
SPLIT_ROWS = 300
# The splits stay recent: at most two weeks, at least the schema's default two days.
SPLIT_DAYS = (2, 14)
# The part of the window the model learns from: at least this many rows, and at least the
# default window's 56 days (60 minus a 2-day validation and holdout), at most a year in all.
TRAIN_ROWS = 2000
TRAIN_DAYS = 56
MAX_WINDOW_DAYS = 365
# Drifted rows a retraining should have before drift may start it, and the days a streak
# may take to gather them: beyond a week (the default cooldown) the reaction comes too late.
DRIFT_ROWS = 200
DRIFT_DAYS = (2, 7)
# A holdout under this many rows is flagged by ``mlops check``.
MIN_HOLDOUT_ROWS = 100
# Days below the median still count: thresholds are set at this share of what a median day holds.
QUIET_DAY = 0.8
# Concept drift: the default 30 labelled rows a day (a metric on fewer is noise), or what a
# quiet day holds when that is less, but never below this.
MIN_LABELLED_FLOOR = 10


@dataclass(frozen=True)
class VolumePlan:
    """Spec values scaled to a model's rows per day (see :func:`volume_plan`)."""

    rows_per_day: float
    holdout_days: int
    validation_days: int
    window_days: int
    training_min_rows: int
    reference_rows: int
    drift_days_required: int
    retraining_min_rows: int
    min_labelled_rows: int

    @property
    def holdout_rows(self) -> int:
        """Rows a holdout of a median volume holds (what a slice is cut from)."""
        return int(self.holdout_days * self.rows_per_day)


def _clamp(value: float, bounds: tuple[int, int]) -> int:
    return int(min(max(value, bounds[0]), bounds[1]))


def volume_plan(rows_per_day: float) -> VolumePlan:
    """Training, drift and retraining thresholds for a model of ``rows_per_day`` rows a
    day (the median of a sample, or of the lake's validated days).

    The reasoning, threshold by threshold:

    - ``holdout_days`` and ``validation_days``: enough days for :data:`SPLIT_ROWS` rows
      each, so the champion comparison, its bootstrap, the per-slice metrics and the drift
      reference (taken from these days) are not measured on a handful of rows; at least 2
      days (the schema's default, what a high-volume model gets) and at most 14, so they
      still describe the recent regime.
    - ``window_days``: the two splits plus a training part of at least :data:`TRAIN_ROWS`
      rows and at least :data:`TRAIN_DAYS` days (the default window's), at most
      :data:`MAX_WINDOW_DAYS` in all. A high-volume model keeps the default 60.
    - ``training.min_rows``: the validation and holdout days filled at a quiet day's volume
      (:data:`QUIET_DAY` of the median), plus a holdout's worth of rows to train on:
      fewer labelled rows make a model that learnt from almost nothing. At most 5,000:
      beyond that, how much a model learns from is the window's business, not a minimum's.
    - ``drift_days_required`` and ``retraining.min_rows``: drift may start a retraining
      once the streak holds about :data:`DRIFT_ROWS` rows for the challenger to learn the
      new regime from; the streak needs as many days as that takes (2 to 7), and
      ``min_rows`` is what those days hold on quiet days (at most 500, the default), so it
      can always be met within the streak.
    - ``reference_rows``: every validation and holdout row (100 to 5,000; the schema's
      bounds, and Evidently slows down beyond), so the spec says how large the reference is.
    - ``drift.min_labelled_rows``: 30 labelled rows a day, or a quiet day's rows when that is
      less (at least :data:`MIN_LABELLED_FLOOR`): a threshold no day reaches means concept
      drift is never measured.
    """
    r = max(float(rows_per_day), 1.0)
    quiet = QUIET_DAY * r
    split = _clamp(math.ceil(SPLIT_ROWS / r), SPLIT_DAYS)
    train = max(TRAIN_DAYS, math.ceil(TRAIN_ROWS / r))
    window = min(2 * split + train, MAX_WINDOW_DAYS)
    streak = _clamp(math.ceil(DRIFT_ROWS / r), DRIFT_DAYS)
    return VolumePlan(
        rows_per_day=r,
        holdout_days=split,
        validation_days=split,
        window_days=window,
        training_min_rows=_clamp(math.floor(quiet * 3 * split), (10, 5000)),
        reference_rows=_clamp(round(r * 2 * split), (100, 5000)),
        drift_days_required=streak,
        retraining_min_rows=max(1, min(500, math.floor(quiet * streak))),
        min_labelled_rows=_clamp(math.floor(quiet), (MIN_LABELLED_FLOOR, 30)),
    )


def volume_warnings(spec: ModelSpec, rows_per_day: float) -> list[tuple[str, str]]:
    """``(field, message)`` for each threshold of ``spec`` that a model of ``rows_per_day``
    rows a day (the median) cannot meet; each message says what :func:`volume_plan` would
    set instead. Empty when every threshold can be met."""
    r = float(rows_per_day)
    plan = volume_plan(r)
    t, policy = spec.training, spec.retraining
    out: list[tuple[str, str]] = []
    streak_rows = policy.drift_days_required * r
    if policy.min_rows > streak_rows:
        out.append(("retraining.min_rows", (
            f"{policy.min_rows} can never be met: {policy.drift_days_required} drifted day(s) hold about "
            f"{streak_rows:g} validated rows at the lake's median of {r:g} rows a day, so drift can never start a "
            f"retraining; set min_rows: {plan.retraining_min_rows} with drift_days_required: "
            f"{plan.drift_days_required}")))
    if (spec.labels is not None or spec.drift.max_metric_drop is not None) and spec.drift.min_labelled_rows > r:
        out.append(("drift.min_labelled_rows", (
            f"{spec.drift.min_labelled_rows} is more than a day holds (median {r:g} rows), so concept drift is "
            f"never measured; set it to {plan.min_labelled_rows}")))
    if t.holdout_days * r < MIN_HOLDOUT_ROWS:
        out.append(("training.holdout_days", (
            f"a holdout of {t.holdout_days} day(s) holds about {t.holdout_days * r:g} rows (fewer than "
            f"{MIN_HOLDOUT_ROWS}): the champion comparison, slices and drift reference are noise; set holdout_days "
            f"and validation_days to {plan.holdout_days} (window_days at least {plan.window_days})")))
    if t.min_rows > t.window_days * r:
        out.append(("training.min_rows", (
            f"{t.min_rows} can never be met: a window of {t.window_days} days holds about {t.window_days * r:g} "
            f"rows; set min_rows: {plan.training_min_rows} or widen window_days")))
    return out


def observed_rows_per_day(spec: ModelSpec) -> list[int]:
    """Rows of each validated partition of the model in the lake, oldest first, from the
    Parquet footers (no data is read). Empty when the lake holds none."""
    return [lake.parquet_rows(lake.data_file(spec.name, "validated", day))
            for day in lake.partitions(spec.name, "validated")]


# ---- the daily row-count checks, from the history of days ------------------------------------
# A day's volume is judged against the median of the days before it (validation.volume_bounds).
# The scaffolder sets the bounds from the sample's own days so that none of them would have been
# rejected, with this much room beyond the extremes it saw.
VOLUME_TOLERANCE = 0.8
DEFAULT_VOLUME_RATIOS = (0.3, 3.0)


@dataclass(frozen=True)
class RowBounds:
    """``validation.min_rows`` and the volume ratios that a history of daily row counts implies."""

    min_rows: int
    volume_min_ratio: float
    volume_max_ratio: float
    lowest_ratio: float | None  # the lowest and highest day / median-of-previous-days ratio seen
    highest_ratio: float | None
    lowest_at: int | None = None  # the position of the day with the lowest ratio in the counts


def row_bounds(counts: list[int], lookback: int = 7) -> RowBounds:
    """Row-count thresholds from daily counts (oldest first) that reject none of those days.

    - ``min_rows``: half the 10th percentile of the counts, never above the smallest day
      (a quiet day of the history is a day the feed can have);
    - ``volume_min_ratio``: the default 0.3, or :data:`VOLUME_TOLERANCE` of the lowest ratio
      of a day to the median of the ``lookback`` days before it, when that was lower;
    - ``volume_max_ratio``: the default 3.0, or the highest such ratio with as much room
      (divided by the tolerance), when that was higher.
    """
    import statistics

    if not counts:
        return RowBounds(1, *DEFAULT_VOLUME_RATIOS, None, None)
    ordered = sorted(counts)
    p10 = ordered[int(0.1 * (len(ordered) - 1))]
    min_rows = max(1, min(math.floor(p10 * 0.5), min(counts)))
    ratios = {i: counts[i] / statistics.median(counts[max(0, i - lookback):i])
              for i in range(1, len(counts)) if statistics.median(counts[max(0, i - lookback):i]) > 0}
    low, high = DEFAULT_VOLUME_RATIOS
    lowest_at = min(ratios, key=ratios.get) if ratios else None
    lowest = ratios[lowest_at] if ratios else None
    highest = max(ratios.values()) if ratios else None
    if lowest is not None and lowest * VOLUME_TOLERANCE < low:
        low = max(0.01, math.floor(lowest * VOLUME_TOLERANCE * 100) / 100)
    if highest is not None and highest / VOLUME_TOLERANCE > high:
        high = math.ceil(highest / VOLUME_TOLERANCE * 10) / 10
    return RowBounds(min_rows, low, high, lowest, highest, lowest_at)
