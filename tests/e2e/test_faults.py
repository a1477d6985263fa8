"""Faults and bad input through the real stack: the daily DAG under ``DAG.test`` (real
Airflow on SQLite), MLflow (SQLite store, or an unreachable server), Great Expectations
and XGBoost.

- Bad batches through the real daily DAG: the failing task is named, nothing after it
  runs, nothing in the lake or the registry changes.
- A missing partition: the sensor waits (reschedule mode), then fails saying what it
  waited for and how long; a file that arrives during the wait is picked up.
- SIGKILL of a scoring process mid-write: no partial output is visible, the old output
  (if any) survives whole, and the retry writes exactly the bytes of an uninterrupted run.
- SIGKILL of a training process while it logs its run or its model: no version exists
  without its tags, no alias moves, and the retry registers exactly one version, the
  same model an uninterrupted run makes.
- An unreachable MLflow server fails the task after the spec's retries, naming the URI,
  and promotes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bad_batches import (
    ROWS,
    build_lake_with_champion,
    changed_since,
    deliver,
    downstream_of,
    fingerprint,
    isolated_stores,
    kind,
    registry_state,
    write_small_spec,
)

pytestmark = pytest.mark.e2e

START = dt.date(2026, 5, 1)
HISTORY = [START - dt.timedelta(days=i) for i in range(8, 0, -1)]
# A loaded shared machine must not fail the champion's latency test; retries come quick.
SPEC = {"training": {"max_latency_ms_per_1k_rows": 10_000}, "retry_delay_minutes": 0}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory, airflow_db):
    """History validated, a champion, its predictions for the last history day; the model's DAGs."""
    base = tmp_path_factory.mktemp("faults")
    with isolated_stores(base):
        write_small_spec(base / "specs", **SPEC)
        from mlops_lifecycle import replay
        from mlops_lifecycle.spec import get_spec

        spec = get_spec("late_delivery")
        built = build_lake_with_champion(spec, HISTORY)
        assert built["decision"]["outcome"] == "promoted", built["decision"]
        replay.clear_runs(spec)
        yield {"base": base, "spec": spec, "dags": replay.load_dags(spec), **built}


@contextlib.contextmanager
def spec_changed(world, **overrides):
    """Rewrite the spec (e.g. the source's wait) and reparse the DAGs; restore both after."""
    from mlops_lifecycle import replay

    write_small_spec(world["base"] / "specs", **{**SPEC, **overrides})
    try:
        yield replay.load_dags(world["spec"])
    finally:
        write_small_spec(world["base"] / "specs", **SPEC)


def _run(dag, day: dt.date, **kwargs):
    dr = dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), **kwargs)
    return dr, {ti.task_id: (str(ti.state).replace("TaskInstanceState.", "") if ti.state else None)
                for ti in dr.get_task_instances()}


def _nothing_after(dag, states: dict, failed: str) -> None:
    """No task downstream of ``failed`` (in the DAG's own graph) ran."""
    later = dag.get_task(failed).get_flat_relative_ids(upstream=False)
    assert later, f"{failed} has no downstream tasks?"
    ran = {t: states.get(t) for t in later if states.get(t) not in {None, "upstream_failed", "skipped"}}
    assert not ran, f"tasks ran after {failed} failed: {ran}"


def _queued_retrains(world) -> list:
    from mlops_lifecycle import dag_factory, replay

    return replay.queued_runs(dag_factory.dag_id(world["spec"].name, "retrain"))


# ---- bad batches through the real daily DAG ------------------------------------------------


