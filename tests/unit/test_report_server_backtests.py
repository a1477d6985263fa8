"""The back-test pages' building blocks without a server: which key names a report, what the
pages show, and that nothing in a report is taken as markup."""

from __future__ import annotations

import copy
import json

import pytest
from backtest_report import REPORT

from mlops_lifecycle import lake, report_server
from mlops_lifecycle.report_server import NotServed


def test_a_backtest_key_is_two_dates_and_names_its_report(data_dir):
    path = lake.write_json(lake.backtest_file("m", "2026-03-01", "2026-04-30"), REPORT)
    assert report_server.backtest_file("m", "2026-03-01_2026-04-30") == path.resolve()
    assert report_server.backtest_keys("m") == ["2026-03-01_2026-04-30"]
    assert report_server.read_backtest("m", "2026-03-01_2026-04-30")["months"][0]["month"] == "2026-03"
    for key in ("2026-03-01_2026-05-01", "2026-03-01", "2026-03-01..2026-04-30", "../2026-03-01_2026-04-30",
                "2026-02-30_2026-04-30", "2026-03-01_2026-04-30.json", "2026-03-01_2026-04-30/"):
        with pytest.raises(NotServed):
            report_server.backtest_file("m", key)


def test_a_backtest_report_linked_out_of_the_lake_is_not_served(data_dir, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps(REPORT))
    link = lake.backtest_file("m", "2026-03-01", "2026-04-30")
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(NotServed):
        report_server.backtest_file("m", "2026-03-01_2026-04-30")


def test_an_unreadable_report_says_so(data_dir):
    path = lake.backtest_file("m", "2026-03-01", "2026-04-30")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    report = report_server.read_backtest("m", "2026-03-01_2026-04-30")
    assert report == {"unreadable": True}
    assert "not readable JSON" in report_server.render_backtest_page("m", "2026-03-01_2026-04-30", report)


def test_the_backtest_page_shows_each_month_against_both_baselines_and_each_decision():
    page = report_server.render_backtest_page("m", "2026-03-01_2026-04-30", REPORT)
    assert "<td>2026-03</td><td>31</td><td>30</td><td>1</td><td>0</td><td>2</td><td>4</td><td>1</td><td>0</td><td>1</td>" \
           "<td>29000</td><td>0.8100</td><td>0.8100</td><td>0.8000</td>" in page
    assert "<td>total</td>" in page and "Alerts by kind: drift 3, quarantine 1." in page
    assert "<td>2026-03-12</td><td>v2</td><td>rejected</td><td>v1</td><td>data_drift</td><td>7000</td>" in page
    assert "<td class='failed'>wrong</td>" in page
    assert "<td>1</td><td class='failed'>quarantined</td><td>weather in set</td><td>2026-03-06</td>" in page
    assert "href='backtest.json'" in page and "Replayed 31 days in 62.0 s (2.0 s a day)" in page


def test_a_retraining_that_trained_nothing_is_listed_with_why():
    report = copy.deepcopy(REPORT)
    report["days"].append({"ds": "2026-03-20", "status": "scored", "retraining": {
        "outcome": "failed", "error": "the window holds 3 validated day(s)"}})
    page = report_server.render_backtest_page("m", "2026-03-01_2026-04-30", report)
    assert "<li>2026-03-20: failed, the window holds 3 validated day(s)</li>" in page


def test_a_right_decision_and_one_not_judged_are_shown_as_such():
    report = copy.deepcopy(REPORT)
    report["decisions"] = [dict(report["decisions"][0], outcome="promoted", right=True),
                           dict(report["decisions"][0], ds="2026-04-30", right=None, gain=None)]
    page = report_server.render_backtest_page("m", "2026-03-01_2026-04-30", report)
    assert "<td class='good'>right</td>" in page and "<td class='muted'>not judged</td>" in page


def test_the_backtest_page_escapes_what_the_report_holds():
    report = copy.deepcopy(REPORT)
    report["metric"] = "<script>x()</script>"
    report["decisions"][0]["summary"] = "<img src=x onerror=alert(1)>"
    report["days"][0]["detail"] = "<b>bold</b>"
    report["months"][0]["scored"] = "<i>not a number</i>"
    page = report_server.render_backtest_page("m", "2026-03-01_2026-04-30", report)
    assert "<script>x()" not in page and "&lt;script&gt;" in page
    assert "<img" not in page and "&lt;img src=x" in page and "<b>bold" not in page
    assert "<i>not a number" not in page


def test_the_backtest_list_links_each_range_and_the_model_page_links_the_list():
    page = report_server.render_backtests_page("m", ["2026-03-01_2026-04-30"])
    assert "<a href='2026-03-01_2026-04-30/'>2026-03-01 .. 2026-04-30</a>" in page
    assert "No back-test yet" in report_server.render_backtests_page("m", [])
    assert "href='backtests/'" in report_server.render_model_page("m", [], data_docs=False, backtests=True)
    assert "backtests/" not in report_server.render_model_page("m", [], data_docs=False)
