"""RNNEDGE_NO_SKIP=1 turns every skipped test into a failure naming the skip's reason.

CI (.ci/run) sets it for its last pytest run, after installing the optional packages (PyTorch,
matplotlib): a test that skips there (a missing package, a missing compiler) would otherwise be a
test CI never runs while reporting success."""

from __future__ import annotations

import os

import pytest

NO_SKIP = "RNNEDGE_NO_SKIP"


def _no_skip() -> bool:
    return os.environ.get(NO_SKIP, "") not in ("", "0")


def _fail_skip(report, nodeid: str) -> None:
    if report.skipped and _no_skip() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{nodeid} skipped ({reason}), and {NO_SKIP} is set: no test may skip"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result(), item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A whole module skipped at import (pytest.importorskip at module level)."""
    outcome = yield
    _fail_skip(outcome.get_result(), collector.nodeid)
