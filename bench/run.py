"""The benchmark suite: one JSON line per figure, each measured beside its baseline.

    python -m bench.run            # the sizes of issue 6 (make bench; ~9 min on 2 cores)
    python -m bench.run --quick    # small sizes, a smoke run of every figure (~3.5 min)
    python -m bench.run --only scoring,drift

Every figure is a line on stdout with at least ``name``, ``value``, ``unit``,
``baseline`` (the baseline's value, same unit), ``ratio`` (value / baseline),
``target`` (the condition, as text) and ``met`` (true/false); progress goes to stderr.
Each measurement runs in a fresh subprocess (``--worker``), so peak memory is that
process's own peak RSS and no figure inherits another's caches. Everything is
generated from fixed seeds into a temporary folder that is removed at the end
(``--keep`` keeps it). See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = "BENCH_RESULT "
REQUIRED = ("name", "value", "unit", "baseline", "ratio", "target", "met")
GROUPS = ("parse", "training", "scoring", "validation", "drift", "orchestration")

SIZES = {
    "full": {
        "scoring": [1_000_000, 10_000_000], "scoring_reps": {1_000_000: 3, 10_000_000: 2}, "scoring_train": 200_000,
        "drift": 1_000_000, "validation": 1_000_000, "parse": [0, 1, 10, 100],
        "orchestration": 100_000, "orchestration_reps": 2, "training": 1_000_000,
    },
    "quick": {
        "scoring": [20_000, 200_000], "scoring_reps": {20_000: 2, 200_000: 2}, "scoring_train": 20_000,
        "drift": 60_000, "validation": 20_000, "parse": [0, 1, 5, 20],
        "orchestration": 5_000, "orchestration_reps": 1, "training": 50_000,
    },
}

N_FEATURES = 20
DAY0 = dt.date(2026, 1, 1)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _label(rows: int) -> str:
    return f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else f"{rows // 1000}k"


# ---- specs ------------------------------------------------------------------------------


def scoring_spec_yaml(name: str = "bench_scoring") -> str:
    """A model of 20 float features: the shape of issue 6's reference numbers."""
    feats = "\n".join(f"  - {{name: f{j:02d}, type: float}}" for j in range(N_FEATURES))
    return f"""name: {name}
owner: bench
description: Benchmark model, 20 float features.
start_date: 2026-01-01
source: {{kind: file, path: "{{data_dir}}/landing/{name}/{{ds}}.parquet"}}
entity_id: row_id
event_time: event_time
target: {{column: label, task: binary_classification}}
features:
{feats}
promotion: {{metric: roc_auc}}
"""


DRIFT_NUM = [f"n{j:02d}" for j in range(16)]
DRIFT_CAT = [f"c{j}" for j in range(4)]


def drift_spec_yaml() -> str:
    """16 numeric and 4 categorical columns (20), Evidently's defaults (drift_share 0.5)."""
    feats = [f"  - {{name: {c}, type: float, nullable: true, max_null_fraction: 0.5}}" for c in DRIFT_NUM]
    feats += [f"  - {{name: {c}, type: category, categories: [a, b, c, d, e]}}" for c in DRIFT_CAT]
    return """name: bench_drift
owner: bench
description: Benchmark drift columns.
start_date: 2026-01-01
source: {kind: file, path: "{data_dir}/landing/bench_drift/{ds}.parquet"}
entity_id: row_id
event_time: event_time
target: {column: label, task: binary_classification}
features:
""" + "\n".join(feats) + "\npromotion: {metric: roc_auc}\n"


def example_spec_yaml(name: str, small_training: bool = False) -> str:
    """The built-in late_delivery spec under another name (and, for a quick first model, a small training set-up)."""
    import yaml

    data = yaml.safe_load((ROOT / "dags" / "specs" / "late_delivery.yaml").read_text())
    data["name"] = name
    data["source"]["path"] = f"{{data_dir}}/landing/{name}/{{ds}}.parquet"
    if small_training:
        data["training"].update(window_days=3, validation_days=1, holdout_days=1, min_rows=500,
                                xgboost={"n_estimators": 60, "max_depth": 5, "learning_rate": 0.2, "tree_method": "hist"})
        data["retraining"]["min_rows"] = 500
        data["validation"]["min_rows"] = 100
    return yaml.safe_dump(data, sort_keys=False)


# ---- generated data -----------------------------------------------------------------------


