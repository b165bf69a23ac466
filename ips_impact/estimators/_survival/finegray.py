r"""Fine–Gray proportional subdistribution hazards regression (``cmprsk::crr``).

For a cause of interest c among competing exits, the subdistribution hazard is

.. math::

    \lambda_c(t \mid x) = -\frac{d}{dt}\log\{1 - F_c(t \mid x)\}
                        = \lambda_{c0}(t)\, e^{x^\top\beta},

so that :math:`e^{\beta_j}` multiplies the hazard of the cumulative incidence
:math:`F_c`. It is fitted by the inverse-probability-of-censoring-weighted partial
likelihood of Fine & Gray (1999): a person who left by a competing cause at
:math:`T_i < t` stays in the risk set at t with weight
:math:`w_i(t) = \hat G(t^-)/\hat G(T_i^-)`, :math:`\hat G` the Kaplan–Meier curve of
the censoring times; everyone else is at risk (weight 1) while :math:`T_i \ge t`.
Tied events use Breslow's rule, as ``crr`` does.

The variance is the sandwich of ``crr``: :math:`I^{-1}\sum_i (\eta_i + \psi_i)
(\eta_i + \psi_i)^\top I^{-1}`, where :math:`\eta_i` is the weighted score residual
and :math:`\psi_i` the term for the estimation of :math:`\hat G` (Fine & Gray 1999,
section 4). ``variance="finegray"`` leaves :math:`\psi` out, treating the weights as
known: the robust variance of ``coxph(Surv(fgstart, fgstop, fgstatus) ~ x, weights =
fgwt, cluster = id)`` on ``survival::finegray`` data.

Everything is computed from cumulative sums over the distinct times (no person x time
matrix), so a fit costs O(n p^2) per Newton step. Checked against ``cmprsk::crr`` and
``survival::finegray`` + ``coxph`` in tests/test_survival_finegray.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FineGrayFit", "fine_gray_fit", "censoring_km_left", "FG_VARIANCES"]

FG_VARIANCES = ("crr", "finegray")


@dataclass(frozen=True)
class FineGrayFit:
    """A fitted Fine–Gray model (coefficients on the log subdistribution-hazard scale)."""

    coef: np.ndarray
    var: np.ndarray  # crr sandwich (or fixed-weight sandwich, see ``variance``)
    naive_var: np.ndarray  # inverse information
    loglik: float
    loglik_null: float
    n_iter: int
    converged: bool
    n: int
    n_events: int
    n_competing: int
    variance: str

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))


def censoring_km_left(time: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Distinct times :math:`\tau_k` and the censoring Kaplan–Meier curve just before them.

    :math:`\hat G(\tau_k^-) = \prod_{\tau_l < \tau_k} (1 - c_l / n_l)`, with :math:`c_l`
    the censorings and :math:`n_l` the persons with time :math:`\ge \tau_l` (so at a
    time with both, failures come first), as ``crr`` evaluates it.
    """
    ut, inv = np.unique(time, return_inverse=True)
    c = np.bincount(inv.ravel(), weights=censored.astype(float), minlength=ut.size)
    tot = np.bincount(inv.ravel(), minlength=ut.size).astype(float)
    n = np.cumsum(tot[::-1])[::-1]
    g = np.cumprod(1.0 - c / n)
    return ut, np.concatenate([[1.0], g[:-1]])


@dataclass(frozen=True)
class _Setup:
    key: np.ndarray  # distinct-time index of each row
    n_keys: int
    g_left: np.ndarray  # G(tau_k-) per key
    ev: np.ndarray  # bool rows: cause of interest
    comp: np.ndarray  # bool rows: competing cause
    cens: np.ndarray  # bool rows: censored
    d: np.ndarray  # events of interest per key
    ev_keys: np.ndarray  # keys with >= 1 event of interest


def _setup(time: np.ndarray, status: np.ndarray, cause: int) -> _Setup:
    ev = status == cause
    cens = status == 0
    comp = ~ev & ~cens
    ut, g_left = censoring_km_left(time, cens)
    key = np.searchsorted(ut, time)
    d = np.bincount(key, weights=ev.astype(float), minlength=ut.size)
    return _Setup(key, ut.size, g_left, ev, comp, cens, d, np.flatnonzero(d > 0))


def _risk_sums(v: np.ndarray, s: _Setup) -> np.ndarray:
    r"""Weighted risk-set sums at every key.

    :math:`\sum_{T_i \ge \tau_k} v_i + \hat G(\tau_k^-)
    \sum_{\text{competing}, T_i < \tau_k} v_i / \hat G(T_i^-)`; ``v`` has persons on
    axis 0 (any trailing shape).
    """
    shape = (s.n_keys,) + v.shape[1:]
    tot = np.zeros(shape)
    np.add.at(tot, s.key, v)
    at_risk = np.cumsum(tot[::-1], axis=0)[::-1]
    cw = np.zeros(shape)
    gi = s.g_left[s.key[s.comp]]
    np.add.at(cw, s.key[s.comp], v[s.comp] / gi.reshape((-1,) + (1,) * (v.ndim - 1)))
    before = np.concatenate([np.zeros((1,) + shape[1:]), np.cumsum(cw, axis=0)[:-1]], axis=0)
    g = s.g_left.reshape((-1,) + (1,) * (v.ndim - 1))
    return at_risk + g * before


