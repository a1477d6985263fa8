"""The registry: aliases, one-step rollback, approval, the audit trail and its alerts.

Real MLflow (a SQLite store in each test's own data folder) and small real XGBoost models.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from mlops_lifecycle import alerts, cli, features, registry
from mlops_lifecycle.registry import RegistryError

EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "dags" / "specs" / "late_delivery.yaml"


def _register(spec, seed: int) -> str:
    """Register a small real XGBoost model; returns its version."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    x = rng.random((60, len(features.feature_columns(spec)))).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(int)
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2, random_state=seed).fit(x, y)
    exp = registry.ensure_experiment(spec)
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.xgboost.log_model(
            model, name="model", registered_model_name=spec.model_name, pip_requirements=["xgboost"]
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An MLflow store with three registered versions and no aliases, made once: each
    test gets a copy of its database (the artifacts stay where this one put them)."""
    from mlops_lifecycle.spec import load_spec

    base = tmp_path_factory.mktemp("registry-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(base))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        spec = load_spec(EXAMPLE_SPEC)  # not `from conftest import`: several conftest modules exist
        versions = [_register(spec, s) for s in (1, 2, 3)]
    return base / "mlflow" / "mlflow.db", versions


@pytest.fixture
def three(example_spec, data_dir, store):
    """v1 champion, then v2 promoted over it; v3 registered but undecided."""
    import shutil

    db, (v1, v2, v3) = store
    (data_dir / "mlflow").mkdir()
    shutil.copy(db, data_dir / "mlflow" / "mlflow.db")
    spec = example_spec
    registry.set_champion(spec, v1, actor="alice", reason="first model")
    registry.set_champion(
        spec, v2, actor="airflow:late_delivery__retrain/run-2", reason="data_drift: beats v1"
    )
    return spec, v1, v2, v3


def _champ(spec) -> str:
    return str(registry.champion(spec).version)


def test_promotion_is_audited_with_who_when_why_from_and_to(three):
    spec, v1, v2, _ = three
    log = registry.audit_log(spec)
    assert [(e["action"], e["from_version"], e["to_version"]) for e in log] == [
        ("promote", None, v1),
        ("promote", v1, v2),
    ]
    second = log[1]
    assert second["by"] == "airflow:late_delivery__retrain/run-2"
    assert second["reason"] == "data_drift: beats v1"
    at = dt.datetime.fromisoformat(second["at"])
    assert at.tzinfo is not None and abs((dt.datetime.now(dt.UTC) - at).total_seconds()) < 600
    tags = registry.get_version(spec, v2).tags
    assert (
        tags["status"] == "champion"
        and tags["promoted_by"].startswith("airflow:")
        and tags["replaced_version"] == v1
    )
    assert registry.get_version(spec, v1).tags["status"] == "retired"


def test_rollback_is_one_step_back_to_the_previous_champion_and_is_audited(three):
    spec, v1, v2, _ = three
    entry = registry.rollback(spec, actor="cli:bob", reason="v2 over-predicts lateness in the north")
    assert _champ(spec) == v1
    assert (entry["action"], entry["from_version"], entry["to_version"], entry["by"]) == (
        "rollback",
        v2,
        v1,
        "cli:bob",
    )
    assert registry.audit_log(spec)[-1] == entry
    assert registry.get_version(spec, v2).tags["status"] == "rolled_back"
    assert str(registry._get_alias(spec, registry.PREVIOUS).version) == v2


def test_a_second_unnamed_rollback_does_not_restore_the_model_just_rolled_back(three):
    spec, v1, v2, _ = three
    registry.rollback(spec, actor="cli:bob", reason="bad v2")
    with pytest.raises(RegistryError, match="was itself rolled back from"):
        registry.rollback(spec, actor="cli:bob", reason="again")
    assert _champ(spec) == v1
    # Named on purpose, it is allowed.
    registry.rollback(spec, actor="cli:bob", reason="v2 was fine after all", to_version=v2)
    assert _champ(spec) == v2


def test_rollback_to_a_named_version(three):
    spec, v1, v2, v3 = three
    registry.rollback(spec, actor="cli:bob", reason="restore the first model", to_version=int(v1))
    assert _champ(spec) == v1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"to_version": 99}, "no model version"),
        ({"to_version": "/tmp/evil/model"}, "not a model version number"),
        ({"to_version": "models:/late_delivery/1"}, "not a model version number"),
        ({"to_version": 2}, "already the champion"),
        ({"reason": "  "}, "needs a reason"),
    ],
)
def test_rollback_refuses_what_it_cannot_do(three, kwargs, message):
    spec, v1, v2, _ = three
    args = {"actor": "cli:bob", "reason": "because", **kwargs}
    with pytest.raises(RegistryError, match=message):
        registry.rollback(spec, **args)
    assert _champ(spec) == v2


def test_rollback_without_a_previous_champion_says_so(example_spec, data_dir, store):
    import shutil

    db, (v1, *_) = store
    (data_dir / "mlflow").mkdir()
    shutil.copy(db, data_dir / "mlflow" / "mlflow.db")
    registry.set_champion(example_spec, v1, actor="alice", reason="first")
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback(example_spec, actor="bob", reason="nothing to go back to")


def test_challenger_waits_for_approval_then_becomes_champion(three):
    spec, v1, v2, v3 = three
    registry.mark_challenger(spec, v3, actor="airflow:retrain", reason="beats v2")
    assert _champ(spec) == v2 and str(registry.challenger(spec).version) == v3
    assert registry.get_version(spec, v3).tags["status"] == "awaiting_approval"
    entry = registry.approve(spec, actor="cli:carol", reason="reviewed the slices")
    assert (entry["action"], entry["from_version"], entry["to_version"], entry["by"]) == (
        "approve",
        v2,
        v3,
        "cli:carol",
    )
    assert _champ(spec) == v3 and registry.challenger(spec) is None
    with pytest.raises(RegistryError, match="no version is waiting"):
        registry.approve(spec, actor="cli:carol", reason="again")


def test_a_newer_winner_supersedes_the_waiting_one(three):
    spec, v1, v2, v3 = three
    registry.mark_challenger(spec, v1, actor="x", reason="first winner")
    registry.mark_challenger(spec, v3, actor="x", reason="second winner")
    assert str(registry.challenger(spec).version) == v3
    assert registry.get_version(spec, v1).tags["status"] == "superseded"


@pytest.mark.parametrize(
    "bad",
    [
        "/tmp/model",
        "file:///tmp/model",
        "models:/late_delivery/1",
        "runs:/abc/model",
        "../1",
        "1/../../x",
        "0",
        "-1",
        "1.5",
        "",
        True,
    ],
)
def test_models_load_only_by_registered_version_number(three, bad):
    spec, *_ = three
    with pytest.raises(RegistryError):
        registry.load_model(spec, bad)


def test_load_model_by_number_works(three):
    spec, v1, *_ = three
    model = registry.load_model(spec, v1)
    assert hasattr(model, "get_booster")
    assert registry.load_model(spec, int(v1)) is not None


def test_every_audited_action_raises_an_alert(three):
    spec, v1, v2, v3 = three
    registry.reject(spec, v3, actor="x", reason="loses on the holdout")
    registry.rollback(spec, actor="cli:bob", reason="bad v2")
    kinds = [a["kind"] for a in alerts.read_alerts(spec.name)]
    assert kinds == ["promotion", "promotion", "rejection", "rollback"]
    rollback = alerts.read_alerts(spec.name, "rollback")[0]
    assert rollback["details"]["from_version"] == v2 and rollback["details"]["to_version"] == v1
    assert rollback["details"]["by"] == "cli:bob" and "bad v2" in rollback["message"]


def test_cli_rollback_and_approve_are_one_command_each(three, capsys):
    spec, v1, v2, v3 = three
    assert cli.main(["rollback", spec.name, "--reason", "v2 is late on storms", "--user", "dave"]) == 0
    assert _champ(spec) == v1
    assert "champion is now v" + v1 in capsys.readouterr().out
    assert registry.audit_log(spec)[-1]["by"] == "cli:dave"
    assert (
        cli.main(["rollback", spec.name, "--reason", "back to v2", "--to-version", v2, "--user", "dave"]) == 0
    )
    assert _champ(spec) == v2
    registry.mark_challenger(spec, v3, actor="x", reason="wins")
    assert cli.main(["approve", spec.name, "--reason", "looked fine", "--user", "erin"]) == 0
    assert _champ(spec) == v3
    # Errors are one clear line and exit code 2, not a traceback.
    assert cli.main(["approve", spec.name, "--reason", "nothing waits"]) == 2
    assert "no version is waiting" in capsys.readouterr().err


def test_approval_of_a_version_other_than_the_reviewed_one_is_refused(three):
    spec, v1, v2, v3 = three
    registry.mark_challenger(spec, v1, actor="x", reason="first winner")
    registry.mark_challenger(
        spec, v3, actor="x", reason="newer winner"
    )  # replaces v1 while someone reviews v1
    with pytest.raises(RegistryError, match=f"v{v3} is waiting for approval, not v{v1}"):
        registry.approve(spec, actor="cli:carol", reason="reviewed v1", version=v1)
    assert _champ(spec) == v2
    assert cli.main(["approve", spec.name, "--reason", "reviewed v1", "--version", v1]) == 2
    assert cli.main(["approve", spec.name, "--reason", "reviewed v3", "--version", v3]) == 0
    assert _champ(spec) == v3
