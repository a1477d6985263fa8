"""`mlops new-model`: infer a reviewable spec and suite from a sample, refuse what it cannot
infer with a clear message, never write half of it; `mlops split-by-day` feeds it daily files.

Samples are generated here (no outside data): a small delivery-like table, and the
retail_demand example's generator.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_lifecycle import cli, scaffold
from mlops_lifecycle.examples import retail_demand
from mlops_lifecycle.spec import load_spec

START = dt.date(2026, 2, 1)


def _sample(days: int = 4, rows: int = 60, seed: int = 3) -> pd.DataFrame:
    """Orders over a few days: an id, a timestamp, numbers, categories, a bool, some nulls, a 0/1 label."""
    rng = np.random.default_rng(seed)
    n = days * rows
    day = np.repeat(np.arange(days), rows)
    frame = pd.DataFrame(
        {
            "order_id": [f"o-{i:05d}" for i in range(n)],
            "ordered_at": pd.Timestamp(START)
            + pd.to_timedelta(day, unit="D")
            + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "basket_value": np.round(rng.gamma(2.0, 30.0, n), 2),
            "items": rng.integers(1, 12, n).astype("int64"),
            "channel": rng.choice(["web", "app", "store"], n),
            "is_member": rng.random(n) < 0.4,
            "coupon": np.where(rng.random(n) < 0.1, None, rng.choice(["none", "spring", "vip"], n)),
        }
    )
    frame["returned"] = (rng.random(n) < 0.2 + 0.002 * frame["basket_value"].clip(0, 200)).astype("int64")
    return frame


@pytest.fixture
def specs(tmp_path, monkeypatch, data_dir) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    monkeypatch.setenv("MLOPS_SPECS_DIR", str(folder))
    return folder


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def test_scaffolds_a_commented_spec_that_loads_and_passes_check(tmp_path, specs, capsys):
    sample = _write(_sample(), tmp_path / "orders.parquet")
    made = scaffold.new_model("order_returns", sample, "returned")

    spec = load_spec(made.spec_path)
    assert made.spec_path == specs / "order_returns.yaml"
    assert spec.entity_id == "order_id" and spec.event_time == "ordered_at"
    assert spec.target.task == "binary_classification" and spec.promotion.metric == "roc_auc"
    types = {f.name: f.type for f in spec.features}
    assert types == {
        "basket_value": "float",
        "items": "int",
        "channel": "category",
        "is_member": "bool",
        "coupon": "category",
    }
    assert spec.feature("channel").categories == ["app", "store", "web"]
    coupon = spec.feature("coupon")
    assert coupon.nullable and 0 < coupon.max_null_fraction < 1
    items = spec.feature("items")
    assert items.min == 0 and items.max >= 11  # headroom, and never below 0 for a count
    assert spec.start_date == START and spec.source.path.endswith("{ds}.parquet")
    assert spec.training.slice_column == "channel"

    text = made.spec_path.read_text()
    assert "REVIEW EVERY FIELD" in text and "widened by 20%" in text and "# observed 1..11" in text
    suite = json.loads(made.suite_path.read_text())
    assert made.suite_path == specs / "order_returns.suite.json"
    assert suite["name"] == "order_returns.batch"
    kinds = {e["type"] for e in suite["expectations"]}
    assert {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
    } <= kinds
    assert made.sample_check["success"] is True

    assert cli.main(["check"]) == 0
    assert "ok      order_returns" in capsys.readouterr().out


def test_regression_target_from_csv_with_text_timestamps(tmp_path, specs):
    frame = _sample()
    frame["basket_value"], frame["returned"] = frame["returned"], frame["basket_value"]
    frame = frame.rename(columns={"basket_value": "was_returned", "returned": "spend"})
    frame["ordered_at"] = frame["ordered_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    sample = _write(frame, tmp_path / "orders.csv")
    spec = scaffold.new_model("order_spend", sample, "spend").spec
    assert spec.target.task == "regression" and spec.promotion.metric == "rmse"
    assert spec.target.min == 0 and spec.target.max > frame["spend"].max()
    assert spec.source.path.endswith("{ds}.csv") and spec.event_time == "ordered_at"


@pytest.mark.parametrize("name", ["Orders", "1orders", "orders-v2", "../x", ""])
def test_unsafe_name_is_refused(tmp_path, specs, name):
    sample = _write(_sample(), tmp_path / "s.parquet")
    with pytest.raises(scaffold.ScaffoldError, match="not a safe model name"):
        scaffold.new_model(name, sample, "returned")
    assert list(specs.iterdir()) == []


def test_taken_name_is_refused_and_nothing_is_overwritten(tmp_path, specs):
    sample = _write(_sample(), tmp_path / "s.parquet")
    (specs / "orders.yaml").write_text("# someone else's spec\n")
    with pytest.raises(scaffold.ScaffoldError, match=r"'orders' is taken: .*orders.yaml exists"):
        scaffold.new_model("orders", sample, "returned")
    assert (specs / "orders.yaml").read_text() == "# someone else's spec\n"
    assert not (specs / "orders.suite.json").exists()


def test_name_used_as_another_models_registry_name_is_refused(tmp_path, specs):
    sample = _write(_sample(), tmp_path / "s.parquet")
    scaffold.new_model("orders", sample, "returned")
    text = (
        (specs / "orders.yaml")
        .read_text()
        .replace("name: orders\n", "name: orders\nregistered_model_name: returns\n")
    )
    (specs / "orders.yaml").write_text(text)
    with pytest.raises(scaffold.ScaffoldError, match="registers its model under that name"):
        scaffold.new_model("returns", sample, "returned")


def test_no_entity_id_says_how_to_add_one(tmp_path, specs):
    sample = _write(_sample().drop(columns=["order_id"]), tmp_path / "s.parquet")
    with pytest.raises(scaffold.ScaffoldError, match="no column identifies a row") as err:
        scaffold.new_model("orders", sample, "returned")
    assert "--entity-id" in str(err.value)
    assert list(specs.iterdir()) == []


def test_entity_id_can_be_named(tmp_path, specs):
    frame = _sample()
    frame["order_no"] = np.arange(len(frame))
    frame["ref"] = frame["order_id"]
    sample = _write(frame, tmp_path / "s.parquet")
    with pytest.raises(scaffold.ScaffoldError, match="several columns could be the entity id"):
        scaffold.new_model("orders", sample, "returned")
    spec = scaffold.new_model(
        "orders", sample, "returned", entity_id="ref", exclude=("order_id", "order_no")
    ).spec
    assert spec.entity_id == "ref"


def test_time_column_must_exist_or_be_named(tmp_path, specs):
    no_time = _write(_sample().drop(columns=["ordered_at"]), tmp_path / "a.parquet")
    with pytest.raises(scaffold.ScaffoldError, match="no date or timestamp column"):
        scaffold.new_model("orders", no_time, "returned")
    frame = _sample()
    frame["shipped_at"] = frame["ordered_at"] + pd.Timedelta(hours=5)
    two = _write(frame, tmp_path / "b.parquet")
    with pytest.raises(
        scaffold.ScaffoldError, match=r"several date/time columns \['ordered_at', 'shipped_at'\]"
    ):
        scaffold.new_model("orders", two, "returned")
    # Naming one leaves the other as a column that cannot be a feature: it must be excluded.
    with pytest.raises(scaffold.ScaffoldError, match="shipped_at is a second date/time column"):
        scaffold.new_model("orders", two, "returned", time="ordered_at")
    spec = scaffold.new_model("orders", two, "returned", time="shipped_at", exclude=("ordered_at",)).spec
    assert spec.event_time == "shipped_at"


def test_two_valued_text_target_needs_mapping(tmp_path, specs):
    frame = _sample()
    frame["returned"] = frame["returned"].map({0: "kept", 1: "returned"})
    sample = _write(frame, tmp_path / "s.parquet")
    with pytest.raises(scaffold.ScaffoldError, match=r"needs 0/1 labels.*astype\(int\)"):
        scaffold.new_model("orders", sample, "returned")


def test_every_unusable_column_is_named_at_once(tmp_path, specs):
    frame = _sample()
    frame["comment"] = [f"free text {i}" for i in range(len(frame))]
    frame["country"] = "NL"
    sample = _write(frame, tmp_path / "s.parquet")
    with pytest.raises(scaffold.ScaffoldError) as err:
        scaffold.new_model("orders", sample, "returned", entity_id="order_id")
    msg = str(err.value)
    assert "comment is text with 240 distinct values" in msg and "free text or a key" in msg
    assert "country" not in msg, "a column constant in the sample is kept (it may vary later), not refused"
    assert "--exclude" in msg and list(specs.iterdir()) == []
    made = scaffold.new_model("orders", sample, "returned", entity_id="order_id", exclude=("comment",))
    assert "Excluded from the features: ['comment']" in made.spec_path.read_text()
    country = made.spec.feature("country")
    assert country.may_be_constant and country.max_unknown_fraction == 1.0
    assert any(w.startswith("country holds one value only in the sample ('NL')") for w in made.warnings)


def test_leakage_and_one_value_per_day_are_flagged(tmp_path, specs):
    frame = _sample()
    frame["refund_amount"] = frame["returned"] * 10.0 + np.random.default_rng(0).normal(0, 0.1, len(frame))
    frame["promo_day"] = frame["ordered_at"].dt.day.map(lambda d: "yes" if d % 2 else "no")
    made = scaffold.new_model("orders", _write(frame, tmp_path / "s.parquet"), "returned")
    text = made.spec_path.read_text()
    assert any("refund_amount correlates" in w for w in made.warnings)
    assert any("promo_day holds one value per day" in w for w in made.warnings)
    assert "LEAKAGE?" in text and "ONE VALUE PER DAY" in text


def test_check_flags_a_stale_suite_and_renews_it(tmp_path, specs, capsys):
    made = scaffold.new_model("orders", _write(_sample(), tmp_path / "s.parquet"), "returned")
    text = made.spec_path.read_text()
    edited = re.sub(r"(validation:\n  min_rows: )\d+", r"\g<1>1", text)
    assert edited != text
    made.spec_path.write_text(edited)
    assert cli.main(["check"]) == 0
    assert "orders.suite.json is out of date" in capsys.readouterr().out
    assert cli.main(["check", "--write-suites"]) == 0
    assert cli.main(["check"]) == 0
    assert "out of date" not in capsys.readouterr().out.split("rewrote")[-1]


def test_cli_reports_errors_in_one_line(tmp_path, specs, capsys):
    sample = _write(_sample().drop(columns=["order_id"]), tmp_path / "s.parquet")
    code = cli.main(["new-model", "--name", "orders", "--sample", str(sample), "--target", "returned"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: no column identifies a row")


def test_split_by_day_then_scaffolded_spec_validates_a_real_daily_batch(tmp_path, specs):
    """History file -> daily files -> scaffolded spec -> ingest + validate one day with the real stages."""
    from mlops_lifecycle import ingestion, lake, validation

    days = [START + dt.timedelta(days=i) for i in range(4)]
    history = pd.concat([retail_demand.generate_day(d, rows=300) for d in days], ignore_index=True)
    history = history.sample(frac=1.0, random_state=0)  # a history export is not sorted
    source = _write(history, tmp_path / "history.parquet")
    made = scaffold.new_model("shop_demand", source, "units_sold_next_day")
    spec = made.spec
    assert spec.entity_id == "forecast_id" and spec.event_time == "snapshot_at"
    assert spec.target.task == "regression" and spec.feature("on_promotion").type == "bool"

    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    written = scaffold.split_by_day(source, "snapshot_at", template)
    assert [p.name for p in written] == [f"{d.isoformat()}.parquet" for d in days]
    assert scaffold.split_by_day(source, "snapshot_at", template) == []  # kept, not rewritten
    ingestion.ingest(spec, days[2])
    result = validation.validate_partition(spec, days[2], docs=False)
    assert result["rows"] == len(retail_demand.generate_day(days[2], rows=300))
    assert lake.data_file(spec.name, "validated", days[2]).exists()


def test_split_by_day_needs_a_date_placeholder(tmp_path):
    source = _write(_sample(), tmp_path / "s.parquet")
    with pytest.raises(scaffold.ScaffoldError, match=r"\{ds\}"):
        scaffold.split_by_day(source, "ordered_at", str(tmp_path / "out.parquet"))


def test_widened_range_keeps_counts_non_negative():
    assert scaffold.widened_range(0, 10, integer=True) == (0.0, 12.0)
    assert scaffold.widened_range(-5.0, 5.0, integer=False) == (-7.0, 7.0)
    assert scaffold.widened_range(3, 3, integer=True) == (2.0, 4.0)


def test_ingest_history_reports_every_day_and_goes_on(tmp_path, specs):
    days = [START + dt.timedelta(days=i) for i in range(4)]
    history = pd.concat([retail_demand.generate_day(d, rows=200) for d in days], ignore_index=True)
    source = _write(history, tmp_path / "history.parquet")
    spec = scaffold.new_model("shop_demand", source, "units_sold_next_day").spec
    from mlops_lifecycle import ingestion, lake

    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    scaffold.split_by_day(source, "snapshot_at", template)
    Path(template.format(ds=days[1].isoformat())).unlink()  # a day that never arrived
    broken = retail_demand.corrupt(retail_demand.generate_day(days[2], rows=200))
    lake.write_parquet(Path(template.format(ds=days[2].isoformat())), broken)

    results = scaffold.ingest_history(spec, days)
    assert [r["status"] for r in results] == ["validated", "missing", "rejected", "validated"]
    assert "stock_on_hand" in results[2]["detail"] or "schema" in results[2]["detail"]
    assert lake.partitions(spec.name, "validated") == [days[0], days[3]]
    assert lake.partitions(spec.name, "quarantine") == [days[2]]


def _spec_field_paths() -> list[str]:
    """Every field of the spec schema, as the guide names it (features[] for list items)."""
    import typing

    from pydantic import BaseModel

    from mlops_lifecycle.spec import ModelSpec

    out: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            out.append(path)
            annotation = info.annotation
            for arg in (annotation, *typing.get_args(annotation)):
                for inner in (arg, *typing.get_args(arg)):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        is_list = typing.get_origin(annotation) is list
                        walk(inner, f"{path}[]." if is_list else f"{path}.")

    walk(ModelSpec, "")
    return sorted(set(out))


def test_the_guide_documents_every_spec_field():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "adding-a-model.md").read_text()
    missing = []
    for path in _spec_field_paths():
        # Channels of notifications are documented by their own field names in one row.
        leaf = path.rsplit(".", 1)[-1] if path.count(".") >= 2 else path
        if f"`{leaf}`" not in guide:
            missing.append(path)
    assert not missing, f"docs/adding-a-model.md does not explain spec fields {missing}"


def test_often_constant_columns_may_be_constant_and_rarely_constant_ones_stay_checked(tmp_path, specs):
    """Constant on 1 of 40 days looks like a stuck feed (the check stays, the day is named);
    constant on 10 of 40 days is how the column behaves (may_be_constant)."""
    frame = _sample(days=40, rows=30)
    day = (frame["ordered_at"] - pd.Timestamp(START)).dt.days
    frame["sensor"] = np.round(np.random.default_rng(5).normal(50, 5, len(frame)), 1)
    frame.loc[day == 7, "sensor"] = 0.0  # stuck all day
    frame["weather"] = np.random.default_rng(6).choice(["dry", "wet"], len(frame))
    frame.loc[day % 4 == 0, "weather"] = "dry"  # a dry day, every fourth day
    made = scaffold.new_model("orders", _write(frame, tmp_path / "s.parquet"), "returned", entity_id="order_id")
    spec = load_spec(made.spec_path)
    assert spec.feature("weather").may_be_constant is True
    assert spec.feature("sensor").may_be_constant is False
    stuck = (pd.Timestamp(START) + pd.Timedelta(days=7)).date().isoformat()
    assert any("sensor holds one value only on 1 of 40 days" in w and stuck in w for w in made.warnings)


def _hourly(days: int = 40, seed: int = 8) -> pd.DataFrame:
    """One row an hour (24 a day), like the bike-rental data: a low-volume model."""
    rng = np.random.default_rng(seed)
    at = pd.date_range(pd.Timestamp(START), periods=days * 24, freq="h")
    n = len(at)
    frame = pd.DataFrame({
        "hour_id": at.strftime("h%Y%m%d%H"),
        "rented_at": at,
        "temp": np.round(rng.normal(15, 8, n), 2),
        "weather": rng.choice(["clear", "mist", "rain"], n, p=[0.65, 0.3, 0.05]),
        "station": [f"s{i % 12:02d}" for i in range(n)],  # 12 values: 26 rows each in a 312-row holdout
    })
    frame["cnt"] = (50 + 4 * frame["temp"] + rng.normal(0, 10, n)).clip(0).round().astype("int64")
    return frame


def test_low_volume_sample_gets_thresholds_monitoring_can_meet(tmp_path, specs):
    """24 rows a day: the default 2-day holdout (48 rows) and 500 drifted rows in 2 days never act."""
    from mlops_lifecycle import volume

    spec = scaffold.new_model("rentals", _write(_hourly(), tmp_path / "h.parquet"), "cnt").spec
    t, r = spec.training, spec.retraining

    assert 300 <= t.holdout_days * 24 and t.holdout_days <= 14 and t.validation_days == t.holdout_days
    assert t.window_days >= t.validation_days + t.holdout_days + 56
    assert t.min_rows <= t.window_days * 24 * 0.8 and t.reference_rows == 24 * (t.holdout_days + t.validation_days)
    assert r.min_rows <= r.drift_days_required * 24 * 0.8 and r.drift_days_required <= 7
    assert spec.drift.min_labelled_rows <= 24
    assert volume.volume_warnings(spec, 24) == []
    # weather's clear and mist fill 30-row slices of a 312-row holdout; none of station's 12 values does.
    assert t.slice_column == "weather"
    assert "['rain']" in (specs / "rentals.yaml").read_text()


def test_high_volume_keeps_the_defaults():
    from mlops_lifecycle import volume

    plan = volume.volume_plan(1000)
    assert (plan.holdout_days, plan.validation_days, plan.window_days) == (2, 2, 60)
    assert (plan.drift_days_required, plan.retraining_min_rows, plan.min_labelled_rows) == (2, 500, 30)


def test_no_slice_column_when_no_slice_fills_30_holdout_rows(tmp_path, specs):
    frame = _hourly().drop(columns=["weather"])
    made = scaffold.new_model("rentals", _write(frame, tmp_path / "h.parquet"), "cnt")
    assert made.spec.training.slice_column is None
    assert "No slice_column" in made.spec_path.read_text()


def test_a_volume_too_low_even_for_scaled_thresholds_is_warned_at_scaffold_time(tmp_path, specs):
    frame = _hourly(days=60)
    frame = frame[frame["rented_at"].dt.hour % 6 == 0]  # 4 rows a day
    made = scaffold.new_model("rentals", _write(frame, tmp_path / "h.parquet"), "cnt")
    assert any(w.startswith("training.holdout_days: a holdout of 14 day(s) holds about 56 rows") for w in made.warnings)
    assert "# WARNING: training.holdout_days:" in made.spec_path.read_text()


def test_columns_that_add_up_to_the_target_are_each_flagged_as_leakage(tmp_path, specs):
    """casual + registered == cnt: only registered correlates 0.95 with cnt, both are parts of it."""
    frame = _hourly()
    rng = np.random.default_rng(1)
    frame["casual"] = np.minimum(frame["cnt"], rng.integers(0, 8, len(frame)))
    frame["registered"] = frame["cnt"] - frame["casual"]
    frame["returns"] = frame["cnt"] + frame["casual"]  # returns - casual == cnt
    made = scaffold.new_model("rentals", _write(frame, tmp_path / "h.parquet"), "cnt")
    parts = {w.split(" ", 1)[0]: w for w in made.warnings if "is part of the target" in w}
    assert set(parts) == {"casual", "registered", "returns"}, made.warnings
    assert "casual + registered == cnt on 100.0% of rows" in parts["registered"]
    assert "returns - casual == cnt" in parts["returns"]
    assert "LEAKAGE? casual + registered == cnt" in made.spec_path.read_text()
    assert not any("temp is part" in w for w in made.warnings)


def test_a_0_to_100_or_0_to_1_scale_keeps_its_bound():
    assert scaffold.widened_range(0, 100, integer=False) == (0.0, 100.0)  # humidity: not 120
    assert scaffold.widened_range(12, 100, integer=True) == (0.0, 100.0)
    assert scaffold.widened_range(0.05, 1.0, integer=False) == (0.0, 1.0)  # a share
    assert scaffold.widened_range(0, 1, integer=True) == (0.0, 1.0)  # a 0/1 flag
    assert scaffold.widened_range(0, 90, integer=True) == (0.0, 108.0)  # not seen reaching 100: widened
    assert scaffold.widened_range(-1, 100, integer=True)[1] > 100  # not a 0..100 scale


def test_a_date_only_event_time_is_warned_about_in_the_spec(tmp_path, specs):
    frame = _hourly()
    frame["rented_at"] = frame["rented_at"].dt.normalize()
    made = scaffold.new_model("rentals", _write(frame, tmp_path / "h.parquet"), "cnt")
    assert any(w.startswith("rented_at, the event time, holds dates only") for w in made.warnings)
    assert "# WARNING: rented_at, the event time, holds dates only (every value is at midnight)" in (
        made.spec_path.read_text())
    timed = scaffold.new_model("rentals_timed", _write(_hourly(), tmp_path / "t.parquet"), "cnt")
    assert not any("holds dates only" in w for w in timed.warnings)


def test_an_id_that_reads_as_a_date_is_not_taken_for_the_event_time(tmp_path, specs):
    """The guide's key 2011-01-01T00 beside the timestamp, both text in a CSV."""
    frame = _hourly().drop(columns=["hour_id"])
    frame["rental_hour_id"] = frame["rented_at"].dt.strftime("%Y-%m-%dT%H")
    frame["rented_at"] = frame["rented_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    spec = scaffold.new_model("rentals", _write(frame, tmp_path / "h.csv"), "cnt").spec
    assert spec.event_time == "rented_at" and spec.entity_id == "rental_hour_id"
    # Two timestamps that are no ids: still the user's choice, and the message says the rule.
    frame["returned_at"] = frame["rented_at"]
    with pytest.raises(scaffold.ScaffoldError, match=r"several date/time columns.*named like an id") as err:
        scaffold.new_model("rentals_two", _write(frame, tmp_path / "two.csv"), "cnt")
    assert "['rented_at', 'returned_at']" in str(err.value) and "--time" in str(err.value)


def _history_model(tmp_path: Path, days: list[dt.date], rows: int = 300):
    """A scaffolded model (300 rows a day: a 2-day holdout and validation) with its daily files landed."""
    from mlops_lifecycle import ingestion

    history = pd.concat([retail_demand.generate_day(d, rows=rows) for d in days], ignore_index=True)
    source = _write(history, tmp_path / "history.parquet")
    spec = scaffold.new_model("shop_demand", source, "units_sold_next_day").spec
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    scaffold.split_by_day(source, "snapshot_at", template)
    return spec, template


def _ingest_history(days: list[dt.date], capsys) -> tuple[int, str]:
    code = cli.main(["ingest-history", "shop_demand", "--from-date", str(days[0]), "--to-date", str(days[-1])])
    return code, capsys.readouterr().out


def test_ingest_history_says_the_next_step_for_what_it_found(tmp_path, specs, capsys):
    from mlops_lifecycle import registry

    days = [START + dt.timedelta(days=i) for i in range(6)]
    spec, template = _history_model(tmp_path, days)
    assert (spec.training.holdout_days, spec.training.validation_days) == (2, 2)

    code, out = _ingest_history(days[:3], capsys)  # 3 of the 5 days a first training needs
    assert code == 0 and "Next: the first training needs 5 validated days" in out and "holds 3" in out
    assert "; ;" not in out

    code, out = _ingest_history(days, capsys)
    assert code == 0 and "Next: trigger shop_demand__retrain" in out and '"reason": "first training"' in out

    # A champion exists (registered by hand here: the registry is real, the training is not needed).
    c = registry.client()
    c.create_registered_model(spec.model_name)
    version = c.create_model_version(spec.model_name, source=str(tmp_path / "model"))
    c.set_registered_model_alias(spec.model_name, registry.CHAMPION, version.version)
    code, out = _ingest_history(days, capsys)
    assert code == 0 and '"reason": "first training"' not in out
    assert f"Next: v{version.version} is already champion" in out and "airflow backfill create" in out

    later = [days[-1] + dt.timedelta(days=i) for i in range(1, 3)]  # no files landed for these
    code, out = _ingest_history(later, capsys)
    assert code == 1 and "Next: no day was validated" in out and '"first training"' not in out


def test_check_points_out_warning_comments_whose_problem_was_fixed(tmp_path, specs, capsys):
    frame = _hourly()
    frame["weekday"] = frame["rented_at"].dt.day_name()  # one value per day
    frame["wind"] = np.round(np.random.default_rng(2).gamma(2, 3, len(frame)), 1)
    frame.loc[frame["rented_at"].dt.date == START, "wind"] = 0.0  # stuck on 1 of 40 days
    made = scaffold.new_model("rentals", _write(frame, tmp_path / "h.parquet"), "cnt")
    text = made.spec_path.read_text()
    assert "# WARNING: weekday holds one value per day" in text and "# WARNING: wind holds one value only" in text
    assert "Delete each WARNING below once you have dealt with it" in text
    assert cli.main(["check"]) == 0
    assert "no longer applies" not in capsys.readouterr().out

    # The user drops weekday (derived from the event time instead) and marks wind may_be_constant.
    fixed = re.sub(r"  # [^\n]*\n  - name: weekday\n(    [^\n]*\n)+", "", text)
    fixed = fixed.replace("  - name: wind\n    type: float\n", "  - name: wind\n    type: float\n    may_be_constant: true\n")
    # ... and from drift.watch_only, where the scaffold listed it (mlops check names it otherwise).
    fixed = re.sub(r"(  watch_only: \[[^\]\n]*)\bweekday\b(, )?", r"\1", fixed).replace(", ]", "]")
    assert "name: weekday" not in fixed and "type: float\n    may_be_constant: true\n" in fixed
    made.spec_path.write_text(fixed)
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    lines = fixed.splitlines()
    stale = dict(re.findall(r"^warning rentals rentals\.yaml line (\d+): (.*)$", out, re.M))
    assert len(stale) == 2, out
    for number, why in stale.items():
        assert lines[int(number) - 1].startswith(("# WARNING: weekday", "# WARNING: wind"))
        assert why.endswith("no longer applies (the spec has no column weekday): delete it") or "wind is marked" in why


def test_text_like_n_a_in_a_csv_number_column_is_reported_as_text_not_as_nulls(tmp_path, specs):
    """pandas reads 'n/a' as missing: the day was rejected as 'never null, e.g. [nan]'."""
    from mlops_lifecycle import ingestion, validation

    days = [START + dt.timedelta(days=i) for i in range(3)]
    history = pd.concat([retail_demand.generate_day(d, rows=200) for d in days], ignore_index=True)
    source = _write(history, tmp_path / "history.csv")
    spec = scaffold.new_model("shop_demand", source, "units_sold_next_day").spec
    assert spec.feature("units_sold_7d_avg").warn_null_fraction == 0  # never null in the sample: any null warns
    template = ingestion.source_path(spec, "2000-01-01").replace("2000-01-01", "{ds}")
    day = history[history["snapshot_at"].dt.date == days[1]].copy()
    day["units_sold_7d_avg"] = day["units_sold_7d_avg"].astype(object)
    day.iloc[[3, 7], day.columns.get_loc("units_sold_7d_avg")] = "n/a"
    target = Path(template.format(ds=days[1].isoformat()))
    target.parent.mkdir(parents=True)
    _write(day, target)

    ingestion.ingest(spec, days[1])
    with pytest.raises(validation.ValidationFailed) as err:
        validation.validate_partition(spec, days[1], docs=False)
    assert "units_sold_7d_avg has type float" in str(err.value)
    assert "the column holds text values like 'n/a'" in str(err.value) and "never null" not in str(err.value)

    # The same word in the sample: a word for missing, so the scaffolded source declares it.
    history.loc[[3, 7], "units_sold_7d_avg"] = "n/a"
    made = scaffold.new_model("shop_demand_na", _write(history, tmp_path / "na.csv"), "units_sold_next_day").spec
    assert made.source.null_values == ["", "n/a"] and made.feature("units_sold_7d_avg").type == "float"
    # Other text in a number column is still named, with the fix.
    history.loc[[5], "units_sold_7d_avg"] = "twenty"
    with pytest.raises(scaffold.ScaffoldError, match=r"units_sold_7d_avg is a number column that holds text values "
                                                     r"like \['n/a', 'twenty'\] in 3 row\(s\)"):
        scaffold.new_model("shop_demand_text", _write(history, tmp_path / "text.csv"), "units_sold_next_day")
