"""The ``mlops`` command: the demo, spec checks, rollback and approval from a terminal.

Run ``mlops --help``. Every sub-command reads the same environment as the DAGs
(``MLOPS_DATA_DIR``, ``MLFLOW_TRACKING_URI``, ``MLOPS_SPECS_DIR``, ``AIRFLOW_HOME``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_lifecycle import config

if TYPE_CHECKING:
    from mlops_lifecycle.spec import ModelSpec

DEMO_MODEL = "late_delivery"
SECOND_DEMO_MODEL = "retail_demand"
DEMO_START = dt.date(2026, 3, 1)
DEMO_MARKER = ".mlops-demo"


def day_argument(text: str) -> str:
    """An argparse ``type`` for a day: ``YYYY-MM-DD``, checked before any use (the text goes
    into lake paths and DAG run dates), returned as the ISO string. Anything else is
    argparse's usage error naming the argument, never a traceback."""
    if not isinstance(text, str) or len(text) != 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: write YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: write YYYY-MM-DD") from None


def _say(msg: str = "") -> None:
    from mlops_lifecycle import masking

    print(masking.redact(msg), flush=True)  # secrets the run met (alert channels) show as ***


# Booster parameters XGBoost documents (doc/parameter.rst, 3.x) beyond the sklearn wrapper's own
# get_params(): native names and aliases, and those of other boosters and objectives.
XGBOOST_BOOSTER_PARAMS = frozenset({
    "nthread", "disable_default_eval_metric", "num_feature", "use_rmm",  # general
    "eta", "min_split_loss", "lambda", "alpha", "updater", "refresh_leaf", "process_type",  # tree booster
    "max_cached_hist_node", "extmem_single_page",
    "sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop",  # dart
    "feature_selector", "top_k",  # gblinear
    "num_class", "seed_per_iteration", "tweedie_variance_power", "huber_slope", "quantile_alpha",  # objectives
    "aft_loss_distribution", "aft_loss_distribution_scale",
    "lambdarank_pair_method", "lambdarank_num_pair_per_sample", "lambdarank_normalization",  # ranking
    "lambdarank_score_normalization", "lambdarank_unbiased", "lambdarank_bias_norm", "ndcg_exp_gain",
})
# What the trainer sets itself (training._estimator): given again, it is a TypeError or silently overridden.
XGBOOST_SET_BY_TRAINER = {
    "objective": "target.task", "eval_metric": "target.task", "random_state": "training.seed",
    "seed": "training.seed", "early_stopping_rounds": "training.early_stopping_rounds",
}


class CheckProblem(ValueError):
    """A problem ``mlops check`` found beyond the spec's schema."""


def _source_problems(s: ModelSpec) -> list[tuple[str, str]]:
    """Python sources must import as functions of (ds, spec), the way features_function is probed."""
    from mlops_lifecycle import features

    problems = []
    for where, source in (("source", s.source), ("labels.source", s.labels.source if s.labels else None)):
        if source is not None and source.kind == "python":
            try:
                features.import_function(source.callable, where=repr(source.callable), arguments=("ds", "spec"),
                                         error=CheckProblem)
            except CheckProblem as exc:
                problems.append((f"{where}.callable", str(exc)))
    return problems


def _xgboost_problems(s: ModelSpec) -> list[tuple[str, str]]:
    """Every key of training.xgboost must be a parameter of the installed XGBoost (a misspelt one is ignored)."""
    import difflib

    if not s.training.xgboost:
        return []
    import xgboost as xgb

    estimator = xgb.XGBClassifier if s.is_classifier else xgb.XGBRegressor
    known = sorted(set(estimator().get_params()) | XGBOOST_BOOSTER_PARAMS)
    problems = []
    for key in s.training.xgboost:
        if key in XGBOOST_SET_BY_TRAINER:
            problems.append((f"training.xgboost.{key}", f"set by the trainer from {XGBOOST_SET_BY_TRAINER[key]}; "
                                                        "remove it here"))
        elif key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            problems.append((f"training.xgboost.{key}", f"not a parameter of XGBoost {xgb.__version__}"
                             + (f" (did you mean {close[0]!r}?)" if close else "")))
    return problems


