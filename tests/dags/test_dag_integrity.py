"""DAG integrity: every DAG file imports cleanly, fast, with nothing heavy at parse time,
and every generated DAG carries the owner, tags, retries and docs the spec asks for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_lifecycle.spec import spec_paths

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
HEAVY = ("pandas", "numpy", "xgboost", "mlflow", "great_expectations", "evidently", "sklearn", "pyarrow")


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(bag):
    assert bag.import_errors == {}


def test_every_spec_has_its_four_dags(bag):
    from mlops_lifecycle.dag_factory import DAG_KINDS, dag_id

    for path in spec_paths(DAGS / "specs"):
        for kind in DAG_KINDS:
            assert dag_id(path.stem, kind) in bag.dag_ids


@pytest.fixture(scope="module")
def checked():
    from mlops_lifecycle.cli import check_specs

    return check_specs(DAGS / "specs")


@pytest.mark.parametrize("spec_file", spec_paths(DAGS / "specs"), ids=lambda p: p.name)
def test_spec_passes_mlops_check(checked, spec_file):
    """``make test`` fails on whatever ``mlops check`` refuses (a feature function that does not
    import, a misspelt XGBoost parameter, two specs sharing a registered model...)."""
    passed, errors = checked
    assert spec_file in [path for path, _, _ in passed], "\n".join(errors)


def test_dags_carry_owner_tags_retries_docs(bag):
    from mlops_lifecycle.dag_factory import DAG_KINDS
    from mlops_lifecycle.spec import load_spec

    specs = {path.stem: load_spec(path) for path in spec_paths(DAGS / "specs")}
    for dag_id in bag.dag_ids:
        dag = bag.dags[dag_id]
        model, _, kind = dag_id.rpartition("__")
        assert kind in DAG_KINDS and model in specs, f"{dag_id} is not a DAG of a spec in dags/specs"
        spec = specs[model]
        assert dag.doc_md, f"{dag_id} has no doc_md"
        # Tags come from one place: the product's own (mlops, the DAG kind, the model) and the spec's.
        assert set(dag.tags) == {"mlops", kind, spec.name, *spec.tags}, f"{dag_id} tags {dag.tags}"
        assert dag.catchup is False
        assert dag.default_args["owner"] == spec.owner and dag.default_args["retries"] == spec.retries, dag_id
        for t in dag.tasks:
            assert t.owner == spec.owner, f"{dag_id}.{t.task_id} owner {t.owner!r}"
            # The spec's retries, or none for the tasks that must not repeat (sensor, ingestion, promotion).
            assert t.retries in {spec.retries, 0}, f"{dag_id}.{t.task_id} retries {t.retries}"


def test_daily_dag_wiring(bag):
    dag = bag.dags["late_delivery__daily"]
    order = ["ingest", "validate", "compute_features", "resolve_champion", "route"]
    for up, down in zip(order, order[1:], strict=False):
        assert down in dag.get_task(up).downstream_task_ids
    assert dag.get_task("route").downstream_task_ids == {"plan_scoring", "trigger_first_training"}
    assert "trigger_retraining" in dag.get_task("decide_retraining").downstream_task_ids
    trig = dag.get_task("trigger_retraining")
    assert trig.trigger_dag_id == "late_delivery__retrain"
    assert trig.skip_when_already_exists and not trig.wait_for_completion


def test_retrain_form_documents_every_param(bag):
    dag = bag.dags["late_delivery__retrain"]
    for name, param in dag.params.items():
        assert param.description, f"param {name} has no description"
    assert set(dag.params) >= {"end_date", "window_days", "promote", "force", "reason"}


@pytest.mark.parametrize("dag_file", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_parse_imports_nothing_heavy_and_is_fast(dag_file):
    """Parse each DAG file in a fresh interpreter: no heavy library imported, under a budget.

    The budget is a guard against parse-time work (a query, a model load, pandas at import),
    not a speed figure: it counts the process's CPU seconds, which other load on the machine
    does not inflate, and is generous. The measured parse time per spec is in bench/.
    """
    code = (
        "import sys, time, runpy; t = time.process_time(); "
        f"runpy.run_path({str(dag_file)!r}); "
        "print('SECONDS=%f' % (time.process_time() - t)); "
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.startswith(("SECONDS=", "HEAVY=")))
    seconds, heavy = lines["SECONDS"], lines["HEAVY"]
    assert heavy == "", f"{dag_file.name} imports {heavy} at parse time"
    assert float(seconds) < 5.0, f"{dag_file.name} took {seconds} CPU seconds to parse"


def test_broken_spec_breaks_only_its_own_dags(tmp_path, monkeypatch):
    from mlops_lifecycle.dag_factory import build_all

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "late_delivery.yaml").write_text((DAGS / "specs" / "late_delivery.yaml").read_text())
    (specs / "broken.yaml").write_text("name: broken\nowner: x\n")
    dags = build_all(str(specs))
    assert "late_delivery__daily" in dags and "late_delivery__retrain" in dags
    assert "broken__invalid_spec" in dags
    assert "broken.yaml" in dags["broken__invalid_spec"].doc_md
    assert "promotion" in dags["broken__invalid_spec"].doc_md


def _spec_file(folder: Path, file_name: str, name: str, **changes) -> Path:
    import yaml

    data = yaml.safe_load((DAGS / "specs" / "late_delivery.yaml").read_text())
    data.update(name=name, **changes)
    path = folder / file_name
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_model_whose_dags_fail_to_build_breaks_only_itself(tmp_path, monkeypatch):
    """One DagBag over good and bad specs: no import error, every good model whole, and each
    bad one a single ``__invalid_spec`` DAG naming its file and field, whatever broke it."""
    from airflow.dag_processing.dagbag import DagBag

    from mlops_lifecycle import dag_factory
    from mlops_lifecycle import spec as spec_mod

    specs = tmp_path / "specs"
    specs.mkdir()
    _spec_file(specs, "late_delivery.yaml", "late_delivery")
    _spec_file(specs, "airflow_refuses.yaml", "airflow_refuses")
    _spec_file(specs, "bad_schedule.yaml", "bad_schedule", schedule="every day at noon")
    _spec_file(specs, "half_built.yaml", "half_built")
    _spec_file(specs, "Bad Name.yaml", "bad_name")
    # A schedule the spec's rules would let through but Airflow refuses (real AirflowTimetableInvalid) ...
    real_load = spec_mod.load_spec
    monkeypatch.setattr(spec_mod, "load_spec", lambda p: real_load(p).model_copy(update={"schedule": "61 * * * *"})
                        if Path(p).stem == "airflow_refuses" else real_load(p))
    # ... and a model whose third DAG fails after its first two were built (and auto-registered).
    real_rollback = dag_factory.BUILDERS["rollback"]

    def rollback(spec):
        if spec.name == "half_built":
            raise RuntimeError("rollback DAG could not be built")
        return real_rollback(spec)

    monkeypatch.setitem(dag_factory.BUILDERS, "rollback", rollback)
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(specs))

    bag = DagBag(dag_folder=str(DAGS))

    assert bag.import_errors == {}
    sanitised = dag_factory.invalid_spec_dag_id("Bad Name.yaml")
    assert sorted(bag.dag_ids) == sorted(
        [f"late_delivery__{k}" for k in dag_factory.DAG_KINDS]
        + ["airflow_refuses__invalid_spec", "bad_schedule__invalid_spec", "half_built__invalid_spec", sanitised]
    )
    refused = bag.dags["airflow_refuses__invalid_spec"].doc_md
    assert "airflow_refuses.yaml" in refused and "  - schedule: " in refused and "AirflowTimetableInvalid" in refused
    bad_schedule = bag.dags["bad_schedule__invalid_spec"].doc_md
    assert "bad_schedule.yaml" in bad_schedule and "  - schedule: 'every day at noon' is not a schedule" in bad_schedule
    assert "half_built.yaml" in bag.dags["half_built__invalid_spec"].doc_md
    assert "rollback DAG could not be built" in bag.dags["half_built__invalid_spec"].doc_md
    assert "Bad Name.yaml" in bag.dags[sanitised].doc_md


def test_invalid_spec_dag_ids_never_collide():
    from mlops_lifecycle.dag_factory import _invalid_spec_dag, invalid_spec_dag_id

    names = ["bad_name.yaml", "Bad Name.yaml", "bad name.yaml", "Bad_Name.yaml", "bad_name.yml", "BAD-NAME.yaml",
             "bäd_name.yaml", "bad_name_.yaml", "9lives.yaml", "a.yaml", "a.yml", "A.yaml"]
    ids = [invalid_spec_dag_id(n) for n in names]
    assert len(set(ids)) == len(ids), ids
    assert invalid_spec_dag_id("bad_name.yaml") == "bad_name__invalid_spec"
    assert invalid_spec_dag_id("Bad Name.yaml").startswith("bad_name-")
    for name, expected in zip(names, ids, strict=True):
        assert _invalid_spec_dag(name, "error").dag_id == expected  # Airflow takes the id


@pytest.mark.parametrize("file_name", ["Bad Name.yaml", "broken.yaml", "broken.yml"])
def test_a_task_process_builds_the_invalid_spec_dag_it_runs(tmp_path, monkeypatch, file_name):
    from mlops_lifecycle.dag_factory import build_all, invalid_spec_dag_id

    specs = tmp_path / "specs"
    specs.mkdir()
    _spec_file(specs, file_name, "not_the_file_name")
    _spec_file(specs, "late_delivery.yaml", "late_delivery")
    wanted = invalid_spec_dag_id(file_name)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", wanted)

    assert list(build_all(str(specs))) == [wanted]


def test_two_files_of_one_model_do_not_overwrite_each_other(tmp_path, monkeypatch):
    """As ``mlops check`` says, both files of one model are refused: neither can build DAGs
    the other's would then silently replace."""
    from mlops_lifecycle.dag_factory import build_all, invalid_spec_dag_id

    specs = tmp_path / "specs"
    specs.mkdir()
    _spec_file(specs, "late_delivery.yaml", "late_delivery")
    _spec_file(specs, "late_delivery.yml", "late_delivery", owner="someone-else")
    second_id = invalid_spec_dag_id("late_delivery.yml")

    dags = build_all(str(specs))

    assert sorted(dags) == sorted(["late_delivery__invalid_spec", second_id])
    assert "  - name: model 'late_delivery' is also defined by late_delivery.yaml" in dags[second_id].doc_md
    assert "  - name: model 'late_delivery' is also defined by late_delivery.yml" in (
        dags["late_delivery__invalid_spec"].doc_md)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", second_id)  # its task process finds it too
    assert list(build_all(str(specs))) == [second_id]


