"""The DAG factory: every model spec becomes the same four DAGs.

- ``<model>__daily``    scheduled: ingest -> validate -> features -> score with the champion
                        (mapped over chunks of the day, committed together)
                        -> drift check -> (retrain if the policy says so). With no champion
                        yet it triggers the first training instead of scoring. With a labels
                        section, collect_labels joins late labels with their day's predictions
                        and their concept drift feeds the same decision.
- ``<model>__retrain``  triggered by the daily DAG or by hand (a form): assemble the window
                        -> validate it -> train, test, log, register -> compare and promote.
- ``<model>__rollback`` by hand: set the champion back to the previous (or a named) version.
- ``<model>__approve``  by hand: promote the challenger waiting for approval.

This module wires; every task body is one call into a stage module, imported inside
the task so that parsing the DAG folder imports nothing heavier than ``airflow.sdk``,
``pydantic`` and ``yaml``. Only small JSON summaries travel through XCom.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import warnings
from pathlib import Path, PurePath
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, PokeReturnValue, dag, get_parsing_context, task

from mlops_lifecycle import spec as spec_mod
from mlops_lifecycle.spec import ModelSpec, get_spec

log = logging.getLogger(__name__)

DAG_KINDS = ("daily", "retrain", "rollback", "approve")


def dag_id(model: str, kind: str) -> str:
    """The one place DAG ids are made: ``<model>__<kind>``."""
    if kind not in DAG_KINDS:
        raise ValueError(f"unknown DAG kind {kind!r}")
    return f"{model}__{kind}"


def _ds(context: dict[str, Any]) -> str:
    """The partition date of a run: the day its data interval covers.

    A scheduled daily run's logical date is the start of the day it processes (see
    :func:`_daily_schedule`); a run triggered with a date uses that date; a run
    triggered without one covers the last complete interval before it (yesterday for
    a daily model), or, for a DAG with no schedule, the day it was triggered.
    """
    when = context.get("logical_date")
    if when is None:
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        when = start if start is not None and end is not None and start < end else context["dag_run"].run_after
    return when.date().isoformat()


def _daily_schedule(spec: ModelSpec) -> Any:
    """The daily DAG's schedule: a cron or preset schedule runs over data intervals.

    Airflow 3's default for a cron string is a trigger timetable, whose logical date is
    the moment the run starts: the ``@daily`` run at midnight would ask for the day that
    has just begun, whose file cannot exist yet. With a data-interval timetable the run
    at midnight after day D has logical date D and processes D, as a landing zone that
    delivers complete days expects (``source.wait_timeout_minutes`` covers late files).
    """
    if spec.schedule is None or spec.schedule in {"@once", "@continuous"}:
        return spec.schedule
    from airflow.sdk import CronDataIntervalTimetable

    return CronDataIntervalTimetable(spec.schedule, timezone="UTC")


def _actor(context: dict[str, Any]) -> str:
    """Who or what is acting: the DAG run, the user Airflow says triggered it, and the
    requester the run's conf names.

    The user comes from Airflow (the authenticated trigger) and is always recorded when
    there is one; ``requested_by`` is whatever the conf says (the daily DAG names its own
    run there) and is recorded beside it, never instead of it, so a conf cannot hide who
    pressed the button.
    """
    run = context["dag_run"]
    user = getattr(run, "triggering_user_name", None)
    conf = run.conf or {}
    requested = conf.get("requested_by")
    parts = [f"airflow:{run.dag_id}/{run.run_id}"]
    if user:
        parts.append(f"user={user}")
    if requested:
        parts.append(f"requested_by={requested}")
    return " ".join(parts)


def _checked_conf(name: str, kind: str, context: dict[str, Any]) -> Any:
    """The run's conf, typed by :func:`run_conf.check_conf`; a refused key fails the task
    (the first of each manual DAG) at once, naming the key, with no retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlops_lifecycle import run_conf

    try:
        return run_conf.check_conf(get_spec(name), kind, context["dag_run"].conf, dict(context["params"]))
    except run_conf.ConfError as exc:
        raise AirflowFailException(str(exc)) from None


