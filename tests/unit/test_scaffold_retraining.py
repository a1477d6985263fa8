"""The retraining and drift part of a scaffolded spec: the conditions on what hurts the
model are on, and columns that often hold one value a day are watched, not counted."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from mlops_lifecycle import cli, scaffold

START = dt.date(2026, 2, 1)


def _rentals(days: int = 21, rows: int = 48, seed: int = 5) -> pd.DataFrame:
    """Rentals over three weeks: a weather column that holds one value on many days, a
    busier weekend, a 0/1 label."""
    rng = np.random.default_rng(seed)
    frames = []
    for d in range(days):
        day = START + dt.timedelta(days=d)
        n = rows + (16 if day.weekday() >= 5 else 0)
        # Rain is reported once a day on most days (the station's daily summary).
        rain = np.full(n, float(rng.integers(0, 3))) if d % 3 else np.round(rng.gamma(1.0, 1.0, n), 1)
        frames.append(pd.DataFrame({
            "rental_id": [f"{day:%Y%m%d}-{i:04d}" for i in range(n)],
            "rented_at": pd.Timestamp(day) + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n)), unit="s"),
            "duration_min": np.round(rng.gamma(2.0, 12.0, n), 1),
            "rain_mm": rain,
            "station": rng.choice(["north", "south", "centre"], n),
        }))
    frame = pd.concat(frames, ignore_index=True)
    frame["late_return"] = (rng.random(len(frame)) < 0.2 + 0.004 * frame["duration_min"].clip(0, 60)).astype("int64")
    return frame


def test_a_scaffolded_spec_retrains_on_what_hurts_and_watches_daily_columns(tmp_path, data_dir, monkeypatch):
    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(specs))
    sample = tmp_path / "rentals.parquet"
    _rentals().to_parquet(sample, index=False)

    made = scaffold.new_model("rentals", sample, "late_return")

    spec, text = made.spec, made.spec_path.read_text()
    r, d = spec.retraining, spec.drift
    assert r.on_metric_drop and r.on_label_shift and r.label_days_required == 3
    assert r.metric_significance == r.label_shift_significance == 0.05
    assert 179 // r.cooldown_days + 1 <= 8, "no more than 8 requests in six months (days 0 to 179)"
    assert d.weight_by_importance and d.reference == "same_weekday" and d.reference_days == 14
    assert spec.feature("rain_mm").may_be_constant and d.watch_only == ["rain_mm"]
    assert "label_days_required: 3" in text and "watch_only: [rain_mm]" in text
    assert cli.main(["check"]) == 0