@pytest.mark.parametrize(("name", "failing_task"), [
    ("missing_column", "validate"),
    ("duplicate_rows", "validate"),
    ("truncated_parquet", "ingest"),
    ("png_instead_of_parquet", "ingest"),
])
def test_bad_batch_in_the_daily_dag_stops_before_anything_downstream(world, name, failing_task):
    from mlops_lifecycle import lake
    from mlops_lifecycle.examples import late_delivery

    spec = world["spec"]
    bad = kind(name)
    day = START + dt.timedelta(days=[k for k in ("missing_column", "duplicate_rows", "truncated_parquet",
                                                 "png_instead_of_parquet")].index(name))
    before = fingerprint(spec, except_day=day)
    deliver(spec, bad, day, late_delivery.generate_day(day, rows=ROWS))

    daily = world["dags"]["late_delivery__daily"]
    dr, states = _run(daily, day)

    assert str(dr.state).endswith("failed")
    assert states["wait_for_batch"] == "success"
    assert states[failing_task] == "failed", states
    _nothing_after(daily, states, failing_task)
    assert not _queued_retrains(world)
    result = json.loads((lake.partition_dir(spec.name, "quarantine", day) / "validation.json").read_text())
    assert bad.check in {f["expectation"] for f in result["failures"]}
    assert downstream_of(spec, day) == {"validated": False, "features": False, "predictions": False}
    assert changed_since(spec, before, except_day=day) == []


# ---- a missing partition waits, then fails saying what it waited for ----------------------------


def test_missing_partition_waits_then_fails_naming_path_and_wait(world, capfd):
    from mlops_lifecycle import ingestion

    spec = world["spec"]
    day = START + dt.timedelta(days=10)
    before = fingerprint(spec, except_day=day)
    path = ingestion.source_path(spec, day)
    with spec_changed(world, source={"wait_timeout_minutes": 0.05}) as dags:  # 3 s, a look every second
        started = time.monotonic()
        daily = dags["late_delivery__daily"]
        dr, states = _run(daily, day)
        took = time.monotonic() - started
    out = capfd.readouterr()
    logged = out.out + out.err

    assert str(dr.state).endswith("failed")
    assert states["wait_for_batch"] == "failed" and states["ingest"] == "upstream_failed"
    _nothing_after(daily, states, "wait_for_batch")
    assert took >= 3, f"the sensor gave up after {took:.1f} s, before its 3 s wait"
    assert f"no file at {path} after waiting" in logged, "the failure names the path and how long it waited"
    assert "wait_timeout_minutes=0.05" in logged
    assert _reschedules(dr, "wait_for_batch") >= 2, "the sensor looked again after rescheduling"
    assert changed_since(spec, before, except_day=day) == []


def test_missing_partition_with_no_wait_checks_once(world, capfd):
    from mlops_lifecycle import ingestion

    day = START + dt.timedelta(days=11)
    daily = world["dags"]["late_delivery__daily"]
    dr, states = _run(daily, day)  # the spec's default: 0 minutes
    logged = "".join(capfd.readouterr())
    assert states["wait_for_batch"] == "failed" and states["ingest"] == "upstream_failed"
    _nothing_after(daily, states, "wait_for_batch")
    assert f"no file at {ingestion.source_path(world['spec'], day)} on its only check" in logged
    assert _reschedules(dr, "wait_for_batch") == 0


def test_batch_arriving_during_the_wait_is_picked_up_and_scored(world):
    from mlops_lifecycle import lake
    from mlops_lifecycle.examples import late_delivery

    spec = world["spec"]
    day = START + dt.timedelta(days=12)
    clean = late_delivery.generate_day(day, rows=ROWS)
    baseline = _reschedules_of("late_delivery__daily", "wait_for_batch")
    stop = threading.Event()

    def deliver_after_first_look() -> None:
        # Upstream delivers only once the sensor has looked, found nothing and rescheduled.
        while not stop.is_set() and _reschedules_of("late_delivery__daily", "wait_for_batch") == baseline:
            time.sleep(0.2)
        if not stop.is_set():
            lake.write_parquet(Path(_source(spec, day)), clean)

    upstream = threading.Thread(target=deliver_after_first_look, daemon=True)
    with spec_changed(world, source={"wait_timeout_minutes": 1}) as dags:  # a look every 6 s
        upstream.start()
        try:
            dr, states = _run(dags["late_delivery__daily"], day)
        finally:
            stop.set()
            upstream.join(timeout=10)
    assert str(dr.state).endswith("success"), states
    assert states["wait_for_batch"] == "success" and states["commit_predictions"] == "success"
    assert _reschedules(dr, "wait_for_batch") >= 1, "the file was not there at the first look"
    arrived = dr.get_task_instance("wait_for_batch").xcom_pull(task_ids="wait_for_batch")
    assert arrived["path"] == _source(spec, day) and arrived["waited_seconds"] > 0
    assert lake.data_file(spec.name, "predictions", day).exists()


