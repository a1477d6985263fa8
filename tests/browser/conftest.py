"""Browser tests: the real Airflow UI driven by Playwright in Debian's headless Chromium."""

from __future__ import annotations

from live_airflow import print_stack_timings


def pytest_terminal_summary(terminalreporter):
    """Print how long each phase of the browser test took (the issue asks for the figure)."""
    print_stack_timings(terminalreporter, "browser")
