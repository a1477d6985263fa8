"""The model spec: one YAML file per model, parsed into a typed, validated object.

A spec says everything the DAGs need to know about a model: where its data comes
from, what valid data looks like, how to train and judge it, when drift counts and
when to retrain. Errors name the file and the field (``SpecError``), so a broken
spec shows as an import error of its own DAGs in the Airflow UI and nowhere else.

Only ``pydantic`` and ``yaml`` are imported here: this module is read at DAG-parse time
(``croniter``, an Airflow dependency the DAG factory loads anyway, only for a cron schedule).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlops_lifecycle import config

# \Z, not $: "$" also matches before a trailing newline, and these names become paths.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
REGISTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
# "package.module:function": plain dotted identifiers only, so a spec names code, never runs it.
FUNCTION_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*\Z")

# Metrics the trainer computes, and whether larger is better.
CLASSIFICATION_METRICS = {"roc_auc": True, "log_loss": False, "f1": True, "precision": True, "recall": True, "accuracy": True}
REGRESSION_METRICS = {"rmse": False, "mae": False, "r2": True}
# The values each metric can take (None: unbounded): a floor outside them can never be cleared.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    **{m: (0.0, 1.0) for m in ("roc_auc", "f1", "precision", "recall", "accuracy")},
    **{m: (0.0, None) for m in ("log_loss", "rmse", "mae")},
    "r2": (None, 1.0),
}

# What Airflow 3.3 accepts as a DAG's schedule string (airflow.sdk.definitions.dag._create_timetable):
# "@once" and "@continuous", its cron presets (timetables/_cron.py CRON_PRESETS), and any expression
# croniter parses (5 to 7 fields, or one of croniter's own aliases such as @midnight). None: no schedule.
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")

# Placeholders of a file source's path template, filled in by ingestion.source_path.
PATH_PLACEHOLDERS = ("ds", "ds_nodash", "model", "data_dir")


class SpecError(ValueError):
    """A spec file is missing, unreadable or invalid; the message names the file and the fields."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One input column: its type and what valid values look like."""

    name: str
    type: Literal["float", "int", "category", "bool"]
    description: str = ""
    min: float | None = Field(None, description="Impossible below: a value under it blocks the day.")
    max: float | None = Field(None, description="Impossible above: a value over it blocks the day.")
    # Severities: min/max and max_null_fraction block (quarantine); the plausible band and
    # warn_null_fraction only warn (an alert is recorded, the day is scored), so a season the
    # sample did not hold, or a join that left a few more nulls, does not cost a day.
    plausible_min: float | None = Field(None, description="Plausible below: a value under it warns.")
    plausible_max: float | None = Field(None, description="Plausible above: a value over it warns.")
    categories: list[str] | None = None
    max_unknown_fraction: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Share of a day's rows that may hold a category not in 'categories': up to it the day "
        "warns and those rows are scored through the unknown level; above it the day is blocked. 0: any "
        "unknown category blocks.",
    )
    max_levels: int | None = Field(
        None, ge=1,
        description="Built-in encoding: the first max_levels categories get a 0/1 column each; every other "
        "value (a rarer listed category or one never seen) goes to one '<name>__other' column. None: one "
        "column per category and no other column.",
    )
    nullable: bool = False
    max_null_fraction: float = Field(0.0, ge=0.0, le=1.0)
    warn_null_fraction: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Warn (do not block) when a day's null share exceeds it; max_null_fraction still blocks.",
    )
    may_be_constant: bool = Field(
        False,
        description="Allow a daily batch in which this column holds one value (a calendar or weather "
        "column); otherwise a constant column is rejected as a broken feed.",
    )

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
        _check_bands(f"feature {self.name!r}", self)
        if self.type != "category" and (self.max_unknown_fraction or self.max_levels is not None):
            raise ValueError(f"feature {self.name!r}: max_unknown_fraction and max_levels apply to categories only")
        if self.warn_null_fraction is not None and not self.nullable:
            raise ValueError(f"feature {self.name!r}: warn_null_fraction needs nullable: true")
        return self


def _check_bands(what: str, f: Any) -> None:
    """The plausible band (warns) must lie inside the impossible limits (block) and be ordered."""
    lo, hi = f.plausible_min, f.plausible_max
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{what}: plausible_min {lo} is greater than plausible_max {hi}")
    for name, value in (("plausible_min", lo), ("plausible_max", hi)):
        if value is None:
            continue
        if f.min is not None and value < f.min:
            raise ValueError(f"{what}: {name} {value} is below min {f.min} (min is the impossible limit)")
        if f.max is not None and value > f.max:
            raise ValueError(f"{what}: {name} {value} is above max {f.max} (max is the impossible limit)")


