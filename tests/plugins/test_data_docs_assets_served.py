"""The vendored Data Docs assets reach the browser through the reports app: a rewritten page's
relative URLs resolve, under /mlops/models/<model>/data-docs/, to the files copied into the site,
served by Airflow's real api-server app (behind its login) with the right content types.
The page rendering offline in Chromium: tests/browser/test_data_docs_offline.py."""

from __future__ import annotations

import posixpath

import pytest
from reports_api import api_server

from mlops_lifecycle import data_docs_assets

MODEL = "late_delivery"
PAGE = f"validations/{MODEL}.batch/{MODEL}-2026-03-02/20260302T010000Z/batch.html"


@pytest.fixture(scope="module")
def api(tmp_path_factory, airflow_db):
    with api_server(tmp_path_factory.mktemp("api")) as server:
        yield server


def test_a_rewritten_page_loads_its_assets_from_the_reports_app(api, data_dir):
    site = data_dir / "data_docs" / MODEL
    (site / PAGE).parent.mkdir(parents=True)
    cdn = ('<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>'
           '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>')
    (site / "index.html").write_text(cdn)
    (site / PAGE).write_text(cdn)
    assert data_docs_assets.localize_site(site) == 2

    base = f"/mlops/models/{MODEL}/data-docs/"
    page = api.client.get(base + PAGE, headers=api.headers())
    assert page.status_code == 200 and "https://" not in page.text
    for ref, kind in ((page.text.split('href="')[1].split('"')[0], "text/css"),
                      (page.text.split('src="')[1].split('"')[0], "javascript")):
        url = posixpath.normpath(posixpath.join(posixpath.dirname(base + PAGE), ref))
        reply = api.client.get(url, headers=api.headers())
        assert reply.status_code == 200, url
        assert kind in reply.headers["content-type"], (url, reply.headers["content-type"])
        assert reply.content == (data_docs_assets.VENDORED / ref.split("static/vendor/")[1]).read_bytes()
    # Behind the login, like every page of the site.
    assert api.client.get(base + "static/vendor/jquery/jquery.min.js").status_code in (302, 303, 307, 401, 403)
