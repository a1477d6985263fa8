"""Deterministic data generator for the built-in ``late_delivery`` example.

Each day is generated from its own seed (``seed`` + the date's ordinal), so any day
can be regenerated alone and always gives the same rows. A *shift* moves the
inputs into a heavier-traffic regime (more congestion and warehouse load, fewer
drivers) where lateness climbs steeply: a real covariate shift that a model trained
before it has barely seen. A *corrupt* day breaks the batch in the ways the
validation stage must catch.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_lifecycle.examples import landing

WEATHER = ["clear", "cloudy", "rain", "snow", "storm"]
WEATHER_P = [0.45, 0.25, 0.18, 0.07, 0.05]
WEATHER_EFFECT = {"clear": 0.0, "cloudy": 0.2, "rain": 0.9, "snow": 1.6, "storm": 2.2}
PACKAGE = ["standard", "fragile", "oversized", "express"]
PACKAGE_P = [0.6, 0.15, 0.1, 0.15]
PACKAGE_EFFECT = {"standard": 0.0, "fragile": 0.5, "oversized": 0.9, "express": -1.0}
REGION = ["north", "south", "east", "west", "central"]
REGION_P = [0.2, 0.2, 0.2, 0.15, 0.25]
REGION_EFFECT = {"north": 0.3, "south": -0.2, "east": 0.0, "west": 0.5, "central": -0.4}


def generate_day(ds: dt.date, *, rows: int = 1000, seed: int = 7, shift: float = 0.0) -> pd.DataFrame:
    """One day of dispatched packages with their outcome (``is_late``).

    Args:
        ds: the day; event times fall inside it and ids are unique to it.
        rows: expected number of rows (the actual count varies by a few percent).
        seed: base seed; the day's seed is ``seed + ds.toordinal()``.
        shift: 0 for the normal regime, 1 for the fully shifted one.
    """
    rng = np.random.default_rng(seed + ds.toordinal())
    n = int(rng.normal(rows, rows * 0.03))
    start = pd.Timestamp(ds)
    seconds = np.sort(rng.integers(0, 86_400, n))
    traffic = np.clip(rng.beta(2.0, 4.0, n) * 70 + shift * 30, 0, 100)
    workload = np.clip(rng.gamma(3.0, 2.0, n) + shift * 6, 0, 50)
    drivers = np.clip(rng.poisson(60 - shift * 30, n), 0, 500)
    frame = pd.DataFrame(
        {
            "package_id": [f"{ds:%Y%m%d}-{i:06d}" for i in range(n)],
            "dispatched_at": start + pd.to_timedelta(seconds, unit="s"),
            "distance_km": np.round(np.clip(rng.gamma(2.0, 15.0, n), 0.5, 390), 2),
            "weather": rng.choice(WEATHER, n, p=WEATHER_P),
            "traffic_index": np.round(traffic, 1),
            "warehouse_workload": np.round(workload, 2),
            "drivers_available": drivers.astype("int64"),
            "package_type": rng.choice(PACKAGE, n, p=PACKAGE_P),
            "delivery_region": rng.choice(REGION, n, p=REGION_P),
        }
    )
    congestion = np.clip(frame["traffic_index"] - 60, 0, None) / 8.0  # steep beyond 60
    logit = (
        -3.2
        + 0.03 * frame["distance_km"]
        + frame["weather"].map(WEATHER_EFFECT)
        + 0.02 * frame["traffic_index"]
        + congestion**1.5
        + 0.15 * frame["warehouse_workload"]
        - 0.03 * frame["drivers_available"]
        + frame["package_type"].map(PACKAGE_EFFECT)
        + frame["delivery_region"].map(REGION_EFFECT)
    )
    prob = 1 / (1 + np.exp(-logit))
    frame["is_late"] = (rng.random(n) < prob).astype("int64")
    return frame


CORRUPTION = landing.Corruption(
    drop="drivers_available",
    as_text="traffic_index",
    word="heavy",
    negate="distance_km",
    category="weather",
    unknown="hail",
    entity_id="package_id",
)


def corrupt(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Break a batch the way upstream systems do: a dropped column, text in a number
    column, negative distances, unknown categories and duplicated ids."""
    return CORRUPTION.apply(frame, seed)


shift_level = landing.shift_level


def write_landing(
    path_template: str,
    days: list[dt.date],
    *,
    rows: int = 1000,
    seed: int = 7,
    shift_start: dt.date | None = None,
    corrupt_days: tuple[dt.date, ...] = (),
) -> list[Path]:
    """Write one landing file per day (see :func:`landing.write_landing`)."""
    return landing.write_landing(
        generate_day,
        corrupt,
        path_template,
        days,
        rows=rows,
        seed=seed,
        shift_start=shift_start,
        corrupt_days=corrupt_days,
    )
