"""A SQL source against the real local PostgreSQL, through an Airflow connection.

The connection is defined the way deployments define secrets, as an ``AIRFLOW_CONN_*``
URI; the query runs through the common-sql provider's hook (here the Postgres hook) with
the logical date bound as a parameter. A uniquely named table holds two days of rows;
ingesting one day must land only that day's rows, pass the same Great Expectations
validation as a file would, and a date carrying a quote must stay a value, never SQL.
Without a PostgreSQL on 127.0.0.1:5432 that lets user postgres into database ``test``, the
module skips saying which (fails under MLOPS_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import datetime as dt
import secrets

import pandas as pd
import pytest
import yaml
from live_airflow import REQUIRE_VAR, port_open, skip_or_fail

from mlops_lifecycle import ingestion, lake
from mlops_lifecycle.examples import late_delivery

pytestmark = [pytest.mark.production, pytest.mark.timeout(300)]

PG_HOST, PG_PORT, PG_USER, PG_DB = "127.0.0.1", 5432, "postgres", "test"
CONN_ID = "mlops_sql_source_test"
DAY1 = dt.date(2026, 3, 1)
DAY2 = DAY1 + dt.timedelta(days=1)
ROWS = 150
SQL_TYPES = {"object": "text", "float64": "double precision", "int64": "bigint", "bool": "boolean",
             "datetime64[ns]": "timestamp"}


def _pg(dbname: str = PG_DB):
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=5)
    conn.autocommit = True
    return conn


def _usable_postgres_or_skip(dbname: str = PG_DB) -> None:
    """Skip (or fail under MLOPS_REQUIRE_SERVICES=1) unless PostgreSQL takes a connection to ``dbname``."""
    if not port_open(PG_HOST, PG_PORT):
        skip_or_fail(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}")
    try:
        _pg(dbname).close()
    except Exception as exc:  # noqa: BLE001 - no driver, no such database, refused login: all unusable
        skip_or_fail(f"PostgreSQL on {PG_HOST}:{PG_PORT} is not usable as user {PG_USER!r} with database "
                     f"{dbname!r} ({type(exc).__name__}: {str(exc).strip()}); e.g. createdb -h {PG_HOST} "
                     f"-U {PG_USER} {dbname}")


@pytest.fixture(scope="module")
def table():
    """A uniquely named table holding DAY1 and DAY2 of the example's rows; dropped afterwards."""
    _usable_postgres_or_skip()
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    name = f"mlops_source_{secrets.token_hex(4)}"
    days = {day: late_delivery.generate_day(day, rows=ROWS) for day in (DAY1, DAY2)}
    first = days[DAY1]
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(SQL_TYPES[str(t)])) for c, t in first.dtypes.items()
    )
    conn = _pg()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), columns))
            for frame in days.values():
                rows = [tuple(v.to_pydatetime() if isinstance(v, pd.Timestamp) else (v.item() if hasattr(v, "item") else v)
                              for v in row) for row in frame.itertuples(index=False)]
                execute_values(cur, sql.SQL("INSERT INTO {} VALUES %s").format(sql.Identifier(name)).as_string(cur), rows)
        yield {"name": name, "days": days}
    finally:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.close()


@pytest.fixture
def connection(monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}")
    return CONN_ID


def _sql_spec(tmp_path, query: str, **source):
    from pathlib import Path

    from mlops_lifecycle.spec import load_spec

    example = Path(__file__).resolve().parents[2] / "dags" / "specs" / "late_delivery.yaml"
    data = yaml.safe_load(example.read_text())
    data["source"] = {"kind": "sql", "conn_id": CONN_ID, "query": query, **source}
    path = tmp_path / "late_delivery.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_spec(path)


def _day_query(table: str) -> str:
    return (f'SELECT * FROM "{table}" WHERE dispatched_at >= %(ds)s AND dispatched_at < %(next_ds)s '
            "ORDER BY package_id")


def test_one_day_of_rows_lands_in_the_raw_zone_and_passes_validation(table, connection, data_dir, tmp_path):
    from mlops_lifecycle import validation

    spec = _sql_spec(tmp_path, _day_query(table["name"]))

    found = ingestion.wait_for_source(spec, DAY1, waited_seconds=0)
    summary = ingestion.ingest(spec, DAY1)

    expected = table["days"][DAY1]
    raw = pd.read_parquet(lake.data_file(spec.name, "raw", DAY1))
    assert found["rows"] == summary["rows"] == len(expected) == len(raw)
    assert set(raw[spec.entity_id]) == set(expected[spec.entity_id])
    assert (raw[spec.event_time].dt.date == DAY1).all(), "a row of another day was read"
    assert summary["source_kind"] == "sql" and CONN_ID in summary["source"]
    checked = validation.validate_partition(spec, DAY1, docs=False)
    assert lake.data_file(spec.name, "validated", DAY1).exists(), checked


