"""Where things live, read from the environment with working defaults.

Three variables point the package at a user's own stores; every default keeps
everything inside the project folder so a fresh clone works with no set-up:

- ``MLOPS_DATA_DIR``: the data lake root (default ``<project>/data``).
- ``MLFLOW_TRACKING_URI``: the MLflow store (default a SQLite file in the data dir).
- ``MLOPS_SPECS_DIR``: the folder of model specs (default ``<project>/dags/specs``).

``AIRFLOW_HOME`` is read by Airflow itself; the Makefile defaults it to ``<project>/.airflow``.
Nothing here touches the network or a database: it only computes strings and paths.
"""

from __future__ import annotations

import os
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


def code_version() -> str:
    """The git commit of the code that runs (``MLOPS_CODE_VERSION`` wins, e.g. an image tag)."""
    explicit = os.environ.get("MLOPS_CODE_VERSION")
    if explicit:
        return explicit
    head = PROJECT_ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = PROJECT_ROOT / ".git" / ref[5:]
            if ref_path.exists():
                return ref_path.read_text().strip()
            packed = PROJECT_ROOT / ".git" / "packed-refs"
            for line in packed.read_text().splitlines() if packed.exists() else []:
                if line.endswith(" " + ref[5:]):
                    return line.split()[0]
            return "unknown"
        return ref
    except OSError:
        return "unknown"


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
