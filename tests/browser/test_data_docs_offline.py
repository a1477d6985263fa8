"""Great Expectations Data Docs render styled with the network closed, in headless Chromium.

Two days of the example model are ingested and validated with Data Docs on (the real GX
checkpoint, as the daily DAG's ``validate`` task runs it); the site is served from localhost
with the Content-Security-Policy the /mlops app sends with it. Chromium opens a day's validation
page and the site's index while every request that leaves localhost is aborted and recorded:
none may be needed, no local asset may be missing, and the page must be styled (bootstrap's
card, font-awesome's icons, jQuery, bootstrap-table and vega loaded).

Skips when Chromium or Playwright is missing, unless ``MLOPS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
from live_airflow import load_e2e_specs, package_env, skip_or_fail

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DAYS = [dt.date(2026, 3, 1), dt.date(2026, 3, 2)]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A model's Data Docs site after two validated days, and the page of the older one."""
    if not CHROMIUM.exists():
        skip_or_fail(f"browser test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("browser test needs the playwright package (pip install -r requirements-dev.txt)")
    base = tmp_path_factory.mktemp("data_docs_offline")
    with package_env(base / "data", base / "specs"):
        load_e2e_specs().write_small_spec(base / "specs")
        from mlops_lifecycle import ingestion, lake, report_server, validation
        from mlops_lifecycle.examples import late_delivery
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
        late_delivery.write_landing(template, DAYS, rows=200)
        for day in DAYS:
            ingestion.ingest(spec, day)
            validation.validate_partition(spec, day, docs=True)
        root = lake.data_docs_dir() / spec.name
        # The older day's page when the site keeps it, else the newest day's.
        page = (report_server.data_docs_page_for_day(spec.name, DAYS[0])
                or report_server.data_docs_page_for_day(spec.name, DAYS[1]))
        assert page, sorted(report_server.data_docs_files(spec.name))
        yield {"root": root, "page": page, "csp": report_server.DATA_DOCS_CSP}


@contextlib.contextmanager
def served(root: Path, csp: str):
    """The site over HTTP on localhost, with the CSP header the /mlops app sends."""

    class Handler(SimpleHTTPRequestHandler):
        def end_headers(self):
            self.send_header("Content-Security-Policy", csp)
            super().end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _open_offline(url: str) -> dict:
    """Open ``url`` with every non-localhost request aborted; what was blocked, missing and seen."""
    from playwright.sync_api import sync_playwright

    blocked, missing = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def route(r):
                host = urlparse(r.request.url).hostname
                if r.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("response", lambda resp: missing.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)
            page.on("requestfailed", lambda req: None if req.url in blocked else missing.append(f"failed {req.url}"))
            page.goto(url, wait_until="networkidle")
            page.evaluate("document.fonts.ready.then(() => true)")
            seen = page.evaluate("""() => {
                const css = (sel, prop) => { const e = document.querySelector(sel);
                                             return e ? getComputedStyle(e)[prop] : null; };
                return {
                  jquery: typeof window.jQuery === 'function',
                  bootstrapTable: !!(window.jQuery && window.jQuery.fn.bootstrapTable),
                  bootstrapJs: !!(window.jQuery && window.jQuery.fn.collapse),
                  vegaEmbed: typeof window.vegaEmbed === 'function',
                  bodyFont: getComputedStyle(document.body).fontFamily,
                  cardRadius: css('.card', 'borderTopLeftRadius'),
                  iconFont: css('.fas, .fa', 'fontFamily'),
                  iconFontLoaded: document.fonts.check('900 16px "Font Awesome 6 Free"'),
                  title: document.title,
                  text: document.body.innerText.slice(0, 4000),
                };
            }""")
        finally:
            browser.close()
    return {"blocked": blocked, "missing": missing, "seen": seen}


def test_a_validation_page_renders_styled_with_the_network_closed(site):
    with served(site["root"], site["csp"]) as url:
        got = _open_offline(f"{url}/{site['page']}")
    seen = got["seen"]
    assert got["blocked"] == [], f"the page needed the internet: {got['blocked']}"
    assert got["missing"] == [], f"local assets missing: {got['missing']}"
    assert seen["jquery"] and seen["bootstrapJs"] and seen["bootstrapTable"] and seen["vegaEmbed"], seen
    # Bootstrap 4's style sheet: its font stack and its rounded cards.
    assert "-apple-system" in seen["bodyFont"] or "Segoe UI" in seen["bodyFont"], seen["bodyFont"]
    assert seen["cardRadius"] not in (None, "0px"), seen
    assert "Font Awesome" in (seen["iconFont"] or "") and seen["iconFontLoaded"], seen
    assert "late_delivery" in seen["text"] and "Expectation" in seen["text"], seen["text"][:500]


def test_the_site_index_renders_offline_too(site):
    with served(site["root"], site["csp"]) as url:
        got = _open_offline(f"{url}/index.html")
    assert got["blocked"] == [] and got["missing"] == [], got
    assert got["seen"]["jquery"] and got["seen"]["bootstrapTable"], got["seen"]
