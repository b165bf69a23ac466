r"""Lee (2009) trimming bounds for outcomes observed only under selection.

Earnings, hours or the contract type of a job exist only for those at work. If IPS
raises employment, the treated at work include people who would not have worked
without IPS, so comparing the earnings of workers across arms is not a causal effect.
Lee (2009) bounds the effect on the *always-selected* (those who would work in either
arm),

.. math:: \Delta = E[Y_i(1) - Y_i(0) \mid S_i(1) = S_i(0) = 1],

under random assignment and monotone selection (:math:`S_i(1) \ge S_i(0)` for every
person, or the reverse for every person). With :math:`s_z = P(S = 1 \mid Z = z)` and,
say, :math:`s_1 \ge s_0`, the selected treated are a mixture of always-selected (share
:math:`1 - p`, :math:`p = (s_1 - s_0)/s_1`) and persons selected only because of
treatment. The worst cases put the latter at the top or the bottom of the outcome
distribution:

.. math:: \Delta_L = \frac{1}{1-p}\int_0^{1-p} F^{-1}_{Y \mid Z=1,S=1}(u)\,du
                    - E[Y \mid Z=0, S=1], \qquad
          \Delta_U = \frac{1}{1-p}\int_p^{1} F^{-1}_{Y \mid Z=1,S=1}(u)\,du
                    - E[Y \mid Z=0, S=1].

When :math:`s_0 > s_1` the control arm is trimmed instead (with the signs reversed).

Estimation. The trimmed means are the sample analogues of the quantile integrals: with
the :math:`n_s` selected outcomes of the trimmed arm sorted and
:math:`m = (1-p)\,n_s` kept, the lower mean averages the :math:`\lfloor m \rfloor`
smallest values plus the fraction :math:`m - \lfloor m \rfloor` of the next one. This
equals the smallest mean over all sub-samples of size :math:`m` (when it is an
integer) and treats ties exactly, unlike trimming at ``y <= quantile``.

Standard errors. ``se_method="analytic"`` uses Lee (2009, Proposition 3): for the
lower bound (treated arm trimmed; :math:`\pi_z` the share assigned to arm z, N the
persons with a known selection status)

.. math:: N\,\mathrm{Var}(\hat\Delta_L) \approx
   \frac{\sigma^2_L + p\,(y_{1-p} - \mu_L)^2}{s_1 \pi_1 (1-p)}
   + \Big(\frac{y_{1-p} - \mu_L}{1-p}\Big)^2 V_p
   + \frac{\sigma^2_0}{s_0 \pi_0},\quad
   V_p = (1-p)^2\Big(\frac{1-s_0}{s_0\pi_0} + \frac{1-s_1}{s_1\pi_1}\Big),

with :math:`\mu_L, \sigma^2_L` the mean and variance of the kept (lower) part,
:math:`y_{1-p}` the trimming quantile and :math:`\sigma^2_0` the variance of the
selected controls; the upper bound is symmetric. ``se_method="bootstrap"`` resamples
persons within arm × stratum (``n_bootstrap`` draws, ``seed``) and takes the standard
deviation of the bootstrap bounds.

The confidence interval for :math:`\Delta` is that of Imbens and Manski (2004); see
:func:`ips_impact.results.effect.imbens_manski_interval`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators._options import check_horizon, check_window
from ips_impact.results.base import horizon_label
from ips_impact.results.effect import BoundsResult

__all__ = ["lee_bounds", "trimming_bounds", "SE_METHODS"]

#: Allowed values of ``se_method``.
SE_METHODS = ("analytic", "bootstrap")


def _trimmed(sorted_y: np.ndarray, keep: float) -> tuple[float, float, float, float, float, float]:
    """Lower and upper trimmed means of a sorted sample keeping a share ``keep``.

    Returns ``(mean_low, var_low, q_low, mean_high, var_high, q_high)``: mean and
    (weighted) variance of the lower kept part and its boundary quantile
    :math:`y_{keep}`, then the same for the upper part (boundary :math:`y_{1-keep}`).
    """
    n = sorted_y.size
    if keep >= 1.0:  # nothing trimmed: both parts are the whole sample (avoid round-off)
        mean, var = float(sorted_y.mean()), float(sorted_y.var())
        return mean, var, float(sorted_y[-1]), mean, var, float(sorted_y[0])
    m = keep * n
    if abs(m - round(m)) < 1e-9:  # (s1 - s0)/s1 in floating point: snap to whole persons
        m = float(round(m))
    w = np.clip(m - np.arange(n), 0.0, 1.0)  # weight of the i-th smallest value
    lo_mean = float(w @ sorted_y / m)
    lo_var = float(w @ (sorted_y - lo_mean) ** 2 / m)
    wr = w[::-1]
    hi_mean = float(wr @ sorted_y / m)
    hi_var = float(wr @ (sorted_y - hi_mean) ** 2 / m)
    k = max(int(math.ceil(m - 1e-12)), 1)
    return lo_mean, lo_var, float(sorted_y[k - 1]), hi_mean, hi_var, float(sorted_y[n - k])


def _bounds_core(y: np.ndarray, s: np.ndarray, z: np.ndarray) -> dict[str, Any]:
    """Point estimates and analytic standard errors (arrays already cleaned)."""
    n = z.size
    n1, n0 = int(z.sum()), int(n - z.sum())
    sel1, sel0 = (z == 1) & s, (z == 0) & s
    k1, k0 = int(sel1.sum()), int(sel0.sum())
    s1, s0 = k1 / n1, k0 / n0
    pi1, pi0 = n1 / n, n0 / n
    y1, y0 = np.sort(y[sel1]), np.sort(y[sel0])
    if s1 >= s0:
        trimmed, p = "treated", (s1 - s0) / s1
        ys, s_t, pi_t = y1, s1, pi1
        y_other, s_o, pi_o = y0, s0, pi0
    else:
        trimmed, p = "control", (s0 - s1) / s0
        ys, s_t, pi_t = y0, s0, pi0
        y_other, s_o, pi_o = y1, s1, pi1
    keep = 1.0 - p
    lo_m, lo_v, q_lo, hi_m, hi_v, q_hi = _trimmed(ys, keep)
    mu_o = float(y_other.mean())
    var_o = float(y_other.var())
    vp = keep**2 * ((1 - s0) / (s0 * pi0) + (1 - s1) / (s1 * pi1))

    def v_trim(mean: float, var: float, q: float) -> float:
        return (var + p * (q - mean) ** 2) / (s_t * pi_t * keep) + ((q - mean) / keep) ** 2 * vp

    v_other = var_o / (s_o * pi_o)
    v_lo = v_trim(lo_m, lo_v, q_lo) + v_other
    v_hi = v_trim(hi_m, hi_v, q_hi) + v_other
    if trimmed == "treated":
        lower, upper = lo_m - mu_o, hi_m - mu_o
        se_lower, se_upper = math.sqrt(v_lo / n), math.sqrt(v_hi / n)
        control_mean = mu_o
    else:
        # control trimmed: keeping its high values gives the lower bound of the effect
        lower, upper = mu_o - hi_m, mu_o - lo_m
        se_lower, se_upper = math.sqrt(v_hi / n), math.sqrt(v_lo / n)
        control_mean = float(y0.mean())
    return {
        "lower": lower, "upper": upper, "se_lower": se_lower, "se_upper": se_upper,
        "trim_share": p, "trimmed_arm": trimmed, "share_selected_treated": s1,
        "share_selected_control": s0, "nobs": n, "n_treated": n1, "n_control": n0,
        "n_selected_treated": k1, "n_selected_control": k0, "control_mean": control_mean,
        "naive_difference": float(y1.mean() - y0.mean()),
    }


class _Cells:
    """Index sets of the cells (``by`` groups) × arms, selected outcomes sorted once.

    Bounds for any person weights ``w`` (ones for the estimate, bootstrap multiplicities
    for a replicate) then cost a few weighted sums per cell.
    """

    def __init__(self, y: np.ndarray, s: np.ndarray, z: np.ndarray, cells: np.ndarray) -> None:
        self.y = y
        self.labels = np.unique(cells)
        self.members: list[tuple[np.ndarray, np.ndarray]] = []
        self.selected: list[tuple[np.ndarray, np.ndarray]] = []
        for c in self.labels:
            mem, sel = [], []
            for a in (0, 1):
                m = (cells == c) & (z == a)
                idx = np.flatnonzero(m & s)
                mem.append(np.flatnonzero(m))
                sel.append(idx[np.argsort(y[idx], kind="stable")])
            self.members.append((mem[0], mem[1]))
            self.selected.append((sel[0], sel[1]))

    def bounds(self, w: np.ndarray) -> tuple[float, float, int, float, float]:
        r"""(lower, upper, trimmed arm, s1, s0) for person weights ``w``.

        Within cell c the arm t with the larger design-weighted selection rate overall
        is trimmed by :math:`p_c = \max(0, (s_{tc} - s_{oc})/s_{tc})`; the cell bounds
        are averaged with the weights :math:`P(c)\,s_{oc}` of the always-selected.
        NaN when a cell with always-selected persons has no selected person in arm t.
        """
        n_c = np.array([w[m0].sum() + w[m1].sum() for m0, m1 in self.members])
        tot = np.array([[w[m0].sum(), w[m1].sum()] for m0, m1 in self.members])
        sel_w = [(w[i0], w[i1]) for i0, i1 in self.selected]
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.array([[a.sum(), b.sum()] for a, b in sel_w]) / tot
        pc = n_c / n_c.sum()
        shares = np.nan_to_num(shares)  # an arm absent from a cell contributes no one
        s0, s1 = float(pc @ shares[:, 0]), float(pc @ shares[:, 1])
        t = 1 if s1 >= s0 else 0
        lows, highs, omega = [], [], []
        for j, (wsel, isel) in enumerate(zip(sel_w, self.selected)):
            st, so = shares[j, t], shares[j, 1 - t]
            if so == 0:
                continue  # no always-selected person here
            if st == 0:
                return (math.nan, math.nan, t, s1, s0)
            p = max(0.0, (st - so) / st)
            wt, yt = wsel[t], self.y[isel[t]]
            m = (1.0 - p) * wt.sum()
            cw = np.cumsum(wt)
            keep_lo = np.clip(m - (cw - wt), 0.0, wt)  # weight kept from the bottom
            cwr = np.cumsum(wt[::-1])[::-1]
            keep_hi = np.clip(m - (cwr - wt), 0.0, wt)  # weight kept from the top
            lo_m, hi_m = keep_lo @ yt / m, keep_hi @ yt / m
            wo, yo = wsel[1 - t], self.y[isel[1 - t]]
            mu_o = wo @ yo / wo.sum()
            if t == 1:
                lows.append(lo_m - mu_o)
                highs.append(hi_m - mu_o)
            else:
                lows.append(mu_o - hi_m)
                highs.append(mu_o - lo_m)
            omega.append(pc[j] * so)
        om = np.array(omega) / np.sum(omega)
        return (float(om @ np.array(lows)), float(om @ np.array(highs)), t, s1, s0)


def _bootstrap(cells: _Cells, z: np.ndarray, groups: np.ndarray, n_bootstrap: int,
               seed: int) -> tuple[float, float, int]:
    """Standard deviations of the bounds over resamples of persons within arm × stratum.

    Each replicate is a vector of multiplicities (multinomial within arm × stratum, so
    that every resample keeps the design's arm sizes); the bounds are recomputed from
    weighted sums. Returns the two standard deviations and the number of replicates in
    which the bounds were undefined (left out).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    n = z.size
    counts = np.zeros((n_bootstrap, n), dtype=np.float64)
    cell = groups * 2 + z
    for c in np.unique(cell):
        idx = np.flatnonzero(cell == c)
        counts[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), size=n_bootstrap)
    lows, highs = np.empty(n_bootstrap), np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        lows[b], highs[b], _, _, _ = cells.bounds(counts[b])
    ok = np.isfinite(lows) & np.isfinite(highs)
    return float(np.std(lows[ok], ddof=1)), float(np.std(highs[ok], ddof=1)), int((~ok).sum())


