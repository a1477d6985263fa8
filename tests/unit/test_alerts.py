"""Alerts: nothing silent. Written to the log and the lake always, sent through the
connection-configured Airflow notifiers when the spec asks for it.

The e-mail channel is tested with the SMTP provider's real ``SmtpNotifier`` talking to a
tiny SMTP server on 127.0.0.1 started by the test (no other network). The failure
callback is tested with real ``DAG.test`` runs of the model's DAGs.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import socket
import socketserver
import threading

import pytest

from mlops_lifecycle import alerts, lake
from mlops_lifecycle.spec import ModelSpec


def with_notifications(spec: ModelSpec, **section) -> ModelSpec:
    data = spec.model_dump()
    data["notifications"] = section
    return ModelSpec.model_validate(data)


# ---- log and lake -------------------------------------------------------------------------


def test_an_alert_is_logged_and_written_to_the_lake(example_spec, data_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="mlops_lifecycle.alerts"):
        alert = alerts.emit(
            example_spec, "drift", "late_delivery: drift on 2026-03-03", "share 0.6", details={"share": 0.6}
        )
    path = lake.root() / "late_delivery" / "events" / "alerts"
    files = list(path.glob("*.json"))
    assert len(files) == 1 and str(files[0]) == alert["path"]
    written = json.loads(files[0].read_text())
    assert (
        written["kind"] == "drift"
        and written["severity"] == "warning"
        and written["details"] == {"share": 0.6}
    )
    assert written["deliveries"] == {}
    assert any("ALERT drift late_delivery" in r.getMessage() for r in caplog.records)
    # No temporary files left beside it (atomic write).
    assert [p.name for p in path.iterdir()] == [files[0].name]


def test_the_same_event_raised_twice_is_one_alert_and_other_events_add_up(example_spec, data_dir):
    alerts.emit(example_spec, "drift", "t", "m", ident="ds=2026-03-03")
    alerts.emit(example_spec, "drift", "t", "m again", ident="ds=2026-03-03")
    assert [a["message"] for a in alerts.read_alerts("late_delivery")] == ["m again"]
    alerts.emit(example_spec, "failure", "t", "m")
    alerts.emit(example_spec, "failure", "t", "m")
    assert len(alerts.read_alerts("late_delivery", "failure")) == 2


def test_unknown_kind_is_refused(example_spec, data_dir):
    with pytest.raises(ValueError, match="unknown alert kind"):
        alerts.emit(example_spec, "gossip", "t", "m")


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/b"])
def test_an_alert_for_an_unsafe_model_name_never_becomes_a_path(data_dir, name, caplog):
    with caplog.at_level(logging.ERROR, logger="mlops_lifecycle.alerts"):
        alert = alerts.emit(name, "failure", "t", "m")
    assert "path" not in alert
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []
    assert any("not written to the lake" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("ident", ["../../x", "/abs", "a/b"])
def test_alert_idents_cannot_leave_the_alerts_folder(example_spec, data_dir, ident):
    alert = alerts.emit(example_spec, "failure", "t", "m", ident=ident)
    base = lake.root() / "late_delivery" / "events" / "alerts"
    assert str(alert["path"]).startswith(str(base) + "/") and "/" not in alert["path"][len(str(base)) + 1 :]


# ---- e-mail and Slack through provider notifiers ---------------------------------------------------


class _SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message (RFC 5321 happy path)."""

    def handle(self):
        self.wfile.write(b"220 sink\r\n")
        data_mode, lines = False, []
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if data_mode:
                if line == ".":
                    data_mode = False
                    self.server.messages.append("\n".join(lines))
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line)
                continue
            verb = line[:4].upper()
            if verb == "DATA":
                data_mode, lines = True, []
                self.wfile.write(b"354 go on\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.server.commands.append(line)
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_sink():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSink)
    server.messages, server.commands = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _smtp_conn(monkeypatch, name: str, port: int) -> None:
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {
            "disable_ssl": True,
            "disable_tls": True,
            "from_email": "mlops@example.org",
            "timeout": 5,
            "retry_limit": 0,
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(conn))


def test_email_goes_through_the_smtp_provider_notifier_and_its_connection(
    example_spec, data_dir, smtp_sink, monkeypatch
):
    _smtp_conn(monkeypatch, "mlops_smtp", smtp_sink.server_address[1])
    spec = with_notifications(example_spec, email={"conn_id": "mlops_smtp", "to": ["oncall@example.org"]})
    alert = alerts.emit(
        spec, "rollback", "late_delivery: rolled back to v1 (was v2)", "by cli:bob\nreason: bad v2"
    )
    assert alert["deliveries"] == {"email": "sent"}
    assert len(smtp_sink.messages) == 1
    import email

    message = email.message_from_string(smtp_sink.messages[0])
    assert message["Subject"] == "[mlops warning] late_delivery: rolled back to v1 (was v2)"
    body = "".join(
        part.get_payload(decode=True).decode() for part in message.walk() if not part.is_multipart()
    )
    assert "reason: bad v2" in body
    assert any("oncall@example.org" in c for c in smtp_sink.commands)
    assert json.loads(open(alert["path"]).read())["deliveries"] == {"email": "sent"}