def scoring_rows(start: int, rows: int, day: dt.date, seed: int) -> Any:
    """``rows`` rows of the 20-feature model (ids from ``start``), with a label that
    depends non-linearly on half the features."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, N_FEATURES))
    logit = (1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.6 * x[:, 2] * x[:, 3] + 0.7 * np.sin(2 * x[:, 4]) + 0.4 * np.abs(x[:, 5])
             - 0.3 * x[:, 6] ** 2 + 0.5 * (x[:, 7] > 0.5) + 0.3 * x[:, 8] * x[:, 9])
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    start_ns = np.datetime64(day.isoformat(), "ns").astype(np.int64)
    times = np.sort(rng.integers(0, 86_400 * 10**9, rows)) + start_ns
    cols = {"row_id": pa.array(np.arange(start, start + rows, dtype=np.int64)).cast(pa.string()),
            "event_time": pa.array(times.astype("datetime64[ns]"))}
    cols.update({f"f{j:02d}": pa.array(x[:, j]) for j in range(N_FEATURES)})
    cols["label"] = pa.array(label)
    return pa.table(cols)


PROBS = [0.35, 0.25, 0.2, 0.12, 0.08]
LEVELS = ["a", "b", "c", "d", "e"]
# Shifts in units of the column's standard deviation (normed Wasserstein = the shift) and
# mixing weights towards the reversed category mix (Jensen-Shannon 0.057 / 0.125 / 0.27).
NUM_SHIFT = {"tiny": 0.05, "small": 0.13, "large": 0.5}
CAT_MIX = {"tiny": 0.15, "small": 0.35, "large": 0.8}
SCENARIOS: dict[str, dict[str, str]] = {
    "no_shift": {},
    "small_1": {"n00": "small"},
    "small_5": {**{c: "small" for c in DRIFT_NUM[:4]}, "c0": "small"},
    "small_20": {**{c: "small" for c in DRIFT_NUM}, **{c: "small" for c in DRIFT_CAT}},
    "large_1": {"n01": "large"},
    "large_5": {**{c: "large" for c in DRIFT_NUM[4:8]}, "c1": "large"},
    "large_20": {**{c: "large" for c in DRIFT_NUM}, **{c: "large" for c in DRIFT_CAT}},
    "below_threshold_5": {**{c: "tiny" for c in DRIFT_NUM[8:12]}, "c2": "tiny"},
    "new_category": {"c3": "new_category"},
    "null_rate": {"n05": "nulls"},
}


def _sd(column: str) -> float:
    j = int(column[1:])
    return 1.0 if j < 10 else (math.sqrt((math.e**0.25 - 1) * math.e**0.25) if j < 14 else math.sqrt(20))


def drift_column(column: str, side: str, rows: int, variant: str | None = None) -> Any:
    """One column of the drift data: ``side`` is ref or cur; ``variant`` shifts the current one.

    Numeric: n00-n09 normal, n10-n13 log-normal, n14-n15 Poisson counts; n05 has 2 % nulls.
    Categorical: five levels, skewed. Each column has its own seed, so a column is the
    same in every scenario that does not shift it.
    """
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(f"{column}/{side}/{rows}".encode()))
    if column in DRIFT_NUM:
        j = int(column[1:])
        v = rng.normal(0, 1, rows) if j < 10 else rng.lognormal(0, 0.5, rows) if j < 14 else rng.poisson(20, rows) * 1.0
        if variant in NUM_SHIFT:
            v = v + NUM_SHIFT[variant] * _sd(column)
        null_rate = 0.25 if variant == "nulls" else 0.02 if column == "n05" else 0.0
        if null_rate:
            v[rng.random(rows) < null_rate] = np.nan
        return v
    p = np.array(PROBS)
    if variant in CAT_MIX:
        p = (1 - CAT_MIX[variant]) * p + CAT_MIX[variant] * p[::-1]
    levels = np.array([*LEVELS, "new"], dtype=object)  # shared str objects, as pyarrow's to_pandas gives
    codes = rng.choice(5, rows, p=p)
    if variant == "new_category":
        codes[rng.random(rows) < 0.05] = 5
    return levels[codes]


def drift_frame(side: str, rows: int, shifts: dict[str, str]) -> Any:
    import pandas as pd

    return pd.DataFrame({c: drift_column(c, side, rows, shifts.get(c)) for c in DRIFT_NUM + DRIFT_CAT})


# ---- workers (each runs in its own process) ---------------------------------------------


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and of its waited-for children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn, *args, **kwargs) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds from getrusage): CPU tells work from waiting
    when other processes share the cores."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, _cpu_seconds() - cpu


def w_scoring_setup(a: dict) -> dict:
    """Register the 200-tree model and write each size's validated and features partitions."""
    import mlflow
    import mlflow.xgboost
    import numpy as np
    import pyarrow.parquet as pq
    import xgboost as xgb

    from mlops_lifecycle import lake, registry, scoring
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("bench_scoring")
    train = scoring_rows(0, a["train_rows"], DAY0, seed=1)
    x = np.column_stack([train.column(f"f{j:02d}").to_numpy() for j in range(N_FEATURES)]).astype(np.float32)
    model = xgb.XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist", n_jobs=os.cpu_count())
    model.fit(x, train.column("label").to_numpy())
    with mlflow.start_run(experiment_id=registry.ensure_experiment(spec)):
        mlflow.xgboost.log_model(model, name="model", registered_model_name=spec.model_name,
                                 pip_requirements=[f"xgboost=={xgb.__version__}"])
    out = {}
    for i, rows in enumerate(a["sizes"]):
        day = DAY0 + dt.timedelta(days=i + 1)
        target = lake.data_file(spec.name, "validated", day)
        with lake.atomic_path(target) as tmp:
            first = scoring_rows(0, min(rows, 1_000_000), day, seed=100 + i)
            with pq.ParquetWriter(tmp, first.schema) as writer:
                writer.write_table(first)
                for start in range(1_000_000, rows, 1_000_000):
                    writer.write_table(scoring_rows(start, min(1_000_000, rows - start), day, seed=100 + i + start))
        _, wall, _ = _timed(scoring.materialize_features, spec, day)
        out[str(rows)] = {"day": day.isoformat(), "features_s": wall}
    return out


