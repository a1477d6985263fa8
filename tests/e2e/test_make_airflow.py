"""`make airflow` as a user runs it: from a shell whose PATH does not hold the venv.

`airflow standalone` starts its services by command name, so the Makefile must put the
venv first on PATH; this test starts the real target on a free port and a temporary
home, waits until the UI's API answers and a generated DAG is listed, signs in with the
password Airflow generated, then stops every process it started.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from live_airflow import ROOT, AirflowApi, ProcessStack, free_port, wait_until

pytestmark = pytest.mark.e2e


def test_make_airflow_starts_a_standalone_airflow_with_the_generated_dags(tmp_path):
    import json

    port = free_port()
    home = tmp_path / "airflow"
    venv = Path(sys.executable).parent.parent
    env = {
        # What a user's login shell has: no venv on PATH, none of Airflow's variables.
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "AIRFLOW_HOME": str(home),
        "MLOPS_DATA_DIR": str(tmp_path / "data"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__PARALLELISM": "2",
    }
    stack = ProcessStack(f"make-airflow-{uuid.uuid4().hex[:8]}", tmp_path / "logs", airflow_home=home)
    api = AirflowApi(f"http://127.0.0.1:{port}", stack)
    try:
        stack.start("make-airflow", ["make", "-C", str(ROOT), "airflow", f"VENV={venv}"], env)
        log_file = tmp_path / "logs" / "make-airflow.log"

        def up() -> bool:
            if "FileNotFoundError" in log_file.read_text(errors="replace"):
                raise AssertionError(f"standalone could not start its services:\n{stack.diagnostics()}")
            return api.healthy()

        wait_until(up, timeout=240, what="the standalone api-server", stack=stack)
        log = log_file.read_text(errors="replace")
        assert f"http://localhost:{port}" in log, "airflow-info names the port the UI is on"
        passwords = home / "simple_auth_manager_passwords.json.generated"
        wait_until(passwords.exists, timeout=60, what="the generated admin password", stack=stack)
        api.login("admin", json.loads(passwords.read_text())["admin"])
        api.wait_for_dags(["late_delivery__daily", "late_delivery__retrain"], timeout=240)
        assert "FileNotFoundError" not in log_file.read_text(errors="replace")
    finally:
        api.close()
        stack.stop()
    assert not stack.leftovers(), f"processes left running: {stack.leftovers()}"
