"""A corpus of broken daily batches for the ``late_delivery`` example, and the lake
fixtures the trust tests share: a lake with history, a champion and earlier predictions,
and a fingerprint of everything that a bad batch must leave untouched.

Each :class:`BadBatch` turns a clean day (from the example's generator) into the bytes
an upstream system might deliver instead, and says which check must reject it and which
example values the error must show.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROWS = 300  # rows of a clean day; the e2e spec's volume bounds are relative to it
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"
       + bytes(range(256)) * 4)
NOTE = b"Hi team,\nthe export failed again today; I will resend the file tomorrow.\n-- Bob\n"


@dataclass(frozen=True)
class BadBatch:
    """One kind of broken batch.

    ``make(clean_frame)`` returns the delivered content: a DataFrame (written in the
    source's format) or raw bytes (written as they are); None means nothing arrives.
    ``place(path, clean_frame)``, when given, puts something at the day's path instead
    (a directory, a symbolic link, a FIFO). ``check`` is the id of the check that must
    fail (a GX expectation type or a reader check of :mod:`mlops_lifecycle.ingestion`);
    ``shows`` are strings the error must contain. ``kept`` says whether the rejected
    bytes are copied to quarantine (not for a link out of the landing root, a directory
    or a FIFO: there, only the record).
    """

    kind: str
    make: Callable[[pd.DataFrame], pd.DataFrame | bytes | None]
    check: str
    shows: tuple[str, ...]
    fmt: str = "parquet"
    stage: str = "validate"  # where it is caught: "ingest" (reader), "validate" (GX) or "wait" (sensor)
    extra: dict[str, Any] = field(default_factory=dict)
    place: Callable[[Path, pd.DataFrame], None] | None = None
    kept: bool = True


def _set(frame: pd.DataFrame, column: str, rows: slice | list[int], value: Any, *, as_object: bool = False) -> pd.DataFrame:
    out = frame.copy()
    if as_object:
        # A column exported as text (as a Parquet string column, or CSV text).
        out[column] = out[column].astype(str)
    out.loc[out.index[rows], column] = value
    return out


def _csv(frame: pd.DataFrame, **kwargs: Any) -> bytes:
    encoding = kwargs.pop("encoding", "utf-8")
    return frame.to_csv(index=False, **kwargs).encode(encoding)


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


def volume_spike(frame: pd.DataFrame, times: int = 4) -> pd.DataFrame:
    """``times`` the usual volume, every row still valid on its own (fresh ids, same day)."""
    parts = []
    for k in range(times):
        part = frame.copy()
        part["package_id"] = part["package_id"] + f"-{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _ragged(frame: pd.DataFrame) -> bytes:
    lines = _csv(frame).decode().splitlines()
    lines[7] += ",surplus,fields"
    return ("\n".join(lines) + "\n").encode()


def _latin1(frame: pd.DataFrame) -> bytes:
    out = frame.copy()
    out.loc[out.index[3:6], "delivery_region"] = "Zürich"
    return _csv(out, encoding="latin-1")


def _cut_mid_row(frame: pd.DataFrame) -> bytes:
    """A CSV transfer that stopped inside a row, 60% of the way through."""
    data = _csv(frame)
    start = data.index(b"\n", len(data) * 3 // 5) + 1
    return data[: start + 20]  # inside the row's second field


def _nul_bytes(frame: pd.DataFrame) -> bytes:
    lines = _csv(frame).split(b"\n")
    lines[150] = lines[150][:30] + b"\x00\x00" + lines[150][30:]
    return b"\n".join(lines)


def _header(frame: pd.DataFrame, old: str, new: str) -> bytes:
    """CSV whose header line writes ``old`` as ``new`` (the rows are unchanged)."""
    head, _, rows = _csv(frame).partition(b"\n")
    names = head.decode().split(",")
    names[names.index(old)] = new
    return (",".join(names) + "\n").encode() + rows


def _text(frame: pd.DataFrame, column: str, rows: Any, values: list[str]) -> pd.DataFrame:
    """The column as text with some rows replaced (cycling through ``values``)."""
    out = frame.copy()
    out[column] = out[column].astype(str)
    index = out.index[rows]
    out.loc[index, column] = [values[i % len(values)] for i in range(len(index))]
    return out


def _int_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The ids written as numbers: a feed that dropped the prefix (6420 for "20260401-006420")."""
    return frame.assign(package_id=np.arange(6420, 6420 + len(frame), dtype="int64"))


def _mixed_zones(frame: pd.DataFrame) -> bytes:
    out = frame.copy()
    times = out["dispatched_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    out["dispatched_at"] = [t + "+02:00" if i % 2 else t for i, t in enumerate(times)]
    return _csv(out)


def _concatenated(frame: pd.DataFrame) -> bytes:
    """Two exports appended: the second one's header sits in the middle of the rows."""
    half = len(frame) // 2
    return _csv(frame.iloc[:half]) + _csv(frame.iloc[half:])


def _make_dir(path: Path, clean: pd.DataFrame) -> None:
    path.mkdir(parents=True)
    (path / "part-00000.parquet").write_bytes(_parquet(clean))


def _make_fifo(path: Path, clean: pd.DataFrame) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _link_to(target: Callable[[Path, pd.DataFrame], Path]) -> Callable[[Path, pd.DataFrame], None]:
    def place(path: Path, clean: pd.DataFrame) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target(path, clean))
    return place


def _outside_landing(path: Path, clean: pd.DataFrame) -> Path:
    """A good batch of the day, written outside the landing root (another feed's folder)."""
    from mlops_lifecycle import config

    other = config.data_dir() / "elsewhere" / path.name
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(_parquet(clean))
    return other


def _other_days_validated(path: Path, clean: pd.DataFrame) -> Path:
    """The lake's validated file of an earlier day (another zone of the data folder)."""
    from mlops_lifecycle import config

    return sorted((config.data_dir() / "lake").glob("*/validated/ds=*/data.parquet"))[0]


def _inside_landing(path: Path, clean: pd.DataFrame) -> Path:
    """The day's good batch in an archive folder under the landing root."""
    archived = path.parent / "archive" / path.name
    archived.parent.mkdir(parents=True, exist_ok=True)
    archived.write_bytes(_parquet(clean))
    return archived


KINDS: list[BadBatch] = [
    # ---- not data, or not the declared format: caught by the reader ----
    BadBatch("empty_file", lambda f: b"", "source_not_empty", ("0 bytes",), stage="ingest"),
    BadBatch("empty_csv_file", lambda f: b"", "source_not_empty", ("0 bytes",), fmt="csv", stage="ingest"),
    BadBatch("truncated_parquet", lambda f: _parquet(f)[: len(_parquet(f)) * 3 // 5], "parquet_format",
             ("truncated", "PAR1"), stage="ingest"),
    BadBatch("png_instead_of_parquet", lambda f: PNG, "parquet_format", ("PNG image",), stage="ingest"),
    BadBatch("text_note_instead_of_parquet", lambda f: NOTE, "parquet_format", ("Hi team",), stage="ingest"),
    BadBatch("csv_instead_of_parquet", lambda f: _csv(f), "parquet_format", ("package_id,dispatched_at",),
             stage="ingest"),
    BadBatch("png_instead_of_csv", lambda f: PNG, "csv_text", ("PNG image",), fmt="csv", stage="ingest"),
    BadBatch("xlsx_instead_of_csv", lambda f: b"PK\x03\x04" + bytes(200), "csv_text", ("ZIP archive", "xlsx"),
             fmt="csv", stage="ingest"),
    BadBatch("utf16_csv", lambda f: _csv(f, encoding="utf-16"), "csv_encoding", ("UTF-16", "source.encoding"),
             fmt="csv", stage="ingest"),
    BadBatch("latin1_csv", _latin1, "csv_encoding", ("Zürich", "line 5", "b'\\xfc'"), fmt="csv", stage="ingest"),
    BadBatch("semicolon_csv", lambda f: _csv(f, sep=";"), "csv_delimiter", ("';'", "source.delimiter"),
             fmt="csv", stage="ingest"),
    BadBatch("tab_csv", lambda f: _csv(f, sep="\t"), "csv_delimiter", ("'\\\\t'",), fmt="csv", stage="ingest"),
    BadBatch("ragged_csv", _ragged, "csv_parse", ("Expected 10 fields", "line 8"), fmt="csv", stage="ingest"),
    # ---- readable, but wrong: caught by the Great Expectations suite ----
    BadBatch("header_only_csv", lambda f: _csv(f.iloc[:0]), "expect_table_row_count_to_be_between",
             ("no rows", "observed 0"), fmt="csv"),
    BadBatch("header_only_parquet", lambda f: f.iloc[:0], "expect_table_row_count_to_be_between",
             ("no rows", "observed 0")),
    BadBatch("text_note_as_csv", lambda f: NOTE, "expect_table_columns_to_match_set",
             ("none of the 10 columns", "Hi team"), fmt="csv"),
    BadBatch("missing_column", lambda f: f.drop(columns=["drivers_available"]), "expect_table_columns_to_match_set",
             ("missing ['drivers_available']",)),
    BadBatch("extra_column", lambda f: f.assign(coupon_code="SPRING"), "expect_table_columns_to_match_set",
             ("unexpected ['coupon_code']",)),
    BadBatch("renamed_column", lambda f: f.rename(columns={"distance_km": "distance"}),
             "expect_table_columns_to_match_set", ("missing ['distance_km']", "unexpected ['distance']")),
    BadBatch("wrong_type_parquet", lambda f: _set(f, "traffic_index", [4, 9], "twenty five", as_object=True),
             "expect_column_values_to_be_in_type_list", ("twenty five", "traffic_index")),
    BadBatch("wrong_type_csv", lambda f: _csv(_set(f, "distance_km", [2], "twenty five", as_object=True)),
             "expect_column_values_to_be_in_type_list", ("twenty five", "distance_km"), fmt="csv"),
    BadBatch("event_time_not_a_date", lambda f: _set(f, "dispatched_at", [0, 1], "yesterday", as_object=True),
             "expect_column_values_to_be_in_type_list", ("yesterday", "dispatched_at")),
    BadBatch("null_spike", lambda f: _set(f, "traffic_index", slice(0, ROWS // 3), np.nan),
             "expect_column_values_to_not_be_null", ("traffic_index never null", "-000000")),
    BadBatch("null_ids", lambda f: _set(f, "package_id", [5, 6], None), "expect_column_values_to_not_be_null",
             ("package_id present",)),
    BadBatch("negative_values", lambda f: _set(f, "distance_km", [1, 2, 3], -12.5),
             "expect_column_values_to_be_between", ("distance_km within", "-12.5")),
    BadBatch("out_of_range_values", lambda f: _set(f, "traffic_index", [7, 8], 250.0),
             "expect_column_values_to_be_between", ("traffic_index within", "250")),
    BadBatch("infinite_values", lambda f: _set(f, "warehouse_workload", [3], np.inf),
             "expect_column_values_to_be_between", ("warehouse_workload within", "inf")),
    BadBatch("unknown_category", lambda f: _set(f, "weather", [10, 11, 12], "hail"),
             "expect_column_values_to_be_in_set", ("weather in the declared categories", "hail")),
    BadBatch("label_out_of_set", lambda f: _set(f, "is_late", [0], 2), "expect_column_values_to_be_in_set",
             ("is_late is 0 or 1", "2")),
    BadBatch("duplicate_ids", lambda f: _set(f, "package_id", [1, 2, 3], f["package_id"].iloc[0]),
             "expect_column_values_to_be_unique", ("unique", "-000000")),
    BadBatch("duplicate_rows", lambda f: pd.concat([f, f.iloc[:10]], ignore_index=True),
             "expect_column_values_to_be_unique", ("duplicate rows: 10 row(s) repeat an earlier row in full",)),
    BadBatch("volume_drop", lambda f: f.iloc[: ROWS // 5], "expect_table_row_count_to_be_between",
             ("volume within", "observed 60")),
    BadBatch("volume_spike", volume_spike, "expect_table_row_count_to_be_between", ("volume within", "observed")),
    BadBatch("all_constant_column", lambda f: f.assign(package_type="standard"),
             "expect_column_unique_value_count_to_be_between", ("package_type is not constant", "observed 1")),
    BadBatch("dates_outside_partition",
             lambda f: f.assign(dispatched_at=f["dispatched_at"] + pd.Timedelta(days=1)),
             "expect_column_values_to_be_between", ("event times inside the partition",)),
    # ---- more that is not data, or not the declared format (issue 15) ----
    BadBatch("utf16_without_bom_csv", lambda f: _csv(f, encoding="utf-16-le"), "csv_text",
             ("NUL bytes", "UTF-16 without a byte-order mark"), fmt="csv", stage="ingest"),
    BadBatch("whitespace_only_csv", lambda f: b"  \n\t\n   \n", "source_not_empty", ("no CSV header and no rows",),
             fmt="csv", stage="ingest"),
    BadBatch("whitespace_only_parquet", lambda f: b"  \n\t\n   \n", "parquet_format", ("blank text",),
             stage="ingest"),
    BadBatch("truncated_csv", _cut_mid_row, "csv_parse", ("field(s), the header has 10", "cut short"), fmt="csv",
             stage="ingest"),
    BadBatch("gzip_named_csv", lambda f: gzip.compress(_csv(f)), "csv_text", ("gzip-compressed",), fmt="csv",
             stage="ingest"),
    BadBatch("parquet_named_csv", _parquet, "csv_text", ("a Parquet file",), fmt="csv", stage="ingest"),
    BadBatch("nul_bytes_in_csv", _nul_bytes, "csv_text", ("NUL bytes", "line 151"), fmt="csv", stage="ingest"),
    BadBatch("json_instead_of_parquet", lambda f: b'{"error": "quota exceeded", "rows": []}', "parquet_format",
             ("JSON text",), stage="ingest"),
    BadBatch("duplicated_column_csv", lambda f: _header(f, "traffic_index", "distance_km"), "csv_header",
             ("['distance_km'] more than once",), fmt="csv", stage="ingest"),
    BadBatch("directory_instead_of_file", lambda f: None, "source_is_file", ("a directory, not a file",
             "part-00000.parquet"), stage="ingest", place=_make_dir, kept=False),
    BadBatch("fifo_instead_of_file", lambda f: None, "source_is_file", ("not a regular file",), stage="ingest",
             place=_make_fifo, kept=False),
    BadBatch("symlink_to_system_file", lambda f: None, "source_symlink", ("symbolic link to /etc/passwd",
             "outside the landing root"), stage="ingest", place=_link_to(lambda p, f: Path("/etc/passwd")), kept=False),
    BadBatch("symlink_out_of_landing_root", lambda f: None, "source_symlink", ("outside the landing root",
             "elsewhere"), stage="ingest", place=_link_to(_outside_landing), kept=False),
    BadBatch("symlink_into_the_lake", lambda f: None, "source_symlink", ("outside the landing root", "validated"),
             stage="ingest", place=_link_to(_other_days_validated), kept=False),
    # ---- readable, but wrong (issue 15) ----
    BadBatch("header_with_trailing_space_csv", lambda f: _header(f, "distance_km", "distance_km "),
             "expect_table_columns_to_match_set", ("'distance_km ' is 'distance_km'",), fmt="csv"),
    BadBatch("html_error_page_as_csv", lambda f: b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
             "expect_table_columns_to_match_set", ("none of the 10 columns",), fmt="csv"),
    BadBatch("concatenated_csv_exports", _concatenated, "expect_column_values_to_be_in_type_list",
             ("'distance_km'",), fmt="csv"),
    BadBatch("label_absent", lambda f: f.drop(columns=["is_late"]), "expect_table_columns_to_match_set",
             ("missing ['is_late']",)),
    BadBatch("fractional_int", lambda f: _set(f, "drivers_available", [3, 7, 11], 12.5),
             "expect_column_values_to_be_whole_numbers", ("drivers_available holds whole numbers", "12.5")),
    BadBatch("fractional_int_csv", lambda f: _csv(_set(f, "drivers_available", [4], 40.25)),
             "expect_column_values_to_be_whole_numbers", ("40.25",), fmt="csv"),
    BadBatch("yes_no_in_int_column", lambda f: _csv(_text(f, "drivers_available", [2, 5], ["Yes", "No"])),
             "expect_column_values_to_be_in_type_list", ("'Yes'", "drivers_available"), fmt="csv"),
    BadBatch("bool_in_number_column", lambda f: f.assign(traffic_index=f["traffic_index"] > 30),
             "expect_column_values_to_be_in_type_list", ("traffic_index has type float", "bool")),
    BadBatch("thousands_separators_csv", lambda f: _csv(_text(f, "distance_km", [1, 8], ["1,250.5", "2,004"])),
             "expect_column_values_to_be_in_type_list", ("'1,250.5'", "thousands separator"), fmt="csv"),
    BadBatch("decimal_commas_csv", lambda f: _csv(_text(f, "distance_km", slice(None), ["12,5", "7,25"])),
             "expect_column_values_to_be_in_type_list", ("'12,5'", "decimal comma"), fmt="csv"),
    BadBatch("nan_text_csv", lambda f: _csv(_text(f, "traffic_index", [6, 9], ["NaN"])),
             "expect_column_values_to_be_in_type_list", ("'NaN'", "source.null_values"), fmt="csv"),
    BadBatch("nan_text_parquet", lambda f: _text(f, "traffic_index", [6, 9], ["NaN"]),
             "expect_column_values_to_be_in_type_list", ("'NaN'",)),
    BadBatch("all_null_column", lambda f: f.assign(traffic_index=np.nan), "expect_column_values_to_not_be_null",
             ("traffic_index never null",)),
    BadBatch("null_share_over_its_limit", lambda f: _set(f, "warehouse_workload", slice(0, ROWS // 3), np.nan),
             "expect_column_values_to_not_be_null", ("warehouse_workload at most 5% null",)),
    BadBatch("blank_category_csv", lambda f: _csv(_set(f, "weather", [0, 4], "")),
             "expect_column_values_to_not_be_null", ("weather never null",), fmt="csv"),
    BadBatch("category_case", lambda f: f.assign(weather=f["weather"].str.capitalize()),
             "expect_column_values_to_be_in_set", ("differ from declared ones only in case",)),
    BadBatch("category_padding", lambda f: f.assign(weather=" " + f["weather"] + " "),
             "expect_column_values_to_be_in_set", ("only in case or surrounding spaces",)),
    BadBatch("category_as_codes_csv",
             lambda f: _csv(f.assign(weather=f["weather"].map({c: i for i, c in enumerate(sorted(set(f["weather"])))}))),
             "expect_column_values_to_be_in_type_list", ("weather has type category", "int64"), fmt="csv"),
    BadBatch("numbers_among_categories_csv", lambda f: _csv(_set(f, "weather", slice(0, ROWS // 3), "3")),
             "expect_column_values_to_be_in_set", ("'3'", "codes instead of names"), fmt="csv"),
    BadBatch("integer_ids_csv", lambda f: _csv(_int_ids(f)), "expect_column_values_to_be_in_type_list",
             ("entity id package_id has type string", "6420"), fmt="csv"),
    BadBatch("integer_ids_parquet", _int_ids, "expect_column_values_to_be_in_type_list",
             ("entity id package_id has type string", "6420")),
    BadBatch("float_ids", lambda f: _int_ids(f).astype({"package_id": "float64"}),
             "expect_column_values_to_be_in_type_list", ("entity id package_id has type string", "6420.0")),
    BadBatch("label_yes_no_csv", lambda f: _csv(f.assign(is_late=f["is_late"].map({0: "No", 1: "Yes"}))),
             "expect_column_values_to_be_in_set", ("is_late is 0 or 1", "'Yes'"), fmt="csv"),
    BadBatch("label_all_empty", lambda f: f.assign(is_late=np.nan), "expect_column_values_to_not_be_null",
             ("label is_late present on most rows",)),
    BadBatch("label_probabilities", lambda f: f.assign(is_late=np.round(f["is_late"] * 0.6 + 0.2, 2)),
             "expect_column_values_to_be_in_set", ("is_late is 0 or 1",)),
    BadBatch("times_partly_from_another_day",
             lambda f: _set(f, "dispatched_at", slice(0, ROWS // 10), f["dispatched_at"].iloc[0] - pd.Timedelta(days=1)),
             "expect_column_values_to_be_between", ("event times inside the partition",)),
    BadBatch("mixed_time_zones_csv", _mixed_zones, "expect_column_values_to_be_in_type_list",
             ("mixes times with a time zone and times without one",), fmt="csv"),
    BadBatch("out_of_range_dates_csv", lambda f: _csv(_text(f, "dispatched_at", [3, 4], ["2300-01-01 00:00:00"])),
             "expect_column_values_to_be_in_type_list", ("2300-01-01",), fmt="csv"),
    BadBatch("epoch_dates", lambda f: _set(f, "dispatched_at", [0, 1, 2], pd.Timestamp(0)),
             "expect_column_values_to_be_between", ("event times inside the partition", "1970-01-01")),
    BadBatch("epoch_numbers", lambda f: f.assign(dispatched_at=f["dispatched_at"].astype("int64") // 10**9),
             "expect_column_values_to_be_in_type_list", ("dispatched_at is a timestamp", "int64")),
    BadBatch("year_typo", lambda f: _set(f, "dispatched_at", [5], f["dispatched_at"].iloc[5] + pd.DateOffset(years=36)),
             "expect_column_values_to_be_between", ("event times inside the partition", "2062")),
    # ---- nothing at all: the sensor waits, then fails saying what it waited for ----
    BadBatch("missing_partition", lambda f: None, "source_present", ("never arrived", "no file at"), stage="wait"),
]

# Two hundred megabytes of rows, written in the test, refused from its size (source.max_bytes):
# its own test measures the worker's peak memory while it is rejected.
OVERSIZED = BadBatch("oversized_200mb_csv", lambda f: None, "source_size", ("source.max_bytes", "refused from its size"),
                     fmt="csv", stage="ingest")
OVERSIZED_BYTES = 200 * 1024 * 1024


def write_oversized(path: Path, clean: pd.DataFrame, size: int = OVERSIZED_BYTES) -> int:
    """A CSV of ``size`` bytes (the clean day's rows repeated), written a block at a time."""
    block = _csv(clean).partition(b"\n")[2]
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "wb") as fh:
        written += fh.write(_csv(clean.iloc[:0]))
        while written < size:
            written += fh.write(block[: size - written])
    return written


@dataclass(frozen=True)
class GoodBatch:
    """A batch that looks odd but is valid: it must be accepted (and, with ``drifts``, the
    drift check must flag those columns against the champion's reference)."""

    kind: str
    make: Callable[[pd.DataFrame], pd.DataFrame | bytes]
    fmt: str = "parquet"
    place: Callable[[Path, pd.DataFrame], None] | None = None
    drifts: tuple[str, ...] = ()


ACCEPTED: list[GoodBatch] = [
    GoodBatch("reversed_column_order", lambda f: f[list(reversed(f.columns))]),
    GoodBatch("reversed_column_order_csv", lambda f: _csv(f[list(reversed(f.columns))]), fmt="csv"),
    GoodBatch("crlf_csv", lambda f: _csv(f, lineterminator="\r\n"), fmt="csv"),
    GoodBatch("utf8_bom_csv", lambda f: _csv(f, encoding="utf-8-sig"), fmt="csv"),
    GoodBatch("int_column_with_nulls_read_as_float", lambda f: _set(f, "drivers_available", [2, 9], np.nan)),
    GoodBatch("int_column_with_nulls_csv", lambda f: _csv(_set(f, "drivers_available", [2, 9], np.nan)), fmt="csv"),
    GoodBatch("event_time_offsets_csv", lambda f: _csv(f.assign(dispatched_at=f["dispatched_at"].dt.tz_localize("UTC")
                                                               .dt.tz_convert("Europe/Berlin")
                                                               .map(pd.Timestamp.isoformat))), fmt="csv"),
    GoodBatch("symlink_inside_landing_root", lambda f: b"", place=_link_to(_inside_landing)),
    GoodBatch("unit_change_km_to_miles", lambda f: f.assign(distance_km=np.round(f["distance_km"] * 0.621, 2)),
              drifts=("distance_km",)),
    GoodBatch("collapsed_categories", lambda f: f.assign(weather=np.where(f["weather"].isin(["rain", "snow", "storm"]),
                                                                          "cloudy", f["weather"])),
              drifts=("weather",)),
]


def _e2e_specs() -> Any:
    """``tests/e2e/e2e_specs.py``, loaded by path (the unit tests do not have tests/e2e on sys.path)."""
    import importlib.util

    path = Path(__file__).parent / "e2e" / "e2e_specs.py"
    loader = importlib.util.spec_from_file_location("_e2e_specs_for_bad_batches", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def write_small_spec(specs_dir: Path, **overrides: Any) -> Path:
    """The e2e tests' small-data spec of the example (``tests/e2e/e2e_specs.py``)."""
    return _e2e_specs().write_small_spec(specs_dir, **overrides)


def isolated_stores(base: Path) -> Any:
    """The package's stores under ``base`` for the block (``e2e_specs.isolated_stores``)."""
    return _e2e_specs().isolated_stores(base)


def kind(name: str) -> BadBatch:
    return next(k for k in [*KINDS, OVERSIZED] if k.kind == name)


def csv_variant(spec: Any) -> Any:
    """The same model reading CSV files (same lake, same registry)."""
    path = spec.source.path.rsplit(".", 1)[0] + ".csv"
    return spec.model_copy(update={"source": spec.source.model_copy(update={"path": path, "format": "csv"})})


def deliver(spec: Any, bad: BadBatch | GoodBatch, day: dt.date, clean: pd.DataFrame) -> Path | None:
    """Write the broken batch where the spec's source expects the day's file (or place
    what its ``place`` puts there)."""
    import shutil

    from mlops_lifecycle import ingestion, lake

    path = Path(ingestion.source_path(spec, day))
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()
    if bad.place is not None:
        bad.place(path, clean)
        return path
    content = bad.make(clean)
    if content is None:
        return None
    if isinstance(content, pd.DataFrame):
        content = _csv(content) if bad.fmt == "csv" else _parquet(content)
    lake.write_bytes(path, content)
    return path


# ---- the lake a bad batch must not touch -----------------------------------------------


def build_lake_with_champion(spec: Any, history: list[dt.date], *, rows: int = ROWS, docs: bool = False) -> dict[str, Any]:
    """History validated (with ``docs``, into the Data Docs site too), a champion trained
    and promoted, the last history day scored: everything a bad batch could damage."""
    from mlops_lifecycle import ingestion, scoring, training, validation
    from mlops_lifecycle.examples import late_delivery

    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, history, rows=rows)
    for day in history:
        ingestion.ingest(spec, day)
        validation.validate_partition(spec, day, docs=docs)
    window = training.assemble_window(spec, history[-1])
    trained = training.train_and_register(spec, window, trigger={"reason": "test", "by": "pytest"})
    decision = training.compare_and_promote(spec, trained, actor="pytest")
    scoring.materialize_features(spec, history[-1])
    champ = scoring.champion_info(spec)
    scored = scoring.score_partition(spec, history[-1], version=champ["version"], airflow_run_id="pytest-baseline")
    return {"trained": trained, "decision": decision, "champion": champ, "scored": scored}


def registry_state(spec: Any) -> dict[str, Any]:
    """Aliases and versions of the registered model (what promotion could change)."""
    from mlops_lifecycle import registry

    c = registry.client()
    model = c.get_registered_model(spec.model_name)
    versions = c.search_model_versions(f"name='{spec.model_name}'")
    return {
        "aliases": dict(sorted(model.aliases.items())),
        "versions": sorted((v.version, v.run_id, v.tags.get("status")) for v in versions),
    }


def fingerprint(spec: Any, *, except_day: dt.date | None = None) -> dict[str, str]:
    """sha256 of every file in the whole data folder: every zone of every model's lake, the
    landing files, the Data Docs site and its results store, and the MLflow store (its
    SQLite file and artifacts), plus the registry's aliases and versions.

    Left out: what belongs to ``except_day`` itself (any path naming that date: its
    partitions, its landing file, its Data Docs page and result, its run's alerts), the
    two site-wide Data Docs pages every validation rewrites (the index, which lists every
    validation, and the suite's page, which shows the suite of the latest run with its
    day's partition and volume bounds), and the lake's hidden names of folder swaps in
    progress. Symbolic links are not followed.
    """
    from mlops_lifecycle import config, lake

    base = config.data_dir()
    day = except_day.isoformat() if except_day else None
    site = lake.data_docs_dir() / spec.name
    rewritten = {site / "index.html", site / "expectations" / spec.name / "batch.html"}
    out: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        swapping = any(lake._SIDE.match(part) for part in rel.parts)
        if path.is_symlink() or not path.is_file() or swapping or path in rewritten or (day and day in str(rel)):
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    out["<registry>"] = repr(registry_state(spec))
    return out


def changed_since(spec: Any, before: dict[str, str], *, except_day: dt.date) -> list[str]:
    """What changed in the data folder since ``before`` (a :func:`fingerprint`): every file
    that was there and now differs or is gone, the registry, and every new file that a
    rejection may not add. A rejection may add files of the day itself, a new alert record
    (alerts are keyed by the Airflow run, not by the day) and, on the first run that renders
    Data Docs, the site's static assets and the results store's marker file."""
    after = fingerprint(spec, except_day=except_day)
    out = [f"changed or gone: {k}" for k, v in before.items() if after.get(k) != v]
    for key in sorted(after.keys() - before.keys()):
        parts = Path(key).parts
        if (parts[:4] == ("lake", spec.name, "events", "alerts") or parts[:3] == ("data_docs", spec.name, "static")
                or parts[-1] == ".ge_store_backend_id"):
            continue
        out.append(f"new: {key}")
    return sorted(out)


def downstream_of(spec: Any, day: dt.date) -> dict[str, bool]:
    """Which zones hold anything for the day past validation (all must be False)."""
    from mlops_lifecycle import lake

    return {zone: lake.partition_dir(spec.name, zone, day).exists() for zone in ("validated", "features", "predictions")}