def w_scoring_product(a: dict) -> dict:
    """The product's scoring function, Parquet in to predictions Parquet out, ``reps`` times."""
    from mlops_lifecycle import scoring
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("bench_scoring")
    _, load_s, _ = _timed(scoring._load, spec, "1")  # once per worker process (cached)
    runs = []
    for r in range(a["reps"]):
        out, wall, cpu = _timed(scoring.score_partition, spec, a["day"], version="1", airflow_run_id=f"bench-{r}")
        runs.append({"wall": wall, "cpu": cpu})
    return {"rows": out["rows"], "runs": runs, "model_load_s": load_s}


def w_scoring_raw(a: dict) -> dict:
    """Raw ``Booster.inplace_predict`` on the same rows, already in memory as float32."""
    import numpy as np
    import pyarrow.parquet as pq

    from mlops_lifecycle import features, lake, scoring
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("bench_scoring")
    _, booster = scoring._load(spec, "1")
    cols = features.feature_columns(spec)
    table = pq.read_table(lake.data_file(spec.name, "features", a["day"]), columns=cols)
    x = np.empty((table.num_rows, len(cols)), dtype=np.float32)
    for j, c in enumerate(cols):
        x[:, j] = table.column(c).to_numpy()
    del table
    runs = []
    for _ in range(a["reps"]):
        _, wall, cpu = _timed(booster.inplace_predict, x)
        runs.append({"wall": wall, "cpu": cpu})
    return {"rows": len(x), "runs": runs}


def _drift_spec():
    from mlops_lifecycle.spec import get_spec

    return get_spec("bench_drift")


def _warm_evidently(spec) -> None:
    """Import Evidently and run it once on a few rows, outside any timed window."""
    from mlops_lifecycle import drift

    drift.compute_drift(spec, drift_frame("cur", 2000, {}), drift_frame("ref", 2000, {}))


def w_drift_product(a: dict) -> dict:
    """``drift.compute_drift`` (sampled) on ``rows`` x ``rows`` of one scenario, HTML report written."""
    from mlops_lifecycle import drift

    spec = _drift_spec()
    _warm_evidently(spec)
    cur, ref = drift_frame("cur", a["rows"], SCENARIOS[a["scenario"]]), drift_frame("ref", a["rows"], {})
    out_dir = Path(a["out_dir"])
    summary, wall, cpu = _timed(drift.compute_drift, spec, cur, ref, out_dir=out_dir)
    return {"wall": wall, "cpu": cpu, "summary": summary, "html_bytes": (out_dir / "report.html").stat().st_size}


def w_drift_full(a: dict) -> dict:
    """A full Evidently run on all rows: the product's report configuration, no sampling."""
    from evidently import Dataset

    from mlops_lifecycle import drift

    spec = _drift_spec()
    _warm_evidently(spec)
    cur, ref = drift_frame("cur", a["rows"], SCENARIOS[a["scenario"]]), drift_frame("ref", a["rows"], {})
    columns = spec.drift_columns
    definition = drift._definition(spec, columns)

    def run():
        snap = drift.build_report(spec, columns, with_prediction=False).run(
            current_data=Dataset.from_pandas(cur, data_definition=definition),
            reference_data=Dataset.from_pandas(ref, data_definition=definition),
        )
        snap.save_html(str(Path(a["out_dir"]) / "full_report.html"))
        return drift.summarize(spec, snap.dict(), columns)

    summary, wall, cpu = _timed(run)
    return {"wall": wall, "cpu": cpu, "summary": summary}


def _full_stattest(spec, ref, cur, column: str) -> dict:
    """Evidently's own verdict on all rows: the test it picks (``get_stattest``) run on the
    cleaned columns, as ``get_one_column_drift`` does inside a full report."""
    import numpy as np
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    from mlops_lifecycle import drift

    kind = ColumnType.Numerical if drift._numeric(spec, column) else ColumnType.Categorical
    r = ref.replace([-np.inf, np.inf], np.nan).dropna()
    c = cur.replace([-np.inf, np.inf], np.nan).dropna()
    test = get_stattest(r, c, kind, spec.drift.method)
    res = test(r, c, kind, spec.drift.threshold)
    return {"score": float(res.drift_score), "drifted": bool(res.drifted), "threshold": res.actual_threshold,
            "method": test.display_name}