def _reschedules_of(dag_id: str, task_id: str) -> int:
    from airflow import settings
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from sqlalchemy import func, select

    with settings.Session() as session:
        return session.scalar(
            select(func.count()).select_from(TaskReschedule).join(TaskInstance, TaskInstance.id == TaskReschedule.ti_id)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id)
        )


def _source(spec, day) -> str:
    from mlops_lifecycle import ingestion

    return ingestion.source_path(spec, day)


def _reschedules(dr, task_id: str) -> int:
    from airflow import settings
    from airflow.models.taskreschedule import TaskReschedule
    from sqlalchemy import func, select

    ti = dr.get_task_instance(task_id)
    with settings.Session() as session:
        return session.scalar(select(func.count()).select_from(TaskReschedule).where(TaskReschedule.ti_id == ti.id))


# ---- SIGKILL mid-write ---------------------------------------------------------------------------

SCORE = """
import json, sys
from mlops_lifecycle import scoring
from mlops_lifecycle.spec import get_spec
day, version, run_id, chunk = sys.argv[1:5]
if chunk == "all":
    scoring.score_partition(get_spec("late_delivery"), day, version=version, airflow_run_id=run_id)
else:
    scoring.score_chunk(get_spec("late_delivery"), day, json.loads(chunk), version=version, airflow_run_id=run_id)
"""


def _score_process(day: dt.date, version: str, run_id: str, chunk: dict | None = None) -> subprocess.Popen:
    """Score in a process of its own (``score_partition``, or one ``score_chunk`` of the DAG's mapped path)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    args = [day.isoformat(), str(version), run_id, json.dumps(chunk) if chunk else "all"]
    return subprocess.Popen([sys.executable, "-c", SCORE, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_mid_write(proc: subprocess.Popen, partial_files: Callable[[], list[Path]], timeout: float = 300) -> dict:
    """SIGKILL ``proc`` as soon as one of ``partial_files()`` (its temporary outputs) holds
    rows. Returns the exit code and whether the partial file was a complete Parquet file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the scoring process ended before it could be killed: {proc.stderr.read()[-2000:]}")
        # More than the 4-byte magic: rows are being written, the footer is not.
        started = [p for p in partial_files() if p.exists() and p.stat().st_size > 4]
        if started:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            data = started[0].read_bytes() if started[0].exists() else b""
            return {"returncode": proc.returncode, "partial_bytes": len(data), "footer": _complete_parquet(data)}
        time.sleep(0.001)
    proc.kill()
    raise AssertionError("the scoring process never started writing")


def _complete_parquet(data: bytes) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(pa.BufferReader(data))
    except Exception:  # noqa: BLE001 - any reader error means the file is not complete
        return False
    return True


def _visible(zone_dir: Path) -> list[str]:
    return sorted(p.name for p in zone_dir.iterdir() if not p.name.startswith(".")) if zone_dir.exists() else []


@pytest.fixture(scope="module")
def big_day(world):
    """A validated day of 300 k rows with its features: scoring it takes long enough to be
    caught mid-write. The usual volume bound would (rightly) reject it, so this one
    validation allows the spike."""
    from mlops_lifecycle import ingestion, lake, scoring, validation
    from mlops_lifecycle.examples import late_delivery

    spec = world["spec"]
    day = START + dt.timedelta(days=20)
    lake.write_parquet(Path(_source(spec, day)), late_delivery.generate_day(day, rows=300_000))
    ingestion.ingest(spec, day)
    roomy = spec.model_copy(update={"validation": spec.validation.model_copy(update={"volume_max_ratio": 5000})})
    validation.validate_partition(roomy, day, docs=False)
    scoring.materialize_features(spec, day)
    return day


