"""Run the Monte Carlo studies and summarise them into a :class:`ValidationReport`.

Replicate ``r`` of study ``s`` draws its trial from the seed
``SeedSequence([root, crc32(s), r])``, so a figure depends only on (root seed, study,
replicate): not on the backend, the number of workers, the chunking or the other
studies run alongside.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError
from ips_impact.validation.studies import STUDIES, Check, compute_truths

#: Columns of :attr:`ValidationReport.table`.
TABLE_COLUMNS = (
    "check", "study", "estimator", "quantity", "kind", "nominal", "replications",
    "rate", "mc_se", "band_low", "band_high", "inside", "bias", "rmse", "se_sd_ratio",
)


def replicate_seed(root: int, study: str, replicate: int) -> int:
    """Seed of one replicate: a function of (root, study, replicate) only."""
    ss = np.random.SeedSequence([int(root), zlib.crc32(study.encode()), int(replicate)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _run_chunk(task: tuple[str, tuple[int, ...], int, dict[str, float]]) -> list[dict[str, Any]]:
    """Worker: the replicates of one chunk of one study (top level, so it pickles)."""
    study, reps, root, truths = task
    fn = STUDIES[study][0]
    out = []
    for r in reps:
        for rec in fn(replicate_seed(root, study, r), truths):
            out.append({"study": study, "replicate": r, **rec})
    return out


def _map(fn: Callable[[Any], Any], tasks: Sequence[Any], backend: Any, n_workers: int | None,
         progress: bool) -> list[Any]:
    from ips_impact.parallel import run_tasks

    return run_tasks(fn, tasks, backend=backend, n_workers=n_workers, progress=progress)


def summarise(records: pd.DataFrame, checks: Sequence[Check]) -> pd.DataFrame:
    """One row per check: rate, its Monte Carlo SE, the ±3 MC SE band, bias, RMSE, SE/SD.

    For a check with nominal level :math:`\\alpha_0` over :math:`R` replicates, the band
    is :math:`\\alpha_0 \\pm 3 \\sqrt{\\alpha_0 (1 - \\alpha_0) / R}`: a correct
    procedure falls outside it with probability about 0.3%. ``bias`` is
    :math:`\\bar{\\hat\\theta - \\theta}`, ``rmse`` :math:`\\sqrt{\\overline{(\\hat\\theta-\\theta)^2}}`
    and ``se_sd_ratio`` the mean standard error over the standard deviation of the
    estimates (1 when the standard error is right), for coverage checks with a point
    estimate.
    """
    rows = []
    for c in checks:
        sub = records[records["check"] == c.id]
        n = len(sub)
        rate = float(sub["hit"].mean()) if n else math.nan
        mc_se = math.sqrt(rate * (1 - rate) / n) if n else math.nan
        if math.isfinite(c.nominal) and n:
            half = 3 * math.sqrt(c.nominal * (1 - c.nominal) / n)
            lo, hi = c.nominal - half, c.nominal + half
            inside: Any = bool(lo <= rate <= hi)
        else:
            lo = hi = math.nan
            inside = None
        err = (sub["estimate"] - sub["truth"]).to_numpy(dtype=float)
        has_est = n and np.isfinite(err).all() and np.isfinite(sub["std_error"].to_numpy(dtype=float)).all()
        bias = float(err.mean()) if has_est else math.nan
        rmse = float(np.sqrt((err**2).mean())) if has_est else math.nan
        sd = float(sub["estimate"].std(ddof=1)) if has_est and n > 1 else math.nan
        ratio = float(sub["std_error"].mean() / sd) if has_est and sd > 0 else math.nan
        rows.append({
            "check": c.id, "study": c.study, "estimator": c.estimator, "quantity": c.quantity,
            "kind": c.kind, "nominal": c.nominal, "replications": n, "rate": rate, "mc_se": mc_se,
            "band_low": lo, "band_high": hi, "inside": inside, "bias": bias, "rmse": rmse,
            "se_sd_ratio": ratio,
        })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def run_validation(
    *,
    replications: int = 1000,
    seed: int = 20_261_201,
    studies: Sequence[str] | None = None,
    backend: Any = "auto",
    n_workers: int | None = None,
    chunk_size: int = 25,
    truth_n: int = 100_000,
    parity: bool = True,
    progress: bool = False,
) -> Any:
    """Run the Monte Carlo studies (and collect the R parity checks) into a report.

    Parameters
    ----------
    replications
        Replicates R per study; the band of a 95% coverage check is
        :math:`0.95 \\pm 3\\sqrt{0.95 \\cdot 0.05 / R}` (±2.1 points for R = 1,000).
    seed
        Root seed; the same seed gives the same report, whatever the backend.
    studies
        Names among :data:`~ips_impact.validation.studies.STUDIES` (default: all).
    backend, n_workers
        Passed to :func:`ips_impact.parallel.run_tasks`: ``"serial"``, ``"processes"``,
        ``"auto"``, a dask scheduler address or a ``distributed.Client``.
    chunk_size
        Replicates per task.
    truth_n
        Size of the large synthetic sample behind the truths.
    parity
        Also run the R parity tests of the test suite and list them (needs the
        ``tests/`` folder of a source checkout; skipped with a note otherwise).
    progress
        Show a progress bar.

    Returns
    -------
    ValidationReport
    """
    from ips_impact.validation.report import ValidationReport

    names = list(STUDIES) if studies is None else list(studies)
    bad = [s for s in names if s not in STUDIES]
    if bad:
        raise EstimationError(f"unknown validation study {bad}", fix=f"use some of {', '.join(STUDIES)}")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 2:
        raise EstimationError(f"replications must be an integer >= 2; you passed {replications!r}",
                              fix="pass e.g. replications=1000")
    truths = compute_truths(n=truth_n)
    tasks = []
    for s in names:
        for start in range(0, replications, chunk_size):
            tasks.append((s, tuple(range(start, min(start + chunk_size, replications))), seed, truths))
    chunks = _map(_run_chunk, tasks, backend, n_workers, progress)
    records = pd.DataFrame([rec for chunk in chunks for rec in chunk])
    records = records.sort_values(["study", "check", "replicate"], kind="stable").reset_index(drop=True)
    checks = [c for s in names for c in STUDIES[s][1]]
    table = summarise(records, checks)
    parity_table = None
    if parity:
        from ips_impact.validation.parity import collect_parity

        parity_table = collect_parity()
    return ValidationReport(
        table=table, parity=parity_table, replications=replications, seed=seed,
        truth_n=truth_n, truths=truths, studies=tuple(names),
    )