def w_drift_matrix(a: dict) -> dict:
    """Every scenario: the product's sampled verdicts against Evidently's verdicts on all rows."""
    import pandas as pd

    from mlops_lifecycle import drift

    spec = _drift_spec()
    _warm_evidently(spec)
    rows = a["rows"]
    columns = spec.drift_columns
    ref = drift_frame("ref", rows, {})
    cache: dict[tuple[str, str | None], dict] = {}
    out = {}
    for name, shifts in SCENARIOS.items():
        cur = pd.DataFrame({c: drift_column(c, "cur", rows, shifts.get(c)) for c in columns})
        full_cols = {}
        for c in columns:
            key = (c, shifts.get(c))
            if key not in cache:
                cache[key] = _full_stattest(spec, ref[c], cur[c], c)
            full_cols[c] = cache[key]
        share = sum(v["drifted"] for v in full_cols.values()) / len(columns)
        sampled, wall, _ = _timed(drift.compute_drift, spec, cur, ref)
        out[name] = {
            "full": {"dataset_drift": share >= spec.drift.drift_share, "columns": full_cols},
            "sampled": {"dataset_drift": sampled["dataset_drift"], "columns": sampled["columns"],
                        "rows": sampled["sampled"]},
            "sampled_s": wall,
        }
        log(f"drift matrix: {name} done")
    return {"scenarios": out}


def w_validation(a: dict) -> dict:
    """Validate a day of ``rows`` rows with the model's full expectation suite, against reading the Parquet alone."""
    import pandas as pd

    from mlops_lifecycle import ingestion, lake, validation
    from mlops_lifecycle.examples import late_delivery
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("bench_valid")
    history, day = DAY0, DAY0 + dt.timedelta(days=1)
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, [history, day], rows=a["rows"])
    # The day before is validated first: it warms the libraries up and gives the volume
    # check its history, so the measured run evaluates every expectation of the suite.
    ingestion.ingest(spec, history)
    validation.validate_partition(spec, history)
    ingestion.ingest(spec, day)
    raw = lake.data_file(spec.name, "raw", day)
    reads = [_timed(pd.read_parquet, raw, engine="pyarrow")[1] for _ in range(3)]
    result, wall, cpu = _timed(validation.validate_partition, spec, day)
    report = lake.read_json(lake.report_dir(spec.name, "validation", day) / "result.json")
    return {"rows": result["rows"], "checks": result["checks"], "wall": wall, "cpu": cpu, "read_s": min(reads),
            "volume_checked": report.get("volume") is not None}


def w_parse(a: dict) -> dict:
    """Parse the dags folder once, as the DAG processor does (Airflow already imported)."""
    import airflow.sdk  # noqa: F401 - the processor has Airflow loaded before it parses a file
    from airflow.dag_processing.dagbag import DagBag

    bag, wall, cpu = _timed(DagBag, dag_folder=str(ROOT / "dags"))
    return {"wall": wall, "cpu": cpu, "dags": len(bag.dag_ids), "errors": {k: str(v)[:500] for k, v in bag.import_errors.items()}}


def w_orch_setup(a: dict) -> dict:
    """History days and a first champion for the orchestration model, with the stage functions."""
    from mlops_lifecycle import ingestion, replay, training
    from mlops_lifecycle.examples import late_delivery
    from mlops_lifecycle.spec import get_spec

    spec = get_spec("bench_orch")
    history = [DAY0 + dt.timedelta(days=i) for i in range(3)]
    day = DAY0 + dt.timedelta(days=3)
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, [*history, day], rows=a["rows"])
    replay.seed_history(spec, history)
    window = training.assemble_window(spec, history[-1], len(history))
    trained = training.train_and_register(spec, window, trigger={"reason": "bench", "by": "bench"})
    decision = training.compare_and_promote(spec, trained, actor="bench", auto_promote=True)
    return {"day": day.isoformat(), "version": trained["version"], "decision": str(decision)[:200]}


STAGE_MODULES = ("ingestion", "validation", "scoring", "monitoring")


