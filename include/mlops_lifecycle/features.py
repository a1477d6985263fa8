"""Feature computation: the one function that turns validated rows into model inputs.

Training and scoring both call :func:`build_features`, so a row gets exactly the same
features in the daily scoring run as it got when the model was trained. Numeric
columns become float32 (missing values stay NaN, which XGBoost handles); each
category becomes one 0/1 column per category declared in the spec, in the spec's
order, so the matrix layout never depends on which categories a batch happens to hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_lifecycle.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def feature_columns(spec: ModelSpec) -> list[str]:
    """Names of the model's input columns, in matrix order."""
    cols: list[str] = []
    for f in spec.features:
        if f.type == "category":
            cols.extend(f"{f.name}__{c}" for c in f.categories or [])
        else:
            cols.append(f.name)
    return cols


def build_matrix(spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """The float32 feature matrix (rows x :func:`feature_columns`) for a validated frame.

    Raises:
        KeyError: a spec feature is missing from the frame (validation should have caught it).
    """
    import numpy as np

    missing = [f.name for f in spec.features if f.name not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks feature columns {missing}; was it validated against spec {spec.name!r}?")
    width = len(feature_columns(spec))
    out = np.zeros((len(frame), width), dtype=np.float32)
    col = 0
    for f in spec.features:
        values = frame[f.name]
        if f.type == "category":
            codes = values.to_numpy(dtype=object)
            for category in f.categories or []:
                out[:, col] = codes == category
                col += 1
        else:
            out[:, col] = values.to_numpy(dtype=np.float32, na_value=np.nan)
            col += 1
    return out


def build_features(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The feature matrix as a DataFrame with named columns (for MLflow signatures and examples)."""
    import pandas as pd

    return pd.DataFrame(build_matrix(spec, frame), columns=feature_columns(spec), index=frame.index)