def test_the_scheduled_daily_run_processes_the_day_that_has_just_ended(bag):
    """The @daily run at midnight after day D has logical date D and reads D's partition
    (Airflow 3's default trigger timetable would have it ask for the day just begun)."""
    import datetime as dt
    from types import SimpleNamespace

    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    from mlops_lifecycle.dag_factory import _ds

    dag = bag.dags["late_delivery__daily"]
    timetable = coerce_to_core_timetable(dag.timetable)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    day = dt.timedelta(days=1)
    assert (info.data_interval.start, info.data_interval.end, info.run_after) == (
        dag.start_date, dag.start_date + day, dag.start_date + day)
    assert info.logical_date == dag.start_date
    context = {"logical_date": info.logical_date, "data_interval_start": info.data_interval.start,
               "data_interval_end": info.data_interval.end, "dag_run": SimpleNamespace(run_after=info.run_after)}
    assert _ds(context) == dag.start_date.date().isoformat()
    # Triggered by hand without a logical date: the last complete day before the trigger.
    manual = timetable.infer_manual_data_interval(run_after=dag.start_date + 3 * day + dt.timedelta(hours=9))
    context = {"logical_date": None, "data_interval_start": manual.start, "data_interval_end": manual.end,
               "dag_run": SimpleNamespace(run_after=dag.start_date + 3 * day + dt.timedelta(hours=9))}
    assert _ds(context) == (dag.start_date + 2 * day).date().isoformat()


