"""Trigger the retraining DAG from the real Airflow UI, in headless Chromium, and see it succeed.

A local Airflow (api-server, scheduler, dag-processor; LocalExecutor on SQLite) runs on a free
port with the example model's history seeded. Playwright drives Debian's Chromium
(/usr/bin/chromium): sign in with the simple auth manager's password, open
``late_delivery__retrain``, open the trigger form, type a reason and a training window into
its parameter fields, submit, and poll the run's page until its state badge says Success.
The REST API is only read afterwards, to check that the run carries what was typed.

Skips when Chromium or Playwright is missing, unless ``MLOPS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from live_airflow import (
    ADMIN_USER,
    STACK_TIMINGS,
    VENV_BIN,
    AirflowApi,
    ProcessStack,
    airflow_env,
    free_port,
    package_env,
    prepare_example,
    skip_or_fail,
    wait_until,
    write_passwords_file,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1800)]

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that phones home: the network here is closed (see STACK_NOTES.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL = "late_delivery"
RETRAIN = f"{MODEL}__retrain"
REASON = f"browser test {secrets.token_hex(3)}: typed into the trigger form"
WINDOW_DAYS = 15

SUITE = "browser (Airflow UI in headless Chromium, LocalExecutor on SQLite)"
TIMINGS = STACK_TIMINGS.setdefault(SUITE, {})


def _browser_or_skip() -> None:
    if not CHROMIUM.exists():
        skip_or_fail(f"browser test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("browser test needs the playwright package (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory):
    """A local Airflow whose retraining DAG can succeed: the history around today is seeded,
    since a run triggered from the form gets the current time as its logical date."""
    _browser_or_skip()
    t_start = time.monotonic()
    stack_id = secrets.token_hex(4)
    base = tmp_path_factory.mktemp("browser")
    home, data, specs = base / "airflow-home", base / "data", base / "specs"
    for d in (home, data, specs):
        d.mkdir()
    stack = ProcessStack(stack_id, base / "service-logs", airflow_home=home)
    api = None
    try:
        today = dt.datetime.now(dt.UTC).date()
        # Through tomorrow, in case the run is triggered just after midnight UTC.
        history = [today + dt.timedelta(days=i) for i in range(-5, 2)]
        prepare_example(data, specs, history=history, later_days=[])
        TIMINGS["prepare data"] = time.monotonic() - t_start

        port = free_port()
        password = secrets.token_urlsafe(16)
        write_passwords_file(home / "passwords.json", password)
        env = airflow_env(
            home=home,
            stack_id=stack_id,
            api_port=port,
            sql_alchemy_conn=f"sqlite:///{home / 'airflow.db'}",
            executor="LocalExecutor",
            data_dir=data,
            specs_dir=specs,
            mlflow_tracking_uri=None,
            passwords_file=home / "passwords.json",
            # LocalExecutor starts one worker process per slot.
            extra={"AIRFLOW__CORE__PARALLELISM": "2"},
        )
        airflow = str(VENV_BIN / "airflow")
        t = time.monotonic()
        stack.run("db-migrate", [airflow, "db", "migrate"], env, timeout=600)
        stack.start(
            "api-server",
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env,
        )
        stack.start("scheduler", [airflow, "scheduler"], env)
        stack.start("dag-processor", [airflow, "dag-processor"], env)
        api = AirflowApi(f"http://127.0.0.1:{port}", stack=stack)
        wait_until(
            api.healthy, timeout=300, what="the api-server to answer /api/v2/monitor/health", stack=stack
        )
        api.login(ADMIN_USER, password)
        api.wait_for_dags([RETRAIN], timeout=300)
        # No schedule, so it starts unpaused: a run triggered from the form runs at once.
        assert api.dag(RETRAIN)["is_paused"] is False
        TIMINGS["airflow up and DAGs parsed"] = time.monotonic() - t
        yield {
            "url": f"http://127.0.0.1:{port}",
            "password": password,
            "api": api,
            "stack": stack,
            "data": data,
            "specs": specs,
        }
    finally:
        t = time.monotonic()
        if api is not None:
            api.close()
        stack.stop()
        leftovers = stack.leftovers()
        TIMINGS["clean-up"] = time.monotonic() - t
        TIMINGS["total"] = time.monotonic() - t_start
    assert not leftovers, f"processes still running after clean-up: {leftovers}"


@pytest.fixture(scope="module")
def triggered_from_ui(airflow_ui, tmp_path_factory):
    """Sign in, trigger the retraining DAG through its form, wait on the run page for Success."""
    from playwright.sync_api import sync_playwright

    url = airflow_ui["url"]
    shots = tmp_path_factory.mktemp("browser-screenshots")
    t = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        step = "sign in"
        try:
            page.goto(f"{url}/", wait_until="networkidle")
            page.get_by_label("Username").fill(ADMIN_USER)
            page.get_by_label("Password").fill(airflow_ui["password"])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/")

            step = "open the DAG"
            page.goto(f"{url}/dags/{RETRAIN}", wait_until="networkidle")
            page.get_by_role("button", name="Trigger Dag").click()
            form = page.get_by_role("dialog")
            form.wait_for()

            step = "fill the form"
            form.locator("#element_reason").fill(REASON)
            form.locator("input[name=element_window_days]").fill(str(WINDOW_DAYS))
            page.screenshot(path=str(shots / "form-filled.png"), full_page=True)

            step = "submit"
            form.get_by_role("button", name="Trigger", exact=True).click()
            page.wait_for_url(f"{url}/dags/{RETRAIN}/runs/**")
            run_id = unquote(page.url.split("/runs/", 1)[1].split("?", 1)[0])
            TIMINGS["sign in, fill and submit the form"] = time.monotonic() - t

            step = f"wait for run {run_id} to show Success"
            t = time.monotonic()
            badge = page.get_by_test_id("header-card").get_by_test_id("state-badge").first
            last_reload = time.monotonic()

            def shown_state() -> str | None:
                nonlocal last_reload
                # The page refreshes itself while the run is active; reload now and then anyway.
                if time.monotonic() - last_reload > 30:
                    page.reload(wait_until="networkidle")
                    last_reload = time.monotonic()
                text = badge.inner_text(timeout=10_000).strip().lower() if badge.count() else ""
                if text == "failed":
                    raise AssertionError(
                        f"the UI shows run {run_id} as failed\n{airflow_ui['stack'].diagnostics()}"
                    )
                return text == "success"

            wait_until(
                shown_state,
                timeout=900,
                what=f"the UI to show run {run_id} as Success",
                stack=airflow_ui["stack"],
                interval=3.0,
            )
            page.screenshot(path=str(shots / "run-success.png"), full_page=True)
            TIMINGS["run until the UI shows Success"] = time.monotonic() - t
        except Exception as exc:
            shot = shots / "failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
            except Exception:  # noqa: BLE001 - the message below matters more than the picture
                shot = None
            raise AssertionError(
                f"browser step '{step}' failed at {page.url} (screenshot: {shot}): {exc}"
            ) from exc
        finally:
            browser.close()
    return {"run_id": run_id, "screenshots": shots}


def test_run_triggered_from_the_form_succeeds(airflow_ui, triggered_from_ui):
    run = airflow_ui["api"].run(RETRAIN, triggered_from_ui["run_id"])
    assert run["state"] == "success", run
    assert run["triggered_by"] == "ui", run
    assert run["triggering_user_name"] == ADMIN_USER, run
    states = {t["task_id"]: t["state"] for t in airflow_ui["api"].task_instances(RETRAIN, run["dag_run_id"])}
    assert states and set(states.values()) == {"success"}, states
    assert (triggered_from_ui["screenshots"] / "run-success.png").exists()


def test_run_carries_the_values_typed_in_the_form(airflow_ui, triggered_from_ui):
    run = airflow_ui["api"].run(RETRAIN, triggered_from_ui["run_id"])
    assert run["conf"]["reason"] == REASON, run["conf"]
    assert run["conf"]["window_days"] == WINDOW_DAYS, run["conf"]


def test_typed_values_reached_the_tasks(airflow_ui, triggered_from_ui):
    """The window the run assembled spans the typed days, and the reason is on the model version."""
    from mlops_lifecycle import registry
    from mlops_lifecycle.spec import get_spec

    run_id = triggered_from_ui["run_id"]
    entry = airflow_ui["api"].request(
        "GET",
        f"/dags/{RETRAIN}/dagRuns/{run_id}/taskInstances/assemble_window/xcomEntries/return_value",
        params={"deserialize": "true", "stringify": "false"},
    )
    window = entry["value"]
    span = dt.date.fromisoformat(window["end_ds"]) - dt.date.fromisoformat(window["start_ds"])
    assert span.days + 1 == WINDOW_DAYS, window
    with package_env(airflow_ui["data"], airflow_ui["specs"]):
        version = registry.get_version(get_spec(MODEL), 1)
    assert version.tags["trigger.reason"] == REASON, version.tags
    assert f"user={ADMIN_USER}" in version.tags["trigger.by"], version.tags