def _default_args(spec: ModelSpec) -> dict[str, Any]:
    from mlops_lifecycle import alerts  # light: airflow.sdk and the lake layout only

    return {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": dt.timedelta(minutes=spec.retry_delay_minutes),
        # A failed task is never silent: a failure (or quarantine) alert in the task log,
        # the lake's events/alerts/ and the spec's notification channels.
        "on_failure_callback": alerts.failure_callbacks(spec.name),
    }


def _doc(spec: ModelSpec, what: str) -> str:
    features = ", ".join(f"`{f.name}` ({f.type})" for f in spec.features)
    return (
        f"### {spec.name}: {what}\n\n{spec.description}\n\n"
        f"- **Owner:** {spec.owner}\n- **Target:** `{spec.target.column}` ({spec.target.task})\n"
        f"- **Features:** {features}\n- **Promotion:** {spec.promotion.metric}, margin {spec.promotion.margin}, "
        f"floor {spec.promotion.floor}, mode {spec.promotion.mode}\n"
        f"- **Retraining:** drift share >= {spec.drift.drift_share} on {spec.retraining.drift_days_required} "
        f"consecutive day(s), cooldown {spec.retraining.cooldown_days} days\n"
    )


def _common(spec: ModelSpec, kind: str, what: str) -> dict[str, Any]:
    return {
        "dag_id": dag_id(spec.name, kind),
        "start_date": dt.datetime.combine(spec.start_date, dt.time(), tzinfo=dt.UTC),
        "catchup": False,
        "default_args": _default_args(spec),
        "tags": sorted({"mlops", kind, spec.name, *spec.tags}),
        "doc_md": _doc(spec, what),
        "render_template_as_native_obj": True,
    }


# ---- the daily DAG ---------------------------------------------------------------


class RetrainingRequest(TriggerDagRunOperator):
    """The daily DAG's request for a retraining run: one run per model and day (its run id).

    A second request for the same day is skipped while that day's run succeeded, or is
    still queued or running; a run that failed (its worker was killed after registering a
    version, say) is reset and runs again instead, so the rerun of the day finishes the
    promotion decision rather than logging "Dag Run already exists, skipping". Every task
    of the retraining DAG is idempotent: a decided version is never trained or decided twice.
    """

    def execute(self, context: Any) -> Any:
        state = None
        try:
            state = context["ti"].get_dagrun_state(dag_id=self.trigger_dag_id, run_id=str(self.trigger_run_id))
        except Exception:  # noqa: BLE001 - no such run yet (or the API cannot say): a plain trigger
            state = None
        unfinished_business = state is not None and str(state).rpartition(".")[2].lower() not in {
            "success", "running", "queued"}
        if unfinished_business:
            log.warning("retraining run %s of %s ended %s; resetting it so the request is carried out",
                        self.trigger_run_id, self.trigger_dag_id, state)
        self.reset_dag_run = unfinished_business
        self.skip_when_already_exists = not unfinished_business
        return super().execute(context)


# The day a daily run processes, as its ingest task resolved it (``_ds``): the triggers
# name the retraining run after it and give it that logical date, also for a run that
# was triggered without a logical date.
_RUN_DAY = "{{ ti.xcom_pull(task_ids='ingest')['ds'] }}"


