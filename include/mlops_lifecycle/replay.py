"""Replay days of a model through the real DAGs, in-process (``DAG.test``), for the demo and tests.

No scheduler runs here, so a ``TriggerDagRunOperator`` only *queues* a retraining run.
After each daily run the replay executes every queued run of the retraining DAG with
its own logical date and conf (``DAG.test`` replaces the queued run by the one it
executes), exactly as a scheduler would have picked it up.

What the replay leaves in Airflow's metadata DB and log folder is what a backfill leaves, so
the UI and REST API tell the true story afterwards (``DAG.test`` alone would record every
run as ``manual__<now>`` by user ``dag_test``, starting at its logical date, and write no
task log where the UI looks):

- each daily run is a **backfill** run (``backfill__<run after>``, triggered by
  ``backfill``, requested by :data:`REPLAY_USER` or the ``run-days`` command) with a note
  saying it was replayed in-process, and a retraining run keeps the id, type and trigger
  the daily DAG's ``TriggerDagRunOperator`` gave it (see :func:`recorded_as`);
- a run starts when it starts, so its duration is the real one;
- each task instance's own log lines are written, as JSON lines, to the file Airflow's
  log reader opens for that task instance and try number (see :class:`TaskLogWriter`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

from mlops_lifecycle import config, dag_factory, lake
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)

# Who asked for the replayed runs, as the UI's "triggered by user" shows it.
REPLAY_USER = "mlops demo"
REPLAY_NOTE = ("Replayed in-process by `{user}` (Airflow's DAG.test, no scheduler): "
               "a backfill of {ds} through the real DAG.")


@dataclass
class DayResult:
    """What happened on one replayed day."""

    ds: str
    daily_state: str
    tasks: dict[str, str]
    retrain_runs: list[dict[str, Any]] = field(default_factory=list)


def dags_folder() -> Path:
    """The DAG folder Airflow is configured with (where ``DAG.test`` syncs DAGs from)."""
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder"))


def load_dags(spec: ModelSpec) -> dict[str, Any]:
    """The model's DAGs, parsed from the configured DAG folder like the DAG processor does."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder()))
    wanted = {dag_factory.dag_id(spec.name, k) for k in dag_factory.DAG_KINDS}
    errors = {k: v for k, v in bag.import_errors.items()}
    missing = wanted - set(bag.dag_ids)
    if missing:
        raise RuntimeError(f"DAGs {sorted(missing)} not found in {dags_folder()}; import errors: {errors}")
    return {d: bag.get_dag(d) for d in wanted}


@contextlib.contextmanager
def quiet_airflow(logfile: Path | None):
    """Send Airflow's and the libraries' console output to ``logfile`` while a run executes."""
    if logfile is None:
        yield
        return
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "a", encoding="utf-8") as fh:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_out, saved_err = os.dup(1), os.dup(2)
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        # File-descriptor level only: loggers (structlog's PrintLogger among them) keep a
        # reference to sys.stdout from the first time they log; swapping sys.stdout for this
        # file would leave them writing to a closed file once the block ends.
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)


