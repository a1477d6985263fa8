"""The compose deployment, checked offline: schema, structure, secrets, documentation, secrets gate.

Nothing here starts a container, needs a Docker engine or reaches the network. What only a real
engine can show (images build, services turn healthy, a DAG runs on a worker) is out of reach.

``compose_spec.json`` is the Compose Specification JSON schema shipped in Debian's
docker-compose 1.29.2 package (``compose/config/compose_spec.json``), copied unchanged.
Copyright 2014-2015 Docker Inc.; licensed under the Apache License, Version 2.0
(http://www.apache.org/licenses/LICENSE-2.0). It predates a few newer keys (top-level
``name``, healthcheck ``start_interval``), so the compose file keeps to the keys it knows,
which every Compose v2 release also accepts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
CHECK_SECRETS = ROOT / "deploy" / "check-secrets.sh"
INIT_DATABASES = ROOT / "deploy" / "postgres" / "init-databases.sh"
SCHEMA = Path(__file__).with_name("compose_spec.json")

HEALTHY = {"condition": "service_healthy"}
COMPLETED = {"condition": "service_completed_successfully"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN")
# `${VAR:?message}`: compose refuses to start when VAR is unset or empty.
REQUIRED_INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}")
# `${VAR}`, `${VAR:-default}`, `${VAR:?message}`... in compose's interpolation syntax.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# The well-known passwords of quick-start compose files (`--password=airflow` and the like).
DEFAULT_PASSWORD = re.compile(r"(?i)password\s*[:=]\s*['\"]?(airflow|admin|postgres|mlflow|redis)\b")
# Read by compose itself from the env file, never interpolated into the compose file.
COMPOSE_OWN_VARIABLES = re.compile(r"^COMPOSE_")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file as compose sees it before interpolation (anchors and merges resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


def parse_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of a compose env file, in order; comments and blank lines skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            assert name not in values, f"{path.name}: {name} is set twice"
            values[name] = value
    return values


def walk_strings(node) -> Iterator[str]:
    """Every string (mapping keys included) anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(key)
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)
    elif isinstance(node, str):
        yield node


def environment(service: dict) -> dict[str, str]:
    """A service's environment in mapping form, whichever form the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: str(value) for name, value in env.items()}


def command_words(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(word) for word in command]


def mounts(service: dict) -> dict[str, str]:
    """Container path -> source (host path or volume name) of a service's short-syntax volumes."""
    result = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        result[target] = source
    return result


def one_shot_services(services: dict) -> set[str]:
    """Services another service waits to *complete*: jobs, not daemons."""
    return {
        dependency
        for service in services.values()
        for dependency, condition in (service.get("depends_on") or {}).items()
        if condition == COMPLETED
    }


def airflow_services(services: dict) -> list[str]:
    """The long-running Airflow components (everything named airflow-* except the init job)."""
    return sorted(name for name in services if name.startswith("airflow-") and name != "airflow-init")


