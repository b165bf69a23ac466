r"""Survival statistics for many assignment vectors at once (randomization inference).

Given the outcome data (time, event, strata) of the persons and a matrix of
assignments Z (B x n, 0/1), every statistic depends on Z only through the counts
treated at risk and treated with an event at each distinct time, i.e. through
``Z @ A`` for a sparse one-hot matrix A (n x K). So B statistics cost a sparse
product and O(B x K) arithmetic, never B refits:

* log-rank chi-square (stratified): :math:`U = \sum_k d_{1k} - d_k n_{1k}/n_k`,
  :math:`V = \sum_k d_k \frac{n_k-d_k}{n_k-1}\frac{n_{1k}}{n_k}(1-\frac{n_{1k}}{n_k})`;
* Cox log hazard ratio of the arm alone (strata allowed, Efron or Breslow ties), by
  Newton–Raphson run on all B columns in parallel: with a binary covariate the
  partial likelihood depends only on :math:`(n_{1k}, n_{0k}, d_{1k}, d_{0k})`;
* RMST difference up to tau from the two Kaplan–Meier curves (unstratified), and the
  log RMST ratio;
* the Fleming–Harrington G(rho, gamma) chi-square: its weights come from the pooled
  Kaplan–Meier curve, which does not depend on the assignment, so they are computed once;
* the Fine–Gray log subdistribution hazard ratio of the arm alone
  (:func:`fine_gray_statistics`): the censoring weights are pooled too, so the weighted
  risk sets of each arm are again ``Z @ A`` products and Newton–Raphson runs on all B
  columns at once.

With delayed entry (``entry``) the risk sets lose, at each time, the persons who enter
at or after it: one more sparse product. For the observed assignment the values equal
those of ``time_to_event`` / ``competing_risks`` (tested).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ips_impact.estimators._survival.logrank import fh_weights

__all__ = ["survival_statistics", "rmst_by_assignment", "fine_gray_statistics"]


def _onehot(key: np.ndarray, k: int, weights: np.ndarray | None = None) -> sparse.csr_matrix:
    n = key.size
    data = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    return sparse.csr_matrix((data, (np.arange(n), key)), shape=(n, k))


def _counts(key: np.ndarray, k: int, event: np.ndarray, z: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per time key: all persons, all events, and (B x k) treated persons / events."""
    a_all = _onehot(key, k)
    a_ev = _onehot(key, k, event)
    tot = np.asarray(a_all.sum(axis=0)).ravel()
    dk = np.asarray(a_ev.sum(axis=0)).ravel()
    return tot, dk, np.asarray((a_all.T @ z.T).T), np.asarray((a_ev.T @ z.T).T)


