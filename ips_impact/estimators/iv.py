r"""The effect of IPS on those who take it up: two-stage least squares (LATE).

Not everyone offered IPS starts it (and, rarely, a control person gets IPS-like
support). With :math:`Z_i` the assigned arm, :math:`D_i` the take-up
(``ips_started``) and potential take-up :math:`D_i(z)`, under random assignment, the
exclusion restriction (the offer affects outcomes only through take-up) and
monotonicity (:math:`D_i(1) \ge D_i(0)`), Imbens and Angrist (1994) give

.. math:: \tau_{LATE} = E[Y_i(1) - Y_i(0) \mid D_i(1) > D_i(0)]
          = \frac{E[Y_i \mid Z_i = 1] - E[Y_i \mid Z_i = 0]}
                 {E[D_i \mid Z_i = 1] - E[D_i \mid Z_i = 0]},

the effect on *compliers*; the denominator is the complier share. It is estimated by
2SLS of :math:`Y_i = \alpha + \tau D_i + X_i'\beta + \sum_s \gamma_s 1[s(i)=s] + e_i`
with :math:`Z_i` instrumenting :math:`D_i` (linearmodels ``IV2SLS``). Without
covariates or strata, :math:`\hat\tau` is exactly the Wald ratio above; with them, a
weighted average of covariate-cell LATEs.

Variance. With :math:`\hat X` the regressors with :math:`D` replaced by its
first-stage fitted values, :math:`M = (\hat X'\hat X)^{-1}` and the structural
residuals :math:`e = y - X\hat\beta` (computed with the *actual* take-up), every
covariance type of :mod:`ips_impact.inference.covariance` applies with :math:`\hat X`
in place of :math:`X`: :math:`\hat V = c\,M\,(\sum_g \hat X_g' A_g e_g e_g' A_g \hat
X_g)\,M`, where the HC2/HC3/CR2 adjustments :math:`A_g` use the leverages of
:math:`\hat X` (:math:`h_{ii} = \hat x_i' M \hat x_i`). This is the definition of R
``estimatr::iv_robust`` (its ``lm_robust_fit`` on the first-stage fitted values with
the residuals of the original regressors), and the numbers match it to 1e-8 (see
``tests/reference/r/iv_bounds.R``). HC0 equals linearmodels' ``"robust"``
covariance; HC1 is estimatr's ``"stata"``. Degrees of freedom: N − K for the HC
types, as in estimatr; G − 1 for CR0/CR1; Satterthwaite for CR2.

Diagnostics (``result.diagnostics``): the first-stage coefficient of the arm (the
complier share under monotonicity) with its robust standard error and robust F
(:math:`t^2`, same covariance type), take-up rates by arm, and the reduced-form
(ITT) effect on the outcome. A robust first-stage F below 10 draws a weak-instrument
warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators._data import (
    arm_counts,
    cluster_labels,
    covariate_matrix,
    dummies,
    require_numeric_outcome,
)
from ips_impact.inference.covariance import OLSDesign, resolve_cov_type
from ips_impact.results.base import critical_value, horizon_label
from ips_impact.results.effect import EffectResult

__all__ = ["late", "two_stage_least_squares", "IVFit", "WEAK_INSTRUMENT_F"]

#: Below this robust first-stage F a weak-instrument warning is raised (Staiger–Stock).
WEAK_INSTRUMENT_F = 10.0


class IVFit:
    """Plain 2SLS fit (coefficients, covariance, df) on arrays; see :func:`two_stage_least_squares`."""

    __slots__ = ("names", "coef", "vcov", "df", "nobs", "cov_type", "n_clusters", "first_stage")

    def __init__(self, names: tuple[str, ...], coef: np.ndarray, vcov: np.ndarray, df: np.ndarray,
                 nobs: int, cov_type: str, n_clusters: int | None, first_stage: dict[str, Any]) -> None:
        for a in (coef, vcov, df):
            a.setflags(write=False)
        self.names, self.coef, self.vcov, self.df = names, coef, vcov, df
        self.nobs, self.cov_type, self.n_clusters, self.first_stage = nobs, cov_type, n_clusters, first_stage

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    def params(self) -> pd.Series:
        return pd.Series(self.coef, index=list(self.names))

    def vcov_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.vcov, index=list(self.names), columns=list(self.names))


def two_stage_least_squares(
    y: Any,
    endog: Any,
    instruments: Any,
    exog: Any,
    *,
    endog_name: str = "endog",
    exog_names: Sequence[str] | None = None,
    instrument_names: Sequence[str] | None = None,
    cov_type: str = "HC2",
    clusters: Any = None,
) -> IVFit:
    r"""2SLS with one endogenous regressor and estimatr-style robust covariances.

    Estimand: :math:`\beta` in :math:`y = d\,\tau + W\gamma + e` with
    :math:`E[(Z, W)'e] = 0`; :math:`\hat\beta = (\hat X'X)^{-1}\hat X'y` with
    :math:`X = (d, W)` and :math:`\hat X = P_{(Z,W)}X`. Covariance: see the module
    docstring. Coefficients come from linearmodels ``IV2SLS``.

    Parameters
    ----------
    y, endog
        Outcome and endogenous regressor (N,).
    instruments
        Excluded instruments (N,) or (N, L), L ≥ 1.
    exog
        Exogenous regressors (N, p), including the intercept.
    cov_type
        ``"HC0"``–``"HC3"``, ``"CR0"``, ``"CR1"``, ``"CR2"``.
    clusters
        Cluster labels for the CR types.

    Returns
    -------
    IVFit
        Coefficients ordered ``[endog, exog…]``.
    """
    from linearmodels.iv import IV2SLS

    yv = np.asarray(y, dtype=float)
    d = np.asarray(endog, dtype=float)
    Z = np.asarray(instruments, dtype=float)
    Z = Z[:, None] if Z.ndim == 1 else Z
    W = np.asarray(exog, dtype=float)
    W = W[:, None] if W.ndim == 1 else W
    n = yv.size
    if not (d.shape == (n,) and Z.shape[0] == n and W.shape[0] == n):
        raise EstimationError("y, endog, instruments and exog must have the same number of rows")
    for name, a in (("y", yv), ("endog", d), ("instruments", Z), ("exog", W)):
        if not np.isfinite(a).all():
            raise EstimationError(f"{name} holds missing or infinite values",
                                  n_rows=int((~np.isfinite(a)).reshape(n, -1).any(axis=1).sum()))
    wnames = tuple(exog_names) if exog_names is not None else tuple(f"exog{j}" for j in range(W.shape[1]))
    znames = tuple(instrument_names) if instrument_names is not None else tuple(
        f"instrument{j}" for j in range(Z.shape[1]))
    names = (str(endog_name), *wnames)

    # First stage (also gives X-hat); refuses collinear instruments/exog with a named message.
    ZW = np.column_stack([Z, W])
    fs = OLSDesign(ZW, (*znames, *wnames), cov_type=cov_type, clusters=clusters)
    fs_fit = fs.fit(d)
    d_hat = ZW @ fs_fit.coef
    X = np.column_stack([d, W])
    X_hat = np.column_stack([d_hat, W])

    with warnings.catch_warnings():
        # linearmodels' own messages (e.g. on constant detection) are not for our users
        warnings.simplefilter("ignore")
        res = IV2SLS(yv, W, d, Z).fit(cov_type="unadjusted")
    coef = np.asarray(res.params, dtype=float)
    # linearmodels orders parameters [exog…, endog]; ours are [endog, exog…]
    coef = np.concatenate([coef[-1:], coef[:-1]])

    design = OLSDesign(X_hat, names, cov_type=cov_type, clusters=clusters)
    resid = yv - X @ coef
    S = design.scores(resid)
    V = design.scale * (S.T @ S)
    V = (V + V.T) / 2.0
    df = np.array([design.df(j) for j in range(len(names))], dtype=float)

    L = Z.shape[1]
    b = fs_fit.coef[:L]
    Vz = fs_fit.vcov[:L, :L]
    f_robust = float(b @ np.linalg.solve(Vz, b)) / L
    first = {
        "coef": dict(zip(znames, (float(v) for v in b))),
        "std_error": dict(zip(znames, (float(v) for v in np.sqrt(np.diag(Vz))))),
        "f_robust": f_robust,
        "df_num": L,
        "df_denom": float(fs_fit.df[0]),
    }
    return IVFit(names, coef, V, df, n, cov_type, design.n_clusters, first)


def late(
    study: Any,
    outcome: str,
    *,
    takeup: str = "ips_started",
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    covariates: Sequence[str] = (),
    strata: bool = True,
    cov_type: str | None = "HC2",
    cluster: str | None = None,
    level: float = 0.95,
) -> EffectResult:
    r"""Local average treatment effect of IPS take-up, with assignment as the instrument.

    Estimand: :math:`\tau_{LATE} = E[Y_i(1) - Y_i(0) \mid D_i(1) > D_i(0)]`, the
    effect of IPS on compliers (persons who start IPS if and only if offered it); see
    the module docstring for the assumptions, the 2SLS estimator and its variance.

    Parameters
    ----------
    study
        A :class:`~ips_impact.study.Study` with a take-up column in ``persons``.
    outcome
        Numeric panel outcome.
    takeup
        0/1 column of ``persons`` (default ``"ips_started"``, from the takeup table).
    horizon, window
        Outcome at event time k = ``horizon``, or the person's mean over
        ``window=(a, b)`` (persons observed at every k of the window), as in ``itt``.
    covariates
        Baseline covariates (columns of ``persons``, no missing values), additive in
        both stages.
    strata
        Stratum fixed effects in both stages.
    cov_type
        ``"HC0"``–``"HC3"`` (default ``"HC2"``); ``"CR0"``, ``"CR1"``, ``"CR2"`` with
        ``cluster``. ``None`` means HC2 (CR2 with a cluster).
    cluster
        Column of ``persons`` to cluster on (e.g. ``"household_id"``).
    level
        Confidence level.

    Returns
    -------
    EffectResult
        ``term`` = the take-up column, ``estimand = "late"``; ``diagnostics`` holds
        ``first_stage_f``, ``complier_share`` (with ``complier_share_se``),
        ``takeup_treated``, ``takeup_control``, ``itt_estimate``, ``itt_std_error``.
    """
    critical_value(level)
    persons: pd.DataFrame = study.persons
    if not isinstance(takeup, str) or takeup not in persons.columns:
        raise DataContractError(
            f"take-up column {takeup!r} is not in persons",
            table="takeup", column=str(takeup),
            fix="pass a takeup table to Study.from_frames (ips_started or ips_start_date), "
                "or name a 0/1 column of persons with takeup=.",
        )
    dcol = persons[takeup]
    if dcol.isna().any():
        raise DataContractError(
            f"take-up column {takeup!r} has missing values", table="takeup", column=takeup,
            n_rows=int(dcol.isna().sum()), fix="record take-up (0/1) for every randomized person.",
        )
    dvals = pd.to_numeric(dcol, errors="coerce").to_numpy(dtype=float)
    if not np.isin(dvals, (0.0, 1.0)).all():
        raise DataContractError(
            f"take-up column {takeup!r} must be 0/1", table="takeup", column=takeup,
            n_rows=int((~np.isin(dvals, (0.0, 1.0))).sum()), fix="code take-up as 0/1.",
        )
    if not isinstance(strata, bool):
        raise EstimationError(f"strata must be True or False; you passed {strata!r}")
    if (horizon is None) == (window is None):
        raise EstimationError(
            "give exactly one of horizon= or window=",
            fix="use horizon=k for one event time or window=(a, b) for the person's mean over a range.",
        )
    hl = horizon_label(horizon, window)
    kmin, kmax = study.k_range
    if horizon is not None:
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
            raise EstimationError(f"horizon must be an integer event time; you passed {horizon!r}")
        ks = np.array([int(horizon)])
    else:
        try:
            a, b = (int(v) for v in window)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise EstimationError(f"window must be a pair of integer event times (a, b); you passed {window!r}") from None
        if a > b:
            raise EstimationError(f"window=({a}, {b}) is empty: a must not exceed b", fix=f"pass window=({b}, {a})")
        ks = np.arange(a, b + 1)
    if ks[0] < kmin or ks[-1] > kmax:
        raise EstimationError(
            f"{'horizon ' + str(int(ks[0])) if horizon is not None else f'window ({ks[0]}, {ks[-1]})'} "
            f"is outside the observed follow-up (k from {kmin} to {kmax})",
            table="panel", column="k", fix=f"choose event times between {kmin} and {kmax}",
        )
    study.require_outcome(outcome)
    Ymat = study.outcome_matrix(outcome, ks)
    yall = Ymat[:, 0] if ks.size == 1 else Ymat.mean(axis=1)  # NaN unless observed at every k
    arm_all = np.asarray(study.design.arm, dtype=np.int64)
    observed = np.isfinite(yall)
    pi = np.flatnonzero(observed)
    ledger = []
    miss = ~observed
    n_miss = arm_counts(arm_all[miss])
    if miss.any():
        what = "at the horizon" if horizon is not None else "at every period of the window"
        ledger.append({"reason": f"persons without {outcome} {what} (excluded)",
                       "n_rows": int(miss.sum()), "n_treated": n_miss[0], "n_control": n_miss[1]})
    y = yall[pi]
    require_numeric_outcome(y, outcome)
    z = arm_all[pi].astype(float)
    d = dvals[pi]
    if z.min() == z.max():
        raise EstimationError("every person with an observed outcome is in the same arm; there is no contrast",
                              table="panel", column=outcome, fix="check the horizon or window")
    sel = persons.iloc[pi]
    covs = (covariates,) if isinstance(covariates, str) else tuple(covariates)
    if takeup in covs:
        raise EstimationError(f"the take-up column {takeup!r} cannot also be a covariate", column=takeup)
    Xc, cnames = covariate_matrix(sel, covs)
    blocks = [np.ones((pi.size, 1)), Xc]
    wnames: list[str] = ["(Intercept)", *cnames]
    if strata:
        S, snames = dummies(np.asarray(study.design.stratum)[pi], list(study.design.stratum_labels), "stratum")
        blocks.append(S)
        wnames.extend(snames)
    W = np.hstack(blocks)
    clusters = None if cluster is None else cluster_labels(persons, cluster)[pi]
    cov_type = resolve_cov_type(cov_type, clustered=clusters is not None)

    with warnings.catch_warnings(record=True) as caught:
        # the three fits share clusters: collect their warnings and say each once
        warnings.simplefilter("always")
        fit = two_stage_least_squares(y, d, z, W, endog_name=takeup, exog_names=wnames,
                                      instrument_names=["arm"], cov_type=cov_type, clusters=clusters)
        # reduced form (ITT) on the same sample and design, for the diagnostics
        rf = OLSDesign(np.column_stack([z, W]), ("arm", *wnames), cov_type=cov_type,
                       clusters=clusters).fit(y)
    inner = list(dict.fromkeys((type(w.message), str(w.message)) for w in caught))
    n1, n0 = arm_counts(z.astype(np.int64))
    fs_f = fit.first_stage["f_robust"]
    diagnostics = {
        "first_stage_f": fs_f,
        "complier_share": fit.first_stage["coef"]["arm"],
        "complier_share_se": fit.first_stage["std_error"]["arm"],
        "takeup_treated": float(d[z == 1].mean()),
        "takeup_control": float(d[z == 0].mean()),
        "itt_estimate": float(rf.coef[0]),
        "itt_std_error": float(np.sqrt(rf.vcov[0, 0])),
    }
    for category, message in inner:
        warnings.warn(message, category, stacklevel=2)
    warn = [message for _, message in inner]
    if fs_f < WEAK_INSTRUMENT_F:
        warn.append(f"weak instrument: robust first-stage F = {fs_f:.2f} < {WEAK_INSTRUMENT_F:g}; "
                    "2SLS is biased towards OLS and its intervals are unreliable")
    if diagnostics["complier_share"] <= 0:
        warn.append("the complier share is not positive: assignment does not raise take-up, "
                    "so the LATE is not identified under monotonicity")
    for w in warn[len(inner):]:
        warnings.warn(w, EstimationWarning, stacklevel=2)
    j = fit.names.index(takeup)
    spec = {"estimator": "late", "outcome": outcome, "takeup": takeup, "horizon": horizon,
            "window": None if window is None else tuple(int(v) for v in window), "covariates": covs,
            "strata": strata, "cov_type": cov_type, "cluster": cluster, "level": level}
    return EffectResult.from_fit(
        outcome=outcome, params=fit.params(), vcov=fit.vcov_frame(), df=float(fit.df[j]),
        nobs=pi.size, n_treated=n1, n_control=n0, term=takeup, level=level,
        estimand="late", horizon=hl, control_mean=float(y[z == 0].mean()),
        n_missing_treated=n_miss[0], n_missing_control=n_miss[1], diagnostics=diagnostics,
        spec=spec, warnings=tuple(warn), ledger=ledger,
    )
