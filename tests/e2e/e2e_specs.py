"""Small-data spec for end-to-end runs of the real DAGs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

SMALL = {
    "training": {
        "window_days": 20, "validation_days": 1, "holdout_days": 1, "min_rows": 600, "slice_column": "delivery_region",
        "early_stopping_rounds": 10, "reference_rows": 400,
        # One day's holdout (about 300 rows): the scenarios retrain right after a shift, and a
        # holdout reaching back before it would judge the challenger on the old regime.
        "holdout_min_rows": 200,
        "xgboost": {"n_estimators": 80, "max_depth": 4, "learning_rate": 0.2, "tree_method": "hist"},
    },
    "validation": {"min_rows": 50, "volume_lookback_days": 5, "volume_max_ratio": 3.0, "volume_min_ratio": 0.3},
    "retraining": {"cooldown_days": 7, "drift_days_required": 2, "min_rows": 400},
    "promotion": {"metric": "roc_auc", "margin": 0.005, "floor": 0.6, "mode": "auto"},
}


def write_small_spec(specs_dir: Path, **overrides) -> Path:
    """The example spec with a small training set-up, plus any overrides (top-level keys)."""
    data = yaml.safe_load((ROOT / "dags" / "specs" / "late_delivery.yaml").read_text())
    data.update(SMALL)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    specs_dir.mkdir(parents=True, exist_ok=True)
    path = specs_dir / "late_delivery.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextlib.contextmanager
def isolated_stores(base: Path) -> Iterator[pytest.MonkeyPatch]:
    """Point the package at stores of its own under ``base`` (``data/`` with the default
    SQLite MLflow store in it, ``specs/``) until the block ends; yields the monkeypatch."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(base / "data"))
        mp.setenv("MLOPS_SPECS_DIR", str(base / "specs"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield mp


def replay_example_days(base: Path, history: list, days: list, *, corrupt_days: tuple = ()) -> tuple:
    """In stores already pointed at ``base`` (see :func:`isolated_stores`): write the small
    spec and 300-row landing files, seed ``history``, then replay ``days`` through the real
    DAGs. Returns the spec and each day's :class:`replay.DayResult`."""
    write_small_spec(base / "specs")

    from mlops_lifecycle import ingestion, replay
    from mlops_lifecycle.examples import late_delivery
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("late_delivery")
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, [*history, *days], rows=300, corrupt_days=corrupt_days)
    replay.seed_history(spec, history)
    dags = replay.load_dags(spec)
    replay.clear_runs(spec)
    return spec, {d: replay.run_day(spec, dags, d, logfile=base / "runs.log") for d in days}
