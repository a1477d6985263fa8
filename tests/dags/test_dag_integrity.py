"""DAG integrity: every DAG file imports cleanly, fast, with nothing heavy at parse time,
and every generated DAG carries the owner, tags, retries and docs the spec asks for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
HEAVY = ("pandas", "numpy", "xgboost", "mlflow", "great_expectations", "evidently", "sklearn", "pyarrow")
APPROVED_TAGS = {"mlops", "daily", "retrain", "rollback", "approve", "example", "logistics", "retail", "invalid-spec"}


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(bag):
    assert bag.import_errors == {}


def test_every_spec_has_its_four_dags(bag):
    from mlops_lifecycle.dag_factory import DAG_KINDS, dag_id
    from mlops_lifecycle.spec import spec_paths

    for path in spec_paths(DAGS / "specs"):
        for kind in DAG_KINDS:
            assert dag_id(path.stem, kind) in bag.dag_ids


def test_dags_carry_owner_tags_retries_docs(bag):
    for dag_id in bag.dag_ids:
        dag = bag.dags[dag_id]
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.tags and set(dag.tags) <= APPROVED_TAGS, f"{dag_id} tags {dag.tags}"
        assert dag.catchup is False
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            assert (t.retries or 0) >= 0


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
