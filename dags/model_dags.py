"""One set of DAGs per model spec in ``dags/specs/`` (or ``$MLOPS_SPECS_DIR``).

Add a model by adding a spec file; nothing here changes. The factory imports only
``airflow.sdk``, ``pydantic`` and ``yaml`` at parse time (see include/mlops_lifecycle/dag_factory.py).
"""

from mlops_lifecycle.dag_factory import build_all

globals().update(build_all())