def test_only_the_scheduled_dag_starts_paused(bag):
    """Retrain, rollback and approve have no schedule: paused, the runs the daily DAG (or a
    person) triggers would wait in the queue for ever."""
    for dag_id, dag in bag.dags.items():
        kind = dag_id.rpartition("__")[2]
        if kind in {"retrain", "rollback", "approve"}:
            assert dag.is_paused_upon_creation is False, dag_id
        else:
            assert dag.is_paused_upon_creation is not False, dag_id


def test_a_registered_model_name_clash_isolates_both_specs(tmp_path, monkeypatch):
    """An intruder claiming another model's MLflow registered model: ``mlops check`` refuses
    both files, and so does the DAG factory (same rule set): neither model gets a rollback
    (or any) DAG that could move the other's champion, both show as invalid-spec DAGs."""
    from airflow.dag_processing.dagbag import DagBag

    from mlops_lifecycle.cli import check_specs

    specs = tmp_path / "specs"
    specs.mkdir()
    _spec_file(specs, "late_delivery.yaml", "late_delivery")
    _spec_file(specs, "intruder.yaml", "intruder", registered_model_name="late_delivery")
    _spec_file(specs, "bystander.yaml", "bystander")
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(specs))

    bag = DagBag(dag_folder=str(DAGS))

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(["late_delivery__invalid_spec", "intruder__invalid_spec",
                                          *(f"bystander__{k}" for k in ("daily", "retrain", "rollback", "approve"))])
    passed, errors = check_specs(specs)
    assert [p.name for p, _, _ in passed] == ["bystander.yaml"]
    for name in ("late_delivery", "intruder"):
        doc = bag.dags[f"{name}__invalid_spec"].doc_md
        assert f"{name}.yaml" in doc and "MLflow registered model 'late_delivery' is also defined by" in doc
        assert any(f"{name}.yaml" in e and e in doc for e in errors), "the factory's message is the check's"
    # A task process of a rollback queued before the clash finds no rollback DAG to run.
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "late_delivery__rollback")
    from mlops_lifecycle.dag_factory import build_all

    assert list(build_all(str(specs))) == ["late_delivery__invalid_spec"]


