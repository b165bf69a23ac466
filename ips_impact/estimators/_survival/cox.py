"""Cox proportional-hazards model on risk tables (Efron or Breslow ties).

Also its robust (dfbeta) variance and the proportional-hazards test of ``survival::cox.zph``.

Everything is computed from sums over distinct (stratum, time) keys, so a fit on
quarterly data costs O(persons x covariates^2) once plus O(events) per iteration.
The numbers match R ``coxph`` / ``cox.zph`` (survival 3.5) to 1e-6 or better; see
tests/test_survival_reference.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["CoxFit", "cox_fit", "cox_zph", "ZphTest", "COX_TIES"]

COX_TIES = ("efron", "breslow")


@dataclass(frozen=True)
class _Keys:
    order: np.ndarray  # sort permutation of the rows (stratum, time)
    key: np.ndarray  # key index of each sorted row
    n_keys: int
    stratum_end: np.ndarray  # per key: one past the last key of its stratum
    key_stratum_start: np.ndarray  # per key: first key of its stratum
    d: np.ndarray  # deaths per key
    key_time: np.ndarray
    # delayed entry: per sorted row, the last key of its stratum with time <= entry
    # (-1 when none); the row leaves the risk sums of those keys
    entry_key: np.ndarray | None = None


def _entry_keys(entry: np.ndarray, strata: np.ndarray, k: _Keys) -> np.ndarray:
    """Per row, the last key of its stratum with time <= the row's entry time (-1: none)."""
    kstr = np.empty(k.n_keys, dtype=np.int64)
    kstr[k.key] = strata[k.order]
    out = np.full(entry.size, -1, dtype=np.int64)
    for s in np.unique(kstr):
        idx = np.flatnonzero(kstr == s)  # keys of stratum s, times ascending
        rows = strata == s
        pos = np.searchsorted(k.key_time[idx], entry[rows], side="right") - 1
        out[rows] = np.where(pos >= 0, idx[np.maximum(pos, 0)], -1)
    return out


def _with_entry(k: _Keys, entry: np.ndarray | None, strata: np.ndarray) -> _Keys:
    if entry is None:
        return k
    ek = _entry_keys(np.asarray(entry, dtype=float), strata, k)[k.order]
    return _Keys(k.order, k.key, k.n_keys, k.stratum_end, k.key_stratum_start, k.d, k.key_time, ek)


def _make_keys(time: np.ndarray, event: np.ndarray, strata: np.ndarray) -> _Keys:
    order = np.lexsort((time, strata))
    ts, ss = time[order], strata[order]
    new = np.ones(len(ts), dtype=bool)
    new[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    key = np.cumsum(new) - 1
    nk = int(key[-1]) + 1
    kstr = ss[new]
    change = np.flatnonzero(np.diff(kstr)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [nk]])
    sizes = ends - starts
    d = np.bincount(key, weights=event[order], minlength=nk)
    return _Keys(
        order, key, nk, np.repeat(ends, sizes), np.repeat(starts, sizes), d, ts[new]
    )


def _rev_cumsum(x: np.ndarray, end: np.ndarray) -> np.ndarray:
    rc = np.cumsum(x[::-1], axis=0)[::-1]
    pad = np.concatenate([rc, np.zeros((1,) + rc.shape[1:])], axis=0)
    return rc - pad[end]


def _cumsum_within(x: np.ndarray, start: np.ndarray) -> np.ndarray:
    c = np.cumsum(x, axis=0)
    pad = np.concatenate([np.zeros((1,) + c.shape[1:]), c], axis=0)
    return c - pad[start]


@dataclass(frozen=True)
class _Terms:
    loglik: float
    score: np.ndarray
    info: np.ndarray
    # per Efron sub-step (one row per death): key, fraction l/d, denominator, mean, cov
    row_key: np.ndarray
    row_frac: np.ndarray
    row_denom: np.ndarray
    row_mean: np.ndarray
    row_cov: np.ndarray
    row_weight: np.ndarray


