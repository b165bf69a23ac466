r"""Randomization-inference engine: re-drawn assignments → the statistics of linear problems.

Every linear statistic handled here is a coefficient of a regression whose regressors
of interest depend linearly on the assignment,

.. math:: y_r = \sum_j \beta_j \, z_{p(r)} v_{rj} + w_r'\gamma + e_r ,

where row :math:`r` (a person, a person-period of a stacked panel, or a household
member) follows the assignment :math:`z_{p(r)}` of randomized person :math:`p(r)`,
:math:`v_{r0} = 1` (difference in means, ANCOVA) and, for Lin (2013), :math:`v_{rj}`
are the centred covariates, and :math:`W` holds the nuisance regressors (intercept,
strata, covariates, period effects) that do not depend on :math:`z`. With
:math:`Z(z)` the matrix of the :math:`z_{p(r)} v_{rj}`, :math:`Q` an orthonormal
basis of :math:`W` and :math:`\tilde y = M_W y = y - Q Q'y` (computed once),

.. math:: \hat\beta(z) = [Z'Z - (Q'Z)'(Q'Z)]^{-1} Z'\tilde y .

Because :math:`z_i \in \{0, 1\}`, every block is linear in :math:`z`:
:math:`(Z'Z)_{jk} = \sum_i z_i \sum_{r \in i} v_{rj} v_{rk}`,
:math:`(Q'Z)_{\cdot j} = \sum_i z_i \sum_{r \in i} q_r v_{rj}` and
:math:`(Z'\tilde y)_{jk} = \sum_i z_i \sum_{r \in i} v_{rj} \tilde y_{rk}`. The
per-person sums form one matrix :math:`A` (persons × columns), so that all draws and
all outcomes are obtained from ONE matrix product :math:`P A` (P: draws × persons),
followed, when there is more than one :math:`v`, by a batch of small solves
(``numpy.linalg.solve`` on stacked matrices). For ANCOVA this is
:math:`\hat\beta(z) = z'M_W y / z'M_W z`. Draws are processed in chunks so that
memory stays bounded; problems that share rows and regressors (the horizons of one
outcome, outcomes with the same sample) are residualised once and merged.

This module knows nothing of estimators: it takes arrays (:class:`LinearProblem`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ips_impact.errors import DesignError, EstimationError

__all__ = ["LinearProblem", "linear_statistics", "DEFAULT_MEMORY"]

#: Scratch memory allowed for one chunk of draws (bytes); the peak stays well below 2 GB.
DEFAULT_MEMORY = 256 * 2**20


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
                    fix="drop incomplete rows (the estimation sample) before "
                    "randomization inference",
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
        """Number of outcome columns K."""
        return int(self.y.shape[1])

    @property
    def n_statistics(self) -> int:
        """Number of statistics: len(coef) x K, ordered coef-major."""
        return len(self.coef) * self.n_outcomes


def _orthonormal_basis(w: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of ``w``, rank-revealing.

    Collinear nuisance columns (e.g. intercept + all stratum dummies) are harmless.

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
        raise DesignError("draws must be a 2-D array (draws x persons)",
                          fix="stack assignments as rows")
    n_draws, n_persons = draws.shape
    preps = [_prepare(p, n_persons) for p in plist]
    return _statistics_prepared(preps, draws, memory=memory)


def _merge_problems(
    plist: list[LinearProblem],
) -> tuple[list[LinearProblem], list[tuple[int, np.ndarray]]]:
    """Merge problems that differ only in their outcomes.

    Problems with the same rows, nuisance, interactions, absorbed effects and
    coefficients become one problem with more outcome columns, so that their
    residualisation and the assignment-dependent blocks are computed once (e.g. the
    horizons of ``itt_by_period`` with the same sample). Returns the merged problems
    and, for each input problem, (merged index, columns of the merged statistics that
    are its statistics, in its order).
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
            cols = np.concatenate([ci * k_tot + offset + np.arange(k_i)
                                   for ci in range(len(first.coef))])
            where[i] = (len(merged), cols)
            offset += k_i
        y = first.y if len(members) == 1 else np.concatenate([plist[i].y for i in members], axis=1)
        merged.append(dataclasses.replace(first, y=y) if len(members) > 1 else first)
    return merged, where


def _statistics_prepared(
    preps: list[_Prepared], draws: np.ndarray, *, memory: int = DEFAULT_MEMORY
) -> list[np.ndarray]:
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

