"""Airflow plugin: the model reports in the Airflow UI.

- ``/mlops`` in the api-server: the lake's drift and validation reports and the Data Docs,
  behind Airflow's own login (include/mlops_lifecycle/report_server.py says how, and why the
  app has to do it itself).
- Extra links on the generated DAGs' tasks: Drift report, Validation result, Data Docs, MLflow
  run, MLflow model version (include/mlops_lifecycle/report_links.py).
- "Model reports" in the UI's Browse menu, showing ``/mlops/`` inside the UI.

Only registration here. Every Airflow process imports this file, so it stays cheap: the
FastAPI app is built on its first request in the api-server, and nothing reads a file or the
database at import.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlops_lifecycle import report_links, report_server


class MlopsReportsPlugin(AirflowPlugin):
    name = "mlops_reports"
    fastapi_apps = [
        {"app": report_server.app, "url_prefix": report_server.URL_PREFIX, "name": "MLOps model reports"},
    ]
    # No leading slash: the UI resolves it against its <base href>, so it also works under [api] base_url.
    external_views = [
        {
            "name": "Model reports",
            "href": report_server.URL_PREFIX.lstrip("/") + "/",
            "url_route": "model-reports",
            "category": "browse",
            "destination": "nav",
        },
    ]
    operator_extra_links = report_links.LINKS
