"""Validation: the Great Expectations gate between the raw zone and everything else.

The expectation suite is built from the spec (:func:`build_suite`), so the YAML file
is the single source of truth for what valid data looks like:

- schema: exactly the declared columns (a missing, extra or renamed column fails);
- per feature: pandas type, allowed categories, min/max, nulls (``max_null_fraction``),
  and at least two distinct values (an all-constant column is a broken feed);
- entity ids present and unique (duplicate rows and duplicate ids fail), event times
  inside the day's partition (a UTC day), labels in range when present;
- volume: at least ``min_rows``, and within ``volume_min_ratio``..``volume_max_ratio``
  of the median of recent validated days.

Severities: each expectation carries GX's own ``severity``. A failed ``critical`` one blocks
(the batch is quarantined, as below); a failed ``warning`` one is reported in the result's
``warnings`` and the batch is validated and scored, with a ``validation_warning`` alert when
the warning starts an episode. Blocking: schema, types, ids, event times, ``min_rows``, a
volume collapse, values beyond ``min``/``max``, nulls beyond ``max_null_fraction``, unseen
categories beyond ``max_unknown_fraction``. Warning: the plausible band, nulls beyond
``warn_null_fraction``, unseen categories within their tolerated share, and, when the spec
says so, a constant column and a volume spike. A spec without those fields blocks on every
check.

A failing batch is moved to the quarantine zone with its validation result and
:class:`ValidationFailed` names every failed expectation with example bad values;
nothing downstream runs. A batch that passes is written to the validated zone. The
result of the batch a day stands on is kept as ``reports/validation/ds=<day>/result.json``
(a rejected re-delivery of a validated day leaves the accepted batch and its result in
place, see :mod:`mlops_lifecycle.lake`), and every result is rendered into the Great
Expectations Data Docs site under ``$MLOPS_DATA_DIR/data_docs/<model>``.

Event times with a time zone (any zone or unit) are converted to UTC and stored
without the zone in the validated zone (:func:`canonical_event_time`); raw and
quarantine keep the batch as delivered.

Why not ``GXValidateDataFrameOperator`` from the GX Airflow provider: it loads its
dataframe in ``__init__``, i.e. at every DAG parse. The suite here runs at execute time.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from mlops_lifecycle import lake
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)

# pandas dtype names accepted for each spec type (nullable ints read back as floats).
PANDAS_TYPES = {
    "float": ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "Float64", "Int64", "Int32"],
    "int": ["int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "Int64", "Int32", "float64"],
    "category": ["object", "str", "string", "category"],
    "bool": ["bool", "boolean"],
}
# Naive units only. GX 1.24 cannot match a timezone-aware dtype by name: its type check
# turns each name into a numpy dtype, which has no zone, so a 'datetime64[ns, UTC]'
# column failed against 'datetime64[ns, UTC]' itself ("observed Timestamp"). Aware
# event times are converted to naive UTC before the suite runs (canonical_event_time).
DATETIME_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]
MAX_EXAMPLES = 5
# The entity id's type (spec ``entity_id_type``, or the type of the validated days). Per
# value on an object column: GX checks each row's Python type there, so "str" alone
# rejects a 6420 among "C006420"s, where "object" would accept anything.
ID_TYPES = {
    "string": ["str", "string", "StringDtype"],
    "integer": ["int", "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "Int64", "Int32"],
}


class ValidationFailed(ValueError):
    """A batch broke its expectations. ``result`` holds the summary written to the lake."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


# ---- event times ----------------------------------------------------------------------


def canonical_event_time(spec: ModelSpec, frame: Any) -> tuple[Any, str | None]:
    """The frame with a timezone-aware event-time column converted to UTC and stored
    without its zone (the lake's convention: an event time without a zone is UTC), and
    the zone it came in (None when nothing was converted).

    Any zone and unit is converted: ``datetime64[us, Europe/Berlin]``, a fixed offset,
    ISO text ending in ``Z`` parsed by ingestion, or a column of aware timestamps with
    several offsets (a day across a DST change). Anything else (naive times, text,
    numbers, aware and naive times mixed) is returned as it is, for the suite to judge.
    Every validated day so holds the same kind of column, so days concatenate
    (training) and ``.dt.date`` is the UTC day the partition check uses.
    """
    import pandas as pd

    column = spec.event_time
    if column not in frame.columns:
        return frame, None
    values = frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        zone = str(values.dtype.tz)
        converted = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif values.dtype == object and len(present := values.dropna()) and all(
        isinstance(v, dt.datetime) and v.tzinfo is not None for v in present
    ):
        zone = ", ".join(sorted({str(v.tzinfo) for v in present})[:3])
        converted = pd.to_datetime(values, utc=True).dt.tz_localize(None)
    else:
        return frame, None
    out = frame.copy(deep=False)  # the caller's frame (and its zone) is left as delivered
    out[column] = converted
    return out, zone


def _mixes_zones(values: Any) -> bool:
    """Whether a column holds timestamps both with and without a time zone (as timestamps,
    or as text such as ISO times of a CSV, judged on a sample)."""
    import pandas as pd

    def zoned(v: Any) -> bool | None:
        if isinstance(v, dt.datetime):
            return v.tzinfo is not None
        if isinstance(v, str):
            try:
                return pd.Timestamp(v).tzinfo is not None
            except (ValueError, TypeError, OverflowError):
                return None
        return None

    kinds = {zoned(v) for v in list(values)[:1000]} - {None}
    return len(kinds) == 2


# ---- the suite -------------------------------------------------------------------------


