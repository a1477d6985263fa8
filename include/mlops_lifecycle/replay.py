"""Replay days of a model through the real DAGs, in-process (``DAG.test``), for the demo and tests.

No scheduler runs here, so a ``TriggerDagRunOperator`` only *queues* a retraining run.
After each daily run the replay executes every queued run of the retraining DAG with
its own logical date and conf (``DAG.test`` replaces the queued run by the one it
executes), exactly as a scheduler would have picked it up.
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

from mlops_lifecycle import config, dag_factory, lake
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)


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


def queued_runs(dag_id: str) -> list[Any]:
    """Runs of a DAG that were triggered but not executed yet."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState

    return list(DagRun.find(dag_id=dag_id, state=DagRunState.QUEUED))


def run_queued(dag: Any, logfile: Path | None = None) -> list[dict[str, Any]]:
    """Execute every queued run of ``dag`` in-process, with its logical date and conf."""
    done = []
    for queued in sorted(queued_runs(dag.dag_id), key=lambda r: str(r.logical_date)):
        conf = dict(queued.conf or {})
        with quiet_airflow(logfile):
            dr = dag.test(logical_date=queued.logical_date, run_conf=conf)
        done.append({"run_id": queued.run_id, "conf": conf, "state": str(dr.state), "tasks": _states(dr)})
    return done


def run_day(spec: ModelSpec, dags: dict[str, Any], day: dt.date, logfile: Path | None = None) -> DayResult:
    """Run the daily DAG for ``day``, then any retraining it queued."""
    daily = dags[dag_factory.dag_id(spec.name, "daily")]
    retrain = dags[dag_factory.dag_id(spec.name, "retrain")]
    logical = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    with quiet_airflow(logfile):
        dr = daily.test(logical_date=logical)
    result = DayResult(ds=day.isoformat(), daily_state=str(dr.state), tasks=_states(dr))
    result.retrain_runs = run_queued(retrain, logfile)
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
    dpath = lake.report_dir(spec.name, "drift", day) / "summary.json"
    row["drifted"] = False
    if dpath.exists():
        drift = lake.read_json(dpath)
        row["drift_share"], row["drifted"] = drift.get("drift_share"), bool(drift.get("dataset_drift"))
    mpath = lake.partition_dir(spec.name, "predictions", day) / "manifest.json"
    if mpath.exists():
        row["scored_by"] = lake.read_json(mpath).get("model_version")
    notes = []
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
