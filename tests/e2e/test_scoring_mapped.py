"""Scoring a large day fans out over Airflow mapped tasks and commits one result.

The real daily DAG (``DAG.test``) scores a features partition of many row groups as
several ``score_chunk`` mapped task instances; ``commit_predictions`` publishes them
together and drift runs on the committed output. The result must equal scoring the
same day in one chunk.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

HISTORY = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(4)]
DAY = dt.date(2026, 3, 5)


def test_large_day_is_scored_by_mapped_tasks_and_equals_one_chunk(lifecycle_env, monkeypatch):
    from mlops_lifecycle import dag_factory, ingestion, lake, replay, scoring, training
    from mlops_lifecycle.examples import late_delivery
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("late_delivery")
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, HISTORY, rows=800)
    late_delivery.write_landing(template, [DAY], rows=1200)
    replay.seed_history(spec, HISTORY)
    window = training.assemble_window(spec, HISTORY[-1], len(HISTORY))
    trained = training.train_and_register(spec, window, trigger={"reason": "test", "by": "pytest"})
    training.compare_and_promote(spec, trained, actor="pytest", auto_promote=True)

    # Small row groups and chunks, so ~1200 rows make several mapped tasks.
    monkeypatch.setenv("MLOPS_FEATURES_ROW_GROUP_ROWS", "100")
    monkeypatch.setenv("MLOPS_SCORING_CHUNK_ROWS", "300")
    dags = replay.load_dags(spec)
    replay.clear_runs(spec)
    daily = dags[dag_factory.dag_id(spec.name, "daily")]
    dr = daily.test(logical_date=dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC))
    assert str(dr.state).endswith("success")
    tis = dr.get_task_instances()
    chunks = sorted(ti.map_index for ti in tis if ti.task_id == "score_chunk")
    states = {ti.task_id: str(ti.state) for ti in tis if ti.task_id != "score_chunk"}
    assert len(chunks) >= 4 and chunks == list(range(len(chunks))), chunks
    assert all(str(ti.state).endswith("success") for ti in tis if ti.task_id == "score_chunk")
    for task_id in ("plan_scoring", "commit_predictions", "drift_check"):
        assert states[task_id].endswith("success"), (task_id, states)

    path = lake.data_file(spec.name, "predictions", DAY)
    mapped = pd.read_parquet(path)
    manifest = lake.read_json(path.parent / "manifest.json")
    assert manifest["chunks"] == len(chunks) and manifest["rows"] == len(mapped)
    assert not lake.staging_dir(spec.name, "predictions", DAY, dr.run_id).exists()
    drift = lake.read_json(lake.report_dir(spec.name, "drift", DAY) / "summary.json")
    assert drift["rows"]["current"] == len(mapped), "drift ran on the whole committed day"

    monkeypatch.setenv("MLOPS_SCORING_CHUNK_ROWS", "1000000")
    assert len(scoring.plan_scoring(spec, DAY)) == 1
    scoring.score_partition(spec, DAY, version=manifest["model_version"], airflow_run_id=dr.run_id)
    pd.testing.assert_frame_equal(mapped, pd.read_parquet(path))
