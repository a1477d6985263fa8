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


# ---- power: the smallest detectable gain, and a holdout too small to decide -----------------


def _paired(p, gain, se):
    return {"metric": "roc_auc", "gain": gain, "p_value": p, "ci_low": gain - 2 * se, "ci_high": gain + 2 * se,
            "std_error": se, "resamples": 1000, "rows": 400}


def test_the_smallest_detectable_gain_follows_the_bootstrap_spread_and_the_significance():
    from mlops_lifecycle.promotion import min_detectable_gain

    # (z(0.95) + z(0.80)) x SE = (1.645 + 0.842) x SE
    assert abs(min_detectable_gain(0.01, 0.05) - 0.02487) < 1e-4
    assert min_detectable_gain(0.01, 0.01) > min_detectable_gain(0.01, 0.05)
    assert min_detectable_gain(float("nan"), 0.05) != min_detectable_gain(float("nan"), 0.05)  # NaN


def test_a_holdout_below_its_row_minimum_is_too_small_to_decide_and_the_champion_stays(example_spec):
    # A gain within what 300 rows can tell apart (0.02 < the smallest detectable 0.0249): no power to decide.
    marginal = _paired(0.04, 0.02, 0.01)
    d = decide(example_spec, challenger_metrics=_auc(0.82), champion_metrics=_auc(0.80), paired=marginal,
               holdout={"rows": 300, "min_rows": 2000})
    assert not d.promote
    assert any(r.startswith("too small to decide: the holdout holds 300 rows, fewer than the 2000") and
               r.endswith("the champion stays") for r in d.reasons), d.reasons
    assert d.holdout["too_small_to_decide"] is True and abs(d.holdout["min_detectable_gain"] - 0.02487) < 1e-4
    # Control: the same evidence on a holdout that reached its rows is promoted.
    d = decide(example_spec, challenger_metrics=_auc(0.82), champion_metrics=_auc(0.80), paired=marginal,
               holdout={"rows": 2400, "min_rows": 2000})
    assert d.promote and d.holdout["too_small_to_decide"] is False


def test_a_clear_win_on_a_small_holdout_is_decisive_and_says_why(example_spec):
    # Significant and beyond the smallest detectable gain (0.05 > 0.0249): the small holdout lacked
    # power, not evidence, so the challenger is promoted (the bike back-test rejected 18 such wins).
    clear_win = _paired(0.001, 0.05, 0.01)
    d = decide(example_spec, challenger_metrics=_auc(0.85), champion_metrics=_auc(0.80), paired=clear_win,
               holdout={"rows": 300, "min_rows": 2000})
    assert d.promote and d.holdout["too_small_to_decide"] is False
    assert any(r.startswith("decisive on a small holdout: the holdout holds 300 rows") for r in d.reasons), d.reasons
    assert "smallest detectable gain 0.0249" in d.summary


def test_a_gain_within_noise_says_how_large_a_gain_the_holdout_could_have_seen(example_spec):
    d = decide(example_spec, challenger_metrics=_auc(0.81), champion_metrics=_auc(0.80),
               paired=_paired(0.2, 0.01, 0.012), holdout={"rows": 400, "min_rows": 300})
    assert not d.promote and "within noise" in d.summary
    assert "smallest detectable gain on these 400 rows 0.0298" in d.summary