def _terms(beta: np.ndarray, xs: np.ndarray, es: np.ndarray, k: _Keys, ties: str) -> _Terms:
    """Log partial likelihood, score and information at beta (rows already sorted)."""
    eta = xs @ beta
    eta = eta - eta.max()  # overflow guard; cancels in every ratio
    r = np.exp(eta)
    nk = k.n_keys
    p = xs.shape[1]
    rx = r[:, None] * xs
    rxx = rx[:, :, None] * xs[:, None, :]
    t0 = np.bincount(k.key, weights=r, minlength=nk)
    t1 = np.zeros((nk, p))
    np.add.at(t1, k.key, rx)
    t2 = np.zeros((nk, p, p))
    np.add.at(t2, k.key, rxx)
    if k.entry_key is not None:
        # rows that entered at or after a key's time are not at risk there
        late = k.entry_key >= 0
        ek = k.entry_key[late]
        t0 = t0 - np.bincount(ek, weights=r[late], minlength=nk)
        np.add.at(t1, ek, -rx[late])
        np.add.at(t2, ek, -rxx[late])
    s0 = _rev_cumsum(t0, k.stratum_end)
    s1 = _rev_cumsum(t1, k.stratum_end)
    s2 = _rev_cumsum(t2, k.stratum_end)
    dead = es > 0
    dk = k.key[dead]
    d0 = np.bincount(dk, weights=r[dead], minlength=nk)
    d1 = np.zeros((nk, p))
    np.add.at(d1, dk, rx[dead])
    d2 = np.zeros((nk, p, p))
    np.add.at(d2, dk, rxx[dead])
    ev_keys = np.flatnonzero(k.d > 0)
    dd = k.d[ev_keys].astype(np.int64)
    if ties == "efron":
        row_key = np.repeat(ev_keys, dd)
        # l = 0..d-1 within each key
        first = np.repeat(np.cumsum(dd) - dd, dd)
        l_idx = np.arange(row_key.size) - first
        frac = l_idx / k.d[row_key]
        weight = np.ones(row_key.size)
    else:
        row_key = ev_keys
        frac = np.zeros(ev_keys.size)
        weight = k.d[ev_keys].astype(float)
    denom = s0[row_key] - frac * d0[row_key]
    num1 = s1[row_key] - frac[:, None] * d1[row_key]
    num2 = s2[row_key] - frac[:, None, None] * d2[row_key]
    mean = num1 / denom[:, None]
    cov = num2 / denom[:, None, None] - mean[:, :, None] * mean[:, None, :]
    loglik = float(eta[dead].sum() - np.sum(weight * np.log(denom)))
    score = xs[dead].sum(axis=0) - (weight[:, None] * mean).sum(axis=0)
    info = (weight[:, None, None] * cov).sum(axis=0)
    return _Terms(loglik, score, info, row_key, frac, denom, mean, cov, weight)


@dataclass(frozen=True)
class CoxFit:
    """A fitted Cox model (coefficients on the log-hazard scale)."""

    coef: np.ndarray
    naive_var: np.ndarray
    robust_var: np.ndarray | None
    loglik: float
    loglik_null: float
    n_iter: int
    converged: bool
    ties: str
    n: int
    n_events: int

    @property
    def var(self) -> np.ndarray:
        return self.robust_var if self.robust_var is not None else self.naive_var

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))


