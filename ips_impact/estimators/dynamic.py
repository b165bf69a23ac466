r"""Effects by event time: one ITT per period, a pre-period placebo test, a sup-t band.

:func:`itt_by_period` estimates, for every event time k in ``periods``,

.. math:: \tau_k = E[Y_{ik}(1) - Y_{ik}(0)],

with the same adjustment as :func:`~ips_impact.estimators.itt.itt` at ``horizon=k``
(each :math:`\hat\tau_k` equals that ``itt`` result exactly). Before randomization
(k < 0) the assignment cannot have had an effect, so :math:`\tau_k = 0` for k < 0 and
a joint test of the pre-period estimates is a placebo check of the randomization and
of the data (differential linkage, mis-dated assignment).

Computation: persons observed at the same set of event times share one regressor
matrix, factorised once (:class:`~ips_impact.inference.covariance.OLSDesign`); all
those event times are fitted with one matrix product. The joint covariance of the
:math:`\hat\tau_k` stacks the per-person (or per-cluster) score contributions of every
k and clusters them by person (or by ``cluster``):
:math:`\widehat{Cov}(\hat\tau_k, \hat\tau_l) = \sqrt{c_k c_l}\sum_g s_{gk}s_{gl}`,
whose diagonal is each period's own (HC2 / CR2 …) variance.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ips_impact._threads import hot_path, study_size
from ips_impact.errors import EstimationError, EstimationWarning, IpsImpactWarning
from ips_impact.estimators._data import person_mask
from ips_impact.estimators._options import records_frequency, resolve_adjustment
from ips_impact.estimators.itt import _spec, _welch_df, design_for_rows
from ips_impact.estimators.itt import randomization_problem as itt_problem
from ips_impact.inference.covariance import OLSDesign, joint_covariance
from ips_impact.inference.ri_protocol import register_randomization
from ips_impact.results.base import critical_value
from ips_impact.results.effect import DynamicEffectResult, EffectResult

__all__ = ["itt_by_period", "sup_t_critical_value", "pretest_wald"]


def sup_t_critical_value(
    vcov: np.ndarray, level: float = 0.95, *, n_sim: int = 10_000, seed: int = 0
) -> tuple[float, str]:
    r"""Critical value c of a simultaneous (sup-t) band :math:`\hat\tau_k \pm c\,\widehat{se}_k`.

    c is the ``level`` quantile of :math:`\max_k |T_k|` with
    :math:`T \sim N(0, R)`, R the correlation matrix of the estimates (Montiel Olea
    and Plagborg-Møller 2019), simulated with ``n_sim`` draws from
    ``numpy.random.Generator(PCG64(seed))``. When R cannot be factorised (a zero
    variance, non-finite entries) the Bonferroni value
    :math:`z_{1-(1-level)/(2K)}` is returned instead (conservative).

    Returns
    -------
    (c, method)
        ``method`` is ``"sup-t"`` or ``"bonferroni"``.
    """
    critical_value(level)
    V = np.asarray(vcov, dtype=np.float64)
    K = V.shape[0]
    sd = np.sqrt(np.diag(V))
    bonf = float(stats.norm.ppf(1.0 - (1.0 - level) / (2.0 * K)))
    if K == 1:
        return float(stats.norm.ppf(0.5 + level / 2.0)), "sup-t"
    if not (np.isfinite(V).all() and (sd > 0).all()):
        return bonf, "bonferroni"
    R = V / np.outer(sd, sd)
    # eigh tolerates a semi-definite R (more periods than clusters)
    w, U = np.linalg.eigh((R + R.T) / 2.0)
    if w.min() < -1e-8 * max(w.max(), 1.0):
        return bonf, "bonferroni"
    L = U * np.sqrt(np.clip(w, 0.0, None))
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.standard_normal((n_sim, K)) @ L.T
    c = float(np.quantile(np.abs(draws).max(axis=1), level))
    return c, "sup-t"


def pretest_wald(estimates: np.ndarray, vcov: np.ndarray, df_denom: float) -> dict[str, Any]:
    r"""Joint Wald test that every estimate is zero.

    :math:`W = \hat\tau'\hat V^{-1}\hat\tau`; reported as
    :math:`F = W/q` against :math:`F(q, d)` with d = ``df_denom`` (the smallest
    per-period df: N − K for HC types, G − 1 or Satterthwaite for clustered ones), a
    small-sample version of the :math:`\chi^2_q` test (d = ∞ gives it back). A
    singular :math:`\hat V` (more estimates than clusters) uses its pseudo-inverse
    and q = its rank.
    """
    est = np.asarray(estimates, dtype=np.float64)
    V = np.asarray(vcov, dtype=np.float64)
    q = int(np.linalg.matrix_rank(V))
    W = float(est @ np.linalg.pinv(V, hermitian=True) @ est)
    F = W / max(q, 1)
    if np.isfinite(df_denom):
        p = float(stats.f.sf(F, q, df_denom))
    else:
        p = float(stats.chi2.sf(W, q))
    return {"statistic": F, "wald": W, "df_num": q, "df_denom": float(df_denom), "p_value": p,
            "test": "F" if np.isfinite(df_denom) else "chi2"}


def _periods(periods: Any) -> np.ndarray:
    if isinstance(periods, (str, bytes)) or not isinstance(periods, Iterable):
        raise EstimationError(
            f"periods must be a sequence of integer event times; you passed {periods!r}",
            fix="pass e.g. periods=range(-8, 21)",
        )
    vals = list(periods)
    if not vals or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in vals):
        raise EstimationError(
            f"periods must be a non-empty sequence of integer event times; you passed {periods!r}",
            fix="pass e.g. periods=range(-8, 21)",
        )
    ks = np.asarray(vals, dtype=np.int64)
    if np.unique(ks).size != ks.size:
        raise EstimationError("periods lists an event time twice", fix="pass distinct event times")
    return np.sort(ks)


@hot_path(study_size)
@records_frequency
def itt_by_period(
    study: Any,
    outcome: str,
    *,
    periods: Sequence[int] | range,
    covariates: Sequence[str] = (),
    adjustment: str | None = None,
    strata: bool | str = True,
    cov_type: str | None = None,
    cluster: str | None = None,
    level: float = 0.95,
    subset: Any = None,
    n_sim: int = 10_000,
    seed: int = 0,
) -> DynamicEffectResult:
    r"""ITT effect at every event time k of ``periods``, with a placebo test and a sup-t band.

    Estimand: :math:`\tau_k = E[Y_{ik}(1) - Y_{ik}(0)]` for each k; each estimate is
    :func:`~ips_impact.estimators.itt.itt` at ``horizon=k`` with the same options
    (persons missing at k are left out at that k only, and counted in the ledger).

    * Pre-period test (``result.pretest``): joint Wald test of
      :math:`H_0: \tau_k = 0` for every estimated k < 0, using the joint covariance of
      the estimates (scores stacked across k, clustered by person or ``cluster``);
      F reference with the smallest per-period df (see :func:`pretest_wald`).
    * Simultaneous band (``result.sup_t_crit``, ``result.band()``): the sup-t critical
      value c from 10,000 Gaussian draws with the estimated correlation of the
      :math:`\hat\tau_k` (seeded; Bonferroni if the correlation cannot be factorised;
      see :func:`sup_t_critical_value`). c is never below the largest pointwise t
      critical value, so the band contains every pointwise interval.
    * ``result.plot()`` draws the path, pointwise intervals and the band.

    Parameters
    ----------
    study
        A :class:`~ips_impact.study.Study`.
    outcome
        A numeric panel column.
    periods
        Event times, e.g. ``range(-8, 21)``; each must lie in the observed follow-up.
    covariates, adjustment, strata, cov_type, cluster, level, subset
        As in :func:`~ips_impact.estimators.itt.itt` (default ``cov_type``: HC2, CR2
        with ``cluster``).
    n_sim, seed
        Draws and seed of the sup-t simulation.

    Returns
    -------
    DynamicEffectResult
        ``effects`` (one :class:`EffectResult` per k, ``horizon`` = k), ``vcov`` (joint
        covariance, k × k), ``pretest`` (``None`` without pre-periods), ``sup_t_crit``.

    Raises
    ------
    EstimationError
        As :func:`~ips_impact.estimators.itt.itt`; ``periods`` empty, not integers,
        or outside the follow-up; an event time at which nobody is observed or the
        outcome does not vary.
    """
    spec = _spec(horizon=None, window=None, aggregate="mean", covariates=covariates,
                 adjustment=adjustment, strata=strata, cov_type=cov_type, cluster=cluster,
                 level=level, subset=subset)
    spec["adjustment"], spec["adjustment_reason"] = resolve_adjustment(
        adjustment, study.design, strata=strata)
    critical_value(level)
    ks = _periods(periods)
    kmin, kmax = study.k_range
    if ks[0] < kmin or ks[-1] > kmax:
        raise EstimationError(
            f"periods from {ks[0]} to {ks[-1]} go outside the observed follow-up (k from {kmin} to {kmax})",
            table="panel", column="k", fix=f"choose event times between {kmin} and {kmax}",
        )
    study.require_outcome(outcome)
    if not isinstance(n_sim, (int, np.integer)) or n_sim < 100:
        raise EstimationError(f"n_sim must be an integer of at least 100; you passed {n_sim!r}")

    Y = study.outcome_matrix(outcome, ks)
    # Study.persons is a copy of the persons table (25 ms at 250,000 persons): only a
    # subset needs it
    mask = (np.ones(study.n_persons, dtype=bool) if spec["subset"] is None
            else person_mask(study.persons, spec["subset"]))
    arm_all = np.asarray(study.design.arm, dtype=np.float64)  # the arm has one source: the design
    obs = np.isfinite(Y) & mask[:, None]

    # group event times by who is observed: one factorisation per group
    groups: dict[bytes, list[int]] = {}
    for t in range(ks.size):
        groups.setdefault(np.packbits(obs[:, t]).tobytes(), []).append(t)

    T = ks.size
    est = np.full(T, np.nan)
    se = np.full(T, np.nan)
    dfs = np.full(T, np.nan)
    nobs = np.zeros(T, dtype=np.int64)
    n1 = np.zeros(T, dtype=np.int64)
    cmean = np.full(T, np.nan)
    all_scores: list[np.ndarray] = []
    all_labels: list[np.ndarray] = []
    all_scales: list[float] = []
    order: list[int] = []
    caught: list[str] = []
    categories: list[type[Warning]] = []
    cov_used = None
    for ts in groups.values():
        pi = np.flatnonzero(obs[:, ts[0]])
        if pi.size == 0:
            raise EstimationError(
                f"nobody is observed at k = {', '.join(str(ks[t]) for t in ts[:5])}",
                table="panel", column=outcome, fix="drop those event times from periods",
            )
        # everyone observed at every k (one group, no attrition): Y itself, not a copy
        Yg = Y if pi.size == Y.shape[0] and len(ts) == T else Y[np.ix_(pi, np.asarray(ts))]
        flat = np.ptp(Yg, axis=0) == 0
        if flat.any():
            raise EstimationError(
                f"outcome {outcome!r} does not vary at k = "
                f"{', '.join(str(ks[t]) for t in np.asarray(ts)[flat][:5])}",
                table="panel", column=outcome,
                fix="drop those event times from periods (e.g. a state everyone is in at baseline)",
            )
        arm = arm_all[pi]
        if arm.min() == arm.max():
            raise EstimationError(
                f"at k = {ks[ts[0]]} every observed person is in the same arm; there is no contrast",
                table="panel", column=outcome, fix="drop that event time from periods",
            )
        rd, clusters, ctype = design_for_rows(study, spec, pi, arm, None, outcome=outcome)
        cov_used = ctype
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always", IpsImpactWarning)
            design = OLSDesign(rd.X, rd.names, cov_type=ctype, clusters=clusters)
        for w in rec:
            if str(w.message) not in caught:
                caught.append(str(w.message))
                categories.append(w.category)
        j = rd.arm_index
        B = design.coef(Yg)  # (K, m): one product for every k of the group
        E = rd.X @ B
        np.subtract(Yg, E, out=E)  # the residuals in place: one (m, K) array, not two
        S = design.scores(E, j)  # (G, m)
        var = design.scale * np.einsum("gm,gm->m", S, S)
        welch = (rd.adjustment == "none" and rd.X.shape[1] == 2 and ctype == "HC2")
        # the control outcomes once, one contiguous row per event time: each row's mean
        # is the same pairwise sum as the mean of the column Yg[arm == 0, c]
        Y0 = np.ascontiguousarray(Yg[arm == 0].T)
        m0 = Y0.mean(axis=1)
        n1_g = int(arm.sum())
        for c, t in enumerate(ts):
            est[t] = B[j, c]
            se[t] = np.sqrt(var[c])
            dfs[t] = _welch_df(Yg[:, c], arm) if welch else design.df(j)
            nobs[t] = pi.size
            n1[t] = n1_g
            cmean[t] = float(m0[c])
        all_scores.append(S)
        all_labels.append(pi if design.cluster_labels is None else np.asarray(design.cluster_labels))
        all_scales.append(design.scale)
        order.extend(ts)
    for msg, cat in zip(caught, categories):
        warnings.warn(msg, cat, stacklevel=2)

    Vj = joint_covariance(all_scores, all_labels, all_scales)
    perm = np.empty(T, dtype=np.int64)
    perm[np.asarray(order)] = np.arange(T)
    V = Vj[np.ix_(perm, perm)]

    # ---- ledger: persons missing at each k
    ledger_rows = []
    miss = mask[:, None] & ~np.isfinite(Y)
    n_miss_t = (miss & (arm_all[:, None] == 1)).sum(axis=0)
    n_miss_c = (miss & (arm_all[:, None] == 0)).sum(axis=0)
    if miss.any():
        worst = ks[miss.sum(axis=0).argmax()]
        ledger_rows.append({
            "reason": f"person-periods without {outcome} (left out at that k only; most at k = {worst})",
            "n_rows": int(miss.sum()), "n_treated": int(n_miss_t.sum()), "n_control": int(n_miss_c.sum()),
        })
    ledger = pd.DataFrame(ledger_rows, columns=["reason", "n_rows", "n_treated", "n_control"])

    spec_out = dict(spec)
    spec_out.update(outcome=outcome, periods=tuple(int(k) for k in ks), cov_type=cov_used,
                    n_sim=int(n_sim), seed=int(seed))
    # one empty ledger frame for every per-k effect (the run's ledger is on the result)
    empty_ledger = ledger.iloc[:0]
    effects = tuple(
        EffectResult(
            outcome=outcome, estimate=est[t], std_error=se[t], df=dfs[t], nobs=int(nobs[t]),
            n_treated=int(n1[t]), n_control=int(nobs[t] - n1[t]), control_mean=cmean[t],
            horizon=int(ks[t]), level=level, n_missing_treated=int(n_miss_t[t]),
            n_missing_control=int(n_miss_c[t]), spec={**spec_out, "horizon": int(ks[t]), "estimator": "itt"},
            diagnostics={"cov_type": cov_used, "adjustment": spec["adjustment"],
                         "adjustment_reason": spec["adjustment_reason"]},
            ledger=empty_ledger,
        )
        for t in range(T)
    )

    # ---- pre-period placebo test
    pre = np.flatnonzero(ks < 0)
    pretest = None
    if pre.size:
        pretest = pretest_wald(est[pre], V[np.ix_(pre, pre)], float(np.nanmin(dfs[pre])))
        pretest["ks"] = tuple(int(k) for k in ks[pre])
        if pretest["df_num"] < pre.size:
            caught.append(
                f"the joint covariance of the {pre.size} pre-period estimates has rank "
                f"{pretest['df_num']}; the pre-period test uses its pseudo-inverse"
            )
            warnings.warn(caught[-1], EstimationWarning, stacklevel=2)

    # ---- simultaneous band
    crit, method = sup_t_critical_value(V, level, n_sim=int(n_sim), seed=int(seed))
    pointwise = max(critical_value(level, d) for d in dfs)
    crit = max(crit, pointwise)
    spec_out["band_method"] = method
    spec_out["estimator"] = "itt_by_period"

    kidx = pd.Index([int(k) for k in ks], name="k")
    return DynamicEffectResult(
        outcome=outcome, effects=effects, vcov=pd.DataFrame(V, index=kidx, columns=kidx),
        pretest=pretest, sup_t_crit=crit, level=level, spec=spec_out, warnings=tuple(caught),
        ledger=ledger,
    )



def randomization_problem(study: Any, result: Any) -> list[Any]:
    """Build one ITT problem per event time.

    Each effect of an :func:`itt_by_period` result is the
    :func:`~ips_impact.estimators.itt.itt` at that horizon, with its own sample.
    """
    return [p for effect in result.effects for p in itt_problem(study, effect)]


register_randomization("itt_by_period", randomization_problem)
