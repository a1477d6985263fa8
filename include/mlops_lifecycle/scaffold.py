"""Scaffolding a new model from a sample of its data (``mlops new-model``).

:func:`new_model` reads a CSV or Parquet sample and infers everything a spec needs that
the data can tell: each column's type (float, int, category, bool), its range (widened,
see :data:`HEADROOM`), its categories and how often it is null; the entity id (a column
that is unique and never null); the event time (the one date/time column); the task
(binary classification when the target holds two values, else regression); row
counts per day for the volume checks; a slice column. It asks for nothing it can
infer, and stops with one message listing every column it cannot turn into a feature.

It writes, atomically and only when everything else worked:

- ``<specs>/<name>.yaml``: the spec, commented field by field with what was observed,
  for the engineer to review; it loads with :func:`mlops_lifecycle.spec.load_spec`;
- ``<specs>/<name>.suite.json``: the Great Expectations suite the spec implies
  (:func:`mlops_lifecycle.validation.build_suite`), for review; ``mlops check`` says
  when it no longer matches the spec and ``mlops check --write-suites`` renews it.

:func:`split_by_day` turns one history file into the daily files a spec's source
template expects, and :func:`ingest_history` loads past days through the daily DAG's
ingest and validation stages so the first training has a window (``mlops split-by-day``,
``mlops ingest-history``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_lifecycle import config, lake
from mlops_lifecycle.promotion import MIN_SLICE_ROWS
from mlops_lifecycle.spec import IDENTIFIER, ModelSpec, SpecError, load_spec, spec_paths
from mlops_lifecycle.volume import RowBounds, VolumePlan, row_bounds, volume_plan, volume_warnings

if TYPE_CHECKING:
    import pandas as pd

# Observed ranges are widened by this share of their span on each side (never below 0 for
# a column that was never negative): a sample rarely holds the true extremes, and a range
# that is too tight rejects good days. The spec says so in a comment.
HEADROOM = 0.2
# A text column is free text or a key, not a category, when it is unique-ish (this share of its
# values distinct), or named like a key and holding more than MAX_CATEGORIES values. Any other
# repeating text is a category, whatever its number of levels (issue 12: a 94-level column).
UNIQUE_SHARE = 0.5
MAX_CATEGORIES = 50
# Categories: a level holding at least this share of the sample's rows gets a 0/1 column of its
# own, at most MAX_ENCODED_LEVELS of them; rarer levels and any level never seen share one
# "<name>__other" column (features.py). The spec lists at most MAX_LISTED_CATEGORIES levels.
LEVEL_MIN_SHARE = 0.002
MAX_ENCODED_LEVELS = 40
MAX_LISTED_CATEGORIES = 1000
# Share of a day's rows that may hold a level never seen: they warn and are scored as unknown;
# more is a changed feed (codes renamed, another source) and blocks. A two-month sample of a
# 94-level column met a new level on most later days, each in about 0.1 % of rows.
UNKNOWN_SHARE = 0.05
# Impossible values block, so the blocking limits are semantic (a count is never negative, a
# share stays within 0..1, a clock within 0..2359) or, for a number with no known scale, this
# many times the largest magnitude seen: beyond it is a unit or encoding error, not a season.
FAR = 10.0
# Nulls: more than the worst day of the sample (with a margin) warns; blocking waits for this
# share at least, or three times the worst day: a join that leaves a few more rows empty is a
# warning, an empty column a broken feed.
NULL_BLOCK_FLOOR = 0.25
CLOCK_HINT = re.compile(r"(time|hhmm|clock|dep|arr|sched)", re.IGNORECASE)
HOUR_HINT = re.compile(r"(^hr$|^hrs?_|_hr$|hour)", re.IGNORECASE)
WEEKDAY_HINT = re.compile(r"(weekday|week_day|day_?of_?week|^dow$|_dow$|^dow_|wday)", re.IGNORECASE)
MONTH_HINT = re.compile(r"(^month$|_month$|^month_|^mnth$|^mon$|month_of_year)", re.IGNORECASE)
SHARE_HINT = re.compile(r"(share|ratio|rate|frac|prob|pct|percent|proportion)", re.IGNORECASE)
TEMPERATURE_HINT = re.compile(r"(temp|celsius|fahrenheit|degree|dew)", re.IGNORECASE)
PERCENT_HINT = re.compile(r"(pct|percent|humid|^hum$|cloud)", re.IGNORECASE)
# A numeric feature this correlated with the target is probably part of it (leakage).
LEAKAGE_CORRELATION = 0.95
# Two numeric features whose sum (or difference) is the target on this share of rows are its parts.
SUM_LEAKAGE_SHARE = 0.99
# A column constant on at least this share of the sample's days may be constant on a day
# (may_be_constant); rarer constant days look like broken feeds: checked, and warned about
# (validation.on_constant_column: warn), so no day of the sample is rejected for it.
MAY_BE_CONSTANT_SHARE = 0.05
ID_HINT = re.compile(r"(^id$|_id$|^id_|uuid|_key$|^key$|_no$|_number$)", re.IGNORECASE)
DATE_LIKE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})")


class ScaffoldError(ValueError):
    """The sample or the request cannot make a spec; the message says what and how to fix it."""


@dataclass
class Scaffolded:
    """What :func:`new_model` wrote and what the engineer should look at."""

    spec: ModelSpec
    spec_path: Path
    suite_path: Path
    sample_check: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# ---- reading -----------------------------------------------------------------------


def read_sample(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet sample.

    Raises:
        ScaffoldError: missing file, unknown format, unreadable or empty.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ScaffoldError(f"sample {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            from mlops_lifecycle.ingestion import CSV_NULLS

            frame = pd.read_csv(path, **CSV_NULLS)  # read as the daily files will be
        elif suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path, engine="pyarrow")
        else:
            raise ScaffoldError(f"sample {path}: expected a .csv or .parquet file")
    except ScaffoldError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader error means the same to the user
        raise ScaffoldError(f"sample {path} is not readable as {suffix[1:]}: {exc}") from exc
    if frame.empty:
        raise ScaffoldError(f"sample {path} has no rows")
    return frame


# Words feeds write for a missing number. A CSV number column holding only these besides numbers
# is declared as the source's null_values (what ingestion reads as missing), not refused.
MISSING_MARKERS = {"na", "n/a", "nan", "null", "none", "nil", "-", "--", "?", "#n/a", "missing", "unknown", "."}


def missing_markers(frame: pd.DataFrame) -> list[str]:
    """The words a CSV sample writes for a missing number: in a column that is at least 90 %
    numbers, every other value must be one of :data:`MISSING_MARKERS` (any other text keeps the
    column a problem the scaffolder names)."""
    import pandas as pd

    found: set[str] = set()
    for c in frame.columns:
        if not (pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])):
            continue
        values = frame[c].dropna()
        numbers = pd.to_numeric(values, errors="coerce")
        if values.empty or numbers.isna().all() or numbers.notna().mean() < 0.9:
            continue
        words = {str(v) for v in values[numbers.isna()].unique()}
        if words and all(w.strip().lower() in MISSING_MARKERS for w in words):
            found |= words
    return sorted(found)


def _parse_times(series: pd.Series) -> pd.Series | None:
    """The column as datetimes if every non-null value is a date or timestamp, else None."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return None
    values = series.dropna().astype(str)
    if values.empty or not values.str.match(DATE_LIKE).all():
        return None
    parsed = pd.to_datetime(series, errors="coerce")
    return parsed if parsed.notna().sum() == series.notna().sum() else None


# ---- inference ------------------------------------------------------------------------


def _precision(span: float) -> int:
    """Decimals worth keeping for bounds of a range this wide."""
    if span <= 0 or not math.isfinite(span):
        return 2
    return max(0, 2 - math.floor(math.log10(span)))


