"""Data Docs without the internet: every asset GX's templates load from a CDN has a vendored
copy, pages are rewritten to it with relative paths, and the site gets the files.
The pages in a real browser with the network blocked: tests/browser/test_data_docs_offline.py."""

from __future__ import annotations

import re
from pathlib import Path

import great_expectations

from mlops_lifecycle import data_docs_assets as assets

GX_VIEWS = Path(great_expectations.__file__).parent / "render" / "view"
# What a page loads (not what it links to): <script src>, <link href>, CSS url().
LOADED = re.compile(r"""(?:<script[^>]*\ssrc=|<link[^>]*\shref=|url\()\s*["']?(https?://[^"')\s]+)""")


def test_every_asset_gx_templates_load_from_the_internet_is_vendored():
    found = set()
    for path in [*GX_VIEWS.glob("templates/*.j2"), *GX_VIEWS.glob("static/styles/*.css")]:
        found |= set(LOADED.findall(path.read_text()))
    assert found, "no CDN asset found: the pattern no longer matches GX's templates"
    assert found <= {*assets.CDN_ASSETS, assets.LOGO_URL}, sorted(found - {*assets.CDN_ASSETS, assets.LOGO_URL})
    for rel in assets.CDN_ASSETS.values():
        assert (assets.VENDORED / rel).is_file(), rel
    assert (GX_VIEWS / assets.LOGO_FILE).is_file()
    # The navbar's logo URL is put together in the template, from GX's bucket: handled by host.
    assert assets.GX_ASSET_HOST in (GX_VIEWS / "templates" / "top_navbar.j2").read_text()
    # Each vendored package carries its licence.
    for folder in {rel.split("/")[0] for rel in assets.CDN_ASSETS.values()}:
        assert list((assets.VENDORED / folder).glob("LICENSE*")), folder


def test_a_page_is_pointed_at_the_vendored_copies_by_relative_paths():
    html = (
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script>'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
        '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" '
        'integrity="sha384-abc" crossorigin="anonymous"></script>\n'
        "<style>.x { background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
        "full_logo_dark.png') }</style>\n"
        '<a href="https://docs.greatexpectations.io/">docs</a>\n'
        '<img class="NO-CACHE" src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png'
        '?d=20261204T232742.509847Z&dataContextId=abc" alt="Great Expectations"/>'
    )
    out = assets.localize_page(html, "../..")
    assert 'href="../../static/vendor/bootstrap/bootstrap.min.css"' in out
    assert 'src="../../static/vendor/vega/vega-lite.min.js"' in out and 'src="../../static/vendor/vega/vega.min.js"' in out
    assert '<script src="../../static/vendor/bootstrap/bootstrap.min.js"></script>' in out
    assert "url('../../static/images/logo-long.png')" in out
    assert '<img class="NO-CACHE" src="../../static/images/logo-long.png" alt=' in out
    # Links a person may follow stay as they are; nothing else points off the machine.
    assert '<a href="https://docs.greatexpectations.io/">' in out
    assert not LOADED.findall(out)
    assert assets.localize_page(out, "../..") == out


def test_a_site_gets_the_assets_and_its_pages_are_rewritten_in_place(tmp_path):
    site = tmp_path / "site"
    page = site / "validations" / "suite" / "run" / "page.html"
    page.parent.mkdir(parents=True)
    cdn = '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
    (site / "index.html").write_text(cdn)
    page.write_text(cdn)
    assert assets.localize_site(site) == 2
    assert (site / "index.html").read_text() == '<script src="./static/vendor/jquery/jquery.min.js"></script>'
    assert page.read_text() == '<script src="../../../static/vendor/jquery/jquery.min.js"></script>'
    assert (site / "static/vendor/jquery/jquery.min.js").read_bytes() == (
        assets.VENDORED / "jquery/jquery.min.js").read_bytes()
    assert (site / "static/vendor/fontawesome/webfonts/fa-solid-900.woff2").is_file()
    assert assets.localize_site(site) == 0, "pages already rewritten are left alone"
    assert not list(site.glob("static/.*")), "no temporary folder is left behind"