def trimming_bounds(
    y: Any,
    selected: Any,
    arm: Any,
    *,
    outcome: str = "y",
    selection: str = "selected",
    strata: Any = None,
    by: Any = None,
    level: float = 0.95,
    se_method: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    horizon: Any = None,
    spec: dict[str, Any] | None = None,
    warnings_: Sequence[str] = (),
    ledger: Any = None,
) -> BoundsResult:
    r"""Lee bounds from plain arrays (one entry per person).

    Parameters
    ----------
    y
        Outcome; only its values where ``selected`` is true are used (may be NaN
        elsewhere).
    selected
        0/1 (or bool): whether the outcome is observed (e.g. at work). No missing.
    arm
        0/1 assignment.
    strata
        Stratum codes, used only to resample within arm × stratum for the bootstrap.
    by
        Cell codes (one per person, no missing): bounds within cells, averaged over the
        always-selected (see :func:`lee_bounds`).
    level, se_method, n_bootstrap, seed
        See :func:`lee_bounds`.

    Returns
    -------
    BoundsResult
        Bounds on :math:`E[Y(1) - Y(0) \mid S(1) = S(0) = 1]` (see the module docstring).
    """
    if se_method is None:
        se_method = "analytic" if by is None else "bootstrap"
    if se_method not in SE_METHODS:
        raise EstimationError(
            f"se_method must be one of {', '.join(repr(m) for m in SE_METHODS)}; you passed {se_method!r}",
            fix="use 'analytic' (Lee 2009) or 'bootstrap'.",
        )
    if by is not None and se_method == "analytic":
        raise EstimationError(
            "the analytic standard errors are those of pooled bounds; bounds within cells (by=) "
            "need the bootstrap",
            fix="use se_method='bootstrap' (the default with by=), or drop by=.",
        )
    if not isinstance(level, float) or not 0 < level < 1:
        raise EstimationError(f"level must be a float strictly between 0 and 1; you passed {level!r}")
    if se_method == "bootstrap" and (not isinstance(n_bootstrap, int) or n_bootstrap < 50):
        raise EstimationError(f"n_bootstrap must be an int >= 50; you passed {n_bootstrap!r}",
                              fix="use e.g. n_bootstrap=1000.")
    yv = np.asarray(y, dtype=float)
    sv = np.asarray(selected, dtype=float)
    zv = np.asarray(arm, dtype=float)
    if not (yv.shape == sv.shape == zv.shape) or yv.ndim != 1:
        raise EstimationError(
            f"y, selected and arm must be vectors of the same length; got shapes "
            f"{yv.shape}, {sv.shape}, {zv.shape}"
        )
    for name, v in (("selected", sv), ("arm", zv)):
        if not np.isin(v, (0.0, 1.0)).all():
            raise EstimationError(f"{name} must hold only 0 and 1 (no missing values)",
                                  column=name, n_rows=int((~np.isin(v, (0.0, 1.0))).sum()))
    s = sv == 1.0
    z = zv.astype(np.int64)
    if (s & ~np.isfinite(yv)).any():
        raise EstimationError(
            "the outcome is missing for selected persons", column=outcome,
            n_rows=int((s & ~np.isfinite(yv)).sum()),
            fix="set these persons aside (lee_bounds does this and records it in the ledger).",
        )
    for a, label in ((1, "treated"), (0, "control")):
        k = int((s & (z == a)).sum())
        if k < 2:
            raise EstimationError(
                f"only {k} selected person(s) in the {label} arm: the bounds are not defined",
                column=selection,
                fix="choose a horizon or window where more persons are selected.",
            )
    core = _bounds_core(yv, s, z)
    new_warnings: list[str] = []
    if by is None:
        cells = _Cells(yv, s, z, np.zeros(z.size, dtype=np.int64))
    else:
        by_arr = np.asarray(by)
        if by_arr.shape != z.shape or pd.isna(by_arr).any():
            raise EstimationError(
                "by must give one cell per person, without missing values",
                column="by", n_rows=int(pd.isna(by_arr).sum()) if by_arr.shape == z.shape else None,
            )
        codes, _ = pd.factorize(by_arr, sort=True)
        cells = _Cells(yv, s, z, codes)
        lower, upper, t, s1, s0 = cells.bounds(np.ones(z.size))
        if not np.isfinite(lower):
            raise EstimationError(
                "a cell of by= has always-selected persons but nobody selected in the arm to trim",
                column=selection, fix="use coarser cells (e.g. by='region') or drop by=.",
            )
        st, so = (s1, s0) if t == 1 else (s0, s1)
        core.update(lower=lower, upper=upper, trim_share=(st - so) / st,
                    trimmed_arm="treated" if t == 1 else "control",
                    share_selected_treated=s1, share_selected_control=s0,
                    se_lower=math.nan, se_upper=math.nan)
    if se_method == "bootstrap":
        g = np.zeros(z.size, dtype=np.int64) if strata is None else pd.factorize(np.asarray(strata))[0]
        core["se_lower"], core["se_upper"], n_bad = _bootstrap(cells, z, g, n_bootstrap, seed)
        if n_bad:
            new_warnings.append(f"the bounds were undefined in {n_bad} of {n_bootstrap} bootstrap "
                                "replicates (left out of the standard errors)")
    for w in new_warnings:
        warnings.warn(w, EstimationWarning, stacklevel=2)
    return BoundsResult(
        outcome=outcome, selection=selection, horizon=horizon, level=level,
        se_method=se_method, spec=spec or {"estimator": "lee_bounds", "se_method": se_method},
        warnings=tuple(warnings_) + tuple(new_warnings), ledger=ledger, **core,
    )


