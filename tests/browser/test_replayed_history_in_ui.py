"""After a replay (what `make demo` does), the Airflow UI shows a replayed task's own log lines.

Two days of the small example model are replayed in-process (``replay.run_day``: ``DAG.test``
on this session's metadata DB and log folder); then a real api-server is started on the same
DB and log folder and Playwright drives Debian's Chromium: sign in, open the ``ingest`` task
of a replayed daily run, and find the stage's own line in the log view. The REST API is read
for the run's type, requester and duration (tests/e2e/test_replay_history.py checks more).

Skips when Chromium or Playwright is missing, unless ``MLOPS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from urllib.parse import quote

import pytest
from live_airflow import (
    ADMIN_USER,
    VENV_BIN,
    AirflowApi,
    ProcessStack,
    airflow_env,
    free_port,
    load_e2e_specs,
    package_env,
    skip_or_fail,
    wait_until,
    write_passwords_file,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START = dt.date(2026, 3, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(4, 0, -1)]
DAYS = [START, START + dt.timedelta(days=1)]
DAILY = "late_delivery__daily"


@pytest.fixture(scope="module")
def replayed_ui(tmp_path_factory, airflow_db):
    if not CHROMIUM.exists():
        skip_or_fail(f"browser test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("browser test needs the playwright package (pip install -r requirements-dev.txt)")
    base = tmp_path_factory.mktemp("replayed_ui")
    data, specs = base / "data", base / "specs"
    with package_env(data, specs):
        load_e2e_specs().write_small_spec(specs)
        from airflow.configuration import conf

        from mlops_lifecycle import ingestion, replay
        from mlops_lifecycle.examples import late_delivery
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
        late_delivery.write_landing(template, [*HISTORY, *DAYS], rows=300)
        replay.seed_history(spec, HISTORY)
        dags = replay.load_dags(spec)
        replay.clear_runs(spec)
        for day in DAYS:
            replay.run_day(spec, dags, day, logfile=base / "replay.log")
        db, logs = conf.get("database", "sql_alchemy_conn"), conf.get("logging", "base_log_folder")

    stack = ProcessStack(secrets.token_hex(4), base / "service-logs", airflow_home=airflow_db)
    port, password = free_port(), secrets.token_urlsafe(16)
    write_passwords_file(base / "passwords.json", password)
    env = airflow_env(home=airflow_db, stack_id=stack.stack_id, api_port=port, sql_alchemy_conn=db,
                      executor="LocalExecutor", data_dir=data, specs_dir=specs, mlflow_tracking_uri=None,
                      passwords_file=base / "passwords.json",
                      extra={"AIRFLOW__LOGGING__BASE_LOG_FOLDER": logs})
    api = AirflowApi(f"http://127.0.0.1:{port}", stack=stack)
    try:
        stack.start("api-server", [str(VENV_BIN / "airflow"), "api-server", "--host", "127.0.0.1",
                                   "--port", str(port), "--workers", "1"], env)
        wait_until(api.healthy, timeout=300, what="the api-server", stack=stack)
        api.login(ADMIN_USER, password)
        yield {"url": f"http://127.0.0.1:{port}", "password": password, "api": api, "stack": stack}
    finally:
        api.close()
        stack.stop()
    assert not stack.leftovers(), f"processes still running after clean-up: {stack.leftovers()}"


def test_a_replayed_task_log_shows_the_stages_own_lines_in_the_ui(replayed_ui):
    from playwright.sync_api import sync_playwright

    api, url = replayed_ui["api"], replayed_ui["url"]
    runs = {r["logical_date"][:10]: r for r in api.runs(DAILY)}
    run = runs[DAYS[1].isoformat()]
    assert run["run_type"] == "backfill" and run["triggering_user_name"] == "mlops demo", run
    assert 0 < run["duration"] < 3600, run
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{url}/", wait_until="networkidle")
            page.get_by_label("Username").fill(ADMIN_USER)
            page.get_by_label("Password").fill(replayed_ui["password"])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/")
            page.goto(f"{url}/dags/{DAILY}/runs/{quote(run['dag_run_id'], safe='')}/tasks/ingest",
                      wait_until="networkidle")
            line = page.get_by_text(f"rows of late_delivery for {DAYS[1]} from", exact=False).first
            line.wait_for(timeout=60_000)
            assert page.get_by_text("Log file not found", exact=False).count() == 0
        except Exception as exc:
            shot = Path(replayed_ui["stack"].log_dir) / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"the log view did not show the stage's line (screenshot {shot}): {exc}") from exc
        finally:
            browser.close()
