"""The confs of the manual DAGs (retrain, rollback, approve), checked before any work.

Airflow validates the keys a DAG declares as ``Params`` (the trigger form, a REST trigger,
each task's start), but lets any other key through. The first task of each manual DAG
calls :func:`check_conf`, which refuses every key the DAG does not know and every value
of the wrong type, naming the key, before anything is read, fitted or changed.

**Evidence.** A retraining run records why it ran (drift share, drifted columns, concept
metrics, the report) on the model version it registers. That evidence is never taken from
the conf, which anyone who may trigger the DAG writes: it is read from the retraining
request the daily DAG wrote to the lake (``events/retrain_requests/<ds>.json``, see
:func:`mlops_lifecycle.monitoring.decide_retraining`), named by the conf's ``ds``. The
daily DAG's trigger passes the request's keys along too; they are accepted only when they
equal the recorded request, so a conf can reference evidence but never make it up.

Only pydantic and the lake layout are imported: the DAG factory imports this module at
parse time.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from mlops_lifecycle import lake
from mlops_lifecycle.spec import ModelSpec

# Keys of the daily DAG's retraining request (monitoring.decide_retraining) that are evidence:
# recorded on the new version, so only ever read from the lake's record of the request.
EVIDENCE_KEYS = ("drift_share", "drifted_columns", "prediction_drift", "concept", "report_html", "champion_version")


class ConfError(ValueError):
    """A run's conf holds a key the DAG does not take, or a value of the wrong type."""


class _Conf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrainConf(_Conf):
    """What a retraining run may be given: the form's fields and the daily DAG's request."""

    # The form (Params of the retrain DAG).
    end_date: dt.date | None = None
    window_days: StrictInt | None = Field(None, ge=3, le=3650)
    promote: Literal["spec", "auto", "manual"] = "spec"
    force: StrictBool = False
    reason: str | None = Field(None, min_length=1, max_length=200)
    # The daily DAG's request: its day (the request's id), who asked and why, in words.
    ds: dt.date | None = None
    detail: str | None = Field(None, max_length=4900)
    requested_by: str | None = Field(None, max_length=500)
    model: str | None = None
    retrain: StrictBool | None = None
    already_requested: StrictBool | None = None
    episode_start: dt.date | None = None  # the first troubled day of the episode the request belongs to
    # Evidence: accepted only as copies of the recorded request (see the module docstring).
    drift_share: Any = None
    drifted_columns: Any = None
    prediction_drift: Any = None
    concept: Any = None
    report_html: Any = None
    champion_version: Any = None


class RollbackConf(_Conf):
    """The rollback DAG's form."""

    to_version: StrictInt | None = Field(None, ge=1)
    reason: str = Field(min_length=3, max_length=20_000)


class ApproveConf(_Conf):
    """The approve DAG's form."""

    reason: str = Field(min_length=3, max_length=20_000)
    version: StrictInt | None = Field(None, ge=1)


CONF_MODELS: dict[str, type[_Conf]] = {"retrain": RetrainConf, "rollback": RollbackConf, "approve": ApproveConf}


def _problems(kind: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(conf)"
        what = "is not a key this DAG takes" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"conf key {key!r}: {what} (got {json.dumps(e.get('input'), default=str)[:120]})")
    return f"the {kind} DAG's conf was refused before any work:\n  " + "\n  ".join(lines)


def check_conf(spec: ModelSpec, kind: str, conf: dict[str, Any] | None, params: dict[str, Any]) -> _Conf:
    """Validate a manual DAG run's conf, with the DAG's params filling in what it leaves out.

    Args:
        kind: ``retrain``, ``rollback`` or ``approve``.
        conf: the run's conf as triggered (keys the DAG does not know are refused).
        params: the run's resolved params (Airflow's defaults and the conf merged).

    Returns:
        The typed conf. For a retraining run that names the daily DAG's request (``ds``),
        the request is checked too (:func:`request_evidence`).

    Raises:
        ConfError: naming each refused key and why.
    """
    conf = dict(conf or {})
    merged = {**{k: v for k, v in params.items() if k in CONF_MODELS[kind].model_fields}, **conf}
    try:
        typed = CONF_MODELS[kind].model_validate(merged)
    except ValidationError as exc:
        raise ConfError(_problems(kind, exc)) from None
    if kind == "retrain":
        window = typed.window_days
        least = spec.training.validation_days + spec.training.holdout_days + 1
        if window is not None and window < least:
            raise ConfError(f"conf key 'window_days': {window} days cannot hold validation, holdout and training "
                            f"days (at least {least})")
        request_evidence(spec, conf)
    return typed


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def request_evidence(spec: ModelSpec, conf: dict[str, Any] | None) -> dict[str, Any]:
    """The evidence of the daily DAG's retraining request a run's conf names, read from the lake.

    Returns:
        ``{}`` for a run that names no request (no ``ds``); else the recorded request's
        evidence keys that have a value.

    Raises:
        ConfError: the conf carries evidence without naming a request, names a request the
            daily DAG never recorded (or another model's), or carries evidence that differs
            from the recorded request.
    """
    conf = dict(conf or {})
    given = [k for k in EVIDENCE_KEYS if conf.get(k) is not None]
    if conf.get("ds") is None:
        if given:
            raise ConfError(
                f"conf key {given[0]!r}: drift evidence is accepted only from the daily DAG's retraining request, "
                "named by the conf's 'ds'; a run triggered by hand records its reason, not evidence"
                + (f" (also refused: {given[1:]})" if given[1:] else "")
            )
        return {}
    try:
        day = lake.as_date(conf["ds"])
    except lake.LakeError as exc:
        raise ConfError(f"conf key 'ds': {exc}") from None
    path = lake.event_file(spec.name, "retrain_requests", day.isoformat())
    try:
        request = lake.read_json(path)
    except FileNotFoundError:
        raise ConfError(f"conf key 'ds': the daily DAG recorded no retraining request of {spec.name} for {day} "
                        f"({path}); evidence is read from that record only") from None
    except (OSError, ValueError) as exc:
        raise ConfError(f"conf key 'ds': the retraining request {path} cannot be read: {exc}") from None
    if not isinstance(request, dict) or request.get("model", spec.name) != spec.name or not request.get("retrain"):
        raise ConfError(f"conf key 'ds': {path} is not a retraining request of {spec.name}")
    for key in given:
        if not _same(conf[key], request.get(key)):
            raise ConfError(f"conf key {key!r} differs from the retraining request the daily DAG recorded for {day} "
                            f"({path}); evidence is read from that record only")
    return {k: request[k] for k in EVIDENCE_KEYS if request.get(k) is not None}
