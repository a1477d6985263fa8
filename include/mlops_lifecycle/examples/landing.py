"""What the built-in examples share: breaking a batch the way upstream systems do, and
writing one landing file per day the way an upstream export would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Corruption:
    """How an example's corrupted day is broken (the columns differ per example)."""

    drop: str  # a column the export forgot
    as_text: str  # a number column exported as text...
    word: str  # ...with this word in some rows
    negate: str  # a column that must not be negative
    category: str  # a categorical column...
    unknown: str  # ...that gets a value outside its allowed set
    entity_id: str  # an id column that gets duplicates

    def apply(self, frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
        """A dropped column, text in a number column, negative values, unknown categories
        and duplicated ids, each in a few rows chosen by ``seed``."""
        rng = np.random.default_rng(seed)
        bad = frame.drop(columns=[self.drop]).copy()
        idx = rng.choice(len(bad), 25, replace=False)
        bad[self.as_text] = bad[self.as_text].astype(str)
        bad.loc[bad.index[idx[:5]], self.as_text] = self.word
        bad.loc[bad.index[idx[5:12]], self.negate] = -bad.loc[bad.index[idx[5:12]], self.negate]
        bad.loc[bad.index[idx[12:18]], self.category] = self.unknown
        bad.loc[bad.index[idx[18:25]], self.entity_id] = bad[self.entity_id].iloc[0]
        return bad


def shift_level(ds: dt.date, shift_start: dt.date | None) -> float:
    """Shift intensity for a day: 0 before ``shift_start``, 1 from it on."""
    return 1.0 if shift_start is not None and ds >= shift_start else 0.0


def write_landing(
    generate_day: Callable[..., pd.DataFrame],
    corrupt: Callable[[pd.DataFrame, int], pd.DataFrame],
    path_template: str,
    days: list[dt.date],
    *,
    rows: int,
    seed: int,
    shift_start: dt.date | None,
    corrupt_days: tuple[dt.date, ...],
) -> list[Path]:
    """Write one landing file per day (Parquet, or CSV when the template ends in .csv).

    ``path_template`` is an already-resolved template with ``{ds}`` (or ``{ds_nodash}``) left in it.
    """
    from mlops_lifecycle import lake

    written = []
    for day in days:
        frame = generate_day(day, rows=rows, seed=seed, shift=shift_level(day, shift_start))
        if day in corrupt_days:
            frame = corrupt(frame, day.toordinal())
        target = Path(path_template.format(ds=day.isoformat(), ds_nodash=day.strftime("%Y%m%d")))
        if target.suffix == ".csv":
            with lake.atomic_path(target) as tmp:
                frame.to_csv(tmp, index=False)
        else:
            lake.write_parquet(target, frame)
        written.append(target)
    return written