def test_sigkill_mid_write_leaves_no_partial_output_and_the_retry_matches_a_clean_run(world, big_day):
    from mlops_lifecycle import lake, scoring

    spec, day = world["spec"], big_day
    version = world["champion"]["version"]
    zone = lake.partition_dir(spec.name, "predictions", day).parent
    final = lake.data_file(spec.name, "predictions", day)
    manifest = final.parent / "manifest.json"

    def partial() -> list[Path]:  # the folder lake.replace_dir builds before swapping it in
        prefix = f".ds={day.isoformat()}."
        return [p / final.name for p in (zone.iterdir() if zone.exists() else [])
                if p.name.startswith(prefix) and ".old-" not in p.name]

    # 1. An uninterrupted run: the reference bytes.
    scoring.score_partition(spec, day, version=version, airflow_run_id="run-1")
    clean = (final.read_bytes(), manifest.read_bytes())
    lake.remove_partition(spec.name, "predictions", day)
    others = fingerprint(spec, except_day=day)

    # 2. Killed mid-write with no earlier output: nothing visible at all.
    seen = _kill_mid_write(_score_process(day, version, "run-1"), partial)
    assert seen["returncode"] == -signal.SIGKILL
    assert seen["partial_bytes"] > 0 and not seen["footer"], f"not killed mid-write: {seen}"
    assert f"ds={day.isoformat()}" not in _visible(zone)
    assert day not in lake.partitions(spec.name, "predictions")

    # 3. The retry writes exactly the bytes of the uninterrupted run (the same run id, as
    #    Airflow's retry of the same task instance would pass).
    proc = _score_process(day, version, "run-1")
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    assert (final.read_bytes(), manifest.read_bytes()) == clean
    assert sorted(p.name for p in final.parent.iterdir()) == ["manifest.json", "predictions.parquet"]

    # 4. Killed mid-way through a rerun: the earlier output stays, whole and unchanged.
    seen = _kill_mid_write(_score_process(day, version, "run-2"), partial)
    assert seen["returncode"] == -signal.SIGKILL and not seen["footer"]
    assert (final.read_bytes(), manifest.read_bytes()) == clean

    # 5. Rerunning the day is idempotent: same bytes, one partition.
    scoring.score_partition(spec, day, version=version, airflow_run_id="run-1")
    assert (final.read_bytes(), manifest.read_bytes()) == clean
    assert _visible(zone).count(f"ds={day.isoformat()}") == 1
    assert fingerprint(spec, except_day=day) == others
    # What the kills left: hidden temporary folders only, which no reader lists.
    leftovers = [p.name for p in zone.iterdir() if p.name.startswith(".")]
    assert all(name.startswith(f".ds={day.isoformat()}.") for name in leftovers), leftovers


def test_sigkill_of_a_mapped_scoring_task_and_its_retry(world, big_day):
    """The daily DAG's own path: plan -> score_chunk (mapped) -> commit_predictions."""
    from mlops_lifecycle import lake, scoring

    spec, day = world["spec"], big_day
    version = world["champion"]["version"]
    run_id = "manual__fault-test"
    final = lake.data_file(spec.name, "predictions", day)
    manifest = final.parent / "manifest.json"
    chunks = scoring.plan_scoring(spec, day)

    scored = [scoring.score_chunk(spec, day, c, version=version, airflow_run_id=run_id) for c in chunks]
    scoring.commit_predictions(spec, day, scored, version=version, airflow_run_id=run_id)
    clean = (final.read_bytes(), manifest.read_bytes())
    lake.remove_partition(spec.name, "predictions", day)

    staging = lake.staging_dir(spec.name, "predictions", day, run_id)
    part_name = f"part-{int(chunks[0]['index']):05d}.parquet"
    seen = _kill_mid_write(_score_process(day, version, run_id, chunks[0]),
                           lambda: list(staging.rglob(f".{part_name}.*.tmp")))
    assert seen["returncode"] == -signal.SIGKILL
    assert seen["partial_bytes"] > 0 and not seen["footer"], f"not killed mid-write: {seen}"
    assert not list(staging.rglob(part_name)), "a killed chunk leaves no part under its real name"
    assert not final.exists(), "nothing is published before the commit"

    retried = [scoring.score_chunk(spec, day, c, version=version, airflow_run_id=run_id) for c in chunks]
    scoring.commit_predictions(spec, day, retried, version=version, airflow_run_id=run_id)
    assert (final.read_bytes(), manifest.read_bytes()) == clean


