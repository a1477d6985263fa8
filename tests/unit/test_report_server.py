"""The reports app's building blocks without a server: which names and dates count, which file
a request may reach, what a model's page lists."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mlops_lifecycle import report_server
from mlops_lifecycle.report_server import NotServed


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["late_delivery", "m", "a1_b2"])
def test_spec_identifiers_are_model_names(name):
    assert report_server.checked_model(name) == name


@pytest.mark.parametrize("name", ["", "..", "Late", "late-delivery", "late_delivery\n", "a/b", "_x", "1a", "a" * 64])
def test_anything_else_is_not_a_model(name):
    with pytest.raises(NotServed):
        report_server.checked_model(name)


@pytest.mark.parametrize("ds", ["2026-3-2", "20260302", "2026-02-30", "2026-03-02\n", "2026-03-02T00:00", "..", ""])
def test_only_real_yyyy_mm_dd_dates_are_days(ds):
    with pytest.raises(NotServed):
        report_server.checked_day(ds)


def test_report_file_serves_the_three_report_files_only(data_dir):
    reports = data_dir / "lake" / "m" / "reports"
    html = write(reports / "drift" / "ds=2026-03-02" / "report.html", "<html/>")
    write(reports / "drift" / "ds=2026-03-02" / "other.json", "{}")
    assert report_server.report_file("m", "drift", "2026-03-02", "report.html") == html.resolve()
    for kind, name in [("drift", "other.json"), ("validation", "report.html"), ("concept", "summary.json")]:
        with pytest.raises(NotServed):
            report_server.report_file("m", kind, "2026-03-02", name)
    with pytest.raises(NotServed):  # listed, but missing
        report_server.report_file("m", "drift", "2026-03-02", "summary.json")


def test_report_file_refuses_a_link_out_of_the_lake(data_dir, tmp_path):
    target = write(tmp_path / "elsewhere.html", "secret")
    link = data_dir / "lake" / "m" / "reports" / "drift" / "ds=2026-03-02" / "report.html"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    with pytest.raises(NotServed):
        report_server.report_file("m", "drift", "2026-03-02", "report.html")
    assert not report_server.has_report("m", "drift", "2026-03-02", "report.html")


def test_data_docs_files_lists_regular_files_only(data_dir, tmp_path):
    docs = data_dir / "data_docs" / "m"
    write(docs / "index.html", "i")
    write(docs / "static" / "a.css", "c")
    write(docs / ".index.html.tmp", "partial")
    outside = write(tmp_path / "out" / "x.html", "secret")
    (docs / "leak.html").symlink_to(outside)
    (docs / "dir").symlink_to(outside.parent, target_is_directory=True)
    assert sorted(report_server.data_docs_files("m")) == ["index.html", "static/a.css"]
    assert report_server.data_docs_file("m", "").name == "index.html"
    for page in ("leak.html", "dir/x.html", ".index.html.tmp", "../m/index.html", "/index.html", "static/../index.html"):
        with pytest.raises(NotServed):
            report_server.data_docs_file("m", page)


def test_data_docs_page_for_day_is_the_newest_validation_of_that_day(data_dir):
    docs = data_dir / "data_docs" / "m" / "validations" / "m.batch"
    write(docs / "m-2026-03-02" / "20260302T010000Z" / "b.html", "first run")
    write(docs / "m-2026-03-02" / "20260302T020000Z" / "b.html", "rerun")
    write(docs / "m-2026-03-03" / "20260303T010000Z" / "b.html", "next day")
    assert report_server.data_docs_page_for_day("m", "2026-03-02") == (
        "validations/m.batch/m-2026-03-02/20260302T020000Z/b.html")
    assert report_server.data_docs_page_for_day("m", dt.date(2026, 3, 4)) is None


def test_day_rows_read_validation_and_drift_newest_first(data_dir):
    reports = data_dir / "lake" / "m" / "reports"
    write(reports / "validation" / "ds=2026-03-01" / "result.json",
          json.dumps({"success": False, "rows": 5, "evaluated": 9, "failed": 2}))
    write(reports / "validation" / "ds=2026-03-02" / "result.json", "{not json")
    write(reports / "drift" / "ds=2026-03-02" / "summary.json",
          json.dumps({"drift_share": 0.5, "drift_share_threshold": 0.3, "dataset_drift": True,
                      "drifted_columns": ["a"], "model_version": "2"}))
    write(reports / "drift" / "not-a-partition" / "summary.json", "{}")
    rows = report_server.day_rows("m")
    assert [r["ds"] for r in rows] == ["2026-03-02", "2026-03-01"]
    assert rows[0]["validation"]["unreadable"] is True
    assert rows[0]["drift"] == {"drift_share": 0.5, "threshold": 0.3, "dataset_drift": True, "drifted_columns": ["a"],
                                "model_version": "2", "unreadable": False, "report": False}
    assert rows[1]["validation"]["failed"] == 2 and rows[1]["drift"] is None


def test_pages_escape_what_the_reports_contain(data_dir):
    rows = [{"ds": "2026-03-02", "validation": None,
             "drift": {"drift_share": 0.5, "threshold": 0.3, "dataset_drift": True, "report": True,
                       "drifted_columns": ["<img src=x onerror=alert(1)>"], "model_version": "<b>"}}]
    page = report_server.render_model_page("m", rows, data_docs=False)
    assert "<img" not in page and "&lt;img src=x" in page and "v&lt;b&gt;" in page
    assert "href='drift/2026-03-02/report.html'" in page and "data-docs" not in page


def test_models_lists_identifier_folders_of_the_lake_and_the_data_docs(data_dir):
    for folder in ("lake/b_model", "lake/Not-A-Model", "data_docs/a_model", "data_docs/b_model"):
        (data_dir / folder).mkdir(parents=True)
    write(data_dir / "lake" / "c_file", "not a folder")
    assert report_server.models() == ["a_model", "b_model"]


def test_lazy_app_builds_the_real_app_once_on_first_use():
    built = []
    lazy = report_server.LazyApp(lambda: built.append(1) or "app")
    assert built == []
    assert lazy.build() == "app" and lazy.build() == "app" and built == [1]


def test_a_link_in_one_models_reports_to_another_models_lake_is_not_served(data_dir):
    """Issue 15: a user allowed to read model ``a`` must not reach ``b``'s files through a symlink
    planted in ``a``'s reports (or Data Docs); the link target itself stays servable as ``b``'s."""
    other = write(data_dir / "lake" / "b" / "reports" / "drift" / "ds=2026-03-02" / "report.html", "b's report")
    link = data_dir / "lake" / "a" / "reports" / "drift" / "ds=2026-03-02" / "report.html"
    link.parent.mkdir(parents=True)
    link.symlink_to(other)
    with pytest.raises(NotServed):
        report_server.report_file("a", "drift", "2026-03-02", "report.html")
    assert report_server.report_file("b", "drift", "2026-03-02", "report.html") == other.resolve()
    # A Data Docs folder of "a" that is a link to "b"'s site is not followed either.
    docs_b = write(data_dir / "data_docs" / "b" / "index.html", "b's docs")
    (data_dir / "data_docs" / "a").mkdir(parents=True)
    (data_dir / "data_docs" / "a" / "index.html").symlink_to(docs_b)
    with pytest.raises(NotServed):
        report_server.data_docs_file("a", "")


def test_a_model_folder_that_links_to_another_models_is_not_served(data_dir):
    b_report = write(data_dir / "lake" / "b" / "reports" / "drift" / "ds=2026-03-02" / "report.html", "b's report")
    b_docs = write(data_dir / "data_docs" / "b" / "index.html", "b's docs")
    (data_dir / "lake" / "a").symlink_to(data_dir / "lake" / "b")
    (data_dir / "data_docs" / "a").symlink_to(data_dir / "data_docs" / "b")
    with pytest.raises(NotServed):
        report_server.report_file("a", "drift", "2026-03-02", "report.html")
    with pytest.raises(NotServed):
        report_server.data_docs_file("a", "")
    assert report_server.report_file("b", "drift", "2026-03-02", "report.html") == b_report.resolve()
    assert report_server.data_docs_file("b", "") == b_docs.resolve()
