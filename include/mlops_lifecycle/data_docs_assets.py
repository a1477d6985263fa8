"""Great Expectations Data Docs that render offline: the CDN assets, vendored and linked relatively.

GX 1.24's page templates load bootstrap, bootstrap-table, jQuery, popper, font-awesome, vega and
a dark-mode logo from public CDNs and S3; without internet the pages come up as unstyled text.
:func:`localize_site` copies the vendored files (``static/data_docs/`` beside this module, see its
README for versions and licences) into the site as ``static/vendor/`` and rewrites every page of
the site to load them with a relative path, so a page renders the same when served under
``/mlops/models/<model>/data-docs/`` and when opened from disk, and makes no request off the
machine. Pages already rewritten are left as they are; a page GX writes again is rewritten again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

from mlops_lifecycle import lake

log = logging.getLogger(__name__)

VENDORED = Path(__file__).resolve().parent / "static" / "data_docs"
# Where the vendored files go inside a Data Docs site (beside GX's own static/ folders).
SITE_VENDOR = "static/vendor"

# Every URL GX 1.24's templates (render/view/templates/*.j2 and data_docs_default_styles.css)
# load, and the vendored file that replaces it.
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark/bootstrap-prefers-dark.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega/vega-embed.min.js",
}
# GX's logos come from its S3 bucket: the navbar's (``top_navbar.j2``, with a time stamp and the
# data context id in the query) and the dark-mode one in the inline styles. GX ships the logo in
# the site's static/images.
GX_ASSET_HOST = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
LOGO_URL = GX_ASSET_HOST + "full_logo_dark.png"
LOGO_FILE = "static/images/logo-long.png"

# A quoted CDN URL in a page (src="...", href='...', url('...')); longest first, so that
# ".../vega@5" never matches inside ".../vega-lite@5". Any picture from GX's bucket, with any query.
_ALTERNATIVES = "|".join(re.escape(u) for u in sorted(CDN_ASSETS, key=len, reverse=True))
_URL_RE = re.compile(r"""(["'])(""" + _ALTERNATIVES + "|" + re.escape(GX_ASSET_HOST)
                     + r"""[A-Za-z0-9_.-]+\.(?:png|svg|jpg|gif)(?:\?[^"'\s]*)?)\1""")
# Subresource-integrity and CORS attributes pinned to the CDN copies; meaningless for a local file.
_SRI_RE = re.compile(r"""\s+(?:integrity|crossorigin)=(["'])[^"']*\1""")


def _fingerprint() -> str:
    """A hash of the vendored files (names and contents): a site holding another copy is renewed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in VENDORED.rglob("*") if p.is_file()):
        digest.update(path.relative_to(VENDORED).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def install_assets(site_dir: Path) -> Path:
    """Copy the vendored files into ``site_dir/static/vendor`` unless the same copy is there
    (swapped in whole with :func:`lake.replace_dir`: a page never sees half a folder)."""
    target = site_dir / SITE_VENDOR
    stamp = f".vendored-{_fingerprint()}"
    if (target / stamp).exists():
        return target

    def build(tmp: Path) -> None:
        shutil.copytree(VENDORED, tmp, dirs_exist_ok=True)
        (tmp / stamp).write_text("copied by mlops_lifecycle.data_docs_assets\n")

    return lake.replace_dir(target, build)


def localize_page(html: str, page_dir_to_site: str) -> str:
    """``html`` with every CDN asset pointed at the vendored copy; ``page_dir_to_site`` is the
    relative path from the page's folder to the site root ("." or "../..")."""

    def local(match: re.Match) -> str:
        quote, url = match.group(1), match.group(2)
        rel = LOGO_FILE if url.startswith(GX_ASSET_HOST) else f"{SITE_VENDOR}/{CDN_ASSETS[url]}"
        return f"{quote}{page_dir_to_site}/{rel}{quote}"

    out = _URL_RE.sub(local, html)
    # Only on tags whose CDN URL was replaced: <script src=".../static/vendor/..." integrity=...>.
    return re.sub(r"<(?:script|link)\b[^>]*" + re.escape(SITE_VENDOR) + r"/[^>]*>",
                  lambda m: _SRI_RE.sub("", m.group(0)), out)


def localize_site(site_dir: str | Path) -> int:
    """Make a Data Docs site render offline: install the assets, rewrite its pages that still
    load from a CDN. Returns the number of pages rewritten. Each page is replaced atomically."""
    site = Path(site_dir)
    if not (site / "index.html").exists():
        return 0
    install_assets(site)
    changed = 0
    for page in site.rglob("*.html"):
        if SITE_VENDOR in page.relative_to(site).as_posix() or page.is_symlink():
            continue
        html = page.read_text(encoding="utf-8")
        if not _URL_RE.search(html):
            continue
        up = os.path.relpath(site, page.parent).replace(os.sep, "/")
        lake.write_text(page, localize_page(html, up))
        changed += 1
    return changed