def _terms(beta: np.ndarray, x: np.ndarray, s: _Setup
           ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    eta = x @ beta
    eta = eta - eta.max()  # overflow guard; cancels in every ratio
    r = np.exp(eta)
    rx = r[:, None] * x
    s0 = _risk_sums(r, s)[s.ev_keys]
    s1 = _risk_sums(rx, s)[s.ev_keys]
    s2 = _risk_sums(rx[:, :, None] * x[:, None, :], s)[s.ev_keys]
    d = s.d[s.ev_keys]
    xbar = s1 / s0[:, None]
    cov = s2 / s0[:, None, None] - xbar[:, :, None] * xbar[:, None, :]
    loglik = float(eta[s.ev].sum() - np.sum(d * np.log(s0)))
    score = x[s.ev].sum(axis=0) - (d[:, None] * xbar).sum(axis=0)
    info = (d[:, None, None] * cov).sum(axis=0)
    return loglik, score, info, r, s0, xbar


def _influence(x: np.ndarray, s: _Setup, r: np.ndarray, s0: np.ndarray, xbar: np.ndarray,
               with_psi: bool) -> np.ndarray:
    r"""Per-person influence terms :math:`\eta_i (+ \psi_i)` of the score (crr's ``crrvv``)."""
    n, p = x.shape
    nk = s.n_keys
    d = s.d[s.ev_keys]
    h = np.zeros(nk)
    hm = np.zeros((nk, p))
    h[s.ev_keys] = d / s0
    hm[s.ev_keys] = (d / s0)[:, None] * xbar
    hg = h * s.g_left
    hmg = hm * s.g_left[:, None]
    cum_h, cum_m = np.cumsum(h), np.cumsum(hm, axis=0)
    # sums over event keys strictly after each key, weighted by G(u-)
    tail_h = np.cumsum(hg[::-1])[::-1] - hg
    tail_m = np.cumsum(hmg[::-1], axis=0)[::-1] - hmg
    k = s.key
    eta = -r[:, None] * (x * cum_h[k][:, None] - cum_m[k])
    gi = s.g_left[k]
    cw = np.where(s.comp, r / gi, 0.0)
    eta -= cw[:, None] * (x * tail_h[k][:, None] - tail_m[k])
    xb_key = np.zeros((nk, p))
    xb_key[s.ev_keys] = xbar
    eta[s.ev] += x[s.ev] - xb_key[k[s.ev]]
    if not with_psi:
        return eta
    # q(u) at every key: sum over events u_j >= u of d_j G(u_j-)/S0_j
    # x [sum_{competing, T_i < u} r_i (x_i - xbar_j) / G(T_i-)]
    a = tail_h + hg
    b = tail_m + hmg
    c0 = np.bincount(k, weights=cw, minlength=nk)
    c1 = np.zeros((nk, p))
    np.add.at(c1, k, cw[:, None] * x)
    c0b = np.concatenate([[0.0], np.cumsum(c0)[:-1]])
    c1b = np.concatenate([np.zeros((1, p)), np.cumsum(c1, axis=0)[:-1]], axis=0)
    q = c1b * a[:, None] - c0b[:, None] * b
    tot = np.bincount(k, minlength=nk).astype(float)
    y = np.cumsum(tot[::-1])[::-1]
    nc = np.bincount(k, weights=s.cens.astype(float), minlength=nk)
    comp_c = np.cumsum((nc / y**2)[:, None] * q, axis=0)
    psi = -comp_c[k]
    psi[s.cens] += q[k[s.cens]] / y[k[s.cens]][:, None]
    return eta + psi


def fine_gray_fit(
    time: np.ndarray,
    status: np.ndarray,
    x: np.ndarray,
    *,
    cause: int = 1,
    variance: str = "crr",
    max_iter: int = 50,
    tol: float = 1e-12,
) -> FineGrayFit:
    r"""Fit the Fine–Gray model by Newton–Raphson (Breslow ties).

    Maximises

    .. math::

        \ell(\beta) = \sum_{j} \Big[\sum_{i: T_i = u_j, C_i = c} x_i^\top\beta
           - d_j \log \sum_i w_i(u_j)\, e^{x_i^\top\beta}\Big]

    over the distinct times :math:`u_j` of the cause of interest.

    Parameters
    ----------
    time, status
        Exit or censoring time; status 0 = censored, ``cause`` = the cause of interest,
        any other value = a competing cause.
    x
        Covariates (n, p).
    variance
        ``"crr"`` (with the term for the estimated censoring distribution, as
        ``cmprsk::crr``) or ``"finegray"`` (weights as known, as ``coxph`` on
        ``finegray`` data).
    """
    time = np.asarray(time, dtype=float)
    status = np.asarray(status)
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n, p = x.shape
    s = _setup(time, status, cause)
    # centring leaves the coefficients unchanged and keeps exp(x'b) well scaled
    xc = x - x.mean(axis=0)
    beta = np.zeros(p)
    ll, score, info, r, s0, xbar = _terms(beta, xc, s)
    ll0 = ll
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        step = np.linalg.lstsq(info, score, rcond=None)[0]
        new = beta + step
        t_new = _terms(new, xc, s)
        halvings = 0
        while (not np.isfinite(t_new[0]) or t_new[0] < ll - 1e-12) and halvings < 30:
            step = step / 2
            new = beta + step
            t_new = _terms(new, xc, s)
            halvings += 1
        ll_old = ll
        beta = new
        ll, score, info, r, s0, xbar = t_new
        if np.max(np.abs(step)) < tol or abs(ll - ll_old) < tol * max(1.0, abs(ll)):
            # one more Newton step from a converged point tightens the last digits
            beta = beta + np.linalg.lstsq(info, score, rcond=None)[0]
            ll, score, info, r, s0, xbar = _terms(beta, xc, s)
            converged = True
            break
    naive = np.linalg.pinv(info)
    u = _influence(xc, s, r, s0, xbar, with_psi=variance == "crr")
    meat = u.T @ u
    return FineGrayFit(
        beta, naive @ meat @ naive, naive, ll, ll0, it, converged, n,
        int(s.ev.sum()), int(s.comp.sum()), variance,
    )
