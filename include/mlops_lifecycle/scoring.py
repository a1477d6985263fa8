"""Feature materialisation and batch scoring with the champion.

Each predictions row carries the entity id, the event time, the model name and
version, the MLflow run id of that version and the Airflow run id, and each day's
``manifest.json`` adds the input partition's content hash and the code version:
together they trace any prediction back to the model, the data and the code.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from typing import Any

from mlops_lifecycle import config, evaluation, features, lake, registry
from mlops_lifecycle.spec import ModelSpec

log = logging.getLogger(__name__)


def materialize_features(spec: ModelSpec, ds: str | dt.date) -> dict[str, Any]:
    """Stage function: compute the day's feature matrix from its validated partition."""
    import pandas as pd

    src = lake.data_file(spec.name, "validated", ds)
    frame = pd.read_parquet(src, engine="pyarrow")
    feats = features.build_features(spec, frame)
    feats.insert(0, spec.event_time, frame[spec.event_time].to_numpy())
    feats.insert(0, spec.entity_id, frame[spec.entity_id].to_numpy())
    target = lake.write_parquet(lake.data_file(spec.name, "features", ds), feats)
    return {"model": spec.name, "ds": lake.as_date(ds).isoformat(), "rows": len(feats), "path": str(target),
            "input_sha256": lake.file_sha256(src)}


@lru_cache(maxsize=8)
def _cached_model(tracking_uri: str, model_name: str, version: str) -> Any:
    # Keyed by tracking URI too, so tests that switch stores never see another store's model.
    import mlflow.xgboost

    return mlflow.xgboost.load_model(f"models:/{model_name}/{version}")


def champion_info(spec: ModelSpec) -> dict[str, Any] | None:
    """The champion's version and run id, or None when there is none yet."""
    champ = registry.champion(spec)
    if champ is None:
        return None
    return {"version": champ.version, "run_id": champ.run_id}


def score_partition(spec: ModelSpec, ds: str | dt.date, *, version: str, airflow_run_id: str) -> dict[str, Any]:
    """Stage function: score the day's features with a given registered version.

    The version is resolved once per DAG run (by the task before this one) and passed
    in, so a promotion that lands mid-run cannot mix two models in one day's output.
    """
    import numpy as np
    import pandas as pd

    mv = registry.get_version(spec, version)
    registry.client()
    model = _cached_model(config.mlflow_tracking_uri(), spec.model_name, str(mv.version))
    src = lake.data_file(spec.name, "features", ds)
    frame = pd.read_parquet(src, engine="pyarrow")
    matrix = np.ascontiguousarray(frame[features.feature_columns(spec)].to_numpy(dtype=np.float32))
    pred = evaluation.predict(spec, model, matrix)
    out = pd.DataFrame({spec.entity_id: frame[spec.entity_id], spec.event_time: frame[spec.event_time], "prediction": pred})
    if spec.is_classifier:
        out["predicted_label"] = (pred >= 0.5).astype("int8")
    out["model_name"] = spec.model_name
    out["model_version"] = int(mv.version)
    out["mlflow_run_id"] = mv.run_id
    out["airflow_run_id"] = airflow_run_id
    target = lake.write_parquet(lake.data_file(spec.name, "predictions", ds), out)
    manifest = {
        "model": spec.name,
        "registered_model": spec.model_name,
        "model_version": int(mv.version),
        "mlflow_run_id": mv.run_id,
        "model_data_version": mv.tags.get("data.version"),
        "airflow_run_id": airflow_run_id,
        "ds": lake.as_date(ds).isoformat(),
        "rows": len(out),
        "features_path": str(src),
        "features_sha256": lake.file_sha256(src),
        "validated_sha256": lake.file_sha256(lake.data_file(spec.name, "validated", ds)),
        "code_version": config.code_version(),
        "predictions_path": str(target),
    }
    lake.write_json(target.parent / "manifest.json", manifest)
    log.info("scored %s rows of %s %s with v%s", len(out), spec.name, manifest["ds"], mv.version)
    return {k: manifest[k] for k in ("model", "ds", "rows", "model_version", "mlflow_run_id", "predictions_path")}