def volume_bounds(spec: ModelSpec, day: dt.date) -> dict[str, Any] | None:
    """Row-count bounds from the median of the last ``volume_lookback_days`` validated days
    before ``day`` (None when there is no history yet).

    Rows are counted in the validated partitions themselves (their Parquet footers), not
    read from validation reports: a report may describe an attempt that was rejected.
    """
    recent = [d for d in lake.partitions(spec.name, "validated") if d < day][-spec.validation.volume_lookback_days :]
    counts = sorted(lake.parquet_rows(lake.data_file(spec.name, "validated", d)) for d in recent)
    if not counts:
        return None
    mid = len(counts) // 2
    median = counts[mid] if len(counts) % 2 else (counts[mid - 1] + counts[mid]) / 2
    return {
        "median": median,
        "days": [d.isoformat() for d in recent],
        "min": math.floor(median * spec.validation.volume_min_ratio),
        "max": math.ceil(median * spec.validation.volume_max_ratio),
    }


_WHOLE_NUMBERS: Any = None


def whole_numbers_expectation() -> Any:
    """GX's missing check for an int column: ``expect_column_values_to_be_whole_numbers``.

    The pandas type check of an int feature has to accept float64 (a nullable int column
    is read back as floats), so on its own it let 12.5 through. This column map
    expectation fails each finite value with a fraction (and inf); nulls are skipped, as
    by every map expectation, and text is left to the type check. Being a real GX
    expectation, it reports unexpected counts, examples and ``mostly`` like the others and
    shows in Data Docs. Defined on first use (GX registers it by class name), so
    importing this module stays cheap.
    """
    global _WHOLE_NUMBERS
    if _WHOLE_NUMBERS is not None:
        return _WHOLE_NUMBERS
    import numpy as np
    import pandas as pd
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider import (
        ColumnMapMetricProvider,
        column_condition_partial,
    )

    class ColumnValuesWholeNumber(ColumnMapMetricProvider):
        condition_metric_name = "column_values.mlops_whole_number"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            number = pd.to_numeric(column, errors="coerce").astype("float64")
            text = number.isna()  # not a number at all: the type check's to report
            with np.errstate(invalid="ignore"):
                return text | (np.isfinite(number) & (number == np.round(number)))

    class ExpectColumnValuesToBeWholeNumbers(ColumnMapExpectation):
        """Expect every non-null value of the column to be a whole number (no fraction, finite)."""

        map_metric = "column_values.mlops_whole_number"
        success_keys = ("mostly",)

    _WHOLE_NUMBERS = ExpectColumnValuesToBeWholeNumbers
    return _WHOLE_NUMBERS


def _id_kind(arrow_type: Any) -> str | None:
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_integer(arrow_type):
        return "integer"
    return None


def entity_id_type(spec: ModelSpec, day: dt.date | None = None) -> tuple[str | None, str]:
    """The type every day's entity ids must have, and where that comes from.

    The spec's ``entity_id_type`` when set; otherwise the type of the ids in the latest
    validated day other than ``day`` (read from its Parquet schema), so one day of
    ``6420`` among days of ``"C006420"`` is rejected before it can break a training
    window. (None, reason) while there is nothing to go by (the first day decides).
    """
    import pyarrow.parquet as pq

    if spec.entity_id_type is not None:
        return spec.entity_id_type, "spec entity_id_type"
    for other in reversed(lake.partitions(spec.name, "validated")):
        if other == day:
            continue
        schema = pq.read_schema(lake.data_file(spec.name, "validated", other))
        if spec.entity_id in schema.names:
            kind = _id_kind(schema.field(spec.entity_id).type)
            if kind is not None:
                return kind, f"as in the validated day {other.isoformat()}; set entity_id_type in the spec to change it"
    return None, "no validated day yet"