def lee_bounds(
    study: Any,
    outcome: str,
    *,
    selection: str,
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    by: str | None = None,
    level: float = 0.95,
    se_method: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> BoundsResult:
    r"""Lee (2009) bounds on the effect of IPS on an outcome observed only under ``selection``.

    Estimand: :math:`\Delta = E[Y_i(1) - Y_i(0) \mid S_i(1) = S_i(0) = 1]`, the effect on
    those selected (e.g. at work) whichever arm they were assigned to; identified up
    to the interval :math:`[\Delta_L, \Delta_U]` under monotone selection (see the
    module docstring for the formulas). The direction of monotonicity is read from the
    data: the arm with the larger selection rate is trimmed.

    Parameters
    ----------
    study
        A :class:`~ips_impact.study.Study`.
    outcome
        Numeric panel column (e.g. ``"earnings"``, ``"fte"``).
    selection
        0/1 panel column under which the outcome is observed (e.g. ``"employed"``).
    horizon
        Event time k: :math:`S_i` and :math:`Y_i` at k.
    window
        ``(a, b)``: :math:`S_i = 1` if selected in any period a ≤ k ≤ b, and
        :math:`Y_i` = mean of the outcome over the selected periods of the window.
    by
        Bounds within cells, then averaged: ``"stratum"`` (the randomization strata) or a
        categorical column of ``persons`` (e.g. ``"region"``). Within cell c the trimming
        share is :math:`p_c = \max(0, (s_{1c} - s_{0c})/s_{1c})` (for the arm trimmed
        overall) and the cell bounds are averaged with the weights
        :math:`P(c)\,s_{0c}` of the always-selected (Lee 2009, section 4.2). This is
        valid with assignment probabilities that differ across strata (``by="stratum"``)
        and tightens the bounds when the cells predict the outcome; with cells
        unrelated to the outcome it can widen them in small samples.
    level
        Confidence level of the Imbens–Manski interval.
    se_method
        ``"analytic"`` (Lee 2009, Proposition 3; the default without ``by``) or
        ``"bootstrap"`` (the default, and the only choice, with ``by``).
    n_bootstrap, seed
        Bootstrap draws (resampling persons within arm × stratum) and seed.

    Returns
    -------
    BoundsResult

    Notes
    -----
    Persons whose selection status is unknown (no panel row) or who are selected but
    lack the outcome are set aside and counted per arm in the ledger. Without ``by``
    the bounds pool the strata, which assumes the same assignment probability in every
    stratum; with unequal probabilities a warning recommends ``by="stratum"``.
    """
    study.require_outcome(outcome)
    study.require_outcome(selection)
    if (horizon is None) == (window is None):
        raise EstimationError(
            "give exactly one of horizon= or window=",
            fix="use horizon=k for one event time or window=(a, b) for a range.",
        )
    kmin, kmax = study.k_range
    if horizon is not None:
        ks = [check_horizon(horizon)]
    else:
        a, b = check_window(window)
        ks = list(range(a, b + 1))
    bad = [k for k in (ks[0], ks[-1]) if not kmin <= k <= kmax]
    if bad:
        raise EstimationError(
            f"{'horizon' if horizon is not None else 'window'} {ks[0] if horizon is not None else tuple(window)} "
            f"is outside the observed follow-up (k from {kmin} to {kmax})",
            table="panel", column="k", fix=f"choose event times between {kmin} and {kmax}.",
        )
    S = study.outcome_matrix(selection, ks)
    Y = study.outcome_matrix(outcome, ks)
    vals = S[np.isfinite(S)]
    if not np.isin(vals, (0.0, 1.0)).all():
        raise DataContractError(
            f"selection column {selection!r} must be 0/1",
            table="panel", column=selection, n_rows=int((~np.isin(vals, (0.0, 1.0))).sum()),
            examples=sorted(set(vals[~np.isin(vals, (0.0, 1.0))].tolist()))[:5],
            fix="use a 0/1 indicator such as 'employed'.",
        )
    arm = np.asarray(study.design.arm, dtype=np.int64)
    if horizon is not None:
        s_known = np.isfinite(S[:, 0])
        sel = s_known & (S[:, 0] == 1)
        y = np.where(sel, Y[:, 0], np.nan)
    else:
        s_known = np.isfinite(S).any(axis=1)
        sel_mat = S == 1
        sel = sel_mat.any(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ysel = np.where(sel_mat & np.isfinite(Y), Y, 0.0).sum(axis=1)
            nsel = (sel_mat & np.isfinite(Y)).sum(axis=1)
            y = np.where(nsel > 0, ysel / np.maximum(nsel, 1), np.nan)
        y = np.where(sel, y, np.nan)
    y_missing = sel & ~np.isfinite(y)
    keep = s_known & ~y_missing
    ledger, warn = [], []
    for mask, reason in ((~s_known, f"selection {selection!r} not observed"),
                         (y_missing, f"selected but outcome {outcome!r} missing")):
        if mask.any():
            n1, n0 = int((mask & (arm == 1)).sum()), int((mask & (arm == 0)).sum())
            ledger.append({"reason": reason, "n_rows": n1 + n0, "n_treated": n1, "n_control": n0})
    if y_missing.any():
        warn.append(f"{int(y_missing.sum())} selected person(s) lack the outcome {outcome!r} and are "
                    "set aside: the bounds assume these are missing at random within the selected")
    probs = np.asarray(study.design.counts["p_treated"], dtype=float)
    probs = probs[np.isfinite(probs)]
    # the one rule of every estimator: Design.equal_probabilities
    if by is None and probs.size > 1 and not study.design.equal_probabilities:
        warn.append("assignment probabilities differ across strata (from "
                    f"{probs.min():.3f} to {probs.max():.3f}); pooled Lee bounds assume equal "
                    "probabilities: use by='stratum'")
    by_codes = None
    if by is not None:
        persons = study.persons
        if by == "stratum":
            by_codes = np.asarray(study.design.stratum)
        elif isinstance(by, str) and by in persons.columns and by not in ("person_id", "household_id"):
            col = persons[by]
            if col.isna().any():
                raise EstimationError(f"by column {by!r} has missing values", table="persons", column=by,
                                      n_rows=int(col.isna().sum()),
                                      fix="fill them (e.g. an 'unknown' level) or choose another column.")
            by_codes = pd.factorize(col.astype(str), sort=True)[0]
        else:
            raise EstimationError(
                f"by must be 'stratum' or a column of persons; you passed {by!r}",
                table="persons",
                fix="use by='stratum' or e.g. by='region'.",
            )
    if se_method is None:
        se_method = "analytic" if by is None else "bootstrap"
    hl = horizon_label(horizon, window)
    spec = {"estimator": "lee_bounds", "outcome": outcome, "selection": selection,
            "horizon": horizon, "window": None if window is None else tuple(int(w) for w in window),
            "by": by, "level": level, "se_method": se_method,
            "n_bootstrap": n_bootstrap if se_method == "bootstrap" else None,
            "seed": seed if se_method == "bootstrap" else None}
    result = trimming_bounds(
        y[keep], sel[keep].astype(float), arm[keep], outcome=outcome, selection=selection,
        strata=np.asarray(study.design.stratum)[keep],
        by=None if by_codes is None else by_codes[keep], level=level, se_method=se_method,
        n_bootstrap=n_bootstrap, seed=seed, horizon=hl, spec=spec, warnings_=warn, ledger=ledger,
    )
    for w in warn:
        warnings.warn(w, EstimationWarning, stacklevel=2)
    return result
