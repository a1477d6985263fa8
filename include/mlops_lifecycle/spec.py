"""The model spec: one YAML file per model, parsed into a typed, validated object.

A spec says everything the DAGs need to know about a model: where its data comes
from, what valid data looks like, how to train and judge it, when drift counts and
when to retrain. Errors name the file and the field (``SpecError``), so a broken
spec shows as an import error of its own DAGs in the Airflow UI and nowhere else.

Only ``pydantic`` and ``yaml`` are imported here: this module is read at DAG-parse time.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_lifecycle import config

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

# Metrics the trainer computes, and whether larger is better.
CLASSIFICATION_METRICS = {"roc_auc": True, "log_loss": False, "f1": True, "precision": True, "recall": True, "accuracy": True}
REGRESSION_METRICS = {"rmse": False, "mae": False, "r2": True}


class SpecError(ValueError):
    """A spec file is missing, unreadable or invalid; the message names the file and the fields."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One input column: its type and what valid values look like."""

    name: str
    type: Literal["float", "int", "category", "bool"]
    description: str = ""
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    nullable: bool = False
    max_null_fraction: float = Field(0.0, ge=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _column_name(cls, v: str) -> str:
        if not COLUMN.match(v):
            raise ValueError(f"{v!r} is not a plain column name (letters, digits, underscore)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if self.type == "category" and not self.categories:
            raise ValueError(f"feature {self.name!r} has type category but no 'categories' list")
        if self.type != "category" and self.categories:
            raise ValueError(f"feature {self.name!r} lists categories but its type is {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} is greater than max {self.max}")
        if not self.nullable and self.max_null_fraction > 0:
            raise ValueError(f"feature {self.name!r}: max_null_fraction needs nullable: true")
        return self


class SourceSpec(_Strict):
    """Where a day's raw batch comes from.

    ``path`` is a template: ``{ds}`` (YYYY-MM-DD), ``{ds_nodash}``, ``{model}`` and
    ``{data_dir}`` (the ``MLOPS_DATA_DIR`` root) are filled in for each logical date.
    """

    kind: Literal["file"] = "file"
    path: str
    format: Literal["parquet", "csv"] | None = None
    wait_timeout_minutes: int = Field(0, ge=0, description="How long to wait for a missing partition.")

    @field_validator("path")
    @classmethod
    def _has_date(cls, v: str) -> str:
        if "{ds}" not in v and "{ds_nodash}" not in v:
            raise ValueError("the path template must contain {ds} or {ds_nodash} so each day reads its own file")
        return v

    def resolved_format(self) -> str:
        """The file format, from ``format`` or the template's suffix."""
        if self.format:
            return self.format
        return "csv" if self.path.lower().endswith(".csv") else "parquet"


class TargetSpec(_Strict):
    """The label column and the kind of model."""

    column: str
    task: Literal["binary_classification", "regression"]
    min: float | None = None
    max: float | None = None


class ValidationSpec(_Strict):
    """Batch-level checks, beyond the per-feature ones."""

    min_rows: int = Field(1, ge=1)
    max_rows: int | None = None
    volume_lookback_days: int = Field(7, ge=1)
    volume_max_ratio: float = Field(3.0, gt=1.0, description="Fail when rows > ratio x median of recent days.")
    volume_min_ratio: float = Field(0.3, gt=0.0, lt=1.0, description="Fail when rows < ratio x median.")
    unique_entity_id: bool = True
    event_time_in_partition: bool = True


class TrainingSpec(_Strict):
    """How the training window is assembled, split and fitted."""

    window_days: int = Field(60, ge=3)
    validation_days: int = Field(2, ge=1)
    holdout_days: int = Field(2, ge=1)
    min_rows: int = Field(500, ge=10)
    seed: int = 42
    slice_column: str | None = None
    early_stopping_rounds: int = Field(20, ge=1)
    xgboost: dict[str, Any] = Field(default_factory=dict)
    max_model_size_mb: float = Field(50.0, gt=0)
    max_latency_ms_per_1k_rows: float = Field(200.0, gt=0)
    reference_rows: int = Field(5000, ge=100, description="Rows of the holdout kept as drift reference.")


class PromotionSpec(_Strict):
    """When a challenger may replace the champion."""

    metric: str
    margin: float = Field(0.0, ge=0.0, description="A challenger must beat the champion by at least this.")
    floor: float | None = Field(None, description="Absolute value the metric must clear.")
    mode: Literal["auto", "manual"] = "auto"


class DriftSpec(_Strict):
    """What counts as drift (Evidently's DataDriftPreset settings)."""

    columns: list[str] | None = None
    method: str | None = None
    threshold: float | None = None
    drift_share: float = Field(0.5, gt=0.0, le=1.0)
    include_prediction: bool = True
    max_metric_drop: float | None = Field(
        None, ge=0.0, description="Concept drift: retrain when the labelled metric falls this much below holdout."
    )


class RetrainingSpec(_Strict):
    """When drift is allowed to start a retraining run."""

    cooldown_days: int = Field(7, ge=0)
    drift_days_required: int = Field(1, ge=1, description="Consecutive drifted days before retraining.")
    min_rows: int = Field(500, ge=1)


class ModelSpec(_Strict):
    """Everything the DAG factory and the stage modules know about one model."""

    name: str
    owner: str
    description: str
    schedule: str | None = "@daily"
    start_date: dt.date
    tags: list[str] = Field(default_factory=list)
    retries: int = Field(1, ge=0)
    retry_delay_minutes: float = Field(5, ge=0)
    registered_model_name: str | None = None
    source: SourceSpec
    entity_id: str
    event_time: str
    target: TargetSpec
    features: list[FeatureSpec] = Field(min_length=1)
    validation: ValidationSpec = ValidationSpec()
    training: TrainingSpec = TrainingSpec()
    promotion: PromotionSpec
    drift: DriftSpec = DriftSpec()
    retraining: RetrainingSpec = RetrainingSpec()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not IDENTIFIER.match(v):
            raise ValueError(
                f"{v!r} is not a safe model name: use lower-case letters, digits and underscores, "
                "starting with a letter (it becomes DAG ids, folder names and a registry name)"
            )
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> ModelSpec:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"features are listed twice: {dupes}")
        reserved = {self.entity_id, self.event_time, self.target.column}
        clash = sorted(reserved.intersection(names))
        if clash:
            raise ValueError(f"entity_id/event_time/target also listed as features: {clash}")
        known = self.metric_directions()
        if self.promotion.metric not in known:
            raise ValueError(
                f"promotion.metric {self.promotion.metric!r} is not computed for {self.target.task}; "
                f"choose one of {sorted(known)}"
            )
        if self.training.slice_column and self.training.slice_column not in names:
            raise ValueError(f"training.slice_column {self.training.slice_column!r} is not a feature")
        for col in self.drift.columns or []:
            if col not in names:
                raise ValueError(f"drift.columns names {col!r}, which is not a feature")
        window_needed = self.training.validation_days + self.training.holdout_days + 1
        if self.training.window_days < window_needed:
            raise ValueError(f"training.window_days must be at least {window_needed} (validation + holdout + 1)")
        return self

    # ---- derived views -------------------------------------------------
    @property
    def model_name(self) -> str:
        """Name of the model in the MLflow registry."""
        return self.registered_model_name or self.name

    @property
    def is_classifier(self) -> bool:
        return self.target.task == "binary_classification"

    def metric_directions(self) -> dict[str, bool]:
        """Metric name -> True when larger is better, for this task type."""
        return CLASSIFICATION_METRICS if self.is_classifier else REGRESSION_METRICS

    def higher_is_better(self, metric: str | None = None) -> bool:
        return self.metric_directions()[metric or self.promotion.metric]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def drift_columns(self) -> list[str]:
        return list(self.drift.columns or self.feature_names)

    def feature(self, name: str) -> FeatureSpec:
        return next(f for f in self.features if f.name == name)


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"invalid model spec {path}:"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {field}: {e['msg']}")
    return "\n".join(lines)


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate one spec file.

    Raises:
        SpecError: the file is missing, is not YAML, or breaks the schema; the message
            names the file and every offending field.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read model spec {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"model spec {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"model spec {path} must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(path, exc)) from None
    if path.stem != spec.name:
        raise SpecError(f"model spec {path}: name {spec.name!r} must match the file name {path.stem!r}")
    return spec


def spec_paths(folder: str | Path | None = None) -> list[Path]:
    """All ``*.yaml``/``*.yml`` spec files in the folder, in a stable order."""
    folder = Path(folder) if folder else config.specs_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and not p.name.startswith("."))


def get_spec(name: str, folder: str | Path | None = None) -> ModelSpec:
    """Load the spec of one model by name.

    Raises:
        SpecError: no spec with that name, or it is invalid.
    """
    if not IDENTIFIER.match(name):
        raise SpecError(f"{name!r} is not a valid model name")
    for path in spec_paths(folder):
        if path.stem == name:
            return load_spec(path)
    raise SpecError(f"no model spec named {name!r} in {Path(folder) if folder else config.specs_dir()}")


def check_all(folder: str | Path | None = None) -> tuple[list[ModelSpec], list[str]]:
    """Load every spec; return the valid ones and one error message per broken file."""
    specs: list[ModelSpec] = []
    errors: list[str] = []
    for path in spec_paths(folder):
        try:
            specs.append(load_spec(path))
        except SpecError as exc:
            errors.append(str(exc))
    return specs, errors
