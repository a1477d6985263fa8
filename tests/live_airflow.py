"""Real Airflow (and MLflow) services as local processes, for the production and browser tests.

What this module promises:

- every process it starts runs in its own session with a unique marker in its environment,
  and :meth:`ProcessStack.stop` ends all of them (their process groups, their descendants
  and anything still carrying the marker: task processes make their own process groups),
  politely first (SIGTERM), then with SIGKILL;
- the environment of the services is built from scratch for Airflow (no ``AIRFLOW__*``
  leaks in from the pytest process, which points Airflow at its own SQLite DB);
- waits poll with generous timeouts, fail when a service dies, and put the tails of the
  service logs and the newest task logs into the assertion message.

Only the standard library is imported at module level: the Celery worker imports this
module for its ``hostname_callable`` (see :func:`celery_worker_hostname`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = ROOT / "tests"
VENV_BIN = Path(sys.executable).parent
STACK_MARKER = "MLOPS_TEST_STACK_ID"
WORKER_HOSTNAME_VAR = "MLOPS_TEST_WORKER_HOSTNAME"
REQUIRE_VAR = "MLOPS_REQUIRE_SERVICES"
ADMIN_USER = "admin"
# Phase durations of each live-stack suite, in seconds; the suites' conftests print them.
STACK_TIMINGS: dict[str, dict[str, float]] = {}
STACK_NOTES: dict[str, list[str]] = {}


# ---- environment -------------------------------------------------------------------------


def services_required() -> bool:
    """True when a missing service must fail the test instead of skipping it (CI)."""
    return os.environ.get(REQUIRE_VAR, "").strip() == "1"


def skip_or_fail(message: str) -> None:
    """Skip with ``message``, or fail with it when ``MLOPS_REQUIRE_SERVICES=1``."""
    import pytest

    if services_required():
        pytest.fail(f"{message} ({REQUIRE_VAR}=1, so this is required)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def celery_worker_hostname() -> str:
    """``[core] hostname_callable`` of the Celery worker only: the name it records on task instances.

    Only the worker's environment carries ``MLOPS_TEST_WORKER_HOSTNAME``, so a task instance
    showing this hostname ran in a process started by that worker.
    """
    return os.environ[WORKER_HOSTNAME_VAR]


def write_passwords_file(path: Path, password: str) -> None:
    """The simple auth manager's passwords file, written before the api-server starts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({ADMIN_USER: password}) + "\n")