def test_a_5mb_spec_leaves_the_other_models_dags_and_the_parse_quick(tmp_path):
    """A valid-looking 5 MB spec (a 700 k-item tags list) in the specs folder: the DAG file
    still builds every other model's DAGs, within a generous CPU budget for them, and the
    big one is an invalid-spec DAG naming its file and the size limit."""
    import yaml

    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("late_delivery", "retail_demand"):
        (specs / f"{name}.yaml").write_text((DAGS / "specs" / f"{name}.yaml").read_text())
    data = yaml.safe_load((DAGS / "specs" / "late_delivery.yaml").read_text())
    data["name"] = "huge"
    text = yaml.safe_dump(data) + "tags:\n" + "- t\n" * 1_300_000
    (specs / "huge.yaml").write_text(text)
    assert (specs / "huge.yaml").stat().st_size >= 5_000_000
    code = (
        "import json, sys, time, warnings; warnings.simplefilter('ignore'); "
        "from mlops_lifecycle.dag_factory import build_all; import airflow.sdk; "
        "t = time.process_time(); dags = build_all(); s = time.process_time() - t; "
        "print('RESULT=' + json.dumps({'seconds': s, 'ids': sorted(dags), "
        "'doc': dags['huge__invalid_spec'].doc_md}))"
    )
    env = {**os.environ, "MLOPS_SPECS_DIR": str(specs)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=ROOT, timeout=120).stdout
    result = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT="))[len("RESULT="):])
    assert result["ids"] == sorted(["huge__invalid_spec", *(f"{m}__{k}" for m in ("late_delivery", "retail_demand")
                                                            for k in ("approve", "daily", "retrain", "rollback"))])
    assert "huge.yaml" in result["doc"] and "is larger than" in result["doc"]
    assert result["seconds"] < 2.0, f"building the DAGs took {result['seconds']:.2f} CPU seconds"
