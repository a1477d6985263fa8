"""Production-mode tests: a real CeleryExecutor stack on the local PostgreSQL and Redis."""

from __future__ import annotations

from live_airflow import print_stack_timings


def pytest_terminal_summary(terminalreporter):
    """Print how long each phase of the live stack took (the issue asks for the figure)."""
    print_stack_timings(terminalreporter, "production")
