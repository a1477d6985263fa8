"""The local workflow a data engineer follows without a scheduler, command by command:
write a model's landing files, ``mlops ingest-history``, then ``mlops run-days`` for a
range of days. Real subprocesses of the installed ``mlops`` command, the real DAGs on
the session's Airflow DB, MLflow, GX, Evidently and XGBoost in a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_specs import write_small_spec

pytestmark = pytest.mark.e2e

MLOPS = Path(sys.executable).parent / "mlops"


def _mlops(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MLOPS), *args], env=env, capture_output=True, text=True, timeout=900)


def test_history_then_run_days_trains_the_first_model_and_scores_the_next_day(tmp_path, airflow_db):
    specs = tmp_path / "specs"
    write_small_spec(specs)
    env = {**os.environ, "MLOPS_DATA_DIR": str(tmp_path / "data"), "MLOPS_SPECS_DIR": str(specs)}
    env.pop("MLFLOW_TRACKING_URI", None)

    made = _mlops(env, "example-data", "--start", "2026-02-01", "--days", "12", "--rows", "300")
    assert made.returncode == 0, made.stderr[-2000:]
    history = _mlops(env, "ingest-history", "late_delivery", "--from-date", "2026-02-01", "--to-date", "2026-02-10")
    assert history.returncode == 0, history.stderr[-2000:]
    assert "10 of 10 day(s) validated" in history.stdout

    ran = _mlops(env, "run-days", "late_delivery", "--from-date", "2026-02-11", "--to-date", "2026-02-12")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    lines = {line.split()[0]: line for line in ran.stdout.splitlines() if line.startswith("2026-02-1")}
    assert "first training, retrain run success" in lines["2026-02-11"]
    assert " v1 " in lines["2026-02-12"], lines["2026-02-12"]  # scored by the first champion
    assert "Filling up the DagBag" not in ran.stdout  # Airflow's chatter goes to the task log
    preds = tmp_path / "data" / "lake" / "late_delivery" / "predictions" / "ds=2026-02-12" / "predictions.parquet"
    assert preds.exists()

    missing = _mlops(env, "run-days", "late_delivery", "--from-date", "2026-02-20", "--to-date", "2026-02-20")
    assert missing.returncode == 1 and "did not succeed" in missing.stdout
