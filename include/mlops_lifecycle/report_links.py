"""Extra links from the generated DAGs' tasks to what they produced.

=====================  ===========================================  =======================================
Link                   On                                           Goes to
=====================  ===========================================  =======================================
Drift report           ``<model>__daily.drift_check``               ``/mlops/models/<m>/drift/<ds>/report.html``
Validation result      ``<model>__daily.validate``                  ``/mlops/models/<m>/validation/<ds>/result.json``
Data Docs              ``<model>__daily.validate``                  the day's page of the model's Data Docs
MLflow run             ``<model>__retrain.train``                   ``<MLflow UI>/#/runs/<run id>``
MLflow model version   ``<model>__retrain.train``, ``.compare_and_promote``  ``.../#/models/<m>/versions/<v>``
=====================  ===========================================  =======================================

**How they reach @task tasks (Airflow 3.3).** A link defined on an operator class (its
``operator_extra_links``) is evaluated by the worker when the task ends and stored in XCom; the
serialized DAG then records ``_operator_extra_links: {name: xcom_key}`` and the api-server reads
the URL back from XCom. The factory's tasks are plain ``@task`` functions, whose operator is
``_PythonDecoratedOperator`` for every one of them, so these links are instead registered in the
plugin's ``operator_extra_links`` with that class in ``operators``: the api-server attaches them
while deserializing any task whose ``task_type``/``_task_module`` match, and calls
:meth:`get_link` there, at request time, with the metadata DB and the lake at hand. Nothing has
to be in the serialized DAG. ``global_operator_extra_links`` would put them on every operator
of every DAG. Either way every ``@task`` task of the deployment gets the five names, so each
link returns ``""`` (which the API turns into ``null`` and the UI does not draw) unless the DAG
is a generated ``<model>__<kind>`` one, the task is the one the link belongs to and what it
points at exists: a drift report that was written, a validation result (also for a rejected
batch, whose task failed), an MLflow run id or version in the task's XCom return value.

``get_link`` never raises: the api-server's extra-links endpoint would fail for all links of the
task. Importing this module loads nothing beyond ``airflow.sdk`` and the standard operator.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk import BaseOperatorLink

from mlops_lifecycle import config, report_server

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

log = logging.getLogger(__name__)

DEFAULT_MLFLOW_UI_URL = f"http://127.0.0.1:{config.DEFAULT_MLFLOW_UI_PORT}"


def mlflow_ui_url() -> str:
    """Base URL of the MLflow UI as a browser reaches it (read in :func:`config.mlflow_ui_url`:
    ``MLOPS_MLFLOW_UI_URL``, an http(s) tracking server, else ``MLFLOW_UI_PORT`` on this machine)."""
    return config.mlflow_ui_url()


def reports_url(path: str) -> str:
    """URL of a page of the reports app: under ``[api] base_url`` when it is set, else ``/mlops/...``."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{report_server.URL_PREFIX}/{path}"


def _model_of(dag_id: str, kind: str) -> str | None:
    """The model of a generated ``<model>__<kind>`` DAG id, else None."""
    from mlops_lifecycle.dag_factory import dag_id as make_dag_id

    model, sep, found = dag_id.rpartition("__")
    if not sep or found != kind:
        return None
    try:
        model = report_server.checked_model(model)
    except report_server.NotServed:
        return None
    return model if make_dag_id(model, kind) == dag_id else None


def run_day(ti_key: TaskInstanceKey) -> str | None:
    """The partition day of the task's DAG run (its logical date, else the day it ran for),
    as the factory's tasks compute it."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(DagRun.logical_date, DagRun.run_after).where(
                DagRun.dag_id == ti_key.dag_id, DagRun.run_id == ti_key.run_id
            )
        ).first()
    if row is None:
        return None
    when = row.logical_date or row.run_after
    return when.date().isoformat() if when else None


def return_value(ti_key: TaskInstanceKey) -> dict[str, Any]:
    """The task instance's XCom return value when it is a dict (the factory's summaries), else {}."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            XComModel.get_many(
                key="return_value", run_id=ti_key.run_id, dag_ids=ti_key.dag_id,
                task_ids=ti_key.task_id, map_indexes=ti_key.map_index,
            ).with_only_columns(XComModel.value)
        ).first()
    value = row.value if row is not None else None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