TRAIN = """
import json, sys
from mlops_lifecycle import training
from mlops_lifecycle.spec import get_spec
spec = get_spec("late_delivery")
window = training.assemble_window(spec, sys.argv[1])
trained = training.train_and_register(spec, window, trigger={"reason": "fault test", "by": "pytest"})
print(json.dumps({"version": trained["version"]}))
"""
# What every registered version must carry from the moment it exists.
VERSION_TAGS = ("status", "trigger.reason", "trigger.by", "data.version", "training.fingerprint", "features.sha256")


def _train_process(end: dt.date) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    return subprocess.Popen([sys.executable, "-c", TRAIN, end.isoformat()], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, appeared: Callable[[], bool], timeout: float = 300) -> int:
    """SIGKILL ``proc`` as soon as ``appeared()`` holds; return its exit code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = proc.stderr.read()[-2000:] if proc.stderr else "(its output went to a file)"
            raise AssertionError(f"the training process ended before it could be killed: {said}")
        if appeared():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return proc.returncode
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("the kill point was never reached")


def _artifacts_named(base: Path, name: str, since: float) -> bool:
    return any(p.stat().st_mtime >= since for p in base.rglob(name)) if base.exists() else False


def test_sigkill_of_training_never_leaves_a_half_registered_version_and_the_retry_registers_once(world):
    """Kill the training process while it logs its run, and while it logs the model: no
    version appears without its tags, the champion is untouched, and the retry registers
    exactly one version, the same model an uninterrupted training makes."""
    import numpy as np
    import pandas as pd

    from mlops_lifecycle import features, lake, registry, training

    spec = world["spec"]
    end = HISTORY[-1]
    # An uninterrupted training of the same window: the reference. Marked decided, so the
    # runs below train afresh instead of resuming with it.
    reference = training.train_and_register(spec, training.assemble_window(spec, end), trigger={"reason": "reference"})
    registry.reject(spec, reference["version"], actor="pytest", reason="reference run of the fault test")
    before = registry_state(spec)
    artifacts = world["base"] / "data" / "mlflow" / "artifacts"

    def complete_versions() -> None:
        for v in registry.versions(spec):
            missing = [t for t in VERSION_TAGS if not v.tags.get(t)]
            assert not missing, f"v{v.version} exists without {missing}"

    # 1. Killed while the run logs its evaluation: no new version at all.
    started = time.time()
    code = _kill_when(_train_process(end), lambda: _artifacts_named(artifacts, "model_tests.json", started))
    assert code == -signal.SIGKILL
    assert registry_state(spec) == before
    # 2. Killed while the model itself is being logged: still no version, or a complete one.
    started = time.time()
    code = _kill_when(_train_process(end), lambda: _artifacts_named(artifacts, "MLmodel", started))
    assert code == -signal.SIGKILL
    complete_versions()
    assert registry_state(spec)["aliases"] == before["aliases"]

    # 3. The retry (Airflow's next try of the task) registers exactly one version.
    proc = _train_process(end)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    after = registry_state(spec)
    new = [v for v in after["versions"] if v not in before["versions"]]
    assert len(new) == 1, new
    assert after["aliases"] == before["aliases"], "training alone never moves an alias"
    complete_versions()
    retried = json.loads(out.strip().splitlines()[-1])["version"]
    assert retried == str(new[0][0]) and registry.get_version(spec, retried).tags["status"] == "candidate"
    # 4. ...and it is the model an uninterrupted run makes: same holdout score, same predictions.
    ref_v, new_v = registry.get_version(spec, reference["version"]), registry.get_version(spec, retried)
    assert new_v.tags[f"holdout_{spec.promotion.metric}"] == ref_v.tags[f"holdout_{spec.promotion.metric}"]
    rows = pd.read_parquet(lake.data_file(spec.name, "validated", end))
    matrix = features.build_matrix(spec, rows)
    np.testing.assert_array_equal(registry.load_model(spec, retried).get_booster().inplace_predict(matrix),
                                  registry.load_model(spec, reference["version"]).get_booster().inplace_predict(matrix))
    # 5. Run again after a crash that came after registration: it resumes, nothing new.
    assert training.train_and_register(spec, training.assemble_window(spec, end), trigger={})["version"] == retried
    assert registry_state(spec)["versions"] == after["versions"]
    registry.reject(spec, retried, actor="pytest", reason="fault test done")


def test_rerunning_a_day_through_the_dag_is_idempotent(world):
    """Two runs of the same date: one validated partition, one predictions file, the same rows."""
    import pandas as pd

    from mlops_lifecycle import lake
    from mlops_lifecycle.examples import late_delivery

    spec = world["spec"]
    day = START + dt.timedelta(days=21)
    lake.write_parquet(Path(_source(spec, day)), late_delivery.generate_day(day, rows=ROWS))
    daily = world["dags"]["late_delivery__daily"]
    _, first = _run(daily, day)
    preds_1 = pd.read_parquet(lake.data_file(spec.name, "predictions", day))
    validated_1 = lake.data_file(spec.name, "validated", day).read_bytes()
    _, second = _run(daily, day)
    preds_2 = pd.read_parquet(lake.data_file(spec.name, "predictions", day))
    assert first["commit_predictions"] == second["commit_predictions"] == "success"
    assert lake.data_file(spec.name, "validated", day).read_bytes() == validated_1
    assert len(preds_2) == len(preds_1) and preds_2[spec.entity_id].is_unique
    # The Airflow run id differs by design (it records which run wrote the file); the rest is equal.
    pd.testing.assert_frame_equal(preds_1.drop(columns="airflow_run_id"), preds_2.drop(columns="airflow_run_id"))
    for zone in ("raw", "validated", "features", "predictions"):
        assert lake.partitions(spec.name, zone).count(day) == 1
        assert _visible(lake.partition_dir(spec.name, zone, day).parent).count(f"ds={day.isoformat()}") == 1


# ---- MLflow unreachable -------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_down(monkeypatch):
    """MLFLOW_TRACKING_URI at a closed local port; MLflow's own HTTP retries off, so the
    spec's task retries are the only ones (and the test stays quick)."""
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    return uri


