"""`make airflow` as a user runs it: from a shell whose PATH does not hold the venv.

`airflow standalone` starts its services by command name, so the Makefile must put the
venv first on PATH; this test starts the real target on a free (non-default) port with only
``AIRFLOW__API__PORT`` set, as the README says, on a temporary home with the example model's
history seeded. It waits until the UI's API answers and the generated DAGs are listed, signs
in with the password Airflow generated, triggers the retraining DAG through the REST API and
waits for it to succeed (its tasks must reach the Execution API on the same port, not on
8080), then sends SIGTERM to `make` alone and expects every process it started to be gone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
from live_airflow import ROOT, AirflowApi, ProcessStack, free_port, prepare_example, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

RETRAIN = "late_delivery__retrain"


def test_make_airflow_serves_its_port_runs_triggered_tasks_and_stops_everything_on_sigterm(tmp_path):
    port = free_port()
    home, data, specs = tmp_path / "airflow", tmp_path / "data", tmp_path / "specs"
    # A run triggered without a date trains on the days up to today: seed them.
    today = dt.datetime.now(dt.UTC).date()
    prepare_example(data, specs, history=[today + dt.timedelta(days=i) for i in range(-5, 2)], later_days=[])
    venv = Path(sys.executable).parent.parent
    env = {
        # What a user's login shell has: no venv on PATH, none of Airflow's URL variables.
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        # This checkout's package (a worktree's venv may hold another checkout's editable install).
        "PYTHONPATH": str(ROOT / "include"),
        "AIRFLOW_HOME": str(home),
        "MLOPS_DATA_DIR": str(data),
        "MLOPS_SPECS_DIR": str(specs),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__PARALLELISM": "2",
        # Other stacks may run on this machine: no fixed log-server ports.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }
    stack = ProcessStack(f"make-airflow-{uuid.uuid4().hex[:8]}", tmp_path / "logs", airflow_home=home)
    api = AirflowApi(f"http://127.0.0.1:{port}", stack)
    try:
        make = stack.start("make-airflow", ["make", "-C", str(ROOT), "airflow", f"VENV={venv}"], env)
        log_file = tmp_path / "logs" / "make-airflow.log"

        def up() -> bool:
            if "FileNotFoundError" in log_file.read_text(errors="replace"):
                raise AssertionError(f"standalone could not start its services:\n{stack.diagnostics()}")
            return api.healthy()

        wait_until(up, timeout=240, what="the standalone api-server", stack=stack)
        log = log_file.read_text(errors="replace")
        assert f"http://localhost:{port}" in log, "airflow-info names the port the UI is on"
        assert f"tasks report to http://127.0.0.1:{port}/execution/" in log, log[-2000:]
        passwords = home / "simple_auth_manager_passwords.json.generated"
        wait_until(passwords.exists, timeout=60, what="the generated admin password", stack=stack)
        api.login("admin", json.loads(passwords.read_text())["admin"])
        api.wait_for_dags(["late_delivery__daily", RETRAIN], timeout=240)
        assert "FileNotFoundError" not in log_file.read_text(errors="replace")

        run_id = f"make_airflow_{uuid.uuid4().hex[:6]}"
        api.trigger(RETRAIN, run_id=run_id, logical_date=None,
                    conf={"reason": "make airflow test: triggered through the REST API", "window_days": 15})
        run = api.wait_for_run(RETRAIN, run_id, timeout=900)
        states = {t["task_id"]: t["state"] for t in api.task_instances(RETRAIN, run_id)}
        assert states and "failed" not in states.values() and states.get("train") == "success", states
        assert run["state"] == "success"
        assert "Connection refused" not in stack.diagnostics()

        # SIGTERM to make alone, as a process manager or `kill` would send it.
        assert stack.leftovers(), "the stack is running before the stop"
        os.kill(make.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 90
        while stack.leftovers() and time.monotonic() < deadline:
            make.popen.poll()
            time.sleep(1)
        left = stack.leftovers()
        assert not left, f"processes of make airflow left 90 s after SIGTERM: {left}\n{stack.diagnostics()}"
        assert make.popen.poll() is not None, "make is still running"
    finally:
        api.close()
        stack.stop()
    assert not stack.leftovers(), f"processes left running: {stack.leftovers()}"
