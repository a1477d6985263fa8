"""The MLflow model registry: champions, challengers, promotions, rollbacks and their audit trail.

Statuses are registry *aliases*, not the deprecated stages:

- ``champion``: the version every scoring run uses;
- ``previous_champion``: the one it replaced, so a rollback is one step;
- ``challenger``: a version that won its comparison but waits for approval
  (``promotion.mode: manual``).

Every change of alias is recorded twice: as tags on the model version
(``promoted_by``, ``promoted_at``, ``promotion_reason``) and as an append-only
``audit.NNNN.<id>`` tag on the registered model saying who, when, why, from which
version to which (:func:`audit_log` reads them back in order; the random ``<id>``
keeps two writers that pick the same number from overwriting each other). Rejected
challengers are tagged ``status=rejected`` with the reason. Each recorded action also
raises an alert (:mod:`mlops_lifecycle.alerts`): promotion, approval_needed, rejection
or rollback.

Models are loaded by registered name and version number only (:func:`load_model`):
nothing here accepts a path or URI, so a run's conf cannot point scoring at a file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from mlops_lifecycle import config
from mlops_lifecycle.spec import ModelSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous_champion"
CHALLENGER = "challenger"


class RegistryError(RuntimeError):
    """The registry refused an operation (unknown version, nothing to roll back to...)."""


def client() -> MlflowClient:
    """An MlflowClient on the configured tracking URI (telemetry off)."""
    config.quiet_third_party()
    import mlflow
    from mlflow import MlflowClient

    uri = config.mlflow_tracking_uri()
    if uri.startswith("sqlite:///"):
        from pathlib import Path

        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(spec: ModelSpec) -> str:
    """Id of the model's experiment (named after the model), created on first use.

    Callers pass the id explicitly (``mlflow.start_run(experiment_id=...)``); the fluent
    API's process-wide active experiment is never set here, so two models in one process
    (DAG.test, a worker reusing its interpreter) cannot log into each other's.
    """
    c = client()
    exp = c.get_experiment_by_name(spec.name)
    if exp is not None:
        return exp.experiment_id
    root = config.mlflow_artifact_root()
    location = f"{root.rstrip('/')}/{spec.name}" if root else None
    return c.create_experiment(spec.name, artifact_location=location, tags={"owner": spec.owner})


_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def _get_alias(spec: ModelSpec, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    c = client()
    try:
        return c.get_model_version_by_alias(spec.model_name, alias)
    except MlflowException as exc:
        # Only "no such model / no such alias" means "none". Anything else (a refused
        # connection, a server error) must fail the task: read as "no champion", an
        # outage would queue a first training instead of surfacing.
        if exc.error_code in _ABSENT:
            return None
        raise RegistryError(
            f"{spec.model_name}: cannot read alias {alias!r} from the MLflow tracking store "
            f"{config.mlflow_tracking_uri()}: {exc.message}"
        ) from exc


def champion(spec: ModelSpec) -> ModelVersion | None:
    """The current champion version, or None when the model has none yet."""
    return _get_alias(spec, CHAMPION)


def challenger(spec: ModelSpec) -> ModelVersion | None:
    """The version waiting for approval, if any."""
    return _get_alias(spec, CHALLENGER)


def get_version(spec: ModelSpec, version: int | str) -> ModelVersion:
    """One registered version.

    Raises:
        RegistryError: the version does not exist.
    """
    from mlflow.exceptions import MlflowException

    number = _version_number(spec, version)
    try:
        return client().get_model_version(spec.model_name, str(number))
    except MlflowException as exc:
        raise RegistryError(f"{spec.model_name}: no model version {version!r} in the registry") from exc


def _version_number(spec: ModelSpec, version: int | str) -> int:
    """A version number, or RegistryError: paths, URIs and aliases are not versions."""
    text = str(version).strip()
    if isinstance(version, bool) or not text.isdigit() or int(text) < 1:
        raise RegistryError(f"{spec.model_name}: {version!r} is not a model version number")
    return int(text)


def load_model(spec: ModelSpec, version: int | str) -> Any:
    """Load a registered version's XGBoost model (sklearn API) from the registry.

    Models are only ever loaded by registry name and version number, never from a path
    or URI (one taken from a run's conf, say): anything but a number is refused.

    Raises:
        RegistryError: ``version`` is not a version number, or no such version exists.
    """
    import mlflow.xgboost

    number = get_version(spec, _version_number(spec, version)).version
    return mlflow.xgboost.load_model(f"models:/{spec.model_name}/{int(number)}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def audit_log(spec: ModelSpec) -> list[dict[str, Any]]:
    """Every recorded promotion, approval, rejection and rollback of the model, oldest first.

    Each entry: ``seq``, ``at`` (UTC), ``action``, ``from_version``, ``to_version``,
    ``by`` (who: a DAG run and its user, or ``cli:<login>``) and ``reason``.
    """
    from mlflow.exceptions import MlflowException

    try:
        tags = client().get_registered_model(spec.model_name).tags
    except MlflowException:
        return []
    entries = [json.loads(tags[k]) for k in sorted(k for k in tags if k.startswith("audit."))]
    return sorted(entries, key=lambda e: (e.get("seq", 0), e.get("at", "")))


# Alert kind of each audited action.
_ALERT_KIND = {"promote": "promotion", "approve": "promotion", "rollback": "rollback",
               "await_approval": "approval_needed", "reject": "rejection"}
_MAX_REASON = 20_000  # registry tag values hold 100k characters; the entry must fit in one


def _record(spec: ModelSpec, entry: dict[str, Any]) -> dict[str, Any]:
    import uuid

    c = client()
    seq = len(audit_log(spec)) + 1
    entry = {"seq": seq, "at": _now(), **entry}
    entry["reason"] = str(entry.get("reason", ""))[:_MAX_REASON]
    for key in ("from_version", "to_version"):  # one type in the log, whatever the store returns
        if entry.get(key) is not None:
            entry[key] = str(entry[key])
    c.set_registered_model_tag(spec.model_name, f"audit.{seq:04d}.{uuid.uuid4().hex[:8]}", json.dumps(entry, sort_keys=True))
    log.info("registry audit %s: %s", spec.model_name, entry)
    _alert(spec, entry)
    return entry


def _alert(spec: ModelSpec, entry: dict[str, Any]) -> None:
    """Raise the alert of an audited action (after the registry change is recorded)."""
    from mlops_lifecycle import alerts

    action = entry["action"]
    frm, to = entry.get("from_version"), entry.get("to_version")
    titles = {
        "promote": f"{spec.model_name}: v{to} promoted to champion (was {f'v{frm}' if frm else 'none'})",
        "approve": f"{spec.model_name}: v{to} approved as champion (was {f'v{frm}' if frm else 'none'})",
        "rollback": f"{spec.model_name}: rolled back to v{to} (was v{frm})",
        "await_approval": f"{spec.model_name}: v{to} won its comparison and waits for approval",
        "reject": f"{spec.model_name}: challenger v{to} rejected",
    }
    message = f"{titles[action]}\nby {entry['by']} at {entry['at']}\nreason: {entry['reason']}"
    if action == "await_approval":
        message += f"\nApprove it with the {spec.name}__approve DAG or `mlops approve {spec.name} --reason ...`."
    alerts.emit(spec, _ALERT_KIND[action], titles[action], message, details=dict(entry),
                ident=f"audit{entry['seq']:04d}-{action}-v{to}")


def set_champion(spec: ModelSpec, version: int | str, *, actor: str, reason: str, action: str = "promote",
                 resume: bool = False) -> dict:
    """Make ``version`` the champion; the replaced champion becomes ``previous_champion``.

    ``resume``: finish a promotion a killed process began (the aliases may have moved
    already; the tags and the audit entry follow).

    Returns the audit entry. Raises RegistryError when the version does not exist.
    """
    c = client()
    target = get_version(spec, version)
    current = champion(spec)
    if current is not None and current.version == target.version and resume:
        current = _get_alias(spec, PREVIOUS)  # the alias moved before the kill: what it replaced
    elif current is not None and current.version == target.version:
        raise RegistryError(f"{spec.model_name} v{target.version} is already the champion")
    if current is not None:
        c.set_registered_model_alias(spec.model_name, PREVIOUS, current.version)
    c.set_registered_model_alias(spec.model_name, CHAMPION, target.version)
    waiting = challenger(spec)
    if waiting is not None and waiting.version == target.version:
        c.delete_registered_model_alias(spec.model_name, CHALLENGER)
    for key, value in {
        "status": "champion",
        "promoted_by": actor,
        "promoted_at": _now(),
        "promotion_reason": reason,
        "replaced_version": current.version if current else "none",
    }.items():
        c.set_model_version_tag(spec.model_name, target.version, key, value)
    if current is not None:
        c.set_model_version_tag(spec.model_name, current.version, "status", "retired")
    return _record(
        spec,
        {
            "action": action,
            "from_version": current.version if current else None,
            "to_version": target.version,
            "by": actor,
            "reason": reason,
        },
    )


def mark_challenger(spec: ModelSpec, version: int | str, *, actor: str, reason: str) -> dict:
    """Park a winning version under alias ``challenger`` until someone approves it.

    A version that was waiting before is superseded (tagged ``status=superseded``).
    """
    c = client()
    v = get_version(spec, version)
    earlier = challenger(spec)
    if earlier is not None and earlier.version != v.version:
        c.set_model_version_tag(spec.model_name, earlier.version, "status", "superseded")
    c.set_registered_model_alias(spec.model_name, CHALLENGER, v.version)
    c.set_model_version_tag(spec.model_name, v.version, "status", "awaiting_approval")
    c.set_model_version_tag(spec.model_name, v.version, "promotion_reason", reason)
    return _record(spec, {"action": "await_approval", "from_version": None, "to_version": v.version, "by": actor, "reason": reason})


def reject(spec: ModelSpec, version: int | str, *, actor: str, reason: str) -> dict:
    """Tag a version that lost its comparison (or failed a model test) with why."""
    c = client()
    v = get_version(spec, version)
    c.set_model_version_tag(spec.model_name, v.version, "status", "rejected")
    c.set_model_version_tag(spec.model_name, v.version, "rejection_reason", reason)
    c.set_model_version_tag(spec.model_name, v.version, "rejected_by", actor)
    return _record(spec, {"action": "reject", "from_version": None, "to_version": v.version, "by": actor, "reason": reason})


def approve(spec: ModelSpec, *, actor: str, reason: str, version: int | str | None = None) -> dict:
    """Promote the waiting challenger to champion (manual promotion mode).

    ``version``, when given, is the version the approver reviewed: the approval is
    refused if another version waits (a newer winner replaced it in the meantime).

    Raises:
        RegistryError: no version waits for approval, or not the one named.
    """
    if not str(reason or "").strip():
        raise RegistryError(f"{spec.model_name}: an approval needs a reason (it is recorded)")
    waiting = challenger(spec)
    if waiting is None:
        raise RegistryError(f"{spec.model_name}: no version is waiting for approval (alias {CHALLENGER!r})")
    if version is not None and str(waiting.version) != str(_version_number(spec, version)):
        raise RegistryError(
            f"{spec.model_name}: v{waiting.version} is waiting for approval, not v{version}; review it first"
        )
    return set_champion(spec, waiting.version, actor=actor, reason=reason, action="approve")


def rollback(spec: ModelSpec, *, actor: str, reason: str, to_version: int | str | None = None) -> dict:
    """Set the champion back to ``previous_champion`` (or to ``to_version``) in one step.

    The version rolled back from is tagged ``status=rolled_back``, and an unnamed
    rollback never restores such a version: rolling back twice does not bring back the
    model the first rollback removed (name it with ``to_version`` to do that on purpose).

    Raises:
        RegistryError: nothing to roll back to, the version does not exist, or it is
            already the champion.
    """
    if not str(reason or "").strip():
        raise RegistryError(f"{spec.model_name}: a rollback needs a reason (it is recorded)")
    if to_version is None:
        prev = _get_alias(spec, PREVIOUS)
        if prev is None:
            raise RegistryError(f"{spec.model_name}: no previous champion to roll back to; name a version")
        if prev.tags.get("status") == "rolled_back":
            raise RegistryError(
                f"{spec.model_name}: the previous champion v{prev.version} was itself rolled back from; "
                "name the version to restore (--to-version / to_version)"
            )
        to_version = prev.version
    target = get_version(spec, to_version)
    if target.tags.get("status") == "rejected":
        log.warning("rolling %s back to v%s, which was rejected when trained", spec.model_name, target.version)
    entry = set_champion(spec, target.version, actor=actor, reason=reason, action="rollback")
    if entry.get("from_version"):
        client().set_model_version_tag(spec.model_name, entry["from_version"], "status", "rolled_back")
    return entry


def versions(spec: ModelSpec) -> list[ModelVersion]:
    """All registered versions of the model, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        found = client().search_model_versions(f"name = '{spec.model_name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))
