"""Ports of the local services (``make airflow``, ``make mlflow-ui``) and the URLs derived from
them, and the supervisor that stops everything ``airflow standalone`` started.

The whole ``make airflow`` run (a triggered task on a non-default port, SIGTERM) is
tests/e2e/test_make_airflow.py; here the supervisor runs a small stand-in for standalone, a
process that starts children the way standalone does (one in its group, one in a session of
its own, as task processes are) and ignores SIGTERM itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from mlops_lifecycle import config, local_airflow, report_links


def test_airflow_urls_follow_the_api_port(monkeypatch):
    for var in ("AIRFLOW__API__PORT", "AIRFLOW__API__BASE_URL", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        monkeypatch.delenv(var, raising=False)
    assert config.airflow_urls() == {
        "AIRFLOW__API__PORT": "8080", "AIRFLOW__API__BASE_URL": "http://localhost:8080",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/"}
    monkeypatch.setenv("AIRFLOW__API__PORT", "18080")
    urls = config.airflow_urls()
    assert urls["AIRFLOW__API__BASE_URL"] == "http://localhost:18080"
    assert urls["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    env = local_airflow.service_env({"PATH": "/bin", "AIRFLOW__API__PORT": "18080"})
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"


def test_an_explicit_airflow_url_wins(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__PORT", "18080")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org")
    monkeypatch.delenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", raising=False)
    urls = config.airflow_urls()
    assert urls["AIRFLOW__API__BASE_URL"] == "https://airflow.example.org"
    assert urls["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"


@pytest.mark.parametrize("value", ["eighty", "0", "70000", "-1"])
def test_a_port_that_is_not_a_port_is_named(monkeypatch, value):
    monkeypatch.setenv("MLFLOW_UI_PORT", value)
    with pytest.raises(ValueError, match=f"MLFLOW_UI_PORT='{value}' is not a TCP port"):
        config.mlflow_ui_url()


def test_mlflow_links_follow_the_mlflow_ui_port(monkeypatch):
    monkeypatch.delenv("MLOPS_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    monkeypatch.delenv("MLFLOW_UI_PORT", raising=False)
    assert report_links.mlflow_ui_url() == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_UI_PORT", "15001")
    assert report_links.mlflow_ui_url() == "http://127.0.0.1:15001"
    # A tracking server or an explicit URL is where the UI is, whatever the local port.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert report_links.mlflow_ui_url() == "http://tracking:5000"
    monkeypatch.setenv("MLOPS_MLFLOW_UI_URL", "https://mlflow.example.org/")
    assert report_links.mlflow_ui_url() == "https://mlflow.example.org"


# A stand-in for `airflow standalone`: it ignores SIGTERM (as standalone leaves its services
# behind), starts a child in its own group and one in a session of its own, prints their pids.
STANDALONE = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    a = subprocess.Popen(sleeper)
    b = subprocess.Popen(sleeper, start_new_session=True)
    print(a.pid, b.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_the_supervisor_stops_everything_standalone_started(tmp_path, sig):
    out = tmp_path / "pids.txt"
    script = tmp_path / "standalone.py"
    script.write_text(STANDALONE)
    runner = tmp_path / "supervise.py"
    runner.write_text(textwrap.dedent(f"""
        import sys
        from mlops_lifecycle import local_airflow
        sys.exit(local_airflow.run_standalone([sys.executable, {str(script)!r}], grace=3))
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(out, "w") as fh:  # the stand-in's stdout: the pids of its children
        supervisor = subprocess.Popen([sys.executable, str(runner)], env=env, stdout=fh)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)
        children = [int(p) for p in out.read_text().split()]
        assert len(children) == 2 and all(psutil.pid_exists(p) for p in children)
        supervisor.send_signal(sig)
        assert supervisor.wait(timeout=30) == 0
        time.sleep(0.5)
        alive = [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"left running after {sig.name}: {alive}"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
