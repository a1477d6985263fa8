"""The manual DAGs' confs: every key typed before any work, evidence only from the daily DAG's
recorded request (issue 15, D7)."""

from __future__ import annotations

import pytest

from mlops_lifecycle import lake, run_conf

FORM = {"end_date": None, "window_days": 20, "promote": "spec", "force": False, "reason": "manual"}


def _request(spec, ds="2026-03-14", **changes) -> dict:
    """A retraining request as monitoring.decide_retraining records it (and passes as the conf)."""
    request = {"retrain": True, "reason": "data_drift", "detail": "data drift on 2 day(s)", "model": spec.name,
               "ds": ds, "drift_share": 0.43, "drifted_columns": ["traffic_index"], "prediction_drift": False,
               "concept": None, "report_html": f"/lake/{spec.name}/reports/drift/ds={ds}/report.html",
               "champion_version": "1", "requested_by": f"airflow:{spec.name}__daily/scheduled__{ds}",
               "already_requested": False, **changes}
    lake.write_json(lake.event_file(spec.name, "retrain_requests", ds), request)
    return request


def test_the_daily_dags_request_is_accepted_and_its_evidence_read_from_the_lake(example_spec, data_dir):
    conf = _request(example_spec)
    typed = run_conf.check_conf(example_spec, "retrain", conf, {**FORM, **conf})
    assert typed.reason == "data_drift" and str(typed.ds) == "2026-03-14"
    evidence = run_conf.request_evidence(example_spec, conf)
    assert evidence == {k: conf[k] for k in ("drift_share", "drifted_columns", "prediction_drift", "report_html",
                                             "champion_version")}
    # Naming the request by its day alone (a rerun by hand) brings the same evidence.
    assert run_conf.request_evidence(example_spec, {"ds": "2026-03-14", "reason": "rerun"}) == evidence


@pytest.mark.parametrize(("conf", "key"), [
    ({"concept": {"metric": "roc_auc", "value": "high"}}, "'concept'"),
    ({"drift_share": 0.99, "report_html": "/etc/passwd"}, "'drift_share'"),
    ({"ds": "2026-03-20", "drift_share": 0.99}, "'ds'"),  # no request recorded that day
    ({"ds": "../../etc", "reason": "x"}, "'ds'"),
    ({"window_days": "abc"}, "'window_days'"),
    ({"window_days": 2}, "'window_days'"),
    ({"force": "yes"}, "'force'"),
    ({"promote": "always"}, "'promote'"),
    ({"end_date": "yesterday"}, "'end_date'"),
    ({"model_uri": "file:///tmp/model"}, "'model_uri'"),
])
def test_a_made_up_or_mistyped_retrain_conf_is_refused_naming_the_key(example_spec, data_dir, conf, key):
    _request(example_spec)
    with pytest.raises(run_conf.ConfError, match=key):
        run_conf.check_conf(example_spec, "retrain", conf, {**FORM, **conf})


def test_evidence_that_differs_from_the_recorded_request_is_refused(example_spec, data_dir):
    conf = _request(example_spec)
    forged = {**conf, "drift_share": 0.99}
    with pytest.raises(run_conf.ConfError, match="'drift_share' differs from the retraining request"):
        run_conf.check_conf(example_spec, "retrain", forged, {**FORM, **forged})
    other = _request(example_spec, ds="2026-03-15", model="retail_demand")
    with pytest.raises(run_conf.ConfError, match="not a retraining request of late_delivery"):
        run_conf.request_evidence(example_spec, other)


@pytest.mark.parametrize(("kind", "conf", "key"), [
    ("rollback", {"reason": "bad v2", "to_version": "models:/x/1"}, "'to_version'"),
    ("rollback", {"reason": "bad v2", "to_version": True}, "'to_version'"),
    ("rollback", {"reason": "bad v2", "model_path": "/tmp/m"}, "'model_path'"),
    ("approve", {"reason": "ok", "version": 1}, "'reason'"),
    ("approve", {"reason": "reviewed", "version": "2; drop"}, "'version'"),
])
def test_rollback_and_approve_confs_are_typed(example_spec, kind, conf, key):
    with pytest.raises(run_conf.ConfError, match=key):
        run_conf.check_conf(example_spec, kind, conf, dict(conf))
    assert run_conf.check_conf(example_spec, kind, {"reason": "a good reason"}, {"reason": "a good reason"})
