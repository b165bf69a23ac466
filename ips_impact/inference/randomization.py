"""Randomization inference: re-draw the assignment, recompute every statistic at once.

Under the sharp null hypothesis of no effect for anyone, :math:`Y_i(1) = Y_i(0)`, the
observed outcomes do not depend on the assignment, so the distribution of any
statistic :math:`T(z)` over the assignments :math:`z` the design could have drawn is
known exactly. The randomization p-value of :math:`T_{obs} = T(z_{obs})` is

* exact enumeration (when the design has at most ``n_permutations`` distinct
  assignments :math:`z_1..z_N`):
  :math:`p = \\#\\{b : |T(z_b)| \\ge |T_{obs}|\\} / N` (the observed assignment is one
  of the :math:`z_b`);
* Monte Carlo (B draws with replacement):
  :math:`p = (1 + \\#\\{b : |T(z_b)| \\ge |T_{obs}|\\}) / (1 + B)`.
  Counting the observed assignment as one of the draws makes the test exact at every
  level, :math:`P(p \\le \\alpha) \\le \\alpha` for any B (Phipson & Smyth 2010),
  at the price of a slight conservativeness of order 1/B. Its Monte Carlo standard
  error is :math:`\\sqrt{\\hat p (1 - \\hat p) / B}`.

Comparisons use a tolerance of 1e-9 times the scale of the statistic (the largest
:math:`|T|`) so that draws reproducing the observed statistic up to floating-point
rounding count as ties (as they must); a draw whose
statistic is undefined (singular design) counts as at least as extreme (conservative).

The engine
----------
Every statistic handled here is a coefficient of a linear regression whose regressors
of interest depend linearly on the assignment,

.. math:: y_r = \\sum_j \\beta_j \\, z_{p(r)} v_{rj} + w_r'\\gamma + e_r ,

where row :math:`r` (a person, a person-period of a stacked panel, or a household
member) follows the assignment :math:`z_{p(r)}` of randomized person :math:`p(r)`,
:math:`v_{r0} = 1` (difference in means, ANCOVA) and, for Lin (2013), :math:`v_{rj}`
are the centred covariates, and :math:`W` holds the nuisance regressors (intercept,
strata, covariates, period effects) that do not depend on :math:`z`. With
:math:`Z(z)` the matrix of the :math:`z_{p(r)} v_{rj}`, :math:`Q` an orthonormal
basis of :math:`W` and :math:`\\tilde y = M_W y = y - Q Q'y` (computed once),

.. math:: \\hat\\beta(z) = [Z'Z - (Q'Z)'(Q'Z)]^{-1} Z'\\tilde y .

Because :math:`z_i \\in \\{0, 1\\}`, every block is linear in :math:`z`:
:math:`(Z'Z)_{jk} = \\sum_i z_i \\sum_{r \\in i} v_{rj} v_{rk}`,
:math:`(Q'Z)_{\\cdot j} = \\sum_i z_i \\sum_{r \\in i} q_r v_{rj}` and
:math:`(Z'\\tilde y)_{jk} = \\sum_i z_i \\sum_{r \\in i} v_{rj} \\tilde y_{rk}`. The
per-person sums form one matrix :math:`A` (persons × columns), so that all draws and
all outcomes are obtained from ONE matrix product :math:`P A` (P: draws × persons),
followed, when there is more than one :math:`v`, by a batch of small solves
(``numpy.linalg.solve`` on stacked matrices). For ANCOVA this is
:math:`\\hat\\beta(z) = z'M_W y / z'M_W z`. Draws are processed in chunks so that
memory stays bounded; problems that share rows and regressors (the horizons of one
outcome, outcomes with the same sample) are residualised once and merged.

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
interaction or Wald form.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ips_impact.errors import DesignError, EstimationError
from ips_impact.inference.permutation import AssignmentMatrix, assignment_matrix

__all__ = [
    "LinearProblem",
    "RandomizationDistribution",
    "linear_statistics",
    "randomization_distribution",
    "ri_pvalues",
    "ri_confidence_interval",
    "randomization_inference",
    "randomization_ci",
    "family_distribution",
    "randomization_pretest",
    "RandomizationNotAvailableError",
]

#: Scratch memory allowed for one chunk of draws (bytes); the peak stays well below 2 GB.
DEFAULT_MEMORY = 256 * 2**20
#: Relative tolerance under which |T_b| and |T_obs| are treated as tied.
TIE_RTOL = 1e-9


# ------------------------------------------------------------------------- problem
@dataclass(frozen=True, eq=False)
class LinearProblem:
    """A family of regression coefficients that depend on the assignment.

    Parameters
    ----------
    y : array (n_rows, K)
        Outcomes (K columns share rows, nuisance regressors and design).
    row_person : int array (n_rows,)
        Position (in the design) of the randomized person whose assignment row
        ``r`` follows: the person itself, or the index person of a household member.
    nuisance : array (n_rows, p) or None
        Regressors not depending on the assignment (intercept, strata, covariates,
        period effects…). ``None``: intercept only.
    interact : array (n_rows, J) or None
        :math:`v_{rj}`: the regressors of interest are :math:`z_{p(r)} v_{rj}`.
        ``None``: a single column of ones (the arm itself).
    coef : sequence of int
        Which of the J coefficients are statistics (default: the first).
    absorb : int array (n_rows,) or None
        Fixed effects absorbed by within-group demeaning (e.g. person effects of a
        difference in differences), in addition to ``nuisance``. Each group must lie
        within one randomized person (its rows follow the same assignment), so that
        :math:`Z'M_A Z` stays linear in the assignment:
        :math:`Z'M_A Z = \\sum_i z_i [\\sum_{r \\in i} v_r v_r' - \\sum_{g \\in i}
        (\\sum_{r \\in g} v_r)(\\sum_{r \\in g} v_r)'/n_g]`.
    """

    y: np.ndarray
    row_person: np.ndarray
    nuisance: np.ndarray | None = None
    interact: np.ndarray | None = None
    coef: tuple[int, ...] = (0,)
    absorb: np.ndarray | None = None

    def __post_init__(self) -> None:
        y = np.asarray(self.y, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        n_rows = y.shape[0]
        rp = np.asarray(self.row_person)
        if rp.shape != (n_rows,) or not np.issubdtype(rp.dtype, np.integer):
            raise EstimationError(
                f"row_person must be an integer array with one entry per row ({n_rows})",
                fix="map every row to the position of its randomized person",
            )
        w = None if self.nuisance is None else np.asarray(self.nuisance, dtype=np.float64)
        if w is None:
            w = np.ones((n_rows, 1))
        if w.ndim == 1:
            w = w[:, None]
        v = None if self.interact is None else np.asarray(self.interact, dtype=np.float64)
        if v is None:
            v = np.ones((n_rows, 1))
        if v.ndim == 1:
            v = v[:, None]
        for name, arr in (("nuisance", w), ("interact", v)):
            if arr.shape[0] != n_rows:
                raise EstimationError(
                    f"{name} has {arr.shape[0]} rows and y has {n_rows}",
                    fix="pass the rows of the estimation sample, in the same order",
                )
        for name, arr in (("y", y), ("nuisance", w), ("interact", v)):
            if not np.all(np.isfinite(arr)):
                raise EstimationError(
                    f"{name} holds {int((~np.isfinite(arr)).sum())} missing or infinite values",
                    fix="drop incomplete rows (the estimation sample) before randomization inference",
                )
        coef = tuple(int(c) for c in np.atleast_1d(self.coef))
        if any(c < 0 or c >= v.shape[1] for c in coef):
            raise EstimationError(
                f"coef {coef} out of range for {v.shape[1]} interacted regressor(s)",
                fix="choose coef among 0..J-1",
            )
        if self.absorb is not None:
            _, groups = np.unique(np.asarray(self.absorb), return_inverse=True)
            if groups.shape != (n_rows,):
                raise EstimationError(
                    f"absorb has {groups.size} values and y has {n_rows} rows",
                    fix="pass one fixed-effect group per row",
                )
            first_person = np.full(int(groups.max()) + 1 if n_rows else 0, -1, dtype=np.int64)
            first_person[groups] = rp
            if np.any(first_person[groups] != rp):
                raise EstimationError(
                    "an absorbed fixed-effect group spans several randomized persons",
                    fix="absorb only effects nested within persons (e.g. person fixed effects); "
                    "put other effects in nuisance",
                )
            object.__setattr__(self, "absorb", groups.astype(np.int64))
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "row_person", rp.astype(np.int64))
        object.__setattr__(self, "nuisance", w)
        object.__setattr__(self, "interact", v)
        object.__setattr__(self, "coef", coef)

    @property
    def n_outcomes(self) -> int:
        return int(self.y.shape[1])

    @property
    def n_statistics(self) -> int:
        """Number of statistics: len(coef) x K, ordered coef-major."""
        return len(self.coef) * self.n_outcomes


def _orthonormal_basis(w: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of ``w``, rank-revealing, so that
    collinear nuisance columns (e.g. intercept + all stratum dummies) are harmless.

    Eigen-decomposition of the Gram matrix of the unit-scaled columns (p x p, cheap),
    directions with eigenvalue below 1e-11 of the largest dropped, then a second
    orthonormalisation pass (as in CholeskyQR2) to restore orthogonality to rounding.
    Much cheaper than an SVD of the tall matrix, which matters with hundreds of
    statistics each with its own sample.
    """
    n_rows = w.shape[0]
    norms = np.sqrt(np.einsum("ij,ij->j", w, w))
    w = w[:, norms > 0] / norms[norms > 0]
    if w.shape[1] == 0:
        return np.zeros((n_rows, 0))
    lam, vec = np.linalg.eigh(w.T @ w)
    keep = lam > lam[-1] * 1e-11
    q = w @ (vec[:, keep] / np.sqrt(lam[keep]))
    lam2, vec2 = np.linalg.eigh(q.T @ q)
    return q @ (vec2 / np.sqrt(lam2))