def _late_counts(entry_key: np.ndarray, k: int, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per key: all persons and (B x k) treated persons whose last key before entry is it."""
    late = entry_key >= 0
    a = _onehot(entry_key[late], k)
    return np.asarray(a.sum(axis=0)).ravel(), np.asarray((a.T @ z[:, late].T).T)


def _km_by_arm(time: np.ndarray, event: np.ndarray, z: np.ndarray, tau: float,
               entry: np.ndarray | None = None,
               ) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Kaplan–Meier of each arm for B assignments at the distinct times ``ut``.

    Returns ``ut``, the width of [t_k, min(t_{k+1}, tau)) (S is constant there), and per
    arm ("treated", "control") the (B x k) numbers at risk, events and survival S(t_k).
    With ``entry``, a person is at risk at t_k when entry < t_k <= time.
    """
    ut, inv = np.unique(time, return_inverse=True)
    tot, dk, t1, e1 = _counts(inv.ravel(), ut.size, event, z)
    nxt = np.concatenate([ut[1:], [np.inf]])
    width = np.clip(np.minimum(nxt, tau) - ut, 0.0, None)
    late_all = late1 = None
    if entry is not None:
        ek = np.searchsorted(ut, np.asarray(entry, dtype=float), side="right") - 1
        late_all, late1 = _late_counts(ek, ut.size, z)
    arms = {}
    for name, tt, ee in (("treated", t1, e1), ("control", tot[None, :] - t1, dk[None, :] - e1)):
        n = np.cumsum(tt[:, ::-1], axis=1)[:, ::-1]
        if late1 is not None and late_all is not None:
            lt = late1 if name == "treated" else late_all[None, :] - late1
            n = n - np.cumsum(lt[:, ::-1], axis=1)[:, ::-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(np.where(n > 0, 1 - ee / np.where(n > 0, n, 1), 1.0), axis=1)
        arms[name] = (n, ee, surv)
    return ut, width, arms


def _keys(time: np.ndarray, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    strata, time = np.asarray(strata), np.asarray(time)
    rec = np.rec.fromarrays([strata, time], formats=[strata.dtype, time.dtype], names="s,t")
    uniq, inv = np.unique(rec, return_inverse=True)
    inv = inv.ravel()
    ks = np.asarray(uniq["s"])
    kt = np.asarray(uniq["t"], dtype=float)
    nk = uniq.size
    change = np.flatnonzero(np.diff(ks)) + 1
    ends = np.concatenate([change, [nk]])
    end = np.repeat(ends, np.diff(np.concatenate([[0], ends])))
    return inv, kt, end, ks


def _rev_cumsum_cols(x: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Reverse cumulative sum along axis 1 within strata (x is B x K)."""
    rc = np.cumsum(x[:, ::-1], axis=1)[:, ::-1]
    pad = np.concatenate([rc, np.zeros((x.shape[0], 1))], axis=1)
    return rc - pad[:, end]


def survival_statistics(
    time: np.ndarray,
    event: np.ndarray,
    assignments: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    tau: float | None = None,
    ties: str = "efron",
    statistics: tuple[str, ...] = ("logrank", "cox", "rmst_difference"),
    max_iter: int = 30,
    entry: np.ndarray | None = None,
    fh: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """Log-rank chi-square, Cox log hazard ratio and RMST difference for each assignment.

    Also, on request: ``"logrank_fh"`` (Fleming–Harrington chi-square with
    ``fh = (rho, gamma)``) and ``"rmst_log_ratio"``.

    Parameters
    ----------
    time, event
        Follow-up time and event indicator of the n persons.
    assignments
        Array (B, n) or (n,) of 0/1 assignments (1 = IPS).
    strata
        Integer codes of the randomization strata (log-rank and Cox are stratified).
    tau
        Restriction time of the RMST difference (required for ``"rmst_difference"``).
    ties
        ``"efron"`` or ``"breslow"`` for the Cox coefficient.
    entry
        Delayed-entry times (risk intervals (entry, time]).
    fh
        (rho, gamma) of ``"logrank_fh"``.

    Returns
    -------
    dict
        One array of length B per requested statistic.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    z = np.atleast_2d(np.asarray(assignments, dtype=float))
    n = time.size
    s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    if {"logrank", "cox", "logrank_fh"} & set(statistics):
        inv, kt, end, ks = _keys(time, s)
        nkeys = int(inv.max()) + 1
        tot, dk, t1, d1 = _counts(inv, nkeys, event, z)
        nk = _rev_cumsum_cols(tot[None, :], end)[0]
        n1 = _rev_cumsum_cols(t1, end)
        if entry is not None:
            late_all, late1 = _late_counts(_entry_keys(np.asarray(entry, dtype=float), s, kt, ks), nkeys, z)
            nk = nk - _rev_cumsum_cols(late_all[None, :], end)[0]
            n1 = n1 - _rev_cumsum_cols(late1, end)
        ev = dk > 0
        wt_fh = None
        if "logrank_fh" in statistics:
            if fh is None:
                raise ValueError("fh = (rho, gamma) is required for the Fleming–Harrington statistic")
            # pooled KM weights: the same for every assignment
            wt_fh = fh_weights(nk, dk, end, fh[0], fh[1])[ev]
        n1, d1, nk_e, dk_e = n1[:, ev], d1[:, ev], nk[ev], dk[ev]
        frac = n1 / nk_e
        w = np.where(nk_e > 1, dk_e * (nk_e - dk_e) / np.maximum(nk_e - 1, 1), 0.0)
        for name, wt in (("logrank", None), ("logrank_fh", wt_fh)):
            if name not in statistics:
                continue
            ww = np.ones(dk_e.size) if wt is None else wt
            u = (ww * (d1 - dk_e * frac)).sum(axis=1)
            v = (ww**2 * w * frac * (1 - frac)).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[name] = u * u / v
        if "cox" in statistics:
            out["cox"] = _cox_binary(n1, nk_e - n1, d1, dk_e - d1, ties, max_iter)
    rm_stats = {"rmst_difference", "rmst_log_ratio"} & set(statistics)
    if rm_stats:
        if tau is None:
            raise ValueError("tau is required for the RMST statistics")
        if "rmst_difference" in rm_stats:
            out["rmst_difference"] = _rmst_difference(time, event, z, float(tau), entry)
        if "rmst_log_ratio" in rm_stats:
            o = rmst_by_assignment(time, event, z, float(tau), entry=entry)
            with np.errstate(divide="ignore", invalid="ignore"):
                out["rmst_log_ratio"] = np.log(o["rmst_treated"]) - np.log(o["rmst_control"])
    return out


def _entry_keys(entry: np.ndarray, strata: np.ndarray, kt: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Per person, the last (stratum, time) key of its stratum with time <= entry (-1: none)."""
    out = np.full(entry.size, -1, dtype=np.int64)
    for st in np.unique(ks):
        idx = np.flatnonzero(ks == st)
        rows = strata == st
        pos = np.searchsorted(kt[idx], entry[rows], side="right") - 1
        out[rows] = np.where(pos >= 0, idx[np.maximum(pos, 0)], -1)
    return out


def _cox_binary(n1: np.ndarray, n0: np.ndarray, d1: np.ndarray, d0: np.ndarray, ties: str,
                max_iter: int) -> np.ndarray:
    """Newton–Raphson for the log hazard ratio of a 0/1 covariate, one per row (B x K counts)."""
    b = n1.shape[0]
    d = d1 + d0
    if ties == "efron":
        # expand each event time into its d sub-steps l = 0..d-1 (same d in every row)
        dd = d[0].astype(np.int64)
        col = np.repeat(np.arange(dd.size), dd)
        first = np.repeat(np.cumsum(dd) - dd, dd)
        frac = (np.arange(col.size) - first) / dd[col]
        n1e, n0e, d1e, d0e = n1[:, col], n0[:, col], d1[:, col], d0[:, col]
        wt = np.ones(col.size)
    else:
        n1e, n0e, d1e, d0e = n1, n0, d1, d0
        frac = np.zeros(n1.shape[1])
        wt = d[0]
    obs1 = d1.sum(axis=1)
    beta = np.zeros(b)
    for _ in range(max_iter):
        r = np.exp(beta)[:, None]
        num = (n1e - frac * d1e) * r
        den = num + (n0e - frac * d0e)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(den > 0, num / den, 0.0)
        score = obs1 - (wt * m).sum(axis=1)
        info = (wt * m * (1 - m)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(info > 0, score / info, 0.0)
        # no event in one arm: the estimate diverges; bound the step as coxph does
        step = np.clip(step, -5.0, 5.0)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-11:
            break
    return beta


def _rmst_difference(time: np.ndarray, event: np.ndarray, z: np.ndarray, tau: float,
                     entry: np.ndarray | None = None) -> np.ndarray:
    _, width, arms = _km_by_arm(time, event, z, tau, entry)
    # before the first time both curves are 1: no contribution to the difference
    return (arms["treated"][2] - arms["control"][2]) @ width


def rmst_by_assignment(
    time: np.ndarray, event: np.ndarray, assignments: np.ndarray, tau: float,
    *, entry: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    r"""RMST per arm up to tau and its survRM2 standard error, for each assignment row.

    Same estimator and variance as :func:`ips_impact.estimators._survival.km.rmst`
    (:math:`\sum_{t_j\le\tau}[\int_{t_j}^\tau \hat S]^2 d_j/(n_j(n_j-d_j))`), computed
    for B assignments at once. Returns arrays of length B: ``rmst_treated``,
    ``rmst_control``, ``se_treated``, ``se_control``.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    z = np.atleast_2d(np.asarray(assignments, dtype=float))
    ut, width, arms = _km_by_arm(time, event, z, tau, entry)
    inside = ut <= tau
    out = {}
    for name, (n, ee, surv) in arms.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where((n - ee) > 0, ee / (n * (n - ee)), 0.0)
        areas = surv * width  # area of [t_j, t_{j+1} ∧ tau) under S(t_j)
        after = np.cumsum(areas[:, ::-1], axis=1)[:, ::-1]  # ∫_{t_j}^tau S
        first = min(ut[0], tau) if ut.size else tau
        out[f"rmst_{name}"] = first + areas.sum(axis=1)
        out[f"se_{name}"] = np.sqrt(np.sum(np.where(inside, after**2 * h, 0.0), axis=1))
    return out


def fine_gray_statistics(
    time: np.ndarray, status: np.ndarray, cause: int, assignments: np.ndarray, *, max_iter: int = 30,
) -> np.ndarray:
    r"""Fine–Gray log subdistribution hazard ratio of the arm alone, for each assignment.

    The model of :func:`~ips_impact.estimators._survival.finegray.fine_gray_fit` with the
    arm as its only covariate. The weighted risk set of arm a at a time u of the cause,
    :math:`\sum_{T_i \ge u} 1\{z_i = a\} + \hat G(u^-)\sum_{\text{competing},\,T_i < u}
    1\{z_i = a\}/\hat G(T_i^-)`, is linear in the assignment (the censoring curve is
    pooled), so all B fits share two sparse products and one vectorised Newton–Raphson
    (Breslow ties).
    """
    from ips_impact.estimators._survival.finegray import censoring_km_left

    time = np.asarray(time, dtype=float)
    status = np.asarray(status)
    z = np.atleast_2d(np.asarray(assignments, dtype=float))
    ev = status == cause
    cens = status == 0
    comp = ~ev & ~cens
    ut, g_left = censoring_km_left(time, cens)
    key = np.searchsorted(ut, time)
    k = ut.size
    tot, dk, t1, d1 = _counts(key, k, ev.astype(float), z)
    at_all = np.cumsum(tot[::-1])[::-1]
    at1 = np.cumsum(t1[:, ::-1], axis=1)[:, ::-1]
    wcomp = np.where(comp, 1.0 / g_left[key], 0.0)
    a_c = _onehot(key, k, wcomp)
    c_all = np.asarray(a_c.sum(axis=0)).ravel()
    c1 = np.asarray((a_c.T @ z.T).T)
    # competing exits strictly before each time, weighted by G(u-) / G(T_i-)
    before_all = np.concatenate([[0.0], np.cumsum(c_all)[:-1]]) * g_left
    before1 = np.concatenate([np.zeros((z.shape[0], 1)), np.cumsum(c1, axis=1)[:, :-1]], axis=1) * g_left
    e = dk > 0
    n1 = (at1 + before1)[:, e]
    n0 = (at_all + before_all)[None, e] - n1
    d1e = d1[:, e]
    return _cox_binary(n1, n0, d1e, dk[None, e] - d1e, "breslow", max_iter)