def test_a_day_without_rows_is_a_missing_partition(table, connection, data_dir, tmp_path):
    spec = _sql_spec(tmp_path, _day_query(table["name"]), wait_timeout_minutes=10)
    empty_day = DAY2 + dt.timedelta(days=1)

    assert ingestion.wait_for_source(spec, empty_day, waited_seconds=0) is None
    with pytest.raises(ingestion.SourceMissing, match=f"connection '{CONN_ID}' returned no rows"):
        ingestion.wait_for_source(spec, empty_day, waited_seconds=601)
    assert not lake.data_file(spec.name, "raw", empty_day).exists()


def test_the_date_is_a_bound_parameter_never_sql(table, connection, tmp_path):
    spec = _sql_spec(tmp_path, f"SELECT count(*) AS n FROM \"{table['name']}\" "
                               "WHERE to_char(dispatched_at, 'YYYY-MM-DD') = %(ds)s")

    honest = ingestion.query_source(spec.source, {"ds": DAY1.isoformat()})
    injected = ingestion.query_source(spec.source, {"ds": f"{DAY1}' OR '1'='1"})

    assert int(honest["n"].iloc[0]) == len(table["days"][DAY1])
    assert int(injected["n"].iloc[0]) == 0, "the quote was read as SQL: the date was pasted into the query"


def test_a_failing_query_names_the_connection_and_the_database_error(table, connection, data_dir, tmp_path):
    spec = _sql_spec(tmp_path, f"SELECT no_such_column FROM \"{table['name']}\" WHERE dispatched_at >= %(ds)s")

    with pytest.raises(ingestion.SourceFailed) as err:
        ingestion.ingest(spec, DAY1)

    assert f"connection '{CONN_ID}'" in str(err.value) and "no_such_column" in str(err.value)
    assert "does not exist" in str(err.value)


@pytest.mark.parametrize("required", [False, True], ids=["skips", "fails-when-required"])
def test_an_unusable_service_skips_saying_why_unless_required(monkeypatch, required):
    """A missing database is a service that cannot be used, like a closed port: a skip with the
    reason, or a failure when MLOPS_REQUIRE_SERVICES=1; never an error in a fixture."""
    missing = f"mlops_no_such_db_{secrets.token_hex(3)}"
    if required:
        monkeypatch.setenv(REQUIRE_VAR, "1")
    else:
        monkeypatch.delenv(REQUIRE_VAR, raising=False)
    expected = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(expected) as outcome:
        _usable_postgres_or_skip(missing)
    reason = str(outcome.value)
    assert (f"database {missing!r}" in reason) if port_open(PG_HOST, PG_PORT) else ("not reachable" in reason)
    assert (f"{REQUIRE_VAR}=1" in reason) == required


def test_the_daily_dag_reads_a_sql_source_once_and_validates_that_day(table, connection, tmp_path, monkeypatch,
                                                                       airflow_db):
    """The real daily DAG (``DAG.test``) on the SQL source: the sensor's look is the fetch,
    ingest lands exactly those rows, Great Expectations validates them, and with no
    champion yet the run asks for the first training."""
    from mlops_lifecycle import dag_factory, replay
    from mlops_lifecycle.spec import load_spec

    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(specs))
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec_file = _sql_spec(tmp_path, _day_query(table["name"]))
    (specs / "late_delivery.yaml").write_text(yaml.safe_dump(spec_file.model_dump(mode="json")))
    spec = load_spec(specs / "late_delivery.yaml")
    dags = replay.load_dags(spec)
    replay.clear_runs(spec)

    dr = dags[dag_factory.dag_id(spec.name, "daily")].test(logical_date=dt.datetime.combine(DAY1, dt.time(),
                                                                                            tzinfo=dt.UTC))
    states = {ti.task_id: str(ti.state).replace("TaskInstanceState.", "") for ti in dr.get_task_instances()}
    for task_id in ("wait_for_batch", "ingest", "validate", "compute_features", "trigger_first_training"):
        assert states[task_id] == "success", states
    ingested = dr.get_task_instance("ingest").xcom_pull(task_ids="ingest")
    assert ingested["source_kind"] == "sql" and ingested["fetched_by"] == "wait_for_batch"
    assert ingested["rows"] == len(table["days"][DAY1])
    raw = pd.read_parquet(lake.data_file(spec.name, "raw", DAY1))
    assert set(raw[spec.entity_id]) == set(table["days"][DAY1][spec.entity_id])
    assert not (lake.root() / spec.name / "staging" / "raw" / f"ds={DAY1}").exists() or not any(
        (lake.root() / spec.name / "staging" / "raw" / f"ds={DAY1}").iterdir()), "the sensor's fetch was left behind"
