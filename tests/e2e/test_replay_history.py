"""What a person sees in the Airflow UI after a replay (``mlops demo``, ``mlops run-days``).

The replay runs the real DAGs in-process with ``DAG.test``; afterwards the api-server (Airflow's
own FastAPI app on the same metadata DB and log folder, see reports_api.py) must show the days
as a backfill would have left them: each task's own log lines in its task log, run durations
that are the time the run took, a backfill run type with the demo as the requester, and the
retraining run under the id its trigger gave it. Three small days: day 1 triggers and runs the
first training, day 2 is scored, day 3's batch is corrupted and rejected.
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
DAILY, RETRAIN = "late_delivery__daily", "late_delivery__retrain"


@pytest.fixture(scope="module")
def ui(tmp_path_factory, airflow_db):
    """Three days replayed; yields the REST API of an api-server on the same DB and logs."""
    base = tmp_path_factory.mktemp("replay_history")
    with isolated_stores(base):
        _, days = replay_example_days(base, HISTORY, [DAY1, DAY2, DAY3], corrupt_days=(DAY3,))
        with api_server(base) as api:

            def get(path: str, **params) -> dict:
                reply = api.client.get(f"/api/v2{path}", headers=api.headers(), params=params)
                assert reply.status_code == 200, f"GET {path}: {reply.status_code} {reply.text[:500]}"
                return reply.json()

            yield {"days": days, "get": get}


def _runs(ui, dag_id: str) -> dict[str, dict]:
    return {r["logical_date"][:10]: r for r in ui["get"](f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]}


def _log_events(ui, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
    """The lines the UI's log view shows for a task instance (the API's structured log content)."""
    body = ui["get"](f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}", full_content=True)
    return [line.get("event", "") for line in body["content"]]


def test_replayed_daily_runs_are_backfill_runs_requested_by_the_demo(ui):
    runs = _runs(ui, DAILY)
    assert set(runs) == {d.isoformat() for d in (DAY1, DAY2, DAY3)}
    for day, run in runs.items():
        assert run["run_type"] == "backfill", run
        assert run["triggered_by"] == "backfill", run
        assert run["triggering_user_name"] == "mlops demo", run
        next_day = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
        assert run["dag_run_id"] == f"backfill__{next_day}T00:00:00+00:00", run
        assert run["data_interval_start"][:10] == day and run["data_interval_end"][:10] == next_day, run
        assert "mlops demo" in (run["note"] or ""), run


def test_replayed_runs_last_as_long_as_they_ran(ui):
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for dag_id in (DAILY, RETRAIN):
        for run in _runs(ui, dag_id).values():
            assert run["start_date"][:10] == today, f"{dag_id} {run['dag_run_id']} starts on its logical date: {run}"
            assert run["end_date"] is not None and 0 < run["duration"] < 3600, run


def test_the_retraining_run_keeps_the_id_and_trigger_the_daily_dag_gave_it(ui):
    assert [r["state"] for r in ui["days"][DAY1].retrain_runs] == ["success"]
    run = _runs(ui, RETRAIN)[DAY1.isoformat()]
    assert run["dag_run_id"] == f"first_training__{DAY1}", run
    assert run["run_type"] == "operator_triggered" and run["triggered_by"] == "operator", run
    assert run["conf"]["reason"] == "no_champion", run
    assert run["triggering_user_name"] != "dag_test", run


def test_a_task_log_in_the_ui_holds_the_stages_own_lines(ui):
    runs = _runs(ui, DAILY)
    events = _log_events(ui, DAILY, runs[DAY2.isoformat()]["dag_run_id"], "ingest")
    assert any(e.startswith("ingested ") and "rows of late_delivery for 2026-03-02 from" in e for e in events), events
    assert not any("Log file not found" in e or "Could not read served logs" in e for e in events), events
    # Each task instance has its own log: validate's lines are not in ingest's.
    validate = _log_events(ui, DAILY, runs[DAY2.isoformat()]["dag_run_id"], "validate")
    assert any("rows passed" in e for e in validate) and not any("rows passed" in e for e in events)


def test_a_failed_task_log_says_why_it_failed(ui):
    assert ui["days"][DAY3].tasks["validate"] == "failed"
    run_id = _runs(ui, DAILY)[DAY3.isoformat()]["dag_run_id"]
    text = "\n".join(_log_events(ui, DAILY, run_id, "validate"))
    assert "Task failed with exception" in text and "Traceback" in text, text[-3000:]


def test_the_retraining_run_task_log_is_readable(ui):
    events = _log_events(ui, RETRAIN, f"first_training__{DAY1}", "train")
    assert len(events) > 3 and not any("Log file not found" in e for e in events), events
