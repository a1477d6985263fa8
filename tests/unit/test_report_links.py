"""The extra links' parts that need no DAG run: where the MLflow UI and the reports app are,
which DAG ids are the factory's, and that a link is empty (never an error) on other tasks.
Links of real runs are checked in tests/e2e/test_links_of_real_runs.py."""

from __future__ import annotations

import pytest

from mlops_lifecycle import report_links


def test_mlflow_ui_url_prefers_the_explicit_setting(monkeypatch):
    monkeypatch.setenv("MLOPS_MLFLOW_UI_URL", "https://mlflow.example.org/")
    assert report_links.mlflow_ui_url() == "https://mlflow.example.org"
    monkeypatch.delenv("MLOPS_MLFLOW_UI_URL")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert report_links.mlflow_ui_url() == "http://tracking:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert report_links.mlflow_ui_url() == report_links.DEFAULT_MLFLOW_UI_URL


def test_reports_url_follows_the_api_base_url(monkeypatch):
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert report_links.reports_url("models/m/") == "/mlops/models/m/"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org/team-a/")
    assert report_links.reports_url("models/m/") == "https://airflow.example.org/team-a/mlops/models/m/"


@pytest.mark.parametrize(("dag_id", "kind", "model"), [
    ("late_delivery__daily", "daily", "late_delivery"),
    ("a__b__retrain", "retrain", "a__b"),
    ("late_delivery__retrain", "daily", None),
    ("late_delivery_daily", "daily", None),
    ("Late__daily", "daily", None),
    ("__daily", "daily", None),
])
def test_links_recognise_the_generated_dag_ids(dag_id, kind, model):
    assert report_links._model_of(dag_id, kind) == model


def test_a_link_is_empty_on_other_tasks_and_never_raises():
    from airflow.models.taskinstancekey import TaskInstanceKey

    class Broken(report_links.DriftReportLink):
        def url(self, model, ti_key):
            raise RuntimeError("boom")

    other_task = TaskInstanceKey("late_delivery__daily", "ingest", "run", 1, -1)
    other_dag = TaskInstanceKey("someone_else", "drift_check", "run", 1, -1)
    ours = TaskInstanceKey("late_delivery__daily", "drift_check", "run", 1, -1)
    for link in report_links.LINKS:
        assert link.get_link(None, ti_key=other_task) == ""
        assert link.get_link(None, ti_key=other_dag) == ""
    assert Broken().get_link(None, ti_key=ours) == ""
