"""Two models side by side through the real DAGs: the late_delivery classifier and the
retail_demand regressor (with its own feature function) share one Airflow, one MLflow
store and one lake, and nothing else: not an experiment, a registered model, a
partition or a report.

Real Airflow (``DAG.test``), MLflow (SQLite), Great Expectations, Evidently and
XGBoost on small data. Both models: seeded history, day 1 trains v1 (no champion yet),
day 2 is scored by it.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from e2e_specs import ROOT, isolated_stores, write_small_spec

pytestmark = pytest.mark.e2e

START = dt.date(2026, 3, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(12, 0, -1)]
DAYS = [START, START + dt.timedelta(days=1)]
MODELS = ("late_delivery", "retail_demand")

RETAIL_SMALL = {
    "training": {
        "window_days": 20,
        "validation_days": 1,
        "holdout_days": 1,
        "holdout_min_rows": 200,  # one day, as e2e_specs.SMALL: the story is day 1 trains, day 2 scores
        "min_rows": 600,
        "slice_column": "store_format",
        "early_stopping_rounds": 10,
        "reference_rows": 400,
        "xgboost": {"n_estimators": 120, "max_depth": 5, "learning_rate": 0.15, "tree_method": "hist"},
    },
    "validation": {
        "min_rows": 50,
        "volume_lookback_days": 5,
        "volume_max_ratio": 3.0,
        "volume_min_ratio": 0.3,
    },
    "retraining": {"cooldown_days": 7, "drift_days_required": 2, "min_rows": 400},
}


def write_small_retail_spec(specs_dir):
    data = yaml.safe_load((ROOT / "dags" / "specs" / "retail_demand.yaml").read_text())
    data.update(RETAIL_SMALL)
    path = specs_dir / "retail_demand.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, airflow_db):
    base = tmp_path_factory.mktemp("two_models")
    with isolated_stores(base):
        write_small_spec(base / "specs")
        write_small_retail_spec(base / "specs")

        from mlops_lifecycle import ingestion, replay, validation
        from mlops_lifecycle.examples import late_delivery, retail_demand
        from mlops_lifecycle.spec import get_spec

        specs = {m: get_spec(m) for m in MODELS}
        generators = {"late_delivery": late_delivery, "retail_demand": retail_demand}
        for name, spec in specs.items():
            template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
            generators[name].write_landing(template, HISTORY + DAYS, rows=300)
            for d in HISTORY:  # the stage functions, without Data Docs pages (the DAG runs render those)
                ingestion.ingest(spec, d)
                validation.validate_partition(spec, d, docs=False)
        dags = {name: replay.load_dags(spec) for name, spec in specs.items()}
        for spec in specs.values():
            replay.clear_runs(spec)

        record: dict = {"specs": specs, "base": base, "days": {}}
        for d in DAYS:
            for name, spec in specs.items():
                result = replay.run_day(spec, dags[name], d)
                record["days"][(name, d)] = result
        # The training path, for comparing with what the daily path fed the model on day 2.
        from mlops_lifecycle import training

        retail = specs["retail_demand"]
        window = training.assemble_window(retail, DAYS[1], window_days=5)
        record["retail_training_split"] = training.time_split(retail, pd.read_parquet(window["path"]))
        yield record


def _state(result) -> str:
    return result.daily_state.replace("DagRunState.", "")


def test_both_models_train_on_day_one_and_score_day_two(two_models):
    from mlops_lifecycle import lake, registry

    for name, spec in two_models["specs"].items():
        day1, day2 = two_models["days"][(name, DAYS[0])], two_models["days"][(name, DAYS[1])]
        assert day1.tasks["trigger_first_training"].endswith("success"), (name, day1.tasks)
        assert [str(r["state"]).lower().endswith("success") for r in day1.retrain_runs] == [True], (
            day1.retrain_runs
        )
        assert _state(day2) == "success", (name, day2.tasks)
        assert str(registry.champion(spec).version) == "1"
        manifest = json.loads(
            (lake.partition_dir(name, "predictions", DAYS[1]) / "manifest.json").read_text()
        )
        assert manifest["model_version"] == 1 and manifest["rows"] > 250


def test_separate_experiments_and_registered_models(two_models):
    import mlflow

    from mlops_lifecycle import registry

    client = registry.client()
    experiments = {}
    for name, spec in two_models["specs"].items():
        exp = client.get_experiment_by_name(name)
        assert exp is not None, f"no experiment for {name}"
        experiments[name] = exp.experiment_id
        v1 = registry.get_version(spec, 1)
        assert v1.name == spec.model_name == name
        run = mlflow.get_run(v1.run_id)
        assert run.info.experiment_id == exp.experiment_id and run.data.tags["spec.name"] == name
        runs = client.search_runs([exp.experiment_id])
        assert runs and {r.data.tags.get("spec.name") for r in runs} == {name}
    assert len(set(experiments.values())) == 2
    assert sorted(m.name for m in client.search_registered_models()) == sorted(MODELS)


def test_regressor_is_evaluated_with_regression_metrics(two_models):
    import mlflow

    from mlops_lifecycle import registry

    retail = two_models["specs"]["retail_demand"]
    run = mlflow.get_run(registry.get_version(retail, 1).run_id)
    metrics = run.data.metrics
    assert {"holdout_rmse", "holdout_mae", "holdout_r2", "val_rmse"} <= set(metrics)
    assert "holdout_roc_auc" not in metrics
    assert metrics["holdout_rmse"] <= retail.promotion.floor and metrics["holdout_r2"] > 0.5
    assert any(k.startswith("slice.store_format.") and k.endswith(".rmse") for k in metrics)
    assert registry.get_version(retail, 1).tags["holdout_rmse"]


def test_partitions_and_reports_stay_in_their_own_folders(two_models):
    from mlops_lifecycle import lake

    own_id = {"late_delivery": "package_id", "retail_demand": "forecast_id"}
    for name in MODELS:
        other = next(m for m in MODELS if m != name)
        assert lake.partitions(name, "validated") == HISTORY + DAYS
        validated = pd.read_parquet(lake.data_file(name, "validated", DAYS[1]))
        assert own_id[name] in validated.columns and own_id[other] not in validated.columns
        preds = pd.read_parquet(lake.data_file(name, "predictions", DAYS[1]))
        assert set(preds["model_name"]) == {name} and own_id[name] in preds.columns
        assert preds[own_id[name]].isin(validated[own_id[name]]).all()
        result = json.loads((lake.report_dir(name, "validation", DAYS[1]) / "result.json").read_text())
        assert result["model"] == name and result["suite"] == f"{name}.batch"
        summary = json.loads((lake.report_dir(name, "drift", DAYS[1]) / "summary.json").read_text())
        assert summary["model"] == name and set(summary["columns"]) <= set(
            two_models["specs"][name].feature_names
        )
        assert (lake.report_dir(name, "drift", DAYS[1]) / "report.html").exists()
    retail_preds = pd.read_parquet(lake.data_file("retail_demand", "predictions", DAYS[1]))
    assert "predicted_label" not in retail_preds.columns  # a regressor predicts amounts, not labels
    assert (
        "predicted_label" in pd.read_parquet(lake.data_file("late_delivery", "predictions", DAYS[1])).columns
    )


def test_scored_rows_got_exactly_their_training_features(two_models):
    """Day 2 as the daily DAG featurised and scored it, against the same rows through the
    training path (assemble_window -> time_split -> build_matrix)."""
    from mlops_lifecycle import features, lake

    spec = two_models["specs"]["retail_demand"]
    holdout = two_models["retail_training_split"]["holdout"]
    assert set(holdout[spec.event_time].dt.date) == {DAYS[1]}
    trained = features.build_matrix(spec, holdout)
    daily = pd.read_parquet(lake.data_file(spec.name, "features", DAYS[1])).set_index(spec.entity_id)
    scored = daily.loc[holdout[spec.entity_id], features.feature_columns(spec)].to_numpy(dtype=np.float32)
    assert scored.shape == trained.shape and len(scored) > 250
    np.testing.assert_array_equal(scored, trained)
    # ...and the predictions on file are the champion's predictions on exactly those inputs.
    from mlops_lifecycle import evaluation, registry

    model = registry.load_model(spec, 1)
    preds = pd.read_parquet(lake.data_file(spec.name, "predictions", DAYS[1])).set_index(spec.entity_id)
    np.testing.assert_allclose(
        preds.loc[holdout[spec.entity_id], "prediction"].to_numpy(),
        evaluation.predict(spec, model, trained),
        rtol=1e-6,
    )
