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
        (lambda d: d["promotion"].update(metric="rmse"), "(top level)", "not computed for binary_classification"),
        (lambda d: d["source"].update(path="/data/fixed.parquet"), "source.path", "{ds}"),
        (lambda d: d["features"][0].update(min=10, max=1), "features.0", "greater than max"),
        (lambda d: d.update(surprise=1), "surprise", "Extra inputs"),
        (lambda d: d["training"].update(slice_column="nope"), "(top level)", "slice_column"),
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
