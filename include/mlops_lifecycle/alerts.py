"""Alerts: failures, quarantined batches, drift, promotions and rollbacks, never silent.

Every alert goes three ways, in this order:

1. the log, at WARNING or ERROR (inside a task, that is the task log);
2. the data lake: one JSON file per alert under ``lake/<model>/events/alerts/``, written
   atomically (a reader sees a whole alert or none; concurrent writers never interleave);
3. the channels the spec's ``notifications`` section configures, through Airflow
   notifiers that take a connection id: e-mail with the SMTP provider's
   ``SmtpNotifier`` (installed with Airflow), Slack with the Slack provider's
   ``SlackNotifier`` / ``SlackWebhookNotifier`` (pinned in requirements.txt).

Writing the lake file first means an alert survives a channel that is down or slow; what
each channel did is added to the same file afterwards (``deliveries``). A channel that
fails is logged and never fails the pipeline step that raised the alert.

:class:`FailureNotifier` is the ``on_failure_callback`` of every task (the DAG factory puts
it in ``default_args``): a task that fails writes a ``failure`` alert, or a ``quarantine``
alert when the failure was a batch rejected by validation. Drift (monitoring), promotions,
approvals, rejections and rollbacks (registry) call :func:`emit` themselves.

Only the standard library, ``airflow.sdk`` and the light package modules are imported at
module level: the DAG factory imports this module at DAG-parse time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from mlops_lifecycle import lake, masking
from mlops_lifecycle.spec import IDENTIFIER

if TYPE_CHECKING:
    from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)

# kind -> severity. The kinds a spec's ``notifications.events`` may name.
KINDS: dict[str, str] = {
    "failure": "error",
    "quarantine": "error",
    "validation_warning": "warning",  # a day scored although some warning checks failed
    "drift": "warning",
    "promotion": "info",
    "approval_needed": "warning",
    "rejection": "info",
    "rollback": "warning",
}
_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.WARNING}
_UNSAFE = re.compile(r"[^A-Za-z0-9_=.-]+")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_part(text: str) -> str:
    """A lake-safe piece of an alert's file name (no separators, no '..')."""
    return _UNSAFE.sub("_", str(text)).replace("..", "_").strip("._")[:80] or "x"


def emit(
    spec: ModelSpec | str,
    kind: str,
    title: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    ident: str | None = None,
) -> dict[str, Any]:
    """Raise one alert: log it, write it to the lake, send it to the spec's channels.

    Args:
        spec: the model's spec (its ``notifications`` section picks the channels), or
            only its name when the spec cannot be loaded (the alert is then logged and
            written to the lake, not sent).
        kind: one of :data:`KINDS`.
        title: one line, e.g. ``late_delivery: batch 2026-03-02 quarantined``.
        message: the whole story, with what to do next.
        details: small JSON-serialisable facts (paths, versions, scores, run ids).
        ident: a stable identity for alerts that may be raised again for the same event
            (drift of one day, a task try): the same ident replaces the earlier file
            instead of adding a duplicate. Default: unique.

    Returns:
        The alert as written, with ``path`` (its lake file) and ``deliveries``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}; expected one of {sorted(KINDS)}")
    model = spec if isinstance(spec, str) else spec.name
    if not isinstance(spec, str):
        _mask_channel_secrets(spec)
    now = _now()
    alert = {
        "model": model,
        "kind": kind,
        "severity": KINDS[kind],
        "title": title,
        "message": message,
        "at": now.isoformat(timespec="seconds"),
        "details": details or {},
        "deliveries": {},
    }
    alert = masking.redact(alert)  # an error text can quote a URL with its token
    log.log(_LEVELS[KINDS[kind]], "ALERT %s %s: %s\n%s", kind, model, title, message)
    if not IDENTIFIER.match(model):
        # No lake folder for a name we cannot trust; the log line above is the record.
        log.error("alert for %r not written to the lake: not a valid model name", model)
        return alert
    suffix = _key_part(ident) if ident else f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    path = lake.event_file(model, "alerts", f"{kind}__{suffix}")
    alert["path"] = str(path)
    lake.write_json(path, alert)
    if not isinstance(spec, str):
        alert["deliveries"] = _deliver(spec, alert)
        if alert["deliveries"]:
            lake.write_json(path, alert)
    return alert


def read_alerts(model: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every alert recorded for a model (optionally of one kind), oldest first."""
    found = lake.events(model, "alerts")
    if kind is not None:
        found = [a for a in found if a.get("kind") == kind]
    return sorted(found, key=lambda a: (a.get("at", ""), a.get("path", "")))


# ---- channels ---------------------------------------------------------------------------


def _mask_channel_secrets(spec: ModelSpec) -> None:
    """Register the credentials of the spec's channel connections with Airflow's secrets
    masker before anything is logged or sent: a provider's own log lines (a retry quotes
    the whole webhook URL) and the errors recorded in ``deliveries`` show ``***`` instead."""
    cfg = spec.notifications
    for channel in (cfg.email, cfg.slack):
        if channel is not None:
            masking.mask_connection(channel.conn_id)