def _drift_problems(s: ModelSpec) -> list[tuple[str, str]]:
    """drift.method must be one of Evidently's stat tests, and apply to every column it tests."""
    if not s.drift.method:
        return []
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
    from evidently.legacy.core import ColumnType

    from mlops_lifecycle import drift

    drift.register_tests()  # the tests the product adds, as before every report
    takes = _registered_stat_tests.get(s.drift.method)
    if takes is None:
        names = ", ".join(sorted(n for n, t in _registered_stat_tests.items() if ColumnType.Text not in t))
        return [("drift.method", f"{s.drift.method!r} is not one of Evidently's stat tests: {names}")]
    columns = {c: ColumnType.Numerical if s.feature(c).type in {"float", "int"} else ColumnType.Categorical
               for c in s.drift_columns}
    if s.drift.include_prediction:
        columns[drift.PREDICTION] = ColumnType.Numerical
    refused = sorted(c for c, kind in columns.items() if kind not in takes)
    if not refused:
        return []
    both = ", ".join(sorted(n for n, t in _registered_stat_tests.items()
                            if {ColumnType.Numerical, ColumnType.Categorical} <= set(t)))
    kinds = " or ".join(sorted(t.name.lower() for t in takes))
    return [("drift.method", f"{s.drift.method!r} tests {kinds} columns only, and {refused} are not: choose one "
                             f"for both types ({both}), or narrow drift.columns / drift.include_prediction")]


def check_specs(folder: Path) -> tuple[list[tuple[Path, ModelSpec, int]], list[str]]:
    """Everything ``mlops check`` checks, for every spec in ``folder``.

    Beyond the schema and the rules across specs (:func:`spec.load_all`): the
    ``features_function`` imports and works on probe rows, Python sources import, the
    XGBoost parameters exist, and ``drift.method`` is a stat test Evidently has for the
    tested columns. Imports XGBoost and Evidently only when a spec needs them.

    Returns:
        ``(path, spec, model inputs)`` of each spec that passed, and one message per broken
        file naming the file and each field.
    """
    from mlops_lifecycle import features, spec

    loaded, errors = spec.load_all(folder)
    passed = []
    for path, s in loaded:
        problems: list[tuple[str, str]] = []
        width = 0
        try:
            width = len(features.feature_columns(s))
        except features.FeatureFunctionError as exc:
            problems.append(("features_function", str(exc)))
        problems += _source_problems(s) + _xgboost_problems(s) + _drift_problems(s)
        if problems:
            errors.append(spec.format_problems(path, problems))
        else:
            passed.append((path, s, width))
    return passed, errors


def _volume_warnings(s: ModelSpec) -> list[tuple[str, str]]:
    """Thresholds the lake's validated days cannot meet (:func:`volume.volume_warnings`);
    none before the lake holds a validated day of the model."""
    import statistics

    from mlops_lifecycle import volume

    rows = volume.observed_rows_per_day(s)
    return volume.volume_warnings(s, statistics.median(rows)) if rows else []


def cmd_check(args: argparse.Namespace) -> int:
    """Validate every spec; print each problem with file and field (see :func:`check_specs`).

    A reviewable ``<name>.suite.json`` beside a spec must also still match it. Thresholds
    that the lake's validated days of a model show can never be met are warnings (the exit
    code stays 0).
    """
    from mlops_lifecycle import scaffold

    folder = Path(args.specs) if args.specs else config.specs_dir()
    passed, errors = check_specs(folder)
    for path, s, width in passed:
        suite_file = scaffold.suite_path(path)
        fresh = scaffold.suite_json(s)
        current = json.loads(suite_file.read_text(encoding="utf-8")) if suite_file.exists() else None
        stale = current != json.loads(json.dumps(fresh, default=str))
        note = ""
        if args.write_suites:
            from mlops_lifecycle import lake

            if stale:
                lake.write_json(suite_file, fresh)
            note = (f"; {suite_file.name} unchanged" if not stale
                    else f"; {'rewrote' if current is not None else 'wrote'} {suite_file.name}")
        elif current is not None and stale:
            note = (f"; {suite_file.name} is out of date (make check WRITE_SUITES=1, or mlops check --write-suites, "
                    "renews it)")
        _say(f"ok      {s.name}  ({len(s.features)} features -> {width} model inputs, {s.target.task}, "
             f"schedule {s.schedule}){note}")
        for field, message in _volume_warnings(s):
            _say(f"warning {s.name} {field}: {message}")
        for line, message in scaffold.stale_warnings(path.read_text(encoding="utf-8"), s):
            _say(f"warning {s.name} {path.name} line {line}: {message}")
    for e in errors:
        _say(f"INVALID {e}")
    if not passed and not errors:
        _say(f"no specs found in {folder}")
    return 1 if errors else 0


