"""Fixtures for end-to-end runs of the real DAGs (Airflow DAG.test, MLflow, GX, Evidently, XGBoost)."""

from __future__ import annotations

import datetime as dt

import pytest
from e2e_specs import write_small_spec


@pytest.fixture
def lifecycle_env(tmp_path, monkeypatch, airflow_db):
    """Fresh lake, MLflow store and specs folder; returns a helper namespace."""
    data = tmp_path / "data"
    specs = tmp_path / "specs"
    monkeypatch.setenv("MLOPS_DATA_DIR", str(data))
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(specs))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_small_spec(specs)
    return {"data": data, "specs": specs, "start": dt.date(2026, 3, 1)}