@dataclass(frozen=True, eq=False)
class _Prepared:
    """Per-person sums A (n_persons x width) and the layout of its columns."""

    a: np.ndarray
    n_v: int  # J
    n_q: int  # r
    n_y: int  # K
    coef: tuple[int, ...]


def _prepare(problem: LinearProblem, n_persons: int) -> _Prepared:
    if problem.row_person.size and (
        problem.row_person.min() < 0 or problem.row_person.max() >= n_persons
    ):
        raise EstimationError(
            f"row_person refers to persons outside 0..{n_persons - 1}",
            fix="map rows to positions in study.persons",
        )
    v = problem.interact
    n_rows, n_v = v.shape
    y, w = problem.y, problem.nuisance
    if problem.absorb is not None:
        # Within-group demeaning (M_A); the nuisance is then partialled out of the
        # demeaned data: M_W = M_A - Q Q' with Q a basis of M_A N.
        g = problem.absorb
        n_g = np.bincount(g).astype(float)
        g_t = sparse.csr_matrix((np.ones(n_rows), (g, np.arange(n_rows))), shape=(n_g.size, n_rows))
        y = y - (np.asarray(g_t @ y) / n_g[:, None])[g]
        w = w - (np.asarray(g_t @ w) / n_g[:, None])[g]
    q = _orthonormal_basis(w)
    y_res = y - q @ (q.T @ y)
    # Columns, in order: v_j * y_res (J*K), v_j * q (J*r), v_j * v_k for j <= k.
    parts = [v[:, j : j + 1] * y_res for j in range(n_v)]
    parts += [v[:, j : j + 1] * q for j in range(n_v)]
    ju, ku = np.triu_indices(n_v)
    parts.append(v[:, ju] * v[:, ku])
    rows = np.concatenate(parts, axis=1)
    # S' (persons x rows) incidence: per-person sums over the rows that follow them.
    s_t = sparse.csr_matrix(
        (np.ones(n_rows), (problem.row_person, np.arange(n_rows))), shape=(n_persons, n_rows)
    )
    a = np.asarray(s_t @ rows)
    if problem.absorb is not None:
        # Z'M_A Z: subtract, per person, sum over its groups of (sum_g v_j)(sum_g v_k)/n_g.
        gv = np.asarray(g_t @ v)
        corr = gv[:, ju] * gv[:, ku] / n_g[:, None]
        g_person = np.zeros(n_g.size, dtype=np.int64)
        g_person[g] = problem.row_person
        p_t = sparse.csr_matrix((np.ones(n_g.size), (g_person, np.arange(n_g.size))),
                                shape=(n_persons, n_g.size))
        a[:, a.shape[1] - ju.size :] -= np.asarray(p_t @ corr)
    return _Prepared(a=a, n_v=n_v, n_q=q.shape[1], n_y=problem.n_outcomes, coef=problem.coef)


