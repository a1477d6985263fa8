"""``make airflow``: ``airflow standalone`` on the port it is asked for, stopped as a whole.

Two things ``airflow standalone`` does not do by itself:

- **follow its port**: with only ``AIRFLOW__API__PORT`` changed, the api-server listens there
  but tasks still report to the Execution API on localhost:8080 and die with "Connection
  refused"; :func:`config.airflow_urls` derives every URL from the port, and they are put in
  the environment of every service standalone starts;
- **stop everything it started**: SIGTERM to ``airflow standalone`` leaves its scheduler and
  api-server running. Here standalone runs in its own session (its own process group) and
  every process it starts inherits a marker in its environment; on Ctrl-C, SIGTERM or SIGHUP
  the supervisor sends SIGTERM to the group and to every marked process (task processes make
  process groups of their own), waits, and kills what is left with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from mlops_lifecycle import config

# Set in the environment of everything standalone starts: how the supervisor finds them all.
MARKER = "MLOPS_LOCAL_AIRFLOW_ID"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def service_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the local Airflow: ``environ`` with every URL derived from the port."""
    env = dict(os.environ if environ is None else environ)
    env.update(config.airflow_urls())
    return env


def _marked(marker: str) -> list[Any]:
    """Live processes carrying ``MARKER=marker`` in their environment (other than this one)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(MARKER) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def stop_all(popen: subprocess.Popen, marker: str, grace: float = 30.0) -> list[str]:
    """End ``popen``'s process group and every process marked with ``marker``: SIGTERM, wait up
    to ``grace`` seconds, then SIGKILL. Returns what needed SIGKILL (pid and command)."""
    import psutil

    procs = {p.pid: p for p in _marked(marker)}
    try:
        os.killpg(popen.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in procs.values():
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        popen.poll()  # reap standalone itself
        if not _marked(marker):
            break
        time.sleep(0.5)
    killed = []
    for proc in _marked(marker):
        try:
            killed.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        killed.append(f"{popen.pid} airflow standalone (did not exit after SIGKILL)")
    return killed


def run_standalone(argv: Sequence[str] = ("airflow", "standalone"), grace: float = 30.0) -> int:
    """Run ``airflow standalone`` until it exits or this process is asked to stop; then stop
    everything it started. Returns its exit code (0 when stopped by a signal)."""
    marker = uuid.uuid4().hex
    env = {**service_env(), MARKER: marker}
    stop: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        popen = subprocess.Popen(list(argv), env=env, start_new_session=True)
        while popen.poll() is None and not stop:
            time.sleep(0.3)
        if stop:
            name = signal.Signals(stop[0]).name
            print(f"\n{name}: stopping Airflow (api-server, scheduler, dag-processor, triggerer, tasks)...",
                  file=sys.stderr, flush=True)
        killed = stop_all(popen, marker, grace)
        if killed:
            print(f"killed after {grace:.0f} s: {'; '.join(killed)}", file=sys.stderr, flush=True)
        return 0 if stop else (popen.returncode or 0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
