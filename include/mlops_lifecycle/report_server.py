"""Serve the lake's drift and validation reports and the Data Docs, read-only, in the Airflow api-server.

The plugin in ``plugins/mlops_reports_plugin.py`` mounts :data:`app` under ``/mlops``::

    /mlops/                                        the models the user may see
    /mlops/models/<model>/                         one row per day: validation, drift share, links
    /mlops/models/<model>/drift/<ds>/report.html   Evidently's report (and summary.json)
    /mlops/models/<model>/validation/<ds>/result.json
    /mlops/models/<model>/data-docs/<path>         the model's Great Expectations Data Docs site
    /mlops/models/<model>/backtests/               the model's back-tests (mlops backtest)
    /mlops/models/<model>/backtests/<from>_<to>/   one back-test: months, decisions (+ backtest.json)

**Paths.** Nothing a request sends is joined into a path. A model name must be a spec
identifier and a day a ``YYYY-MM-DD`` date, re-formatted from the parsed date; a report is one
of three fixed names; a Data Docs page is looked up, by its text, among the regular files found
by walking that model's site (symlinks are neither followed nor listed). Whatever is served must
still resolve inside that model's own folder (of the lake, or of the Data Docs), so a symlink
planted in the lake can point neither out of it nor at another model's files. Anything else is a 404 that says no more than "not found".

**Authentication.** Airflow 3.3 does not authenticate plugin apps: ``init_plugins`` in
``airflow/api_fastapi/app.py`` attaches them with a bare ``app.mount()``, and the core API's
router-level auth dependency does not reach a mounted app (its own route table), nor does any
api-server middleware check credentials. So every route here depends on Airflow's own
``GetUserDep`` (``airflow/api_fastapi/core_api/security.py``: the ``Authorization: Bearer`` JWT,
else the UI's ``_token`` cookie, validated by the configured auth manager) and on
``requires_access_dag``: a user sees a model's reports only if the auth manager lets them read
the task instances of that model's daily DAG, as for the task's extra links. A browser without a
session is sent to the auth manager's login page and back.

**Untrusted HTML.** The reports embed values from the source data and are served on Airflow's
origin, so each HTML file carries a Content-Security-Policy: Evidently's self-contained report
runs sandboxed (an opaque origin: its scripts cannot use the session or call the Airflow API);
Data Docs pages, which load their styles from the same site, may neither fetch nor post.

Importing this module is cheap (no FastAPI, no Airflow API code, no file access): every Airflow
process imports the plugin, and the app is built on its first request in the api-server.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures in create_app(),
# whose types are imported inside it, at run time.
import datetime as dt
import html
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_lifecycle import lake
from mlops_lifecycle.spec import IDENTIFIER

log = logging.getLogger(__name__)

URL_PREFIX = "/mlops"
# (kind, file name) pairs the app serves from ``reports/<kind>/ds=<day>/``; nothing else.
REPORT_FILES = {("drift", "report.html"), ("drift", "summary.json"), ("validation", "result.json")}
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

EVIDENTLY_CSP = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-downloads"
DATA_DOCS_CSP = "connect-src 'none'; form-action 'none'; base-uri 'none'; object-src 'none'"


class NotServed(LookupError):
    """The request names nothing this app serves (bad name, bad date, missing, or outside the lake)."""


# ---- names and paths -----------------------------------------------------------------------


def checked_model(model: str) -> str:
    """``model`` if it is a spec identifier (the whole string), else :class:`NotServed`."""
    if not isinstance(model, str) or not IDENTIFIER.fullmatch(model):
        raise NotServed("not found")
    return model


def checked_day(ds: str) -> dt.date:
    """The date of a ``YYYY-MM-DD`` partition key, else :class:`NotServed`."""
    if not isinstance(ds, str) or not _DAY.fullmatch(ds):
        raise NotServed("not found")
    try:
        return dt.date.fromisoformat(ds)
    except ValueError:
        raise NotServed("not found") from None


def _inside(path: Path, root: Path, model: str | None = None) -> Path:
    """The resolved regular file ``path``, provided it resolves inside ``root`` (inside
    ``root/<model>`` when a model is named: that folder is not resolved, so a model folder
    that is itself a link to another model's resolves outside it)."""
    try:
        real = path.resolve(strict=True)
        base = root.resolve(strict=True)
        base = base / checked_model(model) if model is not None else base
    except (OSError, RuntimeError):
        raise NotServed("not found") from None
    if not real.is_relative_to(base) or not real.is_file():
        raise NotServed("not found")
    return real


def report_file(model: str, kind: str, ds: str, name: str) -> Path:
    """The file of one day's report: ``reports/<kind>/ds=<day>/<name>`` of a model in the lake.

    Raises:
        NotServed: unknown kind or name, a bad model name or date, a missing file, or a file
            that resolves outside the lake.
    """
    if (kind, name) not in REPORT_FILES:
        raise NotServed("not found")
    day = checked_day(ds)
    model = checked_model(model)
    # The model's own folder, not the lake: a symlink in one model's reports must not serve another's
    # files (the user was authorised for this model only).
    return _inside(lake.report_dir(model, kind, day) / name, lake.root(), model)


def data_docs_root(model: str) -> Path:
    """The folder of a model's Data Docs site (it may not exist)."""
    return lake.data_docs_dir() / checked_model(model)


def data_docs_files(model: str) -> dict[str, Path]:
    """Every regular file of a model's Data Docs site, keyed by its ``/``-separated relative path.

    The walk follows no symlink and lists none, and skips hidden names (temporary files).
    """
    base = data_docs_root(model)
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(folder, d)))
        for name in files:
            full = os.path.join(folder, name)
            if name.startswith(".") or not stat.S_ISREG(os.lstat(full).st_mode):
                continue
            found[os.path.relpath(full, base).replace(os.sep, "/")] = Path(full)
    return found


