"""Collect the R parity checks of the test suite into one table.

A test is a parity test when pytest marks it ``parity``: ``tests/conftest.py`` marks
every test whose name says which R function it matches (see ``PARITY_PATTERN`` there).
They are run in a subprocess with :mod:`._parity_plugin`, which records each
comparison of ours with R (relative error, tolerance); the tests themselves are
unchanged and still decide pass or fail.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

PARITY_COLUMNS = ("test", "reference", "tolerance", "max_rel_error", "comparisons", "met")


def _short(node: str) -> str:
    path, _, rest = node.partition("::")
    return f"{Path(path).name}::{rest}"


def _tests_dir() -> Path | None:
    here = Path(__file__).resolve().parents[2] / "tests"
    return here if (here / "conftest.py").exists() else None


def collect_parity(tests_dir: str | Path | None = None) -> pd.DataFrame | None:
    """Run the parity tests and return one row per test (None without a ``tests/`` folder).

    Columns: ``test`` (pytest node id), ``reference`` (the committed JSON of R's output),
    ``tolerance`` (the largest relative tolerance the test used, or its module's
    ``TOL``/``RTOL``), ``max_rel_error`` (largest relative difference from R over the
    recorded comparisons; NaN where the test compares through its own helper),
    ``comparisons`` (numbers compared) and ``met`` (the test passed).
    """
    tdir = Path(tests_dir) if tests_dir is not None else _tests_dir()
    if tdir is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "parity.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-m", "parity", "-p", "no:cacheprovider",
               "-p", "ips_impact.validation._parity_plugin", f"--parity-log={log}", str(tdir)]
        subprocess.run(cmd, cwd=tdir.parent, capture_output=True, text=True, check=False)
        if not log.exists():
            return None
        raw = json.loads(log.read_text(encoding="utf-8"))
    rows = []
    for node, e in sorted(raw.items()):
        if "outcome" not in e:
            continue
        tol = e.get("tolerance", math.nan)
        if tol is None or (isinstance(tol, float) and math.isnan(tol)):
            tol = e.get("module_tolerance", math.nan)
        n = int(e.get("comparisons", 0))
        rows.append({
            "test": _short(node), "reference": e.get("reference", ""),
            "tolerance": float(tol) if tol is not None else math.nan,
            "max_rel_error": float(e["max_rel_error"]) if n else math.nan,
            "comparisons": n, "met": e["outcome"] == "passed",
        })
    return pd.DataFrame(rows, columns=list(PARITY_COLUMNS))
