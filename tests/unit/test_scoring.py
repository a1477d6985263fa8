"""Streaming batch scoring: same predictions as in-memory scoring, chunked by row groups
and files, idempotent parts committed together, lineage in the manifest.

Real XGBoost, MLflow (a SQLite store per test) and Parquet; a few thousand rows.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlops_lifecycle import features, lake, scoring
from mlops_lifecycle.examples import late_delivery

DAY = dt.date(2026, 3, 1)
EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "dags" / "specs" / "late_delivery.yaml"
RUN = "manual__2026-03-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """One MLflow store with a registered model (v1) for the whole module: creating a
    store and logging a model is the slow part, and no test changes them."""
    import mlflow.xgboost
    import xgboost as xgb

    from mlops_lifecycle import registry
    from mlops_lifecycle.spec import load_spec

    data = tmp_path_factory.mktemp("scoring") / "data"
    spec = load_spec(EXAMPLE_SPEC)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(data))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        train = late_delivery.generate_day(DAY - dt.timedelta(days=1), rows=2000)
        model = xgb.XGBClassifier(n_estimators=20, max_depth=3, tree_method="hist", random_state=0)
        model.fit(features.build_matrix(spec, train), train["is_late"])
        # The model's own experiment (artifacts under the lake), never the default
        # experiment 0, whose artifact root is ./mlruns in the working directory.
        with mlflow.start_run(experiment_id=registry.ensure_experiment(spec)):
            mlflow.xgboost.log_model(model, name="model", registered_model_name=spec.model_name)
    return {"data": data, "spec": spec, "booster": model.get_booster()}


@pytest.fixture
def scored_setup(registered, monkeypatch):
    """The module's model and a fresh lake holding a validated day of ~1500 rows,
    featurised in row groups of 100."""
    import shutil

    data, spec = registered["data"], registered["spec"]
    monkeypatch.setenv("MLOPS_DATA_DIR", str(data))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.rmtree(data / "lake", ignore_errors=True)
    day = late_delivery.generate_day(DAY, rows=1500)
    lake.write_parquet(lake.data_file(spec.name, "validated", DAY), day)
    monkeypatch.setenv("MLOPS_FEATURES_ROW_GROUP_ROWS", "100")
    scoring.materialize_features(spec, DAY)
    expected = registered["booster"].inplace_predict(features.build_matrix(spec, day))
    return {"spec": spec, "day": day, "expected": expected}


def _read_predictions(spec):
    return pd.read_parquet(lake.data_file(spec.name, "predictions", DAY))


def test_features_are_written_in_row_groups_with_lineage(scored_setup):
    spec, day = scored_setup["spec"], scored_setup["day"]
    path = lake.data_file(spec.name, "features", DAY)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == len(day) and meta.num_row_groups == -(-len(day) // 100)
    frame = pd.read_parquet(path)
    assert list(frame.columns) == [spec.entity_id, spec.event_time, *features.feature_columns(spec)]
    np.testing.assert_array_equal(frame[features.feature_columns(spec)].to_numpy(), features.build_matrix(spec, day))
    lineage = json.loads((path.parent / scoring.LINEAGE_FILE).read_text())
    assert lineage["files"]["data.parquet"]["sha256"] == lake.file_sha256(path)
    assert lineage["validated"]["sha256"] == lake.file_sha256(lake.data_file(spec.name, "validated", DAY))


def test_streamed_scoring_equals_in_memory_prediction(scored_setup):
    spec, day = scored_setup["spec"], scored_setup["day"]
    out = scoring.score_partition(spec, DAY, version="1", airflow_run_id=RUN)
    preds = _read_predictions(spec)
    assert out["rows"] == len(day) == len(preds)
    assert list(preds.columns) == ["package_id", "dispatched_at", "prediction", "predicted_label", "model_name",
                                   "model_version", "mlflow_run_id", "airflow_run_id"]
    assert list(preds["package_id"]) == list(day["package_id"])
    assert (preds["dispatched_at"].to_numpy() == day["dispatched_at"].to_numpy()).all()
    np.testing.assert_array_equal(preds["prediction"].to_numpy(), scored_setup["expected"])
    assert (preds["predicted_label"] == (scored_setup["expected"] >= 0.5)).all()
    assert set(preds["model_version"]) == {1} and set(preds["airflow_run_id"]) == {RUN}
    assert set(preds["model_name"]) == {spec.model_name}
    manifest = json.loads((lake.partition_dir(spec.name, "predictions", DAY) / "manifest.json").read_text())
    assert manifest["rows"] == len(day) and manifest["model_version"] == 1 and manifest["code_version"]
    assert manifest["features_sha256"] == lake.file_sha256(lake.data_file(spec.name, "features", DAY))
    assert manifest["validated_sha256"] == lake.file_sha256(lake.data_file(spec.name, "validated", DAY))


def test_plan_makes_one_chunk_for_a_small_day_and_row_group_ranges_for_a_large_one(scored_setup):
    spec, day = scored_setup["spec"], scored_setup["day"]
    assert [(c["row_groups"], c["rows"]) for c in scoring.plan_scoring(spec, DAY)] == [([0, -(-len(day) // 100)], len(day))]
    chunks = scoring.plan_scoring(spec, DAY, max_rows=350)
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    assert all(c["rows"] <= 350 for c in chunks) and sum(c["rows"] for c in chunks) == len(day)
    # Contiguous, non-overlapping row-group ranges covering the file.
    assert chunks[0]["row_groups"][0] == 0
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a["row_groups"][1] == b["row_groups"][0]


def test_mapped_chunks_committed_together_equal_the_single_call(scored_setup):
    spec = scored_setup["spec"]
    scoring.score_partition(spec, DAY, version="1", airflow_run_id=RUN)
    single = _read_predictions(spec)
    chunks = scoring.plan_scoring(spec, DAY, max_rows=300)
    assert len(chunks) > 3
    parts = [scoring.score_chunk(spec, DAY, c, version="1", airflow_run_id=RUN) for c in reversed(chunks)]
    out = scoring.commit_predictions(spec, DAY, parts, version="1", airflow_run_id=RUN)
    pd.testing.assert_frame_equal(_read_predictions(spec), single)
    assert out["rows"] == len(single)
    manifest = json.loads((lake.partition_dir(spec.name, "predictions", DAY) / "manifest.json").read_text())
    assert manifest["chunks"] == len(chunks)
    assert not lake.staging_dir(spec.name, "predictions", DAY, RUN).exists(), "staging is cleaned after the commit"


def test_a_rescored_chunk_rewrites_the_same_part(scored_setup):
    spec = scored_setup["spec"]
    chunk = scoring.plan_scoring(spec, DAY, max_rows=300)[1]
    first = scoring.score_chunk(spec, DAY, chunk, version="1", airflow_run_id=RUN)
    again = scoring.score_chunk(spec, DAY, chunk, version="1", airflow_run_id=RUN)
    assert first == again
    staged = sorted(p.name for p in lake.staging_dir(spec.name, "predictions", DAY, RUN).rglob("*") if p.is_file())
    assert staged == ["part-00001.parquet"], "a retry leaves one part, no temporary files"


def test_a_partition_of_many_files_is_scored_across_them(scored_setup):
    spec, expected = scored_setup["spec"], scored_setup["expected"]
    folder = lake.partition_dir(spec.name, "features", DAY)
    whole = pq.read_table(folder / "data.parquet")
    (folder / "data.parquet").unlink()
    for i, start in enumerate(range(0, whole.num_rows, 600)):
        pq.write_table(whole.slice(start, 600), folder / f"part-{i}.parquet", row_group_size=200)
    chunks = scoring.plan_scoring(spec, DAY, max_rows=400)
    assert [c["file"] for c in chunks] == ["part-0.parquet"] * 2 + ["part-1.parquet"] * 2 + ["part-2.parquet"]
    parts = [scoring.score_chunk(spec, DAY, c, version="1", airflow_run_id=RUN) for c in chunks]
    scoring.commit_predictions(spec, DAY, parts, version="1", airflow_run_id=RUN)
    np.testing.assert_array_equal(_read_predictions(spec)["prediction"].to_numpy(), expected)
    manifest = json.loads((folder.parent.parent / "predictions" / f"ds={DAY}" / "manifest.json").read_text())
    assert [f["file"] for f in manifest["features_files"]] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert manifest["features_files"][1]["sha256"] == lake.file_sha256(folder / "part-1.parquet")


def test_commit_refuses_an_incomplete_set_of_parts_and_keeps_the_old_output(scored_setup):
    spec = scored_setup["spec"]
    scoring.score_partition(spec, DAY, version="1", airflow_run_id="earlier_run")
    before = lake.data_file(spec.name, "predictions", DAY).read_bytes()
    chunks = scoring.plan_scoring(spec, DAY, max_rows=300)
    parts = [scoring.score_chunk(spec, DAY, c, version="1", airflow_run_id=RUN) for c in chunks]
    with pytest.raises(ValueError, match="not one complete set"):
        scoring.commit_predictions(spec, DAY, parts[:1] + parts[2:], version="1", airflow_run_id=RUN)
    assert lake.data_file(spec.name, "predictions", DAY).read_bytes() == before


def test_a_changed_features_file_is_hashed_again(scored_setup):
    spec = scored_setup["spec"]
    path = lake.data_file(spec.name, "features", DAY)
    table = pq.read_table(path)
    pq.write_table(table, path, row_group_size=500)  # same rows, other bytes, lineage.json now stale
    scoring.score_partition(spec, DAY, version="1", airflow_run_id=RUN)
    manifest = json.loads((lake.partition_dir(spec.name, "predictions", DAY) / "manifest.json").read_text())
    assert manifest["features_sha256"] == lake.file_sha256(path)


def test_missing_features_and_missing_columns_are_named(scored_setup):
    spec = scored_setup["spec"]
    with pytest.raises(FileNotFoundError, match="no features to score .* did compute_features run"):
        scoring.plan_scoring(spec, DAY + dt.timedelta(days=1))
    path = lake.data_file(spec.name, "features", DAY)
    pq.write_table(pq.read_table(path).drop_columns(["traffic_index"]), path)
    with pytest.raises(KeyError, match="traffic_index"):
        scoring.score_partition(spec, DAY, version="1", airflow_run_id=RUN)


def test_bad_chunk_setting_is_named(monkeypatch):
    monkeypatch.setenv("MLOPS_SCORING_CHUNK_ROWS", "lots")
    with pytest.raises(ValueError, match="MLOPS_SCORING_CHUNK_ROWS"):
        scoring.chunk_rows()
