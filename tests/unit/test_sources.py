"""Every kind of source the spec can name lands the same raw partition.

Files on a local disk, behind ``file://`` URLs and in fsspec's ``memory://`` filesystem
(the stand-in here for object stores: nothing reaches the network), as Parquet or CSV,
one a day or a glob of several; a Python callable; and the spec checks of each kind.
The SQL kind runs against the real PostgreSQL in ``tests/production/test_sql_source.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlops_lifecycle import ingestion, lake
from mlops_lifecycle.examples import late_delivery
from mlops_lifecycle.spec import ModelSpec, SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "dags" / "specs" / "late_delivery.yaml"
DAY = dt.date(2026, 3, 1)
ROWS = 60


def _spec(source: dict, **top) -> ModelSpec:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["source"] = source
    data.update(top)
    return ModelSpec.model_validate(data)


def _day(day: dt.date = DAY, rows: int = ROWS) -> pd.DataFrame:
    return late_delivery.generate_day(day, rows=rows)


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _raw(spec: ModelSpec, day: dt.date = DAY) -> pd.DataFrame:
    return pd.read_parquet(lake.data_file(spec.name, "raw", day))


@pytest.fixture
def memory_root():
    """A private folder of fsspec's in-process memory filesystem, removed afterwards."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/sources-test-{uuid.uuid4().hex[:8]}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


# ---- files ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_local_file_lands_in_the_raw_zone(data_dir, fmt):
    spec = _spec({"path": "{data_dir}/landing/{ds}." + fmt})  # no kind: a file, as older specs say
    assert spec.source.kind == "file"
    frame = _day()
    path = Path(ingestion.source_path(spec, DAY))
    lake.write_bytes(path, _parquet(frame) if fmt == "parquet" else _csv(frame))

    summary = ingestion.ingest(spec, DAY)

    assert summary["rows"] == len(frame) and summary["source"] == str(path)
    assert summary["source_sha256"] == lake.file_sha256(path) and summary["source_kind"] == "file"
    raw = _raw(spec)
    assert list(raw[spec.entity_id]) == list(frame[spec.entity_id])
    assert pd.api.types.is_datetime64_any_dtype(raw[spec.event_time])


@pytest.mark.parametrize("declared", [None, ["", "NULL"]])
def test_csv_words_for_missing_are_nulls_only_when_the_spec_says_so(data_dir, declared):
    from mlops_lifecycle import validation

    source = {"path": "{data_dir}/landing/{ds}.csv", **({"null_values": declared} if declared else {})}
    data = yaml.safe_load(EXAMPLE.read_text())
    data["features"] = [{**f, "nullable": True, "max_null_fraction": 0.5} if f["name"] == "traffic_index" else f
                        for f in data["features"]]
    spec = _spec(source, features=data["features"], validation={**data["validation"], "min_rows": 10})
    frame = _day().astype({"traffic_index": object})
    frame.loc[[2, 5], "traffic_index"] = "NULL"
    lake.write_bytes(Path(ingestion.source_path(spec, DAY)), _csv(frame))
    ingestion.ingest(spec, DAY)
    if declared:
        assert _raw(spec)["traffic_index"].isna().sum() == 2
        assert validation.validate_partition(spec, DAY, docs=False)["rows"] == len(frame)
    else:
        with pytest.raises(validation.ValidationFailed) as err:
            validation.validate_partition(spec, DAY, docs=False)
        assert "text values like 'NULL'" in str(err.value) and "source.null_values" in str(err.value)


def test_a_file_url_is_read_through_fsspec(data_dir):
    spec = _spec({"kind": "file", "path": "file://{data_dir}/landing/{ds_nodash}.csv"})
    frame = _day()
    lake.write_bytes(data_dir / "landing" / "20260301.csv", _csv(frame))

    found = ingestion.wait_for_source(spec, DAY, waited_seconds=0)
    summary = ingestion.ingest(spec, DAY)

    assert found["bytes"] > 0 and found["path"].startswith("file://")
    assert summary["rows"] == len(frame) and len(_raw(spec)) == len(frame)


def test_a_file_url_with_a_conn_id_opens_through_airflow_object_storage(data_dir):
    spec = _spec({"kind": "file", "path": "file://{data_dir}/landing/{ds}.parquet", "conn_id": "local_files"})
    frame = _day()
    lake.write_bytes(data_dir / "landing" / f"{DAY}.parquet", _parquet(frame))

    assert ingestion.ingest(spec, DAY)["rows"] == len(frame)