def test_unreachable_mlflow_fails_training_after_the_spec_retries_and_promotes_nothing(world, mlflow_down, capfd):
    spec = world["spec"]
    registry_before = registry_state_at(world)
    dr, states = _run(world["dags"]["late_delivery__retrain"], START + dt.timedelta(days=30),
                      run_conf={"reason": "fault test", "force": True, "requested_by": "pytest",
                                "end_date": HISTORY[-1].isoformat()})
    logged = "".join(capfd.readouterr())
    assert str(dr.state).endswith("failed")
    assert states["train"] == "failed", states
    assert dr.get_task_instance("train").try_number == spec.retries + 1, "tried once plus the spec's retries"
    assert states["compare_and_promote"] == "upstream_failed"
    assert mlflow_down in logged, "the failure names the tracking URI"
    assert registry_state_at(world) == registry_before, "nothing registered or promoted"


def test_unreachable_mlflow_fails_the_daily_run_instead_of_retraining(world, mlflow_down, capfd):
    from mlops_lifecycle import lake
    from mlops_lifecycle.examples import late_delivery

    spec = world["spec"]
    day = START + dt.timedelta(days=31)
    lake.write_parquet(Path(_source(spec, day)), late_delivery.generate_day(day, rows=ROWS))
    dr, states = _run(world["dags"]["late_delivery__daily"], day)
    logged = "".join(capfd.readouterr())
    assert states["resolve_champion"] == "failed", states
    assert dr.get_task_instance("resolve_champion").try_number == spec.retries + 1
    assert mlflow_down in logged
    assert not _queued_retrains(world)


def registry_state_at(world) -> dict:
    """The registry's aliases and versions read from the real store, whatever the env says."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        return registry_state(world["spec"])
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


# ---- a kill between registration and the promotion decision (issue 15, D3) ----------------------

RETRAIN = """
import datetime as dt, json, sys
from mlops_lifecycle import replay
from mlops_lifecycle.spec import get_spec
dags = replay.load_dags(get_spec("late_delivery"))
dr = dags["late_delivery__retrain"].test(logical_date=dt.datetime.fromisoformat(sys.argv[1]),
                                         run_conf=json.loads(sys.argv[2]))