def w_orch_direct(a: dict) -> dict:
    """The daily DAG's stage functions called in its order, no Airflow."""
    import importlib

    mods = {m: importlib.import_module(f"mlops_lifecycle.{m}") for m in STAGE_MODULES}
    ingestion, validation, scoring, monitoring = (mods[m] for m in STAGE_MODULES)
    from mlops_lifecycle.spec import get_spec

    day, run_id = a["day"], "bench_direct"
    stages: dict[str, float] = {}

    def stage(label: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(get_spec("bench_orch"), *args, **kwargs)  # each task looks its spec up too
        stages[label] = stages.get(label, 0.0) + time.perf_counter() - t0
        return out

    def daily():
        stage("wait_for_batch", ingestion.wait_for_source, day, waited_seconds=0)
        stage("ingest", ingestion.ingest, day)
        stage("validate", validation.validate_partition, day)
        stage("compute_features", scoring.materialize_features, day)
        champ = stage("resolve_champion", scoring.champion_info)
        chunks = stage("plan_scoring", scoring.plan_scoring, day)
        parts = [stage("score_chunk", scoring.score_chunk, day, c, version=champ["version"], airflow_run_id=run_id)
                 for c in chunks]
        scored = stage("commit_predictions", scoring.commit_predictions, day, parts, version=champ["version"],
                       airflow_run_id=run_id)
        check = stage("drift_check", monitoring.check_drift, day, version=scored["model_version"])
        return stage("decide_retraining", monitoring.decide_retraining, day, check, run_id=run_id)

    decision, wall, cpu = _timed(daily)
    return {"wall": wall, "cpu": cpu, "retrain": decision["retrain"], "stages": stages}


def w_orch_airflow(a: dict) -> dict:
    """One run of the daily DAG through Airflow (``DAG.test``: real task instances, XCom and state in the DB)."""
    import importlib

    for m in STAGE_MODULES:  # the same imports as the direct run before its clock starts
        importlib.import_module(f"mlops_lifecycle.{m}")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("bench_orch__daily")
    # DAG.test serves the task execution API from inside this process (FastAPI behind an
    # in-process transport), started on the first request: about 3 s here, paid once per
    # process. A deployment's api-server starts once and then answers in milliseconds,
    # so it is started (and asked once) before the clock; its cost is reported apart
    # (api_startup_s) and in cold_ratio.
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    def start_api() -> None:
        try:
            InProcessTestSupervisor._api_client(dag).variables.get("bench_api_warm_up")
        except Exception:  # noqa: BLE001 - a "not found" answer is the expected one
            pass

    _, api_s, _ = _timed(start_api)
    logical = dt.datetime.combine(dt.date.fromisoformat(a["day"]), dt.time(), tzinfo=dt.UTC)
    dr, wall, cpu = _timed(dag.test, logical_date=logical)
    tis = dr.get_task_instances()
    states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state) for ti in tis}
    # Time inside task instances (Airflow's own start/end stamps) vs the whole run: the
    # rest is DAG.test's scheduling loop between tasks.
    in_tasks = sum(ti.duration or 0.0 for ti in tis)
    return {"wall": wall, "cpu": cpu, "state": str(dr.state), "tasks": states, "in_tasks_s": in_tasks, "api_startup_s": api_s,
            "durations": {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.duration for ti in tis}}


def w_training(a: dict) -> dict:
    """XGBoost at ``rows`` rows x 20 features: all cores vs one, and the product's early-stopping fit."""
    import numpy as np
    import xgboost as xgb

    from mlops_lifecycle import training
    from mlops_lifecycle.spec import get_spec

    rows = a["rows"]
    table = scoring_rows(0, rows, DAY0, seed=7)
    x = np.column_stack([table.column(f"f{j:02d}").to_numpy() for j in range(N_FEATURES)]).astype(np.float32)
    y = table.column("label").to_numpy()
    del table
    cut = int(rows * 0.9)
    cores = os.cpu_count() or 1

    def fit(n_jobs: int):
        m = xgb.XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist", n_jobs=n_jobs)
        return m.fit(x[:cut], y[:cut])

    _, all_s, _ = _timed(fit, cores)
    _, one_s, _ = _timed(fit, 1)
    es_model = training._estimator(get_spec("bench_scoring"),
                                   {"n_estimators": 1000, "max_depth": 6, "learning_rate": 0.1, "n_jobs": cores})
    _, es_s, _ = _timed(es_model.fit, x[:cut], y[:cut], eval_set=[(x[cut:], y[cut:])], verbose=False)
    return {"rows": cut, "cores": cores, "all_cores_s": all_s, "one_core_s": one_s, "early_stopping_s": es_s,
            "best_iteration": int(es_model.best_iteration), "rounds_run": int(es_model.get_booster().num_boosted_rounds())}


WORKERS = {name[2:]: fn for name, fn in globals().items() if name.startswith("w_") and callable(fn)}


