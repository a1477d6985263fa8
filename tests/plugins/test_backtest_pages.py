"""The back-test pages in Airflow's real api-server app: behind Airflow's login and the model's
DAG permissions, like the other reports, rendering the JSON that mlops backtest writes."""

from __future__ import annotations

import json

import pytest
from backtest_report import REPORT
from reports_api import api_server

MODEL = "late_delivery"
BASE = f"/mlops/models/{MODEL}/backtests"
KEY = "2026-03-01_2026-04-30"
PAGES = [f"{BASE}/", f"{BASE}/{KEY}/", f"{BASE}/{KEY}/backtest.json"]


@pytest.fixture(scope="module")
def api(tmp_path_factory, airflow_db):
    with api_server(tmp_path_factory.mktemp("api")) as server:
        yield server


@pytest.fixture
def backtest_report(data_dir):
    folder = data_dir / "lake" / MODEL / "backtests"
    folder.mkdir(parents=True)
    report = {**REPORT, "model": MODEL}
    (folder / f"{KEY}.json").write_text(json.dumps(report))
    return report


@pytest.mark.parametrize("page", PAGES)
def test_a_request_without_credentials_is_refused(api, backtest_report, page):
    reply = api.client.get(page)
    assert reply.status_code == 401 and "2026-03" not in reply.text


def test_a_user_the_auth_manager_gives_no_dag_access_sees_no_backtest(api, backtest_report):
    token = api.token_for("nobody", None)
    for page in PAGES:
        reply = api.client.get(page, headers=api.headers(token))
        assert reply.status_code == 403, page
        assert "29000" not in reply.text


def test_the_model_page_links_its_backtests_and_the_list_links_each(api, backtest_report):
    model_page = api.client.get(f"/mlops/models/{MODEL}/", headers=api.headers())
    assert model_page.status_code == 200 and "href='backtests/'" in model_page.text
    listing = api.client.get(PAGES[0], headers=api.headers())
    assert listing.status_code == 200 and f"<a href='{KEY}/'>2026-03-01 .. 2026-04-30</a>" in listing.text


def test_a_viewer_sees_the_months_and_the_judged_decisions(api, backtest_report):
    reply = api.client.get(PAGES[1], headers=api.headers(api.token_for("viewer1", "viewer")))
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    text = reply.text
    assert "<td>2026-03</td><td>31</td><td>30</td><td>1</td>" in text and "<td>0.8100</td>" in text
    assert "<td>2026-03-12</td><td>v2</td><td>rejected</td><td>v1</td>" in text
    assert "<td class='failed'>wrong</td>" in text


def test_the_json_is_served_as_written(api, backtest_report):
    reply = api.client.get(PAGES[2], headers=api.headers())
    assert reply.status_code == 200 and reply.json() == backtest_report
    assert reply.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("url", [
    f"{BASE}/2026-03-01_2026-05-01/", f"{BASE}/2026-03-01/", f"{BASE}/%2e%2e/", f"{BASE}/{KEY}/other.json",
    f"{BASE}/%2e%2e%2f%2e%2e%2fsecret.txt/", f"{BASE}/{KEY}%2f..%2f..%2f..%2fsecret.txt/backtest.json",
    "/mlops/models/Late/backtests/", f"{BASE}/2026-02-30_2026-04-30/backtest.json",
])
def test_anything_but_a_report_of_the_lake_is_not_found(api, backtest_report, data_dir, url):
    (data_dir / "secret.txt").write_text("top-secret")
    reply = api.client.get(url, headers=api.headers(), follow_redirects=False)
    assert reply.status_code in (400, 404), (url, reply.status_code)
    assert "top-secret" not in reply.text