print(str(dr.state))
"""


def _undecided(spec) -> list:
    from mlops_lifecycle import registry

    return [v for v in registry.versions(spec) if v.tags.get("status") == "candidate"]


def _new_reference(spec, known: set[str]) -> Callable[[], bool]:
    """True once a version beyond ``known`` is registered: its drift reference is cached in the
    lake right after the registration, in the train task, before the promotion task starts."""
    from mlops_lifecycle import lake

    base = lake.root() / spec.name / "reference"
    return lambda: base.is_dir() and any(p.name not in known and (p / "reference.parquet").exists()
                                         for p in base.iterdir())


def _references(spec) -> set[str]:
    from mlops_lifecycle import lake

    base = lake.root() / spec.name / "reference"
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def _decided_once(spec, version: str) -> str:
    """The version's decision is recorded once: champion, or rejected with its reason."""
    from mlops_lifecycle import registry

    mv = registry.get_version(spec, version)
    status = mv.tags.get("status")
    assert status in {"champion", "rejected", "awaiting_approval"}, f"v{version} left {status}"
    if status == "champion":
        assert registry.champion(spec).version == version
    if status == "rejected":
        assert mv.tags.get("rejection_reason")
    entries = [e for e in registry.audit_log(spec) if e["to_version"] == version]
    assert len(entries) == 1, entries
    return status


def test_a_retraining_killed_after_registration_is_decided_by_the_retrain_dags_rerun(world, tmp_path):
    """kill -9 of the retrain DAG after "registered ... vN" and before compare_and_promote: the
    rerun (same conf, no force) resumes with vN instead of skipping it as already trained,
    and records its decision once; nothing is registered twice."""
    spec = world["spec"]
    end = HISTORY[-2]  # a window no other test trains on
    conf = {"reason": "fault test", "end_date": end.isoformat(), "requested_by": "pytest"}
    logical = dt.datetime.combine(START + dt.timedelta(days=60), dt.time(), tzinfo=dt.UTC)
    before = registry_state(spec)
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT / "include")}
    with open(tmp_path / "retrain.log", "w") as out:  # a file, not a pipe: DAG.test logs more than a pipe holds
        proc = subprocess.Popen([sys.executable, "-c", RETRAIN, logical.isoformat(), json.dumps(conf)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    assert _kill_when(proc, _new_reference(spec, _references(spec)), timeout=600) == -signal.SIGKILL
    after_kill = registry_state(spec)
    new = [v for v in after_kill["versions"] if v not in before["versions"]]
    assert [status for _, _, status in new] == ["candidate"], "killed after registering, before deciding"
    version = str(new[0][0])
    # Freshly parsed, as a task process would: DAG.test carries one run's conf into the params
    # of the next run of the same DAG object in a process (an earlier test forced a retraining).
    from mlops_lifecycle import replay

    retrain = replay.load_dags(spec)["late_delivery__retrain"]

    dr, states = _run(retrain, logical.date(), run_conf=conf)

    assert str(dr.state).endswith("success"), states
    assert states["train"] == "success" and states["compare_and_promote"] == "success", states
    assert len(registry_state(spec)["versions"]) == len(after_kill["versions"]), "nothing registered twice"
    _decided_once(spec, version)
    assert not _undecided(spec)
    # Once decided, a further rerun changes nothing.
    decided = registry_state(spec)
    _run(replay.load_dags(spec)["late_delivery__retrain"], logical.date(), run_conf=conf)
    assert registry_state(spec) == decided


def test_a_run_days_killed_after_registration_is_decided_by_the_run_days_rerun(world, tmp_path):
    """The hostile trial's case: ``mlops run-days`` over a clean and two drifted days; the retraining
    the last day triggers is killed after registering its version. Rerunning the day must not
    log "Dag Run already exists, skipping" and exit 0 with the version left a candidate: it
    finishes the decision, once."""
    from mlops_lifecycle import ingestion
    from mlops_lifecycle.examples import late_delivery

    spec = world["spec"]
    # Three days: the window of the retraining the last one asks for holds enough days to train on.
    first, shifted, second = (START + dt.timedelta(days=n) for n in (50, 51, 52))
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    late_delivery.write_landing(template, [first, shifted, second], rows=ROWS, shift_start=shifted)
    before = registry_state(spec)
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT / "include")}
    log = tmp_path / "run-days.log"

    def run_days(frm: dt.date, to: dt.date, out) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "mlops_lifecycle.cli", "run-days", spec.name, "--from-date",
                                 frm.isoformat(), "--to-date", to.isoformat(), "--log", str(log)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)

    with open(tmp_path / "first.out", "w") as out:  # a file, not a pipe: nobody reads it while we wait
        proc = run_days(first, second, out)
        try:
            assert _kill_when(proc, _new_reference(spec, _references(spec)), timeout=900) == -signal.SIGKILL
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{(tmp_path / 'first.out').read_text()[-3000:]}") from None
    killed = registry_state(spec)
    new = [v for v in killed["versions"] if v not in before["versions"]]
    assert [status for _, _, status in new] == ["candidate"], new
    version = str(new[0][0])

    rerun = run_days(second, second, subprocess.PIPE)
    out, _ = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, out[-3000:]
    assert "retrain run success" in out, out
    assert len(registry_state(spec)["versions"]) == len(killed["versions"]), "nothing registered twice"
    _decided_once(spec, version)
    assert not _undecided(spec)


