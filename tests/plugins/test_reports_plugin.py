"""The reports plugin in Airflow's real api-server app: loaded by the plugins manager, mounted
under /mlops, behind Airflow's login, serving only the lake's reports and the Data Docs.

The lake here holds small hand-written report files (the e2e test serves real Evidently and
Great Expectations output); each test asserts what came back, byte for byte where it matters.
"""

from __future__ import annotations

import json
import os

import pytest
from reports_api import api_server

MODEL = "late_delivery"
BAIT = "top-secret-not-a-report"
EVIDENTLY_HTML = "<html><body><h1>Evidently drift report 2026-03-02</h1><script>render()</script></body></html>"


@pytest.fixture(scope="module")
def api(tmp_path_factory, airflow_db):
    with api_server(tmp_path_factory.mktemp("api")) as server:
        yield server


@pytest.fixture
def lake_files(data_dir, tmp_path):
    """A lake with two days of reports, Data Docs, and bait outside what may be served."""
    reports = data_dir / "lake" / MODEL / "reports"
    good, bad = reports / "validation" / "ds=2026-03-02", reports / "validation" / "ds=2026-03-01"
    drift = reports / "drift" / "ds=2026-03-02"
    for folder in (good, bad, drift):
        folder.mkdir(parents=True)
    (good / "result.json").write_text(json.dumps({"success": True, "rows": 982, "evaluated": 37, "failed": 0}))
    (bad / "result.json").write_text(json.dumps({"success": False, "rows": 1050, "evaluated": 37, "failed": 10}))
    (drift / "summary.json").write_text(json.dumps({
        "drift_share": 0.43, "drift_share_threshold": 0.3, "dataset_drift": True,
        "drifted_columns": ["distance_km", "<script>alert(1)</script>"], "model_version": "1",
    }))
    (drift / "report.html").write_text(EVIDENTLY_HTML)
    quarantine = data_dir / "lake" / MODEL / "quarantine" / "ds=2026-03-01"
    quarantine.mkdir(parents=True)
    (quarantine / "validation.json").write_text(BAIT)
    docs = data_docs_site(data_dir)
    # Bait: inside the data dir but outside what is served, and outside the data dir.
    (data_dir / "secret.txt").write_text(BAIT)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "report.html").write_text(BAIT)
    (outside / "summary.json").write_text(BAIT)
    return {"data": data_dir, "docs": docs, "outside": outside, "reports": reports}


def data_docs_site(data_dir):
    docs = data_dir / "data_docs" / MODEL
    page = docs / "validations" / f"{MODEL}.batch" / f"{MODEL}-2026-03-02" / "20260302T010000Z"
    for folder in (page, docs / "static" / "styles"):
        folder.mkdir(parents=True)
    (docs / "index.html").write_text("<html>Great Expectations Data Docs index</html>")
    (docs / "static" / "styles" / "data_docs_default_styles.css").write_text("body { color: #333; }")
    (page / "batch.html").write_text("<html>validation of 2026-03-02</html>")
    return docs


# ---- the plugins manager ---------------------------------------------------------------------


def test_plugins_manager_loads_the_plugin_without_errors():
    from airflow import plugins_manager
    from airflow.providers.standard.decorators.python import _PythonDecoratedOperator

    plugins, errors = plugins_manager._get_plugins()
    ours = [p for p in plugins if p.name == "mlops_reports"]
    assert len(ours) == 1 and str(ours[0].source).endswith("mlops_reports_plugin.py")
    assert not [path for path in errors if "mlops_reports_plugin" in path], errors
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert [a["url_prefix"] for a in apps if a["name"] == "MLOps model reports"] == ["/mlops"]
    views, _ = plugins_manager._get_ui_plugins()
    assert {"name": "Model reports", "href": "mlops/", "url_route": "model-reports",
            "category": "browse", "destination": "nav"} in views
    links = {link.name: link for link in plugins_manager.get_operator_extra_links()}
    assert set(links) >= {"Drift report", "Validation result", "Data Docs", "MLflow run", "MLflow model version"}
    # Bound to the operator every @task task serializes as, not to every operator.
    assert all(link.operators == [_PythonDecoratedOperator] for link in links.values())
    assert not plugins_manager.get_global_operator_extra_links()


def test_the_api_lists_the_plugin_and_no_import_error(api):
    listed = api.client.get("/api/v2/plugins", headers=api.headers()).json()["plugins"]
    ours = next(p for p in listed if p["name"] == "mlops_reports")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/mlops"
    assert ours["external_views"][0]["name"] == "Model reports"
    errors = api.client.get("/api/v2/plugins/importErrors", headers=api.headers()).json()
    assert errors["total_entries"] == 0, errors


# ---- authentication ----------------------------------------------------------------------------