def test_kinds_not_listed_in_events_are_not_sent_but_still_recorded(
    example_spec, data_dir, smtp_sink, monkeypatch
):
    _smtp_conn(monkeypatch, "mlops_smtp", smtp_sink.server_address[1])
    spec = with_notifications(
        example_spec, events=["failure"], email={"conn_id": "mlops_smtp", "to": ["a@example.org"]}
    )
    alerts.emit(spec, "promotion", "t", "m")
    assert smtp_sink.messages == []
    assert len(alerts.read_alerts(spec.name, "promotion")) == 1


def test_a_channel_that_is_down_never_loses_the_alert(example_spec, data_dir, monkeypatch, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _smtp_conn(monkeypatch, "mlops_smtp", port)
    spec = with_notifications(example_spec, email={"conn_id": "mlops_smtp", "to": ["a@example.org"]})
    with caplog.at_level(logging.ERROR, logger="mlops_lifecycle.alerts"):
        alert = alerts.emit(spec, "failure", "late_delivery: task failed", "boom")
    assert alert["deliveries"]["email"].startswith("failed:")
    assert json.loads(open(alert["path"]).read())["deliveries"]["email"].startswith("failed:")
    assert any("not sent by email" in r.getMessage() for r in caplog.records)


class _SlackSink(http.server.BaseHTTPRequestHandler):
    """An incoming-webhook endpoint on 127.0.0.1 that keeps what it is sent."""

    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _SlackSink.received.append({"path": self.path, "json": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def slack_sink():
    _SlackSink.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlackSink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_slack_goes_through_the_slack_provider_webhook_notifier_and_its_connection(
    example_spec, data_dir, monkeypatch, slack_sink
):
    port = slack_sink.server_address[1]
    # The webhook URL lives in the connection (its secret part as the password), never in the spec.
    conn = {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{port}/services",
            "password": "T000/B000/not-a-real-token"}  # secret-scan: allow
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(conn))
    spec = with_notifications(example_spec, slack={"conn_id": "slack_alerts", "webhook": True})
    alert = alerts.emit(spec, "drift", "late_delivery: drift on 2026-03-14", "share 0.43 in ['traffic_index']")
    assert alert["deliveries"]["slack"] == "sent"
    assert len(_SlackSink.received) == 1
    got = _SlackSink.received[0]
    assert got["path"] == "/services/T000/B000/not-a-real-token"
    assert "late_delivery: drift on 2026-03-14" in got["json"]["text"] and "traffic_index" in got["json"]["text"]


def test_slack_that_refuses_the_message_never_loses_the_alert(example_spec, data_dir, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{port}/services", "password": "T/B/x",  # secret-scan: allow
            "extra": {"timeout": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(conn))
    spec = with_notifications(example_spec, slack={"conn_id": "slack_alerts", "webhook": True})
    alert = alerts.emit(spec, "rollback", "late_delivery: rolled back to v1", "by pytest")
    assert alert["deliveries"]["slack"].startswith("failed:")
    assert len(alerts.read_alerts(spec.name, "rollback")) == 1


def test_channel_settings_are_validated(example_spec):
    with pytest.raises(ValueError):
        with_notifications(example_spec, email={"conn_id": "x", "to": []})
    with pytest.raises(ValueError):
        with_notifications(example_spec, events=["everything"])


# ---- failure callbacks on real DAG runs ---------------------------------------------------------


def test_every_task_of_every_dag_has_the_failure_notifier(example_spec):
    from mlops_lifecycle import dag_factory

    for builder in dag_factory.BUILDERS.values():
        dag = builder(example_spec)
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert any(isinstance(c, alerts.FailureNotifier) for c in callbacks), (
                f"{dag.dag_id}.{task.task_id}"
            )


@pytest.fixture
def dag_env(tmp_path, monkeypatch, airflow_db):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
    from e2e_specs import write_small_spec

    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(tmp_path / "specs"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_small_spec(tmp_path / "specs")
    from mlops_lifecycle import replay
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("late_delivery")
    return spec, replay.load_dags(spec)


@pytest.mark.e2e
def test_a_failing_task_in_a_real_dag_run_writes_a_failure_alert(dag_env):
    """The retraining DAG on an empty lake: assemble_window fails (too few days)."""
    spec, dags = dag_env
    dr = dags["late_delivery__retrain"].test(
        logical_date=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), run_conf={"reason": "pytest"}
    )
    assert str(dr.state).endswith("failed")
    found = alerts.read_alerts(spec.name, "failure")
    assert len(found) == 1
    alert = found[0]
    assert alert["details"]["dag_id"] == "late_delivery__retrain"
    assert alert["details"]["task_id"] == "assemble_window"
    assert alert["details"]["run_id"] == dr.run_id
    assert alert["details"]["error_type"] == "InsufficientData"
    assert "validated day(s)" in alert["details"]["error"]


@pytest.mark.e2e
def test_a_rejected_batch_in_a_real_dag_run_writes_a_quarantine_alert(dag_env):
    from mlops_lifecycle import ingestion
    from mlops_lifecycle.examples import late_delivery

    spec, dags = dag_env
    day = dt.date(2026, 3, 2)
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, [day], rows=300, corrupt_days=(day,))
    dr = dags["late_delivery__daily"].test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
    assert str(dr.state).endswith("failed")
    found = alerts.read_alerts(spec.name)
    assert [a["kind"] for a in found] == ["quarantine"]
    alert = found[0]
    assert alert["details"]["task_id"] == "validate" and alert["details"]["ds"] == day.isoformat()
    assert alert["details"]["quarantine_dir"].endswith(f"quarantine/ds={day.isoformat()}")
    assert json.loads(open(alert["details"]["validation_result"]).read())["success"] is False
    assert "drivers_available" in alert["message"]


# ---- secrets never in a log or output line (issue 15, D6) -----------------------------------------

TOKEN = "T000/B000/" + "pytest-webhook-token-5f3a"  # secret-scan: allow


def _slack_down(monkeypatch) -> None:
    """A webhook connection whose server is down: the Slack SDK then logs its retry, with the URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{port}/services", "password": TOKEN,
            "extra": {"timeout": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(conn))


def _lake_text(data_dir) -> str:
    return "".join(p.read_text(errors="replace") for p in data_dir.rglob("*.json"))


def test_the_webhook_token_is_masked_in_the_run_log_and_the_lake(dag_env, monkeypatch, capfd):
    """A real daily run rejects a batch; its quarantine alert goes to a Slack webhook that is
    down. Nothing the run logs (Airflow's task log, the Slack SDK's retry line), nor the alert
    kept in the lake, carries the token."""
    import os
    from pathlib import Path

    import yaml

    from mlops_lifecycle import ingestion, replay
    from mlops_lifecycle.examples import late_delivery
    from mlops_lifecycle.spec import get_spec

    _slack_down(monkeypatch)
    specs = Path(os.environ["MLOPS_SPECS_DIR"])
    data = yaml.safe_load((specs / "late_delivery.yaml").read_text())
    data["notifications"] = {"slack": {"conn_id": "slack_alerts", "webhook": True}}
    (specs / "late_delivery.yaml").write_text(yaml.safe_dump(data))
    spec = get_spec("late_delivery")
    dags = replay.load_dags(spec)
    day = dt.date(2026, 3, 2)
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, [day], rows=300, corrupt_days=(day,))

    dr = dags["late_delivery__daily"].test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))

    logged = "".join(capfd.readouterr())
    assert str(dr.state).endswith("failed")
    found = alerts.read_alerts(spec.name, "quarantine")
    assert found and found[0]["deliveries"]["slack"].startswith("failed:"), found
    assert "Going to retry the same request: POST" in logged, "the Slack SDK's retry line was logged (masked)"
    assert "pytest-webhook-token" not in logged
    assert "pytest-webhook-token" not in _lake_text(lake.root())


def test_the_webhook_token_is_masked_in_the_output_of_mlops_rollback(example_spec, tmp_path, monkeypatch):
    """``mlops rollback`` raises a rollback alert; sending it to a webhook that is down logs the
    Slack SDK's retry: the command's whole output holds no token."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml
    from mlflow import MlflowClient

    from mlops_lifecycle import config

    root = Path(__file__).resolve().parents[2]
    specs = tmp_path / "specs"
    specs.mkdir()
    data = yaml.safe_load((root / "dags" / "specs" / "late_delivery.yaml").read_text())
    data["notifications"] = {"slack": {"conn_id": "slack_alerts", "webhook": True}}
    (specs / "late_delivery.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(specs))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _slack_down(monkeypatch)
    uri = config.mlflow_tracking_uri()
    (tmp_path / "data" / "mlflow").mkdir(parents=True)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("late_delivery")
    for _ in range(2):
        client.create_model_version("late_delivery", source=str(tmp_path / "model"), tags={"status": "candidate"})
    client.set_registered_model_alias("late_delivery", "champion", "2")

    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(root / "include")}
    out = subprocess.run([sys.executable, "-m", "mlops_lifecycle.cli", "rollback", "late_delivery", "--to-version",
                          "1", "--reason", "pytest: masking check", "--user", "pytest"],
                         env=env, capture_output=True, text=True, timeout=300)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert "champion is now v1" in output
    assert "Going to retry the same request: POST" in output, "the Slack SDK's retry line was logged (masked)"
    assert "pytest-webhook-token" not in output
    assert "pytest-webhook-token" not in _lake_text(tmp_path / "data" / "lake")
