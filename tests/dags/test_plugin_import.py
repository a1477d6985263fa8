"""Plugin integrity: every Airflow process (scheduler, DAG processor, workers, each task) imports
plugins/, so loading it must not fail, import anything heavy, or touch a file or the DB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "numpy", "xgboost", "mlflow", "great_expectations", "evidently", "sklearn", "pyarrow",
         # the reports app and Airflow's API code load in the api-server, on the first request
         "fastapi", "airflow.api_fastapi.core_api.security")


def test_plugins_load_light_without_db_or_lake(tmp_path):
    """Load plugins/ with the plugins manager in a fresh interpreter whose metadata DB and data
    lake cannot be opened (their folders do not exist): it must load, import nothing heavy and
    stay within a CPU budget (a guard against import-time work, not a speed figure)."""
    missing = tmp_path / "missing"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE__")}
    env.update(
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LAZY_LOAD_PLUGINS="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{missing / 'airflow.db'}",
        MLOPS_DATA_DIR=str(missing / "data"),
    )
    code = (
        "import json, sys, time\n"
        "from airflow import plugins_manager\n"
        "t = time.process_time()\n"
        "plugins, errors = plugins_manager._get_plugins()\n"
        "seconds = time.process_time() - t\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('RESULT=' + json.dumps({'plugins': [p.name for p in plugins], 'errors': errors,"
        " 'seconds': seconds, 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT="))
    result = json.loads(line.split("=", 1)[1])
    assert "mlops_reports" in result["plugins"]
    assert result["errors"] == {}
    assert result["heavy"] == []
    assert result["seconds"] < 2.0, result["seconds"]
    assert not missing.exists(), "loading the plugin created the DB or the lake"
