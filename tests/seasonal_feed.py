"""A generated daily feed shaped like the real ones the scaffold must fit (issue 12).

About 900 rows a day of flights: a row id, a departure timestamp, a clock column (HHMM),
an hour, a weekday and a month (one value per day), a 94-level text category with a long
tail, a 6-level carrier, weather joined by hour (temperature with a strong seasonal rise,
a humidity percentage, wind measured from zero) that a join leaves partly empty, and a 0/1
label whose rate rises from about 20 % in winter to about 31 % in summer. Deterministic:
each day is seeded by its date.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

ROWS = 900
DESTINATIONS = [f"D{i:02d}" for i in range(94)]
# A long tail: the top levels hold most rows, the last ones about one row a day.
_WEIGHTS = 1.0 / np.arange(1, len(DESTINATIONS) + 1) ** 1.1
_WEIGHTS /= _WEIGHTS.sum()
CARRIERS = ["AA", "BB", "CC", "DD", "EE", "FF"]


def season(day: dt.date) -> float:
    """0 in mid-January, 1 in mid-July."""
    return float((1 - np.cos(2 * np.pi * (day.timetuple().tm_yday - 15) / 365)) / 2)


def generate_day(day: dt.date, rows: int = ROWS, *, weather_nulls: float | None = None,
                 new_levels: dict[str, int] | None = None) -> pd.DataFrame:
    """One day's batch. ``weather_nulls``: the share of rows the weather join leaves empty
    (default: 0 to 4 %, by day); ``new_levels``: destination levels never seen before, with
    how many rows each holds."""
    rng = np.random.default_rng(int(day.strftime("%Y%m%d")))
    s = season(day)
    minute = np.sort(rng.integers(5 * 60, 24 * 60, rows))
    at = pd.Timestamp(day) + pd.to_timedelta(minute, unit="min") + pd.to_timedelta(rng.integers(0, 60, rows), unit="s")
    dest = rng.choice(DESTINATIONS, rows, p=_WEIGHTS).astype(object)
    if new_levels:
        at_rows = rng.choice(rows, sum(new_levels.values()), replace=False)
        dest[at_rows] = np.repeat(list(new_levels), list(new_levels.values()))
    hour = minute // 60
    temp = np.round(2 + 26 * s + 4 * np.sin((hour - 9) / 24 * 2 * np.pi) + rng.normal(0, 2.5, rows), 1)
    hum = np.clip(np.round(rng.normal(70 - 15 * s, 12, rows)), 15, 100)
    wind = np.round(np.where(rng.random(rows) < 0.05, 0.0, rng.gamma(2.0, 6.0, rows)), 1)
    frame = pd.DataFrame({
        "flight_id": [f"{day:%Y%m%d}-{i:04d}" for i in range(rows)],
        "departed_at": at,
        "dep_hhmm": (hour * 100 + minute % 60).astype("int64"),
        "dep_hour": hour.astype("int64"),
        "weekday": np.full(rows, day.weekday(), dtype="int64"),
        "month": np.full(rows, day.month, dtype="int64"),
        "dest": dest,
        "carrier": rng.choice(CARRIERS, rows, p=[0.3, 0.25, 0.2, 0.12, 0.08, 0.05]),
        "temp": temp,
        "hum": hum,
        "wind": wind,
    })
    empty = weather_nulls if weather_nulls is not None else float(rng.uniform(0.0, 0.04))
    gone = rng.random(rows) < empty
    frame.loc[gone, ["temp", "hum", "wind"]] = np.nan
    logit = (-1.6 + 0.6 * s + 0.04 * (hour - 14) + 0.03 * np.nan_to_num(wind, nan=12)
             + 0.3 * np.isin(dest, DESTINATIONS[:5]) + rng.normal(0, 0.3, rows))
    frame["delayed"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def generate_days(first: dt.date, days: int, rows: int = ROWS) -> pd.DataFrame:
    """Consecutive days in one frame (a sample, or a history export)."""
    return pd.concat([generate_day(first + dt.timedelta(days=i), rows) for i in range(days)], ignore_index=True)