def test_a_forged_retrain_conf_fails_in_the_first_task_before_any_fit(world):
    """Drift evidence made up in the conf (issue 15, D7): refused by the first task, naming the
    key; nothing is fitted, so MLflow holds no new (failed) run, and the registry is unchanged."""
    from mlops_lifecycle import alerts, registry

    spec = world["spec"]
    exp = registry.client().get_experiment_by_name(spec.name)

    def runs() -> list:
        return registry.client().search_runs([exp.experiment_id], max_results=1000)

    before, runs_before = registry_state(spec), len(runs())
    for i, (conf, key) in enumerate([
        ({"concept": {"metric": "roc_auc", "value": "high"}}, "'concept'"),
        ({"ds": HISTORY[-1].isoformat(), "drift_share": 0.99, "report_html": "/etc/passwd"}, "'ds'"),
        ({"window_days": 20, "reason": "x", "model_uri": "file:///tmp/model.ubj"}, "'model_uri'"),
    ]):
        day = START + dt.timedelta(days=70 + i)
        dr, states = _run(world["dags"]["late_delivery__retrain"], day,
                          run_conf={"reason": "forged", "force": True, "end_date": HISTORY[-1].isoformat(), **conf})
        assert str(dr.state).endswith("failed")
        assert states["assemble_window"] == "failed", states
        assert states["train"] in {None, "upstream_failed"} and states["compare_and_promote"] in {None, "upstream_failed"}
        failure = [a for a in alerts.read_alerts(spec.name, "failure") if a["details"]["run_id"] == dr.run_id]
        assert failure and key in failure[0]["details"]["error"], failure
    assert len(runs()) == runs_before, "no MLflow run was started"
    assert registry_state(spec) == before


def test_a_training_killed_mid_run_is_ended_by_the_next_training(world):
    """Issue 15: kill -9 while the training logs its run leaves the MLflow run RUNNING; the next
    training of the model ends it as KILLED (no version) before starting its own."""
    from mlops_lifecycle import registry, training

    spec = world["spec"]
    end = HISTORY[-1]
    artifacts = world["base"] / "data" / "mlflow" / "artifacts"
    client = registry.client()
    exp = client.get_experiment_by_name(spec.name).experiment_id

    def running() -> list[str]:
        return [r.info.run_id for r in client.search_runs([exp], "attributes.status = 'RUNNING'", max_results=1000)]

    already = set(running())
    started = time.time()
    assert _kill_when(_train_process(end), lambda: _artifacts_named(artifacts, "model_tests.json", started)) == \
        -signal.SIGKILL
    left = [r for r in running() if r not in already]
    assert len(left) == 1, "the killed training left its run RUNNING"

    trained = training.train_and_register(spec, training.assemble_window(spec, end), trigger={"reason": "next"})

    assert left[0] not in running()
    killed = client.get_run(left[0])
    assert killed.info.status == "KILLED" and "killed" in killed.data.tags["mlops.ended_by"]
    assert client.get_run(trained["run_id"]).info.status == "FINISHED"
    registry.reject(spec, trained["version"], actor="pytest", reason="abandoned-run test done")