class MlopsLink(BaseOperatorLink):
    """A link shown on some tasks of a model's generated DAG; empty everywhere else."""

    operators: ClassVar[list[type]] = [_PythonDecoratedOperator]
    name: ClassVar[str]
    dag_kind: ClassVar[str]
    task_ids: ClassVar[frozenset[str]]

    def url(self, model: str, ti_key: TaskInstanceKey) -> str | None:
        """The link of this task instance of ``model``'s DAG, or None when there is nothing to show."""
        raise NotImplementedError

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        if ti_key.task_id not in self.task_ids:
            return ""
        model = _model_of(ti_key.dag_id, self.dag_kind)
        if model is None:
            return ""
        try:
            return self.url(model, ti_key) or ""
        except Exception:
            log.exception("extra link %r of %s failed; not shown", self.name, ti_key)
            return ""


class ReportFileLink(MlopsLink):
    """A report file of the run's day, served by the reports app, when it was written."""

    dag_kind = "daily"
    report: ClassVar[tuple[str, str]]  # (kind, file name), one of report_server.REPORT_FILES

    def url(self, model: str, ti_key: TaskInstanceKey) -> str | None:
        kind, file_name = self.report
        ds = run_day(ti_key)
        if ds is None or not report_server.has_report(model, kind, ds, file_name):
            return None
        return reports_url(f"models/{model}/{kind}/{ds}/{file_name}")


class DriftReportLink(ReportFileLink):
    """Evidently's report of the run's day."""

    name = "Drift report"
    task_ids = frozenset({"drift_check"})
    report = ("drift", "report.html")


class ValidationResultLink(ReportFileLink):
    """The Great Expectations result of the run's day (written for passed and rejected batches)."""

    name = "Validation result"
    task_ids = frozenset({"validate"})
    report = ("validation", "result.json")


class DataDocsLink(MlopsLink):
    """The day's validation page in the model's Data Docs, or the site's index."""

    name = "Data Docs"
    dag_kind = "daily"
    task_ids = frozenset({"validate"})

    def url(self, model: str, ti_key: TaskInstanceKey) -> str | None:
        files = report_server.data_docs_files(model)
        if "index.html" not in files:
            return None
        ds = run_day(ti_key)
        page = (report_server.data_docs_page_for_day(model, ds) if ds else None) or "index.html"
        return reports_url(f"models/{model}/data-docs/{quote(page)}")


class MlflowRunLink(MlopsLink):
    """The MLflow run that trained the challenger (run id from the task's return value)."""

    name = "MLflow run"
    dag_kind = "retrain"
    task_ids = frozenset({"train"})

    def url(self, model: str, ti_key: TaskInstanceKey) -> str | None:
        run_id = return_value(ti_key).get("run_id")
        if not isinstance(run_id, str) or not run_id.isalnum():
            return None
        return f"{mlflow_ui_url()}/#/runs/{run_id}"


class MlflowModelVersionLink(MlopsLink):
    """The registered model version the task trained or judged (registered model name = model)."""

    name = "MLflow model version"
    dag_kind = "retrain"
    task_ids = frozenset({"train", "compare_and_promote"})

    def url(self, model: str, ti_key: TaskInstanceKey) -> str | None:
        version = str(return_value(ti_key).get("version") or "")
        if not version.isdigit():
            return None
        return f"{mlflow_ui_url()}/#/models/{quote(model)}/versions/{version}"


LINKS: list[MlopsLink] = [
    DriftReportLink(), ValidationResultLink(), DataDocsLink(), MlflowRunLink(), MlflowModelVersionLink(),
]
