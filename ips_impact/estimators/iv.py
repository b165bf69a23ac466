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
weighted average of covariate-cell LATEs. This is ``adjustment="ancova"``;
:func:`late` also offers ``"none"`` (the Wald ratio, blocked by stratum) and ``"lin"``
(centred covariates and their products with the arm as exogenous regressors: the Lin
ITT over the Lin first stage), and the outcome rows of :func:`~ips_impact.estimators.itt.itt`
(horizon, window mean / sum, stacked person-period rows, ``subset=``). In every case
there is one instrument and the same exogenous regressors in both stages, so
:math:`\hat\tau` is the ITT coefficient divided by the first-stage coefficient.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators._data import ADJUSTMENTS, AGGREGATES, arm_counts, check_option
from ips_impact.estimators._options import resolve_adjustment
from ips_impact.inference.covariance import OLSDesign
from ips_impact.inference.ri_engine import LinearProblem
from ips_impact.inference.ri_protocol import RandomizationProblem, register_randomization
from ips_impact.results.base import critical_value
from ips_impact.results.effect import EffectResult

__all__ = ["late", "late_components", "LATEComponents", "two_stage_least_squares", "IVFit", "WEAK_INSTRUMENT_F"]

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
    df_for: Sequence[int] | None = None,
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
    df_for
        Coefficients (positions in ``[endog, exog…]``) whose CR2 Satterthwaite df are
        computed (default: all; the others get NaN). The first stage computes those of
        the instruments only. Other covariance types always get every df.

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
    fs_fit = fs.fit(d, df_for=None if df_for is None else range(Z.shape[1]))
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
    wanted = range(len(names)) if df_for is None else [int(j) for j in df_for]
    df = np.full(len(names), np.nan)
    for j in wanted:
        df[j] = design.df(j)

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


@dataclass(frozen=True)
class LATEComponents:
    r"""The arrays behind a fitted :func:`late` result (for randomization inference).

    Rows are the regression rows (persons, or person-periods when stacked). With
    ``X = [1, z, nuisance[:, 1:], z ⊙ interact]`` (the ITT design of the same options),
    the LATE is the ratio of the arm coefficients of ``y`` and of ``d`` on ``X``
    (just-identified 2SLS with the same exogenous regressors), i.e. the ITT over the
    first stage; under a re-drawn assignment :math:`z^*` rows take ``z*[person_index]``.

    Attributes
    ----------
    y, d
        (N,) outcome and take-up of each row.
    person_index
        (N,) row of ``study.persons`` of each regression row.
    arm
        (N,) observed assignment (0/1 float).
    nuisance, nuisance_names
        (N, q) columns not involving the arm: intercept first, covariates, stratum
        dummies (centred under "lin", and under "none" with strata), period effects.
    interact, interact_names
        (N, r) centred columns multiplied by the arm ("lin"; "none" with strata).
    adjustment, cov_type
        As fitted.
    clusters
        (N,) cluster codes, or ``None``.
    estimate
        The fitted LATE.
    """

    y: np.ndarray
    d: np.ndarray
    person_index: np.ndarray
    arm: np.ndarray
    nuisance: np.ndarray
    nuisance_names: tuple[str, ...]
    interact: np.ndarray
    interact_names: tuple[str, ...]
    adjustment: str
    cov_type: str
    clusters: np.ndarray | None
    estimate: float

    def __post_init__(self) -> None:
        for a in (self.y, self.d, self.person_index, self.arm, self.nuisance, self.interact, self.clusters):
            if a is not None:
                a.setflags(write=False)


def _takeup_values(persons: pd.DataFrame, takeup: Any) -> np.ndarray:
    """The 0/1 take-up column of ``persons`` as float (NaN kept: checked on the rows used)."""
    if not isinstance(takeup, str) or takeup not in persons.columns:
        raise DataContractError(
            f"take-up column {takeup!r} is not in persons",
            table="takeup", column=str(takeup),
            fix="pass a takeup table to Study.from_frames (ips_started or ips_start_date), "
                "or name a 0/1 column of persons with takeup=.",
        )
    return pd.to_numeric(persons[takeup], errors="coerce").to_numpy(dtype=float)