def data_docs_file(model: str, page: str) -> Path:
    """The Data Docs file a request names (``""`` or a folder ending in ``/`` means its index.html).

    ``page`` is only ever a key looked up among :func:`data_docs_files`; it is never joined
    into a path. Raises :class:`NotServed` when there is no such file.
    """
    if page == "" or page.endswith("/"):
        page += "index.html"
    files = data_docs_files(model)
    if page not in files:
        raise NotServed("not found")
    return _inside(files[page], lake.data_docs_dir(), model)


def data_docs_page_for_day(model: str, ds: str | dt.date) -> str | None:
    """Relative path of the newest Data Docs validation page of a model's day, if any.

    The validation pages live at ``validations/<suite>/<run name>/<run time>/<batch>.html`` and
    the run name of a daily batch is ``<model>-<YYYY-MM-DD>`` (see validation.validate_frame).
    """
    run_name = f"{checked_model(model)}-{lake.as_date(ds).isoformat()}"
    pages = [
        rel for rel in data_docs_files(model)
        if rel.startswith("validations/") and rel.endswith(".html") and f"/{run_name}/" in rel
    ]
    return max(pages, key=lambda rel: rel.split("/")[-2]) if pages else None


# ---- what the pages list -------------------------------------------------------------------


def models() -> list[str]:
    """Models with a folder in the lake or a Data Docs site, sorted."""
    names: set[str] = set()
    for root in (lake.root(), lake.data_docs_dir()):
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if IDENTIFIER.fullmatch(p.name) and p.is_dir())
    return sorted(names)


def _read_json(model: str, kind: str, day: dt.date, name: str) -> dict[str, Any] | None:
    """A report's JSON, ``None`` when missing, ``{"unreadable": True}`` when not JSON."""
    try:
        payload = json.loads(report_file(model, kind, day.isoformat(), name).read_text(encoding="utf-8"))
    except NotServed:
        return None
    except (OSError, ValueError):
        return {"unreadable": True}
    return payload if isinstance(payload, dict) else {"unreadable": True}


def day_rows(model: str) -> list[dict[str, Any]]:
    """One row per day that has a validation result or a drift report, newest first.

    Each row: ``ds``, ``validation`` (``success``, ``rows``, ``evaluated``, ``failed``) and
    ``drift`` (``drift_share``, ``threshold``, ``dataset_drift``, ``drifted_columns``,
    ``model_version``, ``report``: whether the HTML report exists), either ``None`` when the
    day has none.
    """
    model = checked_model(model)
    rows = []
    for day in sorted(set(lake.report_days(model, "validation")) | set(lake.report_days(model, "drift")), reverse=True):
        result = _read_json(model, "validation", day, "result.json")
        summary = _read_json(model, "drift", day, "summary.json")
        validation = None if result is None else {
            "success": result.get("success"), "rows": result.get("rows"),
            "evaluated": result.get("evaluated"), "failed": result.get("failed"),
            "unreadable": result.get("unreadable", False),
        }
        drift = None if summary is None else {
            "drift_share": summary.get("drift_share"), "threshold": summary.get("drift_share_threshold"),
            "dataset_drift": summary.get("dataset_drift"), "drifted_columns": summary.get("drifted_columns") or [],
            "model_version": summary.get("model_version"), "unreadable": summary.get("unreadable", False),
        }
        html_report = has_report(model, "drift", day.isoformat(), "report.html")
        if drift is not None or html_report:
            drift = (drift or {}) | {"report": html_report}
        rows.append({"ds": day.isoformat(), "validation": validation, "drift": drift})
    return rows


