"""Security: no secret in the repository, nothing from a spec escapes the data lake, models
come only from the registry, and the production stack's UIs and APIs require a login.

The secret scan reads every file git tracks (plus untracked files that are not ignored,
i.e. what the next commit could add). Each detector is proven to fire on a planted example
built at run time, so this file itself holds no secret-looking literal.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALLOW_MARK = "secret-scan: allow"

# ---- the secret scanner -------------------------------------------------------------------------

# A value that only stands for a secret: ${VAR...}, {placeholder}, <placeholder>, change-me,
# or the name of the thing itself (`user:password@host` in a comment, psql's :'password').
PLACEHOLDER = re.compile(
    r"^(\$\{[^}]*\}|\$[A-Za-z_]\w*|\{\{?[^}]*\}?\}|<[^>]*>|change-me.*|\*+|x{3,}|\.\.\.|"
    r"password|passwd|pass|pwd|secret|token|key|)$",
    re.I,
)
DETECTORS: dict[str, re.Pattern] = {
    "private key": re.compile(
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"
    ),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "API secret key": re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bsk-[A-Za-z0-9_-]{32,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}
# scheme://user:password@host, once ${...} interpolations are folded to a placeholder.
URL_PASSWORD = re.compile(
    r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]*:(?P<secret>[^\s@'\"/]+)@[A-Za-z0-9.\[\]-]+"
)  # secret-scan: allow
# NAME = "literal" / NAME: literal / NAME=literal where NAME says password, secret, token or key.
SECRET_NAME = r"[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)[A-Za-z0-9_.-]*"
QUOTED_ASSIGNMENT = re.compile(
    rf"(?i)\b(?P<name>{SECRET_NAME})[\"']?\s*[:=]\s*(?P<q>[\"'])(?P<secret>[^\"'\n]*)(?P=q)"
)
CONFIG_ASSIGNMENT = re.compile(
    rf"(?i)^\s*(?:export\s+|-\s+)?(?P<name>{SECRET_NAME})\s*[:=]\s*(?P<secret>[^\s#\"']\S*)\s*$"
)
CONFIG_SUFFIXES = {".env", ".ini", ".cfg", ".conf", ".yaml", ".yml", ".toml", ".properties", ".sh", ""}
SECRET_FILES = re.compile(
    r"(^|/)(\.env|id_rsa|id_dsa|id_ecdsa|id_ed25519|.*\.pem|.*\.p12|.*\.pfx|.*\.key|credentials)$"
)


def _is_placeholder(value: str) -> bool:
    return bool(PLACEHOLDER.match(value.strip()))


def _names_not_secrets(name: str, value: str) -> bool:
    """Settings named like secrets that hold where a secret is, or which one, not the secret."""
    upper = name.upper()
    return (
        upper.endswith(
            ("_FILE", "_PATH", "_CONN_ID", "_ID", "_NAME", "_LENGTH", "_PREFIX", "_URL", "_URI", "_KEYS")
        )
        or value.startswith(("/", "./", "~/", "${", "$"))
        or value.lower() in {"true", "false", "none", "null", "basic", "oauth2", "token"}
        or re.fullmatch(r"[-+]?\d+(\.\d+)?", value) is not None
        or value.startswith(("&", "*"))  # a YAML anchor or alias
        or re.match(r"[A-Za-z_][\w.]*[\[(]", value) is not None  # code: os.environ[...], getenv(...)
        or re.fullmatch(r"(?=.*[_\s])[A-Z][A-Z0-9_]*(\s+[A-Z][A-Z0-9_]*)*", value)
        is not None  # variable names
    )


def scan_text(path: str, text: str) -> list[str]:
    """Every line of ``text`` that looks like it holds a secret, as 'path:line: kind'."""
    findings = []
    suffix = Path(path).suffix if not Path(path).name.startswith(".env") else ".env"
    for number, line in enumerate(text.splitlines(), 1):
        if ALLOW_MARK in line:
            continue
        folded = re.sub(r"\$\{[^}]*\}", "${VAR}", line)
        for kind, pattern in DETECTORS.items():
            if pattern.search(line):
                findings.append(f"{path}:{number}: {kind}")
        for m in URL_PASSWORD.finditer(folded):
            if not _is_placeholder(m["secret"]):
                findings.append(f"{path}:{number}: password in a URL")
        for m in QUOTED_ASSIGNMENT.finditer(folded):
            if (
                not _is_placeholder(m["secret"])
                and not _names_not_secrets(m["name"], m["secret"])
                and len(m["secret"]) >= 4
            ):
                findings.append(f"{path}:{number}: {m['name']} set to a literal")
        if suffix in CONFIG_SUFFIXES:
            m = CONFIG_ASSIGNMENT.match(folded)
            if m and not _is_placeholder(m["secret"]) and not _names_not_secrets(m["name"], m["secret"]):
                findings.append(f"{path}:{number}: {m['name']} set to a literal")
    return findings


def repository_files() -> list[str]:
    """Files git tracks, plus untracked files that are not ignored (the next commit's candidates)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return sorted({p for p in out.split("\0") if p and (ROOT / p).is_file()})


def test_the_repository_holds_no_secret():
    files = repository_files()
    assert len(files) > 40, "the scan found too few files to be looking at the repository"
    findings = []
    for rel in files:
        if SECRET_FILES.search(rel) and not rel.endswith(".env.example"):
            findings.append(f"{rel}: a secret-bearing file is in the repository")
        data = (ROOT / rel).read_bytes()
        if b"\0" in data[:8192] or len(data) > 5_000_000:
            continue
        findings += scan_text(rel, data.decode("utf-8", "replace"))
    assert not findings, (
        "possible secrets (fix, or mark a false positive with '# "
        + ALLOW_MARK
        + "'):\n"
        + "\n".join(findings)
    )


def _planted() -> dict[str, str]:
    """One example of each kind of secret, assembled here so no literal sits in this file
    (the lines that still look like assignments are marked for the scan)."""
    k = "KEY"
    return {
        "private key": f"-----BEGIN RSA PRIVATE {k}-----",
        "openssh key": f"-----BEGIN OPENSSH PRIVATE {k}-----",
        "aws": "aws_id = " + "AKIA" + "Q3EGRMZ7Y2JXKD5W",
        "github": "token " + "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "slack token": "xo" + "xb-" + "1234567890-abcdefghij",
        "slack webhook": "https://hooks.slack"
        + ".com/services/T0123ABCD/B0123ABCD/"
        + "abcdefghijklmnopqrstuvwx",
        "google": "AI" + "za" + "SyA1234567890abcdefghijklmnopqrstuv",
        "stripe": "sk_" + "live_" + "abcdefghijklmnop1234",
        "jwt": "eyJ" + "hbGciOiJIUzI1NiJ9." + "eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0." + "abcdefghijklmnop",
        "postgres url": "postgresql://airflow:" + "hunter2hunter2" + "@db:5432/airflow",  # secret-scan: allow
        "redis url": "redis://:" + "s3cr3tpass" + "@redis:6379/0",  # secret-scan: allow
        "yaml password": "password: " + "hunter2hunter2",  # secret-scan: allow
        "env password": "AIRFLOW_ADMIN_PASSWORD=" + "hunter2hunter2",  # secret-scan: allow
        "python password": "password = '" + "hunter2hunter2" + "'",  # secret-scan: allow
        "json token": '"api_token": "' + "abcd1234efgh5678" + '"',  # secret-scan: allow
        "ini secret": "secret_key = " + "abcd1234efgh5678",  # secret-scan: allow
    }


@pytest.mark.parametrize("kind", sorted(_planted()))
def test_the_scanner_finds_each_kind_of_planted_secret(kind):
    text = _planted()[kind]
    suffix = ".py" if kind in {"python password", "json token"} else ".yaml"
    if kind in {"env password"}:
        suffix = ".env"
    if kind in {"ini secret"}:
        suffix = ".ini"
    assert scan_text(f"planted{suffix}", text + "\n"), f"{kind} not detected in {text!r}"


@pytest.mark.parametrize(
    "text",
    [
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: postgresql+psycopg2://airflow:${AIRFLOW_DB_PASSWORD:?set it in .env}@postgres:5432/airflow",
        "AIRFLOW_ADMIN_PASSWORD=change-me-airflow-admin",
        "password: ${ADMIN_PASSWORD}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: /opt/airflow/auth/passwords.json",
        "password = os.environ['MLFLOW_TRACKING_PASSWORD']",
        "smtp_conn_id: smtp_default",
        "https://example.org/docs",
        "MLFLOW_TRACKING_PASSWORD: ${MLFLOW_ADMIN_PASSWORD:?set MLFLOW_ADMIN_PASSWORD in .env (see .env.example)}",
    ],
)
def test_the_scanner_lets_placeholders_and_references_through(text):
    assert scan_text("settings.yaml", text) == []


# ---- nothing from a spec escapes the data lake --------------------------------------------------------

BAD_NAMES = [
    "../evil",
    "..",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "Evil",
    "x" * 80,
    "",
    ".hidden",
    "a..b/c",
    "~root",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_spec_name_that_could_be_a_path_is_refused(example_spec, tmp_path, name):
    from mlops_lifecycle.spec import ModelSpec, SpecError, get_spec

    data = example_spec.model_dump(mode="json")
    data["name"] = name
    with pytest.raises(ValueError, match="not a safe model name"):
        ModelSpec.model_validate(data)
    with pytest.raises(SpecError):
        get_spec(name, tmp_path)


@pytest.mark.parametrize("name", ["../evil", "a/b", "/abs", "x/../../y", "a b"])
def test_a_registered_model_name_that_could_be_a_path_is_refused(example_spec, name):
    from mlops_lifecycle.spec import ModelSpec

    data = example_spec.model_dump(mode="json")
    data["registered_model_name"] = name
    with pytest.raises(ValueError, match="not a safe registered model name"):
        ModelSpec.model_validate(data)


@pytest.mark.parametrize("model", ["../evil", "/etc", "a/b", "..", "", "late_delivery\n", "late_delivery\n/../x"])
def test_every_lake_path_function_refuses_an_unsafe_model_name(data_dir, model):
    from mlops_lifecycle import lake

    calls = [
        lambda: lake.partition_dir(model, "raw", "2026-03-01"),
        lambda: lake.data_file(model, "predictions", "2026-03-01"),
        lambda: lake.report_dir(model, "drift", "2026-03-01"),
        lambda: lake.training_dir(model, "2026-03-01"),
        lambda: lake.reference_file(model, 1),
        lambda: lake.event_file(model, "alerts", "x"),
        lambda: lake.partitions(model, "raw"),
        lambda: lake.events(model, "alerts"),
    ]
    for call in calls:
        with pytest.raises(lake.LakeError):
            call()


@pytest.mark.parametrize(
    "call",
    [
        lambda lake: lake.partition_dir("late_delivery", "../raw", "2026-03-01"),
        lambda lake: lake.partition_dir("late_delivery", "raw", "../../2026-03-01"),
        lambda lake: lake.partition_dir("late_delivery", "raw", "2026-03-01/../../x"),
        lambda lake: lake.report_dir("late_delivery", "../drift", "2026-03-01"),
        lambda lake: lake.event_file("late_delivery", "../alerts", "x"),
        lambda lake: lake.event_file("late_delivery", "alerts", "../x"),
        lambda lake: lake.event_file("late_delivery", "alerts", "a/b"),
        lambda lake: lake.event_file("late_delivery", "alerts", ".."),
        lambda lake: lake.reference_file("late_delivery", "1/../../x"),
    ],
)
def test_lake_partition_keys_kinds_and_versions_cannot_climb_out(data_dir, call):
    from mlops_lifecycle import lake

    with pytest.raises((lake.LakeError, ValueError)):
        call(lake)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_source_outside_the_lake_is_read_but_never_written(example_spec, data_dir, tmp_path):
    """Source templates may point anywhere to *read*; ingestion, validation and quarantine
    (of a good, a bad and an unreadable batch) write only under the data folder."""
    from mlops_lifecycle import ingestion, validation
    from mlops_lifecycle.examples import late_delivery
    from mlops_lifecycle.spec import ModelSpec

    outside = tmp_path / "upstream"
    data = example_spec.model_dump(mode="json")
    data["source"] = {**data["source"], "path": str(outside / "feed" / "{ds}.parquet")}
    data["validation"] = {**data["validation"], "min_rows": 50}
    spec = ModelSpec.model_validate(data)
    good, bad, unreadable = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    late_delivery.write_landing(
        str(outside / "feed" / "{ds}.parquet"), [good, bad], rows=200, corrupt_days=(bad,)
    )
    (outside / "feed" / f"{unreadable}.parquet").write_bytes(b"this is not parquet at all")
    before = _files(outside)
    ingestion.ingest(spec, good)
    validation.validate_partition(spec, good, docs=False)
    ingestion.ingest(spec, bad)
    with pytest.raises(validation.ValidationFailed):
        validation.validate_partition(spec, bad, docs=False)
    with pytest.raises(ingestion.SourceUnreadable):
        ingestion.ingest(spec, unreadable)
    assert _files(outside) == before, "something was written next to the source"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(outside)]
    assert written and all(p.is_relative_to(data_dir) for p in written)


def test_a_source_template_cannot_smuggle_in_other_fields(example_spec):
    from mlops_lifecycle import ingestion
    from mlops_lifecycle.spec import ModelSpec

    data = example_spec.model_dump(mode="json")
    data["source"] = {**data["source"], "path": "/feeds/{ds}/{secret}.parquet"}
    with pytest.raises((KeyError, ValueError)):
        ingestion.source_path(ModelSpec.model_validate(data), "2026-03-01")


# ---- models only from the registry -------------------------------------------------------------


def test_only_the_registry_module_and_the_scorer_load_models_and_only_by_name_and_version():
    """Static guard: every model load in the package goes through a ``models:/<name>/<version>``
    URI built from the spec and a version number, never from a path or conf value."""
    loads = {}
    for path in sorted((ROOT / "include" / "mlops_lifecycle").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(
                r"\.load_model\(|load_model\(f?[\"']|pyfunc\.load|Booster\(model_file|load_model\(path", line
            ):
                loads[f"{path.name}:{number}"] = line.strip()
    calls = {k: v for k, v in loads.items() if not v.startswith(("def ", "#"))}
    assert calls, "no model loading found: the guard is looking in the wrong place"
    for where, line in calls.items():
        ok = 'f"models:/{spec.model_name}/' in line or 'f"models:/{model_name}/' in line
        ok = ok or re.search(r"registry\.load_model\(\w*spec, ", line) is not None
        ok = ok or "load_model(bytearray(" in line  # re-loading an in-memory booster (early-stopping trim)
        assert ok, f"{where}: model loaded from something other than the registry: {line}"


def test_no_dag_accepts_a_model_path_or_uri_and_rollback_takes_a_version_number(example_spec):
    from mlops_lifecycle import dag_factory

    for builder in dag_factory.BUILDERS.values():
        dag = builder(example_spec)
        for name in dag.params:
            assert not re.search(r"path|uri|file|location|artifact", name, re.I), f"{dag.dag_id} param {name}"
    schema = dag_factory.build_rollback(example_spec).params.get_param("to_version").schema
    assert set(schema["type"]) == {"null", "integer"}


# ---- the production stack requires authentication ---------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def test_airflow_api_and_ui_use_an_auth_manager_with_a_password(compose):
    services = compose["services"]
    airflow = [n for n in services if n.startswith("airflow-")]
    for name in airflow:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager"), name
        # simple_auth_manager_all_admins turns authentication off: it must never be set.
        assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env, name
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?"), name
    assert "ALL_ADMINS" not in (ROOT / "docker-compose.yaml").read_text().upper()


def test_mlflow_runs_its_basic_auth_app_with_credentials_from_the_environment(compose):
    services = compose["services"]
    mlflow = services["mlflow"]
    words = [str(w) for w in mlflow["command"]]
    assert words[:2] == ["mlflow", "server"]
    assert words[words.index("--app-name") + 1] == "basic-auth"
    env = _env(mlflow)
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_SECRET_KEY:?")
    ini_target = env["MLFLOW_AUTH_CONFIG_PATH"]
    sources = {v.split(":")[1]: v.split(":")[0] for v in mlflow["volumes"]}
    assert sources[ini_target] == "./deploy/mlflow/basic_auth.ini"
    # The auth database lives on a named volume, not in the container.
    ini = (ROOT / "deploy" / "mlflow" / "basic_auth.ini").read_text()
    db = re.search(r"^database_uri\s*=\s*sqlite:///(\S+)$", ini, re.M).group(1)
    assert any(
        db.startswith(target + "/") and source in compose["volumes"] for target, source in sources.items()
    )
    assert not re.search(r"^\s*admin_password\s*=", ini, re.M), (
        "the admin password belongs in the environment"
    )
    # Every Airflow process that talks to MLflow sends credentials.
    for name in [n for n in services if n.startswith("airflow-")]:
        env = _env(services[name])
        assert env["MLFLOW_TRACKING_USERNAME"] == "admin", name
        assert env["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?"), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(420)
def test_the_compose_mlflow_server_refuses_requests_without_credentials(compose, tmp_path):
    """Start MLflow on 127.0.0.1 the way the compose service does (its command, its
    basic_auth.ini with the auth DB moved to a temporary folder) and knock on its API."""
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs Flask-WTF (requirements.txt)")
    import base64
    import urllib.error
    import urllib.request

    words = [str(w) for w in compose["services"]["mlflow"]["command"]]
    options = {words[i]: words[i + 1] for i in range(2, len(words) - 1, 2) if words[i].startswith("--")}
    ini = (ROOT / "deploy" / "mlflow" / "basic_auth.ini").read_text()
    ini = re.sub(r"^database_uri\s*=.*$", f"database_uri = sqlite:///{tmp_path / 'auth.db'}", ini, flags=re.M)
    (tmp_path / "basic_auth.ini").write_text(ini)
    port = _free_port()
    admin_pass = "pytest-" + os.urandom(8).hex()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_pass,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--app-name",
        options["--app-name"],
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )

    def get(path: str, user: str | None = None, secret: str | None = None) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if user:
            token = base64.b64encode(f"{user}:{secret}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(
                request, timeout=90
            ) as response:  # slow first calls on a busy machine
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        deadline = time.monotonic() + 360
        while True:
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            try:
                if get("/health") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "MLflow did not start"
            time.sleep(2)
        api = "/api/2.0/mlflow/experiments/search?max_results=1"
        assert get(api) == 401
        assert get(api, "admin", "wrong-password") == 401
        assert get("/", None) == 401
        assert get("/api/2.0/mlflow/registered-models/search", None) == 401
        assert get(api, "admin", admin_pass) == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


# ---- who acted -----------------------------------------------------------------------------------


def _run_context(conf: dict, user: str | None) -> dict:
    from types import SimpleNamespace

    # The two DagRun attributes the factory reads, as Airflow's task context hands them over.
    run = SimpleNamespace(dag_id="late_delivery__retrain", run_id="manual__1", conf=conf, triggering_user_name=user)
    return {"dag_run": run}


def test_a_run_conf_cannot_hide_the_user_who_triggered_the_run():
    from mlops_lifecycle.dag_factory import _actor

    spoofed = _actor(_run_context({"requested_by": "airflow:late_delivery__daily/scheduled__x"}, "mallory"))
    assert "user=mallory" in spoofed and "requested_by=airflow:late_delivery__daily/scheduled__x" in spoofed
    assert _actor(_run_context({}, "alice")) == "airflow:late_delivery__retrain/manual__1 user=alice"
    # A run the daily DAG triggered has no user: the requester it names is what is recorded.
    assert _actor(_run_context({"requested_by": "airflow:late_delivery__daily/scheduled__x"}, None)) == (
        "airflow:late_delivery__retrain/manual__1 requested_by=airflow:late_delivery__daily/scheduled__x")


# ---- which code ran --------------------------------------------------------------------------------


def test_the_code_version_is_the_git_commit_and_says_when_the_tree_has_uncommitted_changes():
    from mlops_lifecycle import config

    git = shutil.which("git")
    root = config.PROJECT_ROOT
    if git is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run([git, "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run([git, "-C", str(root), "status", "--porcelain", "--", "include", "dags"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert config.code_version() == (f"{head}+dirty" if dirty else head)
    assert config.git_commit() == head


def test_an_explicit_code_version_wins(monkeypatch):
    from mlops_lifecycle import config

    monkeypatch.setenv("MLOPS_CODE_VERSION", "registry.example/mlops:1.4.2")
    assert config.code_version() == "registry.example/mlops:1.4.2"


def test_the_code_fingerprint_changes_with_any_source_file(tmp_path, monkeypatch):
    from mlops_lifecycle import config

    for top in ("include", "dags"):
        shutil.copytree(config.PROJECT_ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    config.code_fingerprint.cache_clear()
    try:
        first = config.code_fingerprint()
        assert len(first) == 64
        config.code_fingerprint.cache_clear()
        assert config.code_fingerprint() == first  # deterministic
        target = tmp_path / "include" / "mlops_lifecycle" / "features.py"
        target.write_text(target.read_text() + "\n# a one-line change\n")
        config.code_fingerprint.cache_clear()
        assert config.code_fingerprint() != first
    finally:
        config.code_fingerprint.cache_clear()
