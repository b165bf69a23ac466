"""Multiple-testing adjustments of p-values.

Two layers:

* plain arrays — :func:`p_adjust` (p-values in, adjusted p-values out, like R's
  ``stats::p.adjust``) for ``"bonferroni"``, ``"holm"``, ``"bh"``, ``"by"`` and
  ``"sharpened-q"``; :func:`stepdown_maxt` and :func:`stepdown_minp` for the
  resampling methods, from a matrix of re-randomized statistics;
* results — :func:`adjust_pvalues` (a family of results in, NEW results out carrying
  ``adj_p_value`` and ``family``), which for ``"westfall-young"`` and ``"romano-wolf"``
  re-draws the assignment once and recomputes every statistic of the family on the same
  draws (:mod:`ips_impact.inference.randomization`).

Definitions (m hypotheses, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`):

* Bonferroni: :math:`\\min(1, m p_i)`.
* Holm (1979): :math:`\\tilde p_{(i)} = \\max_{j \\le i} \\min(1, (m - j + 1) p_{(j)})`.
* Benjamini–Hochberg (1995): :math:`\\tilde p_{(i)} = \\min_{j \\ge i} \\min(1, m p_{(j)} / j)`.
* Benjamini–Yekutieli (2001): BH times :math:`c(m) = \\sum_{k=1}^m 1/k`.
* Sharpened q-values (Benjamini, Krieger & Yekutieli 2006 two-stage procedure, as
  computed by Anderson 2008, JASA 103:1481, appendix code): for each
  :math:`q \\in \\{1, 0.999, \\dots, 0.001\\}`, stage 1 runs BH at :math:`q' = q/(1+q)`
  and rejects :math:`r_1`; stage 2 runs BH at :math:`q' m / (m - r_1)`; the q-value
  of a hypothesis is the smallest q at which stage 2 rejects it (1 if none). The grid
  of 0.001 is Anderson's; values therefore have three decimals.
* Westfall–Young (1993) step-down minP and Romano–Wolf (2005) step-down max-T, both
  on the randomization distribution (which imposes the complete null exactly), see
  :func:`stepdown_minp` and :func:`stepdown_maxt`. Both control the family-wise error
  rate in the strong sense under the sharp null of the family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ips_impact.errors import EstimationError

__all__ = [
    "P_ADJUST_METHODS",
    "ADJUST_METHODS",
    "p_adjust",
    "sharpened_qvalues",
    "stepdown_maxt",
    "stepdown_minp",
    "adjust_pvalues",
]

#: Methods that need only the p-values.
P_ADJUST_METHODS: tuple[str, ...] = ("bonferroni", "holm", "bh", "by", "sharpened-q")
#: Every method of :func:`adjust_pvalues`.
ADJUST_METHODS: tuple[str, ...] = P_ADJUST_METHODS + ("westfall-young", "romano-wolf")

Method = Literal["bonferroni", "holm", "bh", "by", "sharpened-q", "westfall-young", "romano-wolf"]

_TIE_RTOL = 1e-9


def _check_method(method: str, allowed: Sequence[str]) -> str:
    if not isinstance(method, str) or method not in allowed:
        raise EstimationError(
            f"method must be one of {', '.join(repr(m) for m in allowed)}; you passed {method!r}",
            fix="pick one of the listed methods",
        )
    return method


def _check_p(p: Any) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        arr = arr.ravel()
    bad = np.isfinite(arr) & ((arr < 0) | (arr > 1))
    if bad.any() or np.isinf(arr).any():
        raise EstimationError(
            "p-values must lie in [0, 1]",
            n_rows=int(bad.sum() + np.isinf(arr).sum()),
            examples=arr[bad | np.isinf(arr)][:5].tolist(),
            fix="pass p-values, not test statistics",
        )
    return arr


def p_adjust(p: Sequence[float] | np.ndarray, method: str) -> np.ndarray:
    """Adjust a vector of p-values for multiplicity.

    Parameters
    ----------
    p : array-like (m,)
        Unadjusted p-values; NaN entries are left NaN and not counted in m (as R's
        ``p.adjust`` with ``n = sum(!is.na(p))``).
    method : {"bonferroni", "holm", "bh", "by", "sharpened-q"}
        See the module docstring for the formulas.

    Returns
    -------
    numpy.ndarray (m,)
        Adjusted p-values (q-values for "bh", "by", "sharpened-q"), in input order.
    """
    _check_method(method, P_ADJUST_METHODS)
    arr = _check_p(p)
    out = np.full(arr.shape, np.nan)
    ok = ~np.isnan(arr)
    x = arr[ok]
    m = x.size
    if m == 0:
        return out
    if method == "sharpened-q":
        out[ok] = sharpened_qvalues(x)
        return out
    if method == "bonferroni":
        out[ok] = np.minimum(1.0, m * x)
        return out
    order = np.argsort(x, kind="stable")
    xs = x[order]
    i = np.arange(1, m + 1)
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - i + 1) * xs))
    else:  # bh, by: step-up, running minimum from the largest p-value down
        factor = 1.0 if method == "bh" else float(np.sum(1.0 / i))
        adj = np.minimum.accumulate((factor * m * xs / i)[::-1])[::-1]
        adj = np.minimum(1.0, adj)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def sharpened_qvalues(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Anderson (2008) sharpened two-stage q-values (BKY 2006), on Anderson's grid.

    For each :math:`q` in :math:`1, 0.999, \\dots, 0.001`: with ranks r of the sorted
    p-values (ties ranked in input order, as ``sort pval; gen rank = _n`` in Anderson's
    Stata code), :math:`q' = q/(1+q)`,
    :math:`r_1 = \\max\\{r : p_{(r)} \\le q' r/m\\}` (0 if none),
    :math:`q_2 = q' m/(m - r_1)` (:math:`+\\infty` if :math:`r_1 = m`),
    :math:`r_2 = \\max\\{r : p_{(r)} \\le q_2 r / m\\}`; hypotheses with rank
    :math:`\\le r_2` get q-value q (the smallest such q wins).

    Returns
    -------
    numpy.ndarray (m,) in input order; 1.0 when never rejected on the grid.
    """
    x = _check_p(p)
    if np.isnan(x).any():
        raise EstimationError("sharpened q-values need complete p-values",
                              n_rows=int(np.isnan(x).sum()), fix="drop the missing p-values")
    m = x.size
    order = np.argsort(x, kind="stable")
    xs = x[order]
    rank = np.arange(1, m + 1)
    # Grid as exact decimals (1.000 ... 0.001) to mirror Anderson's loop without drift.
    grid = np.arange(1000, 0, -1) / 1000.0
    q1 = grid / (1.0 + grid)
    # Largest rank meeting p_(r) <= q' r / m, for every grid value at once.
    meet1 = xs[None, :] <= q1[:, None] * rank[None, :] / m
    r1 = np.where(meet1.any(axis=1), m - np.argmax(meet1[:, ::-1], axis=1), 0)
    with np.errstate(divide="ignore"):
        q2 = np.where(r1 < m, q1 * m / np.maximum(m - r1, 1), np.inf)
    meet2 = xs[None, :] <= q2[:, None] * rank[None, :] / m
    r2 = np.where(meet2.any(axis=1), m - np.argmax(meet2[:, ::-1], axis=1), 0)
    # q-value of rank r: smallest grid q with r <= r2(q); grid is descending, so scan
    # for the last grid index where the rank is rejected.
    rejected = rank[None, :] <= r2[:, None]  # (grid, m)
    any_rej = rejected.any(axis=0)
    last = len(grid) - 1 - np.argmax(rejected[::-1, :], axis=0)
    qs = np.where(any_rej, grid[last], 1.0)
    out = np.empty(m)
    out[order] = qs
    return out