def _evaluate(prep: _Prepared, x: np.ndarray) -> np.ndarray:
    """Statistics (c, len(coef) * K) from the products x = P_chunk @ A."""
    c = x.shape[0]
    j, r, k = prep.n_v, prep.n_q, prep.n_y
    zy = x[:, : j * k].reshape(c, j, k)
    qz = x[:, j * k : j * k + j * r].reshape(c, j, r)
    tri = x[:, j * k + j * r :]
    with np.errstate(divide="ignore", invalid="ignore"):
        if j == 1:
            gram = tri[:, 0] - np.einsum("cjr,cjr->c", qz, qz)
            # A draw without variation in the (residualised) arm has no estimate.
            gram = np.where(gram > 1e-12 * np.maximum(tri[:, 0], 1.0), gram, np.nan)
            beta = zy[:, 0, :] / gram[:, None]
            return beta
        zz = np.empty((c, j, j))
        ju, ku = np.triu_indices(j)
        zz[:, ju, ku] = tri
        zz[:, ku, ju] = tri
        gram = zz - np.einsum("cjr,ckr->cjk", qz, qz)
        beta = np.full((c, j, k), np.nan)
        # Singular draws (e.g. a subgroup with nobody treated) are left as NaN.
        cond = np.linalg.cond(gram)
        ok = np.isfinite(cond) & (cond < 1e12)
        if ok.any():
            beta[ok] = np.linalg.solve(gram[ok], zy[ok])
    return beta[:, list(prep.coef), :].reshape(c, -1)


