"""The promotion rule, adversarially: only a challenger that clearly wins is promoted."""

from __future__ import annotations

from mlops_lifecycle.promotion import decide


def _auc(v):
    return {"roc_auc": v}


def test_first_model_is_promoted_when_it_clears_the_floor(example_spec):
    d = decide(example_spec, challenger_metrics=_auc(0.80), champion_metrics=None)
    assert d.promote and "no champion" in d.summary


def test_first_model_below_floor_is_not_promoted(example_spec):
    d = decide(example_spec, challenger_metrics=_auc(0.65), champion_metrics=None)
    assert not d.promote and "floor" in d.summary


def test_worse_challenger_is_not_promoted(example_spec):
    d = decide(example_spec, challenger_metrics=_auc(0.78), champion_metrics=_auc(0.80))
    assert not d.promote and "does not beat" in d.summary


def test_win_within_margin_is_not_promoted(example_spec):
    margin = example_spec.promotion.margin
    d = decide(example_spec, challenger_metrics=_auc(0.80 + margin / 2), champion_metrics=_auc(0.80))
    assert not d.promote


def test_clear_win_is_promoted(example_spec):
    d = decide(example_spec, challenger_metrics=_auc(0.83), champion_metrics=_auc(0.80))
    assert d.promote and "beats champion" in d.summary


def test_failed_model_test_blocks_promotion(example_spec):
    d = decide(example_spec, challenger_metrics=_auc(0.9), champion_metrics=_auc(0.8), model_tests={"latency": False, "size": True})
    assert not d.promote and "latency" in d.summary


def test_lower_is_better_metrics_compare_the_right_way(example_spec):
    spec = example_spec.model_copy(update={"promotion": example_spec.promotion.model_copy(update={"metric": "log_loss", "floor": 0.6})})
    assert decide(spec, challenger_metrics={"log_loss": 0.40}, champion_metrics={"log_loss": 0.45}).promote
    assert not decide(spec, challenger_metrics={"log_loss": 0.45}, champion_metrics={"log_loss": 0.40}).promote