@pytest.mark.parametrize("conn_id", [None, "aws_feeds"])
def test_an_object_store_url_without_its_package_names_what_to_install(data_dir, conn_id):
    import importlib.util

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed here")
    spec = _spec({"kind": "file", "path": "s3://feeds/orders/{ds}/part-*.parquet",
                  **({"conn_id": conn_id} if conn_id else {})})
    with pytest.raises(ingestion.SourceFailed) as err:
        ingestion.wait_for_source(spec, DAY, waited_seconds=0)
    message = str(err.value)
    assert f"s3://feeds/orders/{DAY}/part-*.parquet" in message
    assert ("apache-airflow-providers-amazon" if conn_id else "s3fs") in message


def test_a_memory_url_is_read_like_any_object_store(data_dir, memory_root):
    fs, root = memory_root
    spec = _spec({"kind": "file", "path": f"memory://{root}/{{model}}/{{ds}}.parquet"})
    frame = _day()
    fs.pipe(f"{root}/late_delivery/{DAY}.parquet", _parquet(frame))

    found = ingestion.wait_for_source(spec, DAY, waited_seconds=0)
    summary = ingestion.ingest(spec, DAY)

    assert found["path"] == f"memory://{root}/late_delivery/{DAY}.parquet"
    assert summary["rows"] == len(frame)
    assert list(_raw(spec)[spec.entity_id]) == list(frame[spec.entity_id])


def test_a_glob_reads_every_file_of_the_day_in_name_order(data_dir, memory_root):
    fs, root = memory_root
    spec = _spec({"kind": "file", "path": f"memory://{root}/{{ds}}/part-*.csv"})
    frame = _day(rows=90)
    parts = [frame.iloc[60:], frame.iloc[:30], frame.iloc[30:60]]
    for name, part in zip(["part-2.csv", "part-0.csv", "part-1.csv"], parts, strict=True):
        fs.pipe(f"{root}/{DAY}/{name}", _csv(part))
    fs.pipe(f"{root}/{DAY}/notes.txt", b"not part of the glob")
    fs.pipe(f"{root}/{DAY + dt.timedelta(days=1)}/part-0.csv", _csv(_day(DAY + dt.timedelta(days=1))))

    found = ingestion.wait_for_source(spec, DAY, waited_seconds=0)
    summary = ingestion.ingest(spec, DAY)

    assert [f.rsplit("/", 1)[-1] for f in found["files"]] == ["part-0.csv", "part-1.csv", "part-2.csv"]
    assert summary["rows"] == len(frame) and len(summary["files"]) == 3
    assert list(_raw(spec)[spec.entity_id]) == list(frame[spec.entity_id])  # sorted names, not write order


def test_a_local_glob_of_parquet_files(data_dir):
    spec = _spec({"kind": "file", "path": "{data_dir}/landing/{ds}/*.parquet"})
    frame = _day()
    lake.write_bytes(data_dir / "landing" / str(DAY) / "a.parquet", _parquet(frame.iloc[:20]))
    lake.write_bytes(data_dir / "landing" / str(DAY) / "b.parquet", _parquet(frame.iloc[20:]))

    assert ingestion.ingest(spec, DAY)["rows"] == len(frame)


def test_an_empty_glob_is_a_missing_partition_named_by_its_pattern(data_dir, memory_root):
    fs, root = memory_root
    spec = _spec({"kind": "file", "path": f"memory://{root}/{{ds}}/part-*.parquet", "wait_timeout_minutes": 1})
    fs.pipe(f"{root}/{DAY}/other.parquet", _parquet(_day()))

    assert ingestion.wait_for_source(spec, DAY, waited_seconds=10) is None  # the sensor keeps waiting
    with pytest.raises(ingestion.SourceMissing) as waited:
        ingestion.wait_for_source(spec, DAY, waited_seconds=61)
    with pytest.raises(ingestion.SourceMissing) as read:
        ingestion.read_source(spec, DAY)

    pattern = f"memory://{root}/{DAY}/part-*.parquet"
    assert f"no file matches {pattern}" in str(waited.value)
    assert pattern in str(read.value)
    assert not lake.data_file(spec.name, "raw", DAY).exists()


def test_files_of_one_day_must_share_their_columns(data_dir, memory_root):
    fs, root = memory_root
    spec = _spec({"kind": "file", "path": f"memory://{root}/{{ds}}-*.csv"})
    frame = _day()
    fs.pipe(f"{root}/{DAY}-1.csv", _csv(frame.iloc[:30]))
    fs.pipe(f"{root}/{DAY}-2.csv", _csv(frame.iloc[30:].drop(columns=["weather"])))

    with pytest.raises(ingestion.SourceUnreadable) as err:
        ingestion.ingest(spec, DAY)

    assert err.value.check == "source_files_match" and f"{DAY}-2.csv" in str(err.value)
    assert not lake.data_file(spec.name, "raw", DAY).exists()