def _chunk_size(n_persons: int, width: int, n_draws: int, memory: int) -> int:
    # float64 copy of the draws + products + solve scratch (~3x products).
    per_draw = 8 * (n_persons + 4 * width)
    return int(max(1, min(n_draws, memory // max(per_draw, 1))))


def linear_statistics(
    problems: LinearProblem | Sequence[LinearProblem],
    draws: np.ndarray,
    *,
    memory: int = DEFAULT_MEMORY,
) -> list[np.ndarray]:
    """Coefficients of every problem for every assignment in ``draws``.

    Parameters
    ----------
    problems : LinearProblem or sequence of them
        Statistics to compute (see :class:`LinearProblem`).
    draws : int array (B, n_persons)
        Assignments (rows of 0/1), shared by every problem.
    memory : int
        Bytes of scratch memory per chunk of draws.

    Returns
    -------
    list of numpy.ndarray, one per problem, each (B, len(coef) * K):
        :math:`\\hat\\beta_j(z_b)` for outcome k at column ``j_index * K + k``.
    """
    single = isinstance(problems, LinearProblem)
    plist = [problems] if single else list(problems)
    draws = np.asarray(draws)
    if draws.ndim != 2:
        raise DesignError("draws must be a 2-D array (draws x persons)", fix="stack assignments as rows")
    n_draws, n_persons = draws.shape
    preps = [_prepare(p, n_persons) for p in plist]
    return _statistics_prepared(preps, draws, memory=memory)


def _merge_problems(plist: list[LinearProblem]) -> tuple[list[LinearProblem], list[tuple[int, np.ndarray]]]:
    """Merge problems that differ only in their outcomes (same rows, nuisance,
    interactions, absorbed effects and coefficients) into one problem with more
    outcome columns, so that their residualisation and the assignment-dependent
    blocks are computed once (e.g. the horizons of ``itt_by_period`` with the same
    sample). Returns the merged problems and, for each input problem, (merged index,
    columns of the merged statistics that are its statistics, in its order).
    """
    import hashlib

    def key(p: LinearProblem) -> tuple:
        h = hashlib.sha1()
        for arr in (p.row_person, p.nuisance, p.interact, p.absorb):
            if arr is None:
                h.update(b"none")
            else:
                a = np.ascontiguousarray(arr)
                h.update(str(a.shape).encode())
                h.update(a.tobytes())
        return (h.hexdigest(), p.coef)

    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(plist):
        groups.setdefault(key(p), []).append(i)
    merged: list[LinearProblem] = []
    where: list[tuple[int, np.ndarray]] = [(0, np.zeros(0, dtype=np.int64))] * len(plist)
    for members in groups.values():
        first = plist[members[0]]
        k_tot = sum(plist[i].n_outcomes for i in members)
        offset = 0
        for i in members:
            k_i = plist[i].n_outcomes
            cols = np.concatenate([ci * k_tot + offset + np.arange(k_i) for ci in range(len(first.coef))])
            where[i] = (len(merged), cols)
            offset += k_i
        y = first.y if len(members) == 1 else np.concatenate([plist[i].y for i in members], axis=1)
        merged.append(dataclasses.replace(first, y=y) if len(members) > 1 else first)
    return merged, where


def _statistics_prepared(preps: list[_Prepared], draws: np.ndarray, *, memory: int = DEFAULT_MEMORY) -> list[np.ndarray]:
    """:func:`linear_statistics` for problems already prepared (residualised once)."""
    n_draws, n_persons = draws.shape
    # One product for every problem: concatenate their per-person sums.
    a_all = np.concatenate([p.a for p in preps], axis=1)
    bounds = np.cumsum([0] + [p.a.shape[1] for p in preps])
    out = [np.empty((n_draws, p.n_y * len(p.coef))) for p in preps]
    step = _chunk_size(n_persons, a_all.shape[1], n_draws, memory)
    for start in range(0, n_draws, step):
        stop = min(start + step, n_draws)
        x = draws[start:stop].astype(np.float64) @ a_all
        for i, prep in enumerate(preps):
            out[i][start:stop] = _evaluate(prep, x[:, bounds[i] : bounds[i + 1]])
    return out


# ----------------------------------------------------------------------- p-values
def _n_extreme(t_obs: np.ndarray, t_draws: np.ndarray) -> np.ndarray:
    """#{b : |T_b| >= |T_obs|} per column, ties within TIE_RTOL, NaN draws counted."""
    thr = np.abs(t_obs) - _tie_tolerance(t_obs, t_draws)
    with np.errstate(invalid="ignore"):
        hit = (np.abs(t_draws) >= thr) | np.isnan(t_draws)
    return hit.sum(axis=0)


def _tie_tolerance(t_obs: np.ndarray, t_draws: np.ndarray) -> np.ndarray:
    """TIE_RTOL times the scale of each statistic (largest |T| seen), so that an
    observed statistic that is zero up to rounding ties with draws that are zero too.
    """
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(t_draws), np.abs(t_draws), 0.0)
    scale = np.maximum(np.nan_to_num(np.abs(t_obs)), finite.max(axis=0) if finite.size else 0.0)
    return TIE_RTOL * scale


def ri_pvalues(
    t_obs: np.ndarray, t_draws: np.ndarray, *, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided randomization p-values and their Monte Carlo standard errors.

    .. math::
        p = \\frac{\\#\\{b: |T_b| \\ge |T_{obs}|\\}}{N} \\text{ (exact)}, \\qquad
        p = \\frac{1 + \\#\\{b: |T_b| \\ge |T_{obs}|\\}}{1 + B} \\text{ (Monte Carlo)},
        \\qquad se = \\sqrt{p(1-p)/B} \\text{ (0 when exact)}.

    Parameters
    ----------
    t_obs : array (m,)
        Observed statistics.
    t_draws : array (B, m)
        Statistics under the re-drawn assignments.
    exact : bool
        ``t_draws`` covers every distinct assignment once (observed included).

    Returns
    -------
    (p, se) : arrays (m,)
    """
    t_obs = np.atleast_1d(np.asarray(t_obs, dtype=float))
    t_draws = np.asarray(t_draws, dtype=float).reshape(-1, t_obs.size)
    b = t_draws.shape[0]
    count = _n_extreme(t_obs, t_draws)
    if exact:
        p = count / b
        se = np.zeros_like(p)
    else:
        p = (1.0 + count) / (1.0 + b)
        se = np.sqrt(p * (1.0 - p) / b)
    p = np.where(np.isnan(t_obs), np.nan, p)
    return p, se


def ri_confidence_interval(
    estimate: float,
    a: np.ndarray,
    c: np.ndarray,
    *,
    exact: bool,
    level: float = 0.95,
    a_obs: float | None = None,
    c_obs: float = 1.0,
) -> tuple[float, float]:
    """Randomization confidence interval by test inversion, constant additive effect.

    Under :math:`H_\\tau: Y_i(1) = Y_i(0) + \\tau` the control outcomes are
    :math:`y - \\tau z_{obs}` and, the estimator being linear in y and reproducing
    :math:`\\tau` when y = :math:`\\tau z`, the statistic under draw b is
    :math:`\\hat\\beta(z_b; y - \\tau z_{obs}) = a_b - \\tau c_b` with
    :math:`a_b = \\hat\\beta(z_b; y)` and :math:`c_b = \\hat\\beta(z_b; z_{obs})`. The
    test of :math:`H_\\tau` compares :math:`|a_b - \\tau c_b|` with
    :math:`|\\hat\\beta - \\tau|`; the interval is the set of :math:`\\tau` with
    :math:`p(\\tau) > 1 - level`. :math:`p(\\tau)` is a step function whose steps are
    at the 2B roots of :math:`(a_b - \\tau c_b)^2 = (\\hat\\beta - \\tau)^2`, so the set
    is found exactly (sorted roots, O(B log B)); its ends are roots. When the accepted
    set has holes, its hull is returned (conservative); a set unbounded on one side
    gives an infinite end.

    With ``a_obs``/``c_obs`` the observed statistic is :math:`a_{obs} - \\tau c_{obs}`
    instead of :math:`\\hat\\beta - \\tau`: for the LATE, a and c are the reduced-form
    and first-stage coefficients of y and of take-up d, the null is
    :math:`Y_i(d) = Y_i(0) + \\tau d` and the test uses the reduced form of
    :math:`y - \\tau d` (Imbens & Rosenbaum 2005; an Anderson–Rubin-type interval,
    valid with a weak instrument, possibly unbounded).
    """
    a = np.asarray(a, dtype=float)
    c = np.asarray(c, dtype=float)
    # 1 - 0.9 is 0.09999999999999998 in binary: round so that p = 0.1 is rejected at 10%.
    alpha = round(1.0 - float(level), 12)
    ok = np.isfinite(a) & np.isfinite(c)
    if not np.isfinite(estimate):
        return math.nan, math.nan
    b = a.size
    a0 = float(estimate) if a_obs is None else float(a_obs)
    c0 = float(c_obs)

    # Draw b is at least as extreme as the observation where
    # q_b(tau) = (a_b - tau c_b)^2 - (a0 - tau c0)^2 >= 0. q_b factorises into two
    # linear factors, so its roots are real: r = (a_b - a0)/(c_b - c0) and
    # (a_b + a0)/(c_b + c0); p(tau) is a step function changing only at these 2B roots.
    # Counting, at every candidate tau (roots and midpoints), how many q_b >= 0 with
    # sorted roots gives the exact accepted set in O(B log B).
    aa, cc = a[ok], c[ok]
    n_bad = int((~ok).sum())  # undefined draws count as extreme for every tau
    lead = cc**2 - c0**2
    lin = -2.0 * (aa * cc - a0 * c0)
    const = aa**2 - a0**2
    tiny = 1e-12 * max(1.0, float(np.max(np.abs(cc), initial=0.0)) ** 2, c0**2)
    quad = np.abs(lead) > tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        r_a = (aa - a0) / (cc - c0)
        r_b = (aa + a0) / (cc + c0)
    r1, r2 = np.minimum(r_a, r_b)[quad], np.maximum(r_a, r_b)[quad]
    up = lead[quad] > 0  # q >= 0 outside (r1, r2); down: inside [r1, r2]
    double = up & (r1 == r2)  # q = lead (tau - r)^2 >= 0 everywhere
    r1u, r2u = np.sort(r1[up & ~double]), np.sort(r2[up & ~double])
    r1d, r2d = np.sort(r1[~up]), np.sort(r2[~up])
    # Degenerate draws (c_b = +-c0): q is linear, L tau + K.
    L, K = lin[~quad], const[~quad]
    scale_lk = np.maximum(np.abs(L), 1.0)
    flat = np.abs(L) <= 1e-12 * scale_lk
    always = int(np.sum(flat & (K >= -1e-12 * np.maximum(np.abs(K), 1.0)))) + int(double.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = -K / L
    x_ge, x_le = np.sort(x0[~flat & (L > 0)]), np.sort(x0[~flat & (L < 0)])

    def count(tau: np.ndarray) -> np.ndarray:
        inside_u = np.searchsorted(r1u, tau, "left") - np.searchsorted(r2u, tau, "right")
        inside_d = np.searchsorted(r1d, tau, "right") - np.searchsorted(r2d, tau, "left")
        n_up = r1u.size - inside_u  # outside the open interval (r1, r2)
        lin_ge = np.searchsorted(x_ge, tau, "right")  # tau >= x0
        lin_le = x_le.size - np.searchsorted(x_le, tau, "left")  # tau <= x0
        return n_up + inside_d + lin_ge + lin_le + always + n_bad

    roots = np.concatenate([r1, r2, x_ge, x_le])
    roots = np.unique(roots[np.isfinite(roots)])
    if roots.size == 0:
        roots = np.array([float(estimate)])
    # p is constant on the open intervals between consecutive roots (and beyond the
    # extreme roots); at a root itself it may be higher by one draw (a tie). The
    # interval is the closure of the accepted open intervals, so isolated tie points
    # do not count.
    span = max(1.0, float(np.ptp(roots)))
    edges = np.concatenate([[-math.inf], roots, [math.inf]])
    mids = np.concatenate([[roots[0] - span], 0.5 * (roots[1:] + roots[:-1]), [roots[-1] + span]])
    cnt = count(mids)
    p = cnt / b if exact else (1.0 + cnt) / (1.0 + b)
    acc = np.flatnonzero(p > alpha)
    if acc.size == 0:
        return math.nan, math.nan
    return float(edges[acc[0]]), float(edges[acc[-1] + 1])


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
    return RandomizationDistribution(observed=obs, draws=dist, exact=assignments.exact, p_value=p, se=se)


# ------------------------------------------------------------ public entry point
#: Where the randomization hook of each estimator lives: ``spec["estimator"]`` ->
#: module exposing ``randomization_problem(study, result)`` returning a
#: :class:`LinearProblem` (or a sequence of them) whose statistics, concatenated,
#: are the tidy rows of the result, in order.
_HOOK_MODULES: dict[str, str] = {
    "itt": "ips_impact.estimators.itt",
    "itt_by_period": "ips_impact.estimators.dynamic",
    "did": "ips_impact.estimators.did",
    "spillover": "ips_impact.estimators.spillover",
    "household_total": "ips_impact.estimators.spillover",
    "heterogeneity": "ips_impact.estimators.heterogeneity",
    "late": "ips_impact.estimators.iv",
    "time_to_event": "ips_impact.estimators.survival",
    "spell_survival": "ips_impact.estimators.survival",
    "competing_risks": "ips_impact.estimators.survival",
}


class RandomizationNotAvailableError(EstimationError):
    """Randomization inference is not (yet) implemented for this kind of result."""


#: Keys of the spec of an :func:`~ips_impact.estimators.itt.itt` result (which carries
#: no ``"estimator"`` entry): recognised by these.
_ITT_SPEC_KEYS = frozenset({"horizon", "window", "aggregate", "covariates", "adjustment",
                            "strata", "cov_type", "cluster", "level", "subset"})


def _estimator_of(result: Any) -> str:
    spec = getattr(result, "spec", None) or {}
    est = spec.get("estimator") if hasattr(spec, "get") else None
    if est is None and _ITT_SPEC_KEYS <= set(spec):
        est = "itt_by_period" if hasattr(result, "effects") and "periods" in spec else "itt"
    if est is None:
        raise RandomizationNotAvailableError(
            f"a {type(result).__name__} without spec['estimator'] cannot be re-randomized",
            fix="pass results returned by the estimators of ips_impact",
        )
    return str(est)


def _itt_problems(study: Any, result: Any) -> list[LinearProblem]:
    """ITT (any adjustment; horizon, window or stacked rows): from ``itt_components``.

    The regression is :math:`y = \\alpha + \\tau z + N\\gamma + (z \\odot I)\\delta`: the
    nuisance is N (intercept first), the arm multiplies ``[1, I]`` and τ is the first
    coefficient. Stacked rows follow their person (``person_index``). For a categorical
    outcome, one problem per level (the tidy rows' order).
    """
    from ips_impact.estimators.itt import itt_components

    levels = getattr(result, "levels", None)
    comps = ([itt_components(study, result)] if levels is None
             else [itt_components(study, result, level=lv) for lv in levels])
    out = []
    for c in comps:
        inter = np.column_stack([np.ones(len(c.y)), np.asarray(c.interact, dtype=float).reshape(len(c.y), -1)])
        out.append(LinearProblem(y=np.asarray(c.y, dtype=float), row_person=np.asarray(c.person_index),
                                 nuisance=np.asarray(c.nuisance, dtype=float), interact=inter, coef=(0,)))
    return out


def _itt_by_period_problems(study: Any, result: Any) -> list[LinearProblem]:
    """One ITT problem per event time (each effect of an ``itt_by_period`` result is
    the ``itt`` at that horizon, with its own sample).
    """
    return [p for effect in result.effects for p in _itt_problems(study, effect)]


def _did_problems(study: Any, result: Any) -> list[LinearProblem]:
    """Difference in differences with person and period effects: rows are the
    person-periods of the pre and post windows, the arm multiplies the post indicator,
    person effects are absorbed, period effects (event or calendar time) are nuisance.
    The sample is rebuilt from the spec exactly as :func:`~ips_impact.estimators.did.did`
    builds it (the estimate is checked against the result).
    """
    from ips_impact.estimators._data import person_mask

    spec = result.spec
    (a, b), (c, d) = spec["pre"], spec["post"]
    ks = np.r_[np.arange(a, b + 1), np.arange(c, d + 1)]
    is_post = np.r_[np.zeros(b - a + 1, bool), np.ones(d - c + 1, bool)]
    y_mat = study.outcome_matrix(spec["outcome"], ks)
    mask = person_mask(study.persons, spec.get("subset"))
    pi, ti = np.nonzero(np.isfinite(y_mat) & mask[:, None])
    if spec.get("time", "k") == "k":
        t_index = ks[ti]
    else:
        from ips_impact.io.periods import period_ordinals

        t_index = period_ordinals(study.persons["randomization_period"])[pi] + ks[ti]
    _, t_code = np.unique(t_index, return_inverse=True)
    periods = np.zeros((pi.size, int(t_code.max()) + 1))
    periods[np.arange(pi.size), t_code] = 1.0
    return [LinearProblem(y=y_mat[pi, ti], row_person=pi, nuisance=periods,
                          interact=is_post[ti].astype(float), absorb=pi)]


#: Randomization problems built here for estimators that expose arrays, not problems.
_BUILT_IN: dict[str, Any] = {
    "itt": _itt_problems,
    "itt_by_period": _itt_by_period_problems,
    "did": _did_problems,
}


def _problems_of(study: Any, result: Any) -> list[LinearProblem]:
    """The linear problems (statistics = tidy rows) behind one result."""
    import importlib

    est = _estimator_of(result)
    module_name = _HOOK_MODULES.get(est)
    hook = _BUILT_IN.get(est)
    if hook is None and module_name is not None:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        hook = getattr(module, "randomization_problem", None) if module is not None else None
    if hook is None:
        raise RandomizationNotAvailableError(
            f"RI for {est} not available yet",
            fix="use the model-based p-value of this result; randomization inference "
            f"supports results of: {', '.join(_available_estimators())}",
        )
    probs = hook(study, result)
    plist = [probs] if isinstance(probs, LinearProblem) else list(probs)
    n_stat = sum(p.n_statistics for p in plist)
    if n_stat != result.n_rows:
        raise EstimationError(
            f"the randomization problem of {est} has {n_stat} statistic(s) for "
            f"{result.n_rows} tidy row(s)",
            fix="report this as a bug of the estimator's randomization_problem",
        )
    return plist


def _available_estimators() -> list[str]:
    import importlib

    out = []
    for est, mod in _HOOK_MODULES.items():
        if est in _BUILT_IN or est in _CUSTOM:
            out.append(est)
            continue
        try:
            if hasattr(importlib.import_module(mod), "randomization_problem"):
                out.append(est)
        except ImportError:
            continue
    return out


def _check_options(n_permutations: Any, seed: Any, level: Any = 0.95) -> None:
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise EstimationError(
            f"n_permutations must be a positive integer; you passed {n_permutations!r}",
            fix="use e.g. n_permutations=10_000",
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EstimationError(
            f"seed must be a non-negative integer; you passed {seed!r}",
            fix="use e.g. seed=0 (the same seed gives the same p-values)",
        )
    if not isinstance(level, (float, int)) or not 0 < float(level) < 1:
        raise EstimationError(
            f"level must be strictly between 0 and 1; you passed {level!r}",
            fix="use e.g. level=0.95",
        )


@dataclass(frozen=True, eq=False)
class _Family:
    """Statistics of a list of results on one shared assignment matrix.

    ``problems[i]`` is the list of linear problems of result i (``None`` for a result
    whose statistics are computed by a custom function, e.g. survival); ``checked``
    flags the statistics whose observed value must reproduce the tidy estimate.
    """

    results: list[Any]
    problems: list[list[LinearProblem] | None]
    assignments: AssignmentMatrix
    observed: np.ndarray  # (m,)
    draws: np.ndarray  # (B, m)
    sizes: list[int]
    checked: np.ndarray  # (m,) bool


def _design_of(study: Any) -> Any:
    design = getattr(study, "design", None)
    if design is None or not hasattr(design, "arm"):
        raise DesignError(
            "the study has no randomization design",
            fix="pass the Study the results were fitted on",
        )
    return design


def _survival_statistics(
    study: Any, result: Any, arm: np.ndarray, draws: np.ndarray, *, chunk: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Log-rank chi-square, Cox log hazard ratio (arm-only model) and RMST difference
    under each assignment, from the survival module's vectorised
    ``randomization_statistics``; other tidy rows (survival or median difference) get
    NaN (not available). The observed statistics are recomputed the same way, so the
    comparison is like with like even when the reported Cox model had covariates.
    """
    from ips_impact.estimators.survival import randomization_statistics

    tidy = result.tidy()
    obs = randomization_statistics(study, result, arm[None, :])
    # a statistic named "term:outcome" (e.g. one Fine–Gray model per cause) wins over "term"
    terms = [f"{t}:{o}" if f"{t}:{o}" in obs.columns else t for t, o in zip(tidy["term"], tidy["outcome"])]
    parts = [randomization_statistics(study, result, draws[i : i + chunk])
             for i in range(0, draws.shape[0], chunk)]
    dist = pd.concat(parts, ignore_index=True)
    t_obs = np.array([float(obs[t].iloc[0]) if t in obs.columns else math.nan for t in terms])
    t_draws = np.column_stack([
        dist[t].to_numpy(dtype=float) if t in dist.columns else np.full(draws.shape[0], math.nan)
        for t in terms
    ])
    return t_obs, t_draws


def _late_problem(study: Any, result: Any) -> tuple[LinearProblem, float]:
    """Reduced form and first stage of a :func:`~ips_impact.estimators.iv.late` result
    as one problem with two outcomes (y, take-up d), built from the rows and design
    that ``late`` fitted (:func:`~ips_impact.estimators.iv.late_components`), so every
    option of ``late`` (subset, window sums, stacked rows, "lin") is re-drawn as fitted.
    Returns the problem and the LATE to reproduce.
    """
    from ips_impact.estimators.iv import late_components

    c = late_components(study, result)
    interact = np.ones((c.y.size, 1)) if c.interact is None or np.size(c.interact) == 0 else (
        np.column_stack([np.ones(c.y.size), c.interact]))
    prob = LinearProblem(y=np.column_stack([c.y, c.d]), row_person=np.asarray(c.person_index),
                         nuisance=np.asarray(c.nuisance), interact=interact, coef=(0,))
    return prob, float(result.estimate)


def _late_statistics(study: Any, result: Any, arm: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LATE: the statistic is the reduced-form (ITT) coefficient, whose randomization
    distribution tests the sharp null of no effect of take-up, :math:`Y_i(1) = Y_i(0)`
    (which, under the exclusion restriction, is the null LATE = 0); unlike the 2SLS
    ratio it stays well behaved with a weak first stage (Imbens & Rosenbaum 2005).
    """
    prob, late_hat = _late_problem(study, result)
    obs = linear_statistics(prob, arm[None, :])[0][0]
    if not np.isclose(obs[0] / obs[1], late_hat, rtol=1e-7, atol=1e-9 * (1 + abs(late_hat))):
        raise EstimationError(
            f"randomization inference does not reproduce the LATE ({obs[0] / obs[1]!r} vs {late_hat!r})",
            fix="report this as a bug: late() and its randomization problem disagree",
        )
    return obs[:1], linear_statistics(prob, draws)[0][:, :1]


#: Estimators whose statistics are not linear in the outcome: custom functions
#: ``(study, result, arm, draws) -> (observed (m,), draws (B, m))``.
_CUSTOM: dict[str, Any] = {"time_to_event": _survival_statistics, "competing_risks": _survival_statistics,
                           "late": _late_statistics}


def _heterogeneity_joint(result: Any, observed: np.ndarray, draws: np.ndarray) -> None:
    """Joint test of equal subgroup effects with more than two subgroups: the Wald
    form with the observed covariance, :math:`W(z) = (R\\hat\\tau(z))'(R\\hat V R')^{-1}
    (R\\hat\\tau(z))`, :math:`R` the contrasts with the first subgroup, evaluated on the
    subgroup-effect draws (in place: the last column, which the hook leaves NaN).
    """
    vcov = getattr(result, "vcov", None)
    g = observed.size - 1
    if vcov is None or g <= 2 or not np.isnan(observed[-1]):
        return
    v = np.asarray(vcov, dtype=float)[:g, :g]
    r = np.column_stack([-np.ones(g - 1), np.eye(g - 1)])
    m = np.linalg.pinv(r @ v @ r.T)
    d_obs = r @ observed[:g]
    observed[-1] = d_obs @ m @ d_obs
    d = draws[:, :g] @ r.T
    draws[:, -1] = np.einsum("bi,ij,bj->b", d, m, d)


def _family(study: Any, results: list[Any], n_permutations: int, seed: int,
            *, extra_arm_column: bool = False) -> _Family:
    design = _design_of(study)
    arm = np.asarray(design.arm, dtype=np.int8)
    estimators = [_estimator_of(r) for r in results]
    problems: list[list[LinearProblem] | None] = [
        None if est in _CUSTOM else _problems_of(study, r) for est, r in zip(estimators, results)
    ]
    am = assignment_matrix(arm, design.stratum, n_permutations, seed)
    flat = [p for ps in problems if ps is not None for p in ps]
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
    for est, r, ps in zip(estimators, results, problems):
        if ps is None:
            o, d = _CUSTOM[est](study, r, arm, am.draws)
            chk = np.zeros(o.size, dtype=bool)
        else:
            o = np.concatenate([x[0] for x in obs_lin[j : j + len(ps)]])
            d = np.concatenate(dist_lin[j : j + len(ps)], axis=1)
            j += len(ps)
            chk = np.ones(o.size, dtype=bool)
            if est == "heterogeneity" and not extra_arm_column:
                o, d = o.copy(), d.copy()
                _heterogeneity_joint(r, o, d)
        obs_parts.append(o)
        dist_parts.append(d)
        sizes.append(o.size)
        checked.append(chk)
    return _Family(
        results=results, problems=problems, assignments=am,
        observed=np.concatenate(obs_parts) if obs_parts else np.zeros(0),
        draws=np.concatenate(dist_parts, axis=1) if dist_parts else np.zeros((am.n_draws, 0)),
        sizes=sizes, checked=np.concatenate(checked) if checked else np.zeros(0, dtype=bool),
    )


def _check_reproduces(results: list[Any], observed: np.ndarray, checked: np.ndarray | None = None) -> None:
    """The engine's statistic under the observed assignment must be the estimate."""
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
                f"{_estimator_of(r)} result ({got[bad][0]!r} vs {est[bad][0]!r})",
                fix="report this as a bug: the estimator and its randomization_problem disagree",
            )


def family_distribution(
    study: Any, results: Sequence[Any], *, n_permutations: int = 10_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Observed statistics of every tidy row of ``results`` and their joint
    randomization distribution on ONE assignment matrix (for step-down adjustments).

    Returns
    -------
    (observed (m,), draws (B, m), exact)
    """
    _check_options(n_permutations, seed)
    rlist = list(results)
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
    the same draws by :func:`linear_statistics`. The statistic is the estimate itself
    (coefficient of the arm), compared in absolute value:

    .. math:: p = \frac{1 + \#\{b : |\hat\tau(z_b)| \ge |\hat\tau(z_{obs})|\}}{1 + B}

    (exact proportion over all :math:`N` assignments when :math:`N \le` ``n_permutations``).
    This is an exact test of the sharp null :math:`Y_i(1) = Y_i(0)` for every person.

    Parameters
    ----------
    study : Study
        The study the results were fitted on.
    results : result or sequence of results
        Results of ``itt`` (every adjustment; horizon, window, stacked rows;
        categorical levels), ``itt_by_period`` (one test per event time), ``did``,
        ``late`` (reduced-form statistic), ``spillover`` and ``household_total``
        (members follow their index person), ``heterogeneity`` (subgroup effects or
        effect at the mean and interaction; joint row: contrast, interaction or Wald
        form) and ``time_to_event`` (log-rank chi-square, Cox coefficient, RMST
        difference; other rows NaN). Other results (``lee_bounds``, ``balance``,
        ``spell_survival``, ``competing_risks``, ``discrete_time_hazard``) raise
        :class:`RandomizationNotAvailableError` naming the estimator.
    n_permutations : int
        Monte Carlo draws B (default 10,000).
    seed : int
        Seed of the draws; the same seed gives the same p-values.

    Returns
    -------
    The same structure as ``results``: new results with ``ri_p_value`` and ``ri_se``
    (Monte Carlo standard error :math:`\sqrt{p(1-p)/B}`; absent when exact).
    """
    from ips_impact.results.base import with_ri

    _check_options(n_permutations, seed)
    single = not isinstance(results, (list, tuple))
    rlist = [results] if single else list(results)
    fam = _family(study, rlist, n_permutations, seed)
    _check_reproduces(rlist, fam.observed, fam.checked)
    p, se = ri_pvalues(fam.observed, fam.draws, exact=fam.assignments.exact)
    out, pos = [], 0
    for r, n in zip(rlist, fam.sizes):
        pr, sr = p[pos : pos + n], se[pos : pos + n]
        pos += n
        out.append(with_ri(r, pr, None if fam.assignments.exact else sr))
    return out[0] if single else out


def randomization_ci(
    study: Any,
    results: Any,
    *,
    level: float = 0.95,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Randomization confidence intervals by test inversion (constant additive effect).

    For each tidy row: the set of :math:`\tau` such that the randomization test of
    :math:`H_\tau: Y_i(1) = Y_i(0) + \tau` for every person (for a DiD: in every
    post period) has p-value :math:`> 1 - level` (see :func:`ri_confidence_interval`).
    Rows with several effects in one model (subgroups) and rows whose statistic is not
    shifted one-for-one by the constant effect (checked numerically) get NaN;
    survival statistics get NaN (not a linear statistic).

    Returns
    -------
    pandas.DataFrame
        One row per tidy row of each result: ``outcome, term, estimand, horizon,
        estimate, ri_p_value, ri_conf_low, ri_conf_high, level, n_draws, exact``.
    """
    _check_options(n_permutations, seed, level)
    rlist = [results] if not isinstance(results, (list, tuple)) else list(results)
    fam = _family(study, rlist, n_permutations, seed, extra_arm_column=True)
    # Columns per problem: (len(coef) x (K + 1)), coef-major; split y and arm columns.
    rows = []
    pos = 0
    for r, probs, size in zip(rlist, fam.problems, fam.sizes):
        tidy = r.tidy()
        if probs is None:
            p_ri, _ = ri_pvalues(fam.observed[pos : pos + size], fam.draws[:, pos : pos + size],
                                 exact=fam.assignments.exact)
            pos += size
            if _estimator_of(r) == "late":
                # Anderson-Rubin-type inversion on the reduced form of y - tau d.
                prob, late_hat = _late_problem(study, r)
                arm = np.asarray(_design_of(study).arm, dtype=np.int8)
                o = linear_statistics(prob, arm[None, :])[0][0]
                dd = linear_statistics(prob, fam.assignments.draws)[0]
                lo, hi = ri_confidence_interval(late_hat, dd[:, 0], dd[:, 1], exact=fam.assignments.exact,
                                                level=level, a_obs=o[0], c_obs=o[1])
                rows.append(_ci_row(tidy.iloc[0], p_ri[0], lo, hi, level, fam))
                continue
            # Not a linear statistic (survival): p-values but no constant-effect interval.
            for i in range(size):
                rows.append(_ci_row(tidy.iloc[i], p_ri[i], math.nan, math.nan, level, fam))
            continue
        stats_a, stats_c, obs_a, obs_c = [], [], [], []
        for p in probs:
            k = p.n_outcomes
            width = len(p.coef) * (k + 1)
            block = fam.draws[:, pos : pos + width].reshape(-1, len(p.coef), k + 1)
            oblock = fam.observed[pos : pos + width].reshape(len(p.coef), k + 1)
            pos += width
            stats_a.append(block[:, :, :k].reshape(block.shape[0], -1))
            stats_c.append(np.repeat(block[:, :, k], k, axis=1))
            obs_a.append(oblock[:, :k].ravel())
            obs_c.append(np.repeat(oblock[:, k], k))
        a = np.concatenate(stats_a, axis=1)
        c = np.concatenate(stats_c, axis=1)
        oa = np.concatenate(obs_a)
        oc = np.concatenate(obs_c)
        _check_reproduces([r], oa)
        p_ri, _ = ri_pvalues(oa, a, exact=fam.assignments.exact)
        single = np.concatenate([np.full(len(p.coef) * p.n_outcomes, len(p.coef) == 1) for p in probs])
        for i in range(oa.size):
            if single[i] and np.isclose(oc[i], 1.0, atol=1e-8):
                lo, hi = ri_confidence_interval(oa[i], a[:, i], c[:, i], exact=fam.assignments.exact, level=level)
            else:
                lo, hi = math.nan, math.nan
            rows.append(_ci_row(tidy.iloc[i], p_ri[i], lo, hi, level, fam))
    return pd.DataFrame(rows)


def _ci_row(row: pd.Series, p: float, lo: float, hi: float, level: float, fam: _Family) -> dict[str, Any]:
    return {
        "outcome": row["outcome"], "term": row["term"], "estimand": row["estimand"],
        "horizon": row["horizon"], "estimate": float(row["estimate"]),
        "ri_p_value": float(p), "ri_conf_low": lo, "ri_conf_high": hi,
        "level": float(level), "n_draws": fam.assignments.n_draws,
        "exact": fam.assignments.exact,
    }


def randomization_pretest(
    study: Any, result: Any, *, n_permutations: int = 10_000, seed: int = 0
) -> dict[str, Any]:
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
    dict
        ``ks`` (pre-period event times), ``statistic`` (:math:`W_{obs}`),
        ``ri_p_value``, ``ri_se``, ``n_draws``, ``exact``.
    """
    _check_options(n_permutations, seed)
    if _estimator_of(result) != "itt_by_period":
        raise EstimationError(
            "the pre-period placebo test belongs to itt_by_period results",
            fix="pass the result of itt_by_period(study, outcome, periods=...) with periods before 0",
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
    return {"ks": tuple(int(k) for k in ks[pre]), "statistic": w_obs, "ri_p_value": float(p[0]),
            "ri_se": None if fam.assignments.exact else float(se[0]),
            "n_draws": fam.assignments.n_draws, "exact": fam.assignments.exact}
