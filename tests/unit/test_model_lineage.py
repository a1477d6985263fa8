"""What a registered version records about how it was made, and what that record protects.

A real lake and a champion trained through ``training.train_and_register`` (XGBoost,
MLflow on SQLite, Great Expectations): the version carries its feature layout, spec,
code and training fingerprint; scoring refuses a spec whose features no longer make
that layout (XGBoost itself would score shifted columns without a word); a champion
trained on an older layout is still judged on the challenger's holdout with its own
inputs; the same training is never registered twice; the run holds evaluation plots.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from bad_batches import build_lake_with_champion, isolated_stores, write_small_spec

from mlops_lifecycle import config, features, lake, registry, scoring, training
from mlops_lifecycle.spec import ModelSpec

START = dt.date(2026, 6, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(8, 0, -1)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("lineage")
    with isolated_stores(base):
        write_small_spec(base / "specs", training={"max_latency_ms_per_1k_rows": 10_000})
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        built = build_lake_with_champion(spec, HISTORY)
        assert built["decision"]["outcome"] == "promoted", built["decision"]
        yield {"spec": spec, **built}


def _with_weather(spec: ModelSpec, categories: list[str]) -> ModelSpec:
    data = spec.model_dump()
    for f in data["features"]:
        if f["name"] == "weather":
            f["categories"] = categories
    return ModelSpec.model_validate(data)


def test_a_version_records_its_layout_spec_code_and_training_fingerprint(world):
    spec = world["spec"]
    v = registry.get_version(spec, world["champion"]["version"])
    cols = features.feature_columns(spec)
    assert v.tags["features.sha256"] == features.layout_digest(cols)
    assert v.tags["spec.sha256"] == spec.sha256()
    assert v.tags["code.version"] == config.code_version()
    assert v.tags["code.fingerprint"] == config.code_fingerprint()
    window = training.assemble_window(spec, HISTORY[-1])
    assert v.tags["training.fingerprint"] == training.training_fingerprint(spec, window["data_version"])
    assert list(registry.load_model(spec, v.version).get_booster().feature_names) == cols
    import mlflow.artifacts

    assert mlflow.artifacts.load_dict(f"runs:/{v.run_id}/features/columns.json")["columns"] == cols


@pytest.mark.parametrize(
    ("categories", "says"),
    [
        (["cloudy", "clear", "rain", "snow", "storm"], "same columns in another order"),
        (["clear", "cloudy", "rain", "snow", "storm", "hail"], "added ['weather__hail']"),
        (["clear", "cloudy", "rain", "snow"], "removed ['weather__storm']"),
    ],
)
def test_scoring_refuses_a_spec_whose_features_no_longer_make_the_trained_layout(world, categories, says):
    spec, day = world["spec"], HISTORY[-1]
    changed = _with_weather(spec, categories)
    before = lake.data_file(spec.name, "predictions", day).read_bytes()
    scoring.materialize_features(changed, day)
    try:
        with pytest.raises(features.FeatureLayoutMismatch, match="trained on another feature layout") as err:
            scoring.score_partition(changed, day, version=world["champion"]["version"], airflow_run_id="layout-test")
        assert says in str(err.value) and "Retrain" in str(err.value)
        assert lake.data_file(spec.name, "predictions", day).read_bytes() == before  # nothing was written
    finally:
        scoring.materialize_features(spec, day)


def test_a_champion_on_an_older_layout_is_judged_with_its_own_inputs_on_the_same_holdout(world):
    spec = world["spec"]
    wider = _with_weather(spec, ["clear", "cloudy", "rain", "snow", "storm", "hail"])
    window = training.assemble_window(wider, HISTORY[-1])
    trained = training.train_and_register(wider, window, trigger={"reason": "new category", "by": "pytest"})
    champion = registry.champion(spec).version
    decision = training.compare_and_promote(wider, trained, actor="pytest", auto_promote=False)
    # The champion was scored (with its own 5-category layout) on the challenger's holdout:
    # the comparison has its metrics, whatever the outcome.
    assert decision["champion_version"] == champion
    assert decision["champion"] is not None and decision["champion"] > 0.5
    assert str(registry.champion(spec).version) == str(champion)
    registry.reject(spec, trained["version"], actor="pytest", reason="layout test done")


def test_the_same_training_is_found_and_a_changed_spec_is_not(world):
    spec = world["spec"]
    window = training.assemble_window(spec, HISTORY[-1])
    found = training.already_trained(spec, window)
    assert found is not None and str(found.version) == str(world["champion"]["version"])
    deeper = ModelSpec.model_validate({**spec.model_dump(), "training": {
        **spec.training.model_dump(), "xgboost": {**spec.training.xgboost, "max_depth": 2}}})
    assert training.already_trained(deeper, window) is None


def test_the_run_holds_holdout_plots_and_the_model_tests(world):
    spec = world["spec"]
    v = registry.get_version(spec, world["champion"]["version"])
    names = {a.path for a in registry.client().list_artifacts(v.run_id, "evaluation")}
    assert {"evaluation/roc_curve.png", "evaluation/precision_recall_curve.png", "evaluation/calibration.png",
            "evaluation/feature_importance.png", "evaluation/model_tests.json"} <= names
    import mlflow.artifacts

    tests = mlflow.artifacts.load_dict(f"runs:/{v.run_id}/evaluation/model_tests.json")
    assert set(tests["tests"]) == {"latency", "size"} and tests["slices"]
    summary = json.loads(json.dumps(mlflow.artifacts.load_dict(f"runs:/{v.run_id}/training/summary.json")))
    assert summary["holdout_metrics"]["roc_auc"] == pytest.approx(float(v.tags["holdout_roc_auc"]), abs=1e-6)
