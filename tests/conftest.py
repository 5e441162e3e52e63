"""RNNEDGE_NO_SKIP=1 turns every skipped test into a failure naming the skip's reason.

CI (.ci/run) sets it for its last pytest run, after installing the optional packages (PyTorch,
matplotlib): a test that skips there (a missing package, a missing compiler) would otherwise be a
test CI never runs while reporting success.

Test helpers are plain modules beside the tests, imported by name (`import onnx_cases as oc`):
tests/ has no __init__.py, so pytest puts it first on sys.path, and a script in tests/ (the C
vectors' generator tests/make_c_vectors.py) has it as its own directory. They are modules rather
than fixtures because the tests parametrize over their tables at collection time:
- onnx_cases.py: the case table (ONNX graphs with their float IR), shared by the converter,
  runtime and reference tests and by tests/make_c_vectors.py;
- blob_edit.py: editing valid blobs into damaged ones, the CRC re-signed (corruption tests);
- onnx_mutations.py: hypothesis strategies of mutated ONNX models (test_converter_fuzz.py).
tools/ do not import them (tests/test_imports.py), but for tools/fuzz_python.py, the long-run
atheris harness of the last two."""

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
