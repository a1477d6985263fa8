"""Drift: Evidently's verdicts, and large days sampled without changing them.

Real Evidently on the example model's columns; a few thousand rows, with a small
``max_rows`` so that sampling happens at test size.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_lifecycle import drift
from mlops_lifecycle.examples import late_delivery

DAY = dt.date(2026, 3, 1)


def _frames(spec, rows: int, shift: float):
    ref = late_delivery.generate_day(DAY, rows=rows)
    cur = late_delivery.generate_day(DAY + dt.timedelta(days=1), rows=rows, shift=shift)
    return cur[spec.drift_columns], ref[spec.drift_columns]


def _verdicts(summary):
    return summary["dataset_drift"], {c: v["drifted"] for c, v in summary["columns"].items()}


def test_small_days_are_not_sampled_and_a_shift_is_found(example_spec, tmp_path):
    cur, ref = _frames(example_spec, 1500, shift=1.0)
    summary = drift.compute_drift(example_spec, cur, ref, out_dir=tmp_path)
    assert summary["sampled"] is None
    assert summary["rows"] == {"current": len(cur), "reference": len(ref)}
    assert summary["dataset_drift"] is True and "traffic_index" in summary["drifted_columns"]
    assert (tmp_path / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_a_sampled_run_gives_the_full_runs_verdicts(example_spec, tmp_path, shift):
    cur, ref = _frames(example_spec, 8000, shift=shift)
    full = drift.compute_drift(example_spec, cur, ref)
    sampled = drift.compute_drift(example_spec, cur, ref, max_rows=2500, out_dir=tmp_path)
    assert full["sampled"] is None
    assert sampled["sampled"]["current"] == 2500 and sampled["sampled"]["reference"] == 2500
    assert sampled["rows"] == full["rows"], "the summary keeps the full row counts"
    assert _verdicts(sampled) == _verdicts(full)
    for column, verdict in full["columns"].items():
        assert sampled["columns"][column]["method"] == verdict["method"]
        assert abs(sampled["columns"][column]["score"] - verdict["score"]) < 0.05
    assert (tmp_path / "report.html").exists(), "the report is still Evidently's HTML"


def test_methods_resolved_on_all_rows_match_evidentlys_own_choice(example_spec):
    from evidently.legacy.calculations.stattests.registry import _get_default_stattest
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(0)
    big_cur, big_ref = _frames(example_spec, 3000, shift=0.0)
    few = pd.DataFrame({"drivers_available": rng.integers(0, 4, 3000)})  # a numeric column with 4 values
    cases = [(big_cur, big_ref), (big_cur.head(900), big_ref.head(900)),
             (few.head(2000), few.tail(2000)), (few.head(500), few.tail(500))]
    for cur, ref in cases:
        columns = list(cur.columns)
        ours = drift.full_run_methods(example_spec, cur, ref, columns, hint=cur.head(200))
        for c in columns:
            kind = ColumnType.Numerical if drift._numeric(example_spec, c) else ColumnType.Categorical
            theirs = _get_default_stattest(drift._finite(ref[c]), drift._finite(cur[c]), kind).name
            # Evidently's one-sample chi-square / Z-test are replaced by the two-sample test.
            expected = drift.CHI2_TWO_SAMPLE if theirs in {"chisquare", "z"} else theirs
            assert ours[c] == expected, (c, len(ref), ours[c], theirs)


def test_a_small_references_own_noise_is_not_read_as_categorical_drift():
    """Same distribution on both sides, 400 reference rows: Evidently's default chi-square
    (reference proportions taken as exact) flags far more than its 5% level; the two-sample
    test used instead stays at it."""
    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test

    rng = np.random.default_rng(3)
    trials, ours, theirs = 400, 0, 0
    for _ in range(trials):
        ref = pd.Series(rng.choice(late_delivery.WEATHER, 400, p=late_delivery.WEATHER_P))
        cur = pd.Series(rng.choice(late_delivery.WEATHER, 600, p=late_delivery.WEATHER_P))
        ours += drift._chi2_two_sample(ref, cur, None, 0.05)[1]
        theirs += _chi_stat_test(ref, cur, None, 0.05)[1]
    assert ours / trials <= 0.08, ours / trials
    assert theirs / trials >= 2 * max(ours, 1) / trials, (theirs, ours)


def test_a_small_reference_still_finds_a_real_categorical_shift(example_spec, tmp_path):
    spec = example_spec.model_copy(update={"drift": example_spec.drift.model_copy(update={"columns": ["weather"]})})

    def frame(rows: int, shares: list[float]) -> pd.DataFrame:
        counts = np.round(np.array(shares) * rows).astype(int)
        return pd.DataFrame({"weather": np.repeat(late_delivery.WEATHER, counts)})

    ref, same = frame(400, late_delivery.WEATHER_P), frame(600, late_delivery.WEATHER_P)
    stormy = frame(600, [0.30, 0.25, 0.25, 0.12, 0.08])
    calm, shifted = drift.compute_drift(spec, same, ref), drift.compute_drift(spec, stormy, ref, out_dir=tmp_path)
    assert calm["columns"]["weather"]["method"] == shifted["columns"]["weather"]["method"] == drift.CHI2_TWO_SAMPLE
    assert calm["drifted_columns"] == [] and shifted["drifted_columns"] == ["weather"]
    assert (tmp_path / "report.html").exists()


def test_p_value_methods_use_all_rows(example_spec, tmp_path):
    spec = example_spec.model_copy(update={"drift": example_spec.drift.model_copy(update={"method": "ks"})})
    cur, ref = _frames(spec, 3000, shift=0.0)
    numeric = [c for c in spec.drift_columns if drift._numeric(spec, c)]
    spec = spec.model_copy(update={"drift": spec.drift.model_copy(update={"columns": numeric})})
    summary = drift.compute_drift(spec, cur[numeric], ref[numeric], max_rows=1500)
    assert summary["sampled"] is None, "a K-S verdict on a sample is not the full run's"
    assert {v["method"] for v in summary["columns"].values()} == {"ks"}


def test_sample_positions_are_deterministic_ordered_and_cover_the_whole_frame():
    a = drift.sample_positions(1_000_003, 5000, seed=42)
    assert (a == drift.sample_positions(1_000_003, 5000, seed=42)).all()
    assert len(a) == 5000 and (np.diff(a) > 0).all() and a[0] < 201 and a[-1] >= 1_000_003 - 201
    assert not (a == drift.sample_positions(1_000_003, 5000, seed=43)).all()


def test_bad_settings_and_missing_columns_are_named(example_spec, monkeypatch):
    monkeypatch.setenv("MLOPS_DRIFT_MAX_ROWS", "500")
    with pytest.raises(ValueError, match="MLOPS_DRIFT_MAX_ROWS"):
        drift.default_max_rows()
    monkeypatch.setenv("MLOPS_DRIFT_MAX_ROWS", "20000")
    assert drift.default_max_rows() == 20000
    cur, ref = _frames(example_spec, 200, shift=0.0)
    with pytest.raises(ValueError, match="traffic_index"):
        drift.compute_drift(example_spec, cur.drop(columns=["traffic_index"]), ref)


# ---- the day's report folder: report.html and summary.json always from the same run ----------------


def _drift_day(spec, data_dir, shift: float):
    """A validated day and its predictions, and a cached reference of model version 1
    (unlabelled rows: no concept metric, so no registry is needed)."""
    from mlops_lifecycle import lake

    rng = np.random.default_rng(7)
    day = late_delivery.generate_day(DAY, rows=400, shift=shift).assign(**{spec.target.column: np.nan})
    lake.write_parquet(lake.data_file(spec.name, "validated", DAY), day)
    preds = pd.DataFrame({spec.entity_id: day[spec.entity_id], "prediction": rng.random(len(day))})
    lake.write_parquet(lake.data_file(spec.name, "predictions", DAY), preds)
    ref = late_delivery.generate_day(DAY - dt.timedelta(days=30), rows=400)
    lake.write_parquet(lake.reference_file(spec.name, 1), ref[spec.drift_columns].assign(prediction=rng.random(len(ref))))


def test_report_and_summary_are_swapped_in_together(example_spec, data_dir, monkeypatch):
    from mlops_lifecycle import lake, monitoring

    folder = lake.report_dir(example_spec.name, "drift", DAY)
    _drift_day(example_spec, data_dir, shift=0.0)
    first = monitoring.check_drift(example_spec, DAY, version=1)
    assert first["report_html"] == str(folder / "report.html")
    pair = {name: (folder / name).read_bytes() for name in ("report.html", "summary.json")}
    summary = json.loads(pair["summary.json"])
    assert summary["model_version"] == "1" and summary["ds"] == DAY.isoformat()
    assert summary["report_html"] == str(folder / "report.html") and summary["drift_share"] == first["drift_share"]

    # A rerun on shifted data that dies before its summary is written changes nothing.
    _drift_day(example_spec, data_dir, shift=1.5)
    write_json = lake.write_json

    def dies_on_summary(target, payload):
        if Path(target).name == "summary.json":
            raise OSError("disk full")
        return write_json(target, payload)

    monkeypatch.setattr(lake, "write_json", dies_on_summary)
    with pytest.raises(OSError, match="disk full"):
        monitoring.check_drift(example_spec, DAY, version=1)
    assert {name: (folder / name).read_bytes() for name in pair} == pair, "a report was paired with an old summary"
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name], "no temporary folder left"

    # The rerun that completes replaces both.
    monkeypatch.setattr(lake, "write_json", write_json)
    second = monitoring.check_drift(example_spec, DAY, version=1)
    assert second["dataset_drift"] and not first["dataset_drift"]
    assert json.loads((folder / "summary.json").read_text())["drift_share"] == second["drift_share"]
    assert (folder / "report.html").read_bytes() != pair["report.html"]
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "summary.json"]