# ------------------------------------------------------------ resampling methods
def _prep_draws(t_obs: Any, t_draws: Any) -> tuple[np.ndarray, np.ndarray]:
    t_obs = np.atleast_1d(np.asarray(t_obs, dtype=float))
    t_draws = np.asarray(t_draws, dtype=float)
    if t_draws.ndim != 2 or t_draws.shape[1] != t_obs.size:
        raise EstimationError(
            f"t_draws must have shape (B, {t_obs.size}); got {t_draws.shape}",
            fix="one column per statistic, one row per re-drawn assignment",
        )
    if np.isnan(t_obs).any():
        raise EstimationError("an observed statistic is missing", n_rows=int(np.isnan(t_obs).sum()),
                              fix="drop statistics that could not be estimated from the family")
    # An undefined statistic under a draw counts as more extreme than anything (conservative).
    return np.abs(t_obs), np.where(np.isnan(t_draws), np.inf, np.abs(t_draws))


def _tolerance(a_obs: np.ndarray, a_draws: np.ndarray) -> np.ndarray:
    """Tie tolerance per statistic: 1e-9 times its scale (largest finite |T|)."""
    finite = np.where(np.isfinite(a_draws), a_draws, 0.0)
    return _TIE_RTOL * np.maximum(a_obs, finite.max(axis=0))


