"""Custom feature functions: one function serves training and scoring, its layout is
fixed, it never sees the label, and a row gets the same features in any batch."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_lifecycle import features, lake
from mlops_lifecycle.examples import retail_demand
from mlops_lifecycle.spec import ModelSpec, SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "dags" / "specs" / "retail_demand.yaml"
DAY = dt.date(2026, 3, 2)


@pytest.fixture
def retail_spec() -> ModelSpec:
    return load_spec(RETAIL)


def _with_function(spec: ModelSpec, path: str) -> ModelSpec:
    data = spec.model_dump()
    data["features_function"] = path
    return ModelSpec.model_validate(data)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A throwaway module of feature functions, importable as ``user_feats``."""
    (tmp_path / "user_feats.py").write_text(
        textwrap.dedent("""
        import pandas as pd
        from mlops_lifecycle import features

        def scaled(frame, spec):
            # Depends on the batch: z-scores against the batch's own mean.
            out = features.default_features(spec, frame)
            out["price_z"] = (frame["price"] - frame["price"].mean()) / frame["price"].std()
            return out

        def dummies(frame, spec):
            return pd.get_dummies(frame[["store_format"]], dtype=float).set_index(frame.index)

        def text_column(frame, spec):
            out = features.default_features(spec, frame)
            out["store_format"] = frame["store_format"]
            return out

        def drops_rows(frame, spec):
            return features.default_features(spec, frame).iloc[1:]

        def sees_label(frame, spec):
            out = features.default_features(spec, frame)
            out["label_seen"] = float(spec.target.column in frame.columns)
            return out

        def one_argument(frame):
            return frame
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_feats"
    import sys

    sys.modules.pop("user_feats", None)


def test_spec_names_its_feature_function(retail_spec):
    assert retail_spec.features_function == "mlops_lifecycle.examples.retail_demand:build_features"
    cols = features.feature_columns(retail_spec)
    assert cols[: len(features.default_feature_columns(retail_spec))] == features.default_feature_columns(
        retail_spec
    )
    assert cols[-4:] == ["tomorrow_day_of_week", "tomorrow_is_weekend", "stock_cover_days", "promotion_depth"]


@pytest.mark.parametrize(
    "bad", ["no_colon", "pkg.mod:", "pkg..mod:fn", "pkg.mod:fn()", "os; rm -rf /:x", "../x:y"]
)
def test_unsafe_function_path_is_rejected_with_file_and_field(tmp_path, bad):
    data = yaml.safe_load(RETAIL.read_text())
    data["features_function"] = bad
    path = tmp_path / "retail_demand.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and "features_function" in str(err.value)


def test_matrix_matches_the_functions_frame(retail_spec):
    frame = retail_demand.generate_day(DAY, rows=200)
    feats = features.build_features(retail_spec, frame)
    matrix = features.build_matrix(retail_spec, frame)
    assert matrix.dtype == np.float32 and matrix.shape == (
        len(frame),
        len(features.feature_columns(retail_spec)),
    )
    np.testing.assert_array_equal(matrix, feats.to_numpy(dtype=np.float32))
    # Tomorrow (2026-03-03) is a Tuesday.
    assert set(feats["tomorrow_day_of_week"]) == {1.0} and set(feats["tomorrow_is_weekend"]) == {0.0}


def test_retail_features_do_not_depend_on_the_batch(retail_spec):
    frame = pd.concat(
        [retail_demand.generate_day(DAY + dt.timedelta(days=i), rows=150) for i in range(3)],
        ignore_index=True,
    )
    features.check_batch_independence(retail_spec, frame)


def test_batch_dependent_function_is_caught(retail_spec, user_module):
    spec = _with_function(retail_spec, f"{user_module}:scaled")
    frame = pd.concat(
        [retail_demand.generate_day(DAY + dt.timedelta(days=i), rows=100) for i in range(2)],
        ignore_index=True,
    )
    with pytest.raises(features.FeatureFunctionError, match=r"price_z.*differ"):
        features.check_batch_independence(spec, frame)


def test_layout_that_depends_on_the_batch_fails_loudly(retail_spec, user_module):
    spec = _with_function(retail_spec, f"{user_module}:dummies")
    frame = retail_demand.generate_day(DAY, rows=200)
    # The probe holds two formats; a real day holds three, so get_dummies grows a column.
    with pytest.raises(features.FeatureFunctionError, match=r"unexpected \['store_format_supermarket'\]"):
        features.build_matrix(spec, frame)


@pytest.mark.parametrize(
    ("function", "needle"),
    [
        ("text_column", "numeric or bool"),
        ("drops_rows", "one row per input row"),
        ("one_argument", "two arguments"),
        ("missing_function", "has no function 'missing_function'"),
    ],
)
def test_broken_function_is_named(retail_spec, user_module, function, needle):
    spec = _with_function(retail_spec, f"{user_module}:{function}")
    with pytest.raises(features.FeatureFunctionError) as err:
        features.build_matrix(spec, retail_demand.generate_day(DAY, rows=50))
    assert needle in str(err.value) and spec.name in str(err.value)


def test_unimportable_module_is_named(retail_spec):
    spec = _with_function(retail_spec, "no_such_package.features:build")
    with pytest.raises(
        features.FeatureFunctionError, match="cannot import module 'no_such_package.features'"
    ):
        features.feature_columns(spec)


def test_function_never_sees_the_label(retail_spec, user_module):
    spec = _with_function(retail_spec, f"{user_module}:sees_label")
    frame = retail_demand.generate_day(DAY, rows=50)
    assert spec.target.column in frame.columns
    assert set(features.build_features(spec, frame)["label_seen"]) == {0.0}


def test_scored_day_gets_exactly_the_training_features(retail_spec, data_dir):
    """The daily path (materialize_features, read back by scoring) and the training path
    (assemble_window, time_split, build_matrix) give every row identical inputs."""
    from mlops_lifecycle import scoring, training

    days = [DAY + dt.timedelta(days=i) for i in range(5)]
    for d in days:
        lake.write_parquet(
            lake.data_file(retail_spec.name, "validated", d), retail_demand.generate_day(d, rows=500)
        )
    scored_day = days[-1]
    scoring.materialize_features(retail_spec, scored_day)
    daily = pd.read_parquet(lake.data_file(retail_spec.name, "features", scored_day))

    window = training.assemble_window(retail_spec, scored_day)
    split = training.time_split(retail_spec, pd.read_parquet(window["path"]))
    holdout = split["holdout"]
    assert split["dates"]["holdout"] == [scored_day.isoformat()] * 2
    trained = features.build_matrix(retail_spec, holdout)

    cols = features.feature_columns(retail_spec)
    daily = daily.set_index(retail_spec.entity_id).loc[holdout[retail_spec.entity_id]]
    # What scoring reads back from the features partition and feeds the model.
    scored = np.ascontiguousarray(daily[cols].to_numpy(dtype=np.float32))
    assert scored.shape == trained.shape and len(scored) > 400
    np.testing.assert_array_equal(scored, trained)