def has_report(model: str, kind: str, ds: str, name: str) -> bool:
    """Whether :func:`report_file` would serve this file."""
    try:
        report_file(model, kind, ds, name)
    except NotServed:
        return False
    return True


# ---- HTML ----------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2933; }
table { border-collapse: collapse; } th, td { padding: .3rem .8rem; border-bottom: 1px solid #d9e2ec; text-align: left; }
th { background: #f0f4f8; } table.months td { white-space: nowrap; } .failed { color: #b42318; font-weight: 600; } .drift { color: #b54708; font-weight: 600; }
.muted { color: #829ab1; } a { color: #0b6bcb; } .good { color: #067647; font-weight: 600; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def render_models_page(names: list[str]) -> str:
    """The index of models (links relative to ``/mlops/``)."""
    if not names:
        return _page("Model reports", "<p class='muted'>No model has reports yet, or none you may see.</p>")
    items = "".join(f"<li><a href='models/{html.escape(n)}/'>{html.escape(n)}</a></li>" for n in names)
    return _page("Model reports", f"<ul>{items}</ul>")


def _validation_cell(v: dict[str, Any] | None, ds: str) -> str:
    if v is None:
        return "<td class='muted'>-</td>"
    link = f"<a href='validation/{ds}/result.json'>result.json</a>"
    if v["unreadable"]:
        return f"<td class='failed'>unreadable {link}</td>"
    if v["success"]:
        return f"<td>passed ({v['evaluated']} checks, {v['rows']} rows) {link}</td>"
    return f"<td class='failed'>FAILED ({v['failed']} of {v['evaluated']} checks) {link}</td>"


def _drift_cell(d: dict[str, Any] | None, ds: str) -> str:
    if d is None:
        return "<td class='muted'>-</td><td></td>"
    links = []
    if d.get("report"):
        links.append(f"<a href='drift/{ds}/report.html'>report</a>")
    if "drift_share" in d:
        links.append(f"<a href='drift/{ds}/summary.json'>summary.json</a>")
    share = d.get("drift_share")
    if d.get("unreadable") or not isinstance(share, int | float):
        text, cls = "unreadable" if d.get("unreadable") else "-", "muted"
    else:
        threshold = d.get("threshold")
        text = f"{share:.2f}" + (f" / {threshold:.2f}" if isinstance(threshold, int | float) else "")
        cls = "drift" if d.get("dataset_drift") else ""
        if d.get("drifted_columns"):
            text += " (" + ", ".join(html.escape(str(c)) for c in d["drifted_columns"]) + ")"
    version = html.escape(str(d["model_version"])) if d.get("model_version") is not None else ""
    return f"<td class='{cls}'>{text} {' '.join(links)}</td><td>{('v' + version) if version else ''}</td>"


def render_model_page(model: str, rows: list[dict[str, Any]], *, data_docs: bool, backtests: bool = False) -> str:
    """A model's days (links relative to ``/mlops/models/<model>/``)."""
    model = checked_model(model)
    head = "<p><a href='../../'>All models</a>"
    head += " · <a href='data-docs/'>Data Docs</a>" if data_docs else ""
    head += " · <a href='backtests/'>Back-tests</a></p>" if backtests else "</p>"
    if not rows:
        return _page(f"{model}: reports", head + "<p class='muted'>No validation result or drift report yet.</p>")
    body = "".join(
        f"<tr id='ds-{r['ds']}'><td>{r['ds']}</td>{_validation_cell(r['validation'], r['ds'])}"
        f"{_drift_cell(r['drift'], r['ds'])}</tr>"
        for r in rows
    )
    table = ("<table><tr><th>Day</th><th>Validation (Great Expectations)</th>"
             "<th>Drift share / threshold (Evidently)</th><th>Champion</th></tr>" + body + "</table>")
    return _page(f"{model}: reports", head + table)


# ---- back-tests (mlops backtest) ------------------------------------------------------------

_BACKTEST_KEY = re.compile(r"(?P<start>[0-9]{4}-[0-9]{2}-[0-9]{2})_(?P<end>[0-9]{4}-[0-9]{2}-[0-9]{2})")


def backtest_keys(model: str) -> list[str]:
    """The ``<from>_<to>`` keys of a model's back-test reports, newest range first."""
    return [f"{start.isoformat()}_{end.isoformat()}" for start, end in lake.backtests(checked_model(model))]


def backtest_file(model: str, key: str) -> Path:
    """The JSON report of one back-test (``lake/<model>/backtests/<from>_<to>.json``).

    ``key`` is parsed into two dates, re-formatted and handed to :func:`lake.backtest_file`;
    it is never joined into a path. Raises :class:`NotServed` for a bad key, a missing file or
    one that resolves outside the lake.
    """
    match = _BACKTEST_KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise NotServed("not found")
    start, end = checked_day(match["start"]), checked_day(match["end"])
    return _inside(lake.backtest_file(checked_model(model), start, end), lake.root())


def read_backtest(model: str, key: str) -> dict[str, Any]:
    """A back-test report; ``{"unreadable": True}`` when it is not a JSON object (NotServed when missing)."""
    path = backtest_file(model, key)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"unreadable": True}
    return payload if isinstance(payload, dict) else {"unreadable": True}


def render_backtests_page(model: str, keys: list[str]) -> str:
    """The list of a model's back-tests (links relative to ``/mlops/models/<model>/backtests/``)."""
    model = checked_model(model)
    head = "<p><a href='../'>" + html.escape(model) + "</a> · <a href='../../../'>All models</a></p>"
    if not keys:
        return _page(f"{model}: back-tests", head + "<p class='muted'>No back-test yet: run <code>mlops backtest "
                     + html.escape(model) + " --from-date ... --to-date ...</code>.</p>")
    items = "".join(f"<li><a href='{html.escape(k)}/'>{html.escape(k.replace('_', ' .. '))}</a></li>" for k in keys)
    return _page(f"{model}: back-tests", head + f"<ul>{items}</ul>")


def _cell(value: Any, *, digits: int = 4, sign: bool = False, cls: str = "") -> str:
    """A table cell for a number from the report (anything else is shown as '-')."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "<td class='muted'>-</td>"
    text = f"{value:+.{digits}f}" if sign else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))
    return f"<td class='{cls}'>{text}</td>" if cls else f"<td>{text}</td>"


def _gain_cell(value: Any) -> str:
    cls = "" if not isinstance(value, int | float) or isinstance(value, bool) else ("good" if value > 0 else "failed")
    return _cell(value, sign=True, cls=cls)


_MONTH_COLUMNS = (("days", "Days"), ("scored_days", "Scored"), ("quarantined_days", "Quar."),
                  ("missing_days", "Missing"), ("warnings", "Warn."), ("alerts", "Alerts"),
                  ("retrain_requests", "Retrain"), ("promotions", "Prom."), ("rejections", "Rej."),
                  ("labelled_rows", "Rows"))


def render_backtest_page(model: str, key: str, report: dict[str, Any]) -> str:
    """One back-test: per month the counts and the metric of what was scored against the stale
    first model and the periodic refit, then every promotion or rejection and whether it was right.

    Every value from the report is escaped or formatted as a number; the report is data
    written by ``mlops backtest``, not trusted markup.
    """
    model = checked_model(model)
    title = f"{model}: back-test {key.replace('_', ' .. ')}"
    head = ("<p><a href='../'>All back-tests</a> · <a href='../../'>" + html.escape(model) + "</a> · "
            "<a href='backtest.json'>backtest.json</a></p>")
    if report.get("unreadable"):
        return _page(title, head + "<p class='failed'>The report is not readable JSON.</p>")
    metric = html.escape(str(report.get("metric", "metric")))
    options = report.get("options") if isinstance(report.get("options"), dict) else {}
    first = report.get("first_model") if isinstance(report.get("first_model"), dict) else {}
    intro = (f"<p>Metric: <b>{metric}</b> ({'higher' if report.get('higher_is_better') else 'lower'} is better). "
             f"<b>Scored</b>: what the policy's champion scored each day; <b>stale</b>: the first model "
             f"v{html.escape(str(first.get('version', '?')))}, never replaced; <b>refit</b>: retrained every "
             f"{html.escape(str(options.get('refit_every_days', '?')))} days on the last "
             f"{html.escape(str(options.get('refit_window_days', '?')))} days. <b>vs</b>: how much better what was "
             "scored is, on the same labelled rows (positive: better).</p>")
    heads = "".join(f"<th>{h}</th>" for _, h in _MONTH_COLUMNS)
    table = (f"<table class='months'><tr><th>Month</th>{heads}<th>{metric} scored</th><th>stale</th><th>refit</th>"
             "<th>vs stale</th><th>vs refit</th></tr>")
    months = [m for m in report.get("months") or [] if isinstance(m, dict)]
    total = report.get("total") if isinstance(report.get("total"), dict) else None
    for row, label in [*((m, str(m.get("month", "?"))) for m in months), *(((total, "total"),) if total else ())]:
        cells = "".join(_cell(row.get(k)) for k, _ in _MONTH_COLUMNS)
        table += (f"<tr><td>{html.escape(label)}</td>{cells}{_cell(row.get('scored'))}{_cell(row.get('stale'))}"
                  f"{_cell(row.get('refit'))}{_gain_cell(row.get('gain_vs_stale'))}"
                  f"{_gain_cell(row.get('gain_vs_refit'))}</tr>")
    table += "</table>"
    if total and isinstance(total.get("alerts_by_kind"), dict):
        kinds = ", ".join(f"{html.escape(str(k))} {html.escape(str(v))}" for k, v in sorted(total["alerts_by_kind"].items()))
        table += f"<p>Alerts by kind: {kinds or 'none'}.</p>"
    decisions = [d for d in report.get("decisions") or [] if isinstance(d, dict)]
    body = (f"<h2>Promotions and rejections</h2><p>Each judged on the labelled rows of the "
            f"{html.escape(str(options.get('judge_days', '?')))} days after it: the challenger against the champion "
            "it was compared with. Right: it promoted a challenger that is better there, or rejected one that is "
            "not.</p>")
    if not decisions:
        body += "<p class='muted'>No retraining reached a promotion decision.</p>"
    else:
        body += ("<table><tr><th>Day</th><th>Challenger</th><th>Outcome</th><th>Champion</th><th>Why retrained</th>"
                 f"<th>Rows judged</th><th>{metric} challenger</th><th>{metric} champion</th><th>Gain</th>"
                 "<th>Verdict</th><th>Reasons at the time</th></tr>")
        for d in decisions:
            right = d.get("right")
            verdict = ("<td class='good'>right</td>" if right is True else "<td class='failed'>wrong</td>"
                       if right is False else "<td class='muted'>not judged</td>")
            body += (f"<tr><td>{html.escape(str(d.get('ds', '')))}</td><td>v{html.escape(str(d.get('version', '')))}"
                     f"</td><td>{html.escape(str(d.get('outcome', '')))}</td>"
                     f"<td>v{html.escape(str(d.get('champion_version', '')))}</td>"
                     f"<td>{html.escape(str(d.get('reason') or ''))}</td>{_cell(d.get('judged_rows'))}"
                     f"{_cell(d.get('challenger_metric'))}{_cell(d.get('champion_metric'))}{_gain_cell(d.get('gain'))}"
                     f"{verdict}<td class='muted'>{html.escape(str(d.get('summary') or ''))}</td></tr>")
        body += "</table>"
    idle = [r for r in report.get("days") or [] if isinstance(r, dict) and isinstance(r.get("retraining"), dict)
            and r["retraining"].get("outcome") in ("failed", "skipped")]
    if idle:
        body += "<p>Retraining requests that trained nothing:</p><ul>" + "".join(
            f"<li>{html.escape(str(r.get('ds', '')))}: {html.escape(str(r['retraining'].get('outcome')))}, "
            f"{html.escape(str(r['retraining'].get('error') or ''))}</li>" for r in idle) + "</ul>"
    odd = [r for r in report.get("days") or [] if isinstance(r, dict) and r.get("status") != "scored"]
    if odd:
        groups: dict[tuple[str, str], list[str]] = {}
        for r in odd:  # by the first failed check: a range that rejects a season shows as one line
            cause = str(r.get("detail") or "").split("; ")[0]
            groups.setdefault((str(r.get("status", "")), cause), []).append(str(r.get("ds", "")))
        body += ("<h2>Days not scored</h2><table><tr><th>Days</th><th>Status</th><th>First cause</th>"
                 "<th>First day</th><th>Last day</th></tr>")
        body += "".join(f"<tr><td>{len(dates)}</td><td class='failed'>{html.escape(status)}</td>"
                        f"<td>{html.escape(cause)}</td><td>{html.escape(min(dates))}</td><td>{html.escape(max(dates))}"
                        "</td></tr>" for (status, cause), dates in sorted(groups.items(), key=lambda g: -len(g[1])))
        body += "</table>"
    timing = report.get("timing") if isinstance(report.get("timing"), dict) else {}
    if timing:
        body += (f"<p class='muted'>Replayed {html.escape(str(timing.get('days')))} days in "
                 f"{html.escape(str(timing.get('replay_seconds')))} s ({html.escape(str(timing.get('seconds_per_day')))}"
                 " s a day).</p>")
    return _page(title, head + intro + table + body)


def add_backtest_routes(app: Any, authorize: Callable[..., str], served: Callable[..., Any]) -> None:
    """The back-test pages, behind the same authorization as the model's other reports."""
    from airflow.api_fastapi.core_api.security import GetUserDep
    from fastapi import HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse

    @app.get("/models/{model}/backtests/", response_class=HTMLResponse)
    def backtests_page(request: Request, model: str, user: GetUserDep) -> str:
        model = authorize(request, user, model)
        return render_backtests_page(model, backtest_keys(model))

    @app.get("/models/{model}/backtests/{key}/", response_class=HTMLResponse)
    def backtest_page(request: Request, model: str, key: str, user: GetUserDep) -> str:
        model = authorize(request, user, model)
        try:
            report = read_backtest(model, key)
        except NotServed:
            raise HTTPException(404, "Not found") from None
        return render_backtest_page(model, key, report)

    @app.get("/models/{model}/backtests/{key}/backtest.json")
    def backtest_json(request: Request, model: str, key: str, user: GetUserDep) -> FileResponse:
        model = authorize(request, user, model)
        return served(lambda: backtest_file(model, key))


# ---- the FastAPI app -----------------------------------------------------------------------


def create_app() -> Any:
    """Build the FastAPI app (Airflow's auth dependencies are imported here, in the api-server)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from mlops_lifecycle.dag_factory import dag_id

    app = FastAPI(title="mlops-lifecycle reports", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def _login_or_error(request: Request, exc: StarletteHTTPException):
        # A browser without a (valid) session goes to the login page and comes back here.
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        return await http_exception_handler(request, exc)

    def authorize(request: Request, user: Any, model: str) -> str:
        """The checked model name, if the user may read its daily DAG's task instances (else 403/404)."""
        try:
            model = checked_model(model)
        except NotServed:
            raise HTTPException(404, "Not found") from None
        requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE, param_dag_id=dag_id(model, "daily"))(request, user)
        return model

    def served(path_of: Callable[[], Path], *, csp: str | None = None) -> FileResponse:
        try:
            path = path_of()
        except NotServed:
            raise HTTPException(404, "Not found") from None
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
        if csp and path.suffix in {".html", ".htm"}:
            headers["Content-Security-Policy"] = csp
        return FileResponse(path, headers=headers)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: GetUserDep) -> str:
        visible = []
        for name in models():
            try:
                authorize(request, user, name)
            except HTTPException:
                continue
            visible.append(name)
        return render_models_page(visible)

    @app.get("/models/{model}/", response_class=HTMLResponse)
    def model_page(request: Request, model: str, user: GetUserDep) -> str:
        model = authorize(request, user, model)
        has_docs = "index.html" in data_docs_files(model)
        return render_model_page(model, day_rows(model), data_docs=has_docs, backtests=bool(backtest_keys(model)))

    # Before the report route, which would otherwise take data-docs/<a>/<b> for a report.
    @app.get("/models/{model}/data-docs/{page:path}")
    def data_docs(request: Request, model: str, page: str, user: GetUserDep) -> FileResponse:
        model = authorize(request, user, model)
        return served(lambda: data_docs_file(model, page), csp=DATA_DOCS_CSP)

    add_backtest_routes(app, authorize, served)  # before the report route, which would take backtests/<a>/<b>

    @app.get("/models/{model}/{kind}/{ds}/{name}")
    def report(request: Request, model: str, kind: str, ds: str, name: str, user: GetUserDep) -> FileResponse:
        model = authorize(request, user, model)
        return served(lambda: report_file(model, kind, ds, name), csp=EVIDENTLY_CSP)

    return app


class LazyApp:
    """An ASGI app that builds the real one (``factory()``) on its first request.

    The plugin is imported by every Airflow process (scheduler, workers, task processes); only
    the api-server ever calls this, so only it pays for FastAPI and Airflow's API modules.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    def build(self) -> Any:
        """The real app, built once."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.build()(scope, receive, send)


app = LazyApp(create_app)
