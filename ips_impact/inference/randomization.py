r"""Randomization inference on fitted results: the public entry points.

Under the sharp null hypothesis of no effect for anyone, :math:`Y_i(1) = Y_i(0)`, the
observed outcomes do not depend on the assignment, so the distribution of any
statistic :math:`T(z)` over the assignments :math:`z` the design could have drawn is
known exactly. This module draws the assignments ONCE per call (as the design did:
complete randomization within strata, same number treated per stratum), asks each
result's estimator for its randomization problem through the protocol of
:mod:`ips_impact.inference.ri_protocol`, computes every statistic on the same draws
(:mod:`ips_impact.inference.ri_engine`) and turns them into p-values and intervals
(:mod:`ips_impact.inference.ri_tests`).

The modules, by job:

* ``ri_engine`` — :class:`LinearProblem` and :func:`linear_statistics` (arrays in,
  statistics for every draw out; one matrix product);
* ``ri_tests`` — :func:`ri_pvalues`, :func:`ri_confidence_interval`;
* ``ri_protocol`` — :class:`RandomizationProblem`, :func:`register_randomization`;
* this module — :func:`randomization_inference`, :func:`randomization_ci`,
  :func:`randomization_pretest`, :func:`family_distribution`.

Choice of statistic
-------------------
The statistic is the estimate itself (not its t ratio): the test is exact for the
sharp null whatever the statistic, and the unstudentized coefficient needs no
per-draw variance, which keeps every draw a matrix product. With the trial's equal
arm sizes within strata the difference in means is also asymptotically valid for the
weak null of a zero *average* effect; with very unequal arms a studentized statistic
would be more robust (Wu & Ding 2021), and is not offered. Exceptions: the LATE uses
its reduced form (the ITT), survival results their log-rank chi-square, Cox
coefficient and RMST difference, the joint heterogeneity row its contrast,
interaction or Wald form — each estimator says so in its builder.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ips_impact.errors import DesignError, EstimationError
from ips_impact.inference.permutation import AssignmentMatrix, assignment_matrix
from ips_impact.inference.ri_engine import (
    DEFAULT_MEMORY,
    LinearProblem,
    _merge_problems,
    _prepare,
    _statistics_prepared,
    linear_statistics,
)
from ips_impact.inference.ri_protocol import (
    RandomizationNotAvailableError,
    RandomizationProblem,
    estimator_of,
    randomization_problem_of,
    register_randomization,
)
from ips_impact.inference.ri_tests import TIE_RTOL, ri_confidence_interval, ri_pvalues

__all__ = [
    "LinearProblem",
    "RandomizationDistribution",
    "RandomizationProblem",
    "linear_statistics",
    "randomization_distribution",
    "ri_pvalues",
    "ri_confidence_interval",
    "randomization_inference",
    "randomization_ci",
    "family_distribution",
    "randomization_pretest",
    "register_randomization",
    "RandomizationNotAvailableError",
    "DEFAULT_MEMORY",
    "TIE_RTOL",
]


# ---------------------------------------------------------- distribution object
@dataclass(frozen=True, eq=False)
class RandomizationDistribution:
    """Observed statistics, their randomization distribution and p-values.

    Attributes
    ----------
    observed : array (m,)
        :math:`T(z_{obs})` for the m statistics (problems concatenated).
    draws : array (B, m)
        :math:`T(z_b)`.
    exact : bool
        Whether the draws enumerate every assignment.
    p_value, se : arrays (m,)
        From :func:`ri_pvalues`.
    """

    observed: np.ndarray
    draws: np.ndarray
    exact: bool
    p_value: np.ndarray
    se: np.ndarray


def randomization_distribution(
    problems: LinearProblem | Sequence[LinearProblem],
    arm: np.ndarray,
    assignments: AssignmentMatrix,
    *,
    memory: int = DEFAULT_MEMORY,
) -> RandomizationDistribution:
    """Observed statistics, their distribution over ``assignments`` and p-values.

    The observed statistic is computed by the same code as the draws (so that a draw
    equal to the observed assignment ties exactly).
    """
    plist = [problems] if isinstance(problems, LinearProblem) else list(problems)
    arm = np.asarray(arm, dtype=np.int8)
    obs = np.concatenate(linear_statistics(plist, arm[None, :], memory=memory), axis=1)[0]
    dist = np.concatenate(linear_statistics(plist, assignments.draws, memory=memory), axis=1)
    p, se = ri_pvalues(obs, dist, exact=assignments.exact)
    return RandomizationDistribution(observed=obs, draws=dist, exact=assignments.exact,
                                     p_value=p, se=se)



# ------------------------------------------------------------------ the family
def _check_options(n_permutations: Any, seed: Any, level: Any = 0.95) -> None:
    if (isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer))
            or n_permutations < 1):
        raise EstimationError(
            f"n_permutations must be a positive integer; you passed {n_permutations!r}",
            fix="use e.g. n_permutations=10_000",
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EstimationError(
            f"seed must be a non-negative integer; you passed {seed!r}",
            fix="use e.g. seed=0 (the same seed gives the same p-values)",
        )
    if isinstance(level, bool) or not isinstance(level, (float, int)) or not 0 < float(level) < 1:
        raise EstimationError(
            f"level must be strictly between 0 and 1; you passed {level!r}",
            fix="use e.g. level=0.95",
        )


def _design_of(study: Any) -> Any:
    design = getattr(study, "design", None)
    if design is None or not hasattr(design, "arm"):
        raise DesignError(
            "the study has no randomization design",
            fix="pass the Study the results were fitted on",
        )
    return design


@dataclass(frozen=True, eq=False)
class _Family:
    """Statistics of a list of results on one shared assignment matrix.

    ``observed``/``draws`` hold, per result, its tidy-row statistics (after
    ``finalize``), or — with the arm column appended for test inversion — the raw
    linear statistics, coef-major with K + 1 columns per coefficient.
    """

    results: list[Any]
    problems: list[RandomizationProblem]
    assignments: AssignmentMatrix
    observed: np.ndarray  # (m,)
    draws: np.ndarray  # (B, m)
    sizes: list[int]
    checked: np.ndarray  # (m,) bool


def _general_statistics(prob: RandomizationProblem, arm: np.ndarray, draws: np.ndarray,
                        chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    assert prob.statistic is not None
    obs = np.asarray(prob.statistic(arm[None, :]), dtype=float).reshape(1, -1)[0]
    parts = [np.asarray(prob.statistic(draws[i : i + chunk]), dtype=float).reshape(-1, obs.size)
             for i in range(0, draws.shape[0], chunk)]
    dist = np.concatenate(parts, axis=0) if parts else np.zeros((0, obs.size))
    return obs, dist


def _family(study: Any, results: list[Any], n_permutations: int, seed: int,
            *, extra_arm_column: bool = False) -> _Family:
    design = _design_of(study)
    arm = np.asarray(design.arm, dtype=np.int8)
    problems = [randomization_problem_of(study, r) for r in results]
    am = assignment_matrix(arm, design.stratum, n_permutations, seed)
    flat = [p for prob in problems for p in prob.linear]
    if extra_arm_column:
        # Append, as one more outcome, the observed regressor of the (first) statistic,
        # z_obs * v (the arm itself for an ITT, arm x post for a DiD): under a constant
        # effect tau on that regressor the control outcomes are y - tau z_obs v.
        flat = [
            dataclasses.replace(p, y=np.column_stack(
                [p.y, arm[p.row_person].astype(float) * p.interact[:, p.coef[0]]]))
            for p in flat
        ]
    # Every linear statistic of every result in one pass over the draws; the outcomes
    # are residualised once for the observed assignment and the draws.
    merged, where = _merge_problems(flat)
    preps = [_prepare(p, arm.size) for p in merged]
    obs_m = _statistics_prepared(preps, arm[None, :]) if flat else []
    dist_m = _statistics_prepared(preps, am.draws) if flat else []
    obs_lin = [obs_m[m][:, cols] for m, cols in where]
    dist_lin = [dist_m[m][:, cols] for m, cols in where]
    obs_parts, dist_parts, sizes, checked = [], [], [], []
    j = 0
    for prob in problems:
        if prob.is_linear:
            n_p = len(prob.linear)
            o = np.concatenate([x[0] for x in obs_lin[j : j + n_p]])
            d = np.concatenate(dist_lin[j : j + n_p], axis=1)
            j += n_p
            if prob.finalize is not None and not extra_arm_column:
                o, d = prob.finalize(o.copy(), d.copy())
        else:
            o, d = _general_statistics(prob, arm, am.draws)
        obs_parts.append(o)
        dist_parts.append(d)
        sizes.append(o.size)
        checked.append(np.full(o.size, prob.reproduces and not extra_arm_column))
    return _Family(
        results=results, problems=problems, assignments=am,
        observed=np.concatenate(obs_parts) if obs_parts else np.zeros(0),
        draws=np.concatenate(dist_parts, axis=1) if dist_parts else np.zeros((am.n_draws, 0)),
        sizes=sizes, checked=np.concatenate(checked) if checked else np.zeros(0, dtype=bool),
    )


def _check_reproduces(results: list[Any], observed: np.ndarray,
                      checked: np.ndarray | None = None) -> None:
    """Refuse an engine statistic (observed assignment) that is not the tidy estimate."""
    pos = 0
    for r in results:
        est = r.tidy()["estimate"].to_numpy(dtype=float)
        got = observed[pos : pos + est.size]
        chk = np.ones(est.size, dtype=bool) if checked is None else checked[pos : pos + est.size]
        pos += est.size
        scale = 1 + np.nanmax(np.abs(est)) if np.isfinite(est).any() else 1.0
        bad = chk & np.isfinite(est) & ~np.isclose(got, est, rtol=1e-7, atol=1e-9 * scale)
        if bad.any():
            raise EstimationError(
                f"randomization inference does not reproduce the estimate of a "
                f"{estimator_of(r)} result ({got[bad][0]!r} vs {est[bad][0]!r})",
                fix="report this as a bug: the estimator and its randomization problem disagree",
            )


def _as_list(results: Any) -> tuple[list[Any], Any]:
    """(list of results, how to give them back): one result, a list/tuple, or a dict."""
    if isinstance(results, Mapping):
        keys = list(results)
        return [results[k] for k in keys], lambda out: dict(zip(keys, out))
    if isinstance(results, (list, tuple)):
        kind = type(results) if isinstance(results, tuple) else list
        return list(results), lambda out: kind(out)
    return [results], lambda out: out[0]


# ------------------------------------------------------------------ public API
def family_distribution(
    study: Any, results: Sequence[Any], *, n_permutations: int = 10_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Observed statistics of every tidy row of ``results`` and their joint distribution.

    The distribution is on ONE assignment matrix (for step-down adjustments).

    Returns
    -------
    (observed (m,), draws (B, m), exact)
    """
    _check_options(n_permutations, seed)
    rlist, _ = _as_list(results)
    fam = _family(study, rlist, n_permutations, seed)
    _check_reproduces(rlist, fam.observed, fam.checked)
    return fam.observed, fam.draws, fam.assignments.exact


