"""The production topology without Docker: CeleryExecutor on the local PostgreSQL and Redis.

Started as local processes on loopback, with fresh databases: ``airflow db migrate`` on a
PostgreSQL metadata DB, then the scheduler, the dag-processor, the api-server and one Celery
worker (broker Redis, result backend PostgreSQL), and an MLflow tracking server with a
PostgreSQL backend store that serves artifacts from a folder. The example model's daily DAG
is triggered through the REST API v2 with a JWT: day 1 finds no champion and triggers the
first training (run by the scheduler, on the worker), day 2 scores with the new champion.

One scenario per module; each test asserts one behaviour of it. Without PostgreSQL or Redis
the module skips, naming the missing service, unless ``MLOPS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path

import pytest
from live_airflow import (
    ADMIN_USER,
    ROOT,
    STACK_NOTES,
    STACK_TIMINGS,
    VENV_BIN,
    WORKER_HOSTNAME_VAR,
    AirflowApi,
    ProcessStack,
    airflow_env,
    free_port,
    package_env,
    port_open,
    prepare_example,
    skip_or_fail,
    wait_until,
    write_passwords_file,
)

pytestmark = [pytest.mark.production, pytest.mark.timeout(2400)]

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

MODEL = "late_delivery"
DAILY, RETRAIN = f"{MODEL}__daily", f"{MODEL}__retrain"
DAY1 = dt.date(2026, 3, 1)
DAY2 = DAY1 + dt.timedelta(days=1)
HISTORY = [DAY1 - dt.timedelta(days=i) for i in range(6, 0, -1)]

# Filled by the fixture, printed at the end of the session (tests/production/conftest.py).
SUITE = "production (CeleryExecutor, PostgreSQL, Redis, MLflow server)"
TIMINGS = STACK_TIMINGS.setdefault(SUITE, {})


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _pg(dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=5)
    conn.autocommit = True
    return conn


def _query(dbname: str, sql: str, args: tuple = ()) -> list[tuple]:
    conn = _pg(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def _services_or_skip() -> None:
    """Skip (or fail under MLOPS_REQUIRE_SERVICES=1) naming whichever service is missing."""
    missing = []
    if not port_open(PG_HOST, PG_PORT):
        missing.append(f"PostgreSQL on {PG_HOST}:{PG_PORT} (nothing listening)")
    else:
        try:
            _pg().close()
        except Exception as exc:  # noqa: BLE001 - any refusal means we cannot use it
            missing.append(f"PostgreSQL on {PG_HOST}:{PG_PORT} as user {PG_USER!r} with trust auth ({exc})")
    if not port_open(REDIS_HOST, REDIS_PORT):
        missing.append(f"Redis on {REDIS_HOST}:{REDIS_PORT} (nothing listening)")
    else:
        import redis

        try:
            redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=5).ping()
        except Exception as exc:  # noqa: BLE001
            missing.append(f"Redis on {REDIS_HOST}:{REDIS_PORT} ({exc})")
    if missing:
        skip_or_fail("production-mode test needs " + " and ".join(missing))


def _claim_redis_db(stack_id: str) -> int:
    """An empty Redis database number, claimed with a marker key so a parallel run picks another."""
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        if client.dbsize() == 0 and client.set("mlops_test_claim", stack_id, nx=True):
            return number
    raise AssertionError("no empty Redis database (1-15) to use as the Celery broker")


def _release_redis_db(number: int, stack_id: str) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
    # Only flush a database that is still ours.
    if client.get("mlops_test_claim") == stack_id.encode():
        client.flushdb()


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """Start the stack, play day 1 (first training) and day 2 (scoring); always clean up."""
    _services_or_skip()
    t_start = time.monotonic()
    stack_id = f"{secrets.token_hex(4)}"
    base = tmp_path_factory.mktemp("production")
    home, data, specs, artifacts = (base / n for n in ("airflow-home", "data", "specs", "mlflow-artifacts"))
    for d in (home, data, specs, artifacts):
        d.mkdir()
    airflow_db, mlflow_db = f"airflow_test_{stack_id}", f"mlflow_test_{stack_id}"
    stack = ProcessStack(stack_id, base / "service-logs", airflow_home=home)
    created: list[str] = []
    redis_db: int | None = None
    api: AirflowApi | None = None
    record: dict = {
        "stack": stack,
        "data": data,
        "specs": specs,
        "artifacts": artifacts,
        "airflow_db": airflow_db,
        "mlflow_db": mlflow_db,
    }
    try:
        conn = _pg()
        try:
            with conn.cursor() as cur:
                for name in (airflow_db, mlflow_db):
                    cur.execute(f'CREATE DATABASE "{name}"')
                    created.append(name)
        finally:
            conn.close()
        redis_db = _claim_redis_db(stack_id)

        # schedule None: the test chooses the days; a schedule would add a run for yesterday,
        # whose landing file does not exist, and max_active_runs=1 would queue ours behind it.
        prepare_example(data, specs, history=HISTORY, later_days=[DAY1, DAY2], schedule=None)
        TIMINGS["prepare data"] = time.monotonic() - t_start

        api_port, mlflow_port = free_port(), free_port()
        queue = f"mlops_test_{stack_id}"
        worker_hostname = f"celery-worker-{stack_id}"
        password = secrets.token_urlsafe(16)
        passwords_file = home / "passwords.json"
        write_passwords_file(passwords_file, password)
        tracking_uri = f"http://127.0.0.1:{mlflow_port}"
        pg_url = f"{PG_USER}@{PG_HOST}:{PG_PORT}"
        env = airflow_env(
            home=home,
            stack_id=stack_id,
            api_port=api_port,
            sql_alchemy_conn=f"postgresql+psycopg2://{pg_url}/{airflow_db}",
            executor="CeleryExecutor",
            data_dir=data,
            specs_dir=specs,
            mlflow_tracking_uri=tracking_uri,
            passwords_file=passwords_file,
            extra={
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{pg_url}/{airflow_db}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                # A queue only this test's worker consumes: tasks that ran were picked up by it.
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            },
        )
        record.update(
            queue=queue,
            worker_hostname=worker_hostname,
            tracking_uri=tracking_uri,
            api_port=api_port,
            redis_db=redis_db,
        )
        airflow = str(VENV_BIN / "airflow")

        t = time.monotonic()
        stack.run("db-migrate", [airflow, "db", "migrate"], env, timeout=600)
        TIMINGS["airflow db migrate (PostgreSQL)"] = time.monotonic() - t

        t = time.monotonic()
        # MLflow's job runner (GenAI evaluation jobs, eight processes) serves nothing this product
        # uses; on two cores it only slows the stack down, and its shutdown outlasts the grace period.
        mlflow_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        stack.start(
            "mlflow",
            [
                str(VENV_BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"postgresql://{pg_url}/{mlflow_db}",
                "--serve-artifacts",
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            mlflow_env,
        )
        stack.start(
            "api-server",
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"],
            env,
        )
        stack.start("scheduler", [airflow, "scheduler"], env)
        stack.start("dag-processor", [airflow, "dag-processor"], env)
        worker_env = {
            **env,
            # Only the worker's processes name themselves so (see live_airflow.celery_worker_hostname).
            WORKER_HOSTNAME_VAR: worker_hostname,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "live_airflow.celery_worker_hostname",
            "PYTHONPATH": str(ROOT / "tests"),
        }
        stack.start(
            "celery-worker",
            [airflow, "celery", "worker", "--queues", queue, "--concurrency", "2"],
            worker_env,
        )

        import httpx

        api = AirflowApi(f"http://127.0.0.1:{api_port}", stack=stack)
        wait_until(
            api.healthy, timeout=300, what="the api-server to answer /api/v2/monitor/health", stack=stack
        )
        wait_until(
            lambda: httpx.get(f"{tracking_uri}/health", timeout=10).status_code == 200,
            timeout=300,
            what="the MLflow server to answer /health",
            stack=stack,
        )
        wait_until(
            lambda: "ready" in (stack.log_dir / "celery-worker.log").read_text(errors="replace"),
            timeout=300,
            what="the Celery worker to be ready",
            stack=stack,
        )
        # Before signing in: the REST API refuses anonymous calls and a wrong password.
        base = f"http://127.0.0.1:{api_port}"
        record["anonymous"] = {
            "list_dags": httpx.get(f"{base}/api/v2/dags", timeout=30).status_code,
            "trigger": httpx.post(f"{base}/api/v2/dags/{DAILY}/dagRuns", json={"logical_date": None},
                                  timeout=30).status_code,
            "wrong_password": httpx.post(f"{base}/auth/token", json={"username": ADMIN_USER, "password": "nope"},  # secret-scan: allow
                                         timeout=30).status_code,
        }
        api.login(ADMIN_USER, password)
        api.wait_for_dags([DAILY, RETRAIN], timeout=300)
        TIMINGS["services up and DAGs parsed"] = time.monotonic() - t

        for dag_id in (DAILY, RETRAIN):
            api.unpause(dag_id)

        t = time.monotonic()
        day1_id = f"prodtest__{DAY1}"
        record["day1_trigger"] = api.trigger(DAILY, run_id=day1_id, logical_date=_at(DAY1))
        api.wait_for_run(DAILY, day1_id, timeout=900)
        TIMINGS["day 1 daily run"] = time.monotonic() - t

        t = time.monotonic()
        # The daily run's trigger_first_training queued this run; the scheduler runs it on the worker.
        first_id = f"first_training__{DAY1}"
        api.wait_for_run(RETRAIN, first_id, timeout=1200)
        TIMINGS["first training run"] = time.monotonic() - t

        t = time.monotonic()
        day2_id = f"prodtest__{DAY2}"
        api.trigger(DAILY, run_id=day2_id, logical_date=_at(DAY2))
        api.wait_for_run(DAILY, day2_id, timeout=900)
        TIMINGS["day 2 daily run (scoring)"] = time.monotonic() - t

        record["runs"] = {
            (DAILY, day1_id): api.run(DAILY, day1_id),
            (RETRAIN, first_id): api.run(RETRAIN, first_id),
            (DAILY, day2_id): api.run(DAILY, day2_id),
        }
        record["tis"] = {key: api.task_instances(*key) for key in record["runs"]}
        record["retrain_runs"] = api.runs(RETRAIN)
        yield record
    finally:
        t = time.monotonic()
        errors = []
        # Each step runs even when an earlier one failed: nothing may be left behind.
        try:
            if api is not None:
                api.close()
            killed = stack.stop()
            if killed:
                STACK_NOTES.setdefault(SUITE, []).append(f"needed SIGKILL after the grace period: {killed}")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"stopping the services: {exc!r}")
        record["leftovers"] = stack.leftovers()
        try:
            if redis_db is not None:
                _release_redis_db(redis_db, stack_id)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"releasing Redis db {redis_db}: {exc!r}")
        try:
            conn = _pg()
            try:
                with conn.cursor() as cur:
                    for name in created:
                        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001
            errors.append(f"dropping databases {created}: {exc!r}")
        TIMINGS["clean-up"] = time.monotonic() - t
        TIMINGS["total"] = time.monotonic() - t_start
    assert not errors, f"clean-up failed: {errors}"
    # Reached only when nothing failed before: the clean-up itself must have worked.
    assert not record["leftovers"], f"processes still running after clean-up: {record['leftovers']}"
    left = _query("postgres", "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (created,))
    assert not left, f"databases not dropped: {left}"


def _ran(tis: list[dict]) -> list[dict]:
    return [ti for ti in tis if ti["state"] == "success"]


def test_the_rest_api_refuses_anonymous_calls_and_a_wrong_password(production):
    anonymous = production["anonymous"]
    assert anonymous["list_dags"] in (401, 403) and anonymous["trigger"] in (401, 403), anonymous
    assert anonymous["wrong_password"] in (401, 403), anonymous


def test_runs_succeed_and_first_training_was_triggered_by_the_daily_run(production):
    states = {key: run["state"] for key, run in production["runs"].items()}
    assert set(states.values()) == {"success"}, states
    first = production["runs"][(RETRAIN, f"first_training__{DAY1}")]
    assert first["conf"]["reason"] == "no_champion", first
    assert first["conf"]["requested_by"].startswith(f"airflow:{DAILY}/"), first
    assert [r["dag_run_id"] for r in production["retrain_runs"]] == [f"first_training__{DAY1}"]
    # Every task either ran and succeeded or was skipped by a branch; nothing failed or hangs.
    for key, tis in production["tis"].items():
        assert {ti["state"] for ti in tis} <= {"success", "skipped"}, (
            key,
            {t["task_id"]: t["state"] for t in tis},
        )
        assert _ran(tis), key


def test_tasks_ran_on_the_celery_worker(production):
    """Every task that ran was taken from the worker's own queue and ran in its processes."""
    seen = 0
    for key, tis in production["tis"].items():
        for ti in _ran(tis):
            where = (key, ti["task_id"], ti["map_index"])
            assert ti["queue"] == production["queue"], where
            # Only the worker's environment names hosts so (live_airflow.celery_worker_hostname).
            assert ti["hostname"] == production["worker_hostname"], (where, ti["hostname"])
            # The field names a task's own executor; empty means the configured one (Celery).
            assert ti["executor"] in (None, "CeleryExecutor"), (where, ti["executor"])
            seen += 1
    assert seen >= 10, seen