def build_daily(spec: ModelSpec) -> DAG:
    """Scheduled DAG: ingest, validate, featurise, score, check drift, maybe retrain."""
    name = spec.name

    @dag(schedule=_daily_schedule(spec), max_active_runs=1, **_common(spec, "daily", "daily scoring and monitoring"))
    def daily():
        # Wait for the day's file before ingesting it. Reschedule mode frees the worker slot
        # between looks. The spec's timeout is enforced inside the poke so the failure says
        # what it waited for; Airflow's own timeout sits two looks later as a backstop.
        wait_s = spec.source.wait_timeout_minutes * 60
        poke_s = max(1.0, min(300.0, wait_s / 10))

        # A timeout is final (AirflowSensorTimeout is never retried); a poke that errors (a
        # source briefly unreachable) gets the spec's retries.
        @task.sensor(poke_interval=poke_s, timeout=wait_s + 2 * poke_s, mode="reschedule")
        def wait_for_batch(**context) -> PokeReturnValue:
            from airflow.sdk.exceptions import AirflowSensorTimeout

            from mlops_lifecycle import ingestion

            first = context["ti"].get_first_reschedule_date(context)
            waited = (dt.datetime.now(dt.UTC) - first).total_seconds() if first else 0.0
            try:
                found = ingestion.wait_for_source(get_spec(name), _ds(context), waited_seconds=waited,
                                                  run_id=context["run_id"])
            except ingestion.SourceMissing as exc:
                raise AirflowSensorTimeout(str(exc)) from exc
            return PokeReturnValue(is_done=found is not None, xcom_value=found)

        @task
        def ingest(arrived: dict, **context) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from mlops_lifecycle import ingestion

            try:
                return ingestion.ingest(get_spec(name), _ds(context), run_id=context["run_id"])
            except ingestion.SourceUnreadable as exc:
                # Quarantined with its error; retrying the same bytes cannot help.
                raise AirflowFailException(str(exc)) from exc

        @task(retries=0)
        def validate(ingested: dict, **context) -> dict:
            """Great Expectations gate: a bad batch is quarantined and the run stops here."""
            from airflow.sdk.exceptions import AirflowFailException

            from mlops_lifecycle import validation

            try:
                return validation.validate_partition(get_spec(name), _ds(context))
            except validation.ValidationFailed as exc:
                # Not retried: the same bytes fail the same checks. Fix the source and rerun the day.
                raise AirflowFailException(str(exc)) from exc

        @task
        def compute_features(validated: dict, **context) -> dict:
            from mlops_lifecycle import scoring

            return scoring.materialize_features(get_spec(name), _ds(context))

        @task
        def resolve_champion(feats: dict) -> dict | None:
            from mlops_lifecycle import scoring

            return scoring.champion_info(get_spec(name))

        @task.branch
        def route(champion: dict | None) -> str:
            return "plan_scoring" if champion else "trigger_first_training"

        # Scoring fans out over the day's features (files x row-group ranges) with dynamic
        # task mapping, so Celery or Kubernetes workers share a large day; a small day is one
        # chunk. Each chunk writes its own part in the run's staging folder (a retry rewrites
        # it); the commit publishes all parts together, so drift only ever sees a whole day.
        @task
        def plan_scoring(champion: dict, **context) -> list[dict]:
            from mlops_lifecycle import scoring

            return scoring.plan_scoring(get_spec(name), _ds(context))

        @task(map_index_template="{{ chunk_label }}")
        def score_chunk(chunk: dict, champion: dict, **context) -> dict:
            from airflow.sdk import get_current_context

            from mlops_lifecycle import scoring

            get_current_context()["chunk_label"] = chunk["label"]  # names the mapped task instance in the UI
            return scoring.score_chunk(
                get_spec(name), _ds(context), chunk, version=champion["version"], airflow_run_id=context["run_id"]
            )

        @task
        def commit_predictions(parts: list[dict], champion: dict, **context) -> dict:
            from mlops_lifecycle import scoring

            return scoring.commit_predictions(
                get_spec(name), _ds(context), list(parts), version=champion["version"], airflow_run_id=context["run_id"]
            )

        @task
        def drift_check(scored: dict, **context) -> dict:
            from mlops_lifecycle import monitoring

            return monitoring.check_drift(get_spec(name), _ds(context), version=scored["model_version"])

        @task
        def collect_labels(**context) -> dict:
            """Late labels: join the labels arriving today with the predictions of their day."""
            from airflow.sdk.exceptions import AirflowSkipException

            from mlops_lifecycle import monitoring

            model = get_spec(name)
            if model.labels is None:
                raise AirflowSkipException("the spec has no labels section: labels come with the batch")
            return monitoring.collect_labels(model, _ds(context))

        # Runs when the drift check ran, whether or not collect_labels was skipped.
        @task.short_circuit(trigger_rule="none_failed_min_one_success")
        def decide_retraining(check: dict | None, labels: dict | None, **context) -> dict | bool:
            """Retrain only on the spec's explicit conditions; skip the trigger otherwise."""
            from mlops_lifecycle import monitoring

            if check is None:  # no champion scored today (the first training was triggered instead)
                return False
            decision = monitoring.decide_retraining(get_spec(name), _ds(context), check, run_id=context["run_id"],
                                                    labels=labels)
            logging.getLogger(__name__).info("retraining decision: %s", decision)
            return decision if decision["retrain"] else False

        trigger_retraining = RetrainingRequest(
            task_id="trigger_retraining",
            trigger_dag_id=dag_id(name, "retrain"),
            # One request per model and day: a second trigger for the same day is skipped.
            trigger_run_id="drift__" + _RUN_DAY,
            logical_date=_RUN_DAY + "T00:00:00+00:00",
            conf="{{ ti.xcom_pull(task_ids='decide_retraining') }}",
            skip_when_already_exists=True,
            # Never wait here: a waiting trigger blocks a worker slot (and hangs `dags test`).
            wait_for_completion=False,
        )
        trigger_first_training = RetrainingRequest(
            task_id="trigger_first_training",
            trigger_dag_id=dag_id(name, "retrain"),
            trigger_run_id="first_training__" + _RUN_DAY,
            logical_date=_RUN_DAY + "T00:00:00+00:00",
            conf={"reason": "no_champion", "detail": "no champion yet: training the first model",
                  "requested_by": "airflow:" + dag_id(name, "daily") + "/{{ run_id }}"},
            skip_when_already_exists=True,
            wait_for_completion=False,
        )

        champion = resolve_champion(compute_features(validate(ingest(wait_for_batch()))))
        plan = plan_scoring(champion)
        parts = score_chunk.partial(champion=champion).expand(chunk=plan)
        scored = commit_predictions(parts, champion)
        route(champion) >> [plan, trigger_first_training]
        decide_retraining(drift_check(scored), collect_labels()) >> trigger_retraining

    return daily()