def test_unreadable_bytes_behind_a_url_are_quarantined_with_the_url_named(data_dir, memory_root):
    fs, root = memory_root
    spec = _spec({"kind": "file", "path": f"memory://{root}/{{ds}}.parquet"})
    fs.pipe(f"{root}/{DAY}.parquet", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)

    with pytest.raises(ingestion.SourceUnreadable) as err:
        ingestion.ingest(spec, DAY)

    assert err.value.check == "parquet_format" and "PNG" in str(err.value)
    result = lake.read_json(lake.report_dir(spec.name, "validation", DAY) / "result.json")
    assert result["source"] == f"memory://{root}/{DAY}.parquet"
    kept = list(lake.partition_dir(spec.name, "quarantine", DAY).glob("source.*"))
    assert kept and kept[0].read_bytes().startswith(b"\x89PNG")


# ---- Python callables ---------------------------------------------------------------------


@pytest.fixture
def source_module(tmp_path, monkeypatch):
    """A throwaway module of source callables, importable as ``user_sources``."""
    (tmp_path / "user_sources.py").write_text(textwrap.dedent("""
        from mlops_lifecycle.examples import late_delivery

        CALLS = []

        def daily(ds, spec):
            CALLS.append((ds, spec.name))
            return late_delivery.generate_day(ds, rows=40)

        def not_yet(ds, spec):
            return None

        def a_list(ds, spec):
            return [1, 2, 3]

        def one_argument(ds):
            return None
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_sources"
    import sys

    sys.modules.pop("user_sources", None)


def test_a_python_callable_is_called_with_the_date_and_the_spec(data_dir, source_module):
    import importlib

    spec = _spec({"kind": "python", "callable": f"{source_module}:daily"})

    found = ingestion.wait_for_source(spec, DAY, waited_seconds=0)
    summary = ingestion.ingest(spec, DAY)

    calls = importlib.import_module(source_module).CALLS
    assert calls[-1] == (DAY, "late_delivery") and isinstance(calls[-1][0], dt.date)
    assert found["rows"] == summary["rows"] == len(_day(rows=40))
    assert summary["source_kind"] == "python" and len(summary["source_sha256"]) == 64
    assert len(_raw(spec)) == summary["rows"]


def test_the_sensor_fetches_a_callable_once_and_ingest_lands_those_rows(data_dir, source_module):
    import importlib

    spec = _spec({"kind": "python", "callable": f"{source_module}:daily"})
    calls = importlib.import_module(source_module).CALLS
    before = len(calls)

    found = ingestion.wait_for_source(spec, DAY, waited_seconds=0, run_id="scheduled__2026-03-01")
    assert found["staged"] is True and len(calls) == before + 1
    summary = ingestion.ingest(spec, DAY, run_id="scheduled__2026-03-01")

    assert len(calls) == before + 1, "the source was asked twice for one day"
    assert summary["rows"] == found["rows"] and summary["fetched_by"] == "wait_for_batch"
    direct = _day(rows=40)
    assert list(_raw(spec)[spec.entity_id]) == list(direct[spec.entity_id])
    staging = lake.staging_dir(spec.name, "raw", DAY, "scheduled__2026-03-01")
    assert not staging.exists(), "the staging copy is removed once landed"
    # Another run has fetched nothing of its own: it asks the source.
    ingestion.ingest(spec, DAY, run_id="manual__other")
    assert len(calls) == before + 2


def test_a_callable_returning_none_means_not_there_yet(data_dir, source_module):
    spec = _spec({"kind": "python", "callable": f"{source_module}:not_yet", "wait_timeout_minutes": 5})

    assert ingestion.wait_for_source(spec, DAY, waited_seconds=0) is None
    with pytest.raises(ingestion.SourceMissing, match="not_yet returned no rows"):
        ingestion.ingest(spec, DAY)


@pytest.mark.parametrize(
    ("function", "needle"),
    [("a_list", "returned a list, not a pandas DataFrame"), ("one_argument", "must accept two arguments, (ds, spec)"),
     ("missing", "has no function 'missing'")],
)
def test_a_broken_callable_is_named(data_dir, source_module, function, needle):
    spec = _spec({"kind": "python", "callable": f"{source_module}:{function}"})

    with pytest.raises(ingestion.SourceFailed) as err:
        ingestion.ingest(spec, DAY)

    assert needle in str(err.value) and "source.callable" in str(err.value)


# ---- SQL without a database: what fails before a query runs ---------------------------------


def test_a_sql_source_with_an_unknown_connection_names_it(data_dir):
    spec = _spec({"kind": "sql", "conn_id": "no_such_db", "query": "SELECT * FROM t WHERE day = %(ds)s"})

    with pytest.raises(ingestion.SourceFailed, match="source.conn_id 'no_such_db'"):
        ingestion.ingest(spec, DAY)


def test_a_sql_source_needs_a_sql_connection(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_SOME_FOLDER", f"fs://?path={tmp_path}")
    spec = _spec({"kind": "sql", "conn_id": "some_folder", "query": "SELECT * FROM t WHERE day = %(ds)s"})

    with pytest.raises(ingestion.SourceFailed, match="not a SQL connection"):
        ingestion.ingest(spec, DAY)


def test_sql_parameters_are_dates_bound_by_the_driver():
    assert ingestion.sql_parameters("2026-03-01") == {
        "ds": DAY, "next_ds": dt.date(2026, 3, 2), "ds_nodash": "20260301",
    }


# ---- the spec ------------------------------------------------------------------------------


def _load(tmp_path, source: dict, **top) -> ModelSpec:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["source"] = source
    data.update(top)
    path = tmp_path / "late_delivery.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_spec(path)


@pytest.mark.parametrize(
    ("source", "field", "needle"),
    [
        ({"kind": "python", "callable": "user_sources.daily"}, "source.callable", "not a function path"),
        ({"kind": "python", "callable": "os.system('rm -rf /'):x"}, "source.callable", "not a function path"),
        ({"kind": "sql", "conn_id": "pg", "query": "SELECT * FROM t WHERE day = '{ds}'"}, "source.query", "bind it"),
        ({"kind": "sql", "conn_id": "pg", "query": "SELECT * FROM t"}, "source.query", "bound date"),
        ({"kind": "sql", "query": "SELECT * FROM t WHERE day = %(ds)s"}, "source.conn_id", "Field required"),
        ({"kind": "ftp", "path": "/x/{ds}.csv"}, "source", "kind must be one of 'file', 'sql', 'python'"),
        ({"kind": "file", "path": "memory://feeds/latest.csv"}, "source.path", "{ds}"),
        ({"kind": "python", "callable": "a.b:c", "path": "/x/{ds}.csv"}, "source.path", "Extra inputs"),
    ],
)
def test_a_bad_source_names_the_field(tmp_path, source, field, needle):
    with pytest.raises(SpecError) as err:
        _load(tmp_path, source)
    assert f"{field}:" in str(err.value) and needle in str(err.value), str(err.value)


def test_each_source_kind_parses_into_its_own_type(tmp_path):
    from mlops_lifecycle.spec import FileSourceSpec, PythonSourceSpec, SqlSourceSpec

    file_spec = _load(tmp_path, {"path": "s3://bucket/{ds}/*.parquet", "conn_id": "aws_default"})
    sql = _load(tmp_path, {"kind": "sql", "conn_id": "pg", "query": "SELECT * FROM t WHERE d = :ds"})
    python = _load(tmp_path, {"kind": "python", "callable": "pkg.mod:load_day", "wait_timeout_minutes": 30})

    assert isinstance(file_spec.source, FileSourceSpec) and file_spec.source.is_glob
    assert isinstance(sql.source, SqlSourceSpec) and isinstance(python.source, PythonSourceSpec)
    assert python.source.wait_timeout_minutes == 30
    with pytest.raises(ValueError, match="no path template"):
        ingestion.source_path(sql, DAY)


def test_a_labels_section_takes_any_source_kind(tmp_path):
    spec = _load(tmp_path, {"path": "{data_dir}/landing/{ds}.parquet"}, labels={
        "source": {"kind": "sql", "conn_id": "pg", "query": "SELECT package_id, is_late FROM l WHERE day = %(ds)s"},
        "delay_days": 7,
    })
    assert spec.labels.source.kind == "sql" and spec.labels.delay_days == 7
    assert spec.labels_join_key == spec.entity_id

    with pytest.raises(SpecError, match="labels.join_key"):
        _load(tmp_path, {"path": "{data_dir}/landing/{ds}.parquet"},
              labels={"source": {"path": "/l/{ds}.csv"}, "join_key": "nope"})
    with pytest.raises(SpecError, match=r"labels\.source\.callable"):
        _load(tmp_path, {"path": "{data_dir}/landing/{ds}.parquet"},
              labels={"source": {"kind": "python", "callable": "nope"}})


def test_with_late_labels_a_batch_may_come_without_its_target(data_dir):
    spec = _spec({"path": "{data_dir}/landing/{ds}.parquet"},
                 labels={"source": {"path": "{data_dir}/labels/{ds}.csv"}, "delay_days": 2})
    frame = _day().drop(columns=[spec.target.column])
    lake.write_bytes(Path(ingestion.source_path(spec, DAY)), _parquet(frame))

    ingestion.ingest(spec, DAY)

    raw = _raw(spec)
    assert spec.target.column in raw.columns and raw[spec.target.column].isna().all()