def run_check_secrets(env: dict[str, str], *names: str) -> subprocess.CompletedProcess:
    """deploy/check-secrets.sh under POSIX sh with exactly `env` (plus PATH) as its environment."""
    return subprocess.run(
        ["sh", str(CHECK_SECRETS), *names],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def placeholder_secrets(env_example: dict[str, str]) -> set[str]:
    return {name for name, value in env_example.items() if value.startswith("change-me")}


def strong_secrets(names: set[str]) -> dict[str, str]:
    """Values a careful operator would generate: URL-safe random strings and a real Fernet key."""
    values = {name: secrets.token_hex(24) for name in names}
    values["AIRFLOW_FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return values


# ---------------------------------------------------------------------------------------------
# (a) + (b) The file is valid Compose
# ---------------------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification_schema(compose):
    schema = json.loads(SCHEMA.read_text())
    # The schema names draft 2019-09 with a non-canonical URI; say so instead of letting
    # jsonschema guess (it warns and falls back to the latest draft).
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(compose)]
    assert not errors, "docker-compose.yaml breaks the Compose schema:\n" + "\n".join(errors)


def test_schema_check_rejects_a_misspelt_key(compose):
    """Guard against a vacuous schema: a typo in a service must fail validation."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["redis"]["healtcheck"] = broken["services"]["redis"].pop("healthcheck")
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    assert any("healtcheck" in error.message for error in validator.iter_errors(broken))


@pytest.fixture
def docker_compose(tmp_path):
    """Run Debian's docker-compose (1.29) offline, with no inherited variables to mask gaps."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not on PATH (apt-get install docker-compose); schema test still ran")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [binary, "-f", str(COMPOSE_FILE), *args],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_docker_compose_config_accepts_the_file_with_the_example_env(docker_compose):
    result = docker_compose("--env-file", str(ENV_EXAMPLE), "config", "-q")
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_run_without_the_secrets(docker_compose, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = docker_compose("--env-file", str(empty), "config", "-q")
    assert result.returncode != 0
    assert "in .env (see .env.example)" in result.stderr


# ---------------------------------------------------------------------------------------------
# (c) Structure
# ---------------------------------------------------------------------------------------------


def test_the_one_shot_jobs_are_the_secrets_gate_and_airflow_init(services):
    assert one_shot_services(services) == {"check-secrets", "airflow-init"}
    for name in ("check-secrets", "airflow-init"):
        assert services[name]["restart"] == "no", f"{name} is a job: a restart policy would loop it"


def test_every_long_running_service_has_a_healthcheck_and_restarts(services):
    daemons = sorted(set(services) - one_shot_services(services))
    assert {"postgres", "redis", "mlflow", "airflow-apiserver", "airflow-worker"} <= set(daemons)
    for name in daemons:
        healthcheck = services[name].get("healthcheck") or {}
        assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "always", f"{name} does not restart"


def test_every_airflow_service_waits_for_init_and_healthy_postgres_and_redis(services):
    names = airflow_services(services)
    expected = {"apiserver", "scheduler", "dag-processor", "triggerer", "worker"}
    assert names == sorted(f"airflow-{component}" for component in expected)
    for name in names:
        depends_on = services[name]["depends_on"]
        assert depends_on.get("airflow-init") == COMPLETED, name
        assert depends_on.get("postgres") == HEALTHY, name
        assert depends_on.get("redis") == HEALTHY, name
    init = services["airflow-init"]["depends_on"]
    assert init == {"postgres": HEALTHY, "redis": HEALTHY}


def test_nothing_starts_before_the_secrets_gate_passed(services):
    for name in ("postgres", "redis"):
        assert services[name]["depends_on"] == {"check-secrets": COMPLETED}, name
    assert services["mlflow"]["depends_on"] == {"postgres": HEALTHY}


def test_airflow_components_run_their_airflow_3_commands(services):
    assert command_words(services["airflow-apiserver"]) == ["api-server"]
    assert command_words(services["airflow-scheduler"]) == ["scheduler"]
    assert command_words(services["airflow-dag-processor"]) == ["dag-processor"]
    assert command_words(services["airflow-triggerer"]) == ["triggerer"]
    assert command_words(services["airflow-worker"]) == ["celery", "worker"]


def test_worker_can_be_scaled(services):
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker, "replicas would collide"
    assert worker["depends_on"].get("airflow-apiserver") == HEALTHY, "tasks need the Execution API"


def test_airflow_and_mlflow_run_the_image_built_from_the_dockerfile(services):
    image = services["airflow-init"]["image"]
    for name in [*airflow_services(services), "airflow-init", "mlflow"]:
        assert services[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
        assert services[name]["image"] == image, name


def test_dags_plugins_and_include_are_mounted_into_every_airflow_container(services):
    for name in [*airflow_services(services), "airflow-init"]:
        volumes = mounts(services[name])
        for folder in ("dags", "plugins", "include"):
            assert volumes.get(f"/opt/airflow/{folder}") == f"./{folder}", f"{name}: ./{folder} not mounted"


def test_the_data_lake_is_one_named_volume_that_workers_and_scheduler_share(compose, services):
    sources = set()
    for name in ("airflow-worker", "airflow-scheduler"):
        data_dir = environment(services[name])["MLOPS_DATA_DIR"]
        source = mounts(services[name]).get(data_dir)
        assert source in compose["volumes"], f"{name}: MLOPS_DATA_DIR {data_dir} is not on a named volume"
        sources.add(source)
    assert len(sources) == 1


def test_airflow_environment_is_production_shaped(services):
    for name in [*airflow_services(services), "airflow-init"]:
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
            assert key in env, f"{name} lacks {key}"
        password_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        assert os.path.dirname(password_file) in mounts(services[name]), "password file is not on a volume"


def test_nothing_phones_home(services):
    quiet = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    for name in [*airflow_services(services), "airflow-init", "mlflow"]:
        env = environment(services[name])
        assert quiet.items() <= env.items(), name
        if name != "mlflow":
            assert env["GX_ANALYTICS_ENABLED"] == "false", name


def test_mlflow_serves_artifacts_from_a_volume_with_postgres_as_backend_store(compose, services):
    mlflow = services["mlflow"]
    words = command_words(mlflow)
    assert words[:2] == ["mlflow", "server"]
    assert "--serve-artifacts" in words
    destination = words[words.index("--artifacts-destination") + 1]
    assert destination == "/mlflow/artifacts"
    assert mounts(mlflow)[destination] in compose["volumes"]
    assert words[words.index("--host") + 1] == "0.0.0.0"
    assert words[words.index("--port") + 1] == "5000"
    # `--backend-store-uri` through its environment variable keeps the password off the command line.
    assert environment(mlflow)["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://mlflow:")
    assert "/mlflow" in environment(mlflow)["MLFLOW_BACKEND_STORE_URI"].rsplit("@", 1)[1]


def test_postgres_creates_both_databases_with_the_init_script(services):
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    init_scripts = {
        target: source
        for target, source in mounts(postgres).items()
        if target.startswith("/docker-entrypoint-initdb.d/")
    }
    assert list(init_scripts.values()) == ["./deploy/postgres/init-databases.sh"]
    env = environment(postgres)
    assert (env["AIRFLOW_DB_NAME"], env["MLFLOW_DB_NAME"]) == ("airflow", "mlflow")


def test_published_ports_bind_to_localhost_by_default(services, env_example):
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert set(published) == {"airflow-apiserver", "mlflow"}, "only the two UIs are published"
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"
    assert env_example["BIND_ADDRESS"] == "127.0.0.1"


def test_shell_scripts_parse():
    for script in (CHECK_SECRETS, INIT_DATABASES):
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


def test_dockerfile_base_image_matches_the_pinned_airflow():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    arg = re.search(r"^ARG AIRFLOW_VERSION=(\S+)", dockerfile, re.M)
    assert pinned and arg and arg.group(1) == pinned.group(1)
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}-python3\.11$", dockerfile, re.M)


# ---------------------------------------------------------------------------------------------
# (d) No secret literal
# ---------------------------------------------------------------------------------------------


def secret_settings(node) -> Iterator[tuple[str, str]]:
    """(name, value) of every mapping entry whose upper-case name says it holds a secret."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.isupper() and SECRET_NAME.search(key):
                yield key, value
            yield from secret_settings(value)
    elif isinstance(node, list):
        for item in node:
            yield from secret_settings(item)


def test_every_secret_setting_is_a_required_interpolation(compose):
    found = list(secret_settings(compose))
    assert len(found) >= 10, "the walk found too few secret settings to be looking in the right place"
    for name, value in found:
        if name.endswith("_FILE"):  # a path to where a secret lives, not the secret
            assert str(value).startswith("/"), f"{name}: {value!r}"
            continue
        assert isinstance(value, str) and REQUIRED_INTERPOLATION.fullmatch(value), (
            f"{name} must be exactly ${{VAR:?message}}, found {value!r}"
        )


def test_every_password_inside_a_url_is_a_required_interpolation(compose):
    # scheme://user:password@host[:port][/path]; the password may hold spaces and colons (the
    # `:?message`), so take everything up to the last '@' that is followed by a host.
    with_userinfo = re.compile(r"^[a-z][a-z0-9+.-]*://(?P<userinfo>.*)@[A-Za-z0-9.-]+(:\d+)?(/\S*)?$")
    urls = [match for text in walk_strings(compose) if (match := with_userinfo.match(text))]
    assert len(urls) >= 4, "expected the metadata DB, result backend, broker and MLflow store URLs"
    for url in urls:
        password = url["userinfo"].partition(":")[2]
        assert REQUIRED_INTERPOLATION.fullmatch(password), f"literal password in {url.string!r}"


def test_compose_file_holds_no_placeholder_or_example_secret(compose):
    # Parsed values only: the comments may (and do) talk about the placeholders.
    for text in walk_strings(compose):
        assert "change-me" not in text, text
        assert not DEFAULT_PASSWORD.search(text), text


# ---------------------------------------------------------------------------------------------
# (e) .env.example documents exactly what the compose file uses
# ---------------------------------------------------------------------------------------------


def compose_variables(compose) -> dict[str, set[str]]:
    """Variable -> the defaults it is given (`${VAR:-default}`) across the compose file.

    Read from the parsed document, so YAML comments do not count, with `$$` (a literal
    dollar for the container's shell) removed first.
    """
    found: dict[str, set[str]] = {}
    for text in walk_strings(compose):
        text = text.replace("$$", "")
        assert not re.search(r"\$[A-Za-z_]", text), f"unbraced variable in {text!r}: write ${{VAR}}"
        for name, operator, argument in INTERPOLATION.findall(text):
            defaults = found.setdefault(name, set())
            if operator in (":-", "-"):
                defaults.add(argument)
    return found


def test_every_compose_variable_is_documented_in_env_example_and_vice_versa(compose, env_example):
    used = set(compose_variables(compose))
    documented = {name for name in env_example if not COMPOSE_OWN_VARIABLES.match(name)}
    assert used - documented == set(), "used in docker-compose.yaml but missing from .env.example"
    assert documented - used == set(), "in .env.example but not used by docker-compose.yaml"


def test_env_example_gives_each_variable_one_comment_line():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if line and not line.startswith("#"):
            previous = lines[number - 1] if number else ""
            assert previous.startswith("# ") and not previous.startswith("# ---"), (
                f".env.example line {number + 1}: {line.split('=')[0]} has no comment line of its own"
            )


def test_env_example_shows_the_compose_defaults(compose, env_example):
    for name, defaults in compose_variables(compose).items():
        assert len(defaults) <= 1, f"{name} has different defaults in different places: {defaults}"
        if defaults:
            assert env_example[name] == next(iter(defaults)), f"{name}: .env.example differs from the default"


def test_every_secret_has_a_change_me_placeholder_and_no_default(compose, env_example):
    variables = compose_variables(compose)
    required = {name for name, value in env_example.items() if value.startswith("change-me")}
    for name in required:
        assert not variables[name], f"{name} is a secret: it must not have a default"
    # The secrets the gate checks are exactly the placeholders of .env.example.
    assert set(environment(compose["services"]["check-secrets"])) == required


# ---------------------------------------------------------------------------------------------
# (f) The secrets gate
# ---------------------------------------------------------------------------------------------


def test_check_secrets_refuses_the_example_values_naming_each_variable(env_example):
    result = run_check_secrets(env_example)
    assert result.returncode == 1
    for name in placeholder_secrets(env_example):
        assert re.search(rf"^  - {name} still holds the .env.example placeholder", result.stderr, re.M), (
            f"{name} not named in:\n{result.stderr}"
        )


def test_check_secrets_default_list_is_the_example_placeholders(env_example):
    result = run_check_secrets({})
    assert result.returncode == 1
    named = set(re.findall(r"^  - (\w+) is empty or not set$", result.stderr, re.M))
    assert named == placeholder_secrets(env_example)


def test_check_secrets_accepts_generated_strong_values(env_example):
    values = strong_secrets(placeholder_secrets(env_example))
    result = run_check_secrets(values)
    assert result.returncode == 0, result.stderr
    assert "10 secrets set" in result.stdout


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("AIRFLOW_JWT_SECRET", "", "is empty or not set"),
        ("AIRFLOW_ADMIN_PASSWORD", "short-pw", "is too short (8 characters; at least 12)"),
        ("REDIS_PASSWORD", "change-me-but-long-enough", "still holds the .env.example placeholder"),
        ("AIRFLOW_DB_PASSWORD", "p@ss:word/with#url%chars", "has characters that break a connection URL"),
        ("AIRFLOW_FERNET_KEY", secrets.token_hex(22), "is not a Fernet key"),
    ],
)
def test_check_secrets_names_only_the_weak_variable(env_example, name, value, reason):
    values = strong_secrets(placeholder_secrets(env_example))
    values[name] = value
    result = run_check_secrets(values)
    assert result.returncode == 1
    problems = re.findall(r"^  - (\w+) (.*)$", result.stderr, re.M)
    assert [problem[0] for problem in problems] == [name]
    assert problems[0][1].startswith(reason)
    if value:
        assert value not in result.stderr + result.stdout, "a secret value was printed"


def test_check_secrets_checks_only_the_named_variables_when_given_names():
    result = run_check_secrets({"REDIS_PASSWORD": secrets.token_hex(24)}, "REDIS_PASSWORD")
    assert result.returncode == 0, result.stderr
    result = run_check_secrets({}, "NOT A NAME")
    assert result.returncode == 2


def test_the_image_bakes_in_everything_a_deployment_without_bind_mounts_runs():
    """Kubernetes runs the image as built: the package, the DAGs and the plugin must be in it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("include", "dags", "plugins"):
        assert re.search(rf"^COPY --chown=airflow:0 {folder}/ /opt/airflow/{folder}/$", dockerfile, re.M), folder