def build_suite(spec: ModelSpec, *, day: dt.date | None = None, volume: dict[str, Any] | None = None,
                training: bool = False):
    """The GX expectation suite for a daily batch (or, with ``training=True``, for an
    assembled training window: no per-day time range or volume check, labels required)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    kind = "training" if training else "batch"
    expectations: list[Any] = []
    columns = [spec.entity_id, spec.event_time, *spec.feature_names, spec.target.column]

    def add(expectation, check: str, severity: str = "block") -> None:
        expectation.meta = {"check": check}
        # GX's own severity field (critical/warning): the suite result and Data Docs carry it,
        # and validate_frame blocks a day only on a failed critical expectation.
        expectation.severity = FailureSeverity(GX_SEVERITY[severity])
        expectations.append(expectation)

    add(gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True), "schema: exactly the spec's columns")
    max_rows = spec.validation.max_rows
    add(gxe.ExpectTableRowCountToBeBetween(min_value=spec.validation.min_rows, max_value=max_rows),
        f"row count at least validation.min_rows={spec.validation.min_rows}")
    if volume is not None and spec.validation.on_volume_spike == "warn":
        # ---- severities: a collapse blocks, a spike only warns (validation.on_volume_spike) ----
        of_days = f"of the {len(volume['days'])} previous validated day(s)"
        add(gxe.ExpectTableRowCountToBeBetween(min_value=volume["min"]),
            f"volume at least {spec.validation.volume_min_ratio} x the median ({volume['median']:g} rows, so at "
            f"least {volume['min']}) {of_days}")
        add(gxe.ExpectTableRowCountToBeBetween(max_value=volume["max"]),
            f"volume at most {spec.validation.volume_max_ratio} x the median ({volume['median']:g} rows, so at "
            f"most {volume['max']}) {of_days}", "warn")
    elif volume is not None:
        add(gxe.ExpectTableRowCountToBeBetween(min_value=volume["min"], max_value=volume["max"]),
            f"volume within {spec.validation.volume_min_ratio}..{spec.validation.volume_max_ratio} x the median "
            f"({volume['median']:g} rows, so {volume['min']}..{volume['max']}) of the {len(volume['days'])} previous "
            "validated day(s)")

    add(gxe.ExpectColumnValuesToNotBeNull(column=spec.entity_id), f"entity id {spec.entity_id} present")
    if spec.validation.unique_entity_id:
        add(gxe.ExpectColumnValuesToBeUnique(column=spec.entity_id), f"entity id {spec.entity_id} unique (no duplicates)")
    else:
        # Whole rows repeated are a replayed or double-delivered export. With unique ids a
        # repeated row already breaks the id check (which then counts the full repeats), so
        # this costlier check runs only for specs that allow repeated ids.
        add(gxe.ExpectCompoundColumnsToBeUnique(column_list=columns), "no duplicate rows (a row repeated in full)")
    add(gxe.ExpectColumnValuesToNotBeNull(column=spec.event_time), f"event time {spec.event_time} present")
    add(gxe.ExpectColumnValuesToBeInTypeList(column=spec.event_time, type_list=DATETIME_TYPES),
        f"event time {spec.event_time} is a timestamp")
    if day is not None and spec.validation.event_time_in_partition and not training:
        start = dt.datetime.combine(day, dt.time())
        end = start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        add(gxe.ExpectColumnValuesToBeBetween(column=spec.event_time, min_value=start, max_value=end),
            f"event times inside the partition {day.isoformat()} (UTC)")

    for f in spec.features:
        add(gxe.ExpectColumnValuesToBeInTypeList(column=f.name, type_list=PANDAS_TYPES[f.type]),
            f"{f.name} has type {f.type}")
        # ---- severities: each check below blocks or warns as the spec says ----
        if f.nullable and f.max_null_fraction < 1.0:
            add(gxe.ExpectColumnValuesToNotBeNull(column=f.name, mostly=1.0 - f.max_null_fraction),
                f"{f.name} at most {f.max_null_fraction:.0%} null")
        elif not f.nullable:
            add(gxe.ExpectColumnValuesToNotBeNull(column=f.name), f"{f.name} never null")
        if f.nullable and f.warn_null_fraction is not None and f.warn_null_fraction < f.max_null_fraction:
            add(gxe.ExpectColumnValuesToNotBeNull(column=f.name, mostly=1.0 - f.warn_null_fraction),
                f"{f.name} at most {f.warn_null_fraction:.0%} null as in the history (more warns)", "warn")
        if f.categories:
            if f.max_unknown_fraction >= 1.0:
                add(gxe.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.categories)),
                    f"{f.name}: categories never seen before (scored as unknown)", "warn")
            elif f.max_unknown_fraction > 0:
                # An unseen level in a tolerated share is scored through the unknown level
                # (features.py); beyond the share the day is a different feed and blocks.
                add(gxe.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.categories),
                                                    mostly=1.0 - f.max_unknown_fraction),
                    f"{f.name} in the declared categories (at most {f.max_unknown_fraction:.1%} of rows unseen)")
                add(gxe.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.categories)),
                    f"{f.name}: categories never seen before (scored as unknown)", "warn")
            else:
                add(gxe.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.categories)),
                    f"{f.name} in the declared categories")
        _range_checks(add, gxe, f.name, f)
        if not f.may_be_constant:
            add(gxe.ExpectColumnUniqueValueCountToBeBetween(column=f.name, min_value=2),
                f"{f.name} is not constant", spec.validation.on_constant_column)

    # ---- types that mean the type (issue 15) -----------------------------------------------
    # Beside the dtype checks above: an int feature holds whole numbers (its dtype may be
    # float64 when it has nulls), and the entity id has one type across days.
    for f in spec.features:
        if f.type == "int":
            add(whole_numbers_expectation()(column=f.name), f"{f.name} holds whole numbers (type int)")
    id_type, id_source = entity_id_type(spec, day)
    id_list = ID_TYPES[id_type] if id_type else ID_TYPES["string"] + ID_TYPES["integer"]
    add(gxe.ExpectColumnValuesToBeInTypeList(column=spec.entity_id, type_list=id_list),
        f"entity id {spec.entity_id} has type {id_type or 'string or integer'} ({id_source})")
    if not training and spec.labels is None:
        # Without a labels section the batch brings its labels: a day without them is a broken feed.
        add(gxe.ExpectColumnValuesToNotBeNull(column=spec.target.column, mostly=0.5),
            f"label {spec.target.column} present on most rows (the batch brings its labels)")
    # ---- end of the issue-15 type checks --------------------------------------------------

    target = spec.target
    if spec.is_classifier:
        add(gxe.ExpectColumnValuesToBeInSet(column=target.column, value_set=[0, 1]), f"label {target.column} is 0 or 1")
    else:
        _range_checks(add, gxe, target.column, target, label=True)
    if training:
        add(gxe.ExpectColumnValuesToNotBeNull(column=target.column, mostly=0.5),
            f"label {target.column} present on most training rows")
    # Built in one go: adding to a suite one by one needs an active context.
    return gx.ExpectationSuite(name=f"{spec.name}.{kind}", expectations=expectations)


GX_SEVERITY = {"block": "critical", "warn": "warning"}
SEVERITY_OF_GX = {"critical": "block", "warning": "warn", "info": "warn"}


def _range_checks(add: Any, gxe: Any, column: str, bounds: Any, *, label: bool = False) -> None:
    """The two bands of a number column: outside ``min``/``max`` (impossible) blocks, outside
    ``plausible_min``/``plausible_max`` (beyond what was seen, by a margin) only warns."""
    name = f"label {column}" if label else column
    if bounds.min is not None or bounds.max is not None:
        add(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=bounds.min, max_value=bounds.max),
            f"{name} within [{bounds.min}, {bounds.max}]")
    low, high = bounds.plausible_min, bounds.plausible_max
    if (low is not None and low != bounds.min) or (high is not None and high != bounds.max):
        add(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
            f"{name} within the plausible [{low}, {high}] (outside warns)", "warn")


# ---- running it ------------------------------------------------------------------------


def _cache_data_docs_templates() -> None:
    """Give GX's Data Docs renderer a jinja2 bytecode cache.

    GX builds a fresh jinja2 ``Environment`` for every view it renders and so compiles
    about a hundred templates on every validation (about 1 s, half the cost of a 1,000-row
    day). The cache (jinja2's own, in a per-user temp folder, keyed by template source)
    turns those compiles into loads, in every worker process. The rendered HTML is the same.
    """
    import jinja2
    from great_expectations.render.view import view

    if getattr(view, "_mlops_bytecode_cache", None) is not None:
        return
    cache = jinja2.FileSystemBytecodeCache()
    plain = view.Environment

    def environment(*args, **kwargs):
        kwargs.setdefault("bytecode_cache", cache)
        return plain(*args, **kwargs)

    view.Environment = environment
    view._mlops_bytecode_cache = cache


def _context(spec: ModelSpec, docs: bool):
    """An ephemeral GX context; with ``docs``, one that renders into the model's Data Docs site."""
    import great_expectations as gx

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    # GX draws tqdm bars for every metric; in task logs they are noise.
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if docs:
        _cache_data_docs_templates()
        # The site's index is rebuilt from the validation results store, and GX removes every
        # page whose result is not in it ("skip_and_clean_missing"): with the ephemeral
        # context's in-memory store each run deleted the pages of all other days. A file
        # store that keeps every attempt's result keeps every page.
        ctx.add_store(ctx.validation_results_store_name, {
            "class_name": "ValidationResultsStore",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(lake.validation_results_dir(spec.name))},
        })
        site_dir = lake.data_docs_dir() / spec.name
        ctx.add_data_docs_site(
            site_name="local",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return ctx


def _first_error(info: Any) -> str | None:
    """The first exception message in a GX ``exception_info`` (flat or keyed by metric)."""
    if isinstance(info, dict):
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "error").splitlines()[0][:300]
        for value in info.values():
            found = _first_error(value)
            if found:
                return found
    return None


