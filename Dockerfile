# Image for every Airflow component of docker-compose.yaml, and for the MLflow server too:
# one image means the tracking client in the workers and the server run the same MLflow
# release (3.17.2 from requirements.txt), and the server gets psycopg2, which the official
# MLflow image lacks.
#
#   docker compose build            # or: docker build -t mlops-lifecycle/airflow:local .
#
# The version is an ARG so a bump is one edit, and the same value pins the install below.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

# An ARG declared before FROM is not visible after it; re-declare to use it below.
ARG AIRFLOW_VERSION

# Root only for the one thing that needs it: the MLflow artifact and auth-DB mount points. A fresh named
# volume copies the ownership of the directory it is mounted on, so creating it here (owned
# by airflow, group 0, group-writable like the rest of the image) lets the non-root MLflow
# server write artifacts without a chown step at start-up.
USER root
RUN mkdir -p /mlflow/artifacts /mlflow/auth \
    && chown -R airflow:0 /mlflow \
    && chmod -R g+rwX /mlflow
USER airflow

# Dependencies first, in their own layer: code changes do not re-run this slow step.
# The official image's way to add packages is `pip install` as the airflow user (PIP_USER is
# set in the image). The constraint file holds apache-airflow at the image's release: without
# it, a requirement that asks for another airflow (or pip's resolver backtracking) could
# up- or downgrade airflow inside the image, leaving core, task SDK and providers mismatched.
# celery<5.7: celery 5.7.0 dropped `celery.backends.database.retry`, which the pinned celery
# provider (3.26.0) imports, so `airflow celery worker` fails to start with it (seen in a venv
# that resolved celery 5.7.0; 5.6.3 works).
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN printf '%s\n' "apache-airflow==${AIRFLOW_VERSION}" "celery>=5.5,<5.7" > /tmp/airflow-constraint.txt \
    && pip install --no-cache-dir -c /tmp/airflow-constraint.txt -r /opt/airflow/requirements.txt \
    && pip check \
    && rm /tmp/airflow-constraint.txt

# The package itself. `--no-deps`: everything it needs came from requirements.txt above, so
# this step cannot change a pinned version. Editable, so the `mlops_lifecycle` import resolves
# to /opt/airflow/include, which docker-compose.yaml bind-mounts from the checkout: edited
# code is picked up without a rebuild, and a deployment without the mount (Kubernetes) still
# runs the copy baked in here. pyproject.toml names README.md, so setuptools needs it too.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/
COPY --chown=airflow:0 include/ /opt/airflow/include/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow

# DAGs and plugins baked in for the same reason (an image that runs without bind mounts); compose mounts
# ./dags and ./plugins over these copies. The secrets check runs first in airflow-init (see docker-compose.yaml).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 deploy/check-secrets.sh /opt/airflow/deploy/check-secrets.sh

# Mount points of the named volumes (data lake, task logs, simple-auth password file),
# created as the airflow user for the same ownership reason as /mlflow above.
RUN mkdir -p /opt/airflow/data /opt/airflow/logs /opt/airflow/auth \
    && chmod g+rwX /opt/airflow/data /opt/airflow/logs /opt/airflow/auth

# Nothing in the image may phone home (see STACK_NOTES: MLflow telemetry is on by default).
ENV MLOPS_DATA_DIR=/opt/airflow/data \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    GX_ANALYTICS_ENABLED=false \
    TQDM_DISABLE=1