# ---- the retraining DAG --------------------------------------------------------------


def build_retrain(spec: ModelSpec) -> DAG:
    """Triggered DAG: train a challenger and promote it only if it wins."""
    name = spec.name
    params = {
        "end_date": Param(
            None, type=["null", "string"], format="date", title="Last day of the training window",
            description="YYYY-MM-DD. Empty: the run's logical date.",
        ),
        "window_days": Param(
            spec.training.window_days, type="integer", minimum=spec.training.validation_days + spec.training.holdout_days + 1,
            maximum=3650, title="Training window (days)",
            description="How many days of validated data, ending on the last day, to train on.",
        ),
        "promote": Param(
            "spec", type="string", enum=["spec", "auto", "manual"], title="Promotion",
            description=f"spec: follow the spec ({spec.promotion.mode}); auto: a winning challenger becomes champion "
            "at once (not when the spec requires approval: then it still waits); manual: a winner waits as "
            "'challenger' until approved with the approve DAG.",
        ),
        "force": Param(
            False, type="boolean", title="Force retrain",
            description="Train even when the window holds exactly the data the champion was trained on.",
        ),
        "reason": Param(
            "manual", type="string", minLength=1, title="Reason",
            description="Why this run retrains; recorded on the new model version and in the audit log.",
        ),
    }

    @dag(schedule=None, max_active_runs=1, params=params, is_paused_upon_creation=False,
         **_common(spec, "retrain", "retraining"))
    def retrain():
        @task(retries=0)
        def assemble_window(**context) -> dict:
            from mlops_lifecycle import training

            _checked_conf(name, "retrain", context)  # before any work: every key typed, evidence only from the lake
            p = context["params"]
            return training.assemble_window(get_spec(name), p.get("end_date") or _ds(context), p["window_days"])

        @task(retries=0)
        def validate_window(window: dict) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from mlops_lifecycle import validation

            try:
                return validation.validate_training_set(get_spec(name), window["path"])
            except validation.ValidationFailed as exc:
                raise AirflowFailException(str(exc)) from exc

        @task.short_circuit
        def has_new_data(window: dict, checked: dict, **context) -> bool:
            """Skip training when a version was already trained on this exact data, spec and
            code (a rerun, a retry, a second request) and decided: unless forced, nothing is
            registered twice. A version registered but never decided (its run was killed in
            between) is not skipped: train resumes with it and compare_and_promote decides."""
            from mlops_lifecycle import training

            if context["params"]["force"]:
                return True
            done = training.already_trained(get_spec(name), window)
            if done is not None and training.is_undecided(done):
                logging.getLogger(__name__).info(
                    "v%s was registered from this exact data, spec and code but never decided; resuming to decide it",
                    done.version)
                return True
            if done is not None:
                logging.getLogger(__name__).info(
                    "v%s (status %s) was trained on this exact data, spec and code; skipping (force to train again)",
                    done.version, done.tags.get("status"))
            return done is None

        @task
        def train(window: dict, **context) -> dict:
            from mlops_lifecycle import run_conf, training

            conf = context["dag_run"].conf or {}
            # The evidence comes from the daily DAG's recorded request that the conf names, never from the conf.
            evidence = run_conf.request_evidence(get_spec(name), conf)
            trigger = {
                "reason": conf.get("reason") or context["params"]["reason"],
                "detail": conf.get("detail"),
                "by": _actor(context),
                "evidence_ds": conf.get("ds"),
                "evidence": {**({"ds": conf["ds"]} if evidence else {}), **evidence},
            }
            return training.train_and_register(get_spec(name), window, trigger=trigger)

        @task
        def compare_and_promote(trained: dict, **context) -> dict:
            from mlops_lifecycle import training

            mode = context["params"]["promote"]
            auto = None if mode == "spec" else mode == "auto"
            return training.compare_and_promote(get_spec(name), trained, actor=_actor(context), auto_promote=auto)

        window = assemble_window()
        checked = validate_window(window)
        gate = has_new_data(window, checked)
        trained = train(window)
        gate >> trained
        compare_and_promote(trained)

    return retrain()