def natural_bound(lo: float, hi: float) -> float | None:
    """The top of the bounded scale an observed range looks like, or None: 1 for values
    within 0..1 (a share, a probability, a flag), 100 for values from 0 or more that reach
    exactly 100 (a percentage, a humidity). No valid value lies beyond it."""
    if lo < 0:
        return None
    if hi <= 1:
        return 1.0
    return 100.0 if hi == 100 else None


def widened_range(lo: float, hi: float, *, integer: bool) -> tuple[float, float]:
    """``[lo, hi]`` widened by :data:`HEADROOM` of the span on each side, never below 0
    when ``lo`` was not negative nor above a :func:`natural_bound`, rounded outwards."""
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    pad = HEADROOM * span
    low, high = lo - pad, hi + pad
    if lo >= 0:
        low = max(0.0, low)
    if (top := natural_bound(lo, hi)) is not None:
        high = min(high, top)
    if integer:
        return float(math.floor(low)), float(math.ceil(high))
    digits = _precision(span)
    step = 10.0**-digits
    return round(math.floor(low / step) * step, digits), round(math.ceil(high / step) * step, digits)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def semantic_domain(name: str, values: pd.Series) -> tuple[float, float, str] | None:
    """The true limits of a column whose meaning the name and values give away, or None:
    a clock time HHMM (0..2359), an hour (0..23), a day of the week (0..6 or 1..7, as
    observed), a month (1..12), a share (0..1) or a percentage (0..100). A value outside
    them is impossible, whatever season the sample came from."""
    import numpy as np

    v = values.to_numpy(dtype=float)
    lo, hi = float(v.min()), float(v.max())
    whole = bool(np.all(np.mod(v, 1) == 0))
    if whole and lo >= 0 and 100 <= hi <= 2400 and bool(np.all((np.mod(v, 100) < 60) | (v == 2400))) and (
        CLOCK_HINT.search(name) or values.nunique() >= 30
    ):
        return 0.0, 2400.0 if hi == 2400 else 2359.0, "a clock time HHMM"
    if whole and HOUR_HINT.search(name) and lo >= 0 and hi <= 24:
        return 0.0, 24.0 if hi == 24 else 23.0, "an hour of the day"
    if whole and WEEKDAY_HINT.search(name) and lo >= 0 and hi <= 7:
        low, high = (0.0, 6.0) if lo == 0 and hi <= 6 else (1.0, 7.0) if lo >= 1 and hi == 7 else (0.0, 7.0)
        return low, high, "a day of the week"
    if whole and MONTH_HINT.search(name) and lo >= 1 and hi <= 12:
        return 1.0, 12.0, "a month"
    if lo >= 0 and hi <= 1 and (hi == 1 or (lo <= 0.05 and hi >= 0.95) or SHARE_HINT.search(name)):
        return 0.0, 1.0, "a 0..1 scale (a share, a probability, a flag)"
    if lo >= 0 and 1 < hi <= 100 and (hi == 100 or PERCENT_HINT.search(name)):
        return 0.0, 100.0, "a 0..100 scale (a percentage)"
    return None


