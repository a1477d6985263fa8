"""Feature computation: the one function that turns validated rows into model inputs.

Training and scoring both call :func:`build_matrix` / :func:`build_features`, so a row
gets exactly the same features in the daily scoring run as it got when the model was
trained.

Built-in encoding (no ``features_function`` in the spec): numeric and bool columns
become float32 (missing values stay NaN, which XGBoost handles); each category becomes
one 0/1 column per category declared in the spec, in the spec's order, so the matrix
layout never depends on which categories a batch happens to hold. With ``max_levels``
(what the scaffolder writes) only the first ``max_levels`` categories (listed most
frequent first) get a column of their own, and every other non-null value, a rare listed
level or one never seen, sets one ``<name>__other`` column: the unknown level. Training
learns it from the rare levels, so a new level that validation tolerates
(``max_unknown_fraction``) is scored like them, in training and serving alike.

Why a frequency-capped one-hot and not XGBoost's native categorical support: every stage
moves float32 matrices (training, scoring's ``inplace_predict``, the MLflow signature, the
drift reference), which a capped one-hot keeps as they are, while native categories would
need a categorical dtype or ``feature_types`` threaded through each of them and would send
an unseen level down the *missing* branch, mixing "new" with "null". A level too rare to
learn from gains nothing from a column of its own, and the cap bounds the width at any
cardinality.

Custom features: a spec may name ``features_function: package.module:function``. The
function is called as ``function(frame, spec)`` with the validated rows (the target
column removed, so no label can leak into an input) and returns a DataFrame of numeric
or bool columns, one row per input row with the same index. It may start from
:func:`default_features` and add to it. Its column layout is learned once by calling it
on a two-row probe built from the spec, and every later call must return exactly those
columns: a function whose columns depend on the batch (``pd.get_dummies`` on one day's
categories, say) fails loudly instead of feeding the model shifted columns.

A feature function must compute each row from that row alone (plus constants):
:func:`check_batch_independence` proves it on a sample, and the tests use it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_lifecycle.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class FeatureFunctionError(ValueError):
    """A spec's feature function cannot be imported, or returned something unusable;
    the message names the model, the function and what is wrong."""


# ---- the built-in encoding ----------------------------------------------------------


def default_feature_columns(spec: ModelSpec) -> list[str]:
    """Names of the built-in encoding's columns, in matrix order."""
    cols: list[str] = []
    for f in spec.features:
        if f.type == "category":
            cols.extend(f"{f.name}__{c}" for c in _encoded_levels(f))
            if f.max_levels is not None:
                cols.append(f"{f.name}__{OTHER_LEVEL}")
        else:
            cols.append(f.name)
    return cols


# The column of a capped category that every other non-null value sets: rare and unseen levels.
OTHER_LEVEL = "other"


def _encoded_levels(f: Any) -> list[str]:
    """The categories with a 0/1 column of their own (all of them without ``max_levels``)."""
    levels = list(f.categories or [])
    return levels if f.max_levels is None else levels[: f.max_levels]