def _describe(res: Any, frame: Any, expected: list[str], id_column: str) -> dict[str, Any]:
    """One check's outcome in plain terms: what was checked, and example bad values
    (with the entity ids of example rows where the values alone say little)."""
    import numpy as np
    import pandas as pd

    cfg = res.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in {"batch_id", "result_format"}}
    column = kwargs.get("column")
    out: dict[str, Any] = {
        "expectation": cfg.type,
        "check": (cfg.meta or {}).get("check", cfg.type),
        "column": column,
        "success": bool(res.success),
        "severity": SEVERITY_OF_GX.get(str(getattr(cfg.severity, "value", cfg.severity) or "critical"), "block"),
    }
    result = res.result or {}
    if "unexpected_count" in result:
        out["unexpected_count"] = result.get("unexpected_count")
        out["unexpected_percent"] = result.get("unexpected_percent")
        examples = [_plain(v) for v in (result.get("partial_unexpected_list") or [])]
        out["examples"] = list({repr(v): v for v in examples}.values())[:MAX_EXAMPLES]
    if "observed_value" in result:
        out["observed"] = _plain(result["observed_value"])
    if cfg.type == "expect_table_columns_to_match_set" and not res.success:
        present = [str(c) for c in frame.columns]
        out["missing_columns"] = [c for c in expected if c not in present]
        out["unexpected_columns"] = [c for c in present if c not in expected]
        near = [f"{u!r} is {m!r}" for u in out["unexpected_columns"] for m in out["missing_columns"]
                if u.strip().casefold() == m.casefold()]
        if near:
            out["detail"] = ("column names differ from the spec's only in case or surrounding spaces: "
                             f"{'; '.join(near[:MAX_EXAMPLES])}")
    if res.success:
        return out
    absent = [c for c in ([column] if column else kwargs.get("column_list") or []) if c not in frame.columns]
    if absent:
        out["error"] = f"column {', '.join(absent)} is missing from the batch"
        out["consequence_of"] = "missing columns"
        return out
    if (err := _first_error(res.exception_info)) is not None:
        out["error"] = err
    has_ids = id_column in frame.columns
    if cfg.type == "expect_column_values_to_be_in_type_list":
        # GX shows the first values of a wrongly typed column; show the ones of the wrong kind.
        values = frame[column].dropna()
        if set(kwargs.get("type_list") or []) == set(DATETIME_TYPES):
            if _mixes_zones(values):
                out["detail"] = ("the column mixes times with a time zone and times without one: "
                                 "give every value a zone (or none)")
            bad = values[[not isinstance(v, dt.datetime) for v in values]]
            bad = bad[pd.to_datetime(bad.astype(str), errors="coerce", format="mixed", utc=True).isna()]
        elif set(kwargs.get("type_list") or []) == set(PANDAS_TYPES["category"]):
            bad = values  # a category column of numbers or dates: every value is of the wrong kind
        elif column == id_column and set(kwargs.get("type_list") or []) <= {*ID_TYPES["string"], *ID_TYPES["integer"]}:
            want = set(kwargs.get("type_list") or [])
            kinds = (str,) if want == set(ID_TYPES["string"]) else (int, np.integer) if want == set(
                ID_TYPES["integer"]) else (str, int, np.integer)
            bad = values[[not isinstance(v, kinds) or isinstance(v, bool) for v in values]]
            out["detail"] = (f"ids like {', '.join(repr(_plain(v)) for v in bad.unique()[:3])} are of another type "
                             "than the model's ids (an export that dropped a prefix or leading zeros, or typed the "
                             "column anew); days of mixed id types cannot be trained on together")
        else:
            bad = values[pd.to_numeric(values, errors="coerce").isna()]
            words = [v for v in bad.unique()[:MAX_EXAMPLES] if isinstance(v, str)]
            if commas := [w for w in words if re.fullmatch(r"[+-]?\d[\d.,]*,\d[\d.]*", w.strip())]:
                out["detail"] = (f"the column holds numbers written with a comma, like {', '.join(map(repr, commas))}: "
                                 "a thousands separator or a decimal comma; the export must write plain numbers with "
                                 "a '.' decimal point (1250, 12.5)")
            elif words:
                out["detail"] = (f"the column holds text values like {', '.join(map(repr, words))} (if the feed "
                                 "means missing by one of them, list it in source.null_values)")
        out["observed_dtype"] = str(frame[column].dtype)
        if len(bad):
            out["examples"] = [_plain(v) for v in bad.unique()[:MAX_EXAMPLES]]
            out["unexpected_count"] = int(len(bad))
            out["unexpected_percent"] = 100.0 * len(bad) / max(len(frame), 1)
            if has_ids:
                out["example_ids"] = [_plain(v) for v in frame.loc[bad.index[:MAX_EXAMPLES], id_column]]
    elif cfg.type == "expect_column_values_to_not_be_null":
        # A null has no value to show: name the rows instead (by id, or by position for the id itself).
        nulls = frame[column].isna().to_numpy().nonzero()[0][:MAX_EXAMPLES]
        if has_ids and column != id_column:
            out["example_ids"] = [_plain(v) for v in frame[id_column].iloc[nulls]]
        else:
            out["example_ids"] = [f"row {int(i) + 1}" for i in nulls]
    elif cfg.type == "expect_column_values_to_be_whole_numbers":
        number = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        with np.errstate(invalid="ignore"):
            fraction = (number.notna() & ~(np.isfinite(number) & (number == np.round(number)))).to_numpy()
        rows = fraction.nonzero()[0][:MAX_EXAMPLES]
        out["detail"] = "an int column holds values with a fraction (or infinite ones)"
        if has_ids:
            out["example_ids"] = [_plain(v) for v in frame[id_column].iloc[rows]]
    elif cfg.type == "expect_column_values_to_be_in_set" and out.get("examples"):
        declared = {str(c).strip().casefold(): c for c in kwargs.get("value_set") or []}
        shown = [e for e in out["examples"] if isinstance(e, str)]
        if near := [f"{e!r} is {declared[e.strip().casefold()]!r}" for e in shown if e.strip().casefold() in declared]:
            out["detail"] = ("values differ from declared ones only in case or surrounding spaces: "
                             f"{'; '.join(near)} (the feed changed its spelling)")
        elif shown and all(re.fullmatch(r"[+-]?\d+(\.\d+)?", e.strip()) for e in shown):
            out["detail"] = "numbers where category names are declared (codes instead of names?)"
    elif cfg.type in {"expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"}:
        # Tell a double-delivered row (repeated in full) from two records sharing an id.
        repeated = frame[frame.duplicated(keep="first")]
        if len(repeated):
            out["repeated_rows"] = int(len(repeated))
            out["repeated_examples"] = [
                _plain(v) for v in (repeated[id_column] if has_ids else repeated.index).unique()[:MAX_EXAMPLES]
            ]
    return out