def _check_schedule(v: str | None) -> str | None:
    """Accept exactly the schedules Airflow accepts, so a typo fails here, naming the field."""
    if v is None or v in SCHEDULE_PRESETS:
        return v
    from croniter import croniter  # only for a cron expression; Airflow imports it to build the DAG anyway

    try:
        croniter(v)
    except Exception as exc:  # noqa: BLE001 - whatever croniter refuses, Airflow refuses
        hint = "; for no schedule write null, unquoted" if v.strip().lower() == "none" else ""
        raise ValueError(
            f"{v!r} is not a schedule Airflow accepts ({exc}): use a preset ({', '.join(SCHEDULE_PRESETS)}) "
            f"or a cron expression such as '0 12 * * *' (every day at noon){hint}"
        ) from None
    return v


def _check_path_template(v: str) -> str:
    """A path template may use only :data:`PATH_PLACEHOLDERS`, as they are, and must name the day."""
    allowed = ", ".join(f"{{{name}}}" for name in PATH_PLACEHOLDERS)
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(v) if name is not None]
    except ValueError as exc:
        raise ValueError(f"{v!r} is not a valid template ({exc}); write a literal brace as {{{{ or }}}}") from None
    bad = []
    for name, spec, conv in fields:
        shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
        if name not in PATH_PLACEHOLDERS:
            base = re.split(r"[.\[]", name, maxsplit=1)[0]
            bad.append(f"{shown} (attribute or index access is not allowed)" if base in PATH_PLACEHOLDERS
                       else f"{shown} (unknown)")
        elif spec or conv:
            bad.append(f"{shown} (no conversion or format spec is allowed)")
    if bad:
        raise ValueError(f"the path template may use only {allowed}, as they are; not {', '.join(bad)}")
    if not {"ds", "ds_nodash"} & {name for name, _, _ in fields}:
        raise ValueError("the path template must contain {ds} or {ds_nodash} so each day reads its own file")
    return v


def _check_function_path(v: str | None) -> str | None:
    """Validate a ``package.module:function`` reference (shared by every field that names code)."""
    if v is not None and not FUNCTION_PATH.match(v):
        raise ValueError(
            f"{v!r} is not a function path: write 'package.module:function' (dotted module, a colon, a function name)"
        )
    return v


# Bound parameters a SQL source query may use, in the driver's named style: %(ds)s (psycopg,
# MySQL) or :ds (SQLite, Oracle). Never a {ds} template: the date is bound, not pasted in.
SQL_PARAMETERS = ("ds", "next_ds", "ds_nodash")
_SQL_PARAMETER = re.compile(r"%\((ds|next_ds|ds_nodash)\)s|(?<![:\w]):(ds|next_ds|ds_nodash)\b")


class _SourceBase(_Strict):
    wait_timeout_minutes: float = Field(
        0, ge=0, description="How long the daily DAG waits for a missing partition; 0 checks once."
    )