PAGES = [
    "/mlops/",
    f"/mlops/models/{MODEL}/",
    f"/mlops/models/{MODEL}/drift/2026-03-02/report.html",
    f"/mlops/models/{MODEL}/validation/2026-03-02/result.json",
    f"/mlops/models/{MODEL}/data-docs/index.html",
]


@pytest.mark.parametrize("page", PAGES)
def test_a_request_without_credentials_is_refused(api, lake_files, page):
    reply = api.client.get(page)
    assert reply.status_code == 401
    assert reply.json() == {"detail": "Not authenticated"}


def test_a_browser_without_a_session_is_sent_to_the_login_page_and_back(api, lake_files):
    reply = api.client.get(PAGES[2], headers={"Accept": "text/html"}, follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/auth/login?next=")
    assert "mlops%2Fmodels%2Flate_delivery%2Fdrift%2F2026-03-02%2Freport.html" in reply.headers["location"]


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJIUzUxMiJ9.e30.c2lnbmF0dXJl"])
def test_a_forged_token_is_refused(api, lake_files, token):
    for page in PAGES:
        reply = api.client.get(page, headers=api.headers(token))
        assert reply.status_code == 403, page
        assert BAIT not in reply.text and "Evidently" not in reply.text


def test_an_expired_token_is_refused(api, lake_files):
    token = api.token_for("admin", "admin", expires_in=-60)
    reply = api.client.get(PAGES[2], headers=api.headers(token))
    assert reply.status_code == 401
    assert "Evidently" not in reply.text


def test_a_user_the_auth_manager_gives_no_dag_access_sees_no_report(api, lake_files):
    token = api.token_for("nobody", None)
    index = api.client.get("/mlops/", headers=api.headers(token))
    assert index.status_code == 200 and MODEL not in index.text
    for page in PAGES[1:]:
        assert api.client.get(page, headers=api.headers(token)).status_code == 403, page


def test_a_viewer_is_served(api, lake_files):
    token = api.token_for("viewer1", "viewer")
    reply = api.client.get(PAGES[2], headers=api.headers(token))
    assert reply.status_code == 200 and reply.text == EVIDENTLY_HTML


def test_the_ui_session_cookie_is_accepted(api, lake_files):
    reply = api.client.get(PAGES[3], cookies={"_token": api.admin_token})
    assert reply.status_code == 200 and reply.json()["rows"] == 982


# ---- what is served ------------------------------------------------------------------------------


def test_index_lists_the_models_with_reports(api, lake_files):
    reply = api.client.get("/mlops/", headers=api.headers())
    assert reply.status_code == 200
    assert f"<a href='models/{MODEL}/'>{MODEL}</a>" in reply.text


def test_model_page_lists_each_day_with_its_validation_and_drift(api, lake_files):
    reply = api.client.get(f"/mlops/models/{MODEL}/", headers=api.headers())
    assert reply.status_code == 200
    text = reply.text
    assert text.index("2026-03-02") < text.index("2026-03-01")  # newest first
    assert "passed (37 checks, 982 rows)" in text and "FAILED (10 of 37 checks)" in text
    assert "0.43 / 0.30" in text and "distance_km" in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    assert "href='drift/2026-03-02/report.html'" in text
    assert "href='validation/2026-03-01/result.json'" in text
    assert "href='data-docs/'" in text


def test_model_url_without_trailing_slash_redirects_to_the_page(api, lake_files):
    reply = api.client.get(f"/mlops/models/{MODEL}", headers=api.headers(), follow_redirects=False)
    assert reply.status_code in (307, 308)
    assert reply.headers["location"].endswith(f"/mlops/models/{MODEL}/")


def test_drift_report_is_served_sandboxed(api, lake_files):
    reply = api.client.get(PAGES[2], headers=api.headers())
    assert reply.status_code == 200 and reply.text == EVIDENTLY_HTML
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert reply.headers["x-content-type-options"] == "nosniff"
    summary = api.client.get(f"/mlops/models/{MODEL}/drift/2026-03-02/summary.json", headers=api.headers())
    assert summary.json()["drift_share"] == 0.43


def test_a_rejected_batch_result_is_served(api, lake_files):
    reply = api.client.get(f"/mlops/models/{MODEL}/validation/2026-03-01/result.json", headers=api.headers())
    assert reply.status_code == 200
    assert reply.json() == {"success": False, "rows": 1050, "evaluated": 37, "failed": 10}


def test_data_docs_pages_and_their_styles_are_served(api, lake_files):
    base = f"/mlops/models/{MODEL}/data-docs/"
    index = api.client.get(base, headers=api.headers())
    assert index.status_code == 200 and "Data Docs index" in index.text
    assert "connect-src 'none'" in index.headers["content-security-policy"]
    page = api.client.get(base + f"validations/{MODEL}.batch/{MODEL}-2026-03-02/20260302T010000Z/batch.html",
                          headers=api.headers())
    assert page.text == "<html>validation of 2026-03-02</html>"
    css = api.client.get(base + "static/styles/data_docs_default_styles.css", headers=api.headers())
    assert css.text == "body { color: #333; }" and css.headers["content-type"].startswith("text/css")


def test_only_reads(api, lake_files):
    for method in ("post", "put", "delete"):
        reply = getattr(api.client, method)(PAGES[2], headers=api.headers())
        assert reply.status_code == 405, method


def test_a_day_without_reports_is_not_found(api, lake_files):
    reply = api.client.get(f"/mlops/models/{MODEL}/drift/2026-03-01/report.html", headers=api.headers())
    assert reply.status_code == 404


# ---- traversal -----------------------------------------------------------------------------------

M = f"/mlops/models/{MODEL}"
TRAVERSALS = [
    # dot-dot segments, percent-encoded so that the client sends them as they are
    f"{M}/drift/%2e%2e/report.html",
    f"{M}/drift/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e/secret.txt",
    f"{M}/data-docs/%2e%2e/%2e%2e/secret.txt",
    f"{M}/data-docs/..%2f..%2fsecret.txt",
    f"{M}/data-docs/..%5c..%5csecret.txt",
    f"{M}/data-docs/%2e%2e%2f%2e%2e%2flake%2f{MODEL}%2fquarantine%2fds%3D2026-03-01%2fvalidation.json",
    "/mlops/models/%2e%2e/data-docs/secret.txt",
    "/mlops/models/..%2f..%2f/drift/2026-03-02/report.html",
    # absolute paths
    f"{M}/data-docs//etc/passwd",
    f"{M}/data-docs/%2fetc%2fpasswd",
    f"{M}/drift/%2fetc%2fpasswd/report.html",
    # names and dates that are not what the lake uses
    "/mlops/models/Late_Delivery/drift/2026-03-02/report.html",
    "/mlops/models/late_delivery%0a/drift/2026-03-02/report.html",
    "/mlops/models/late-delivery/",
    f"{M}/drift/2026-3-2/report.html",
    f"{M}/drift/20260302/report.html",
    f"{M}/drift/2026-02-30/report.html",
    f"{M}/drift/ds=2026-03-02/report.html",
    # files the lake has but the app does not serve
    f"{M}/quarantine/2026-03-01/validation.json",
    f"{M}/validation/2026-03-02/report.html",
    f"{M}/drift/2026-03-02/summary.json.bak",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_paths_outside_the_reports_are_refused(api, lake_files, url):
    reply = api.client.get(url, headers=api.headers(), follow_redirects=False)
    assert reply.status_code in (400, 404), (url, reply.status_code)
    assert BAIT not in reply.text and "root:" not in reply.text


def test_symlinks_out_of_the_lake_are_not_followed(api, lake_files):
    reports, outside, docs = lake_files["reports"], lake_files["outside"], lake_files["docs"]
    # a report file that is a link out of the lake
    (reports / "drift" / "ds=2026-03-02" / "report.html").unlink()
    (reports / "drift" / "ds=2026-03-02" / "report.html").symlink_to(outside / "report.html")
    # a day folder that is a link out of the lake
    (reports / "drift" / "ds=2026-03-03").symlink_to(outside, target_is_directory=True)
    # Data Docs: a linked file and a linked folder
    (docs / "leak.html").symlink_to(outside / "report.html")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    for url in (f"{M}/drift/2026-03-02/report.html", f"{M}/drift/2026-03-03/report.html",
                f"{M}/drift/2026-03-03/summary.json", f"{M}/data-docs/leak.html", f"{M}/data-docs/linked/report.html"):
        reply = api.client.get(url, headers=api.headers())
        assert reply.status_code == 404, url
        assert BAIT not in reply.text
    page = api.client.get(f"{M}/", headers=api.headers())
    assert BAIT not in page.text and "2026-03-03" in page.text  # listed, but its files are not served


def test_a_model_folder_linked_out_of_the_lake_is_not_served(api, lake_files):
    lake = lake_files["data"] / "lake"
    elsewhere = lake_files["outside"] / "other_model" / "reports" / "drift" / "ds=2026-03-02"
    elsewhere.mkdir(parents=True)
    (elsewhere / "report.html").write_text(BAIT)
    os.symlink(lake_files["outside"] / "other_model", lake / "other_model", target_is_directory=True)
    reply = api.client.get("/mlops/models/other_model/drift/2026-03-02/report.html", headers=api.headers())
    assert reply.status_code == 404 and BAIT not in reply.text