def worker_main(name: str, args: dict) -> None:
    from mlops_lifecycle import config

    config.quiet_third_party()
    result = WORKERS[name](args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.flush()
    print(RESULT + json.dumps(result, default=str), flush=True)


# ---- the parent: run workers, print figures -----------------------------------------------


class Bench:
    def __init__(self, work: Path, mode: str):
        self.work, self.mode, self.sizes = work, mode, SIZES[mode]
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.lines: list[dict] = []

    def env(self, group: str) -> dict[str, str]:
        env = os.environ.copy()
        env.pop("MLFLOW_TRACKING_URI", None)
        home = self.work / group
        env.update({
            "MLOPS_DATA_DIR": str(home / "data"),
            "MLOPS_SPECS_DIR": str(home / "specs"),
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow' / 'airflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GX_ANALYTICS_ENABLED": "false",
            "TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        })
        return env

    def specs(self, group: str, files: dict[str, str]) -> None:
        folder = self.work / group / "specs"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / f"{name}.yaml").write_text(text)

    def run(self, group: str, worker: str, **args) -> dict:
        logfile = self.logs / f"{group}.log"
        with open(logfile, "a") as fh:
            fh.write(f"\n==== {worker} {json.dumps(args)}\n")
            fh.flush()
            proc = subprocess.run([sys.executable, "-m", "bench.run", "--worker", worker, "--args", json.dumps(args)],
                                  cwd=ROOT, env=self.env(group), stdout=subprocess.PIPE, stderr=fh, text=True)
            fh.write(proc.stdout)
        found = [line[len(RESULT):] for line in proc.stdout.splitlines() if line.startswith(RESULT)]
        if proc.returncode != 0 or not found:
            tail = "".join(logfile.read_text().splitlines(keepends=True)[-40:])
            raise RuntimeError(f"worker {worker} failed (exit {proc.returncode}); end of {logfile}:\n{tail}")
        return json.loads(found[-1])

    def airflow_db(self, group: str) -> None:
        (self.work / group / "airflow").mkdir(parents=True, exist_ok=True)
        airflow = Path(sys.executable).parent / "airflow"
        with open(self.logs / f"{group}.log", "a") as fh:
            subprocess.run([str(airflow), "db", "migrate"], env=self.env(group), stdout=fh, stderr=fh, check=True)

    def emit(self, name: str, value: float, unit: str, baseline: float | None, target: str, met: bool | None,
             **extra: Any) -> None:
        ratio = None if baseline in (None, 0) else value / baseline
        line = {"name": name, "value": _round(value), "unit": unit, "baseline": _round(baseline),
                "ratio": _round(ratio), "target": target, "met": met, "mode": self.mode,
                # Other work on the machine slows wall-clock figures: say how busy it was.
                "load_avg_1m": _round(os.getloadavg()[0]), "cores": os.cpu_count(),
                **{k: _round(v) for k, v in extra.items()}}
        check_line(line)
        self.lines.append(line)
        print(json.dumps(line), flush=True)

    # -- groups ------------------------------------------------------------------------

    def parse(self) -> None:
        counts = self.sizes["parse"]
        seconds = {}
        for n in counts:
            group = f"parse_{n}"
            self.specs(group, {f"model_{i:03d}": example_spec_yaml(f"model_{i:03d}") for i in range(n)})
            out = self.run(group, "parse")
            if out["errors"] or out["dags"] != 4 * n:
                raise RuntimeError(f"parsing {n} specs gave {out['dags']} DAGs and errors {out['errors']}")
            seconds[n] = out["wall"]
            log(f"parse: {n} specs -> {out['dags']} DAGs in {out['wall']:.2f} s")
        fixed = seconds[counts[0]] * 1000
        for n in counts[1:]:
            per_spec = (seconds[n] - seconds[counts[0]]) * 1000 / n
            self.emit(f"dag_parse_ms_per_spec_{n}", per_spec, "ms/spec", fixed, "value < 50", per_spec < 50,
                      total_ms=seconds[n] * 1000, dags=4 * n,
                      note=f"(parse time with {n} specs - with 0 specs) / {n}; baseline = parse time with 0 specs")
        a, b, c = counts[1], counts[2], counts[3]
        early = (seconds[b] - seconds[a]) * 1000 / (b - a)
        late = (seconds[c] - seconds[b]) * 1000 / (c - b)
        self.emit("dag_parse_linearity", late, "ms/spec", early, "ratio <= 1.5", late / early <= 1.5 if early > 0 else None,
                  note=f"marginal ms per spec from {b} to {c} specs vs from {a} to {b}")

    def training(self) -> None:
        rows = self.sizes["training"]
        self.specs("training", {"bench_scoring": scoring_spec_yaml()})
        log(f"training: XGBoost on {rows} rows")
        out = self.run("training", "training", rows=rows)
        lab = _label(rows)
        self.emit(f"training_s_{lab}_all_cores", out["all_cores_s"], "s", out["one_core_s"], "reported (no target)", True,
                  cores=out["cores"], rows=out["rows"], speedup=out["one_core_s"] / out["all_cores_s"],
                  note="200 trees, depth 6, hist, 20 float features; baseline = the same fit on 1 core")
        self.emit(f"training_s_{lab}_early_stopping", out["early_stopping_s"], "s", out["all_cores_s"],
                  "reported (no target)", True, best_iteration=out["best_iteration"], rounds_run=out["rounds_run"],
                  note="product estimator (training._estimator): up to 1000 rounds, early stopping 20 rounds on a 10% "
                       "validation set, all cores; baseline = 200 fixed rounds, all cores")

    def scoring(self) -> None:
        sizes = self.sizes["scoring"]
        self.specs("scoring", {"bench_scoring": scoring_spec_yaml()})
        log(f"scoring: model + partitions of {sizes} rows")
        setup = self.run("scoring", "scoring_setup", sizes=sizes, train_rows=self.sizes["scoring_train"])
        peaks = {}
        for rows in sizes:
            reps = self.sizes["scoring_reps"][rows]
            day = setup[str(rows)]["day"]
            log(f"scoring: {rows} rows, product then raw, best of {reps}")
            product = self.run("scoring", "scoring_product", day=day, reps=reps)
            raw = self.run("scoring", "scoring_raw", day=day, reps=reps)
            best_p = min(r["wall"] for r in product["runs"])
            best_r = min(r["wall"] for r in raw["runs"])
            cpu_p = min(r["cpu"] for r in product["runs"])
            cpu_r = min(r["cpu"] for r in raw["runs"])
            value, baseline = rows / best_p, rows / best_r
            peaks[rows] = product["peak_rss_mb"]
            self.emit(f"scoring_rows_per_s_{_label(rows)}", value, "rows/s", baseline, "ratio >= 0.9",
                      value / baseline >= 0.9, cpu_ratio=cpu_r / cpu_p, runs_s=[r["wall"] for r in product["runs"]],
                      baseline_runs_s=[r["wall"] for r in raw["runs"]], model_load_s=product["model_load_s"],
                      peak_rss_mb=product["peak_rss_mb"], baseline_peak_rss_mb=raw["peak_rss_mb"],
                      note="scoring.score_partition (features Parquet -> predictions Parquet + manifest) vs "
                           "Booster.inplace_predict on the same rows as an in-memory float32 matrix; best wall time; "
                           "cpu_ratio = baseline CPU s / product CPU s")
        small, large = sizes
        value = peaks[large]
        self.emit(f"scoring_peak_rss_mb_{_label(large)}", value, "MB", peaks[small],
                  f"value <= 1500 and ratio <= 1.2 (baseline = peak at {_label(small)})",
                  value <= 1500 and value / peaks[small] <= 1.2,
                  note="peak RSS of the scoring process (imports, model, every repetition included)")

    def validation(self) -> None:
        rows = self.sizes["validation"]
        self.specs("validation", {"bench_valid": example_spec_yaml("bench_valid")})
        log(f"validation: {rows} rows of the example model")
        out = self.run("validation", "validation", rows=rows)
        value, baseline = out["rows"] / out["wall"], out["rows"] / out["read_s"]
        self.emit(f"validation_rows_per_s_{_label(rows)}", value, "rows/s", baseline, "reported (no target)", True,
                  checks=out["checks"], volume_checked=out["volume_checked"], seconds=out["wall"],
                  read_seconds=out["read_s"], peak_rss_mb=out["peak_rss_mb"],
                  note="validation.validate_partition (read raw, full GX suite, Data Docs, write validated) vs "
                       "pandas.read_parquet of the same file")

    def drift(self) -> None:
        rows = self.sizes["drift"]
        self.specs("drift", {"bench_drift": drift_spec_yaml()})
        out_dir = self.work / "drift" / "reports"
        out_dir.mkdir(parents=True, exist_ok=True)
        lab = _label(rows)
        log(f"drift: product (sampled) on {rows} x {rows} x 20")
        product = self.run("drift", "drift_product", rows=rows, scenario="large_5", out_dir=str(out_dir))
        log(f"drift: full Evidently on {rows} x {rows} x 20 (the baseline; ~2 min at 1m)")
        full = self.run("drift", "drift_full", rows=rows, scenario="large_5", out_dir=str(out_dir))
        log(f"drift: scenario matrix at {rows} x {rows}")
        matrix = self.run("drift", "drift_matrix", rows=rows)
        self.emit(f"drift_check_s_{lab}", product["wall"], "s", full["wall"], "value <= 10", product["wall"] <= 10,
                  cpu_s=product["cpu"], baseline_cpu_s=full["cpu"],
                  speedup=full["wall"] / product["wall"], sampled=product["summary"]["sampled"]["current"]
                  if product["summary"]["sampled"] else None, html_bytes=product["html_bytes"],
                  note="drift.compute_drift (seeded stratified sample, Evidently report + HTML) vs a full Evidently "
                       "DataDriftPreset run + HTML on all rows; scenario large_5")
        self.emit(f"drift_peak_rss_mb_{lab}", product["peak_rss_mb"], "MB", full["peak_rss_mb"], "value <= 1024",
                  product["peak_rss_mb"] <= 1024, note="peak RSS of the process, the two generated frames included")
        self.emit(f"drift_speedup_{lab}", full["wall"] / product["wall"], "x", 1.0, "reported (no target)", True,
                  cpu_speedup=full["cpu"] / product["cpu"], seconds=product["wall"], baseline_seconds=full["wall"],
                  cpu_s=product["cpu"], baseline_cpu_s=full["cpu"],
                  note="full Evidently time / product time, same data (cpu_speedup: the same with CPU seconds)")
        # Agreement: dataset verdict and every column verdict, scenario by scenario.
        agree = total = 0
        worst_margin, worst_error, details = math.inf, 0.0, {}
        for name, res in matrix["scenarios"].items():
            full_cols, samp_cols = res["full"]["columns"], res["sampled"]["columns"]
            same_cols = [c for c in full_cols if full_cols[c]["drifted"] == samp_cols[c]["drifted"]]
            same_ds = res["full"]["dataset_drift"] == res["sampled"]["dataset_drift"]
            agree += len(same_cols) + same_ds
            total += len(full_cols) + 1
            for c, f in full_cols.items():
                worst_margin = min(worst_margin, abs(f["score"] - f["threshold"]))
                worst_error = max(worst_error, abs(f["score"] - samp_cols[c]["score"]))
            details[name] = {"dataset_drift": res["full"]["dataset_drift"], "agree": same_ds and len(same_cols) == len(full_cols),
                             "drifted_full": sorted(c for c, f in full_cols.items() if f["drifted"]),
                             "drifted_sampled": sorted(c for c, f in samp_cols.items() if f["drifted"]),
                             "seconds": res["sampled_s"]}
        # The direct Evidently verdicts stand in for nine more full reports: check them on the one full report run.
        proxy = matrix["scenarios"]["large_5"]["full"]["columns"]
        proxy_ok = all(proxy[c]["drifted"] == v["drifted"] and abs(proxy[c]["score"] - v["score"]) < 1e-9
                       for c, v in full["summary"]["columns"].items())
        self.emit(f"drift_agreement_{lab}", agree / total, "fraction", 1.0, "value == 1.0", agree == total,
                  decisions=total, scenarios=details, max_score_error=worst_error, min_distance_to_threshold=worst_margin,
                  full_report_matches_direct_verdicts=proxy_ok,
                  note="dataset and per-column verdicts of the sampled product run vs Evidently on all rows; full-row "
                       "verdicts come from Evidently's own tests (get_stattest on all rows), checked equal to a full "
                       "report on large_5")

    def orchestration(self) -> None:
        rows = self.sizes["orchestration"]
        self.specs("orchestration", {"bench_orch": example_spec_yaml("bench_orch", small_training=True)})
        log("orchestration: airflow db migrate, history and a first champion")
        self.airflow_db("orchestration")
        setup = self.run("orchestration", "orch_setup", rows=rows)
        direct, flow = [], []
        for i in range(self.sizes["orchestration_reps"]):
            log(f"orchestration: {rows} rows, direct then DAG.test (round {i + 1})")
            direct.append(self.run("orchestration", "orch_direct", day=setup["day"]))
            out = self.run("orchestration", "orch_airflow", day=setup["day"])
            if not out["state"].endswith("success"):
                raise RuntimeError(f"daily DAG run failed: {out['tasks']}")
            flow.append(out)
        value, baseline = min(r["wall"] for r in flow), min(r["wall"] for r in direct)
        self.emit(f"orchestration_s_{_label(rows)}", value, "s", baseline, "ratio <= 1.3", value / baseline <= 1.3,
                  runs_s=[r["wall"] for r in flow], baseline_runs_s=[r["wall"] for r in direct],
                  cpu_s=min(r["cpu"] for r in flow), baseline_cpu_s=min(r["cpu"] for r in direct),
                  cpu_ratio=min(r["cpu"] for r in flow) / min(r["cpu"] for r in direct),
                  runs_cpu_s=[r["cpu"] for r in flow], baseline_runs_cpu_s=[r["cpu"] for r in direct],
                  tasks=len(flow[0]["tasks"]), in_tasks_s=min(r["in_tasks_s"] for r in flow),
                  api_startup_s=min(r["api_startup_s"] for r in flow),
                  cold_ratio=min(r["wall"] + r["api_startup_s"] for r in flow) / baseline,
                  note="one daily run (sensor, ingest, validate, features, champion, plan, mapped scoring, commit, "
                       "drift, decision) through DAG.test vs the same stage functions called in order; fresh process each")


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.4g}") if abs(v) < 1e6 else round(v)
    if isinstance(v, list):
        return [_round(x) for x in v]
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def check_line(line: dict) -> None:
    """A figure line must carry the keys a checking script relies on, with usable types."""
    missing = [k for k in REQUIRED if k not in line]
    if missing:
        raise ValueError(f"figure {line.get('name')!r} lacks {missing}")
    if not isinstance(line["value"], int | float) or not isinstance(line["met"], bool | None):
        raise ValueError(f"figure {line['name']!r}: value must be a number and met a boolean")
    json.dumps(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every figure")
    parser.add_argument("--only", default="", help=f"comma-separated groups out of {','.join(GROUPS)}")
    parser.add_argument("--workdir", help="where to generate data (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and logs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.worker:
        worker_main(opts.worker, json.loads(opts.args))
        return 0
    groups = [g for g in opts.only.split(",") if g] or list(GROUPS)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown groups {unknown}; choose from {', '.join(GROUPS)}")
    work = Path(opts.workdir or tempfile.mkdtemp(prefix="mlops-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, "quick" if opts.quick else "full")
    started = time.perf_counter()
    load = os.getloadavg()
    log(f"mode {bench.mode}, work dir {work}, {os.cpu_count()} cores, load average {load[0]:.2f} at start")
    failed = []
    try:
        for group in groups:
            try:
                getattr(bench, group)()
            except Exception as exc:  # one broken group must not hide the others' figures
                failed.append(group)
                log(f"{group} FAILED: {exc}")
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    met = sum(1 for line in bench.lines if line["met"])
    log(f"{len(bench.lines)} figures, {met} met, in {time.perf_counter() - started:.0f} s; "
        f"load average {os.getloadavg()[0]:.2f} at the end" + (f"; FAILED groups: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