def cmd_new_model(args: argparse.Namespace) -> int:
    """Scaffold a spec and its expectation suite from a sample file."""
    from mlops_lifecycle import scaffold

    config.quiet_third_party()
    made = scaffold.new_model(
        args.name, args.sample, args.target, time=args.time, entity_id=args.entity_id, exclude=tuple(args.exclude or ()),
        owner=args.owner, description=args.description, specs_dir=args.specs,
    )
    s = made.spec
    _say(f"wrote {made.spec_path}\n      {made.suite_path} (the expectation suite it implies, for review)")
    _say(f"  {s.target.task} of {s.target.column!r}; entity id {s.entity_id!r}; event time {s.event_time!r}; "
         f"{len(s.features)} features; the sample passed all {made.sample_check['evaluated']} checks, and so did "
         f"its {len(made.sample_check['checked_days'])} hardest of {made.sample_check['days']} days as daily batches "
         f"({', '.join(sorted(set(made.sample_check['checked_days'].values()))[:4])})")
    for w in made.warnings:
        _say(f"  WARNING: {w}")
    _say(f"""
Next:
  1. Review {made.spec_path.name}: every value was inferred from the sample; comments say what was seen.
  2. mlops check
  3. Land one file per day at {s.source.path}
     (from one history file: mlops split-by-day --input FILE --time {s.event_time} --out '<that path, resolved>')
  4. Load history and train once: mlops ingest-history {s.name} --from-date ... --to-date ..., then trigger
     {s.name}__retrain (make airflow: the UI lists the four {s.name}__* DAGs); unpause {s.name}__daily.
  Guide: docs/adding-a-model.md""")
    return 0


def cmd_ingest_history(args: argparse.Namespace) -> int:
    """Ingest and validate past days (no model needed) so the first training has data."""
    from mlops_lifecycle import scaffold, spec

    config.quiet_third_party()
    s = spec.get_spec(args.model)
    start, end = dt.date.fromisoformat(args.from_date), dt.date.fromisoformat(args.to_date)
    if end < start:
        raise SystemExit(f"error: --to-date {end} is before --from-date {start}")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    results = scaffold.ingest_history(s, days, docs=args.data_docs)
    for r in results:
        if r["status"] != "validated" or r.get("warned") or r["labels"] not in (None, "stored") or args.verbose:
            labels = f"  labels {r['labels']}" if r["labels"] else ""
            _say(f"{r['ds']}  {r['status']:<10} {r['rows'] if r['rows'] is not None else '-':>6}{labels}  "
                 f"{r['detail'][:160]}")
    counts = {k: sum(1 for r in results if r["status"] == k) for k in ("validated", "rejected", "missing", "unreadable")}
    labelled = sum(1 for r in results if r["labels"] == "stored")
    failed = ", ".join(f"{v} {k}" for k, v in counts.items() if v and k != "validated")
    warned = sum(1 for r in results if r.get("warned"))
    _say(f"{s.name}: {counts['validated']} of {len(days)} day(s) validated"
         + (f" ({warned} with warnings)" if warned else "") + (f"; {failed}" if failed else "")
         + (f"; labels kept for {labelled} day(s)" if s.labels is not None else ""))
    _say(f"Next: {_after_history(s, start, end, counts['validated'])}")
    return 0 if counts["validated"] else 1


def _after_history(s: ModelSpec, start: dt.date, end: dt.date, validated: int) -> str:
    """The next step once history up to ``end`` is loaded: fix the days, load more, train the
    first version, or (a champion exists) score or retrain on the loaded days."""
    from mlops_lifecycle import lake, registry

    trigger = f"airflow dags trigger {s.name}__retrain --conf '{{\"end_date\": \"{end}\", \"reason\": \"%s\"}}'"
    if not validated:
        return ("no day was validated, so there is nothing to train on: fix the days listed above (their "
                f"validation results are in {lake.root() / s.name / 'reports' / 'validation'}), then run "
                "ingest-history again")
    try:
        champion = registry.champion(s)
    except registry.RegistryError as exc:
        return (f"could not tell whether {s.name} has a champion ({exc}); without one, train the first version: "
                + trigger % "first training")
    if champion is not None:
        return (f"v{champion.version} is already champion, so these days need no first training. Score them with "
                f"the champion: airflow backfill create --dag-id {s.name}__daily --from-date {start} --to-date {end} "
                f"(make airflow running); or train a challenger on them now: {trigger % 'history loaded'}")
    t = s.training
    window = [d for d in lake.partitions(s.name, "validated") if 0 <= (end - d).days < t.window_days]
    needed = t.validation_days + t.holdout_days + 1
    if len(window) < needed:
        return (f"the first training needs {needed} validated days (validation {t.validation_days} + holdout "
                f"{t.holdout_days} + 1) in its {t.window_days}-day window ending {end}, and it holds {len(window)}: "
                "load more history first")
    return (f"trigger {s.name}__retrain from the Airflow UI form (last day {end}), or\n  "
            + trigger % "first training")


