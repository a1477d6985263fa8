"""The spec parser: good specs load; bad ones fail with the file and the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_lifecycle.spec import SpecError, check_all, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "dags" / "specs" / "late_delivery.yaml"


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_spec_loads_into_typed_object():
    spec = load_spec(EXAMPLE)
    assert spec.name == "late_delivery"
    assert spec.is_classifier and spec.higher_is_better()
    assert spec.feature("weather").categories[0] == "clear"
    assert spec.drift_columns == spec.feature_names


@pytest.mark.parametrize(
    ("mutate", "field", "needle"),
    [
        (lambda d: d.pop("promotion"), "promotion", "Field required"),
        (lambda d: d["features"][0].update(type="decimal"), "features.0.type", "Input should be"),
        (lambda d: d["features"][1].pop("categories"), "features.1", "no 'categories'"),
        (lambda d: d["promotion"].update(metric="rmse"), "promotion.metric", "not computed for binary_classification"),
        (lambda d: d["source"].update(path="/data/fixed.parquet"), "source.path", "{ds}"),
        (lambda d: d["features"][0].update(min=10, max=1), "features.0", "greater than max"),
        (lambda d: d.update(surprise=1), "surprise", "Extra inputs"),
        (lambda d: d["training"].update(slice_column="nope"), "training.slice_column", "not a feature"),
    ],
)
def test_bad_spec_names_file_and_field(tmp_path, mutate, field, needle):
    data = _example()
    mutate(data)
    path = _write(tmp_path, "late_delivery", data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert field in str(err.value) and needle in str(err.value)


@pytest.mark.parametrize("name", ["../escape", "Upper", "with-dash", "1starts_with_digit", "/abs"])
def test_unsafe_model_names_are_rejected(tmp_path, name):
    data = _example()
    data["name"] = name
    path = _write(tmp_path, "x", data)
    with pytest.raises(SpecError, match="not a safe model name"):
        load_spec(path)


def test_name_must_match_file(tmp_path):
    path = _write(tmp_path, "other_name", _example())
    with pytest.raises(SpecError, match="must match the file name"):
        load_spec(path)


def test_not_yaml_and_not_mapping(tmp_path):
    (tmp_path / "a.yaml").write_text("name: [unclosed")
    (tmp_path / "b.yaml").write_text("- just\n- a list\n")
    specs, errors = check_all(tmp_path)
    assert specs == [] and len(errors) == 2
    assert "not valid YAML" in errors[0] and "must be a YAML mapping" in errors[1]


# ---- schedule: exactly what Airflow accepts ------------------------------------------------

SCHEDULES_AIRFLOW_TAKES = [None, "@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly",
                           "@yearly", "@midnight", "0 12 * * *", "*/15 6-18 * * MON-FRI", "0 0 L * *", "0 0 * * 5#3",
                           "30 0 12 * * *"]
SCHEDULES_AIRFLOW_REFUSES = ["every day at noon", "@reboot", "@sometimes", "0 25 * * *", "61 * * * *", "", "None",
                             "H * * * *", "0 12 * *"]


@pytest.mark.parametrize("schedule", SCHEDULES_AIRFLOW_TAKES + SCHEDULES_AIRFLOW_REFUSES)
def test_spec_accepts_a_schedule_exactly_when_airflow_does(tmp_path, schedule):
    import datetime as dt

    from airflow.sdk import DAG

    try:  # built as the daily DAG is (one active run, which @continuous needs)
        DAG(dag_id="probe", schedule=schedule, max_active_runs=1, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).validate()
        airflow_takes = True
    except Exception:  # noqa: BLE001 - whatever Airflow raises for a schedule it refuses
        airflow_takes = False
    data = _example()
    data["schedule"] = schedule
    path = _write(tmp_path, "late_delivery", data)
    try:
        load_spec(path)
        spec_takes = True
    except SpecError as err:
        spec_takes = False
        assert str(path) in str(err) and "  - schedule: " in str(err) and "cron expression" in str(err)
    assert spec_takes == airflow_takes == (schedule in SCHEDULES_AIRFLOW_TAKES)


def test_schedule_presets_are_airflows():
    from airflow.sdk.definitions.timetables._cron import CRON_PRESETS

    from mlops_lifecycle.spec import SCHEDULE_PRESETS

    assert set(SCHEDULE_PRESETS) == {"@once", "@continuous", *CRON_PRESETS}


# ---- path templates: only the documented placeholders, as they are ------------------------


def _with_path(where: str, template: str) -> dict:
    data = _example()
    if where == "source.path":
        data["source"]["path"] = template
    else:
        data["labels"] = {"source": {"path": template}}
    return data


@pytest.mark.parametrize("where", ["source.path", "labels.source.path"])
@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{data_dir}/{region}/{ds}.parquet", "{region} (unknown)"),
        ("/in/{dt}.csv", "{dt} (unknown)"),
        ("{data_dir.parent.parent}/etc/{ds}.csv", "{data_dir.parent.parent} (attribute or index access"),
        ("{data_dir[0]}/{ds}.csv", "{data_dir[0]} (attribute or index access"),
        ("/in/{ds!r}.csv", "{ds!r} (no conversion or format spec"),
        ("/in/{ds:>12}.csv", "{ds:>12} (no conversion or format spec"),
        ("/in/{}/{ds}.csv", "{} (unknown)"),
        ("/in/{ds.csv", "not a valid template"),
    ],
)
def test_path_templates_take_only_the_documented_placeholders(tmp_path, where, template, needle):
    path = _write(tmp_path, "late_delivery", _with_path(where, template))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"  - {where}: " in str(err.value) and needle in str(err.value), str(err.value)
    if "unknown" in needle:
        assert "{ds}, {ds_nodash}, {model}, {data_dir}" in str(err.value)


@pytest.mark.parametrize(
    "template", ["{data_dir}/landing/{model}/{ds}.parquet", "s3://b/{ds_nodash}/*.csv", "/in/{{literal}}/{ds}.csv"]
)
def test_documented_placeholders_resolve(tmp_path, template, monkeypatch):
    from mlops_lifecycle import ingestion

    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    spec = load_spec(_write(tmp_path, "late_delivery", _with_path("source.path", template)))
    resolved = ingestion.source_path(spec, "2026-03-01")
    assert "{ds" not in resolved and ("2026-03-01" in resolved or "20260301" in resolved)


# ---- promotion floors the metric can reach -------------------------------------------------


@pytest.mark.parametrize(
    ("task", "metric", "floor"),
    [("binary_classification", "roc_auc", 5.0), ("binary_classification", "accuracy", -0.1),
     ("binary_classification", "f1", 1.01), ("binary_classification", "log_loss", -0.5),
     ("regression", "rmse", -1.0), ("regression", "mae", -0.01), ("regression", "r2", 1.5)],
)
def test_an_unreachable_floor_is_rejected(tmp_path, task, metric, floor):
    data = _example()
    data["target"]["task"] = task
    data["promotion"].update(metric=metric, floor=floor)
    path = _write(tmp_path, "late_delivery", data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and f"  - promotion.floor: {floor} can never be reached" in str(err.value)


@pytest.mark.parametrize(
    ("task", "metric", "floor"),
    [("binary_classification", "roc_auc", 1.0), ("binary_classification", "precision", 0.0),
     ("binary_classification", "log_loss", 0.4), ("regression", "rmse", 0.0), ("regression", "r2", -3.0),
     ("regression", "r2", 1.0), ("regression", "mae", 1e6)],
)
def test_a_reachable_floor_loads(tmp_path, task, metric, floor):
    data = _example()
    data["target"]["task"] = task
    data["promotion"].update(metric=metric, floor=floor)
    assert load_spec(_write(tmp_path, "late_delivery", data)).promotion.floor == floor


# ---- every problem in one pass --------------------------------------------------------------


def test_field_errors_and_cross_field_errors_are_reported_together(tmp_path):
    data = _example()
    data["features"][0]["type"] = "decimal"  # a field error
    data["schedule"] = "every day at noon"  # another
    data["promotion"]["floor"] = 5.0  # rules across fields, on fields that are valid
    data["training"]["window_days"] = 2
    data["drift"] = {"columns": ["nope"]}
    path = _write(tmp_path, "wrong_file_name", data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    for field in ("features.0.type", "schedule", "promotion.floor", "training.window_days", "name"):
        assert f"  - {field}: " in text, text
    # drift.columns is checked against the features, which are invalid: it cannot run yet, and it says so
    assert "drift.columns" not in text and "more problems may be reported once these are fixed" in text


def test_all_cross_field_errors_of_a_valid_schema_are_reported(tmp_path):
    data = _example()
    data["promotion"].update(metric="rmse", protected_slices=["atlantis"])
    data["training"].update(slice_column="nope", window_days=3, validation_days=2)
    data["drift"] = {"columns": ["distance_km", "nope", "nada"]}
    path = _write(tmp_path, "late_delivery", data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    for field in ("promotion.metric", "training.slice_column", "training.window_days", "drift.columns"):
        assert f"  - {field}: " in text, text
    assert "['nope', 'nada']" in text and "more problems may be reported" not in text
