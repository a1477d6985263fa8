"""Feature computation is deterministic and independent of which categories a batch holds."""

from __future__ import annotations

import datetime as dt

import numpy as np

from mlops_lifecycle import features
from mlops_lifecycle.examples.late_delivery import generate_day


def test_matrix_layout_follows_the_spec(example_spec):
    frame = generate_day(dt.date(2026, 3, 1), rows=50)
    m = features.build_matrix(example_spec, frame)
    cols = features.feature_columns(example_spec)
    assert m.dtype == np.float32 and m.shape == (len(frame), len(cols))
    assert cols[:2] == ["distance_km", "weather__clear"]
    weather = m[:, [cols.index(f"weather__{c}") for c in example_spec.feature("weather").categories]]
    assert (weather.sum(axis=1) == 1).all()


def test_same_rows_give_same_features_in_any_batch(example_spec):
    frame = generate_day(dt.date(2026, 3, 1), rows=200)
    whole = features.build_matrix(example_spec, frame)
    subset = frame[frame["weather"] == "storm"]
    part = features.build_matrix(example_spec, subset)
    np.testing.assert_array_equal(part, whole[(frame["weather"] == "storm").to_numpy()])


def test_missing_feature_column_is_named(example_spec):
    frame = generate_day(dt.date(2026, 3, 1), rows=20).drop(columns=["traffic_index"])
    try:
        features.build_matrix(example_spec, frame)
    except KeyError as exc:
        assert "traffic_index" in str(exc)
    else:
        raise AssertionError("expected KeyError")