# ---- rollback and approval -------------------------------------------------------------


def build_rollback(spec: ModelSpec) -> DAG:
    """Manual DAG: one step back to the previous champion (or a named version)."""
    name = spec.name
    params = {
        "to_version": Param(
            None, type=["null", "integer"], minimum=1, title="Version to restore",
            description="Empty: the previous champion. Otherwise a registered version number.",
        ),
        "reason": Param("", type="string", minLength=3, title="Reason", description="Why you are rolling back (recorded)."),
    }

    @dag(schedule=None, params=params, is_paused_upon_creation=False, **_common(spec, "rollback", "rollback"))
    def rollback():
        @task(retries=0)
        def set_champion_back(**context) -> dict:
            from mlops_lifecycle import registry

            _checked_conf(name, "rollback", context)
            p = context["params"]
            return registry.rollback(get_spec(name), actor=_actor(context), reason=p["reason"], to_version=p["to_version"])

        set_champion_back()

    return rollback()


def build_approve(spec: ModelSpec) -> DAG:
    """Manual DAG: approve the challenger waiting under alias ``challenger``."""
    name = spec.name
    params = {
        "reason": Param("", type="string", minLength=3, title="Reason", description="Why you approve it (recorded)."),
        "version": Param(
            None, type=["null", "integer"], minimum=1, title="Version you reviewed",
            description="Optional: the approval is refused if another version is waiting (see the MLflow "
            "registry, alias 'challenger').",
        ),
    }

    @dag(schedule=None, params=params, is_paused_upon_creation=False,
         **_common(spec, "approve", "approval of a waiting challenger"))
    def approve():
        @task(retries=0)
        def promote_challenger(**context) -> dict:
            from mlops_lifecycle import registry

            _checked_conf(name, "approve", context)
            p = context["params"]
            return registry.approve(get_spec(name), actor=_actor(context), reason=p["reason"], version=p.get("version"))

        promote_challenger()

    return approve()


BUILDERS = {"daily": build_daily, "retrain": build_retrain, "rollback": build_rollback, "approve": build_approve}


def invalid_spec_dag_id(file_name: str) -> str:
    """The id of the DAG standing in for a broken spec file: ``<stem>__invalid_spec``.

    A file whose stem is not a model name as it is (``Bad Name.yaml``), or that is not a
    ``.yaml``, gets its stem sanitised and a short hash of the whole file name. So two
    files never share an id (``a.yaml`` and ``a.yml``, ``Bad Name`` and ``bad_name``), and a
    hashed id, holding a ``-``, never equals a plain one (no model name holds one).
    """
    path = PurePath(file_name)
    if path.suffix == ".yaml" and spec_mod.IDENTIFIER.match(path.stem):
        return f"{path.stem}__invalid_spec"
    safe = re.sub(r"[^a-z0-9_]", "_", path.stem.lower())[:50] or "unnamed"
    return f"{safe}-{hashlib.sha256(path.name.encode()).hexdigest()[:8]}__invalid_spec"


