"""Shared fixtures: every test gets its own data lake, MLflow store and specs folder.

Airflow's own home (and its SQLite metadata DB) is made once per test session in a
temporary folder, before Airflow is imported, so no test touches the developer's stores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SPEC = ROOT / "dags" / "specs" / "late_delivery.yaml"

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mlops-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_HOME / 'airflow.db'}"
for key, value in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GX_ANALYTICS_ENABLED": "false",
                   "TQDM_DISABLE": "1"}.items():
    os.environ[key] = value
# Tests never read the developer's specs, lake or MLflow store.
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ["MLOPS_DATA_DIR"] = str(_SESSION_HOME / "data-unset")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB for this test session."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _SESSION_HOME


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty MLOPS_DATA_DIR (lake + default SQLite MLflow store) for one test."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("MLOPS_DATA_DIR", str(d))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return d


@pytest.fixture
def example_spec():
    from mlops_lifecycle.spec import load_spec

    return load_spec(EXAMPLE_SPEC)