def _states(dr: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


class TaskLogWriter(logging.Handler):
    """The task logs of in-process runs, written where Airflow's log reader looks.

    ``DAG.test`` runs each task in this process (the Task SDK's ``InProcessTestSupervisor``)
    and its log records go to this process's console. This handler, added to the root
    logger, is also an Airflow listener: ``on_task_instance_running`` opens the file the
    executor would have given the task instance (``[logging] log_filename_template``,
    rendered by Airflow's own renderer, under ``[logging] base_log_folder``, created by the
    Task SDK's ``init_log_file``), and the records logged until the task ends are written
    there as the JSON lines the Task SDK writes (``timestamp``, ``level``, ``event``,
    ``logger``), which the api-server's ``FileTaskHandler`` parses for the UI.
    """

    # Server-side records of the in-process Execution API (task started, XCom pushed): not the task's.
    SKIP_LOGGERS = ("airflow.api_fastapi.",)

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._file: Any = None
        self.paths: list[Path] = []

    # -- Airflow listener hooks (pluggy matches them by name) --------------------------------
    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        """Open the log file of the task instance that starts now."""
        from airflow.sdk.log import init_log_file
        from airflow.utils.helpers import log_filename_template_renderer

        self._close()
        relative = log_filename_template_renderer()(ti=task_instance, try_number=task_instance.try_number)
        path = init_log_file(relative)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed when the task ends
        self.paths.append(path)

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._close()

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self._close()

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        """The Task SDK reports the failure through structlog, not stdlib logging: write it here."""
        if error is not None and self._file is not None:
            import traceback

            text = "".join(traceback.format_exception(error)) if isinstance(error, BaseException) else str(error)
            self._write("error", "task", f"Task failed with exception\n{text}")
        self._close()

    # -- logging.Handler -------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        if self._file is None or record.name.startswith(self.SKIP_LOGGERS):
            return
        try:
            event = record.getMessage()
            if record.exc_info:
                event += "\n" + logging.Formatter().formatException(record.exc_info)
            self._write(record.levelname.lower(), record.name, event, record.created)
        except Exception:  # noqa: BLE001 - logging must never break the task
            self.handleError(record)

    def _write(self, level: str, logger: str, event: str, created: float | None = None) -> None:
        import json

        when = dt.datetime.fromtimestamp(created, dt.UTC) if created else dt.datetime.now(dt.UTC)
        line = {"timestamp": when.isoformat().replace("+00:00", "Z"), "level": level, "event": event,
                "logger": logger}
        self._file.write(json.dumps(line, default=str) + "\n")
        self._file.flush()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._close()
        super().close()


@contextlib.contextmanager
def task_logs() -> Any:
    """Write the task logs of the runs executed inside this block (see :class:`TaskLogWriter`)."""
    from airflow.sdk.listener import get_listener_manager

    writer = TaskLogWriter()
    manager = get_listener_manager()
    manager.add_listener(writer)
    root = logging.getLogger()
    root.addHandler(writer)
    try:
        yield writer
    finally:
        root.removeHandler(writer)
        manager.pm.unregister(writer)
        writer.close()


@dataclass(frozen=True)
class RunRecord:
    """How a replayed run is recorded in Airflow: its id, type, trigger and requester."""

    run_id: str
    run_type: str
    triggered_by: str
    user: str | None
    run_after: dt.datetime
    data_interval: tuple[dt.datetime, dt.datetime] | None = None
    note: str | None = None
    queued_at: dt.datetime | None = None


def backfill_record(logical: dt.datetime, user: str) -> RunRecord:
    """The record of a daily run replayed for ``logical``: what ``airflow backfill create`` makes.

    A daily data-interval run for day D covers [D, D+1 day) and may run after D+1 day, and
    Airflow names a backfill run after its run-after moment.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    end = logical + dt.timedelta(days=1)
    return RunRecord(
        run_id=DagRun.generate_run_id(run_type=DagRunType.BACKFILL_JOB, logical_date=logical, run_after=end),
        run_type=DagRunType.BACKFILL_JOB.value,
        triggered_by=DagRunTriggeredByType.BACKFILL.value,
        user=user,
        run_after=end,
        data_interval=(logical, end),
        note=REPLAY_NOTE.format(user=user, ds=logical.date().isoformat()),
    )


def queued_record(queued: Any) -> RunRecord:
    """The record of a queued (triggered) run as its trigger made it; only its start is new."""
    return RunRecord(
        run_id=queued.run_id,
        run_type=str(getattr(queued.run_type, "value", queued.run_type)),
        triggered_by=str(getattr(queued.triggered_by, "value", queued.triggered_by or "operator")),
        user=queued.triggering_user_name,
        run_after=queued.run_after,
        data_interval=(queued.data_interval_start, queued.data_interval_end)
        if queued.data_interval_start is not None and queued.data_interval_end is not None else None,
        queued_at=queued.queued_at,
    )


@contextlib.contextmanager
def recorded_as(record: RunRecord) -> Any:
    """Make the next ``DAG.test`` run be recorded as ``record`` says, starting now.

    ``DAG.test`` creates its run through ``airflow.models.dagrun.get_or_create_dagrun``
    ("only meant to be used by DAG.test"), which hard-codes a manual run named after the
    current time, by user ``dag_test``, whose start date is its logical date. Within this
    block that helper is replaced by one that does the same (replace the run of the same id or
    logical date, then ``create_dagrun`` in state running) with the record's identity and the real
    start time; :func:`run_recorded` checks afterwards that the run carries the record's id.
    """
    from unittest import mock

    import airflow.models.dagrun as dagrun_module
    from airflow.utils import timezone
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    def get_or_create_dagrun(*, dag: Any, logical_date: Any, data_interval: Any, conf: Any, session: Any,
                             **_ignored: Any) -> Any:
        # The run this one replaces: the queued run of the same id, or (as DAG.test does) an earlier
        # run of the same logical date; never, for a run without one, every run without one.
        DagRun = dagrun_module.DagRun
        same = DagRun.run_id == record.run_id
        if logical_date is not None:
            same = same | (DagRun.logical_date == logical_date)
        for existing in session.scalars(select(DagRun).where(DagRun.dag_id == dag.dag_id, same)).all():
            session.delete(existing)
        session.commit()
        now = timezone.utcnow()
        dr = dag.create_dagrun(
            run_id=record.run_id, logical_date=logical_date, data_interval=record.data_interval or data_interval,
            run_after=record.run_after, conf=conf, run_type=DagRunType(record.run_type), state=DagRunState.RUNNING,
            triggered_by=DagRunTriggeredByType(record.triggered_by), triggering_user_name=record.user,
            start_date=now, note=record.note, session=session,
        )
        dr.queued_at = record.queued_at or now
        session.commit()
        return dr

    with mock.patch.object(dagrun_module, "get_or_create_dagrun", get_or_create_dagrun):
        yield


def run_recorded(dag: Any, logical: dt.datetime, record: RunRecord, conf: dict | None = None) -> Any:
    """``dag.test`` for ``logical``, recorded as ``record`` (see :func:`recorded_as`).

    Raises:
        RuntimeError: the run was not recorded as asked (an Airflow whose ``DAG.test`` no
            longer creates its run through ``get_or_create_dagrun``).
    """
    with recorded_as(record):
        dr = dag.test(logical_date=logical, run_conf=conf)
    if dr.run_id != record.run_id:
        raise RuntimeError(f"{dag.dag_id}: DAG.test recorded run {dr.run_id!r}, not {record.run_id!r}: this "
                           "Airflow's DAG.test no longer creates its run through get_or_create_dagrun")
    return dr


def queued_runs(dag_id: str) -> list[Any]:
    """Runs of a DAG that were triggered but not executed yet."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState

    return list(DagRun.find(dag_id=dag_id, state=DagRunState.QUEUED))


def run_queued(dag: Any, logfile: Path | None = None) -> list[dict[str, Any]]:
    """Execute every queued run of ``dag`` in-process, with its logical date, conf and identity."""
    done = []
    for queued in sorted(queued_runs(dag.dag_id), key=lambda r: str(r.logical_date)):
        conf = dict(queued.conf or {})
        record = queued_record(queued)
        with quiet_airflow(logfile), task_logs():
            dr = run_recorded(dag, queued.logical_date, record, conf)
        done.append({"run_id": queued.run_id, "conf": conf, "state": str(dr.state), "tasks": _states(dr)})
    return done


def abandoned_runs(dag_id: str) -> list[Any]:
    """Runs of a DAG left RUNNING by a process that was killed.

    The replay runs one DAG run at a time in its own process, so at the start of a day no
    run of the model's DAGs can be under way: a RUNNING one lost its process (kill -9,
    a crash) with no scheduler to notice. (Two replays of one model at once are not supported.)
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState

    return list(DagRun.find(dag_id=dag_id, state=DagRunState.RUNNING))


def resume_abandoned(dag: Any, logfile: Path | None = None) -> list[dict[str, Any]]:
    """Run again, with their logical date and conf, the runs of ``dag`` a killed process left
    RUNNING: the retraining DAG's tasks are idempotent, so a version registered before the
    kill is decided now instead of being skipped by the day's "already exists" trigger."""
    done = []
    for run in sorted(abandoned_runs(dag.dag_id), key=lambda r: str(r.logical_date)):
        conf = dict(run.conf or {})
        record = queued_record(run)
        log.warning("%s: run %s was left running by a killed process; running it again", dag.dag_id, run.run_id)
        with quiet_airflow(logfile), task_logs():
            dr = run_recorded(dag, run.logical_date, record, conf)
        done.append({"run_id": run.run_id, "conf": conf, "state": str(dr.state), "tasks": _states(dr),
                     "resumed": True})
    return done


def run_day(spec: ModelSpec, dags: dict[str, Any], day: dt.date, logfile: Path | None = None,
            requester: str = REPLAY_USER) -> DayResult:
    """Run the daily DAG for ``day`` (recorded as a backfill run asked for by ``requester``),
    then any retraining it queued (first finishing any retraining a killed replay left
    unfinished, see :func:`resume_abandoned`)."""
    daily = dags[dag_factory.dag_id(spec.name, "daily")]
    retrain = dags[dag_factory.dag_id(spec.name, "retrain")]
    resumed = resume_abandoned(retrain, logfile)
    logical = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    with quiet_airflow(logfile), task_logs():
        dr = run_recorded(daily, logical, backfill_record(logical, requester))
    result = DayResult(ds=day.isoformat(), daily_state=str(dr.state), tasks=_states(dr))
    result.retrain_runs = resumed + run_queued(retrain, logfile)
    return result


def clear_runs(spec: ModelSpec) -> None:
    """Delete the Airflow run history of the model's DAGs (demo reset)."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from sqlalchemy import delete

    ids = [dag_factory.dag_id(spec.name, k) for k in dag_factory.DAG_KINDS]
    with settings.Session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id.in_(ids)))
        session.commit()


def seed_history(spec: ModelSpec, days: list[dt.date]) -> int:
    """Ingest and validate history days (and keep their labels) with the stage functions,
    as ``mlops ingest-history`` does; no scoring, there is no model yet. Returns the
    number of validated days.

    Raises:
        RuntimeError: a history day was not validated (the replay needs all of them).
    """
    from mlops_lifecycle import scaffold

    results = scaffold.ingest_history(spec, days)
    bad = [r for r in results if r["status"] != "validated"]
    if bad:
        raise RuntimeError(f"{spec.name}: history days not validated: {bad}")
    return len(results)


def day_row(spec: ModelSpec, day: dt.date, result: DayResult) -> dict[str, Any]:
    """One line of the demo's table, read back from the lake (what a user would inspect)."""
    row: dict[str, Any] = {"ds": day.isoformat(), "rows": None, "validation": "-", "drift_share": None,
                           "retrain": "", "scored_by": None}
    vpath = lake.report_dir(spec.name, "validation", day) / "result.json"
    if vpath.exists():
        v = lake.read_json(vpath)
        row["rows"] = v.get("rows")
        row["validation"] = "passed" if v.get("success") else f"FAILED ({v.get('failed')} checks)"
        if v.get("success") and v.get("warned"):
            row["validation"] = f"passed, {v['warned']} warning{'s' if v['warned'] > 1 else ''}"
        row["warnings"] = [c.get("check") for c in v.get("warnings") or []]
        # A rejected re-delivery leaves the accepted batch's result as the report, with a
        # pointer to the rejection: the latest attempt failed, whatever the kept batch did.
        if rejected := v.get("rejected_redelivery"):
            row["rows"], row["validation"] = rejected.get("rows"), f"FAILED ({rejected.get('failed')} checks)"
            row["kept_earlier_batch"] = True
    dpath = lake.report_dir(spec.name, "drift", day) / "summary.json"
    row["drifted"] = False
    if dpath.exists():
        drift = lake.read_json(dpath)
        row["drift_share"], row["drifted"] = drift.get("drift_share"), bool(drift.get("dataset_drift"))
    mpath = lake.partition_dir(spec.name, "predictions", day) / "manifest.json"
    if mpath.exists():
        row["scored_by"] = lake.read_json(mpath).get("model_version")
    notes = ["re-delivery rejected, the earlier validated batch kept"] if row.get("kept_earlier_batch") else []
    if result.tasks.get("trigger_first_training") == "success":
        notes.append("first training")
    if result.tasks.get("trigger_retraining") == "success":
        # What asked for it: drift, or the labels (concept_drift, label_shift).
        request = lake.event_file(spec.name, "retrain_requests", day.isoformat())
        reason = lake.read_json(request).get("reason") if request.exists() else None
        notes.append(f"retrain: {'drift' if reason in (None, 'data_drift') else reason}")
    for run in result.retrain_runs:
        notes.append(f"retrain run {run['state'].replace('DagRunState.', '')}")
    row["retrain"] = ", ".join(notes)
    row["daily_state"] = result.daily_state.replace("DagRunState.", "")
    return row


def config_summary() -> dict[str, str]:
    """Where the stores are, for the user."""
    return {
        "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", "~/airflow"),
        "MLOPS_DATA_DIR": str(config.data_dir()),
        "MLFLOW_TRACKING_URI": config.mlflow_tracking_uri(),
    }
