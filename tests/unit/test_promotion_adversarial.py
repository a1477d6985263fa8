"""Adversarial promotion: challengers that must never become champion.

Each refusal is shown twice where it depends on data: as a pure rule of
:func:`promotion.decide` on hand-made evidence, and on real XGBoost models trained on the
example generator's data and scored on the same holdout rows. Every refusal has a
control next to it (the same challenger with that one protection turned off is
promoted), so a test fails if its protection is removed, not only if everything is refused.
The last tests go through ``training.compare_and_promote`` with the models registered in
a real MLflow store, so the wiring (noise test and slices computed and passed) is covered too.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlops_lifecycle import evaluation, features, promotion
from mlops_lifecycle.promotion import decide
from mlops_lifecycle.spec import ModelSpec

DAY0 = dt.date(2026, 1, 1)


def with_promotion(spec: ModelSpec, **rules) -> ModelSpec:
    """The spec with promotion rules changed, validated like a YAML file would be."""
    data = spec.model_dump()
    data["promotion"] = {**data["promotion"], **rules}
    return ModelSpec.model_validate(data)


@pytest.fixture
def spec(example_spec) -> ModelSpec:
    return with_promotion(example_spec, margin=0.005, floor=0.6, significance=0.05)


def _auc(v):
    return {"roc_auc": v}


def _paired(p, gain=0.02):
    return {
        "metric": "roc_auc",
        "gain": gain,
        "p_value": p,
        "ci_low": gain - 0.03,
        "ci_high": gain + 0.03,
        "resamples": 1000,
    }


# ---- pure rules ---------------------------------------------------------------------------


def test_worse_challenger_is_refused(spec):
    d = decide(
        spec, challenger_metrics=_auc(0.78), champion_metrics=_auc(0.80), paired=_paired(0.9, gain=-0.02)
    )
    assert not d.promote and "does not beat champion" in d.summary


def test_tie_is_refused_even_with_zero_margin(spec):
    d = decide(
        with_promotion(spec, margin=0.0),
        challenger_metrics=_auc(0.80),
        champion_metrics=_auc(0.80),
        paired=_paired(0.5, gain=0.0),
    )
    assert not d.promote


def test_win_within_noise_is_refused_and_a_significant_win_is_promoted(spec):
    noisy = decide(
        spec, challenger_metrics=_auc(0.83), champion_metrics=_auc(0.80), paired=_paired(0.20, gain=0.03)
    )
    assert not noisy.promote and "within noise" in noisy.summary
    clear = decide(
        spec, challenger_metrics=_auc(0.83), champion_metrics=_auc(0.80), paired=_paired(0.01, gain=0.03)
    )
    assert clear.promote, clear.summary


def test_noise_test_that_could_not_be_computed_refuses(spec):
    d = decide(spec, challenger_metrics=_auc(0.83), champion_metrics=_auc(0.80), paired=_paired(float("nan")))
    assert not d.promote and "within noise" in d.summary


def test_noise_test_can_be_turned_off_by_the_spec(spec):
    off = with_promotion(spec, significance=None)
    assert decide(
        off, challenger_metrics=_auc(0.83), champion_metrics=_auc(0.80), paired=_paired(0.4)
    ).promote


def _slices(west_challenger, west_champion, rows=120):
    return {
        "north": {"rows": rows, "challenger": 0.85, "champion": 0.80},
        "west": {"rows": rows, "challenger": west_challenger, "champion": west_champion},
    }


def test_regression_on_a_protected_slice_is_refused(spec):
    protected = with_promotion(spec, protected_slices=["west"], max_slice_regression=0.02)
    kwargs = {"challenger_metrics": _auc(0.83), "champion_metrics": _auc(0.80), "paired": _paired(0.01)}
    refused = decide(protected, slices=_slices(0.70, 0.75), **kwargs)
    assert not refused.promote and "worse on protected slice delivery_region=west" in refused.summary
    # Within the tolerance: promoted.
    assert decide(protected, slices=_slices(0.74, 0.75), **kwargs).promote
    # The same regression on a slice the spec does not protect: promoted.
    assert decide(spec, slices=_slices(0.70, 0.75), **kwargs).promote


def test_protected_slice_that_cannot_be_measured_is_refused(spec):
    protected = with_promotion(spec, protected_slices=["west"])
    kwargs = {"challenger_metrics": _auc(0.83), "champion_metrics": _auc(0.80), "paired": _paired(0.01)}
    too_few = decide(protected, slices=_slices(0.9, 0.7, rows=12), **kwargs)
    assert not too_few.promote and "cannot be checked" in too_few.summary
    missing = decide(protected, slices={"north": _slices(0.9, 0.7)["north"]}, **kwargs)
    assert not missing.promote and "cannot be checked" in missing.summary


def test_lower_is_better_slices_compare_the_right_way(spec):
    ll = with_promotion(
        spec, metric="log_loss", floor=0.7, protected_slices=["west"], max_slice_regression=0.01
    )
    kwargs = {
        "challenger_metrics": {"log_loss": 0.40},
        "champion_metrics": {"log_loss": 0.45},
        "paired": {**_paired(0.01), "metric": "log_loss"},
    }
    assert not decide(ll, slices=_slices(0.50, 0.45), **kwargs).promote  # higher loss on west
    assert decide(ll, slices=_slices(0.44, 0.45), **kwargs).promote


def test_first_model_below_the_floor_is_refused(spec):
    d = decide(spec, challenger_metrics=_auc(0.58), champion_metrics=None)
    assert not d.promote and "does not clear the floor" in d.summary
    assert decide(spec, challenger_metrics=_auc(0.62), champion_metrics=None).promote


def test_challenger_below_the_floor_is_refused_even_when_it_beats_a_worse_champion(spec):
    d = decide(
        spec, challenger_metrics=_auc(0.59), champion_metrics=_auc(0.52), paired=_paired(0.001, gain=0.07)
    )
    assert not d.promote and "does not clear the floor" in d.summary


def test_metric_that_cannot_be_computed_is_refused(spec):
    assert not decide(spec, challenger_metrics=_auc(float("nan")), champion_metrics=None).promote
    assert not decide(spec, challenger_metrics=_auc(float("nan")), champion_metrics=_auc(0.7)).promote


def test_protected_slices_must_be_categories_of_the_slice_column(example_spec):
    with pytest.raises(ValueError, match="not categories of 'delivery_region'"):
        with_promotion(example_spec, protected_slices=["atlantis"])


# ---- the noise test itself ---------------------------------------------------------------


def test_weighted_metric_equals_the_metric_on_each_resample(spec):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    pred = np.round(rng.random(200), 2)  # ties on purpose
    idx = rng.integers(0, 200, (25, 200))
    weights = np.stack([np.bincount(i, minlength=200) for i in idx])
    for metric in ("roc_auc", "log_loss", "precision", "recall", "f1", "accuracy"):
        fast = promotion.weighted_metric(spec, metric, y, pred, weights)
        slow = [promotion.metric_value(spec, metric, y[i], pred[i]) for i in idx]
        np.testing.assert_allclose(fast, slow, atol=1e-12, err_msg=metric)
        assert promotion.metric_value(spec, metric, y, pred) == pytest.approx(
            evaluation.metrics(spec, y, pred)[metric]
        )


def test_paired_bootstrap_is_seeded_and_identical_models_never_win(spec):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    pred = rng.random(300)
    other = np.clip(pred + rng.normal(0, 0.2, 300), 0, 1)
    same = promotion.paired_bootstrap(spec, y, pred, pred)
    assert same["gain"] == 0 and same["p_value"] == 1.0
    first = promotion.paired_bootstrap(spec, y, pred, other)
    assert first == promotion.paired_bootstrap(spec, y, pred, other), "same seed, same verdict"
    assert first["resamples"] == 1000 and first["ci_low"] <= first["gain"] <= first["ci_high"]
    # Swapping the models mirrors the verdict.
    swapped = promotion.paired_bootstrap(spec, y, other, pred)
    assert swapped["gain"] == pytest.approx(-first["gain"])


# ---- real XGBoost models on generated data ----------------------------------------------------


@pytest.fixture(scope="module")
def data():
    from mlops_lifecycle.examples.late_delivery import generate_day

    days = [DAY0 + dt.timedelta(days=i) for i in range(12)]
    train = pd.concat([generate_day(d, rows=400) for d in days[:10]], ignore_index=True)
    return {
        "train": train,
        "holdout_small": generate_day(days[11], rows=300),
        "holdout": generate_day(days[11], rows=1000),
    }


def _fit(spec, frame, *, seed=1, blank=(), flip_region=None, **params):
    """An XGBoost classifier on the frame; ``blank`` zeroes features (a model that misses
    them), ``flip_region`` inverts the labels of one region (a model broken on that slice)."""
    import xgboost as xgb

    frame = frame.copy()
    if flip_region:
        mask = frame["delivery_region"] == flip_region
        frame.loc[mask, "is_late"] = 1 - frame.loc[mask, "is_late"]
    matrix = features.build_matrix(spec, frame)
    cols = features.feature_columns(spec)
    for name in blank:
        matrix[:, cols.index(name)] = 0
    base = {
        "n_estimators": 80,
        "max_depth": 4,
        "learning_rate": 0.2,
        "tree_method": "hist",
        "random_state": seed,
    }
    return xgb.XGBClassifier(**{**base, **params}).fit(matrix, frame["is_late"].to_numpy())


def _evidence(spec, holdout, challenger, champion):
    matrix = features.build_matrix(spec, holdout)
    champ_pred = evaluation.predict(spec, champion, matrix) if champion is not None else None
    return promotion.evaluate_pair(spec, holdout, evaluation.predict(spec, challenger, matrix), champ_pred)


def _decide(spec, ev, tests=None):
    return decide(
        spec,
        challenger_metrics=ev["challenger_metrics"],
        champion_metrics=ev["champion_metrics"],
        model_tests=tests,
        paired=ev["paired"],
        slices=ev["slices"],
    )


def test_real_worse_challenger_is_refused_and_the_reverse_is_promoted(spec, data):
    good = _fit(spec, data["train"])
    crippled = _fit(spec, data["train"], n_estimators=1, max_depth=1)
    worse = _decide(spec, _evidence(spec, data["holdout"], crippled, good))
    assert not worse.promote and "does not beat champion" in worse.summary
    better = _decide(spec, _evidence(spec, data["holdout"], good, crippled))
    assert better.promote, better.summary
    assert better.noise["p_value"] <= 0.05


def test_real_challenger_better_only_within_noise_is_refused(spec, data):
    """Same data, same features, another seed: a point gain above the margin that the
    paired bootstrap on 300 holdout rows shows to be noise."""
    holdout = data["holdout_small"]
    champion = _fit(spec, data["train"], seed=1, subsample=0.8, colsample_bytree=0.8)
    for seed in range(2, 12):
        challenger = _fit(spec, data["train"], seed=seed, subsample=0.8, colsample_bytree=0.8)
        ev = _evidence(spec, holdout, challenger, champion)
        if (
            ev["paired"]["gain"] >= spec.promotion.margin
            and ev["paired"]["p_value"] > spec.promotion.significance
        ):
            break
    else:
        pytest.fail("no seed gave a noisy win above the margin; the scenario no longer shows what it should")
    refused = _decide(spec, ev)
    assert not refused.promote and "within noise" in refused.summary
    # Without the noise test, margin and floor alone would have promoted it.
    assert _decide(with_promotion(spec, significance=None), ev).promote


def test_real_challenger_better_on_average_but_broken_on_a_protected_slice_is_refused(spec, data):
    """The champion misses the numeric features; the challenger has them all but learnt
    inverted labels for the west region. Noise test off to isolate the slice rule."""
    base = with_promotion(spec, significance=None)
    champion = _fit(spec, data["train"], blank=("traffic_index", "warehouse_workload", "distance_km"))
    challenger = _fit(spec, data["train"], flip_region="west")
    ev = _evidence(spec, data["holdout"], challenger, champion)
    west = ev["slices"]["west"]
    assert ev["challenger_metrics"]["roc_auc"] - ev["champion_metrics"]["roc_auc"] >= spec.promotion.margin
    assert west["champion"] - west["challenger"] > 0.1
    assert _decide(base, ev).promote, "control: without a protected slice it wins on average"
    protected = with_promotion(base, protected_slices=["west"])
    refused = _decide(protected, ev)
    assert not refused.promote and "worse on protected slice delivery_region=west" in refused.summary


def test_real_model_below_the_floor_is_refused_as_first_champion(spec, data):
    """Trained on labels shuffled away from the features: AUC near 0.5."""
    noise = data["train"].copy()
    noise["is_late"] = np.random.default_rng(0).permutation(noise["is_late"].to_numpy())
    d = _decide(spec, _evidence(spec, data["holdout"], _fit(spec, noise), None))
    assert d.challenger < spec.promotion.floor
    assert not d.promote and "does not clear the floor" in d.summary
    assert _decide(spec, _evidence(spec, data["holdout"], _fit(spec, data["train"]), None)).promote


def test_real_model_failing_a_model_test_is_refused(spec, data):
    ev = _evidence(
        spec,
        data["holdout"],
        _fit(spec, data["train"]),
        _fit(spec, data["train"], n_estimators=1, max_depth=1),
    )
    d = _decide(spec, ev, tests={"latency": True, "size": False})
    assert not d.promote and "failed model tests: size" in d.summary


# ---- through compare_and_promote, with the registry ------------------------------------------


def _register(spec, model, holdout_path):
    import mlflow
    import mlflow.xgboost

    from mlops_lifecycle import registry

    exp = registry.ensure_experiment(spec)
    with mlflow.start_run(experiment_id=exp) as run:
        # Explicit requirements: MLflow's inference of them starts a slow subprocess.
        info = mlflow.xgboost.log_model(
            model, name="model", registered_model_name=spec.model_name, pip_requirements=["xgboost"]
        )
    return {
        "model": spec.name,
        "version": str(info.registered_model_version),
        "run_id": run.info.run_id,
        "holdout_path": str(holdout_path),
        "tests": {"latency": True, "size": True},
        "trigger": {"reason": "pytest"},
    }


def test_compare_and_promote_refuses_a_slice_regression_with_real_registered_models(
    spec, data, data_dir, tmp_path
):
    from mlops_lifecycle import alerts, registry, training

    holdout_path = tmp_path / "holdout.parquet"
    data["holdout"].to_parquet(holdout_path, index=False)
    v1 = _register(
        spec,
        _fit(spec, data["train"], blank=("traffic_index", "warehouse_workload", "distance_km")),
        holdout_path,
    )
    registry.set_champion(spec, v1["version"], actor="pytest", reason="first")

    # Better on average, broken on the protected west slice: rejected, champion kept.
    protected = with_promotion(spec, significance=None, protected_slices=["west"])
    v2 = _register(protected, _fit(spec, data["train"], flip_region="west"), holdout_path)
    out = training.compare_and_promote(protected, v2, actor="pytest")
    assert out["outcome"] == "rejected" and "worse on protected slice" in out["reasons"][-1]
    assert str(registry.champion(spec).version) == v1["version"]
    assert registry.get_version(spec, v2["version"]).tags["status"] == "rejected"

    # A decided version is not decided again (a retried or rerun comparison changes nothing).
    again = training.compare_and_promote(with_promotion(spec, significance=None), v2, actor="pytest")
    assert again["outcome"] == "rejected" and again["resumed"]
    # Control: the same challenger, registered again, under the spec without the protected slice is promoted.
    v3 = _register(spec, _fit(spec, data["train"], flip_region="west"), holdout_path)
    out = training.compare_and_promote(with_promotion(spec, significance=None), v3, actor="pytest")
    assert out["outcome"] == "promoted", out["reasons"]
    assert str(registry.champion(spec).version) == v3["version"]
    actions = [(e["action"], e["to_version"]) for e in registry.audit_log(spec)]
    assert actions == [("promote", v1["version"]), ("reject", v2["version"]), ("promote", v3["version"])]
    kinds = [a["kind"] for a in alerts.read_alerts(spec.name)]
    assert kinds.count("rejection") == 1 and kinds.count("promotion") == 2


def test_compare_and_promote_refuses_a_win_within_noise_with_real_registered_models(
    spec, data, data_dir, tmp_path
):
    from mlops_lifecycle import registry, training

    holdout = data["holdout_small"]
    holdout_path = tmp_path / "holdout.parquet"
    holdout.to_parquet(holdout_path, index=False)
    params = {"subsample": 0.8, "colsample_bytree": 0.8}
    champion = _fit(spec, data["train"], seed=1, **params)
    for seed in range(2, 12):  # the first other seed whose point gain clears the margin
        challenger = _fit(spec, data["train"], seed=seed, **params)
        if _evidence(spec, holdout, challenger, champion)["paired"]["gain"] >= spec.promotion.margin:
            break
    v1 = _register(spec, champion, holdout_path)
    registry.set_champion(spec, v1["version"], actor="pytest", reason="first")
    v2 = _register(spec, challenger, holdout_path)
    out = training.compare_and_promote(spec, v2, actor="pytest")
    assert out["champion"] + spec.promotion.margin <= out["challenger"], (
        "precondition: a point win above the margin"
    )
    assert out["outcome"] == "rejected" and "within noise" in out["reasons"][-1], out["reasons"]
    assert str(registry.champion(spec).version) == v1["version"]
    import mlflow

    run = mlflow.get_run(v2["run_id"])
    assert run.data.metrics["promotion.p_value"] > spec.promotion.significance
    assert run.data.tags["promotion.decision"] == "reject"


def test_another_models_experiment_in_the_same_process_does_not_break_promotion(spec, data, data_dir, tmp_path):
    """Two models in one interpreter (DAG.test, make demo): model A's run is resumed to log
    its promotion after model B's experiment became MLflow's active one."""
    import mlflow

    from mlops_lifecycle import registry, training

    holdout_path = tmp_path / "holdout.parquet"
    data["holdout"].to_parquet(holdout_path, index=False)
    v1 = _register(spec, _fit(spec, data["train"]), holdout_path)
    other = spec.model_copy(update={"name": "other_model", "registered_model_name": None})
    mlflow.set_experiment(experiment_id=registry.ensure_experiment(other))
    out = training.compare_and_promote(spec, v1, actor="pytest")
    assert out["outcome"] == "promoted", out["reasons"]
    assert mlflow.get_run(v1["run_id"]).data.tags["promotion.decision"] == "promote"
