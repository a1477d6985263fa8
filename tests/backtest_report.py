"""A back-test report as `mlops backtest` writes it, shared by the back-test tests."""

REPORT = {
    "model": "m", "from": "2026-03-01", "to": "2026-04-30", "metric": "roc_auc", "higher_is_better": True,
    "options": {"refit_every_days": 30, "refit_window_days": 60, "judge_days": 14},
    "first_model": {"version": "1"},
    "months": [{"month": "2026-03", "days": 31, "scored_days": 30, "quarantined_days": 1, "missing_days": 0,
                "warnings": 2, "alerts": 4, "retrain_requests": 1, "promotions": 0, "rejections": 1,
                "labelled_rows": 29000, "scored": 0.81, "stale": 0.81, "refit": 0.8, "gain_vs_stale": 0.0,
                "gain_vs_refit": 0.01}],
    "total": {"month": "total", "days": 31, "scored_days": 30, "quarantined_days": 1, "missing_days": 0, "warnings": 2,
              "alerts": 4, "alerts_by_kind": {"drift": 3, "quarantine": 1}, "retrain_requests": 1, "promotions": 0,
              "rejections": 1, "labelled_rows": 29000, "scored": 0.81, "stale": 0.81, "refit": 0.8,
              "gain_vs_stale": 0.0, "gain_vs_refit": 0.01},
    "decisions": [{"ds": "2026-03-12", "version": "2", "champion_version": "1", "outcome": "rejected",
                   "reason": "data_drift", "judged_rows": 7000, "challenger_metric": 0.74, "champion_metric": 0.73,
                   "gain": 0.01, "right": False}],
    "days": [{"ds": "2026-03-06", "status": "quarantined", "detail": "weather in set"}],
    "timing": {"days": 31, "replay_seconds": 62.0, "seconds_per_day": 2.0, "total_seconds": 90.0},
}