def cmd_split_by_day(args: argparse.Namespace) -> int:
    from mlops_lifecycle import scaffold

    written = scaffold.split_by_day(args.input, args.time, args.out, drop=tuple(args.drop or ()), overwrite=args.overwrite)
    _say(f"wrote {len(written)} daily file(s)" + (f": {written[0]} .. {written[-1]}" if written else " (all existed)"))
    return 0


def _actor(args: argparse.Namespace) -> str:
    return f"cli:{args.user or getpass.getuser()}"


def cmd_rollback(args: argparse.Namespace) -> int:
    from mlops_lifecycle import registry, spec

    entry = registry.rollback(spec.get_spec(args.model), actor=_actor(args), reason=args.reason, to_version=args.to_version)
    _say(f"{args.model}: champion is now v{entry['to_version']} (was v{entry['from_version']}); recorded as audit #{entry['seq']}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from mlops_lifecycle import registry, spec

    entry = registry.approve(spec.get_spec(args.model), actor=_actor(args), reason=args.reason, version=args.version)
    _say(f"{args.model}: approved v{entry['to_version']} as champion (was v{entry['from_version']})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from mlops_lifecycle import registry, spec

    s = spec.get_spec(args.model)

    def v(number: object) -> str:
        return f"v{number}" if number is not None else "(none)"

    def why(text: str) -> None:
        for line in textwrap.wrap(text, width=100, initial_indent="       why: ", subsequent_indent="            "):
            _say(line)

    for mv in registry.versions(s):
        metric = f"holdout_{s.promotion.metric}"
        _say(f"{v(mv.version):<5} {mv.tags.get('status', '?'):<18} trigger={mv.tags.get('trigger.reason', '?'):<14} "
             f"{metric}={mv.tags.get(metric, '?')}")
        why(mv.tags.get("rejection_reason") or mv.tags.get("promotion_reason") or "")
    for e in registry.audit_log(s):
        _say(f"audit #{e['seq']} {e['at']} {e['action']} {v(e['from_version'])} -> {v(e['to_version'])} by {e['by']}")
        why(e["reason"])
    return 0


def cmd_example_data(args: argparse.Namespace) -> int:
    from mlops_lifecycle import ingestion, spec
    from mlops_lifecycle.examples import late_delivery

    s = spec.get_spec(DEMO_MODEL)
    start = dt.date.fromisoformat(args.start)
    days = [start + dt.timedelta(days=i) for i in range(args.days)]
    template = ingestion.source_path(s, "2000-01-01").replace("2000-01-01", "{ds}")
    written = late_delivery.write_landing(
        template, days, rows=args.rows,
        shift_start=dt.date.fromisoformat(args.shift_start) if args.shift_start else None,
        corrupt_days=tuple(dt.date.fromisoformat(d) for d in args.corrupt or []),
    )
    _say(f"wrote {len(written)} files to {Path(template).parent}")
    return 0


def _reset_demo_stores() -> None:
    data = config.data_dir()
    marker = data / DEMO_MARKER
    if data.exists() and any(data.iterdir()) and not marker.exists():
        raise SystemExit(
            f"refusing to run the demo in {data}: it holds data the demo did not create. "
            "Point MLOPS_DATA_DIR at an empty or demo folder."
        )
    if os.environ.get("MLFLOW_TRACKING_URI") and not config.mlflow_tracking_uri().startswith(f"sqlite:///{data}"):
        raise SystemExit("the demo resets its MLflow store; unset MLFLOW_TRACKING_URI to use the demo's own SQLite store")
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    marker.write_text("created by `mlops demo`; the demo wipes this folder on its next run\n")


def _demo_line(s, dags, day, logfile, requester: str = "mlops demo") -> tuple[dict, str]:
    """Run one model's day through its DAGs; the day's table row and its printed line.

    Airflow records the daily run as a backfill run requested by ``requester``."""
    from mlops_lifecycle import registry, replay

    result = replay.run_day(s, dags, day, logfile, requester=requester)
    row = replay.day_row(s, day, result)
    drift = "" if row["drift_share"] is None else f"{row['drift_share']:.2f}" + ("*" if row["drifted"] else " ")
    scored = f"v{row['scored_by']}" if row["scored_by"] else "-"
    extra = row["retrain"]
    if result.retrain_runs:
        last = registry.versions(s)[-1]
        status = last.tags.get("status")
        extra += f": v{last.version} {status}"
        if status == "rejected":
            extra += f" ({last.tags.get('rejection_reason', '')[:80]})"
    return row, f"{row['ds']:<11} {row['rows'] or '-':>5}  {row['validation']:<19} {drift:>6}  {scored:<9}  {extra}"


TABLE_HEADER = f"{'day':<11} {'rows':>5}  {'validation':<19} {'drift':>6}  {'scored by':<9}  retraining"
TABLE_LEGEND = ("(drift: share of the model's feature importance that drifted, watch-only columns left out; * = the day "
                "counts as drifted under the spec's drift.drift_share;\n"
                " passed, N warnings: scored, although N warning checks failed: see the day's validation result and alert)")


def cmd_run_days(args: argparse.Namespace) -> int:
    """Run a model's daily DAG for each day of a range, in order, in this process.

    The same path as the demo: every day through the real DAG (``DAG.test`` on the
    configured metadata DB), then any retraining run it triggered. For a local backfill
    or catching up on history without a scheduler; with a scheduler running, use
    ``airflow backfill create`` instead.
    """
    from mlops_lifecycle import replay, spec

    config.quiet_third_party()
    s = spec.get_spec(args.model)
    start, end = dt.date.fromisoformat(args.from_date), dt.date.fromisoformat(args.to_date)
    if end < start:
        raise SystemExit(f"error: --to-date {end} is before --from-date {start}")
    logfile = Path(args.log) if args.log else (
        Path(os.environ.get("AIRFLOW_HOME", config.PROJECT_ROOT / ".airflow")) / "logs" / f"run-days-{s.name}.log")
    with replay.quiet_airflow(logfile):
        dags = replay.load_dags(s)
    _say(f"{s.name}: daily runs {start}..{end} through Airflow (task logs: {logfile})\n{TABLE_HEADER}\n"
         f"{'-' * len(TABLE_HEADER)}")
    failed = 0
    for i in range((end - start).days + 1):
        row, line = _demo_line(s, dags, start + dt.timedelta(days=i), logfile, requester="mlops run-days")
        failed += row["daily_state"] != "success"
        _say(line)
    _say(TABLE_LEGEND)
    if failed:
        _say(f"{failed} day(s) did not succeed: see the validation result, the alerts and {logfile}")
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Replay the examples through the real DAGs and print what happened each day.

    The main model (late_delivery) gets the scripted story: a corrupted batch and a data
    shift. The second model (retail_demand, a regression) runs its own DAGs on the same
    days beside it, on clean data, to show that models share nothing.
    """
    config.quiet_third_party()
    t0 = time.perf_counter()
    _reset_demo_stores()
    from mlops_lifecycle import lake, registry, replay, spec
    from mlops_lifecycle.examples import late_delivery, retail_demand

    s = spec.get_spec(DEMO_MODEL)
    other = spec.get_spec(SECOND_DEMO_MODEL) if args.second_model else None
    days = [DEMO_START + dt.timedelta(days=i) for i in range(args.days)]
    history = [DEMO_START - dt.timedelta(days=i) for i in range(args.history_days, 0, -1)]
    shift_start = DEMO_START + dt.timedelta(days=args.shift_day - 1)
    corrupt_day = DEMO_START + dt.timedelta(days=args.corrupt_day - 1)
    _say(f"== mlops demo: model {s.name}, {len(days)} days from {days[0]} (data shift from {shift_start}, "
         f"corrupted batch on {corrupt_day})" + (f"; beside it, model {other.name} on clean data" if other else ""))
    for k, v in replay.config_summary().items():
        _say(f"   {k}={v}")
    logfile = Path(os.environ.get("AIRFLOW_HOME", config.PROJECT_ROOT / ".airflow")) / "logs" / "demo-replay.log"
    if logfile.exists():
        logfile.unlink()
    models = [(s, late_delivery, {"shift_start": shift_start, "corrupt_days": (corrupt_day,)})]
    if other:
        models.append((other, retail_demand, {}))
    for m, generator, story in models:
        template = str(config.data_dir() / "landing" / m.name / "{ds}.parquet")
        generator.write_landing(template, history + days, rows=args.rows, **story)
        _say(f"-- {m.name}: generated {len(history) + len(days)} daily files in {Path(template).parent}")
        with replay.quiet_airflow(logfile):
            replay.seed_history(m, history)
        _say(f"-- {m.name}: ingested and validated {len(history)} days of history ({history[0]}..{history[-1]}) "
             "for the first training")
    with replay.quiet_airflow(logfile):
        dags = {m.name: replay.load_dags(m) for m, _, _ in models}
    for m, _, _ in models:
        replay.clear_runs(m)
    t_replay = time.perf_counter()
    rows, second = [], []
    header = TABLE_HEADER
    _say(f"-- replaying through Airflow (task logs: {logfile})\n\n{s.name}\n{header}\n{'-' * len(header)}")
    for day in days:
        row, line = _demo_line(s, dags[s.name], day, logfile)
        rows.append(row)
        _say(line)
        if other:  # the same day of the second model, printed after the main table
            second.append(_demo_line(other, dags[other.name], day, logfile)[1])
    replay_s = time.perf_counter() - t_replay
    _say(TABLE_LEGEND)
    if other:
        _say(f"\n{other.name} (same days, its own DAGs, experiment, registered model and lake folder)\n{header}\n"
             f"{'-' * len(header)}")
        for line in second:
            _say(line)

    data = config.data_dir()
    for m, _, _ in models:
        _say(f"\n-- {m.name}: model registry (MLflow registered model '{m.model_name}', experiment '{m.name}')")
        cmd_status(argparse.Namespace(model=m.name))
    model_dir = lake.root() / s.name
    bad = [r["ds"] for r in rows if r["validation"].startswith("FAILED")]
    drift_reports = sorted((model_dir / "reports" / "drift").glob("ds=*/report.html"))
    summary = {
        "days": len(days),
        "models": [m.name for m, _, _ in models],
        "replay_seconds": round(replay_s, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "quarantined_days": bad,
        "retrain_runs": sum(1 for r in rows if "retrain run" in r["retrain"]),
        "champion": registry.champion(s).version if registry.champion(s) else None,
    }
    _say(f"\n-- summary: {json.dumps(summary)}")
    _say(f"""
Where to look next
  Airflow UI      make airflow      -> http://localhost:{config.airflow_api_port()} (login printed at start-up; DAGs {s.name}__daily, __retrain, __rollback, __approve)
  MLflow UI       make mlflow-ui    -> {config.mlflow_ui_url()} (experiment '{s.name}', registered model '{s.model_name}', aliases champion / previous_champion)
  Reports in UI   make airflow      -> http://localhost:{config.airflow_api_port()}/mlops/ (every model's days, drift reports, Data Docs; links on the tasks)
  Drift reports   {model_dir / 'reports' / 'drift'}/ds=YYYY-MM-DD/report.html  (e.g. {drift_reports[-1] if drift_reports else '-'})
  Validation      {model_dir / 'reports' / 'validation'}/ds=YYYY-MM-DD/result.json; quarantined batches in {model_dir / 'quarantine'}
  Data Docs       {lake.data_docs_dir() / s.name / 'index.html'}  (Great Expectations: suites and every validation)
  Alerts          {model_dir / 'events' / 'alerts'}  (one JSON file per alert; also in the task log)
  Predictions     {model_dir / 'predictions'}/ds=YYYY-MM-DD/predictions.parquet (+ manifest.json: model version, data hash, code version)
  Task logs       in the Airflow UI: each day is a backfill run requested by "mlops demo", every task with its log (replay console: {logfile})
  Data lake       {data}
""" + (f"  {other.name}: the same places under its own name (DAGs {other.name}__*, experiment and registered "
       f"model '{other.name}', {lake.root() / other.name})\n" if other else ""))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    """Replay a model's policy over a range of days in scratch stores; print and keep the report.

    See :mod:`mlops_lifecycle.backtest`: the live lake and registry are only read (the
    source files), and the report goes to ``lake/<model>/backtests/<from>_<to>.json``.
    """
    import logging

    from mlops_lifecycle import backtest, replay, spec

    config.quiet_third_party()
    s = spec.get_spec(args.model)
    try:
        start = backtest.parse_day(args.from_date, "--from-date")
        end = backtest.parse_day(args.to_date, "--to-date")
        options = backtest.Options(refit_every_days=args.refit_every_days, refit_window_days=args.refit_window_days,
                                   judge_days=args.judge_days)
        logfile = Path(args.log) if args.log else (
            Path(os.environ.get("AIRFLOW_HOME", config.PROJECT_ROOT / ".airflow")) / "logs" / f"backtest-{s.name}.log")
        logfile.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(logfile, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        level = root.level
        root.setLevel(logging.INFO)
        try:
            report = backtest.run_backtest(s, start, end, options=options, work_dir=args.work_dir,
                                           keep_work_dir=args.keep_work_dir, progress=_say,
                                           quiet=lambda: replay.quiet_airflow(logfile))
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            handler.close()
    except backtest.BacktestError as exc:
        raise SystemExit(f"error: {exc}") from None
    _say("")
    for line in backtest.format_report(report):
        _say(line)
    _say(f"report: {report['report_path']} (and http://localhost:8080/mlops/models/{s.name}/backtests/"
         f"{report['from']}_{report['to']}/ with make airflow); logs: {logfile}")
    if report["work_dir"]:
        _say(f"scratch stores kept in {report['work_dir']}")
    return 0


def cmd_airflow_info(args: argparse.Namespace) -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", config.PROJECT_ROOT / ".airflow"))
    urls = config.airflow_urls()
    port = urls["AIRFLOW__API__PORT"]
    _say(f"Starting Airflow standalone with AIRFLOW_HOME={home}, data lake {config.data_dir()}.")
    _say(f"UI: http://localhost:{port}  user 'admin'; the password is printed below by Airflow and kept in")
    _say(f"    {home / 'simple_auth_manager_passwords.json.generated'}")
    _say(f"Links: {urls['AIRFLOW__API__BASE_URL']}; tasks report to {urls['AIRFLOW__CORE__EXECUTION_API_SERVER_URL']}; "
         f"MLflow links: {config.mlflow_ui_url()} (make mlflow-ui MLFLOW_UI_PORT={config.mlflow_ui_port()})")
    _say("<model>__daily starts paused: unpause it to schedule it. <model>__retrain, __rollback and __approve")
    _say("have no schedule and start unpaused, so the runs you (or the daily DAG) trigger run at once.")
    _say('Another shell with the same settings: eval "$(make -s env)"; then airflow ... and mlops ... work as here.')
    _say("Ctrl-C (or SIGTERM) stops every process it started.")
    return 0


def cmd_airflow_standalone(args: argparse.Namespace) -> int:
    """`make airflow`: airflow standalone on the configured port, stopped as a whole (see local_airflow)."""
    from mlops_lifecycle import local_airflow

    cmd_airflow_info(args)
    return local_airflow.run_standalone()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlops", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate every model spec")
    c.add_argument("--specs", default=None, help="specs folder (default $MLOPS_SPECS_DIR or dags/specs)")
    c.add_argument("--write-suites", action="store_true", help="renew the <name>.suite.json files beside the specs")
    c.set_defaults(func=cmd_check)

    n = sub.add_parser("new-model", help="scaffold a spec (and its expectation suite) from a CSV or Parquet sample")
    n.add_argument("--name", required=True, help="model name: lower-case letters, digits, underscores")
    n.add_argument("--sample", required=True, help="a CSV or Parquet file of rows like the daily data")
    n.add_argument("--target", required=True, help="the label column")
    n.add_argument("--time", default=None, help="the event-time column (needed only if the sample has several)")
    n.add_argument("--entity-id", default=None, help="the row id column (needed only if none is obvious)")
    n.add_argument("--exclude", action="append", help="a column to leave out of the spec; repeatable")
    n.add_argument("--owner", default=None, help="owner of the DAGs (default: your login)")
    n.add_argument("--description", default=None)
    n.add_argument("--specs", default=None, help="specs folder (default $MLOPS_SPECS_DIR or dags/specs)")
    n.set_defaults(func=cmd_new_model)

    sp = sub.add_parser("split-by-day", help="write one file per event day of a history file")
    sp.add_argument("--input", required=True, help="a CSV or Parquet file")
    sp.add_argument("--time", required=True, help="the event-time column to split by")
    sp.add_argument("--out", required=True, help="output path template with {ds}; .csv writes CSV, else Parquet")
    sp.add_argument("--drop", action="append", help="a column to leave out; repeatable")
    sp.add_argument("--overwrite", action="store_true", help="replace files that exist")
    sp.set_defaults(func=cmd_split_by_day)

    rd = sub.add_parser("run-days", help="run a model's daily DAG for a range of days, in order, here (local backfill)")
    rd.add_argument("model")
    rd.add_argument("--from-date", required=True, type=day_argument, help="first day, YYYY-MM-DD")
    rd.add_argument("--to-date", required=True, type=day_argument, help="last day, YYYY-MM-DD (inclusive)")
    rd.add_argument("--log", default=None, help="task log file (default $AIRFLOW_HOME/logs/run-days-<model>.log)")
    rd.set_defaults(func=cmd_run_days)

    ih = sub.add_parser("ingest-history", help="ingest and validate past days of a model (before its first training)")
    ih.add_argument("model")
    ih.add_argument("--from-date", required=True, type=day_argument, help="first day, YYYY-MM-DD")
    ih.add_argument("--to-date", required=True, type=day_argument, help="last day, YYYY-MM-DD (inclusive)")
    ih.add_argument("--data-docs", action="store_true", help="also render Great Expectations Data Docs (slower)")
    ih.add_argument("--verbose", action="store_true", help="print every day, not only the ones that failed")
    ih.set_defaults(func=cmd_ingest_history)

    d = sub.add_parser("demo", help="replay the example models through the real DAGs")
    d.add_argument("--days", type=int, default=30)
    d.add_argument("--history-days", type=int, default=45)
    d.add_argument("--rows", type=int, default=1000)
    d.add_argument("--shift-day", type=int, default=14, help="day number on which the data shift starts")
    d.add_argument("--corrupt-day", type=int, default=8, help="day number whose batch is corrupted")
    d.add_argument("--no-second-model", dest="second_model", action="store_false",
                   help="leave out the second example (retail_demand) that runs beside the first")
    d.set_defaults(func=cmd_demo)

    for name, func, helptext in (("rollback", cmd_rollback, "set the champion back one step (or to --to-version)"),
                                 ("approve", cmd_approve, "promote the challenger waiting for approval")):
        r = sub.add_parser(name, help=helptext)
        r.add_argument("model")
        r.add_argument("--reason", required=True, help="why (recorded in the audit log)")
        r.add_argument("--user", default=None, help="who you are (default: your login)")
        if name == "rollback":
            r.add_argument("--to-version", type=int, default=None,
                           help="the version to restore (default: the previous champion)")
        else:
            r.add_argument("--version", type=int, default=None,
                           help="the version you reviewed; refused if another version is waiting")
        r.set_defaults(func=func)

    st = sub.add_parser("status", help="list a model's versions and its audit log")
    st.add_argument("model")
    st.set_defaults(func=cmd_status)

    e = sub.add_parser("example-data", help="write the late_delivery example's landing files")
    e.add_argument("--start", required=True, type=day_argument)
    e.add_argument("--days", type=int, default=30)
    e.add_argument("--rows", type=int, default=1000)
    e.add_argument("--shift-start", default=None, type=day_argument)
    e.add_argument("--corrupt", action="append", type=day_argument, help="a day (YYYY-MM-DD) whose batch to corrupt; repeatable")
    e.set_defaults(func=cmd_example_data)

    bt = sub.add_parser("backtest", help="replay a model's policy over past days, isolated from its live stores, "
                                         "against a stale first model and a periodic refit")
    bt.add_argument("model")
    bt.add_argument("--from-date", required=True, help="first day to replay, YYYY-MM-DD (the first model trains "
                                                        "on the days before it)")
    bt.add_argument("--to-date", required=True, help="last day to replay, YYYY-MM-DD (inclusive)")
    bt.add_argument("--refit-every-days", type=int, default=30, help="the refit baseline retrains this often (30)")
    bt.add_argument("--refit-window-days", type=int, default=60, help="...on this many last days (60)")
    bt.add_argument("--judge-days", type=int, default=14,
                    help="a promotion or rejection is judged on the labelled rows of this many following days (14)")
    bt.add_argument("--work-dir", default=None, help="scratch folder for the back-test's own lake and MLflow store "
                                                     "(empty or new; default a temporary folder)")
    bt.add_argument("--keep-work-dir", action="store_true", help="keep the scratch folder to inspect it")
    bt.add_argument("--log", default=None, help="log file (default $AIRFLOW_HOME/logs/backtest-<model>.log)")
    bt.set_defaults(func=cmd_backtest)

    a = sub.add_parser("airflow-info", help=argparse.SUPPRESS)
    a.set_defaults(func=cmd_airflow_info)
    a = sub.add_parser("airflow-standalone", help=argparse.SUPPRESS)
    a.set_defaults(func=cmd_airflow_standalone)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # noqa: BLE001 - one clear line for the user, not a traceback
        from mlops_lifecycle.registry import RegistryError
        from mlops_lifecycle.scaffold import ScaffoldError
        from mlops_lifecycle.spec import SpecError

        if isinstance(exc, SpecError | RegistryError | ScaffoldError):
            from mlops_lifecycle import masking

            print(masking.redact(f"error: {exc}"), file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