def _score_residuals(
    beta: np.ndarray, xs: np.ndarray, es: np.ndarray, k: _Keys, t: _Terms
) -> np.ndarray:
    """Score residuals U_i (sum to the score) in sorted row order, Efron or Breslow.

    U_i = delta_i (x_i - xbar_i) - sum_{t_j <= t_i} c_ij r_i (x_i - xbar_j) dLambda_j,
    with c_ij = 1 - l/d for the l-th Efron sub-step of a death tied at t_j (else 1).
    """
    eta = xs @ beta
    eta = eta - eta.max()
    r = np.exp(eta)
    nk = k.n_keys
    p = xs.shape[1]
    h = t.row_weight / t.row_denom  # hazard increment of each sub-step
    hm = h[:, None] * t.row_mean
    hk = np.bincount(t.row_key, weights=h, minlength=nk)
    mk = np.zeros((nk, p))
    np.add.at(mk, t.row_key, hm)
    c = 1.0 - t.row_frac
    hk_d = np.bincount(t.row_key, weights=c * h, minlength=nk)
    mk_d = np.zeros((nk, p))
    np.add.at(mk_d, t.row_key, c[:, None] * hm)
    # mean of the sub-step means for the deaths themselves
    mbar = np.zeros((nk, p))
    np.add.at(mbar, t.row_key, t.row_mean * t.row_weight[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        mbar = mbar / np.where(k.d > 0, k.d, 1.0)[:, None]
    cum_h = _cumsum_within(hk, k.key_stratum_start)
    cum_m = _cumsum_within(mk, k.key_stratum_start)
    key = k.key
    dead = es > 0
    H = np.where(dead, cum_h[key] - hk[key] + hk_d[key], cum_h[key])
    M = np.where(dead[:, None], cum_m[key] - mk[key] + mk_d[key], cum_m[key])
    if k.entry_key is not None:
        # the hazard accrued before entry is not the row's (risk interval (entry, time])
        late = k.entry_key >= 0
        H = H - np.where(late, cum_h[np.maximum(k.entry_key, 0)], 0.0)
        M = M - np.where(late[:, None], cum_m[np.maximum(k.entry_key, 0)], 0.0)
    u = -r[:, None] * (xs * H[:, None] - M)
    u[dead] += xs[dead] - mbar[key[dead]]
    return u


def _as_arrays(time: Any, event: Any, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow-up, event indicator and covariates as float arrays (x always 2-D)."""
    x = np.asarray(x, dtype=float)
    return np.asarray(time, dtype=float), np.asarray(event, dtype=float), x[:, None] if x.ndim == 1 else x


def cox_fit(
    time: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    ties: str = "efron",
    cluster: np.ndarray | None = None,
    robust: bool = False,
    max_iter: int = 50,
    tol: float = 1e-12,
    entry: np.ndarray | None = None,
) -> CoxFit:
    r"""Fit a (stratified) Cox model by Newton–Raphson.

    Maximises the partial likelihood with Efron's or Breslow's handling of ties,

    .. math::

        \ell(\beta) = \sum_j \Big[\sum_{i \in D_j} x_i^\top\beta
           - \sum_{l=0}^{d_j-1} \log\Big(\sum_{i \in R_j} e^{x_i^\top\beta}
           - \tfrac{l}{d_j}\sum_{i\in D_j} e^{x_i^\top\beta}\Big)\Big]

    (Efron; Breslow drops the l/d_j term). With ``robust`` or ``cluster`` the variance
    is the grouped dfbeta sandwich :math:`D^\top D` of ``coxph(..., cluster = )``.

    With ``entry`` the rows are counting-process intervals (entry, time]
    (``coxph(Surv(entry, time, event) ~ ...)``): row i is in the risk set
    :math:`R_j` when entry_i < t_j <= time_i. This covers delayed entry (left
    truncation) and, with several rows per person and ``cluster`` = person, (start, stop]
    data with time-varying covariates or recurrent events (Andersen–Gill).
    """
    time, event, x = _as_arrays(time, event, x)
    n, p = x.shape
    s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    k = _with_entry(_make_keys(time, event, s), entry, s)
    # centring makes exp(x'b) well scaled and does not change the coefficients
    xs = (x - x.mean(axis=0))[k.order]
    es = event[k.order]
    beta = np.zeros(p)
    t = _terms(beta, xs, es, k, ties)
    ll0 = t.loglik
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the iteration count is reported after the loop
        try:
            step = np.linalg.solve(t.info, t.score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(t.info, t.score, rcond=None)[0]
        new = beta + step
        tn = _terms(new, xs, es, k, ties)
        halvings = 0
        # step halving, as coxph does when the likelihood falls
        while (not np.isfinite(tn.loglik) or tn.loglik < t.loglik - 1e-12) and halvings < 30:
            step = step / 2
            new = beta + step
            tn = _terms(new, xs, es, k, ties)
            halvings += 1
        beta, t_old, t = new, t, tn
        if np.max(np.abs(step)) < tol or abs(t.loglik - t_old.loglik) < tol * max(1.0, abs(t.loglik)):
            # one more exact Newton step from a converged point is harmless and tightens
            step = np.linalg.lstsq(t.info, t.score, rcond=None)[0]
            beta = beta + step
            t = _terms(beta, xs, es, k, ties)
            converged = True
            break
    naive = np.linalg.pinv(t.info)
    rvar = None
    if robust or cluster is not None:
        u = _score_residuals(beta, xs, es, k, t)
        dfb = u @ naive
        if cluster is not None:
            cl = np.asarray(cluster)[k.order]
            _, codes = np.unique(cl, return_inverse=True)
            g = np.zeros((int(codes.max()) + 1, p))
            np.add.at(g, codes.ravel(), dfb)
            dfb = g
        rvar = dfb.T @ dfb
    return CoxFit(beta, naive, rvar, t.loglik, ll0, it, converged, ties, n, int(event.sum()))


@dataclass(frozen=True)
class ZphTest:
    """Score tests of proportional hazards (one per covariate, then GLOBAL)."""

    chisq: np.ndarray
    df: np.ndarray
    p_value: np.ndarray


def cox_zph(
    time: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    ties: str = "efron",
) -> ZphTest:
    r"""Proportional-hazards test of ``survival::cox.zph`` (transform = "km").

    For each covariate j, the score test of :math:`\gamma_j = 0` in the model with the
    extra time-varying term :math:`x_j\,g(t)`, at :math:`(\hat\beta, \gamma = 0)`, where
    :math:`g(t) = 1 - \hat S(t^-)` (pooled Kaplan–Meier), centred over the event times.
    This is the test that the scaled Schoenfeld residuals have zero slope in g(t).
    """
    time, event, x = _as_arrays(time, event, x)
    n, p = x.shape
    beta = np.asarray(beta, dtype=float)
    s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    # g(t) = 1 - KM(t-) on all data, ignoring strata (as cox.zph does)
    ut, inv = np.unique(time, return_inverse=True)
    dcount = np.bincount(inv, weights=event, minlength=ut.size)
    tot = np.bincount(inv, minlength=ut.size).astype(float)
    nrisk = np.cumsum(tot[::-1])[::-1]
    surv = np.cumprod(1 - dcount / nrisk)
    s_minus = np.concatenate([[1.0], surv[:-1]])
    ttimes = 1 - s_minus[inv.ravel()]
    gt = ttimes - ttimes[event > 0].mean()

    k = _make_keys(time, event, s)
    xs = (x - x.mean(axis=0))[k.order]
    es = event[k.order]
    gs = gt[k.order]
    t = _terms(beta, xs, es, k, ties)
    # g at each key (every row of a key shares its time)
    gk = np.zeros(k.n_keys)
    gk[k.key] = gs
    g_row = gk[t.row_key]
    dead = es > 0
    u_g = (gs[dead, None] * xs[dead]).sum(axis=0) - (
        (g_row * t.row_weight)[:, None] * t.row_mean
    ).sum(axis=0)
    wc = t.row_weight[:, None, None] * t.row_cov
    i11 = wc.sum(axis=0)
    i12 = (g_row[:, None, None] * wc).sum(axis=0)
    i22 = ((g_row**2)[:, None, None] * wc).sum(axis=0)
    imat = np.block([[i11, i12], [i12.T, i22]])
    chisq = np.zeros(p + 1)
    df = np.ones(p + 1, dtype=np.int64)
    for j in range(p):
        kk = list(range(p)) + [p + j]
        u = np.concatenate([np.zeros(p), [u_g[j]]])
        chisq[j] = float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u))
    u = np.concatenate([np.zeros(p), u_g])
    chisq[p] = float(u @ np.linalg.solve(imat, u))
    df[p] = p
    return ZphTest(chisq, df, stats.chi2.sf(chisq, df))
