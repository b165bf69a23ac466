"""Cumulative incidence (Aalen–Johansen) with its variance, and Gray's test.

Both follow Robert Gray's ``cmprsk`` (``cuminc``: Fortran ``cinc`` and ``crstm``),
re-derived and vectorised over times (cinc) or over groups (crst); they match
``cmprsk::cuminc`` to 1e-10 (tests/test_survival_reference.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["CumulativeIncidence", "cumulative_incidence", "GrayTest", "gray_test"]


@dataclass(frozen=True)
class CumulativeIncidence:
    """Cumulative incidence of one cause in one group, at the times of that cause.

    ``time``, ``estimate`` and ``variance`` are the values right after each distinct
    time where the cause occurs (the step corners of cmprsk without duplicates).
    """

    time: np.ndarray
    estimate: np.ndarray
    variance: np.ndarray
    max_time: float


def cumulative_incidence(time: np.ndarray, status: np.ndarray, cause: int) -> CumulativeIncidence:
    r"""Aalen–Johansen cumulative incidence of ``cause`` and Gray's (1988) variance.

    .. math:: \hat F_c(t) = \sum_{t_j \le t} \hat S(t_{j-1}) \frac{d_{cj}}{n_j}

    where :math:`\hat S` is the all-cause Kaplan–Meier curve. ``status`` is 0 for
    censored, otherwise the cause code.
    """
    time = np.asarray(time, dtype=float)
    status = np.asarray(status)
    ut, inv = np.unique(time, return_inverse=True)
    inv = inv.ravel()
    m = ut.size
    tot = np.bincount(inv, minlength=m).astype(float)
    nd1 = np.bincount(inv, weights=(status == cause).astype(float), minlength=m)
    nd2 = np.bincount(inv, weights=((status != 0) & (status != cause)).astype(float), minlength=m)
    rs = np.cumsum(tot[::-1])[::-1]
    nd = nd1 + nd2
    fkn_all = np.cumprod(1 - nd / rs)
    fk = np.concatenate([[1.0], fkn_all[:-1]])  # S(t-)
    fkn = fkn_all
    f = np.cumsum(fk * nd1 / rs)  # F right after each time
    with np.errstate(divide="ignore", invalid="ignore"):
        # contributions of deaths from other causes (skipped when S(t) = 0)
        t5 = np.where(nd2 > 1, 1 - (nd2 - 1) / (rs - 1), 1.0)
        t6 = fk * fk * t5 * nd2 / (rs * rs)
        use2 = (nd2 > 0) & (fkn > 0)
        t3 = np.where(use2, 1 / fkn, 0.0)
        t4 = np.where(use2, f / fkn, 0.0)
        a1 = np.where(use2, t4 * t4 * t6, 0.0)
        a2 = np.where(use2, t3 * t4 * t6, 0.0)
        a3 = np.where(use2, t3 * t3 * t6, 0.0)
        # contributions of the cause of interest
        t5 = np.where(nd1 > 1, 1 - (nd1 - 1) / (rs - 1), 1.0)
        t6 = fk * fk * t5 * nd1 / (rs * rs)
        use1 = nd1 > 0
        t3 = np.where(use1 & (fkn > 0), 1 / np.where(fkn > 0, fkn, 1.0), 0.0)
        t4 = 1 + t3 * f
        a1 = a1 + np.where(use1, t4 * t4 * t6, 0.0)
        a2 = a2 + np.where(use1, t3 * t4 * t6, 0.0)
        a3 = a3 + np.where(use1, t3 * t3 * t6, 0.0)
    v1, v2, v3 = np.cumsum(a1), np.cumsum(a2), np.cumsum(a3)
    var = v1 + f * f * v3 - 2 * f * v2
    keep = nd1 > 0
    return CumulativeIncidence(ut[keep], f[keep], var[keep], float(ut[-1]) if m else float("nan"))


def cif_at(ci: CumulativeIncidence, t: float) -> tuple[float, float]:
    """F(t) and its variance (step function; 0 before the first event)."""
    j = int(np.searchsorted(ci.time, t, side="right")) - 1
    if j < 0:
        return 0.0, 0.0
    return float(ci.estimate[j]), float(ci.variance[j])


@dataclass(frozen=True)
class GrayTest:
    """Gray's K-sample test of equal cumulative incidence for one cause."""

    score: np.ndarray
    variance: np.ndarray
    statistic: float
    df: int
    p_value: float


