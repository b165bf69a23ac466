"""pytest plugin that records what every R parity test compared (used by :mod:`.parity`).

Loaded with ``-p ips_impact.validation._parity_plugin --parity-log=FILE``. It wraps the
two comparison helpers the parity tests use, ``pytest.approx`` and
``numpy.testing.assert_allclose``, so that each comparison of ours with R is counted
with its relative error and tolerance; it changes no comparison's outcome.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.testing
import pytest
from _pytest import approx as python_api

_CURRENT: list[str] = []
_LOG: dict[str, dict[str, Any]] = {}


def _bucket() -> dict[str, Any] | None:
    if not _CURRENT:
        return None
    return _LOG.setdefault(_CURRENT[-1], {"comparisons": 0, "max_rel_error": 0.0, "tolerance": math.nan})


def _note(actual: Any, expected: Any, tol: float) -> None:
    b = _bucket()
    if b is None:
        return
    a = np.asarray(actual, dtype=float).ravel()
    e = np.asarray(expected, dtype=float).ravel()
    if a.shape != e.shape:
        return
    ok = np.isfinite(a) & np.isfinite(e)
    b["comparisons"] += int(a.size)
    if ok.any():
        rel = np.abs(a[ok] - e[ok]) / np.maximum(np.abs(e[ok]), 1e-300)
        # a difference that is tiny in absolute terms on a value near 0 is no error
        rel = np.where(np.abs(a[ok] - e[ok]) < 1e-14, 0.0, rel)
        b["max_rel_error"] = max(b["max_rel_error"], float(rel.max()))
    if math.isfinite(tol):
        b["tolerance"] = tol if math.isnan(b["tolerance"]) else max(b["tolerance"], tol)


_orig_eq = python_api.ApproxScalar.__eq__


def _approx_eq(self: Any, actual: Any) -> bool:
    result = _orig_eq(self, actual)
    try:
        rel = self.rel if self.rel is not None else math.nan
        _note(actual, self.expected, float(rel))
    except (TypeError, ValueError):
        pass
    return result


python_api.ApproxScalar.__eq__ = _approx_eq  # type: ignore[method-assign]
_orig_allclose = numpy.testing.assert_allclose


def _allclose(actual: Any, desired: Any, rtol: float = 1e-7, atol: float = 0, *args: Any, **kwargs: Any) -> None:
    _orig_allclose(actual, desired, rtol, atol, *args, **kwargs)
    try:
        _note(actual, desired, float(rtol))
    except (TypeError, ValueError):
        pass


numpy.testing.assert_allclose = _allclose


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--parity-log", default=None, help="write the parity record to this JSON file")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any) -> Any:
    _CURRENT.append(item.nodeid)
    _LOG.setdefault(item.nodeid, {"comparisons": 0, "max_rel_error": 0.0, "tolerance": math.nan})
    module = item.module
    src = Path(module.__file__).read_text(encoding="utf-8")
    refs = sorted(set(re.findall(r"([A-Za-z0-9_]+_reference\.json)", src)))
    _LOG[item.nodeid]["reference"] = ", ".join(refs)
    for name in ("TOL", "RTOL"):
        v = getattr(module, name, None)
        if isinstance(v, float) and math.isnan(_LOG[item.nodeid]["tolerance"]):
            _LOG[item.nodeid]["module_tolerance"] = v
    try:
        yield
    finally:
        _CURRENT.pop()


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        entry = _LOG.setdefault(report.nodeid, {"comparisons": 0, "max_rel_error": 0.0, "tolerance": math.nan})
        entry["outcome"] = report.outcome


def pytest_sessionfinish(session: Any) -> None:
    path = session.config.getoption("--parity-log")
    if path:
        Path(path).write_text(json.dumps(_LOG, sort_keys=True, default=float), encoding="utf-8")