def _invalid_spec_dag(file_name: str, error: str) -> DAG:
    """A stand-in for a broken spec: it shows the error in the UI and fails if run."""
    with DAG(
        dag_id=invalid_spec_dag_id(file_name),
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        tags=["mlops", "invalid-spec"],
        default_args={"owner": "mlops", "retries": 0},
        doc_md=f"### Invalid model spec\n\n```\n{error}\n```\n\nFix the file; `make check` lists every problem.",
    ) as invalid:

        @task
        def explain() -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(error)

        explain()
    return invalid


def _builds(path: Path, wanted: str | None) -> bool:
    """Whether the DAGs of this spec file are wanted: all of them, or the one a task process runs."""
    return not wanted or wanted.startswith(f"{path.stem}__") or wanted == invalid_spec_dag_id(path.name)


def _forget(model: str) -> None:
    """Keep a model whose DAGs failed to build out of the DagBag.

    Airflow registers every DAG whose ``with`` block closed, even one built before (or
    broken by) the failure, and bags it beside the module's globals.
    """
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    ids = {dag_id(model, kind) for kind in DAG_KINDS}
    for entry in [e for e in DagContext.autoregistered_dags if e[0].dag_id in ids]:
        DagContext.autoregistered_dags.discard(entry)


def _build_model(spec: ModelSpec, wanted: str | None) -> dict[str, DAG]:
    """A model's DAGs (or the wanted one), each checked as the DagBag will check it."""
    out: dict[str, DAG] = {}
    for kind, builder in BUILDERS.items():
        if wanted and wanted != dag_id(spec.name, kind):
            continue
        built = builder(spec)
        built.validate()  # e.g. the timetable: else an import error of the whole DAG file
        out[built.dag_id] = built
    return out


def build_all(folder: str | None = None) -> dict[str, DAG]:
    """DAGs for every spec in the specs folder, keyed by dag id, in a stable order.

    The specs are judged by :func:`spec.audit_folder`, the rule set ``mlops check`` applies
    too: a spec it refuses (alone, or with another file claiming its model or its MLflow
    registered model, in which case both are refused), or one whose DAGs fail to build for
    any reason, yields one ``<name>__invalid_spec`` DAG carrying its error (and a warning
    in the DAG processor's log) and leaves every other model's DAGs intact. When a task
    process parses the file, only that task's DAG is built (the folder is still read
    whole, so a clash is seen there as well).

    ``mlops check`` also imports what a spec names (feature functions, Python sources,
    XGBoost parameters, Evidently's stat tests): too heavy for parse time, those fail
    their task at run time with the same message instead.
    """
    from airflow.sdk.exceptions import AirflowTimetableInvalid

    wanted = get_parsing_context().dag_id
    out: dict[str, DAG] = {}
    valid, broken = spec_mod.audit_folder(folder)
    for path in spec_mod.spec_paths(folder):
        if not _builds(path, wanted):
            continue
        model = valid.get(path)
        try:
            if model is None:
                raise spec_mod.SpecError(broken.get(path) or f"model spec {path} could not be loaded")
            out.update(_build_model(model, wanted))
        except Exception as exc:  # noqa: BLE001 - one broken model must not hide the others
            if model is not None:
                _forget(model.name)
            if isinstance(exc, spec_mod.SpecError):
                error = str(exc)
            else:
                field, what = (("schedule", "Airflow refused it") if isinstance(exc, AirflowTimetableInvalid)
                               else ("(its DAGs)", "building them failed"))
                error = spec_mod.format_problems(path, [(field, f"{what}: {type(exc).__name__}: {exc}")])
            warnings.warn(error, stacklevel=2)
            bad = _invalid_spec_dag(path.name, error)
            out[bad.dag_id] = bad
    return out