def _plain(value: Any) -> Any:
    """JSON-friendly values for the report (timestamps, numpy scalars, nested lists)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, str):
        try:
            return value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def _explain(check: dict[str, Any]) -> str:
    parts = [f"{check['check']} ({check['expectation']})"]
    if check.get("detail"):
        parts.append(check["detail"])
    if check.get("missing_columns") or check.get("unexpected_columns"):
        parts.append(f"missing {check.get('missing_columns')}, unexpected {check.get('unexpected_columns')}")
    if check.get("observed_dtype"):
        parts.append(f"column dtype is {check['observed_dtype']}")
    if check.get("error"):
        parts.append(f"could not run: {check['error']}")
    if check.get("unexpected_count"):
        parts.append(f"{check['unexpected_count']} bad value(s) ({check.get('unexpected_percent') or 0:.1f}%)")
    if check.get("examples"):
        parts.append(f"e.g. {check['examples']}")
    if check.get("repeated_rows"):
        parts.append(f"duplicate rows: {check['repeated_rows']} row(s) repeat an earlier row in full, "
                     f"e.g. {check['repeated_examples']}")
    if check.get("example_ids"):
        parts.append(f"rows {check['example_ids']}")
    if "observed" in check and not check.get("unexpected_count") and "missing_columns" not in check:
        parts.append(f"observed {check['observed']}")
    return ": ".join(parts[:1]) + (" - " + "; ".join(parts[1:]) if len(parts) > 1 else "")


def _consequences(checks: list[dict[str, Any]], rows: int) -> None:
    """Mark failures that only follow from another one (checks on a missing or wrongly
    typed column, column checks of an empty batch), so the message leads with causes."""
    mistyped = {c["column"] for c in checks
                if not c["success"] and c["expectation"] == "expect_column_values_to_be_in_type_list"}
    for c in checks:
        if c["success"] or c.get("consequence_of"):
            continue
        if rows == 0 and c["column"] is not None:
            c["consequence_of"] = "no rows"
        elif c["column"] in mistyped and c.get("error") and c["expectation"] != "expect_column_values_to_be_in_type_list":
            c["consequence_of"] = f"{c['column']} has the wrong type"


def _headlines(result: dict[str, Any], expected: list[str]) -> list[str]:
    """One-line diagnoses of batches that are wrong as a whole."""
    out = []
    columns = result["columns"]
    if columns and not set(expected) & set(columns):
        out.append(f"none of the {len(expected)} columns the spec declares is present (found {columns[:8]}): "
                   f"this is not a {result['model']} batch, or it was split on the wrong delimiter")
    if result["rows"] == 0:
        out.append(f"the batch is empty: a header with {len(columns)} column(s) but no rows")
    return out


def validate_frame(spec: ModelSpec, frame: Any, *, day: dt.date | None = None, volume: dict[str, Any] | None = None,
                   training: bool = False, docs: bool = False) -> dict[str, Any]:
    """Run the spec's suite on a DataFrame; return a JSON-ready summary (no files written
    except the Data Docs pages when ``docs``)."""
    import great_expectations as gx

    frame, zone = canonical_event_time(spec, frame)
    suite_obj = build_suite(spec, day=day, volume=volume, training=training)
    ctx = _context(spec, docs)
    suite = ctx.suites.add(suite_obj)
    source = ctx.data_sources.add_pandas(name=f"{spec.name}_source")
    asset = source.add_dataframe_asset(name=f"{spec.name}_{'training' if training else 'daily'}")
    batch_def = asset.add_batch_definition_whole_dataframe("whole_batch")
    run_name = f"{spec.name}-{day.isoformat() if day else 'training'}"
    vdef = ctx.validation_definitions.add(gx.ValidationDefinition(data=batch_def, suite=suite, name=run_name))
    if docs:
        checkpoint = ctx.checkpoints.add(gx.Checkpoint(
            name=f"{run_name}-checkpoint", validation_definitions=[vdef],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES},
        ))
        cp_result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=gx.RunIdentifier(run_name=run_name))
        res = next(iter(cp_result.run_results.values()))
        # GX's pages load their scripts and styles from CDNs: point them at vendored copies.
        from mlops_lifecycle import data_docs_assets

        data_docs_assets.localize_site(lake.data_docs_dir() / spec.name)
    else:
        res = vdef.run(batch_parameters={"dataframe": frame},
                       result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES})
    expected = [spec.entity_id, spec.event_time, *spec.feature_names, spec.target.column]
    order = {e.meta["check"]: i for i, e in enumerate(suite_obj.expectations)}
    checks = sorted((_describe(r, frame, expected, spec.entity_id) for r in res.results),
                    key=lambda c: order.get(c["check"], 999))
    _consequences(checks, len(frame))
    # Only a failed blocking (GX critical) check rejects the batch; failed warning checks are
    # reported beside it and the day goes on (GX's own suite verdict counts both).
    failed = [c for c in checks if not c["success"] and c["severity"] == "block"]
    warned = [c for c in checks if not c["success"] and c["severity"] != "block"]
    result = {
        "model": spec.name,
        "ds": day.isoformat() if day else None,
        "suite": suite_obj.name,
        "success": not failed,
        "rows": int(len(frame)),
        "columns": [str(c) for c in frame.columns],
        "evaluated": len(checks),
        "failed": len(failed),
        "failures": failed,
        "warned": len(warned),
        "warnings": warned,
        "checks": checks,
        "volume": volume,
        "event_time_zone": zone,
    }
    result["summary"] = _headlines(result, expected) if failed else []
    return result


def failure_message(where: str, result: dict[str, Any]) -> str:
    """A message that names every failed expectation, with example bad values.

    Causes come first; checks that failed only because of another failure (a missing
    or wrongly typed column, an empty batch) are counted on one line per cause.
    """
    lines = [f"{where}: {result['failed']} of {result['evaluated']} checks failed:"]
    lines += [f"  ! {h}" for h in result.get("summary") or []]
    lines += [f"  - {_explain(c)}" for c in result["failures"] if not c.get("consequence_of")]
    by_cause: dict[str, list[str]] = {}
    for c in result["failures"]:
        if c.get("consequence_of"):
            by_cause.setdefault(c["consequence_of"], []).append(c["column"] or c["check"])
    for cause, columns in by_cause.items():
        named = sorted({str(col) for col in columns})
        shown = ", ".join(named[:8]) + (f" and {len(named) - 8} more" if len(named) > 8 else "")
        lines.append(f"  - {len(columns)} more check(s) could not pass because of {cause} (on {shown})")
    return "\n".join(lines)


def warning_message(where: str, result: dict[str, Any]) -> str:
    """A message that names every failed warning check (the batch was accepted and scored)."""
    lines = [f"{where}: accepted with {result.get('warned', 0)} warning(s) of {result['evaluated']} checks "
             "(warning checks do not block; the day is scored):"]
    lines += [f"  ~ {_explain(c)}" for c in result.get("warnings") or [] if not c.get("consequence_of")]
    return "\n".join(lines)


# A warning that already fired on one of this many validated days before is an episode going
# on (a winter sample's range in a summer, say): recorded in each day's result, alerted once.
WARNING_EPISODE_DAYS = 7


def _recent_warnings(spec: ModelSpec, day: dt.date) -> set[str]:
    """The checks that warned on the last :data:`WARNING_EPISODE_DAYS` validated days before ``day``."""
    seen: set[str] = set()
    for d in [d for d in lake.partitions(spec.name, "validated") if d < day][-WARNING_EPISODE_DAYS:]:
        report = lake.report_dir(spec.name, "validation", d) / "result.json"
        if report.exists():
            seen.update(c.get("check") for c in lake.read_json(report).get("warnings") or [])
    return seen


def _alert_warnings(spec: ModelSpec, day: dt.date, result: dict[str, Any]) -> None:
    """Record a ``validation_warning`` alert for an accepted day whose warnings start an
    episode: a check that did not warn on the recent validated days. One that goes on is in
    the day's result and the log, not in a new alert (one alert per episode, not per day).
    A rerun of the day replaces its alert. An alert that cannot be written never fails the day."""
    from mlops_lifecycle import alerts

    checks = [c["check"] for c in result.get("warnings") or []]
    recent = _recent_warnings(spec, day)
    new = [c for c in checks if c not in recent]
    message = warning_message(f"{spec.name} batch {day}", result)
    if not new:
        log.warning("%s\n(no new alert: each of these warned on one of the %d validated days before)", message,
                    WARNING_EPISODE_DAYS)
        return
    try:  # emit() logs it too, at WARNING
        alerts.emit(spec, "validation_warning", f"{spec.name}: batch {day} scored with {result['warned']} warning(s)",
                    message, ident=f"{day.isoformat()}",
                    details={"ds": day.isoformat(), "rows": result["rows"], "warnings": checks, "new": new})
    except Exception:  # noqa: BLE001 - the batch is valid; a broken alert channel must not reject it
        log.exception("%s %s: the validation_warning alert could not be recorded", spec.name, day)


# ---- stage functions -------------------------------------------------------------------


ATTEMPT_DIR = re.compile(r"^attempt-(\d+)$")


def quarantine_attempts(qdir: Path) -> list[int]:
    """Numbers of the rejected attempts a day's quarantine partition holds, oldest first
    (the earlier ones in ``attempt-<n>/``, the latest at the top; see :func:`quarantine`)."""
    if not qdir.is_dir():
        return []
    earlier = sorted(int(m[1]) for c in qdir.iterdir() if c.is_dir() and (m := ATTEMPT_DIR.match(c.name)))
    top = qdir / "validation.json"
    if not top.exists():
        return earlier
    # Quarantines written before attempts were numbered carry no number: the next one up.
    return [*earlier, int(lake.read_json(top).get("attempt") or (max(earlier, default=0) + 1))]


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no second copy of a large batch), or a copy where links are refused."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def quarantine(spec: ModelSpec, day: dt.date, result: dict[str, Any], *, frame: Any = None,
               source_file: Path | None = None, source_mode: int | None = None) -> Path:
    """Move a rejected batch (a frame, or unreadable source bytes) to quarantine with its result.

    One record per attempt: the partition's top level is the latest rejected attempt
    (``validation.json`` with its ``attempt`` number, and ``data.parquet`` or ``source.*``),
    as every reader expects; each earlier attempt of the day moves into ``attempt-<n>/``
    beside it, so a second rejection never replaces the first. The whole folder is swapped
    in at once (:func:`lake.replace_dir`), the earlier files as hard links.

    The copy of source bytes (``source.*``) gets the source file's permission bits at most
    (``source_mode``, default the mode of ``source_file``), never wider than the lake's
    own: no world-readable copy of a private file.
    """
    qdir = lake.partition_dir(spec.name, "quarantine", day)
    attempts = quarantine_attempts(qdir)
    result["attempt"] = max(attempts, default=0) + 1

    def build(tmp: Path) -> None:
        if attempts:
            for child in qdir.iterdir():
                if child.is_dir() and ATTEMPT_DIR.match(child.name):
                    for f in child.rglob("*"):
                        if f.is_file():
                            _link_or_copy(f, tmp / child.name / f.relative_to(child))
                elif child.is_file() and not child.name.startswith("."):
                    _link_or_copy(child, tmp / f"attempt-{attempts[-1]}" / child.name)
        if frame is not None:
            frame.to_parquet(tmp / "data.parquet", engine="pyarrow", index=False)
        if source_file is not None:
            copy = tmp / f"source{source_file.suffix}"
            shutil.copyfile(source_file, copy)  # streamed, whatever the size
            allowed = stat.S_IMODE(os.stat(source_file).st_mode) if source_mode is None else source_mode
            os.chmod(copy, stat.S_IMODE(copy.stat().st_mode) & allowed)
        lake.write_json(tmp / "validation.json", result)

    lake.replace_dir(qdir, build)
    return qdir


def _reject(spec: ModelSpec, day: dt.date, result: dict[str, Any], *, frame: Any = None,
            source_file: Path | None = None, source_mode: int | None = None) -> ValidationFailed:
    """Quarantine a rejected batch with its result; return the error to raise.

    When the day already has a validated batch, that batch stands: the result records
    it as ``kept``, the day's report stays its result and gains a ``rejected_redelivery``
    pointer to the quarantined attempt, and the waiting re-delivery is dropped (its
    rows are in quarantine). Otherwise the result becomes the day's report.
    """
    validated = lake.data_file(spec.name, "validated", day)
    report = lake.report_dir(spec.name, "validation", day) / "result.json"
    accepted = lake.read_json(report) if report.exists() else {}
    kept = None
    if validated.exists():
        kept = {"path": str(validated), "rows": lake.parquet_rows(validated), "sha256": lake.file_sha256(validated),
                "checked_at": accepted.get("checked_at")}
        result["kept"] = kept
    qdir = quarantine(spec, day, result, frame=frame, source_file=source_file, source_mode=source_mode)
    msg = failure_message(f"{spec.name} batch {day} rejected", result) + f"\nQuarantined in {qdir}."
    if result["attempt"] > 1:
        msg += (f" This is rejected attempt {result['attempt']} of the day; the earlier ones are kept in "
                f"{qdir}/attempt-<n>/.")
    if kept is None:
        lake.write_json(report, result)
        msg += " Nothing downstream ran for this day; fix the source and rerun it."
    else:
        pointer = {"quarantine": str(qdir), "checked_at": result.get("checked_at"), "rows": result["rows"],
                   "failed": result["failed"], "attempt": result["attempt"]}
        lake.write_json(report, {**accepted, "rejected_redelivery": pointer})
        lake.redelivery_file(spec.name, day).unlink(missing_ok=True)
        msg += (f" This was a re-delivery of {day}, which already had a validated batch: the earlier validated batch "
                f"was kept ({kept['rows']} rows in {validated}), and raw/, features, predictions and reports of the day "
                "still describe it. Fix the source and rerun the day to replace it.")
    log.error(msg)
    return ValidationFailed(msg, result)


def _checked_at() -> str:
    """When an attempt was judged (a record only: partitions never depend on it)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def validate_partition(spec: ModelSpec, ds: str | dt.date, *, docs: bool = True) -> dict[str, Any]:
    """Stage function: validate the day's batch; promote it to ``validated/`` or
    quarantine it.

    The batch is the day's ``raw/`` partition, or, for a day that already has a
    validated batch, the re-delivery waiting in :func:`lake.redelivery_file`. One that
    passes replaces the day's raw and validated partitions and clears its quarantine.
    One that fails is quarantined with its result; a validated batch of the day, and
    everything made from it, is kept untouched (see :mod:`mlops_lifecycle.lake`).

    Raises:
        ValidationFailed: the batch broke its expectations; the message names each failed
            check with example values, where the batch was quarantined and, for a
            re-delivery, that the earlier validated batch was kept.
    """
    import pandas as pd

    day = lake.as_date(ds)
    raw, pending = lake.data_file(spec.name, "raw", day), lake.redelivery_file(spec.name, day)
    source = pending if pending.exists() else raw
    frame = pd.read_parquet(source, engine="pyarrow")
    canonical, zone = canonical_event_time(spec, frame)
    volume = volume_bounds(spec, day)
    result = validate_frame(spec, canonical, day=day, volume=volume, docs=docs)
    result.update(checked_at=_checked_at(), redelivery=source == pending, event_time_zone=zone)
    if not result["success"]:
        raise _reject(spec, day, result, frame=frame)  # quarantined as delivered
    target = lake.write_parquet(lake.data_file(spec.name, "validated", day), canonical)
    if source == pending:
        lake.move_file(pending, raw)
    lake.write_json(lake.report_dir(spec.name, "validation", day) / "result.json", result)
    lake.remove_partition(spec.name, "quarantine", day)
    log.info("%s %s: %d rows passed %d checks", spec.name, day, result["rows"], result["evaluated"])
    if result["warned"]:
        _alert_warnings(spec, day, result)
    return {"model": spec.name, "ds": day.isoformat(), "rows": result["rows"], "checks": result["evaluated"],
            "validated_path": str(target), "warned": result["warned"],
            "warnings": [c["check"] for c in result["warnings"]]}