def test_celery_result_backend_in_postgres_holds_every_task(production):
    """The scheduler handed each task to Celery: its Celery task id is on the task instance,
    and Celery's result backend (a table of the same PostgreSQL DB) has it as SUCCESS."""
    sql = (
        "SELECT ti.dag_id, ti.task_id, ti.map_index, ti.external_executor_id, m.status "
        "FROM task_instance ti LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id "
        "WHERE ti.state = 'success'"
    )
    rows = _query(production["airflow_db"], sql)
    assert len(rows) >= 10, rows
    for dag_id, task_id, map_index, celery_id, _ in rows:
        assert celery_id, (dag_id, task_id, map_index)

    # The worker writes SUCCESS once its Celery task returns, a moment after Airflow's
    # task state turned success (the last task can still show STARTED): wait for it.
    def all_success():
        rows = _query(production["airflow_db"], sql)
        return all(status == "SUCCESS" for *_, status in rows)

    try:
        wait_until(all_success, timeout=120, what="Celery results", interval=2)
    except AssertionError:
        pytest.fail(f"Celery results not all SUCCESS: {_query(production['airflow_db'], sql)}")


def test_dag_runs_are_rows_in_the_postgres_metadata_db(production):
    rows = _query(production["airflow_db"], "SELECT dag_id, run_id, state, run_type FROM dag_run ORDER BY id")
    runs = {(dag_id, run_id): (state, run_type) for dag_id, run_id, state, run_type in rows}
    assert runs == {
        (DAILY, f"prodtest__{DAY1}"): ("success", "manual"),
        # Triggered by the daily run's TriggerDagRunOperator, not by us.
        (RETRAIN, f"first_training__{DAY1}"): ("success", "operator_triggered"),
        (DAILY, f"prodtest__{DAY2}"): ("success", "manual"),
    }, runs
    (version,) = _query(production["airflow_db"], "SELECT version()")[0]
    assert version.startswith("PostgreSQL"), version


def test_model_version_is_champion_in_the_mlflow_server(production):
    """The first training registered v1 through the tracking server, with its artifacts
    stored by the server, and the PostgreSQL backend store holds the version."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=production["tracking_uri"], registry_uri=production["tracking_uri"])
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1"
    assert champion.tags.get("trigger.reason") == "no_champion", champion.tags
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"
    # Artifacts went through the server (mlflow-artifacts:) into its destination folder.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    stored = [p for p in Path(production["artifacts"]).rglob("*") if p.is_file()]
    assert any(p.name == "MLmodel" for p in stored), stored[:20]
    rows = _query(production["mlflow_db"], "SELECT name, version FROM model_versions")
    assert (MODEL, 1) in rows, rows


def test_day2_was_scored_by_the_champion(production):
    from mlops_lifecycle import lake

    with package_env(production["data"], production["specs"], production["tracking_uri"]):
        manifest = lake.read_json(lake.partition_dir(MODEL, "predictions", DAY2) / "manifest.json")
    assert str(manifest["model_version"]) == "1", manifest
    assert manifest["rows"] > 0, manifest