def _nice(value: float, up: bool) -> float:
    """``value`` rounded outwards to two significant digits (a limit, not a measurement)."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
    return float((math.ceil if up else math.floor)(value / step) * step)


def number_bands(name: str, values: pd.Series, *, integer: bool) -> tuple[dict[str, Any], str]:
    """The spec entries of a number column's two bands, and the comment that explains them.

    ``min``/``max`` are the impossible limits (a value beyond blocks the day): the column's
    :func:`semantic_domain`, else 0 below for a count or a column measured from zero (whole
    numbers never negative, or a float never negative whose smallest value is within half its
    span of 0; never a temperature), and
    :data:`FAR` times the largest magnitude seen elsewhere. ``plausible_min``/``max`` are the
    sample widened by :data:`HEADROOM` (:func:`widened_range`), inside those limits: a value
    beyond warns and the day is scored, so a summer the winter sample did not hold costs no day.
    """
    lo, hi = float(values.min()), float(values.max())
    observed = f"observed {_number(round(lo, 6))}..{_number(round(hi, 6))}"
    domain = semantic_domain(name, values)
    if domain is not None and domain[2] in {"a clock time HHMM", "an hour of the day", "a day of the week", "a month"}:
        low, high, what = domain
        # The whole domain is plausible: a time of day the sample did not hold is no surprise.
        return {"min": _number(low), "max": _number(high)}, f"{observed}; {what}: outside {_number(low)}..{_number(high)} is impossible (blocks)"
    p_low, p_high = widened_range(lo, hi, integer=integer)
    if domain is not None:
        low, high, what = domain
        p_low, p_high = max(p_low, low), min(p_high, high)
        why = f"{what}: outside {_number(low)}..{_number(high)} is impossible (blocks)"
    else:
        mag = max(abs(lo), abs(hi), hi - lo) or 1.0
        # A count, or an amount, a distance, a duration seen from near zero up: never negative.
        # Not a temperature: a summer sample of 12..39 degrees says nothing against -3 in winter.
        from_zero = lo >= 0 and not TEMPERATURE_HINT.search(name) and (integer or lo <= 0.5 * (hi - lo))
        low = 0.0 if from_zero else _nice(min(lo, 0.0) - FAR * mag, up=False)
        high = _nice(FAR * mag, up=True)
        if integer:
            low, high = float(math.floor(low)), float(math.ceil(high))
        p_low, p_high = max(p_low, low), min(p_high, high)
        below = "never negative (blocks below 0)" if from_zero else f"blocks below {_number(low)}"
        why = f"{below}, and above {_number(high)} ({FAR:g}x the largest magnitude seen: a unit or encoding error)"
    entries = {"min": _number(low), "max": _number(high), "plausible_min": _number(p_low), "plausible_max": _number(p_high)}
    note = (f"{observed}; plausible {_number(p_low)}..{_number(p_high)} (the sample widened by {HEADROOM:.0%} of its "
            f"span: outside warns, the day is scored); {why}")
    return entries, note


@dataclass
class _Column:
    name: str
    type: str | None  # None: cannot be a feature
    note: str
    spec: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    constant_value: Any = None  # the one value of a column constant in the whole sample


def _plain_value(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def _infer_column(series: pd.Series, days: pd.Series | None) -> _Column:
    """Type, bounds, categories and null allowance of one column; ``days`` (the event
    date of each row, when the sample spans several) makes the null allowance and the
    constancy note per daily batch, which is what validation checks."""
    import pandas as pd

    name = str(series.name)
    nulls = float(series.isna().mean())
    if days is not None and nulls > 0:
        # Validation checks each day's batch: allow the worst day's share, not the average.
        nulls = float(series.isna().groupby(days).mean().max())
    values = series.dropna()
    out: dict[str, Any] = {"name": name}
    notes: list[str] = []
    if values.empty and pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        # A number column the sample never filled (a weather field a join has not reached yet):
        # kept, since the daily files hold it; its values later are neither checked nor blocked.
        spec = {"name": name, "type": "float", "nullable": True, "max_null_fraction": 1.0, "may_be_constant": True}
        return _Column(name, "float", "EMPTY IN THE SAMPLE: every value null", spec)
    if values.empty:
        return _Column(name, None, "", problem="is empty (every value is null)")
    if nulls > 0 or not pd.api.types.is_bool_dtype(series):
        # Null shares from the history of days, with tolerance: beyond the worst day (and a
        # margin) warns; only far beyond it blocks. A feature never null in the sample gets
        # the same room (a join that leaves some rows empty): XGBoost scores a missing value.
        warn = min(1.0, math.ceil((nulls * 1.2 + 0.01) * 100) / 100) if nulls > 0 else 0.0
        block = min(1.0, max(NULL_BLOCK_FLOOR, math.ceil((3 * nulls + 0.1) * 100) / 100))
        out["nullable"] = True
        out["max_null_fraction"] = block
        out["warn_null_fraction"] = warn
        seen = (f"up to {nulls:.1%} null in a day of the sample" if days is not None
                else f"{nulls:.1%} null in the sample") if nulls > 0 else "never null in the sample"
        notes.append(f"{seen}: {'any null' if warn == 0 else f'more than {warn:.0%}'} warns, more than "
                     f"{block:.0%} blocks" if block < 1 else f"{seen}: more than {warn:.0%} warns")
    distinct = values.nunique()
    if pd.api.types.is_bool_dtype(series):
        kind = "bool"
    elif pd.api.types.is_integer_dtype(series) or pd.api.types.is_float_dtype(series):
        kind = "int" if pd.api.types.is_integer_dtype(series) else "float"
        if distinct >= 2:
            entries, note = number_bands(name, values, integer=kind == "int")
            out.update(entries)
            notes.insert(0, note)
    elif _parse_times(series) is not None:
        return _Column(
            name,
            None,
            "",
            problem="is a second date/time column; a feature must be a number, a category or a bool",
        )
    elif (
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    ):
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.isna().any() and numbers.notna().mean() >= 0.9:
            words = sorted({str(v) for v in values[numbers.isna()]})
            return _Column(
                name,
                None,
                "",
                problem=f"is a number column that holds text values like {words[:5]} in {int(numbers.isna().sum())} "
                "row(s): validation rejects text in a number column (in a CSV only an empty field is a null). Write "
                f"missing values as empty fields upstream (pandas: df[{name!r}] = pd.to_numeric(df[{name!r}], "
                "errors='coerce'))",
            )
        if not all(isinstance(v, str) for v in values.head(1000)):
            return _Column(name, None, "", problem="mixes text with other values")
        unique_ish = distinct > 10 and distinct >= UNIQUE_SHARE * len(values)
        if unique_ish or (ID_HINT.search(name) and distinct > MAX_CATEGORIES):
            why = (f"{distinct / len(values):.0%} of its values are distinct" if unique_ish
                   else f"it is named like a key and has more than {MAX_CATEGORIES} values")
            return _Column(
                name,
                None,
                "",
                problem=f"is text with {distinct} distinct values in {len(values)} rows ({why}): free text or a key "
                "identifies rows rather than grouping them, so it is not a category",
            )
        kind = "category"
        out.update(_category_entries(values, days))
        notes.append(out.pop("_note"))
    else:
        return _Column(
            name, None, "", problem=f"has dtype {series.dtype}, which is not a number, text or bool"
        )
    if distinct < 2:
        # One value in the whole sample (a season, a year, a flag not yet used): nothing to learn
        # yet, but the daily files hold the column and will vary later (summer follows a winter
        # sample). Kept, never checked for constancy, and any other value warns, never blocks.
        only = values.iloc[0]
        out["may_be_constant"] = True
        if kind == "category":
            out["max_unknown_fraction"] = 1.0
        elif kind in {"int", "float"}:
            entries, note = number_bands(name, values, integer=kind == "int")
            out.update(entries)
            notes.insert(0, note)
        out = {"name": name, "type": kind, **{k: v for k, v in out.items() if k != "name"}}
        return _Column(name, kind, "; ".join([*notes, "ONE VALUE IN THE SAMPLE"]), out,
                       constant_value=_plain_value(only))
    out = {"name": name, "type": kind, **{k: v for k, v in out.items() if k != "name"}}
    column = _Column(name, kind, "; ".join(notes), out)
    if days is not None:
        # A day of one row is trivially constant: judge days that could hold two values.
        sizes = days.value_counts()
        per_day = series[days.isin(sizes[sizes >= 2].index)].groupby(days).nunique()
        constant = int((per_day <= 1).sum())
        if len(per_day) and constant == len(per_day):
            column.note += "; ONE VALUE PER DAY"
            # Constant within every day (a calendar column, weather joined by date): a daily batch
            # holds one value of it by design, so the "not constant" check would reject every day.
            column.spec["may_be_constant"] = True
        elif constant:
            column.note += f"; one value only on {constant} of {len(per_day)} days"
            if constant >= MAY_BE_CONSTANT_SHARE * len(per_day):
                # Often constant (a day of unchanging weather, say): that is how the column
                # behaves, so let those days through.
                column.spec["may_be_constant"] = True
            else:
                # Rarely constant: more likely a stuck sensor or a broken export (the bike
                # data's humidity is 0 all day on 2011-03-10). Keep the check; name the days.
                stuck = [str(d)[:10] for d in per_day[per_day <= 1].index[:5]]
                column.note += f" ({', '.join(stuck)}{', ...' if constant > 5 else ''})"
    return column


def _category_entries(values: pd.Series, days: pd.Series | None) -> dict[str, Any]:
    """``categories``, ``max_levels`` and ``max_unknown_fraction`` of a text column (and a
    ``_note``): every level, most frequent first when some are too rare for a column of
    their own (they and unseen levels share the unknown level), else alphabetical."""
    counts = values.astype(str).value_counts()
    order = sorted(counts.index, key=lambda v: (-int(counts[v]), v))
    own = [v for v in order if counts[v] >= LEVEL_MIN_SHARE * len(values)][:MAX_ENCODED_LEVELS] or order[:1]
    listed = order[:MAX_LISTED_CATEGORIES]
    unknown = UNKNOWN_SHARE
    tail = ""
    if len(listed) < len(order):
        # Levels beyond the listed ones read as unknown: allow the worst day's share of them too.
        rest = ~values.astype(str).isin(listed)
        worst = float(rest.groupby(days.loc[values.index]).mean().max()) if days is not None else float(rest.mean())
        unknown = min(1.0, math.ceil((UNKNOWN_SHARE + worst * 1.2) * 100) / 100)
        tail = f"; {len(order) - len(listed)} rarest not listed (up to {worst:.1%} of a day's rows)"
    capped = len(own) < len(listed)
    entries: dict[str, Any] = {
        "categories": listed if capped else sorted(listed),
        "max_levels": len(own),
        "max_unknown_fraction": unknown,
    }
    entries["_note"] = (
        f"{len(order)} categories seen{tail}; "
        + (f"the {len(own)} holding at least {LEVEL_MIN_SHARE:.1%} of rows (most frequent first) get a column each, "
           f"the other {len(listed) - len(own)} and any level never seen share the unknown level"
           if capped else "each gets a column; a level never seen goes to the unknown level")
        + f"; up to {unknown:.0%} of a day's rows in unseen levels warns, more blocks"
    )
    return entries


def _pick_time(
    frame: pd.DataFrame, target: str, time: str | None, entity_id: str | None = None
) -> tuple[str, pd.Series]:
    """The event-time column: ``time``, else the one date/time column. Of several, a real
    datetime column beats text that parses as one; a column that is an id (the named
    ``entity_id``, or unique per row and named like an id: ``hour_id``, ``key``) is not an
    event time, however much its values look like dates (``2011-01-01T00``)."""
    import pandas as pd

    if time:
        if time not in frame.columns:
            raise ScaffoldError(
                f"--time {time!r} is not a column of the sample; columns: {list(frame.columns)}"
            )
        parsed = _parse_times(frame[time])
        if parsed is None:
            raise ScaffoldError(f"--time {time!r} does not parse as dates or timestamps in every row")
        if parsed.isna().any():
            raise ScaffoldError(
                f"--time {time!r} is null in {int(parsed.isna().sum())} row(s); every row needs an event time"
            )
        return time, parsed
    found = {
        str(c): p for c in frame.columns if c not in {target, entity_id} and (p := _parse_times(frame[c])) is not None
    }
    if not found:
        raise ScaffoldError(
            "the sample has no date or timestamp column; the spec needs an event time (rows are partitioned and split "
            "for training by it). Add one upstream, then pass it with --time (TIME= with make)"
        )
    native = {c: p for c, p in found.items() if pd.api.types.is_datetime64_any_dtype(frame[c])}
    if len(found) > 1 and len(native) == 1:
        # A real timestamp column beats text that happens to parse as one (a key such as 2011-01-01T00).
        found = native
    not_ids = {c: p for c, p in found.items() if not (ID_HINT.search(c) and frame[c].is_unique)}
    if len(found) > 1 and len(not_ids) == 1:
        # An id that reads as a date (the key the guide suggests) identifies rows; it does not time them.
        found = not_ids
    if len(found) > 1:
        raise ScaffoldError(
            f"the sample has several date/time columns {sorted(found)}; say which is the event time with --time. "
            "(A real datetime column is preferred to text, and a column unique per row and named like an id "
            "(*_id, id_*, *_key, uuid) is taken for the entity id, not the event time; that left "
            f"{sorted(not_ids) or sorted(found)}.)"
        )
    name, parsed = next(iter(found.items()))
    if parsed.isna().any():
        raise ScaffoldError(f"event time {name!r} is null in {int(parsed.isna().sum())} row(s)")
    return name, parsed


def _sum_leaks(frame: pd.DataFrame, candidates: list[str], target: str) -> dict[str, str]:
    """Numeric columns that add up to the target with another (``casual + registered ==
    cnt``), or give it as a difference, on :data:`SUM_LEAKAGE_SHARE` of the rows where
    all three are known: each maps to what it makes with its partner."""
    import itertools

    import numpy as np
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(frame[target]) or pd.api.types.is_bool_dtype(frame[target]):
        return {}
    numeric = [c for c in candidates
               if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    y = frame[target].to_numpy(dtype=float)
    found: dict[str, str] = {}
    for a, b in itertools.combinations(numeric, 2):
        x, z = frame[a].to_numpy(dtype=float), frame[b].to_numpy(dtype=float)
        known = ~(np.isnan(x) | np.isnan(z) | np.isnan(y))
        if known.sum() < 10 or min((x[known] == 0).mean(), (z[known] == 0).mean()) >= SUM_LEAKAGE_SHARE:
            continue  # too few rows, or one side is (almost) all zeros: the other alone is the target
        for value, text in ((x + z, f"{a} + {b}"), (x - z, f"{a} - {b}"), (z - x, f"{b} - {a}")):
            share = float(np.isclose(value[known], y[known], rtol=1e-6, atol=1e-9).mean())
            if share >= SUM_LEAKAGE_SHARE:
                found.setdefault(a, f"{text} == {target} on {share:.1%} of rows")
                found.setdefault(b, f"{text} == {target} on {share:.1%} of rows")
                break
    return found


def _pick_entity(frame: pd.DataFrame, exclude: set[str], entity_id: str | None, days: pd.Series) -> str:
    import pandas as pd

    if entity_id:
        if entity_id not in frame.columns:
            raise ScaffoldError(f"--entity-id {entity_id!r} is not a column of the sample")
        col = frame[entity_id]
        if col.isna().any():
            raise ScaffoldError(f"--entity-id {entity_id!r} is null in {int(col.isna().sum())} row(s)")
        dupes = int(pd.DataFrame({"d": days, "id": col}).duplicated().sum())
        if dupes:
            raise ScaffoldError(
                f"--entity-id {entity_id!r} repeats within a day in {dupes} row(s); it must identify a row"
            )
        return entity_id
    candidates = [
        str(c)
        for c in frame.columns
        if c not in exclude
        and frame[c].notna().all()
        and frame[c].is_unique
        and (
            pd.api.types.is_integer_dtype(frame[c])
            or pd.api.types.is_object_dtype(frame[c])
            or pd.api.types.is_string_dtype(frame[c])
        )
    ]
    hinted = [c for c in candidates if ID_HINT.search(c)]
    text = [c for c in candidates if not pd.api.types.is_integer_dtype(frame[c])]
    if len(hinted) == 1:
        return hinted[0]
    if not hinted and len(text) == 1:
        return text[0]
    if candidates:
        raise ScaffoldError(
            f"several columns could be the entity id {candidates}; say which with --entity-id"
        )
    raise ScaffoldError(
        "no column identifies a row (unique and never null), and the spec needs an entity id so every prediction "
        "traces back to its row. Add one upstream, for example a key made of the columns that identify a row "
        "(df['row_id'] = df['date'].astype(str) + 'T' + df['hour'].astype(str)), then scaffold again, or name one "
        "with --entity-id"
    )


def _task(series: pd.Series, target: str) -> tuple[str, dict[str, Any], str]:
    """Task type, target spec entries and a note, from the label column."""
    import pandas as pd

    values = series.dropna()
    if values.empty:
        raise ScaffoldError(f"target {target!r} is null in every row; the sample needs labelled rows")
    distinct = sorted(values.unique().tolist(), key=str)
    nulls = f"; {series.isna().mean():.1%} of rows unlabelled" if series.isna().any() else ""
    if len(distinct) == 2:
        if set(distinct) <= {0, 1} or pd.api.types.is_bool_dtype(series):
            return "binary_classification", {}, f"two values {distinct}: binary classification{nulls}"
        raise ScaffoldError(
            f"target {target!r} has two values {distinct}; binary classification needs 0/1 labels. Map them upstream, "
            f"e.g. df[{target!r}] = (df[{target!r}] == {distinct[-1]!r}).astype(int)"
        )
    if len(distinct) < 2:
        raise ScaffoldError(
            f"target {target!r} holds one value only ({distinct[0]!r}); there is nothing to learn"
        )
    if not (pd.api.types.is_integer_dtype(series) or pd.api.types.is_float_dtype(series)):
        raise ScaffoldError(
            f"target {target!r} is text with {len(distinct)} values: multi-class models are not supported; use a "
            "number (regression) or 0/1 (binary classification)"
        )
    entries, bands = number_bands(target, values, integer=pd.api.types.is_integer_dtype(series))
    note = f"{len(distinct)} distinct values: regression{nulls}; {bands}"
    return "regression", entries, note


# ---- rendering ------------------------------------------------------------------------------


def _y(value: Any) -> str:
    """A YAML scalar or flow list; JSON is valid YAML and quotes every string (so 'No' stays text)."""
    return json.dumps(value, ensure_ascii=False)


def _comment(text: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in text.splitlines()]


@dataclass
class _Plan:
    name: str
    owner: str
    description: str
    sample: Path
    fmt: str
    start_date: dt.date
    entity_id: str
    event_time: str
    target: str
    task: str
    target_extra: dict[str, Any]
    target_note: str
    columns: list[_Column]
    rows_per_day: dict[str, float]
    days: int
    min_rows: int
    row_bounds: RowBounds
    volume: VolumePlan
    slice_column: str | None
    slice_note: str
    excluded: list[str]
    warnings: list[str]
    null_values: list[str] = field(default_factory=list)


def render(plan: _Plan) -> str:
    """The commented spec YAML for a plan."""
    lines: list[str] = []
    add = lines.append
    lines += _comment(
        f"Scaffolded by `mlops new-model` from {plan.sample} on {dt.date.today().isoformat()}.\n"
        "REVIEW EVERY FIELD before this model goes live: the values below were inferred from the sample.\n"
        "Every check blocks (the day is quarantined) or warns (an alert, the day is scored). Number columns\n"
        "have two bands: plausible_min/plausible_max, the sample widened by "
        f"{HEADROOM:.0%} of its span on each side (a value\n"
        "beyond warns: a season the sample did not hold), and min/max, the impossible limits (a value beyond\n"
        "blocks): a clock, an hour, a weekday, a month, a share or a percentage by its true limits, a count\n"
        f"never below 0, other numbers {FAR:g}x the largest magnitude seen. Nulls and unseen categories warn\n"
        "within a tolerated share and block beyond it.\n"
        "Run `mlops check` after every edit. Delete each WARNING below once you have dealt with it: `mlops check`\n"
        "points out those about columns the spec no longer has."
    )
    if plan.excluded:
        lines += _comment(
            f"Excluded from the features: {plan.excluded}. Validation demands exactly the spec's columns, so the\n"
            "daily files must not contain them (drop them upstream, or with `mlops split-by-day --drop`)."
        )
    for w in plan.warnings:
        lines += _comment(f"WARNING: {w}")
    add(f"name: {plan.name}")
    add(f"owner: {_y(plan.owner)}")
    add(f"description: {_y(plan.description)}")
    add('schedule: "@daily"')
    lines += _comment(
        "First day the daily DAG may run for: the sample's first day, so history can be backfilled."
    )
    add(f"start_date: {plan.start_date.isoformat()}")
    add("tags: []")
    add("retries: 1")
    add("")
    lines += _comment(
        "One file per day; {ds} is the run's date (YYYY-MM-DD), {data_dir} the MLOPS_DATA_DIR root.\n"
        "`mlops split-by-day` writes these files from one history file."
    )
    add("source:")
    add("  kind: file")
    add(f'  path: "{{data_dir}}/landing/{plan.name}/{{ds}}.{plan.fmt}"')
    if plan.null_values:
        lines += _comment(f"The sample writes {plan.null_values} for a missing number: read as missing.", "  ")
        add(f"  null_values: {_y(['', *plan.null_values])}")
    add("")
    lines += _comment(
        "A column that is unique and never null in the sample: identifies each row and its prediction."
    )
    add(f"entity_id: {plan.entity_id}")
    lines += _comment(
        "The sample's date/time column: partitions rows by day and splits training windows by time."
    )
    add(f"event_time: {plan.event_time}")
    add("")
    add("target:")
    add(f"  column: {plan.target}")
    lines += _comment(plan.target_note, "  ")
    add(f"  task: {plan.task}")
    for key, value in plan.target_extra.items():
        add(f"  {key}: {_y(value)}")
    add("")
    add("features:")
    for col in plan.columns:
        if col.note:
            lines += _comment(col.note, "  ")
        add(f"  - name: {col.name}")
        for key, value in col.spec.items():
            if key != "name":
                add(f"    {key}: {value if key == 'type' else _y(value)}")
    add("")
    lines += _comment(
        "Custom features: name a function 'package.module:function' that turns the validated rows into model\n"
        "inputs (see docs/adding-a-model.md). Without it, numbers go in as they are and each category becomes\n"
        "one 0/1 column."
    )
    add("# features_function: my_package.features:build_features")
    add("")
    per_day = plan.rows_per_day
    rb = plan.row_bounds
    if per_day:
        seen = ("" if rb.lowest_ratio is None else
                f"\nA day held {rb.lowest_ratio:.2f}..{rb.highest_ratio:.2f} x the median of the 7 days before it; ")
        lines += _comment(
            f"Rows per day in the sample ({plan.days} days): min {per_day['min']:g}, median {per_day['median']:g}, "
            f"max {per_day['max']:g}.\nmin_rows is half the 10th percentile, never above the smallest day; a day's "
            "volume must also stay within\nvolume_min_ratio..volume_max_ratio of the median of recent days "
            f"(0.3..3.0, widened to what the sample's days needed, with room).{seen}"
            + ("no day of the sample breaks these." if seen else "")
        )
    add("validation:")
    add(f"  min_rows: {plan.min_rows}")
    add("  volume_lookback_days: 7")
    add(f"  volume_max_ratio: {rb.volume_max_ratio:g}")
    add(f"  volume_min_ratio: {rb.volume_min_ratio:g}")
    lines += _comment(
        "Severities. Schema, types, ids, event times, min_rows and a volume collapse always block (the day is\n"
        "quarantined); ranges, nulls and categories block only beyond their impossible limits (min/max,\n"
        "max_null_fraction, max_unknown_fraction) and warn inside them. A feature constant all day (a stuck\n"
        "sensor) and more rows than volume_max_ratio allows: warn (an alert, the day is scored) or block.",
        "  ",
    )
    add("  on_constant_column: warn")
    add("  on_volume_spike: block")
    add("")
    vol = plan.volume
    add("training:")
    lines += _comment(
        "Days of validated data per training run; the last days are the validation and holdout sets.\n"
        f"Scaled to the sample's median of {vol.rows_per_day:g} rows a day: validation and holdout hold about "
        f"{vol.holdout_rows} rows each\n(at least 300 where 2 to 14 days allow), the rest of the window at least "
        "2000 rows or 56 days.",
        "  ",
    )
    add(f"  window_days: {vol.window_days}")
    add(f"  validation_days: {vol.validation_days}")
    add(f"  holdout_days: {vol.holdout_days}")
    lines += _comment(
        "Fewest labelled rows to train on: the validation and holdout days on quiet days (80% of the median),\n"
        "plus a holdout's worth to learn from.",
        "  ",
    )
    add(f"  min_rows: {vol.training_min_rows}")
    lines += _comment("Validation and holdout rows kept as each version's drift reference.", "  ")
    add(f"  reference_rows: {vol.reference_rows}")
    if plan.slice_column:
        lines += _comment(plan.slice_note, "  ")
        add(f"  slice_column: {plan.slice_column}")
    elif plan.slice_note:
        lines += _comment(plan.slice_note, "  ")
    add("  xgboost:")
    add("    n_estimators: 300")
    add("    max_depth: 6")
    add("    learning_rate: 0.1")
    add("    tree_method: hist")
    add("")
    add("promotion:")
    if plan.task == "binary_classification":
        lines += _comment(
            "Higher is better. Set a floor once the first training shows what is reachable.", "  "
        )
        add("  metric: roc_auc")
        add("  margin: 0.005")
        add("  # floor: 0.7")
    else:
        lines += _comment(
            f"Lower is better, in units of {plan.target}. The margin is how much a challenger must cut the\n"
            "champion's RMSE on the same holdout rows (0: any improvement); set a floor (the worst RMSE you\n"
            "would ship) once the first training shows what is reachable.",
            "  ",
        )
        add("  metric: rmse")
        add("  margin: 0.0")
        add("  # floor: 50.0")
    add("  mode: auto")
    add("")
    lines += _comment(
        "Drift on every feature, each weighed by its share of the model's importance (XGBoost gain, recorded at\n"
        "training): the data set drifts when this share of the importance has drifted. A day is compared with the\n"
        "same weekday of the training window's last two weeks, so a weekly pattern is not drift. Prediction drift\n"
        "is reported, not paged."
    )
    add("drift:")
    add("  drift_share: 0.5")
    add("  include_prediction: true")
    add("  weight_by_importance: true")
    add("  reference: same_weekday")
    add("  reference_days: 14")
    # ---- watch-only columns: those often holding one value a day move with the calendar or the weather ----
    daily = [c.name for c in plan.columns if c.type is not None and c.spec.get("may_be_constant")]
    lines += _comment(
        "Reported but never counted toward drift, alerts or retraining: columns that move with the calendar or\n"
        "the weather (a value a day drifts against any two weeks). "
        + (f"These often hold one value a day in the sample: {', '.join(daily)}." if daily else
           "Add such columns here (e.g. [temperature, holiday])."),
        "  ",
    )
    add(f"  watch_only: [{', '.join(daily)}]")
    lines += _comment(
        "One alert per episode: it starts on the first drifted or hurt day, pages once it holds episode_min_days\n"
        "such days (or asks for a retraining), and ends after episode_calm_days calm days in a row.",
        "  ",
    )
    add("  episode_calm_days: 3")
    add("  episode_min_days: 3")
    lines += _comment(
        "Concept drift (a day's labelled metric against the holdout, see max_metric_drop) needs this many\n"
        "labelled rows in the day: 30, or what a quiet day of the sample holds when that is less.",
        "  ",
    )
    add(f"  min_labelled_rows: {vol.min_labelled_rows}")
    add("")
    add("retraining:")
    lines += _comment(
        "At most one request in 24 days: no more than 8 in six months, each with new days to learn from.", "  "
    )
    add("  cooldown_days: 24")
    lines += _comment(
        f"Drift must last drift_days_required days and those days hold min_rows validated rows (about\n"
        f"{vol.rows_per_day * vol.drift_days_required:g} at the median) before it starts a retraining: "
        "enough shifted rows to learn from, within a week.",
        "  ",
    )
    add(f"  drift_days_required: {vol.drift_days_required}")
    add(f"  min_rows: {vol.retraining_min_rows}")
    lines += _comment(
        "Retraining on what hurts the model, once labels arrive (with the batch or late): a day whose metric falls\n"
        "below the champion's holdout value by more than its error at that day's rows (one-sided p under\n"
        "metric_significance), or whose label rate leaves the training window's for that weekday (allowing for\n"
        "the day's count and the spread of daily rates the window showed), for label_days_required days in a row.",
        "  ",
    )
    add("  on_metric_drop: true")
    add("  metric_significance: 0.05")
    add("  on_label_shift: true")
    add("  label_shift_significance: 0.05")
    add("  label_days_required: 3")
    return "\n".join(lines) + "\n"


# ---- the command -------------------------------------------------------------------------


def check_name(name: str, specs_dir: Path) -> None:
    """Refuse a model name that is not a safe identifier or is already taken.

    Raises:
        ScaffoldError: the name is unsafe, has a spec file, is another spec's registered
            model name, or already has data in the lake.
    """
    if not IDENTIFIER.match(name or ""):
        raise ScaffoldError(
            f"{name!r} is not a safe model name: use lower-case letters, digits and underscores, starting with a "
            "letter, at most 63 characters (it becomes DAG ids, folder names and the registry name)"
        )
    for path in spec_paths(specs_dir):
        if path.stem == name:
            raise ScaffoldError(f"the name {name!r} is taken: {path} exists")
        try:
            other = load_spec(path)
        except SpecError:
            continue
        if other.model_name == name:
            raise ScaffoldError(f"the name {name!r} is taken: {path} registers its model under that name")
    existing = lake.root() / name
    if existing.is_dir() and any(existing.iterdir()):
        raise ScaffoldError(f"the name {name!r} is taken: the data lake already holds {existing}")


def plan_spec(
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    sample: Path,
    time: str | None = None,
    entity_id: str | None = None,
    exclude: tuple[str, ...] = (),
    owner: str | None = None,
    description: str | None = None,
) -> _Plan:
    """Infer a spec from a sample.

    Raises:
        ScaffoldError: one message naming every column that cannot become part of the spec.
    """
    import pandas as pd

    unknown = [c for c in (target, *exclude) if c not in frame.columns]
    if unknown:
        raise ScaffoldError(f"{unknown} not among the sample's columns {list(map(str, frame.columns))}")
    bad_names = [str(c) for c in frame.columns if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", str(c))]
    if bad_names:
        raise ScaffoldError(
            f"column names must be plain identifiers (letters, digits, underscore); rename {bad_names}"
        )
    frame = frame.drop(columns=list(exclude))
    event_time, times = _pick_time(frame, target, time, entity_id)
    days = times.dt.date
    entity = _pick_entity(frame, {target, event_time}, entity_id, days)
    task, target_extra, target_note = _task(frame[target], target)

    columns: list[_Column] = []
    problems: list[str] = []
    warnings: list[str] = []
    if bool((times == times.dt.normalize()).all()):
        warnings.append(
            f"{event_time}, the event time, holds dates only (every value is at midnight): it has no time of day. "
            "Fine when each row is a whole day; when rows are hours or events, combine the date with the time "
            "upstream into one timestamp (pd.to_datetime(df['date'] + ' ' + df['hour'])), or a features_function "
            "that reads the hour from it gets 0 on every row"
        )
    numeric_target = pd.api.types.is_numeric_dtype(frame[target])
    sums = _sum_leaks(frame, [str(c) for c in frame.columns if c not in {target, event_time, entity}], target)
    for c in frame.columns:
        if c in {target, event_time, entity}:
            continue
        col = _infer_column(frame[c], days if days.nunique() > 1 else None)
        if col.problem:
            problems.append(f"  - {col.name} {col.problem}")
            continue
        if c in sums:
            col.note += f"; LEAKAGE? {sums[c]}"
            warnings.append(
                f"{c} is part of the target: {sums[c]} of the sample. It is known only once the label is, so "
                "drop it (and its partner), or the model learns an answer it cannot have when it scores"
            )
        if col.type in {"int", "float"} and numeric_target:
            corr = frame[[c, target]].corr().iloc[0, 1]
            if pd.notna(corr) and abs(corr) >= LEAKAGE_CORRELATION:
                col.note += f"; LEAKAGE? correlation {corr:.2f} with the target"
                if c not in sums:  # the sum says more
                        warnings.append(
                        f"{c} correlates {corr:.2f} with the target {target}: if it is only known after the label "
                        "(a part of it, say), drop it, or the model learns an answer it cannot have when it scores"
                    )
        if "EMPTY IN THE SAMPLE" in col.note:
            warnings.append(
                f"{c} is null in every row of the sample: kept as a number feature that may be null and unchecked "
                "(validation demands every column of the daily file); give it a range once it holds values"
            )
        elif "ONE VALUE IN THE SAMPLE" in col.note:
            warnings.append(
                f"{c} holds one value only in the sample ({col.constant_value!r}): the model cannot learn from it "
                "until it varies. It is kept (validation demands every column of the daily file), never checked for "
                "being constant, and another value later warns instead of blocking; drop it upstream if it never varies"
            )
        elif "ONE VALUE PER DAY" in col.note:
            warnings.append(
                f"{c} holds one value per day in the sample, so the spec marks it may_be_constant: true (the check "
                "that a daily batch holds two distinct values would reject every day). Within a day it tells the "
                "model nothing; across days, if it is a calendar column (a weekday, a season), derive it from the "
                "event time in a features_function instead, or drop it"
            )
        elif "one value only on" in col.note and col.spec.get("may_be_constant"):
            share = col.note.rsplit("one value only on ", 1)[1]
            warnings.append(
                f"{c} holds one value only on {share} of the sample; the spec marks it may_be_constant: true so "
                "those days are not quarantined (set it to false if a constant day means a broken feed)"
            )
        elif "one value only on" in col.note:
            share = col.note.rsplit("one value only on ", 1)[1]
            warnings.append(
                f"{c} holds one value only on {share} of the sample: rare enough to look like a broken feed "
                "(a stuck sensor, an export that filled a default), so such a day is scored with a warning "
                "(validation.on_constant_column: warn; set it to block to quarantine those days); "
                "if that is normal for this column, mark it may_be_constant: true"
            )
        columns.append(col)
    if problems:
        raise ScaffoldError(
            "these columns cannot be features, and every column of a daily file must be in the spec:\n"
            + "\n".join(problems)
            + "\nDrop them from the data (and the sample), or pass --exclude COLUMN for each and drop them upstream."
        )
    if not columns:
        raise ScaffoldError(
            "no feature columns are left besides the entity id, the event time and the target"
        )

    counts = days.value_counts()
    rows_per_day = {"min": float(counts.min()), "median": float(counts.median()), "max": float(counts.max())}
    ordered_days = sorted(counts.index)
    bounds = row_bounds([int(counts[d]) for d in ordered_days])
    min_rows = bounds.min_rows
    if bounds.volume_min_ratio < 0.3 and bounds.lowest_at is not None:
        quiet = ordered_days[bounds.lowest_at]
        warnings.append(
            f"validation.volume_min_ratio: {quiet} held {int(counts[quiet])} row(s), {bounds.lowest_ratio:.2f} x the median "
            f"of the days before it, so the ratio is {bounds.volume_min_ratio:g} (not 0.3) and min_rows {min_rows}: no "
            "day of the sample is rejected by its own spec. If that day was a broken export rather than a real quiet "
            "day, raise both, and such a day will be quarantined"
        )
    vol = volume_plan(rows_per_day["median"])
    slice_column, slice_note = _pick_slice(frame, columns, vol.holdout_rows)
    n_features = len(columns)
    return _Plan(
        name=name,
        owner=owner or getpass.getuser(),
        description=description
        or f"Predicts {target} ({task.replace('_', ' ')}) from {n_features} features. "
        f"Scaffolded from {Path(sample).name}: say here what it is for and who uses it.",
        sample=Path(sample),
        fmt="csv" if Path(sample).suffix.lower() == ".csv" else "parquet",
        start_date=min(days),
        entity_id=entity,
        event_time=event_time,
        target=target,
        task=task,
        target_extra=target_extra,
        target_note=target_note,
        columns=columns,
        rows_per_day=rows_per_day,
        days=int(counts.size),
        min_rows=min_rows,
        row_bounds=bounds,
        volume=vol,
        slice_column=slice_column,
        slice_note=slice_note,
        excluded=list(exclude),
        warnings=warnings,
    )


def _pick_slice(frame: pd.DataFrame, columns: list[_Column], holdout_rows: int) -> tuple[str | None, str]:
    """The slice column and its comment: the category with fewest values among those that
    vary within a day (a one-value-per-day column cannot be compared inside the holdout days)
    and of which at least two values can expect :data:`MIN_SLICE_ROWS` rows in a holdout of
    ``holdout_rows`` (a metric on fewer rows is noise, and a protected slice refuses it)."""
    usable: list[tuple[int, int, str, list[str]]] = []
    for i, c in enumerate(columns):
        if c.type != "category" or not 2 <= len(c.spec["categories"]) <= 12 or "ONE VALUE PER DAY" in c.note:
            continue
        expected = frame[c.name].value_counts(normalize=True) * holdout_rows
        if int((expected >= MIN_SLICE_ROWS).sum()) >= 2:
            small = sorted(str(v) for v in expected[expected < MIN_SLICE_ROWS].index)
            usable.append((len(c.spec["categories"]), i, c.name, small))
    if not usable:
        return None, (
            f"No slice_column: no category varies within a day with two values expecting {MIN_SLICE_ROWS} rows in a "
            f"holdout of about {holdout_rows} rows." if any(c.type == "category" for c in columns) else ""
        )
    _, _, name, small = min(usable)
    note = (f"Per-slice metrics on the holdout (about {holdout_rows} rows) for this category: of those with two\n"
            f"values expecting {MIN_SLICE_ROWS} holdout rows or more, the one with fewest values.")
    if small:
        note += f"\nExpected under {MIN_SLICE_ROWS} holdout rows, so measured as noise or skipped: {small}."
    return name, note


_WARNING_LINE = re.compile(r"^#\s*WARNING:\s*([A-Za-z_][A-Za-z0-9_.]*)")


def stale_warnings(text: str, spec: ModelSpec) -> list[tuple[int, str]]:
    """``(line number, why)`` of each scaffolder ``# WARNING:`` comment in a spec's text
    whose problem no longer applies: every such warning starts with the column it is about,
    so it is stale once the spec has no such column, or once a warning that suggests
    ``may_be_constant: true`` finds the feature marked so. Warnings about a field
    (``training.holdout_days: ...``) are left alone: ``mlops check`` judges those anew."""
    columns = {spec.entity_id, spec.event_time, spec.target.column, *spec.feature_names}
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _WARNING_LINE.match(line)
        if not match or "." in match.group(1):
            continue
        column = match.group(1)
        if column not in columns:
            out.append((number, f"the WARNING comment about {column} no longer applies (the spec has no column "
                                f"{column}): delete it"))
        elif "mark it may_be_constant: true" in line and column in spec.feature_names and (
            spec.feature(column).may_be_constant
        ):
            out.append((number, f"the WARNING comment about {column} no longer applies ({column} is marked "
                                "may_be_constant: true): delete it"))
    return out


def suite_json(spec: ModelSpec) -> dict[str, Any]:
    """The expectation suite a spec implies, as JSON for review."""
    from mlops_lifecycle import validation

    suite = validation.build_suite(spec).to_json_dict()
    suite["meta"] = {
        **(suite.get("meta") or {}),
        "generated_from": f"{spec.name}.yaml",
        "note": "For review only: the DAGs build this suite from the spec at run time, adding each day's event-time "
        "range and the volume check against recent days. Edit the spec, not this file.",
    }
    return suite


def suite_path(spec_path: Path) -> Path:
    """Where the reviewable suite of a spec file lives: beside it, ``<name>.suite.json``."""
    return spec_path.with_name(f"{spec_path.stem}.suite.json")


def _hardest_days(spec: ModelSpec, frame: pd.DataFrame, days: pd.Series) -> dict[Any, str]:
    """The days of the sample each per-day check is hardest on, with why: the fewest rows,
    the lowest and highest volume against the days before, the most nulls of each nullable
    feature and the most unseen levels of each category. Every per-day check is monotone
    in its statistic, so a spec these days pass is passed by every day of the sample."""
    import statistics

    counts = days.value_counts().sort_index()
    out: dict[Any, str] = {counts.idxmin(): "fewest rows"}
    lookback = spec.validation.volume_lookback_days
    values = counts.tolist()
    ratios = {counts.index[i]: values[i] / statistics.median(values[max(0, i - lookback):i])
              for i in range(1, len(values))}
    if ratios:
        out.setdefault(min(ratios, key=ratios.get), "lowest volume against the days before")
        out.setdefault(max(ratios, key=ratios.get), "highest volume against the days before")
    for f in spec.features:
        if f.nullable and frame[f.name].isna().any():
            out.setdefault(frame[f.name].isna().groupby(days).mean().idxmax(), f"most nulls in {f.name}")
        if f.categories and f.max_unknown_fraction < 1:
            unseen = frame[f.name].notna() & ~frame[f.name].astype(str).isin(f.categories)
            if unseen.any():
                out.setdefault(unseen.groupby(days).mean().idxmax(), f"most unseen levels of {f.name}")
    return out


def check_sample(spec: ModelSpec, frame: pd.DataFrame) -> dict[str, Any]:
    """Validate the sample as the daily DAG would: the whole sample against the spec's suite
    (every row meets the range, type, category and id checks), then each of its hardest
    days (:func:`_hardest_days`) as a daily batch, with the event-time range of its partition
    and the volume check against the sample's days before it, as ``ingest-history`` would.

    Returns the whole sample's result with ``days`` (in the sample), ``checked_days`` (day
    -> why it was checked) and ``rejected`` (the result of each day a blocking check failed).
    GX costs about 20 ms per check and day, so the hardest days stand for the others.
    """
    import statistics

    from mlops_lifecycle import validation

    frame = frame.copy()
    frame[spec.event_time] = _parse_times(frame[spec.event_time])
    keep = [spec.entity_id, spec.event_time, *spec.feature_names, spec.target.column]
    frame = frame[keep]
    whole_spec = spec
    if not frame[spec.entity_id].is_unique:
        # An id unique within each day only (--entity-id): the daily batches below check it.
        whole_spec = spec.model_copy(update={"validation": spec.validation.model_copy(update={"unique_entity_id": False})})
    whole = validation.validate_frame(whole_spec, frame)
    days = frame[spec.event_time].dt.date
    counts = days.value_counts().sort_index()
    hardest = _hardest_days(spec, frame, days)
    rejected = [] if whole["success"] else [whole]
    cfg = spec.validation
    for day in sorted(hardest):
        before = [int(c) for d, c in counts.items() if d < day][-cfg.volume_lookback_days:]
        volume = None
        if before:
            median = statistics.median(before)
            volume = {"median": median, "days": ["sample"] * len(before),
                      "min": math.floor(median * cfg.volume_min_ratio), "max": math.ceil(median * cfg.volume_max_ratio)}
        result = validation.validate_frame(spec, frame[days == day].reset_index(drop=True), day=day, volume=volume)
        if not result["success"]:
            rejected.append(result)
    return {**whole, "success": not rejected, "days": int(counts.size),
            "checked_days": {d.isoformat(): why for d, why in sorted(hardest.items())}, "rejected": rejected}


def new_model(
    name: str,
    sample: str | Path,
    target: str,
    *,
    time: str | None = None,
    entity_id: str | None = None,
    exclude: tuple[str, ...] = (),
    owner: str | None = None,
    description: str | None = None,
    specs_dir: str | Path | None = None,
) -> Scaffolded:
    """Scaffold a spec (and its reviewable expectation suite) from a sample.

    Nothing is written unless the spec round-trips through :func:`load_spec` and the
    sample passes the suite it implies; both files are written atomically.

    Raises:
        ScaffoldError: the name is unsafe or taken, or the sample cannot make a spec
            (every problem is named).
    """
    folder = Path(specs_dir) if specs_dir else config.specs_dir()
    check_name(name, folder)
    frame = read_sample(sample)
    markers = missing_markers(frame) if Path(sample).suffix.lower() == ".csv" else []
    if markers:
        import pandas as pd

        # Read again as ingestion will with source.null_values: those words are missing values.
        frame = pd.read_csv(sample, keep_default_na=False, na_values=["", *markers])
    plan = plan_spec(
        frame,
        name=name,
        target=target,
        sample=Path(sample),
        time=time,
        entity_id=entity_id,
        exclude=tuple(exclude),
        owner=owner,
        description=description,
    )
    plan.null_values = markers
    text = render(plan)
    target_path = folder / f"{name}.yaml"
    # Parse the rendered text with the spec's own schema before anything lands in the specs folder.
    spec = _load_text(text, target_path)
    # What `mlops check` would say of these thresholds once the lake holds days like the sample's
    # (a volume so low that even the scaled numbers fall short): say it now.
    short = volume_warnings(spec, plan.volume.rows_per_day)
    if short:
        plan.warnings += [f"{field}: {message}" for field, message in short]
        text = render(plan)
        spec = _load_text(text, target_path)
    result = check_sample(spec, frame)
    if not result["success"]:
        from mlops_lifecycle import validation

        first = result["rejected"][:3]
        raise ScaffoldError(
            "the sample fails the checks its own spec implies, so the spec was not written (please report this: "
            "the scaffold sets its thresholds so that no day of the sample is rejected):\n"
            + "\n".join(validation.failure_message(f"sample {sample}" + (f", day {r['ds']}" if r["ds"] else ""), r)
                        for r in first)
        )
    suite_file = lake.write_json(suite_path(target_path), suite_json(spec))
    try:
        lake.write_text(target_path, text)
    except BaseException:
        suite_file.unlink(missing_ok=True)
        raise
    return Scaffolded(
        spec=spec, spec_path=target_path, suite_path=suite_file, sample_check=result, warnings=plan.warnings
    )


def _load_text(text: str, path: Path) -> ModelSpec:
    """Validate rendered spec text as if it were the file at ``path`` (without writing it)."""
    import yaml
    from pydantic import ValidationError

    from mlops_lifecycle.spec import _format_validation_error

    try:
        return ModelSpec.model_validate(yaml.safe_load(text))
    except ValidationError as exc:  # a scaffolder bug, not the user's: say so
        raise ScaffoldError(
            "the scaffolded spec does not validate (please report this):\n"
            + _format_validation_error(path, exc)
        ) from None


# ---- daily files from one history file ------------------------------------------------------


def split_by_day(
    source: str | Path, time: str, out_template: str, *, drop: tuple[str, ...] = (), overwrite: bool = False
) -> list[Path]:
    """Write one file per event day of a history file, as a spec's source template expects.

    ``out_template`` holds ``{ds}`` (or ``{ds_nodash}``); ``.csv`` writes CSV, anything
    else Parquet. Each file is written atomically; existing files are kept unless
    ``overwrite``.

    Raises:
        ScaffoldError: missing template placeholder, unknown columns, or a time column
            that does not parse.
    """
    if "{ds}" not in out_template and "{ds_nodash}" not in out_template:
        raise ScaffoldError("the output template must contain {ds} or {ds_nodash}")
    frame = read_sample(source)
    missing = [c for c in (time, *drop) if c not in frame.columns]
    if missing:
        raise ScaffoldError(f"{missing} not among the columns of {source}: {list(map(str, frame.columns))}")
    parsed = _parse_times(frame[time])
    if parsed is None or parsed.isna().any():
        raise ScaffoldError(f"{time!r} does not parse as a date or timestamp in every row of {source}")
    frame = frame.drop(columns=list(drop))
    frame[time] = parsed
    frame = frame.sort_values(time, kind="stable")
    written: list[Path] = []
    for day, part in frame.groupby(frame[time].dt.date, sort=True):
        target = Path(out_template.format(ds=day.isoformat(), ds_nodash=day.strftime("%Y%m%d")))
        if target.exists() and not overwrite:
            continue
        if target.suffix.lower() == ".csv":
            with lake.atomic_path(target) as tmp:
                part.to_csv(tmp, index=False)
        else:
            lake.write_parquet(target, part)
        written.append(target)
    return written


# ---- history before the first model ----------------------------------------------------------


def ingest_history(spec: ModelSpec, days: list[dt.date], *, docs: bool = False) -> list[dict[str, Any]]:
    """Ingest and validate past days with the daily DAG's own stage functions, so the
    first training has a window to train on before any DAG runs.

    Every day is tried; a missing file or a rejected batch is reported (and quarantined,
    as the daily DAG would) without stopping the others. With a ``labels`` section, each
    validated day's labels are read from their own source and kept for training (the
    history is old enough for them to have arrived). Returns one
    ``{"ds", "status", "rows", "labels", "detail"}`` per day, status ``validated``,
    ``missing``, ``unreadable`` or ``rejected``; ``labels`` is the labels' status
    (``stored``, ``not_arrived``) or None without a labels section.
    """
    from mlops_lifecycle import ingestion, monitoring, validation

    out: list[dict[str, Any]] = []
    for day in days:
        row: dict[str, Any] = {"ds": day.isoformat(), "rows": None, "labels": None, "detail": ""}
        try:
            ingestion.ingest(spec, day)
            result = validation.validate_partition(spec, day, docs=docs)
            row.update(status="validated", rows=result["rows"], warned=result.get("warned", 0))
            if row["warned"]:
                row["detail"] = (f"{row['warned']} warning{'s' if row['warned'] > 1 else ''}: "
                                 + "; ".join(result.get("warnings") or []))
            if spec.labels is not None:
                try:
                    row["labels"] = monitoring.labels_for_day(spec, day)["status"]
                except (monitoring.LabelsError, ingestion.SourceUnreadable, ingestion.SourceFailed) as exc:
                    row.update(labels="broken", detail=f"labels: {str(exc).splitlines()[0]}")
        except ingestion.SourceMissing as exc:
            row.update(status="missing", detail=str(exc))
        except ingestion.SourceUnreadable as exc:
            row.update(status="unreadable", detail=str(exc).splitlines()[0])
        except validation.ValidationFailed as exc:
            failed = [c.get("check", c.get("expectation")) for c in exc.result.get("failures", [])]
            row.update(status="rejected", rows=exc.result.get("rows"), detail="; ".join(map(str, failed)))
        out.append(row)
    return out