def _deliver(spec: ModelSpec, alert: dict[str, Any]) -> dict[str, str]:
    """Send an alert to each configured channel; returns channel -> "sent" or the error."""
    cfg = spec.notifications
    if alert["kind"] not in cfg.events:
        return {}
    out: dict[str, str] = {}
    for channel, notifier in _channel_notifiers(spec, alert).items():
        try:
            notifier.notify({})
            out[channel] = "sent"
        except Exception as exc:  # noqa: BLE001 - a channel outage must not fail the pipeline step
            error = masking.redact(f"{type(exc).__name__}: {exc}")
            log.error("alert %s of %s not sent by %s: %s", alert["kind"], spec.name, channel, error)
            out[channel] = f"failed: {error}"[:500]
    return out


def _channel_notifiers(spec: ModelSpec, alert: dict[str, Any]) -> dict[str, Any]:
    """The provider notifiers for the spec's channels, built for one alert.

    A channel whose provider is not installed is reported as a notifier that raises, so
    the failure shows in the log and in the alert's ``deliveries``.
    """
    cfg = spec.notifications
    subject = f"[mlops {alert['severity']}] {alert['title']}"
    text = f"{alert['message']}\n\n{json.dumps(alert['details'], indent=2, sort_keys=True, default=str)}"
    found: dict[str, Any] = {}
    if cfg.email is not None:
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier
        except ImportError:
            found["email"] = _Missing("apache-airflow-providers-smtp")
        else:
            import html

            found["email"] = SmtpNotifier(
                to=list(cfg.email.to),
                from_email=cfg.email.from_email,
                subject=subject,
                html_content=f"<pre>{html.escape(text)}</pre>",
                smtp_conn_id=cfg.email.conn_id,
            )
    if cfg.slack is not None:
        message = f"*{subject}*\n```{text[:3500]}```"
        try:
            if cfg.slack.webhook:
                from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

                found["slack"] = SlackWebhookNotifier(slack_webhook_conn_id=cfg.slack.conn_id, text=message)
            else:
                from airflow.providers.slack.notifications.slack import SlackNotifier

                found["slack"] = SlackNotifier(
                    slack_conn_id=cfg.slack.conn_id, text=message, channel=cfg.slack.channel
                )
        except ImportError:
            found["slack"] = _Missing("apache-airflow-providers-slack")
    return found


class _Missing:
    """Stands in for a notifier whose provider package is not installed."""

    def __init__(self, package: str):
        self.package = package

    def notify(self, context: Any) -> None:
        raise RuntimeError(f"the provider is not installed: pip install {self.package}")


# ---- task failures ----------------------------------------------------------------------


class FailureNotifier(BaseNotifier):
    """``on_failure_callback`` for every task of a model's DAGs.

    Writes a ``failure`` alert naming the DAG, task, run, try and error, or a
    ``quarantine`` alert when the task rejected the day's batch (validation failed or the
    source was unreadable), pointing at the quarantined partition and its result.
    """

    def __init__(self, model: str):
        super().__init__()
        self.model = model

    def notify(self, context: Any) -> None:
        alert_for_failure(self.model, context)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def alert_for_failure(model: str, context: Any) -> dict[str, Any]:
    """Build and emit the alert of a failed task from its Airflow context."""
    from mlops_lifecycle import ingestion, validation

    ti = context.get("ti") or context.get("task_instance")
    run = context.get("dag_run")
    error = context.get("exception")
    dag_id = getattr(ti, "dag_id", None) or getattr(run, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(run, "run_id", "?")
    try_number = getattr(ti, "try_number", None)
    when = context.get("logical_date") or getattr(run, "run_after", None)
    ds = when.date().isoformat() if when is not None else None
    details: dict[str, Any] = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "try_number": try_number,
        "ds": ds,
        "error_type": type(error).__name__ if error is not None else None,
        "error": str(error)[:4000] if error is not None else None,
    }
    log_url = getattr(ti, "log_url", None)
    if log_url:
        details["log_url"] = log_url
    rejected = any(
        isinstance(e, validation.ValidationFailed | ingestion.SourceUnreadable) for e in _chain(error)
    )
    ident = f"{dag_id}.{task_id}.{run_id}.try{try_number}"
    try:
        from mlops_lifecycle.spec import get_spec

        target: ModelSpec | str = get_spec(model)
    except Exception as exc:  # noqa: BLE001 - a broken spec must not hide the failure itself
        log.error("spec of %s not loadable for alert delivery: %s", model, exc)
        target = model
    if rejected and ds:
        qdir = lake.partition_dir(model, "quarantine", ds)
        details["quarantine_dir"] = str(qdir)
        details["validation_result"] = str(qdir / "validation.json")
        return emit(
            target,
            "quarantine",
            f"{model}: batch {ds} rejected and quarantined",
            f"{task_id} in {dag_id} ({run_id}) rejected the batch of {ds}; nothing downstream ran.\n"
            f"{details['error']}\nFix the source and rerun the day.",
            details=details,
            ident=ident,
        )
    return emit(
        target,
        "failure",
        f"{model}: task {task_id} of {dag_id} failed",
        f"{task_id} in {dag_id} ({run_id}, try {try_number}) failed: {details['error_type']}: {details['error']}",
        details=details,
        ident=ident,
    )


def failure_callbacks(model: str) -> list[BaseNotifier]:
    """The ``on_failure_callback`` list the DAG factory puts in every task's default_args."""
    return [FailureNotifier(model)]
