"""Deterministic data generator and feature function for the ``retail_demand`` example.

The question: how many units of a product will a store sell tomorrow? Each row is one
(store, product) pair as the store closes on day D: its price and promotion for
tomorrow, today's sales, the last week's average and the stock on hand for tomorrow;
the label is the units sold on D+1, which stock caps (a stock-out sells what is there).

Each day is generated from its own seed (``seed`` + the date's ordinal), so any day can
be regenerated alone and always gives the same rows. A *shift* models an inflation and
price-war regime: list prices rise, promotions become more frequent and deeper, and
shoppers respond to discounts more strongly than before, a covariate shift with a
concept change in it. A *corrupt* day breaks the batch the ways validation must catch.

:func:`build_features` is the example's ``features_function``: the built-in encoding plus
tomorrow's day of week (derived from the event time, since a day's batch holds one
value of it), how many days of sales the stock covers, and the promotion depth.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops_lifecycle.examples import landing

if TYPE_CHECKING:
    from mlops_lifecycle.spec import ModelSpec

STORES = [f"S{i:02d}" for i in range(1, 13)]
STORE_FORMAT = {
    **{s: "hypermarket" for s in STORES[:3]},
    **{s: "supermarket" for s in STORES[3:8]},
    **{s: "convenience" for s in STORES[8:]},
}
FORMAT_SIZE = {"hypermarket": 2.2, "supermarket": 1.0, "convenience": 0.45}
FORMATS = ["hypermarket", "supermarket", "convenience"]
CATEGORIES = ["grocery", "dairy", "bakery", "produce", "beverages", "household", "personal_care"]
CATEGORY_P = [0.24, 0.16, 0.1, 0.16, 0.14, 0.1, 0.1]
CATEGORY_RATE = {
    "grocery": 14.0,
    "dairy": 18.0,
    "bakery": 22.0,
    "produce": 16.0,
    "beverages": 12.0,
    "household": 5.0,
    "personal_care": 4.0,
}
CATEGORY_PRICE = {
    "grocery": 3.5,
    "dairy": 2.4,
    "bakery": 2.8,
    "produce": 2.0,
    "beverages": 4.0,
    "household": 8.5,
    "personal_care": 9.5,
}
# Monday..Sunday: weekends sell more.
DOW_EFFECT = np.array([0.88, 0.84, 0.9, 0.98, 1.12, 1.38, 1.05])


def generate_day(ds: dt.date, *, rows: int = 1000, seed: int = 11, shift: float = 0.0) -> pd.DataFrame:
    """One day of (store, product) rows with tomorrow's sales (``units_sold_next_day``).

    Args:
        ds: the day of the snapshot; event times fall inside it, ids are unique to it.
        rows: expected number of rows (the actual count varies by a few percent).
        seed: base seed; the day's seed is ``seed + ds.toordinal()``.
        shift: 0 for the normal regime, 1 for the inflation / price-war regime.
    """
    rng = np.random.default_rng(seed + ds.toordinal())
    n = int(rng.normal(rows, rows * 0.03))
    store = rng.choice(STORES, n)
    fmt = np.array([STORE_FORMAT[s] for s in store])
    category = rng.choice(CATEGORIES, n, p=CATEGORY_P)
    popularity = rng.lognormal(0.0, 0.55, n)
    base_rate = (
        np.array([CATEGORY_RATE[c] for c in category]) * np.array([FORMAT_SIZE[f] for f in fmt]) * popularity
    )

    list_price = (
        np.array([CATEGORY_PRICE[c] for c in category]) * rng.lognormal(0.0, 0.3, n) * (1 + 0.3 * shift)
    )
    on_promotion = rng.random(n) < (0.18 + 0.27 * shift)
    markdown = rng.random(n) < 0.12
    discount = np.where(
        on_promotion,
        rng.uniform(0.1, 0.35 + 0.15 * shift, n),
        np.where(markdown, rng.uniform(0.05, 0.15, n), 0.0),
    )
    price = list_price * (1 - discount)

    today = ds.weekday()
    tomorrow = (ds + dt.timedelta(days=1)).weekday()
    sales_today = rng.poisson(base_rate * DOW_EFFECT[today])
    sales_7d_avg = rng.poisson(base_rate * DOW_EFFECT.sum()) / 7.0
    stock = rng.poisson(base_rate * rng.uniform(0.5, 2.6, n))

    elasticity = 2.2 + 2.0 * shift  # price-war shoppers chase discounts harder
    uplift = (1 + elasticity * discount) * np.where(on_promotion, 1.35, 1.0)
    # Dearer lists sell less; after the shift shoppers trade down further.
    price_drag = (list_price / (np.array([CATEGORY_PRICE[c] for c in category]) * (1 + 0.3 * shift))) ** -(
        0.5 + 0.4 * shift
    )
    rate_tomorrow = (
        base_rate
        * DOW_EFFECT[tomorrow]
        * uplift
        * price_drag
        * (1 - 0.15 * shift)
        * rng.lognormal(0, 0.12, n)
    )
    demand = rng.poisson(rate_tomorrow)
    sold = np.minimum(demand, stock)

    seconds = np.sort(rng.integers(19 * 3600, 23 * 3600, n))  # stores report as they close
    return pd.DataFrame(
        {
            "forecast_id": [f"{ds:%Y%m%d}-{i:06d}" for i in range(n)],
            "snapshot_at": pd.Timestamp(ds) + pd.to_timedelta(seconds, unit="s"),
            "store_id": store,
            "store_format": fmt,
            "product_category": category,
            "list_price": np.round(list_price, 2),
            "price": np.round(price, 2),
            "discount_pct": np.round(discount, 3),
            "on_promotion": on_promotion,
            "units_sold_today": sales_today.astype("int64"),
            "units_sold_7d_avg": np.round(sales_7d_avg, 2),
            "stock_on_hand": stock.astype("int64"),
            "units_sold_next_day": sold.astype("int64"),
        }
    )


CORRUPTION = landing.Corruption(
    drop="stock_on_hand",
    as_text="units_sold_7d_avg",
    word="n/a",
    negate="price",
    category="product_category",
    unknown="toys",
    entity_id="forecast_id",
)


def corrupt(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Break a batch the way upstream systems do: a dropped column, text in a number
    column, negative prices, unknown categories and duplicated ids."""
    return CORRUPTION.apply(frame, seed)


shift_level = landing.shift_level


def write_landing(
    path_template: str,
    days: list[dt.date],
    *,
    rows: int = 1000,
    seed: int = 11,
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


def build_features(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The ``retail_demand`` model inputs: the built-in encoding plus three derived columns.

    Every value comes from its own row, so a row gets the same features in a training
    window as in its day's scoring batch.
    """
    from mlops_lifecycle import features

    out = features.default_features(spec, frame)
    tomorrow = frame[spec.event_time] + pd.Timedelta(days=1)
    out["tomorrow_day_of_week"] = tomorrow.dt.dayofweek.astype("float32")
    out["tomorrow_is_weekend"] = (tomorrow.dt.dayofweek >= 5).astype("float32")
    out["stock_cover_days"] = (frame["stock_on_hand"] / (frame["units_sold_7d_avg"] + 1.0)).astype("float32")
    out["promotion_depth"] = (frame["discount_pct"] * frame["on_promotion"]).astype("float32")
    return out
