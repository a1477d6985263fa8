"""Secrets (webhook URLs, passwords, tokens) kept out of every line the package logs or prints.

The secrets the package handles are the credentials of the connections its alert channels
use. Before a channel is used, :func:`mask_connection` registers them with Airflow's
secrets masker (``airflow.sdk.log.mask_secret``: the task SDK's masker, which also tells a
task's supervisor, so the task log is masked where Airflow writes it). Outside a task (the
``mlops`` command, ``DAG.test`` in run-days) Airflow's logging has no masking step, so the
same masker is attached as a filter to the process's log handlers and as a step of its
structlog chain (loggers made afterwards use it), and the command's own
output and the alerts written to the lake pass through :func:`redact`.

Cheap until a secret is registered: nothing from Airflow is imported before then.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote, urlsplit

log = logging.getLogger(__name__)

_lock = threading.Lock()
_registered = False
_filtered: set[int] = set()  # ids of the handlers the masker filters


def _masker() -> Any:
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    return _secrets_masker()


def mask_secret(value: Any) -> None:
    """Register a secret (a string, or a dict / list walked by Airflow's rules) with Airflow's
    secrets masker, and make sure this process's log handlers apply it."""
    global _registered
    if not value:
        return
    from airflow.sdk.log import mask_secret as sdk_mask_secret

    sdk_mask_secret(value)
    with _lock:
        _registered = True
    _filter_handlers()


def _filter_handlers() -> None:
    """Attach the masker to every log handler of the process (once each): lines that libraries
    log (a provider's retry line carries the whole webhook URL) are masked before they are written."""
    from airflow.sdk._shared.secrets_masker import SecretsMasker

    SecretsMasker.enable_log_masking()
    masker = _masker()
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    with _lock:
        for logger in loggers:
            for handler in logger.handlers:
                if id(handler) not in _filtered:
                    handler.addFilter(masker)
                    _filtered.add(id(handler))
        _mask_structlog()


def _mask_structlog() -> None:
    """Put Airflow's masking step (``airflow.sdk.log.mask_logs``) before the renderer of the
    process's structlog chain when Airflow's logging set it up without one (hooks log
    through structlog, past any stdlib handler: the Slack hook's retry line is one)."""
    import structlog
    from airflow.sdk.log import mask_logs

    config = structlog.get_config()
    processors = list(config.get("processors") or [])
    if not processors or mask_logs in processors:
        return
    structlog.configure(processors=[*processors[:-1], mask_logs, processors[-1]])


def mask_connection(conn_id: str) -> None:
    """Register the secrets of an Airflow connection: its password (also URL-quoted), the
    sensitive keys of its extra (Airflow's names: token, webhook_url, password...) and, for a
    webhook whose token sits in the host URL's path, that path. A connection that cannot be
    read registers nothing (the channel then fails, and says so)."""
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - the notifier reports a missing connection itself
        log.debug("connection %s not read for masking: %s", conn_id, exc)
        return
    secrets: list[Any] = []
    if conn.password:
        secrets += [conn.password, quote(conn.password, safe=""), quote(conn.password, safe="/")]
    host = conn.host or ""
    path = urlsplit(host).path if "://" in host else ""
    if len([p for p in path.split("/") if p]) >= 2:  # hooks.slack.com/services/T.../B.../<token>
        secrets.append(path)
    for secret in secrets:
        mask_secret(secret)
    extra = conn.extra_dejson
    if isinstance(extra, dict) and extra:
        mask_secret(extra)  # walked by name: only keys Airflow deems sensitive


def redact(value: Any) -> Any:
    """``value`` (text, or a JSON-like structure) with every registered secret replaced by ``***``."""
    if not _registered:
        return value
    return _masker().redact(value)
