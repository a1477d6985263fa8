#!/bin/sh
# Create the two application databases on one PostgreSQL server: the Airflow metadata DB and
# the MLflow backend store, each owned by its own login role, so neither application can read
# or change the other's tables and neither runs as the superuser.
#
# The postgres image runs this from /docker-entrypoint-initdb.d once, when it starts on an empty
# data volume (with the server listening on its Unix socket only). Later changes to the
# passwords in .env do NOT reach an existing volume: change them with ALTER ROLE, or start over
# with `docker compose down -v` (which deletes all data).
#
# Environment (set by docker-compose.yaml):
#   POSTGRES_USER, POSTGRES_DB                 superuser and maintenance DB (postgres image)
#   AIRFLOW_DB_NAME, AIRFLOW_DB_PASSWORD       role and database for Airflow
#   MLFLOW_DB_NAME, MLFLOW_DB_PASSWORD         role and database for MLflow

# The entrypoint sources scripts that are not executable: run in a subshell so `set -eu` and
# the helper cannot leak into the entrypoint's own shell.
(
    set -eu

    : "${POSTGRES_USER:?POSTGRES_USER is not set}"
    : "${AIRFLOW_DB_NAME:?AIRFLOW_DB_NAME is not set}"
    : "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"
    : "${MLFLOW_DB_NAME:?MLFLOW_DB_NAME is not set}"
    : "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is not set}"

    # create_owned_database NAME PASSWORD_VARIABLE
    # A login role NAME and a database NAME it owns. The password is read inside psql with
    # \getenv, so it never appears on a command line (ps); :"x" and :'x' make psql quote the
    # identifier and the literal. Existing roles and databases are left alone (their password
    # is not changed), so a rerun against a live server is harmless, and no failed CREATE ROLE
    # can write its statement, password included, to the server log.
    create_owned_database() {
        echo "init-databases: role and database '$1' (created if missing)"
        psql --no-psqlrc --no-password -v ON_ERROR_STOP=1 \
            --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
            -v name="$1" -v password_variable="$2" <<'SQL'
\getenv password :password_variable
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') AS role_missing \gset
\if :role_missing
CREATE ROLE :"name" LOGIN PASSWORD :'password';
\endif
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') AS database_missing \gset
\if :database_missing
CREATE DATABASE :"name" OWNER :"name";
\endif
-- Only the owner (and the superuser) may connect: the airflow role cannot open the mlflow
-- database and vice versa.
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
    }

    create_owned_database "$AIRFLOW_DB_NAME" AIRFLOW_DB_PASSWORD
    create_owned_database "$MLFLOW_DB_NAME" MLFLOW_DB_PASSWORD
)