class FileSourceSpec(_SourceBase):
    """Files: one a day, or a glob of several a day, on a local disk or any fsspec URL.

    ``path`` is a template: ``{ds}`` (YYYY-MM-DD), ``{ds_nodash}``, ``{model}`` and
    ``{data_dir}`` (the ``MLOPS_DATA_DIR`` root) are filled in for each logical date.
    A ``*``, ``?`` or ``[...]`` makes it a glob: every matching file, in name order.
    """

    kind: Literal["file"] = "file"
    path: str
    format: Literal["parquet", "csv"] | None = None
    conn_id: str | None = Field(
        None, min_length=1,
        description="Airflow connection that opens the URL through Airflow's object storage (credentials "
        "stay in the connection); None: fsspec's own configuration.",
    )
    # CSV dialect, declared rather than sniffed: a feed that changes its delimiter or
    # encoding is rejected with a message saying what was found, not silently re-read.
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV field separator.")
    encoding: str = Field("utf-8", description="CSV text encoding (a Python codec name).")
    null_values: list[str] = Field(
        default_factory=lambda: [""],
        description="CSV field values that mean missing. Default: only an empty field. A feed that writes "
        "NULL or NA for missing lists them here; any other text in a number column is rejected.",
    )
    # Checked from the file's size before a byte is read, so a runaway export (a loop that
    # wrote the day ten thousand times) is refused in bounded memory, not loaded whole.
    max_bytes: int = Field(
        1 << 30, ge=1,
        description="Largest a day's file (or all of a glob's files together) may be, in bytes; a larger one "
        "is quarantined unread. Default 1 GiB; set it to a few times your largest day.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"{v!r} is not a known text encoding (e.g. utf-8, latin-1, utf-16)") from None
        return v

    @field_validator("path")
    @classmethod
    def _template(cls, v: str) -> str:
        return _check_path_template(v)

    def resolved_format(self) -> str:
        """The file format, from ``format`` or the template's suffix."""
        if self.format:
            return self.format
        return "csv" if self.path.lower().endswith(".csv") else "parquet"

    @property
    def is_glob(self) -> bool:
        """Whether the template names several files a day (a glob pattern)."""
        return any(c in self.path for c in "*?[")


class SqlSourceSpec(_SourceBase):
    """A query over an Airflow connection (any common-sql hook), with the day bound as parameters."""

    kind: Literal["sql"]
    conn_id: str = Field(min_length=1, description="Airflow connection id (e.g. postgres_default).")
    query: str = Field(min_length=1)

    @field_validator("query")
    @classmethod
    def _bound_date(cls, v: str) -> str:
        if re.search(r"\{(ds|ds_nodash|next_ds|model|data_dir)\}", v):
            raise ValueError(
                "the query must not paste the date in with {ds}: bind it as a parameter, "
                "%(ds)s (PostgreSQL, MySQL) or :ds (SQLite)"
            )
        if not _SQL_PARAMETER.search(v):
            raise ValueError(
                "the query must use the bound date so each day reads its own rows: "
                f"one of {', '.join(SQL_PARAMETERS)} as %(ds)s or :ds"
            )
        return v


class PythonSourceSpec(_SourceBase):
    """Anything else: ``package.module:function`` called as ``fn(ds, spec)`` -> DataFrame or None."""

    kind: Literal["python"]
    callable: str

    @field_validator("callable")
    @classmethod
    def _function_path(cls, v: str) -> str:
        return _check_function_path(v)


SOURCE_KINDS = ("file", "sql", "python")


def _source_kind(value: Any) -> str | None:
    # A source without ``kind`` is a file: specs written before the other kinds existed still load.
    if isinstance(value, dict):
        return value.get("kind", "file")
    return getattr(value, "kind", None)


SourceSpec = Annotated[
    Annotated[FileSourceSpec, Tag("file")] | Annotated[SqlSourceSpec, Tag("sql")]
    | Annotated[PythonSourceSpec, Tag("python")],
    Discriminator(
        _source_kind, custom_error_type="source_kind",
        custom_error_message="kind must be one of 'file', 'sql', 'python'",
    ),
]


class LabelsSpec(_Strict):
    """Labels that arrive apart from the features, ``delay_days`` after the day they label.

    The source's ``{ds}`` (or bound ``ds``) is the day the labels are *for*; the daily run
    of day D + ``delay_days`` reads them, joins them with the predictions of day D on
    ``join_key`` and measures concept drift.
    """

    source: SourceSpec
    delay_days: int = Field(1, ge=0, le=365, description="Days after the event day the labels arrive.")
    join_key: str | None = Field(None, description="Column shared by labels and rows; default: entity_id.")


class TargetSpec(_Strict):
    """The label column and the kind of model."""

    column: str
    task: Literal["binary_classification", "regression"]
    min: float | None = Field(None, description="Impossible below: a label under it blocks the day.")
    max: float | None = Field(None, description="Impossible above: a label over it blocks the day.")
    plausible_min: float | None = Field(None, description="Plausible below: a label under it warns.")
    plausible_max: float | None = Field(None, description="Plausible above: a label over it warns.")

    @model_validator(mode="after")
    def _bands(self) -> TargetSpec:
        _check_bands("target", self)
        return self


class ValidationSpec(_Strict):
    """Batch-level checks, beyond the per-feature ones."""

    min_rows: int = Field(1, ge=1)
    max_rows: int | None = None
    volume_lookback_days: int = Field(7, ge=1)
    volume_max_ratio: float = Field(3.0, gt=1.0, description="Fail when rows > ratio x median of recent days.")
    volume_min_ratio: float = Field(0.3, gt=0.0, lt=1.0, description="Fail when rows < ratio x median.")
    unique_entity_id: bool = True
    event_time_in_partition: bool = True
    # What the checks that can go either way do when they fail: block (quarantine the day) or
    # warn (record an alert, score the day). Schema, types, ids, event times, min_rows and a
    # volume collapse always block.
    on_constant_column: Literal["block", "warn"] = Field(
        "block", description="A feature holding one value all day (not may_be_constant): block or warn."
    )
    on_volume_spike: Literal["block", "warn"] = Field(
        "block", description="More rows than volume_max_ratio x the recent median: block or warn."
    )


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
    reference_rows: int = Field(
        5000, ge=100,
        description="Rows kept as each version's drift reference, sampled evenly over the weekdays of the last "
        "drift.reference_days days of the window.",
    )
    holdout_min_rows: int | None = Field(
        None, ge=1,
        description="Fewest labelled rows the holdout must hold: it takes more days back (up to holdout_max_days) "
        "until it has them, and a comparison with the champion on fewer says it was too small to decide. None: "
        "from the model's volume, 2000 rows or a fifth of the window's labelled rows when that is less.",
    )
    holdout_max_days: int | None = Field(
        None, ge=1,
        description="Most days the holdout may take to reach holdout_min_rows. None: a quarter of window_days "
        "(at least holdout_days).",
    )


class PromotionSpec(_Strict):
    """When a challenger may replace the champion.

    All comparisons are made on the challenger's holdout rows, scored by both models.
    A challenger is promoted only when it passes its model tests, clears ``floor``, beats
    the champion by at least ``margin``, wins the noise test (a paired bootstrap on the
    same rows: its gain must be positive in all but ``significance`` of
    ``bootstrap_resamples`` resamples, seeded with ``training.seed``), and does not
    regress on any ``protected_slices`` value of ``training.slice_column`` by more than
    ``max_slice_regression``. ``mode: manual`` parks a winner as ``challenger`` until approved.
    """

    metric: str
    margin: float = Field(0.0, ge=0.0, description="A challenger must beat the champion by at least this.")
    floor: float | None = Field(None, description="Absolute value the metric must clear.")
    mode: Literal["auto", "manual"] = "auto"
    significance: float | None = Field(
        0.05, gt=0.0, lt=0.5,
        description="Noise test: the largest share of paired bootstrap resamples in which the challenger "
        "may fail to beat the champion (a one-sided p-value). null turns the noise test off.",
    )
    bootstrap_resamples: int = Field(1000, ge=100, le=100_000, description="Resamples of the noise test.")
    protected_slices: list[str] = Field(
        default_factory=list,
        description="Values of training.slice_column on which the challenger may not be worse than the champion "
        "by more than max_slice_regression (nor unmeasurable: fewer than 30 holdout rows).",
    )
    max_slice_regression: float = Field(0.02, ge=0.0, description="Tolerated loss on a protected slice.")


class EmailChannel(_Strict):
    """E-mail through the SMTP provider's notifier and an Airflow connection."""

    conn_id: str = Field("smtp_default", min_length=1, description="Airflow connection id (type smtp).")
    to: list[str] = Field(min_length=1)
    from_email: str | None = Field(None, description="Default: the connection's from_email extra.")


class SlackChannel(_Strict):
    """Slack through the Slack provider's notifiers (apache-airflow-providers-slack)."""

    conn_id: str = Field(min_length=1, description="Airflow connection id (slack or slackwebhook).")
    webhook: bool = Field(False, description="true: an incoming-webhook connection; false: a Slack API token.")
    channel: str | None = Field(None, description="Channel for the API-token form.")


AlertKind = Literal["failure", "quarantine", "validation_warning", "drift", "promotion", "approval_needed", "rejection",
                    "rollback"]


class NotificationsSpec(_Strict):
    """Where alerts go besides the task log and the lake's ``events/alerts/`` (always written).

    Example::

        notifications:
          events: [failure, quarantine, drift, promotion, approval_needed, rollback]
          email: {conn_id: smtp_default, to: [ml-oncall@example.org]}
          slack: {conn_id: slack_alerts, webhook: true}
    """

    events: list[AlertKind] = Field(
        default_factory=lambda: ["failure", "quarantine", "drift", "promotion", "approval_needed", "rollback"],
        description="Alert kinds sent to the channels below (rejections and validation warnings are recorded but not sent by default).",
    )
    email: EmailChannel | None = None
    slack: SlackChannel | None = None


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
    min_labelled_rows: int = Field(
        30, ge=1,
        description="Fewest labelled rows of a day for its concept-drift metric; with fewer only the count is "
        "reported. A low-volume model needs a value a day can reach.",
    )
    watch_only: list[str] = Field(
        default_factory=list,
        description="Features whose drift is reported (report, summary, drifted_columns) but never counts toward "
        "the drift share, alerts or retraining: columns that move with the calendar or the weather.",
    )
    weight_by_importance: bool = Field(
        True,
        description="Weigh each drifted column by the champion's feature importance (XGBoost total gain, recorded "
        "at training): the drift share is the share of the model's importance that drifted. Off, or for a version "
        "without recorded importance: every column weighs the same.",
    )
    reference: Literal["same_weekday", "whole_weeks"] = Field(
        "same_weekday",
        description="What a day is compared with: the reference rows of the same weekday (a weekly pattern is not "
        "drift), or all of the reference, which covers whole weeks.",
    )
    reference_days: int = Field(
        14, ge=7,
        description="The reference is sampled from the last this-many days of the training window (whole weeks: "
        "use a multiple of 7; two weeks give each weekday two days and stay recent after a shift), not only from "
        "the validation and holdout days.",
    )
    episode_calm_days: int = Field(
        3, ge=1,
        description="An alert is raised once per episode: the first drifted or hurt day starts it, and it ends after "
        "this many calm days in a row; the days in between are reported, not alerted.",
    )
    episode_min_days: int = Field(
        3, ge=1,
        description="An episode pages once it holds this many drifted or hurt days (or asks for a retraining): "
        "one odd day is in the day's report, not in anyone's inbox.",
    )


class RetrainingSpec(_Strict):
    """When drift is allowed to start a retraining run."""

    cooldown_days: int = Field(7, ge=0)
    drift_days_required: int = Field(1, ge=1, description="Consecutive drifted days before retraining.")
    min_rows: int = Field(
        500,
        ge=1,
        description="Fewest validated rows on the drifted days before drift may start a retraining "
        "(the challenger needs shifted data to learn from).",
    )
    on_prediction_drift: bool = Field(
        False,
        description="Count a day whose predictions drifted (Evidently's drift test on the prediction column "
        "against the reference's out-of-sample predictions) as a drifted day, even when too few feature "
        "columns drifted. Off: prediction drift is reported and alerted on, but only feature drift and "
        "concept drift start a retraining.",
    )
    # Retraining on what hurts the model, measured once labels arrive (with the batch or late).
    on_metric_drop: bool = Field(
        True,
        description="Count a day whose labelled metric falls significantly below the champion's expected metric "
        "(its holdout value, with a bootstrap standard error scaled to the day's labelled rows) as a hurt day. "
        "drift.max_metric_drop, when set, is the smallest drop that counts.",
    )
    metric_significance: float = Field(
        0.05, gt=0.0, lt=0.5,
        description="One-sided p-value below which a day's metric drop counts (on_metric_drop).",
    )
    on_label_shift: bool = Field(
        True,
        description="Count a day whose label rate (positive rate; mean target for a regression) differs "
        "significantly from the training window's for that weekday as a hurt day: a test for the day's count "
        "that allows for the day-to-day spread seen in the training window.",
    )
    label_shift_significance: float = Field(
        0.05, gt=0.0, lt=0.5, description="Two-sided p-value below which a day's label rate counts as shifted.",
    )
    label_days_required: int = Field(
        3, ge=1,
        description="Consecutive labelled days hurt (metric drop or label shift) before they start a retraining: "
        "with the 5 % tests above, three days in a row happen by chance about once in 8,000 days.",
    )


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
    labels: LabelsSpec | None = None
    entity_id: str
    entity_id_type: Literal["string", "integer"] | None = Field(
        None,
        description="Type of the entity id values. Unset: the type of the model's validated days (the first "
        "validated day decides). Validation rejects a day whose ids have another type (6420 for 'C006420').",
    )
    event_time: str
    target: TargetSpec
    features: list[FeatureSpec] = Field(min_length=1)
    features_function: str | None = Field(
        None,
        description="'package.module:function' turning the validated frame into model inputs, for training and "
        "scoring alike; None: the built-in encoding (numbers as they are, one 0/1 column per category).",
    )
    validation: ValidationSpec = ValidationSpec()
    training: TrainingSpec = TrainingSpec()
    promotion: PromotionSpec
    drift: DriftSpec = DriftSpec()
    retraining: RetrainingSpec = RetrainingSpec()
    notifications: NotificationsSpec = NotificationsSpec()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not IDENTIFIER.match(v):
            raise ValueError(
                f"{v!r} is not a safe model name: use lower-case letters, digits and underscores, "
                "starting with a letter (it becomes DAG ids, folder names and a registry name)"
            )
        return v

    @field_validator("features_function")
    @classmethod
    def _function_path(cls, v: str | None) -> str | None:
        return _check_function_path(v)

    @field_validator("registered_model_name")
    @classmethod
    def _safe_registry_name(cls, v: str | None) -> str | None:
        # It goes into models:/ URIs and artifact locations: no separators, no "..".
        if v is not None and (not REGISTRY_NAME.match(v) or ".." in v):
            raise ValueError(f"{v!r} is not a safe registered model name: letters, digits, '_', '-' and '.' only")
        return v

    @field_validator("schedule")
    @classmethod
    def _airflow_schedule(cls, v: str | None) -> str | None:
        return _check_schedule(v)

    @model_validator(mode="after")
    def _cross_checks(self) -> ModelSpec:
        problems, _ = cross_field_problems(dict(self))
        if problems:
            raise PydanticCustomError(
                "cross_field", "{problems}", {"problems": "; ".join(f"{f}: {m}" for f, m in problems)}
            )
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

    @property
    def labels_join_key(self) -> str:
        """The column that joins late labels to the rows they label (default: the entity id)."""
        return (self.labels.join_key if self.labels else None) or self.entity_id

    def feature(self, name: str) -> FeatureSpec:
        return next(f for f in self.features if f.name == name)

    def sha256(self) -> str:
        """Content hash of the parsed spec (every field, defaults included): what a model
        version and a day's predictions record to say which spec made them."""
        import hashlib

        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


# ---- rules across fields ---------------------------------------------------------------
# Each rule names the top-level fields it reads and yields (field, message) pairs. They run on
# a valid spec (ModelSpec's model validator) and, when some fields are invalid, on those that
# are valid (load_spec), so one pass reports as much as it can.

_CrossCheck = Callable[[Any], Iterator[tuple[str, str]]]
_CROSS_CHECKS: list[tuple[tuple[str, ...], _CrossCheck]] = []


def _cross_check(*needs: str) -> Callable[[_CrossCheck], _CrossCheck]:
    def register(check: _CrossCheck) -> _CrossCheck:
        _CROSS_CHECKS.append((needs, check))
        return check

    return register


def _metrics_of(task: str) -> dict[str, bool]:
    return CLASSIFICATION_METRICS if task == "binary_classification" else REGRESSION_METRICS


@_cross_check("features")
def _features_listed_once(s: Any) -> Iterator[tuple[str, str]]:
    names = [f.name for f in s.features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        yield "features", f"features are listed twice: {dupes}"


@_cross_check("entity_id", "event_time", "target", "features")
def _reserved_columns(s: Any) -> Iterator[tuple[str, str]]:
    clash = sorted({s.entity_id, s.event_time, s.target.column}.intersection(f.name for f in s.features))
    if clash:
        yield "features", f"entity_id/event_time/target also listed as features: {clash}"


@_cross_check("target", "promotion")
def _metric_for_task(s: Any) -> Iterator[tuple[str, str]]:
    known = _metrics_of(s.target.task)
    if s.promotion.metric not in known:
        yield "promotion.metric", (f"{s.promotion.metric!r} is not computed for {s.target.task}; "
                                   f"choose one of {sorted(known)}")


@_cross_check("promotion")
def _reachable_floor(s: Any) -> Iterator[tuple[str, str]]:
    metric, floor = s.promotion.metric, s.promotion.floor
    if floor is None or metric not in METRIC_RANGES:
        return
    low, high = METRIC_RANGES[metric]
    if (low is not None and floor < low) or (high is not None and floor > high):
        span = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        yield "promotion.floor", f"{floor} can never be reached: {metric} lies in {span}"


@_cross_check("training", "features")
def _slice_is_a_feature(s: Any) -> Iterator[tuple[str, str]]:
    if s.training.slice_column and s.training.slice_column not in {f.name for f in s.features}:
        yield "training.slice_column", f"{s.training.slice_column!r} is not a feature"


@_cross_check("promotion", "training", "features")
def _protected_slices_exist(s: Any) -> Iterator[tuple[str, str]]:
    protected, column = s.promotion.protected_slices, s.training.slice_column
    if not protected:
        return
    if not column:
        yield "promotion.protected_slices", "needs training.slice_column"
        return
    feature = next((f for f in s.features if f.name == column), None)
    known = (feature.categories if feature else None) or protected
    unknown = sorted(set(protected) - set(known))
    if unknown:
        yield "promotion.protected_slices", f"{unknown} are not categories of {column!r}"


@_cross_check("labels", "entity_id", "features")
def _join_key_exists(s: Any) -> Iterator[tuple[str, str]]:
    if s.labels and s.labels.join_key not in (None, s.entity_id, *(f.name for f in s.features)):
        yield "labels.join_key", f"{s.labels.join_key!r} is neither the entity_id nor a feature"


@_cross_check("drift", "features")
def _drift_columns_exist(s: Any) -> Iterator[tuple[str, str]]:
    unknown = [c for c in s.drift.columns or [] if c not in {f.name for f in s.features}]
    if unknown:
        yield "drift.columns", f"names {unknown}, which are not features"


@_cross_check("drift", "features")
def _watch_only_columns_exist(s: Any) -> Iterator[tuple[str, str]]:
    unknown = [c for c in s.drift.watch_only if c not in {f.name for f in s.features}]
    if unknown:
        yield "drift.watch_only", f"names {unknown}, which are not features"


@_cross_check("training")
def _window_holds_the_splits(s: Any) -> Iterator[tuple[str, str]]:
    needed = s.training.validation_days + s.training.holdout_days + 1
    if s.training.window_days < needed:
        yield "training.window_days", f"must be at least {needed} (validation + holdout + 1)"


def cross_field_problems(fields: dict[str, Any]) -> tuple[list[tuple[str, str]], bool]:
    """Run every rule across fields whose fields are all in ``fields`` (valid, typed values).

    Returns:
        The (field, message) problems found, and whether some rule could not run because a
        field it reads is missing from ``fields`` (invalid), so fixing those may reveal more.
    """
    view = SimpleNamespace(**fields)
    problems: list[tuple[str, str]] = []
    skipped = False
    for needs, check in _CROSS_CHECKS:
        if all(n in fields for n in needs):
            problems.extend(check(view))
        else:
            skipped = True
    return problems, skipped


@functools.cache
def _field_adapter(name: str) -> TypeAdapter:
    info = ModelSpec.model_fields[name]
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)


def _valid_fields(raw: dict[str, Any], invalid: set[str]) -> dict[str, Any]:
    """The top-level fields of ``raw`` that validate on their own (or their defaults), typed."""
    out: dict[str, Any] = {}
    for name, info in ModelSpec.model_fields.items():
        if name in invalid:
            continue
        if name not in raw:
            if not info.is_required():
                out[name] = info.get_default(call_default_factory=True)
            continue
        try:
            out[name] = _field_adapter(name).validate_python(raw[name])
        except ValidationError:
            continue
    return out


def _error_field(error: dict[str, Any]) -> str:
    loc = list(error["loc"])
    # A source's kind appears in the location as a union tag: "source.path", not "source.file.path".
    loc = [p for i, p in enumerate(loc) if not (p in SOURCE_KINDS and i and loc[i - 1] == "source")]
    return ".".join(str(p) for p in loc) or "(top level)"


def _field_errors(err: ValidationError) -> list[tuple[str, str]]:
    return [(_error_field(e), e["msg"].removeprefix("Value error, ")) for e in err.errors()]


def _format_validation_error(path: Path, err: ValidationError) -> str:
    """The errors of one validation, as :func:`format_problems` shows them (the scaffolder's check)."""
    return format_problems(path, _field_errors(err))


def format_problems(path: str | Path, problems: list[tuple[str, str]], *, more_may_follow: bool = False) -> str:
    """The one shape of a spec's error message: the file, then one ``- field: problem`` line each."""
    lines = [f"invalid model spec {path}:", *(f"  - {field}: {msg}" for field, msg in problems)]
    if more_may_follow:
        lines.append("  (more problems may be reported once these are fixed: some rules read the fields above)")
    return "\n".join(lines)


# ---- limits checked before a spec is parsed ------------------------------------------------
# The DAG processor parses every spec on every pass of the DAG file (30 s for all of them), and
# `mlops check` reads them too: a spec is a page of settings, so anything far larger or deeper
# is refused before PyYAML or pydantic spend time on it (a 4.7 MB tags list took every model's
# DAGs down; a 5,000-level nesting crashed the check with a RecursionError). The largest real
# spec is a few KB; these leave room for hundreds of features with long category lists.
MAX_SPEC_BYTES = 256 * 1024
MAX_SPEC_DEPTH = 20
MAX_SPEC_NODES = 50_000


def read_spec_text(path: str | Path) -> str:
    """The text of a spec file, checked before any parsing: at most :data:`MAX_SPEC_BYTES`
    bytes on disk (never more is read), UTF-8, and YAML no deeper than :data:`MAX_SPEC_DEPTH`
    with at most :data:`MAX_SPEC_NODES` nodes, aliases counted as what they expand to.

    Raises:
        SpecError: naming the file and the limit it breaks.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read model spec {path}: {exc}") from exc
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"model spec {path} is larger than {MAX_SPEC_BYTES // 1024} KiB; a spec is settings, "
                        "not data (move long lists into the data or a feature function)")
    if b"\0" in data:  # valid UTF-8, but never in a text file: UTF-16 or a binary file
        raise SpecError(f"model spec {path} is not UTF-8 text: it holds NUL bytes (UTF-16, or not text at all); "
                        "save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"model spec {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start} ({exc.reason}); save it as UTF-8") from None
    _check_yaml_shape(path, text)
    return text


def _check_yaml_shape(path: Path, text: str) -> None:
    """Walk the YAML event stream (no recursion, no objects built) and refuse a document
    nested deeper than :data:`MAX_SPEC_DEPTH` or holding more than :data:`MAX_SPEC_NODES`
    nodes once aliases are expanded (what pydantic would then walk)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth, nodes = 0, 0
    anchors: dict[str, int] = {}  # anchor -> the nodes it stands for
    open_anchors: list[tuple[str | None, int]] = []  # per open collection: its anchor, nodes before it
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                nodes += anchors.get(event.anchor, 1)
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if event.anchor:
                    anchors[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                nodes += 1
                open_anchors.append((event.anchor, nodes - 1))
                if depth > MAX_SPEC_DEPTH:
                    raise SpecError(f"model spec {path} nests deeper than {MAX_SPEC_DEPTH} levels "
                                    f"(line {event.start_mark.line + 1}); a spec needs a handful")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                anchor, before = open_anchors.pop()
                if anchor:
                    anchors[anchor] = nodes - before
            if nodes > MAX_SPEC_NODES:
                raise SpecError(f"model spec {path} holds more than {MAX_SPEC_NODES:,} values (aliases expanded); "
                                "a spec is settings, not data")
    except yaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own depth limit, met first
            raise SpecError(f"model spec {path} nests deeper than {MAX_SPEC_DEPTH} levels "
                            f"({exc.problem}); a spec needs a handful") from None
        raise SpecError(f"model spec {path} is not valid YAML: {exc}") from exc


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate one spec file.

    Raises:
        SpecError: the file is missing, too large or deep (:func:`read_spec_text`), not
            UTF-8, is not YAML, or breaks the schema; the message names the file and every
            offending field: field errors and, for the fields that are valid, the rules
            across fields too.
    """
    path = Path(path)
    text = read_spec_text(path)
    try:
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise SpecError(f"model spec {path} is not valid YAML: {exc}") from exc
    except RecursionError:  # the shape check bounds the depth; this is the last guard
        raise SpecError(f"model spec {path} nests too deeply") from None
    if not isinstance(raw, dict):
        raise SpecError(f"model spec {path} must be a YAML mapping, got {type(raw).__name__}")
    problems: list[tuple[str, str]] = []
    more = False
    try:
        spec = ModelSpec.model_validate(raw)
    except ValidationError as exc:
        # Pydantic runs the model validator only on a fully valid spec: run the rules across
        # fields here on the fields that are valid, and say so when some could not run.
        invalid = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        cross, more = cross_field_problems(_valid_fields(raw, invalid))
        problems = [p for p, e in zip(_field_errors(exc), exc.errors(), strict=True) if e["type"] != "cross_field"]
        problems += cross
    name = raw.get("name")
    if isinstance(name, str) and IDENTIFIER.match(name) and name != path.stem:
        problems.append(("name", f"{name!r} must match the file name {path.stem!r} (the DAG factory finds a "
                                 "model's DAGs by its file name)"))
    if problems:
        raise SpecError(format_problems(path, problems, more_may_follow=more))
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


def audit_folder(folder: str | Path | None = None) -> tuple[dict[Path, ModelSpec], dict[Path, str]]:
    """Load every spec of the folder and check them against each other: the one rule set
    that both ``mlops check`` and the DAG factory apply.

    Returns:
        The valid specs by file, and one error message per broken file. Two files naming
        one model, or one MLflow registered model, are both broken: they would share DAG ids
        or overwrite each other's versions and aliases (one model's rollback would move the
        other's champion).
    """
    loaded: dict[Path, ModelSpec] = {}
    broken: dict[Path, str] = {}
    for path in spec_paths(folder):
        try:
            loaded[path] = load_spec(path)
        except SpecError as exc:
            broken[path] = str(exc)
    clashes: dict[Path, list[tuple[str, str]]] = {}
    for what, key in (("model", lambda s: s.name), ("MLflow registered model", lambda s: s.model_name)):
        owners: dict[str, list[tuple[Path, ModelSpec]]] = {}
        for path, spec in loaded.items():
            owners.setdefault(key(spec), []).append((path, spec))
        for value, group in owners.items():
            for path, spec in group if len(group) > 1 else ():
                if what != "model" and path in clashes:
                    continue  # one model in two files: its registered model clashes too, needless to say
                field = "registered_model_name" if what != "model" and spec.registered_model_name else "name"
                others = ", ".join(p.name for p, _ in group if p != path)
                clashes.setdefault(path, []).append((field, f"{what} {value!r} is also defined by {others}"))
    for path, problems in clashes.items():
        broken[path] = format_problems(path, problems)
        del loaded[path]
    return loaded, broken


def load_all(folder: str | Path | None = None) -> tuple[list[tuple[Path, ModelSpec]], list[str]]:
    """Load every spec of the folder, and check them against each other (:func:`audit_folder`).

    Returns:
        The valid specs with their files, and one error message per broken file (files
        that fail on their own first, then the clashes between files).
    """
    loaded, broken = audit_folder(folder)
    return list(loaded.items()), list(broken.values())


def check_all(folder: str | Path | None = None) -> tuple[list[ModelSpec], list[str]]:
    """Load every spec; return the valid ones and one error message per broken file (see :func:`load_all`)."""
    loaded, errors = load_all(folder)
    return [spec for _, spec in loaded], errors