def randomization_inference(
    study: Any,
    results: Any,
    *,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> Any:
    r"""Randomization p-values for fitted results; returns NEW results.

    The assignment is re-drawn as the design did (complete randomization within strata,
    same number treated per stratum; household members and person-period rows follow
    their randomized person) ONCE, and every statistic of every result is recomputed on
    the same draws. The statistic is the estimate itself (coefficient of the arm),
    compared in absolute value:

    .. math:: p = \frac{1 + \#\{b : |\hat\tau(z_b)| \ge |\hat\tau(z_{obs})|\}}{1 + B}

    (exact proportion over all :math:`N` assignments when :math:`N \le` ``n_permutations``).
    This is an exact test of the sharp null :math:`Y_i(1) = Y_i(0)` for every person.

    Parameters
    ----------
    study : Study
        The study the results were fitted on.
    results : result, sequence of results, or dict of results
        Results of any estimator that registered a randomization problem
        (:func:`~ips_impact.inference.ri_protocol.registered_estimators`): ``itt``,
        ``itt_by_period``, ``did``, ``late`` (reduced-form statistic), ``spillover``,
        ``household_total``, ``heterogeneity``, ``time_to_event`` (log-rank
        chi-square, Cox coefficient, RMST difference; other rows NaN). Other results
        (``lee_bounds``, ``balance``, ``spell_survival``…) raise
        :class:`RandomizationNotAvailableError` naming the estimator.
    n_permutations : int
        Monte Carlo draws B (default 10,000).
    seed : int
        Seed of the draws; the same seed gives the same p-values.

    Returns
    -------
    The same structure as ``results`` (one result, a list or tuple, or a dict with the
    same keys): new results with ``ri_p_value`` and ``ri_se`` (Monte Carlo standard
    error :math:`\sqrt{p(1-p)/B}`; absent when exact).
    """
    from ips_impact.results.base import with_ri

    _check_options(n_permutations, seed)
    rlist, back = _as_list(results)
    fam = _family(study, rlist, n_permutations, seed)
    _check_reproduces(rlist, fam.observed, fam.checked)
    p, se = ri_pvalues(fam.observed, fam.draws, exact=fam.assignments.exact)
    out, pos = [], 0
    for r, n in zip(rlist, fam.sizes):
        pr, sr = p[pos : pos + n], se[pos : pos + n]
        pos += n
        out.append(with_ri(r, pr, None if fam.assignments.exact else sr))
    return back(out)


def randomization_ci(
    study: Any,
    results: Any,
    *,
    level: float = 0.95,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> Any:
    r"""Randomization confidence intervals by test inversion (constant additive effect).

    For each tidy row: the set of :math:`\tau` such that the randomization test of
    :math:`H_\tau: Y_i(1) = Y_i(0) + \tau` for every person (for a DiD: in every
    post period) has p-value :math:`> 1 - level` (see :func:`ri_confidence_interval`).
    A LATE gets the Anderson–Rubin-type interval of :math:`Y_i(d) = Y_i(0) + \tau d`.
    Rows with several effects in one model (subgroups) and rows whose statistic is not
    shifted one-for-one by the constant effect (checked numerically) get NaN;
    survival statistics get NaN (not a linear statistic).

    Returns
    -------
    The same structure as ``results`` (one result, list, tuple or dict): new results
    with ``ri_p_value``, ``ri_se`` (absent when exact), ``ri_conf_low`` and
    ``ri_conf_high`` in ``.tidy()`` (an end may be infinite: an unbounded side). The
    level and the draws are in the returned results' p-values' provenance: ``level``
    as passed, ``n_permutations`` draws (or every assignment when fewer exist).
    """
    from ips_impact.results.base import with_ri

    _check_options(n_permutations, seed, level)
    rlist, back = _as_list(results)
    fam = _family(study, rlist, n_permutations, seed, extra_arm_column=True)
    exact = fam.assignments.exact
    out = []
    pos = 0
    for r, prob, size in zip(rlist, fam.problems, fam.sizes):
        obs, dist = fam.observed[pos : pos + size], fam.draws[:, pos : pos + size]
        pos += size
        if not prob.is_linear or prob.interval == "none":
            if prob.is_linear:
                # raw linear statistics: drop the appended arm columns and finalize
                o, d = _without_arm_column(prob, obs, dist)
                if prob.finalize is not None:
                    o, d = prob.finalize(o, d)
            else:
                o, d = obs, dist
            p_ri, se = ri_pvalues(o, d, exact=exact)
            nan = [math.nan] * p_ri.size
            out.append(with_ri(r, p_ri, None if exact else se, ri_conf_low=nan, ri_conf_high=nan))
            continue
        if prob.interval == "anderson_rubin":
            # Columns of the (y, d) problem with the arm appended: [y, d, z_obs].
            est = float(r.tidy()["estimate"].iloc[0])
            p_ri, se = ri_pvalues(obs[:1], dist[:, :1], exact=exact)
            lo, hi = ri_confidence_interval(est, dist[:, 0], dist[:, 1], exact=exact, level=level,
                                            a_obs=obs[0], c_obs=obs[1])
            out.append(with_ri(r, p_ri, None if exact else se, ri_conf_low=[lo], ri_conf_high=[hi]))
            continue
        stats_a, stats_c, obs_a, obs_c, single = [], [], [], [], []
        off = 0
        for p in prob.linear:
            k = p.n_outcomes
            width = len(p.coef) * (k + 1)
            block = dist[:, off : off + width].reshape(-1, len(p.coef), k + 1)
            oblock = obs[off : off + width].reshape(len(p.coef), k + 1)
            off += width
            stats_a.append(block[:, :, :k].reshape(block.shape[0], -1))
            stats_c.append(np.repeat(block[:, :, k], k, axis=1))
            obs_a.append(oblock[:, :k].ravel())
            obs_c.append(np.repeat(oblock[:, k], k))
            single.append(np.full(len(p.coef) * k, len(p.coef) == 1))
        a, c = np.concatenate(stats_a, axis=1), np.concatenate(stats_c, axis=1)
        oa, oc = np.concatenate(obs_a), np.concatenate(obs_c)
        one = np.concatenate(single)
        if prob.reproduces:
            _check_reproduces([r], oa)
        p_ri, se = ri_pvalues(oa, a, exact=exact)
        lo_all, hi_all = [], []
        for i in range(oa.size):
            if one[i] and np.isclose(oc[i], 1.0, atol=1e-8):
                lo, hi = ri_confidence_interval(oa[i], a[:, i], c[:, i], exact=exact, level=level)
            else:
                lo, hi = math.nan, math.nan
            lo_all.append(lo)
            hi_all.append(hi)
        out.append(with_ri(r, p_ri, None if exact else se, ri_conf_low=lo_all, ri_conf_high=hi_all))
    return back(out)


def _without_arm_column(prob: RandomizationProblem, obs: np.ndarray, dist: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    keep: list[int] = []
    off = 0
    for p in prob.linear:
        k = p.n_outcomes
        for ci in range(len(p.coef)):
            keep.extend(off + ci * (k + 1) + np.arange(k))
        off += len(p.coef) * (k + 1)
    idx = np.asarray(keep, dtype=np.int64)
    return obs[idx].copy(), dist[:, idx].copy()


def randomization_pretest(
    study: Any, result: Any, *, n_permutations: int = 10_000, seed: int = 0
) -> Any:
    r"""Randomization p-value of the pre-period placebo test of an ``itt_by_period`` result.

    Before randomization the assignment cannot have had an effect, so the sharp null
    holds for the pre-period outcomes by design. The statistic is the Wald form of the
    result's pre-period test with its observed covariance,
    :math:`W(z) = \hat\tau_{pre}(z)'\,\hat V_{pre}^{+}\,\hat\tau_{pre}(z)`, computed for
    every re-drawn assignment from the per-period estimates;
    :math:`p = (1 + \#\{b: W_b \ge W_{obs}\})/(1 + B)` (exact proportion under
    enumeration).

    Returns
    -------
    PretestResult
        ``ks`` (pre-period event times), ``statistic`` (:math:`W_{obs}`),
        ``ri_p_value``, ``ri_se``, ``n_draws``, ``exact``, and one tidy row.
    """
    from ips_impact.results.effect import PretestResult

    _check_options(n_permutations, seed)
    if getattr(result, "spec", {}).get("estimator") != "itt_by_period":
        raise EstimationError(
            "the pre-period placebo test belongs to itt_by_period results",
            fix="pass the result of itt_by_period(study, outcome, periods=...) "
            "with periods before 0",
        )
    ks = np.array([int(e.horizon) for e in result.effects])
    pre = np.flatnonzero(ks < 0)
    if pre.size == 0:
        raise EstimationError(
            "the result has no pre-period (k < 0) estimate",
            fix="include event times before randomization in periods, e.g. periods=range(-4, 9)",
        )
    fam = _family(study, [result], n_permutations, seed)
    _check_reproduces([result], fam.observed, fam.checked)
    v = np.asarray(result.vcov, dtype=float)[np.ix_(pre, pre)]
    m = np.linalg.pinv(v)
    t_obs = fam.observed[pre]
    w_obs = float(t_obs @ m @ t_obs)
    d = fam.draws[:, pre]
    w = np.einsum("bi,ij,bj->b", d, m, d)
    p, se = ri_pvalues(np.array([w_obs]), w[:, None], exact=fam.assignments.exact)
    effects = [result.effects[i] for i in pre]
    return PretestResult(
        outcome=str(result.outcome), ks=tuple(int(k) for k in ks[pre]), statistic=w_obs,
        ri_p_value=float(p[0]), ri_se=None if fam.assignments.exact else float(se[0]),
        n_draws=fam.assignments.n_draws, exact=fam.assignments.exact,
        nobs=max(int(e.nobs) for e in effects), n_treated=max(int(e.n_treated) for e in effects),
        n_control=max(int(e.n_control) for e in effects),
        spec={"estimator": "randomization_pretest", "n_permutations": n_permutations, "seed": seed,
              "of": "itt_by_period", "outcome": str(result.outcome)},
    )