def _prepare_late(study: Any, outcome: str, spec: dict[str, Any]) -> tuple[Any, np.ndarray]:
    """Rows, design and take-up of a LATE: :func:`itt`'s preparation (window, stack,
    subset, ledger, strata, clusters) plus the take-up of each row.
    """
    from ips_impact.estimators.itt import _prepare

    takeup = spec["takeup"]
    persons: pd.DataFrame = study.persons
    dvals = _takeup_values(persons, takeup)
    if spec["adjustment"] is not None:
        check_option(spec["adjustment"], ADJUSTMENTS, "adjustment")
    check_option(spec["aggregate"], AGGREGATES, "aggregate")
    if (spec["horizon"] is None) == (spec["window"] is None):
        raise EstimationError(
            "give exactly one of horizon= or window=",
            fix="use horizon=k for one event time or window=(a, b) for the person's mean, sum "
                "or stacked rows over a range (aggregate=).",
        )
    if takeup in spec["covariates"]:
        raise EstimationError(f"the take-up column {takeup!r} cannot also be a covariate", column=takeup,
                              fix=f"remove {takeup!r} from covariates=")
    study.require_outcome(outcome)  # numeric only: no LATE on category shares here
    prep_spec = {k: v for k, v in spec.items() if k not in ("takeup", "outcome", "estimator")}
    prep = _prepare(study, outcome, prep_spec)
    d = dvals[prep.person_index]
    bad_missing = np.isnan(d)
    if bad_missing.any():
        raise DataContractError(
            f"take-up column {takeup!r} has missing values", table="takeup", column=takeup,
            n_rows=int(np.unique(prep.person_index[bad_missing]).size),
            fix="record take-up (0/1) for every randomized person.",
        )
    not01 = ~np.isin(d, (0.0, 1.0))
    if not01.any():
        raise DataContractError(
            f"take-up column {takeup!r} must be 0/1", table="takeup", column=takeup,
            n_rows=int(np.unique(prep.person_index[not01]).size), fix="code take-up as 0/1.",
        )
    return prep, d


def _late_spec(**kw: Any) -> dict[str, Any]:
    from ips_impact.estimators.itt import _spec

    takeup, outcome = kw.pop("takeup"), kw.pop("outcome")
    spec = _spec(**kw)
    spec.update(takeup=takeup, outcome=outcome, estimator="late")
    return spec


