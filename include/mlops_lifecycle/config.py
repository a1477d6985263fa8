"""Where things live, read from the environment with working defaults.

Three variables point the package at a user's own stores; every default keeps
everything inside the project folder so a fresh clone works with no set-up:

- ``MLOPS_DATA_DIR``: the data lake root (default ``<project>/data``).
- ``MLFLOW_TRACKING_URI``: the MLflow store (default a SQLite file in the data dir).
- ``MLOPS_SPECS_DIR``: the folder of model specs (default ``<project>/dags/specs``).

``AIRFLOW_HOME`` is read by Airflow itself; the Makefile defaults it to ``<project>/.airflow``.

Local services (``make airflow``, ``make mlflow-ui``) and the links to them follow their ports:

- ``AIRFLOW__API__PORT`` (default 8080): the local api-server's port; ``[api] base_url`` and the
  Execution API URL the tasks call are derived from it unless set (:func:`airflow_urls`).
- ``MLFLOW_UI_PORT`` (default 5000): where ``make mlflow-ui`` listens and, unless
  ``MLOPS_MLFLOW_UI_URL`` says otherwise, where the MLflow links point (:func:`mlflow_ui_url`).
Nothing here touches the network or a database, and nothing runs at import time.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Root of the data lake (``MLOPS_DATA_DIR``), made absolute."""
    return Path(os.environ.get("MLOPS_DATA_DIR") or PROJECT_ROOT / "data").expanduser().resolve()


def specs_dir() -> Path:
    """Folder holding one ``<model>.yaml`` spec per model (``MLOPS_SPECS_DIR``)."""
    return Path(os.environ.get("MLOPS_SPECS_DIR") or PROJECT_ROOT / "dags" / "specs").expanduser().resolve()


def mlflow_tracking_uri() -> str:
    """MLflow tracking URI; defaults to a SQLite store under the data dir."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{data_dir() / 'mlflow' / 'mlflow.db'}"


DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_MLFLOW_UI_PORT = 5000


def _port(variable: str, default: int) -> int:
    """A TCP port from the environment variable ``variable``.

    Raises:
        ValueError: the value is not a whole number from 1 to 65535 (the message names the variable).
    """
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{variable}={raw!r} is not a TCP port (a whole number from 1 to 65535)")
    return int(raw)


def airflow_api_port() -> int:
    """Port of the local Airflow api-server (``AIRFLOW__API__PORT``, default 8080)."""
    return _port("AIRFLOW__API__PORT", DEFAULT_AIRFLOW_PORT)


def airflow_urls() -> dict[str, str]:
    """The URL settings of a local Airflow, all derived from :func:`airflow_api_port`.

    ``AIRFLOW__API__BASE_URL`` (links, the UI's own address) and
    ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` (where task processes report) default to
    ``localhost:8080`` in Airflow whatever port the api-server serves on, so a second port
    alone leaves every task dying with "Connection refused". A value set in the environment wins.
    """
    port = airflow_api_port()
    base = os.environ.get("AIRFLOW__API__BASE_URL", "").strip() or f"http://localhost:{port}"
    execution = (os.environ.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "").strip()
                 or f"http://127.0.0.1:{port}/execution/")
    return {"AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution}


def mlflow_ui_port() -> int:
    """Port of ``make mlflow-ui`` (``MLFLOW_UI_PORT``, default 5000)."""
    return _port("MLFLOW_UI_PORT", DEFAULT_MLFLOW_UI_PORT)


def mlflow_ui_url() -> str:
    """Base URL of the MLflow UI as a browser reaches it.

    ``MLOPS_MLFLOW_UI_URL`` wins; else ``MLFLOW_TRACKING_URI`` when it is an http(s) server;
    else ``make mlflow-ui`` on this machine: http://127.0.0.1:``MLFLOW_UI_PORT``. In docker
    compose the tracking URI (http://mlflow:5000) is a container name, so the compose file
    sets the first variable.
    """
    explicit = os.environ.get("MLOPS_MLFLOW_UI_URL", "").strip()
    if explicit:
        return explicit.rstrip("/")
    tracking = mlflow_tracking_uri()
    if tracking.startswith(("http://", "https://")):
        return tracking.rstrip("/")
    return f"http://127.0.0.1:{mlflow_ui_port()}"


def mlflow_artifact_root() -> str | None:
    """Artifact root for new experiments, or None to let a tracking server decide.

    A SQLite/file store would otherwise put artifacts in ``./mlruns`` relative to the
    current directory of whichever process created the experiment, which differs
    between the scheduler, workers and the CLI.
    """
    explicit = os.environ.get("MLOPS_MLFLOW_ARTIFACT_ROOT")
    if explicit:
        return explicit
    if mlflow_tracking_uri().startswith(("http://", "https://", "databricks")):
        return None
    return (data_dir() / "mlflow" / "artifacts").as_uri()


def git_commit() -> str | None:
    """The commit HEAD points at (None outside a git checkout), read from ``.git``
    directly (no git binary needed); see :func:`code_version`."""
    head = PROJECT_ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
    except OSError:
        return None
    if not ref.startswith("ref: "):
        return ref or None
    ref_path = PROJECT_ROOT / ".git" / ref[5:]
    try:
        if ref_path.exists():
            return ref_path.read_text().strip()
        packed = PROJECT_ROOT / ".git" / "packed-refs"
        for line in packed.read_text().splitlines() if packed.exists() else []:
            if line.endswith(" " + ref[5:]):
                return line.split()[0]
    except OSError:
        return None
    return None


# The code whose version is recorded: the package and the DAG folder. A change in either
# changes what a prediction or a model was made with.
_CODE_DIRS = ("include", "dags")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the package's and the DAG folder's Python sources, as loaded.

    Model specs are not code: each model version and predictions manifest records its
    own spec's hash (:meth:`ModelSpec.sha256`), so editing one model's spec does not
    change the code version of another.

    Computed once per process (the code a process runs does not change under it), and
    always available: an image without ``.git`` still says exactly which code ran, and
    two runs with the same commit but different uncommitted edits differ here.
    """
    digest = hashlib.sha256()
    for top in _CODE_DIRS:
        base = PROJECT_ROOT / top
        files = sorted(p for p in base.rglob("*") if p.suffix == ".py" and p.is_file()
                       and "__pycache__" not in p.parts and not any(part.endswith(".egg-info") for part in p.parts))
        for path in files:
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _uncommitted_changes() -> bool | None:
    """Whether the code folders differ from HEAD (None when git cannot tell)."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None or not (PROJECT_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run([git, "-C", str(PROJECT_ROOT), "status", "--porcelain", "--", *_CODE_DIRS],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.strip())


def code_version() -> str:
    """The version of the code that runs.

    ``MLOPS_CODE_VERSION`` wins (an image tag or the commit baked into an image); else
    the git commit, with ``+dirty`` when the package or DAG folder has uncommitted
    changes, since then the commit alone does not say what ran; ``unknown`` without
    either. :func:`code_fingerprint` is recorded beside it and names the exact sources.
    """
    explicit = os.environ.get("MLOPS_CODE_VERSION")
    if explicit:
        return explicit
    commit = git_commit()
    if commit is None:
        return "unknown"
    return f"{commit}+dirty" if _uncommitted_changes() else commit


def quiet_third_party() -> None:
    """Turn off telemetry and progress bars of the libraries we call (no network, clean logs)."""
    for key, value in {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "TQDM_DISABLE": "1",
        "GIT_PYTHON_REFRESH": "quiet",
    }.items():
        os.environ.setdefault(key, value)