def _require_columns(spec: ModelSpec, frame: pd.DataFrame) -> None:
    missing = [f.name for f in spec.features if f.name not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks feature columns {missing}; was it validated against spec {spec.name!r}?")


def default_matrix(spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """The built-in encoding as a float32 matrix (rows x :func:`default_feature_columns`).

    Raises:
        KeyError: a spec feature is missing from the frame (validation should have caught it).
    """
    import numpy as np

    _require_columns(spec, frame)
    out = np.zeros((len(frame), len(default_feature_columns(spec))), dtype=np.float32)
    col = 0
    for f in spec.features:
        values = frame[f.name]
        if f.type == "category":
            codes = values.to_numpy(dtype=object)
            levels = _encoded_levels(f)
            for category in levels:
                out[:, col] = codes == category
                col += 1
            if f.max_levels is not None:
                # The unknown level: present, and none of the encoded levels (null stays all zeros).
                out[:, col] = values.notna().to_numpy() & ~values.isin(levels).to_numpy()
                col += 1
        else:
            out[:, col] = values.to_numpy(dtype=np.float32, na_value=np.nan)
            col += 1
    return out


def default_features(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The built-in encoding as a DataFrame with named columns and the frame's index;
    a feature function can start from it and add columns."""
    import pandas as pd

    return pd.DataFrame(default_matrix(spec, frame), columns=default_feature_columns(spec), index=frame.index)


# ---- custom feature functions ------------------------------------------------------------


def import_function(path: str, *, where: str, arguments: tuple[str, ...], error: type[Exception]) -> Callable[..., Any]:
    """Import the function a spec names as ``package.module:function`` (already checked
    for shape by the spec) and check that it can be called with ``arguments`` (their names, for messages).

    Raises:
        error: the module does not import, the name is missing or not callable, or it
            cannot be called with those arguments; the message starts with ``where``.
    """
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure means the same to the user
        raise error(
            f"{where}: cannot import module {module_name!r} ({type(exc).__name__}: {exc}); it must be importable "
            "by the scheduler and the workers (e.g. a package under include/)"
        ) from exc
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise error(f"{where}: module {module_name!r} has no function {attr!r}")
    try:
        inspect.signature(fn).bind(*([None] * len(arguments)))
    except TypeError:
        count = {1: "one argument", 2: "two arguments"}.get(len(arguments), f"{len(arguments)} arguments")
        raise error(f"{where}: the function must accept {count}, ({', '.join(arguments)})") from None
    except ValueError:  # builtins without a signature: let the call decide
        pass
    return fn


def feature_function(spec: ModelSpec) -> Callable[..., Any] | None:
    """The spec's feature function, imported; None when the spec uses the built-in encoding.

    Raises:
        FeatureFunctionError: the module does not import, the name is missing, or it is
            not a function of ``(frame, spec)``.
    """
    path = spec.features_function
    if not path:
        return None
    return import_function(
        path, where=f"{spec.name}: features_function {path!r}", arguments=("frame", "spec"), error=FeatureFunctionError
    )


def _probe_frame(spec: ModelSpec) -> pd.DataFrame:
    """Two valid rows built from the spec alone, to learn a feature function's columns."""
    import pandas as pd

    data: dict[str, list[Any]] = {
        spec.entity_id: ["probe-0", "probe-1"],
        spec.event_time: [
            pd.Timestamp(spec.start_date),
            pd.Timestamp(spec.start_date) + pd.Timedelta(hours=12),
        ],
    }
    for f in spec.features:
        if f.type == "category":
            cats = list(f.categories or [])
            data[f.name] = [cats[0], cats[-1]]
        elif f.type == "bool":
            data[f.name] = [False, True]
        else:
            lo = f.min if f.min is not None else (f.max - 1 if f.max is not None else 0.0)
            hi = f.max if f.max is not None else lo + 1
            values = [lo, hi]
            data[f.name] = [int(v) for v in values] if f.type == "int" else [float(v) for v in values]
    frame = pd.DataFrame(data)
    for f in spec.features:
        if f.type == "int":
            frame[f.name] = frame[f.name].astype("int64")
    return frame


_COLUMNS_CACHE: dict[str, list[str]] = {}


def _call(
    spec: ModelSpec, fn: Callable[..., Any], frame: pd.DataFrame, expected: list[str] | None
) -> pd.DataFrame:
    """Run the feature function and check what it returned against the promises above."""
    import pandas as pd

    where = f"{spec.name}: features_function {spec.features_function!r}"
    _require_columns(spec, frame)
    # A copy without the label: a function can neither leak the target nor edit the caller's rows.
    inputs = frame.drop(columns=[spec.target.column], errors="ignore").copy()
    out = fn(inputs, spec)
    if not isinstance(out, pd.DataFrame):
        raise FeatureFunctionError(f"{where}: returned {type(out).__name__}, expected a pandas DataFrame")
    if len(out) != len(frame) or not out.index.equals(frame.index):
        raise FeatureFunctionError(
            f"{where}: returned {len(out)} rows for {len(frame)} input rows, or changed their index; it must return "
            "one row per input row, in the same order, with the input's index"
        )
    names = list(out.columns)
    if not all(isinstance(c, str) for c in names) or len(set(names)) != len(names):
        raise FeatureFunctionError(f"{where}: column names must be unique strings, got {names}")
    reserved = sorted({spec.entity_id, spec.event_time, spec.target.column}.intersection(names))
    if reserved:
        raise FeatureFunctionError(
            f"{where}: returns {reserved}, which are the entity id, event time or target"
        )
    bad = {
        c: str(out[c].dtype)
        for c in names
        if not (pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c]))
    }
    if bad:
        raise FeatureFunctionError(
            f"{where}: columns must be numeric or bool; these are not: {bad} (encode categories as 0/1 columns, "
            "e.g. start from features.default_features)"
        )
    if expected is not None and names != expected:
        if set(names) != set(expected):
            raise FeatureFunctionError(
                f"{where}: returned columns that differ from its layout (learned on a probe built from the spec): "
                f"missing {[c for c in expected if c not in names]}, unexpected {[c for c in names if c not in expected]}. "
                "A feature function must return the same columns for every batch (one-hot with the spec's "
                "categories, not pd.get_dummies on the batch)"
            )
        out = out[expected]
    return out


def feature_columns(spec: ModelSpec) -> list[str]:
    """Names of the model's input columns, in matrix order.

    Raises:
        FeatureFunctionError: the spec's feature function cannot be imported or fails on
            the probe rows.
    """
    fn = feature_function(spec)
    if fn is None:
        return default_feature_columns(spec)
    key = spec.model_dump_json()
    if key not in _COLUMNS_CACHE:
        try:
            probe = _call(spec, fn, _probe_frame(spec), expected=None)
        except FeatureFunctionError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the function and the probe, keep the cause
            raise FeatureFunctionError(
                f"{spec.name}: features_function {spec.features_function!r} failed on a two-row probe built from "
                f"the spec (min/max values, first/last categories): {type(exc).__name__}: {exc}"
            ) from exc
        _COLUMNS_CACHE[key] = list(probe.columns)
    return list(_COLUMNS_CACHE[key])


def layout_digest(columns: list[str]) -> str:
    """A short hash of a feature layout (names in order): what a model version records and
    what scoring compares, so a model is never fed columns in another order or meaning."""
    import hashlib

    return hashlib.sha256("\n".join(columns).encode()).hexdigest()[:16]


class FeatureLayoutMismatch(ValueError):
    """The spec's features no longer produce the layout a model version was trained on."""


def build_features(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The model inputs of validated rows as a DataFrame (float32 for the built-in
    encoding; the feature function's own dtypes otherwise), indexed like ``frame``.

    Raises:
        KeyError: a spec feature is missing from the frame.
        FeatureFunctionError: the feature function broke one of its promises.
    """
    fn = feature_function(spec)
    if fn is None:
        return default_features(spec, frame)
    return _call(spec, fn, frame, expected=feature_columns(spec))


def build_matrix(spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """The float32 feature matrix (rows x :func:`feature_columns`) for a validated frame:
    what training fits on and what scoring predicts from.

    Raises:
        KeyError: a spec feature is missing from the frame.
        FeatureFunctionError: the feature function broke one of its promises.
    """
    import numpy as np

    if spec.features_function is None:
        return default_matrix(spec, frame)
    feats = build_features(spec, frame)
    out = np.empty((len(feats), feats.shape[1]), dtype=np.float32)
    for i, column in enumerate(feats.columns):
        out[:, i] = feats[column].to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def check_batch_independence(spec: ModelSpec, frame: pd.DataFrame, seed: int = 0) -> None:
    """Prove on a sample that a row's features do not depend on the other rows of its batch.

    Training computes features on a whole window, scoring on one day: both must give a
    row the same values. Compares the whole frame's features with those computed one
    event day at a time and on the rows in shuffled order.

    Raises:
        FeatureFunctionError: names the columns whose values changed and a row where they did.
    """
    import numpy as np

    whole = build_matrix(spec, frame)
    columns = feature_columns(spec)
    positions = np.arange(len(frame))
    pieces: list[tuple[str, np.ndarray]] = []
    if spec.event_time in frame.columns:
        days = frame[spec.event_time].dt.date.to_numpy()
        pieces += [(f"the day {d}", positions[days == d]) for d in sorted(set(days))]
    pieces.append(("the rows shuffled", np.random.default_rng(seed).permutation(len(frame))))
    for what, rows in pieces:
        part = build_matrix(spec, frame.iloc[rows])
        same = np.isclose(part, whole[rows], rtol=0, atol=0, equal_nan=True)
        if not same.all():
            bad_rows, bad_cols = np.nonzero(~same)
            names = sorted({columns[c] for c in bad_cols})
            row = frame.index[rows[bad_rows[0]]]
            raise FeatureFunctionError(
                f"{spec.name}: features of a row change with the rest of its batch: columns {names} differ between "
                f"the whole sample and {what} (first at row index {row!r}); scoring one day would not reproduce "
                "what training saw. Compute each row from that row alone, or carry history in the source columns."
            )