def late(
    study: Any,
    outcome: str,
    *,
    takeup: str = "ips_started",
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    aggregate: str = "mean",
    covariates: Sequence[str] = (),
    adjustment: str | None = None,
    strata: bool | str = True,
    cov_type: str | None = None,
    cluster: str | None = None,
    level: float = 0.95,
    subset: Any = None,
    window_rule: str = "complete",
) -> EffectResult:
    r"""Local average treatment effect of IPS take-up, with assignment as the instrument.

    Estimand: with :math:`Z_i` the assigned arm, :math:`D_i(z)` potential take-up and
    :math:`Y_i(d)` potential outcomes (exclusion: the offer acts only through take-up),

    .. math:: \tau_{LATE} = E[Y_i(1) - Y_i(0) \mid D_i(1) > D_i(0)]
              = \frac{E[Y_i \mid Z_i = 1] - E[Y_i \mid Z_i = 0]}
                     {E[D_i \mid Z_i = 1] - E[D_i \mid Z_i = 0]}
              = \frac{\tau_{ITT}}{\pi},

    the effect of IPS on compliers (persons who start IPS if and only if offered it);
    :math:`\pi` is the complier share. :math:`Y_i` is the outcome at k = ``horizon``,
    the person's mean or sum over ``window=(a, b)``, or — ``aggregate="stack"`` — the
    person-period rows of the window (then :math:`\tau_{LATE}` is the average over the
    window of the per-period complier effects, with a balanced window). See the module
    docstring for the assumptions and the variance.

    Estimator: 2SLS of :math:`Y` on :math:`D` with :math:`Z` as the only excluded
    instrument and the exogenous regressors :math:`W` of the ITT design of the same
    options (:func:`~ips_impact.estimators.itt.itt`: the ITT regressors
    :math:`X = [1, Z, W_{-1}]` with the arm column taken out). With one instrument and
    the same :math:`W` in both stages, :math:`\hat\tau = \hat\beta_{Y}/\hat\beta_{D}`:
    the ITT coefficient of ``itt(..., adjustment=...)`` divided by the same regression's
    coefficient for take-up. Hence, per ``adjustment``:

    * ``"none"``, no strata: :math:`W = [1]`, the Wald ratio
      :math:`(\bar Y_1 - \bar Y_0)/(\bar D_1 - \bar D_0)` (no covariates allowed);
      with strata, :math:`W = [1, \tilde S, Z\tilde S]` (centred stratum dummies and
      their products with the arm): the blocked Wald ratio
      :math:`\sum_b \frac{n_b}{n}(\bar Y_{1b} - \bar Y_{0b}) / \sum_b \frac{n_b}{n}
      (\bar D_{1b} - \bar D_{0b})`, which is :math:`\tau_{LATE}` (each stratum's LATE
      weighted by its number of compliers) even with unequal assignment probabilities;
    * ``"ancova"`` (default): :math:`W = [1, X, S]` (additive covariates, stratum fixed
      effects) in both stages — the textbook 2SLS; with heterogeneous effects a
      variance-weighted average of covariate-cell LATEs;
    * ``"lin"``: :math:`W = [1, \tilde V, Z\tilde V]` with :math:`\tilde V` the
      covariates and stratum dummies centred at their means over the estimation rows:
      :math:`\hat\tau` is the Lin (2013) ITT estimate divided by the Lin first-stage
      estimate, consistent for :math:`\tau_{LATE}` whatever the covariate–effect
      relation. It equals R ``estimatr::iv_robust(y ~ d + V~ + z:V~ | z + V~ + z:V~)``
      (``tests/reference/r/iv_bounds.R``); the products :math:`Z\tilde V` are
      exogenous regressors, not instruments.

    Stacked rows add period fixed effects to :math:`W` (never interacted) and are
    clustered by person unless ``cluster`` is given. Take-up :math:`D_i` is a
    person-level constant, so each row of a person has the same :math:`Z_i` and
    :math:`D_i`.

    Parameters
    ----------
    study
        A :class:`~ips_impact.study.Study` with a take-up column in ``persons``.
    outcome
        Numeric panel outcome.
    takeup
        0/1 column of ``persons`` (default ``"ips_started"``, from the takeup table);
        it must be known for every person in the estimation sample.
    horizon, window, aggregate
        Outcome at event time k = ``horizon``, or over ``window=(a, b)`` with
        ``aggregate`` ``"mean"`` / ``"sum"`` (persons observed at every k of the
        window) or ``"stack"`` (person-period rows, period fixed effects, clustered by
        person), exactly as in :func:`~ips_impact.estimators.itt.itt`.
    covariates
        Baseline covariates (columns of ``persons``, no missing values).
    adjustment
        ``"none"``, ``"ancova"`` or ``"lin"`` (above). Default ``None``: as in
        :func:`~ips_impact.estimators.itt.itt` (``"ancova"`` with equal assignment
        probabilities across strata, ``"lin"`` otherwise).
    window_rule
        As in :func:`~ips_impact.estimators.itt.itt` (default ``"complete"``).
    strata
        ``True``: the randomization strata; ``False``: none; or a column of
        ``persons`` used as strata.
    cov_type
        ``"HC0"``–``"HC3"``, ``"CR0"``, ``"CR1"``, ``"CR2"``. ``None`` (default) means
        ``"HC2"``, or ``"CR2"`` when clustered (``cluster=`` or stacked rows); an HC
        type with clusters, or a CR type without, is refused.
    cluster
        Column of ``persons`` to cluster on (e.g. ``"household_id"``).
    level
        Confidence level.
    subset
        Boolean mask on ``persons``, a boolean column name, or a query string, as in
        :func:`~ips_impact.estimators.itt.itt`.

    Returns
    -------
    EffectResult
        ``term`` = the take-up column, ``estimand = "late"``; ``nobs``,
        ``n_treated``, ``n_control`` count regression rows (person-periods when
        stacked). ``diagnostics`` holds ``first_stage_f``, ``complier_share`` (with
        ``complier_share_se``), ``takeup_treated``, ``takeup_control`` (per person),
        ``itt_estimate``, ``itt_std_error``, ``adjustment``, ``cov_type``,
        ``n_persons``, ``n_clusters``, ``stacked_rows``.

    Raises
    ------
    DataContractError
        The take-up column is absent, missing for a person of the sample, or not 0/1;
        the outcome is not a numeric panel column.
    EstimationError
        Unknown ``adjustment`` / ``aggregate`` / ``cov_type`` (the message lists the
        allowed values), not exactly one of ``horizon`` / ``window``, covariates with
        ``adjustment="none"``, the take-up column as a covariate, a stratum with one
        arm under "none"/"lin", event times outside the follow-up, no contrast.

    Warns
    -----
    EstimationWarning
        Robust first-stage F below 10, or a non-positive complier share.
    SmallSampleWarning
        Fewer than 20 clusters.
    """
    spec = _late_spec(outcome=outcome, takeup=takeup, horizon=horizon, window=window, aggregate=aggregate,
                      covariates=covariates, adjustment=adjustment, strata=strata, cov_type=cov_type,
                      cluster=cluster, level=level, subset=subset, window_rule=window_rule)
    spec["adjustment"], spec["adjustment_reason"] = resolve_adjustment(
        adjustment, study.design, strata=strata)
    critical_value(level)
    prep, d = _prepare_late(study, outcome, spec)
    y = prep.Y[:, 0]
    z = prep.arm
    X, names = prep.design.X, prep.design.names
    j = prep.design.arm_index
    W = np.delete(X, j, axis=1)
    wnames = [nm for i, nm in enumerate(names) if i != j]
    cov_type = prep.cov_type
    clusters = prep.clusters

    with warnings.catch_warnings(record=True) as caught:
        # the three fits share clusters: collect their warnings and say each once
        warnings.simplefilter("always")
        fit = two_stage_least_squares(y, d, z, W, endog_name=takeup, exog_names=wnames,
                                      instrument_names=["arm"], cov_type=cov_type, clusters=clusters,
                                      df_for=(0,))
        # reduced form (ITT) on the same rows and design, for the diagnostics
        rf = OLSDesign(X, names, cov_type=cov_type, clusters=clusters).fit(y, df_for=(j,))
    inner = list(dict.fromkeys((type(w.message), str(w.message)) for w in caught))
    # persons, not rows, in n_treated / n_control (stacked rows are in nobs)
    _, first = np.unique(prep.person_index, return_index=True)
    n1, n0 = arm_counts(z[first].astype(np.int64))
    persons_used, first = np.unique(prep.person_index, return_index=True)
    zp, dp = z[first], d[first]
    fs_f = fit.first_stage["f_robust"]
    diagnostics = {
        "adjustment": prep.design.adjustment,
        "adjustment_reason": spec.get("adjustment_reason", "as requested"),
        "first_stage_f": fs_f,
        "complier_share": fit.first_stage["coef"]["arm"],
        "complier_share_se": fit.first_stage["std_error"]["arm"],
        "takeup_treated": float(dp[zp == 1].mean()),
        "takeup_control": float(dp[zp == 0].mean()),
        "itt_estimate": float(rf.coef[j]),
        "itt_std_error": float(np.sqrt(rf.vcov[j, j])),
        "adjustment": prep.design.adjustment,
        "cov_type": cov_type,
        "n_persons": int(persons_used.size),
        "n_clusters": fit.n_clusters,
        "stacked_rows": prep.k is not None,
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
    jt = fit.names.index(takeup)
    spec = dict(spec)
    spec["cov_type"] = cov_type
    return EffectResult.from_fit(
        outcome=outcome, params=fit.params(), vcov=fit.vcov_frame(), df=float(fit.df[jt]),
        nobs=y.size, n_treated=n1, n_control=n0, term=takeup, level=level,
        estimand="late", horizon=prep.horizon, control_mean=float(y[z == 0].mean()),
        n_missing_treated=prep.n_missing[0], n_missing_control=prep.n_missing[1], diagnostics=diagnostics,
        spec=spec, warnings=tuple(warn), ledger=list(prep.ledger),
    )


def late_components(study: Any, result: EffectResult) -> LATEComponents:
    """The arrays of a fitted :func:`late` result (see :class:`LATEComponents`).

    The result's ``spec`` is replayed (nothing is refitted); the ratio of the arm
    coefficients of ``y`` and ``d`` on the design reproduces ``result.estimate``.

    Raises
    ------
    EstimationError
        The result does not come from :func:`late`.
    """
    spec = dict(getattr(result, "spec", None) or {})
    needed = ("outcome", "takeup", "horizon", "window", "aggregate", "covariates", "adjustment",
              "strata", "cov_type", "cluster", "level", "subset")
    if spec.get("estimator") != "late" or any(k not in spec for k in needed):
        raise EstimationError("the result was not produced by late(); its spec cannot be replayed",
                              fix="pass a result returned by ips_impact.late")
    prep, d = _prepare_late(study, spec["outcome"], spec)
    des = prep.design
    return LATEComponents(
        y=prep.Y[:, 0].copy(), d=d.copy(), person_index=prep.person_index.copy(), arm=prep.arm.copy(),
        nuisance=des.nuisance.copy(), nuisance_names=des.nuisance_names,
        interact=des.interact.copy(), interact_names=des.interact_names,
        adjustment=des.adjustment, cov_type=prep.cov_type,
        clusters=None if prep.clusters is None else np.asarray(prep.clusters).copy(),
        estimate=float(result.estimate),
    )


def randomization_problem(study: Any, result: EffectResult) -> RandomizationProblem:
    """Randomization problem of a :func:`late` result.

    The reduced form and the first stage as one linear problem with two outcomes
    (y, take-up d), built from the rows and design that ``late`` fitted
    (:func:`late_components`), so every option of ``late`` (subset, window sums,
    stacked rows, "lin") is re-drawn as fitted. The statistic of the tidy row is the
    reduced-form (ITT) coefficient: its randomization distribution tests the sharp null
    of no effect of take-up, :math:`Y_i(1) = Y_i(0)` (under the exclusion restriction,
    LATE = 0), and stays well behaved with a weak first stage, unlike the 2SLS ratio
    (Imbens & Rosenbaum 2005). The interval is Anderson–Rubin-type: the test of
    :math:`Y_i(d) = Y_i(0) + \\tau d` inverted on the reduced form of :math:`y - \\tau d`.
    """
    c = late_components(study, result)
    interact = np.ones((c.y.size, 1)) if c.interact is None or np.size(c.interact) == 0 else (
        np.column_stack([np.ones(c.y.size), c.interact]))
    prob = LinearProblem(y=np.column_stack([c.y, c.d]), row_person=np.asarray(c.person_index),
                         nuisance=np.asarray(c.nuisance), interact=interact, coef=(0,))
    late_hat = float(result.estimate)

    def finalize(observed: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # observed = (reduced form, first stage): their ratio must be the fitted LATE
        if not np.isclose(observed[0] / observed[1], late_hat, rtol=1e-7, atol=1e-9 * (1 + abs(late_hat))):
            raise EstimationError(
                f"randomization inference does not reproduce the LATE ({observed[0] / observed[1]!r} vs {late_hat!r})",
                fix="report this as a bug: late() and its randomization problem disagree",
            )
        return observed[:1], draws[:, :1]

    return RandomizationProblem(linear=(prob,), finalize=finalize, reproduces=False,
                                interval="anderson_rubin")


register_randomization("late", randomization_problem)