def validate_training_set(spec: ModelSpec, path: str | Path) -> dict[str, Any]:
    """Stage function: validate an assembled training window before anything trains on it.

    Raises:
        ValidationFailed: names the failed checks (the window is not trained on).
    """
    import pandas as pd

    frame = pd.read_parquet(path, engine="pyarrow")
    result = validate_frame(spec, frame, training=True)
    lake.write_json(Path(path).parent / "validation.json", result)
    if not result["success"]:
        raise ValidationFailed(failure_message(f"{spec.name} training set {path} rejected", result), result)
    return {"rows": result["rows"], "checks": result["evaluated"], "success": True}


def record_unreadable(spec: ModelSpec, ds: str | dt.date, source_file: Path | None, error: str, *,
                      check: str = "readable_source",
                      description: str = "the source file is readable as its declared format",
                      examples: list[Any] | None = None, source_name: str | None = None,
                      source_mode: int | None = None) -> ValidationFailed:
    """Quarantine source bytes that could not even be read, and return the error to raise.

    The validation result names the failed reader check (``check``), says what was
    found (``error``) and keeps a copy of the bytes beside it (none when ``source_file``
    is None: a link out of the landing root, a directory); nothing else is written but
    the day's report (a day already validated keeps its batch, as in :func:`validate_partition`).
    ``source_name`` names the source when ``source_file`` is a local copy of it (a URL);
    ``source_mode`` caps the copy's permissions (see :func:`quarantine`).
    """
    day = lake.as_date(ds)
    failed = {"expectation": check, "check": description, "column": None, "success": False,
              "detail": error, "examples": [_plain(e) for e in (examples or [])][:MAX_EXAMPLES]}
    result = {"model": spec.name, "ds": day.isoformat(), "suite": f"{spec.name}.batch", "success": False,
              "rows": 0, "columns": [], "evaluated": 1, "failed": 1, "failures": [failed], "checks": [failed],
              "volume": None, "summary": [], "source": source_name or str(source_file), "checked_at": _checked_at()}
    return _reject(spec, day, result, source_file=source_file, source_mode=source_mode)