def stepdown_maxt(
    t_obs: Any, t_draws: Any, *, exact: bool = False, standardize: bool = True
) -> np.ndarray:
    """Romano–Wolf step-down max-T adjusted p-values on a randomization distribution.

    Statistics are first divided by the standard deviation of their randomization
    distribution (``standardize=True``) so that outcomes on different scales weigh
    alike. With hypotheses ordered by decreasing :math:`|t_{obs}|`, :math:`r_1..r_m`,

    .. math::
        \\tilde p_{r_j} = \\frac{1 + \\#\\{b : \\max_{l \\ge j} |t_{b, r_l}| \\ge
        |t_{obs, r_j}|\\}}{1 + B}, \\qquad
        p^{adj}_{r_j} = \\max_{i \\le j} \\tilde p_{r_i}

    (Monte Carlo; for an exact enumeration the 1 + is dropped and 1 + B becomes N).

    Parameters
    ----------
    t_obs : array (m,)
    t_draws : array (B, m)
        Statistics under each re-drawn assignment (same draws for all columns).
    exact : bool
        ``t_draws`` enumerates every assignment (observed included).
    standardize : bool
        Divide by the randomization standard deviation of each statistic.
    """
    a_obs, a_draws = _prep_draws(t_obs, t_draws)
    if standardize:
        finite = np.where(np.isfinite(a_draws), np.asarray(t_draws, dtype=float), np.nan)
        sd = np.nanstd(finite, axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        a_obs, a_draws = a_obs / sd, a_draws / sd
    order = np.argsort(-a_obs, kind="stable")
    # Successive maxima over the hypotheses not yet rejected (l >= j).
    tail_max = np.maximum.accumulate(a_draws[:, order][:, ::-1], axis=1)[:, ::-1]
    count = (tail_max >= (a_obs - _tolerance(a_obs, a_draws))[order][None, :]).sum(axis=0)
    b = a_draws.shape[0]
    p = count / b if exact else (1.0 + count) / (1.0 + b)
    p = np.maximum.accumulate(p)
    out = np.empty_like(p)
    out[order] = p
    return out


def _pool_pvalues(a_obs: np.ndarray, a_draws: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """Marginal randomization p-values of the observed statistics and of every draw,
    computed in one pool (the observed assignment added to Monte Carlo draws) so that
    they are on the same scale: p(x) = #{pool : |t| >= |x|} / |pool|.
    """
    pool = a_draws if exact else np.vstack([a_obs[None, :], a_draws])
    n_pool = pool.shape[0]
    srt = np.sort(pool, axis=0)
    tol = _tolerance(a_obs, a_draws)
    p_obs = np.empty(a_obs.size)
    p_draws = np.empty(a_draws.shape)
    for k in range(a_obs.size):
        col = srt[:, k]
        # #{t >= x} = n - #{t < x - tol}: ties within the tolerance count as extreme.
        p_obs[k] = (n_pool - np.searchsorted(col, a_obs[k] - tol[k], side="left")) / n_pool
        p_draws[:, k] = (n_pool - np.searchsorted(col, a_draws[:, k] - tol[k], side="left")) / n_pool
    return p_obs, p_draws


def stepdown_minp(t_obs: Any, t_draws: Any, *, exact: bool = False) -> np.ndarray:
    """Westfall–Young (1993) step-down minP adjusted p-values on a randomization
    distribution.

    Each statistic is turned into its marginal randomization p-value, under the
    observed and under every re-drawn assignment (same pool, so same scale). With
    hypotheses ordered by increasing observed p, :math:`r_1..r_m`,

    .. math::
        \\tilde p_{r_j} = \\frac{\\#\\{b \\in pool : \\min_{l \\ge j} p_{b, r_l}
        \\le p_{obs, r_j}\\}}{|pool|}, \\qquad p^{adj}_{r_j} = \\max_{i \\le j}
        \\tilde p_{r_i},

    the pool being the B draws plus the observed assignment (Monte Carlo) or the N
    enumerated assignments (exact). minP needs no standardization: every statistic is
    compared on the p-value scale.
    """
    a_obs, a_draws = _prep_draws(t_obs, t_draws)
    p_obs, p_draws = _pool_pvalues(a_obs, a_draws, exact)
    order = np.argsort(p_obs, kind="stable")
    if not exact:
        # The observed assignment belongs to the pool of the step-down too.
        p_draws = np.vstack([p_obs[None, :], p_draws])
    tail_min = np.minimum.accumulate(p_draws[:, order][:, ::-1], axis=1)[:, ::-1]
    count = (tail_min <= p_obs[order][None, :] * (1 + _TIE_RTOL)).sum(axis=0)
    p = np.maximum.accumulate(count / p_draws.shape[0])
    out = np.empty_like(p)
    out[order] = p
    return out


# ---------------------------------------------------------------------- results
def adjust_pvalues(
    results: Any,
    *,
    method: Method,
    family: str | None = None,
    pvalue: Literal["p_value", "ri_p_value"] = "p_value",
    study: Any = None,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> Any:
    """Adjust the p-values of a family of results for multiplicity.

    Every tidy row of every result in ``results`` is one hypothesis of the family.

    Parameters
    ----------
    results : result or sequence of results
        Fitted results (any result type of :mod:`ips_impact.results`).
    method : {"bonferroni", "holm", "bh", "by", "sharpened-q", "westfall-young", "romano-wolf"}
        See the module docstring.
    family : str, optional
        Label stored in the ``family`` column (default: the method name).
    pvalue : {"p_value", "ri_p_value"}
        Which p-values the p-value-based methods adjust (``ri_p_value`` requires
        :func:`~ips_impact.inference.randomization.randomization_inference` first).
    study : Study
        Needed by "westfall-young" and "romano-wolf", which re-draw the assignment.
    n_permutations, seed : int
        Draws for the resampling methods (the same draws for every statistic).

    Returns
    -------
    The same structure as ``results`` (one result or a list), each a NEW result with
    ``adj_p_value`` and ``family`` set.
    """
    from ips_impact.results.base import with_adjusted_pvalues

    _check_method(method, ADJUST_METHODS)
    if pvalue not in ("p_value", "ri_p_value"):
        raise EstimationError(
            f"pvalue must be 'p_value' or 'ri_p_value'; you passed {pvalue!r}",
            fix="use pvalue='ri_p_value' after randomization_inference()",
        )
    single = not isinstance(results, (list, tuple))
    rlist = [results] if single else list(results)
    if not rlist:
        raise EstimationError("no results to adjust", fix="pass at least one result")
    bad = [r for r in rlist if not (hasattr(r, "tidy") and hasattr(r, "n_rows"))]
    if bad:
        raise EstimationError(
            f"adjust_pvalues takes fitted results; got {type(bad[0]).__name__} "
            f"({len(bad)} of {len(rlist)} entries are not results)",
            fix="for raw p-values use ii.p_adjust(p, method) (e.g. p_adjust([0.01, 0.04], 'holm'))",
        )
    sizes = [r.n_rows for r in rlist]
    label = family if family is not None else method
    if method in P_ADJUST_METHODS:
        p = []
        for r in rlist:
            tidy = r.tidy()
            if pvalue not in tidy.columns:
                raise EstimationError(
                    f"a {type(r).__name__} has no '{pvalue}' column",
                    column=pvalue,
                    fix="run randomization_inference() on the results first",
                )
            p.extend(tidy[pvalue].astype(float).tolist())
        adj = p_adjust(np.asarray(p), method)
    else:
        if study is None:
            raise EstimationError(
                f"method {method!r} re-draws the assignment and needs the study",
                fix=f"call adjust_pvalues(results, method={method!r}, study=study)",
            )
        from ips_impact.inference.randomization import family_distribution

        t_obs, t_draws, exact = family_distribution(
            study, rlist, n_permutations=n_permutations, seed=seed
        )
        ok = ~np.isnan(t_obs)
        adj = np.full(t_obs.size, np.nan)
        if ok.any():
            fn = stepdown_minp if method == "westfall-young" else stepdown_maxt
            adj[ok] = fn(t_obs[ok], t_draws[:, ok], exact=exact)
    out = []
    start = 0
    for r, n in zip(rlist, sizes):
        vals = [None if math.isnan(v) else float(v) for v in adj[start : start + n]]
        out.append(with_adjusted_pvalues(r, vals, label))
        start += n
    return out[0] if single else out
