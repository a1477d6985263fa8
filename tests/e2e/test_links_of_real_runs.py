"""From a task in Airflow's UI to what it produced: the extra links of real DAG runs, read
through the api-server's own extra-links endpoint, and the reports they lead to.

Real Airflow (``DAG.test`` on the SQLite metadata DB, then the api-server app with the plugin
and the simple auth manager), MLflow (SQLite store), Great Expectations, Evidently and XGBoost
on small data: a short seeded history, day 1 triggers and runs the first training, day 2 is
scored and checked for drift, day 3's batch is corrupted and rejected.
"""

from __future__ import annotations

import datetime as dt

import pytest
from e2e_specs import isolated_stores, replay_example_days
from reports_api import api_server

pytestmark = pytest.mark.e2e

START = dt.date(2026, 3, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(4, 0, -1)]
DAY1, DAY2, DAY3 = START, START + dt.timedelta(days=1), START + dt.timedelta(days=2)
LINK_NAMES = {"Data Docs", "Drift report", "MLflow model version", "MLflow run", "Validation result"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, airflow_db):
    """Three days through the real DAGs; yields the runs and an api-server on the same DB and lake."""
    base = tmp_path_factory.mktemp("report_links")
    with isolated_stores(base) as mp:
        mp.setenv("MLOPS_MLFLOW_UI_URL", "https://mlflow.example.org/")
        from airflow.models.dagrun import DagRun

        from mlops_lifecycle import dag_factory

        spec, days = replay_example_days(base, HISTORY, [DAY1, DAY2, DAY3], corrupt_days=(DAY3,))
        daily_runs = {dr.logical_date.date(): dr.run_id for dr in DagRun.find(dag_id=dag_factory.dag_id(spec.name, "daily"))}
        retrain = [dr for dr in DagRun.find(dag_id=dag_factory.dag_id(spec.name, "retrain")) if str(dr.state) == "success"]
        with api_server(base) as api:
            yield {"spec": spec, "days": days, "daily": daily_runs, "retrain": retrain, "api": api}


def links(runs, kind: str, run_id: str, task_id: str) -> dict[str, str | None]:
    api = runs["api"]
    reply = api.client.get(
        f"/api/v2/dags/late_delivery__{kind}/dagRuns/{run_id}/taskInstances/{task_id}/links", headers=api.headers()
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["extra_links"]


def shown(extra_links: dict[str, str | None]) -> dict[str, str]:
    """The links the UI draws (it skips null ones)."""
    return {name: url for name, url in extra_links.items() if url}


def test_the_scenario_ran(runs):
    days = runs["days"]
    assert days[DAY1].tasks["trigger_first_training"] == "success"
    assert [r["state"] for r in days[DAY1].retrain_runs] == ["success"]
    assert days[DAY2].tasks["drift_check"] == "success"
    assert days[DAY3].tasks["validate"] == "failed"


def test_drift_check_links_to_the_served_evidently_report_of_its_day(runs):
    found = links(runs, "daily", runs["daily"][DAY2], "drift_check")
    assert shown(found) == {"Drift report": "/mlops/models/late_delivery/drift/2026-03-02/report.html"}
    api = runs["api"]
    report = api.client.get(found["Drift report"], headers=api.headers())
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "Share of Drifted Columns" in report.text
    from mlops_lifecycle import lake

    assert report.content == (lake.report_dir("late_delivery", "drift", DAY2) / "report.html").read_bytes()


def test_validate_links_to_its_result_and_its_data_docs_page(runs):
    found = shown(links(runs, "daily", runs["daily"][DAY2], "validate"))
    assert set(found) == {"Validation result", "Data Docs"}
    assert found["Validation result"] == "/mlops/models/late_delivery/validation/2026-03-02/result.json"
    # The site keeps every day's page (day 3's rejection left day 2's in place): day 2 links to its own.
    assert found["Data Docs"].startswith("/mlops/models/late_delivery/data-docs/validations/")
    assert "/late_delivery-2026-03-02/" in found["Data Docs"]
    api = runs["api"]
    result = api.client.get(found["Validation result"], headers=api.headers()).json()
    assert result["success"] is True and result["ds"] == "2026-03-02" and result["rows"] > 0
    page = api.client.get(found["Data Docs"], headers=api.headers())
    assert page.status_code == 200 and "late_delivery-2026-03-02" in page.text
    index = api.client.get("/mlops/models/late_delivery/data-docs/index.html", headers=api.headers())
    assert index.status_code == 200 and "late_delivery-2026-03-02" in index.text and "late_delivery-2026-03-03" in index.text


def test_a_rejected_batch_still_links_to_its_failed_validation(runs):
    found = shown(links(runs, "daily", runs["daily"][DAY3], "validate"))
    assert found["Validation result"] == "/mlops/models/late_delivery/validation/2026-03-03/result.json"
    api = runs["api"]
    result = api.client.get(found["Validation result"], headers=api.headers()).json()
    assert result["success"] is False and result["failed"] > 0
    # Its Data Docs link opens that day's validation page, failures and all.
    assert found["Data Docs"].startswith("/mlops/models/late_delivery/data-docs/validations/")
    assert "/late_delivery-2026-03-03/" in found["Data Docs"]
    page = api.client.get(found["Data Docs"], headers=api.headers())
    assert page.status_code == 200 and "late_delivery-2026-03-03" in page.text and "Failed" in page.text


def test_day_without_a_drift_check_shows_no_drift_link(runs):
    # Day 1 had no champion: drift_check was skipped and wrote nothing.
    assert shown(links(runs, "daily", runs["daily"][DAY1], "drift_check")) == {}


def test_train_links_to_its_mlflow_run_and_registered_version(runs):
    from mlops_lifecycle import registry

    (retrain,) = runs["retrain"]
    found = shown(links(runs, "retrain", retrain.run_id, "train"))
    version = registry.get_version(runs["spec"], 1)
    assert found == {
        "MLflow run": f"https://mlflow.example.org/#/runs/{version.run_id}",
        "MLflow model version": "https://mlflow.example.org/#/models/late_delivery/versions/1",
    }
    promoted = shown(links(runs, "retrain", retrain.run_id, "compare_and_promote"))
    assert promoted == {"MLflow model version": "https://mlflow.example.org/#/models/late_delivery/versions/1"}


def test_other_tasks_show_no_link(runs):
    for task_id in ("ingest", "compute_features", "commit_predictions"):
        found = links(runs, "daily", runs["daily"][DAY2], task_id)
        assert set(found) == LINK_NAMES and shown(found) == {}, task_id
    # Not a @task: none of the plugin's links is attached, only the operator's own.
    assert set(links(runs, "daily", runs["daily"][DAY1], "trigger_first_training")) == {"Triggered DAG"}


def test_the_model_page_lists_the_days_the_dags_ran(runs):
    api = runs["api"]
    page = api.client.get("/mlops/models/late_delivery/", headers=api.headers()).text
    assert "<td>2026-03-03</td><td class='failed'>FAILED" in page
    assert "href='drift/2026-03-02/report.html'" in page
    assert "<td>2026-02-25</td>" in page  # seeded history: validation only
