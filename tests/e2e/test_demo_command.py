"""`mlops demo` (what `make demo` runs), shortened: both example models through the real
DAGs in a subprocess, as a user runs it. The full 30-day story is the demo itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_both_models_side_by_side_and_quarantines_the_corrupt_day(tmp_path, airflow_db):
    data = tmp_path / "data"
    env = {**os.environ, "MLOPS_DATA_DIR": str(data)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLOPS_SPECS_DIR", None)
    mlops = Path(sys.executable).parent / "mlops"
    out = subprocess.run(
        [str(mlops), "demo", "--days", "3", "--history-days", "8", "--rows", "400", "--corrupt-day", "2"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    summary = json.loads(text.split("-- summary: ", 1)[1].splitlines()[0])
    assert summary["models"] == ["late_delivery", "retail_demand"]
    assert summary["quarantined_days"] == ["2026-03-02"] and summary["champion"] == 1
    assert "retail_demand (same days, its own DAGs" in text
    assert "first training, retrain run success: v1 champion" in text.split("retail_demand (same days", 1)[1]
    for model in ("late_delivery", "retail_demand"):
        assert (data / "lake" / model / "predictions" / "ds=2026-03-03" / "predictions.parquet").exists()
    # The corrupted batch was the main model's only: the second model scored that day.
    assert (data / "lake" / "retail_demand" / "predictions" / "ds=2026-03-02" / "predictions.parquet").exists()
    assert not (data / "lake" / "late_delivery" / "predictions" / "ds=2026-03-02").exists()
    assert "Where to look next" in text and "Data Docs" in text