def _crst(y: np.ndarray, m: np.ndarray, ig: np.ndarray, ng: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Score and variance of one stratum (Fortran ``crst`` of cmprsk, loop over times)."""
    ng1 = ng - 1
    rs = np.bincount(ig, minlength=ng).astype(float)
    s = np.zeros(ng1)
    v = np.zeros((ng1, ng1))
    f1m = np.zeros(ng)
    f1 = np.zeros(ng)
    skmm = np.ones(ng)
    skm = np.ones(ng)
    v3 = np.zeros(ng)
    v2 = np.zeros((ng1, ng))
    c = np.zeros((ng, ng))
    fm = 0.0
    f = 0.0
    ut, inv = np.unique(y, return_inverse=True)
    inv = inv.ravel()
    nt = ut.size
    # counts per time x group of: any row, cause-1 failures, other failures
    tot = np.zeros((nt, ng))
    d1 = np.zeros((nt, ng))
    d2 = np.zeros((nt, ng))
    np.add.at(tot, (inv, ig), 1.0)
    np.add.at(d1, (inv, ig), (m == 1).astype(float))
    np.add.at(d2, (inv, ig), (m == 2).astype(float))
    for j in range(nt):
        dj1, dj2 = d1[j], d2[j]
        nd1, nd2 = dj1.sum(), dj2.sum()
        if nd1 > 0 or nd2 > 0:
            pos = rs > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                td = dj1 + dj2
                skm = np.where(pos, skmm * (rs - td) / rs, skm)
                f1 = np.where(pos, f1m + skmm * dj1 / rs, f1)
                t1 = np.where(pos, rs / skmm, 0.0)
                tr = t1.sum()
                tq = np.where(pos, rs * (1 - f1m) / skmm, 0.0).sum()
            f = fm + nd1 / tr
            fb = (1 - fm) ** rho
            a = fb * (np.diag(t1) - np.outer(t1, t1) / tr)
            if nd1 > 0:
                c = c + a * nd1 / (tr * (1 - fm))
            with np.errstate(divide="ignore", invalid="ignore"):
                sc = np.where(pos, fb * (dj1 - nd1 * rs * (1 - f1m) / (skmm * tq)), 0.0)
            s += sc[:ng1]
            if nd1 > 0:
                with np.errstate(divide="ignore", invalid="ignore"):
                    t4 = np.where(skm > 0, 1 - (1 - f) / skm, 1.0)
                    t5 = 1 - (nd1 - 1) / (tr * skmm - 1) if nd1 > 1 else np.ones(ng)
                    t3 = np.where(pos, t5 * skmm * nd1 / (tr * rs), 0.0)
                v3 += t4 * t4 * t3
                tt1 = a[:ng1, :] - t4[None, :] * c[:ng1, :]
                v2 += tt1 * (t4 * t3)[None, :]
                v += (tt1 * t3[None, :]) @ tt1.T
            if nd2 > 0:
                use = (skm > 0) & (dj2 > 0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    t4 = np.where(use, (1 - f) / skm, 0.0)
                    t5 = np.where(dj2 > 1, 1 - (dj2 - 1) / (rs - 1), 1.0)
                    t3 = np.where(use, t5 * skmm**2 * dj2 / rs**2, 0.0)
                v3 += t4 * t4 * t3
                tt1 = t4[None, :] * c[:ng1, :]
                v2 -= tt1 * (t4 * t3)[None, :]
                v += (tt1 * t3[None, :]) @ tt1.T
        rs = rs - tot[j]
        fm = f
        f1m = f1.copy()
        skmm = skm.copy()
    v = v + (c[:ng1] * v3[None, :]) @ c[:ng1].T + c[:ng1] @ v2.T + v2 @ c[:ng1].T
    return s, v


def gray_test(
    time: np.ndarray,
    status: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    cause: int,
    *,
    strata: np.ndarray | None = None,
    rho: float = 0.0,
) -> GrayTest:
    r"""Gray's (1988) test that the cumulative incidence of ``cause`` is equal across groups.

    The score compares, at each time, the subdistribution hazard of each group with the
    pooled one, weighted by :math:`(1 - \hat F(t^-))^\rho`; summed over strata, the
    statistic :math:`s^\top V^{-1} s` is chi-square with G - 1 df (``cmprsk::cuminc``).
    """
    time = np.asarray(time, dtype=float)
    status = np.asarray(status)
    group = np.asarray(group, dtype=np.int64)
    code = np.where(status == cause, 1, np.where(status == 0, 0, 2))
    st = np.zeros(time.size, dtype=np.int64) if strata is None else np.asarray(strata)
    s = np.zeros(n_groups - 1)
    v = np.zeros((n_groups - 1, n_groups - 1))
    for lev in np.unique(st):
        w = st == lev
        ss, vv = _crst(time[w], code[w], group[w], n_groups, rho)
        s += ss
        v += vv
    try:
        stat = float(s @ np.linalg.solve(v, s))
    except np.linalg.LinAlgError:
        stat = float("nan")
    df = n_groups - 1
    return GrayTest(s, v, stat, df, float(stats.chi2.sf(stat, df)))