def airflow_env(
    *,
    home: Path,
    stack_id: str,
    api_port: int,
    sql_alchemy_conn: str,
    executor: str,
    data_dir: Path,
    specs_dir: Path,
    mlflow_tracking_uri: str | None,
    passwords_file: Path,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment every Airflow component of one test stack shares.

    Starts from the pytest process's environment minus anything Airflow, MLflow or the
    package would read, so the stack sees only what is set here.
    """
    from cryptography.fernet import Fernet

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_", "_AIRFLOW")) and k not in {"PYTHONPATH"}
    }
    base_url = f"http://127.0.0.1:{api_port}"
    env.update(
        {
            STACK_MARKER: stack_id,
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            # Two cores: a few slots are plenty, and each idle slot costs memory.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
            # Shared by every component: the api-server validates what the scheduler signs.
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__WORKERS": "1",
            # Task processes talk to the api-server's Execution API, not to the DB.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            # Other agents' stacks may run on this machine: no fixed ports anywhere.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "MLOPS_DATA_DIR": str(data_dir),
            "MLOPS_SPECS_DIR": str(specs_dir),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "GX_ANALYTICS_ENABLED": "false",
            "TQDM_DISABLE": "1",
            "GIT_PYTHON_REFRESH": "quiet",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if mlflow_tracking_uri:
        env["MLFLOW_TRACKING_URI"] = mlflow_tracking_uri
    env.update(extra or {})
    return env


# ---- the example model ----------------------------------------------------------------------


def load_e2e_specs():
    """tests/e2e/e2e_specs.py (the small-data spec), importable from any test folder."""
    import importlib.util

    path = TESTS_DIR / "e2e" / "e2e_specs.py"
    module_spec = importlib.util.spec_from_file_location("_mlops_e2e_specs", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def package_env(data_dir: Path, specs_dir: Path, mlflow_tracking_uri: str | None = None) -> Iterator[None]:
    """Point ``mlops_lifecycle`` in this process at a test's lake, specs and MLflow store, then restore."""
    keys = ("MLOPS_DATA_DIR", "MLOPS_SPECS_DIR", "MLFLOW_TRACKING_URI")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["MLOPS_DATA_DIR"] = str(data_dir)
    os.environ["MLOPS_SPECS_DIR"] = str(specs_dir)
    # Never fall back to a developer's store.
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if mlflow_tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = mlflow_tracking_uri
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def prepare_example(
    data_dir: Path,
    specs_dir: Path,
    *,
    history: list[dt.date],
    later_days: list[dt.date],
    rows: int = 300,
    **spec_overrides: Any,
) -> dict[str, Any]:
    """Write the small example spec, landing files for ``history + later_days`` and seed
    (ingest + validate) the history days, so a first training has data to train on.

    Runs in this process, pointed at the test's folders for the duration of the call only.
    """
    with package_env(data_dir, specs_dir):
        spec_path = load_e2e_specs().write_small_spec(specs_dir, **spec_overrides)

        from mlops_lifecycle import ingestion, replay
        from mlops_lifecycle.examples import late_delivery
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
        landing = late_delivery.write_landing(template, history + later_days, rows=rows)
        seeded = replay.seed_history(spec, history)
        return {"spec": spec, "spec_path": spec_path, "landing": landing, "seeded": seeded}


# ---- processes -----------------------------------------------------------------------------


@dataclass
class Service:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen
    started: float = field(default_factory=time.monotonic)


class ServiceDied(AssertionError):
    """A service of the stack exited while the test still needed it."""


class ProcessStack:
    """Processes started for one test, stopped together; their logs kept for diagnostics."""

    def __init__(self, stack_id: str, log_dir: Path, airflow_home: Path | None = None) -> None:
        self.stack_id = stack_id
        self.log_dir = log_dir
        self.airflow_home = airflow_home
        self.services: list[Service] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Service:
        """Start ``argv`` in a new session, its output appended to ``<log_dir>/<name>.log``."""
        env = {**env, STACK_MARKER: self.stack_id}
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as fh:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=str(cwd or self.log_dir),
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        service = Service(name=name, argv=argv, log=log, popen=popen)
        self.services.append(service)
        return service

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> None:
        """Run a one-shot command to completion; raise with its output when it fails."""
        env = {**env, STACK_MARKER: self.stack_id}
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as fh:
            try:
                proc = subprocess.run(
                    argv,
                    env=env,
                    cwd=str(self.log_dir),
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired as exc:
                raise AssertionError(
                    f"{name} ({' '.join(argv)}) did not finish in {timeout:.0f} s:\n{tail(log, 80)}"
                ) from exc
        if proc.returncode != 0:
            raise AssertionError(f"{name} ({' '.join(argv)}) exited with {proc.returncode}:\n{tail(log, 80)}")

    def check_alive(self) -> None:
        """Raise :class:`ServiceDied` naming the first service that exited."""
        for svc in self.services:
            code = svc.popen.poll()
            if code is not None:
                raise ServiceDied(f"service {svc.name} exited with {code}\n{self.diagnostics()}")

    def _ours(self) -> list[Any]:
        """Every live process this stack started: service trees plus anything with our marker."""
        import psutil

        found: dict[int, Any] = {}
        for svc in self.services:
            try:
                proc = psutil.Process(svc.popen.pid)
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
            except psutil.NoSuchProcess:
                pass
        me = os.getpid()
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid == me:
                continue
            try:
                if proc.environ().get(STACK_MARKER) == self.stack_id:
                    found[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
        return list(found.values())

    def stop(self, grace: float = 30.0) -> list[str]:
        """End every process of the stack: SIGTERM, wait up to ``grace`` seconds, then SIGKILL.

        Returns a description of each process that needed SIGKILL (for the report, not an error).
        """
        import psutil

        procs = self._ours()
        for svc in reversed(self.services):
            _signal_group(svc.popen.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        deadline = time.monotonic() + grace
        alive = procs
        while alive and time.monotonic() < deadline:
            for svc in self.services:
                svc.popen.poll()  # reap our direct children, or they linger as zombies
            alive = [p for p in alive if _running(p)]
            time.sleep(0.5)
        killed = []
        for proc in {p.pid: p for p in alive + [p for p in self._ours() if _running(p)]}.values():
            try:
                killed.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        for svc in self.services:
            _signal_group(svc.popen.pid, signal.SIGKILL)
            try:
                svc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                killed.append(f"{svc.popen.pid} {svc.name} (did not exit after SIGKILL)")
        psutil.wait_procs(alive, timeout=10)
        return killed

    def leftovers(self) -> list[str]:
        """Processes of this stack still alive (should be none after :meth:`stop`)."""
        return [f"{proc.pid}:{proc.name()}" for proc in self._ours() if _running(proc)]

    def diagnostics(self, lines: int = 60, task_logs: int = 6) -> str:
        """Tails of every service log and of the newest task logs, for assertion messages."""
        parts = []
        for svc in self.services:
            state = "running" if svc.popen.poll() is None else f"exited {svc.popen.returncode}"
            parts.append(f"===== {svc.name} ({state}) {svc.log} =====\n{tail(svc.log, lines)}")
        for log in sorted(self.log_dir.glob("*.log")):
            if all(log != s.log for s in self.services):
                parts.append(f"===== {log.name} =====\n{tail(log, lines)}")
        if self.airflow_home is not None:
            task_dir = self.airflow_home / "logs"
            newest = (
                sorted(
                    (p for p in task_dir.rglob("*.log") if "dag_id=" in str(p)),
                    key=lambda p: p.stat().st_mtime,
                )[-task_logs:]
                if task_dir.exists()
                else []
            )
            for log in newest:
                parts.append(f"===== task log {log.relative_to(task_dir)} =====\n{tail(log, lines)}")
        return "\n".join(parts)


def _running(proc: Any) -> bool:
    """Alive and not a zombie (an exited process its parent has not reaped yet)."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 200 * lines))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    stack: ProcessStack | None = None,
    interval: float = 2.0,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds
    (or as soon as a service of ``stack`` dies) with the stack's logs in the message."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if stack is not None:
            stack.check_alive()
        try:
            value = predicate()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - a service not up yet answers with all sorts
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            logs = f"\n{stack.diagnostics()}" if stack is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{logs}")
        time.sleep(interval)


# ---- the REST API -----------------------------------------------------------------------------


class AirflowApi:
    """A small client of Airflow 3's public REST API v2, authenticated with a JWT."""

    def __init__(self, base_url: str, stack: ProcessStack | None = None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.stack = stack
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def healthy(self) -> bool:
        """The api-server answers its health endpoint (no auth needed)."""
        return self.http.get("/api/v2/monitor/health").status_code == 200

    def login(self, username: str, password: str) -> str:
        """``POST /auth/token`` (simple auth manager) and use the token from now on."""
        resp = self.http.post("/auth/token", json={"username": username, "password": password})
        if resp.status_code not in (200, 201):
            raise AssertionError(f"POST /auth/token answered {resp.status_code}: {resp.text}")
        token = resp.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        return token

    def request(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        resp = self.http.request(method, f"/api/v2{path}", **kwargs)
        if resp.status_code not in expect:
            raise AssertionError(f"{method} /api/v2{path} answered {resp.status_code}: {resp.text[:2000]}")
        return resp.json() if resp.content else None

    def dag(self, dag_id: str) -> dict | None:
        """The DAG as the API shows it, or None while it is not serialized yet."""
        resp = self.http.get(f"/api/v2/dags/{dag_id}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/importErrors").get("import_errors", [])

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        """Wait until the dag-processor has serialized every DAG in ``dag_ids``."""

        def all_there() -> bool:
            missing = [d for d in dag_ids if self.dag(d) is None]
            if missing and self.import_errors():
                raise AssertionError(f"DAGs {missing} missing; import errors: {self.import_errors()}")
            return not missing

        wait_until(all_there, timeout=timeout, what=f"DAGs {dag_ids} to be parsed", stack=self.stack)

    def unpause(self, dag_id: str) -> None:
        body = self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        assert body["is_paused"] is False, body

    def trigger(
        self, dag_id: str, *, run_id: str, logical_date: dt.datetime | None, conf: dict | None = None
    ) -> dict:
        """``POST /api/v2/dags/{dag_id}/dagRuns``."""
        body = {
            "dag_run_id": run_id,
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": conf or {},
        }
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict | None:
        resp = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100}).get("dag_runs", [])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        ).get("task_instances", [])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        """Wait until the run exists and is ``success``; fail at once when it fails."""

        def finished() -> dict | None:
            run = self.run(dag_id, run_id)
            if run is None or run["state"] not in ("success", "failed"):
                return None
            if run["state"] == "failed":
                states = {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}
                logs = self.stack.diagnostics() if self.stack else ""
                raise AssertionError(f"{dag_id} run {run_id} failed; task states {states}\n{logs}")
            return run

        return wait_until(
            finished,
            timeout=timeout,
            what=f"{dag_id} run {run_id} to succeed",
            stack=self.stack,
            interval=3.0,
        )


def print_stack_timings(terminalreporter: Any, prefix: str) -> None:
    """Write the phase durations (and notes) of the suites named ``prefix...`` to the terminal."""
    for suite, phases in STACK_TIMINGS.items():
        if not suite.startswith(prefix):
            continue
        terminalreporter.write_sep("-", f"timings: {suite}")
        for phase, seconds in phases.items():
            terminalreporter.write_line(f"{phase:<40} {seconds:8.1f} s")
        for note in STACK_NOTES.get(suite, []):
            terminalreporter.write_line(note)
