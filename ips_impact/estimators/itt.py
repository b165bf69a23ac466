r"""Intention-to-treat effects: the effect of being offered IPS.

:func:`itt` estimates, for an outcome at one event time (``horizon=h``) or over a
window of event times (``window=(a, b)``), the average effect of assignment

.. math:: \tau = E[Y_i(1) - Y_i(0)]

where :math:`Y_i(z)` is person i's potential outcome under assignment z (at k = h,
or its mean / sum over a ≤ k ≤ b, or — stacked — the average over the window of the
per-period effects). Randomization makes the arm independent of the potential
outcomes within strata, so a regression of the outcome on the arm (adjusted as
chosen) estimates τ without modelling assumptions; the covariates only sharpen it.

:func:`itt_components` hands the arrays of a fitted result to randomization
inference, which re-computes the statistic under re-drawn assignments.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ips_impact._threads import hot_path, study_size
from ips_impact.errors import EstimationError, EstimationWarning, IpsImpactWarning
from ips_impact.estimators._data import (
    RegressionDesign,
    arm_counts,
    check_option,
    cluster_labels,
    collinear_covariates,
    covariate_matrix,
    dummies,
    person_mask,
    regression_design,
    require_numeric_outcome,
)
from ips_impact.estimators._options import (
    ADJUSTMENTS,
    AGGREGATES,
    WINDOW_RULES,
    check_horizon,
    check_window,
    records_frequency,
    resolve_adjustment,
    window_values,
)
from ips_impact.inference.covariance import OLSDesign, OLSFit, resolve_cov_type
from ips_impact.inference.ri_engine import LinearProblem
from ips_impact.inference.ri_protocol import register_randomization
from ips_impact.results.base import (
    ResultBase,
    critical_value,
    horizon_label,
    result_dataclass,
    wald_inference,
)
from ips_impact.results.effect import EffectResult

__all__ = ["itt", "itt_components", "ITTComponents", "CategoricalEffectResult", "design_for_rows"]


# ----------------------------------------------------------------------------- result


@result_dataclass
class CategoricalEffectResult(ResultBase):
    r"""Effects on the share of persons in each category of a categorical outcome.

    For a categorical outcome C (sector, worker class, contract type…) and each level
    :math:`\ell`, the effect is on the *unconditional* share

    .. math:: \tau_\ell = P(C_i(1) = \ell) - P(C_i(0) = \ell),

    i.e. on the indicator :math:`1\{C_i = \ell\}` among all persons observed at the
    horizon — persons observed without a category (not at work) count as 0 for every
    level. The effects therefore sum to the effect on having any category; they are
    not effects on the composition of jobs among those at work (which would condition
    on a post-randomization outcome).

    Parameters
    ----------
    outcome
        The categorical column.
    levels
        Category levels, in the order of ``effects``.
    effects
        One :class:`~ips_impact.results.effect.EffectResult` per level (its ``outcome``
        is ``"column=level"``).
    """

    outcome: str
    levels: tuple[str, ...]
    effects: tuple[EffectResult, ...]

    def __post_init__(self) -> None:
        if len(self.levels) != len(self.effects) or not self.effects:
            raise EstimationError("a categorical result needs one effect per level")
        super().__post_init__()

    def effect_at(self, level: str) -> EffectResult:
        """Return the effect on the share in ``level``."""
        if level not in self.levels:
            raise EstimationError(
                f"no category {level!r} of {self.outcome!r}",
                fix=f"choose one of {', '.join(map(repr, self.levels))}",
            )
        return self.effects[self.levels.index(level)]

    def _tidy_rows(self) -> list[dict[str, Any]]:
        return [row for e in self.effects for row in e._tidy_rows()]

    def _summary_title(self) -> str:
        return f"ITT of arm on the share in each category of {self.outcome}"

    def _summary_lines(self) -> list[str]:
        return [
            "Shares among all persons observed (no category = 0 in every level); "
            "not conditional on being at work."
        ]


# ------------------------------------------------------------------------ preparation


def matched_pairs(strata: np.ndarray, clusters: np.ndarray, arm: np.ndarray) -> np.ndarray | None:
    """Stratum codes of the rows when every stratum holds one cluster per arm, else None.

    That is a matched-pair cluster-randomized design (each pair of clusters a stratum),
    where the stratum effects leave the cluster-robust variance no degrees of freedom.
    """
    strata = np.asarray(strata, dtype=np.int64)
    frame = pd.DataFrame({"b": strata, "c": np.asarray(clusters), "z": np.asarray(arm, dtype=int)})
    per = frame.drop_duplicates().groupby(["b", "z"]).size()
    n_strata = frame["b"].nunique()
    if n_strata < 2 or len(per) != 2 * n_strata or not (per == 1).all():
        return None
    if (frame[["b", "c"]].drop_duplicates().groupby("b").size() != 2).any():
        return None  # the two arms of a stratum share their cluster: not a pair of clusters
    return strata


def matched_pair_inference(y: np.ndarray, arm: np.ndarray, pairs: np.ndarray) -> tuple[float, float, float]:
    r"""Estimate, standard error and df of the matched-pair cluster-randomized design.

    With pairs :math:`j = 1..J` of :math:`N_j` persons and
    :math:`\hat\tau_j = \bar Y_{1j} - \bar Y_{0j}` (person means by arm within the pair),
    the blocked difference in means :math:`\hat\tau = \sum_j N_j \hat\tau_j / N` and

    .. math:: \widehat{se}^2 = \frac{J}{(J-1) N^2} \sum_j \left(N_j \hat\tau_j -
              \frac{N \hat\tau}{J}
              \right)^2, \qquad df = J - 1

    (Imai, King & Nall 2009; estimatr ``difference_in_means(blocks=, clusters=)``).
    """
    codes, inv = np.unique(pairs, return_inverse=True)
    J = codes.size
    n_j = np.bincount(inv).astype(float)
    s1 = np.bincount(inv, weights=y * arm)
    s0 = np.bincount(inv, weights=y * (1 - arm))
    n1 = np.bincount(inv, weights=arm)
    n0 = n_j - n1
    tau_j = s1 / n1 - s0 / n0
    n = n_j.sum()
    tau = float((n_j * tau_j).sum() / n)
    var = J / ((J - 1) * n**2) * float(((n_j * tau_j - n * tau / J) ** 2).sum())
    return tau, float(np.sqrt(var)), float(J - 1)


def design_for_rows(
    study: Any,
    spec: dict[str, Any],
    pi: np.ndarray,
    arm: np.ndarray,
    k_rows: np.ndarray | None = None,
    *,
    outcome: str = "outcome",
    matched_pair_ok: bool = False,
) -> tuple[RegressionDesign, np.ndarray | None, str]:
    """Regressors, cluster codes and covariance type for regression rows of persons ``pi``.

    Shared by :func:`itt` and :func:`~ips_impact.estimators.dynamic.itt_by_period`.
    ``spec`` holds ``adjustment``, ``covariates``, ``strata``, ``cluster``, ``cov_type``;
    ``k_rows`` (event time of each row) adds period fixed effects and, without a
    ``cluster``, clusters the rows by person. A matched-pair cluster design (one
    cluster per stratum × arm, :func:`matched_pairs`) is refused unless
    ``matched_pair_ok`` and the blocked difference in means (``adjustment="none"``,
    which the default becomes there without covariates) is fitted: the caller then
    uses :func:`matched_pair_inference`.
    """
    persons = study._persons_frame()  # read only: no copy of the table per fit
    adjustment = spec["adjustment"]
    if adjustment is None:  # the estimators resolve it once (with its reason); a replay may not have
        adjustment, _ = resolve_adjustment(None, study.design, strata=spec["strata"])
    adjustment = check_option(adjustment, ADJUSTMENTS, "adjustment")
    default = str(spec.get("adjustment_reason", "default")).startswith("default")
    covs = spec["covariates"]
    if adjustment == "none" and covs:
        raise EstimationError(
            "adjustment='none' takes no covariates",
            fix="use adjustment='ancova' or 'lin' to adjust for covariates, or drop covariates=",
        )
    # clusters first: a matched-pair cluster design changes the default and the variance
    cluster = spec["cluster"]
    clusters = None
    if cluster is not None:
        clusters = cluster_labels(persons, cluster)[pi]
    elif k_rows is not None:
        clusters = pi  # stacked rows of one person are dependent
    pairs = None
    # covariates of the persons with an outcome only (levels absent there get no dummy)
    z_all, znames = covariate_matrix(persons, covs, rows=pi)
    Z: np.ndarray | None = z_all if z_all.shape[1] else None
    strata = spec["strata"]
    S = None
    snames: tuple[str, ...] = ()
    if strata is True or isinstance(strata, str):
        if strata is True:
            codes_all = study.design.stratum
            labs: Sequence[Any] = study.design.stratum_labels
            sname = "stratum"
        else:
            if strata not in persons.columns:
                raise EstimationError(
                    f"strata must be True, False or a column of persons; you passed {strata!r}",
                    table="persons", fix="pass strata=True to use the randomization strata",
                )
            if persons[strata].isna().any():
                raise EstimationError(f"strata column {strata!r} has missing values", table="persons",
                                      column=strata, n_rows=int(persons[strata].isna().sum()))
            codes_all, labs = pd.factorize(persons[strata], sort=True)
            labs = [str(v) for v in labs]
            sname = strata
        codes = np.asarray(codes_all)[pi]
        if cluster is not None:
            assert clusters is not None  # set from ``cluster`` above
            pairs = matched_pairs(codes, clusters, arm)
        if pairs is not None and default and not covs:
            adjustment = "none"  # the matched-pair estimator (estimatr's, for this design)
        if adjustment == "lin" and default:
            # The default targets the ATE (Lin); where a stratum has fewer than two persons
            # in an arm the interacted estimator has no variance (leverage one), so the
            # default falls back to strata fixed effects and says so.
            c1 = np.bincount(codes, weights=arm, minlength=len(labs))
            c0 = np.bincount(codes, weights=1 - arm, minlength=len(labs))
            small = np.flatnonzero((np.minimum(c1, c0) < 2) & (c1 + c0 > 0))
            n_b = int(np.unique(codes).size)
            if clusters is not None and small.size == 0 and np.unique(clusters).size <= 2 * n_b:
                adjustment = "ancova"
                warnings.warn(
                    f"assignment probabilities differ across strata, but with "
                    f"{int(np.unique(clusters).size)} clusters for {n_b} strata the interacted "
                    "(Lin) estimator leaves the cluster-robust variance no degrees of freedom "
                    "(it would be near zero); the default falls back to strata fixed effects "
                    "(adjustment='ancova'), a precision-weighted average of the stratum effects",
                    EstimationWarning, stacklevel=3,
                )
            elif small.size:
                adjustment = "ancova"
                warnings.warn(
                    "assignment probabilities differ across strata, but stratum/strata "
                    f"{', '.join(repr(str(labs[b])) for b in small[:5])} have fewer than two "
                    "persons with the outcome in an arm, so the interacted (Lin) estimator of "
                    "the ATE is undefined there; the default falls back to strata fixed effects "
                    "(adjustment='ancova'), which estimate a precision-weighted average of the "
                    "stratum effects. Merge small strata (strata='<column>') to estimate the ATE",
                    EstimationWarning, stacklevel=3,
                )
        if adjustment in ("none", "lin"):
            # the interacted (blocked) estimator needs both arms in every stratum
            c1 = np.bincount(codes, weights=arm, minlength=len(labs))
            c0 = np.bincount(codes, weights=1 - arm, minlength=len(labs))
            bad = np.flatnonzero(((c1 == 0) | (c0 == 0)) & (c1 + c0 > 0))
            if bad.size:
                raise EstimationError(
                    f"stratum/strata {', '.join(repr(str(labs[b])) for b in bad[:5])} "
                    "have persons with an observed outcome in one arm only, so the "
                    f"within-stratum contrast of adjustment={adjustment!r} does not exist",
                    column=sname, n_rows=int(bad.size),
                    fix="use adjustment='ancova', merge small strata (strata='<column>'), or strata=False",
                )
        S, snames = dummies(codes, list(labs), sname)
        if not S.shape[1]:
            S = None
    elif strata is not False:
        raise EstimationError(f"strata must be True, False or a column of persons; you passed {strata!r}")

    extra = None
    enames: tuple[str, ...] = ()
    if k_rows is not None:
        kc, klab = pd.factorize(k_rows, sort=True)
        extra, enames = dummies(kc, [int(v) for v in klab], "k")
        if not extra.shape[1]:
            extra = None

    if Z is not None:
        # the one collinearity rule of every estimator (a redundant covariate is refused)
        base = [np.ones(arm.size), arm] + ([] if S is None else [S])
        collinear_covariates(np.column_stack(base), Z, znames)
    design = regression_design(arm, adjustment=adjustment, covariates=Z, covariate_names=znames,
                               strata=S, strata_names=snames, extra=extra, extra_names=enames)

    cov_type = resolve_cov_type(spec["cov_type"], clustered=clusters is not None)
    if pairs is not None and not (matched_pair_ok and adjustment == "none" and k_rows is None):
        raise EstimationError(
            f"every stratum holds exactly one cluster of {spec['cluster']!r} in each arm "
            "(a matched-pair cluster design): with the stratum effects of "
            f"adjustment={adjustment!r} the pair uses up its two clusters, so the "
            "cluster-robust (CR) variance has no residual variation left and would be "
            f"near zero (CR2 is undefined; {int(np.unique(pairs).size)} pairs)",
            column=spec["cluster"],
            fix="use adjustment='none' (the blocked difference in means with the "
            "matched-pair variance, df = pairs - 1, as estimatr), or strata=False",
        )
    return design, clusters, cov_type


@dataclass(frozen=True)
class _Prepared:
    Y: np.ndarray  # (N, L) outcome rows; L > 1 for the levels of a categorical outcome
    person_index: np.ndarray  # (N,) rows of study.persons
    k: np.ndarray | None  # (N,) event time of stacked rows
    arm: np.ndarray  # (N,)
    design: RegressionDesign
    clusters: np.ndarray | None
    cov_type: str
    outcome_labels: tuple[str, ...]
    levels: tuple[str, ...] | None
    horizon: Any
    n_missing: tuple[int, int]  # persons without outcome (treated, control)
    ledger: tuple[dict[str, Any], ...]
    spec: dict[str, Any]
    pairs: np.ndarray | None = None  # (N,) pair of each row in a matched-pair cluster design


def _stratum_codes(study: Any, strata: Any) -> np.ndarray:
    if strata is True:
        return np.asarray(study.design.stratum)
    codes, _ = pd.factorize(study._persons_frame()[strata], sort=True)
    return codes


def _spec(**kw: Any) -> dict[str, Any]:
    subset = kw["subset"]
    if isinstance(subset, pd.Series):
        subset = subset.to_numpy()
    if subset is not None and not isinstance(subset, str):
        subset = np.asarray(subset, dtype=bool)
    kw["subset"] = subset
    kw["covariates"] = tuple(kw["covariates"]) if not isinstance(kw["covariates"], str) else (kw["covariates"],)
    kw.setdefault("window_rule", "complete")
    w = kw["window"]
    if isinstance(w, (tuple, list)) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in w):
        kw["window"] = tuple(int(v) for v in w)  # plain ints in the spec; anything else is refused later
    return kw


def _category_values(study: Any, outcome: str, ks: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """(n_persons, T, L) indicators of each category; NaN where the person is unobserved."""
    panel = study.panel
    rows = np.isin(panel["k"].to_numpy(), ks)
    sub = panel.loc[rows, ["person_id", "k", outcome]]
    pidx = pd.Index(study._persons_frame()["person_id"]).get_indexer(sub["person_id"])
    col = sub[outcome]
    has = col.notna().to_numpy()
    codes, levels = pd.factorize(col.astype(str).where(has), sort=True)
    levels = tuple(str(v) for v in levels)
    if not levels:
        raise EstimationError(
            f"categorical outcome {outcome!r} has no category in the requested event times",
            table="panel", column=outcome, fix="check the horizon or window",
        )
    n, T, L = study.n_persons, ks.size, len(levels)
    out = np.full((n, T, L), np.nan)
    t = np.searchsorted(ks, sub["k"].to_numpy())
    out[pidx, t, :] = 0.0
    ok = codes >= 0
    out[pidx[ok], t[ok], codes[ok]] = 1.0
    return out, levels


def _prepare(study: Any, outcome: str, spec: dict[str, Any]) -> _Prepared:
    horizon, window, aggregate = spec["horizon"], spec["window"], spec["aggregate"]
    if spec["adjustment"] is not None:  # None: resolved from the design below
        check_option(spec["adjustment"], ADJUSTMENTS, "adjustment")  # fail before any data work
    aggregate = check_option(aggregate, AGGREGATES, "aggregate")
    window_rule = check_option(spec.get("window_rule", "complete"), WINDOW_RULES, "window_rule")
    critical_value(spec["level"])
    if horizon is None and window is None:
        raise EstimationError(
            "itt needs the event time(s) of the outcome",
            fix="pass horizon=k (e.g. horizon=6 for 18 months in quarters) or window=(a, b)",
        )
    if horizon is not None and window is not None:
        horizon_label(horizon, window)  # refuses both at once
    persons = study._persons_frame()  # read only: no copy of the table per fit
    kmin, kmax = study.k_range
    if horizon is not None:
        ks = np.array([check_horizon(horizon)])
    else:
        a, b = check_window(window)
        ks = np.arange(a, b + 1)
    hlabel = horizon_label(None if horizon is None else int(ks[0]), None if window is None else (a, b))
    if ks[0] < kmin or ks[-1] > kmax:
        raise EstimationError(
            f"{'horizon ' + str(int(ks[0])) if horizon is not None else f'window ({ks[0]}, {ks[-1]})'} "
            f"is outside the observed follow-up (k from {kmin} to {kmax})",
            table="panel", column="k", fix=f"choose event times between {kmin} and {kmax}",
        )

    # ---- outcome values (n, T, L)
    study.require_outcome(outcome, categorical_ok=True)
    if outcome in study.outcomes:
        vals = study.outcome_matrix(outcome, ks)[:, :, None]
        levels = None
        labels: tuple[str, ...] = (outcome,)
    else:
        vals, levels = _category_values(study, outcome, ks)
        labels = tuple(f"{outcome}={lv}" for lv in levels)
    mask = person_mask(persons, spec["subset"])
    arm_all = np.asarray(study.design.arm, dtype=np.int8)  # the arm has one source: the design
    ledger: list[dict[str, Any]] = []

    if aggregate == "stack" and window is not None:
        obs = np.isfinite(vals[:, :, 0]) & mask[:, None]  # (n, T)
        pi, ti = np.nonzero(obs)
        Y = vals[pi, ti, :]
        k_rows: np.ndarray | None = ks[ti]
        has_any = obs.any(axis=1)
        miss_persons = mask & ~has_any
        n_rows_missing = int((mask[:, None] & ~np.isfinite(vals[:, :, 0])).sum())
        if n_rows_missing:
            ar = np.broadcast_to(arm_all[:, None], obs.shape)[mask[:, None] & ~np.isfinite(vals[:, :, 0])]
            n1, n0 = arm_counts(ar)
            ledger.append({"reason": f"person-periods without {outcome} in the window (excluded)",
                           "n_rows": n_rows_missing, "n_treated": n1, "n_control": n0})
    else:
        if vals.shape[1] == 1:
            agg = vals[:, 0, :]
        else:
            # the one window rule of every estimator (estimators/_options.py)
            kmin_p = persons["k_min"].to_numpy(dtype=float)[:, None]
            kmax_p = persons["k_max"].to_numpy(dtype=float)[:, None]
            inside = (ks[None, :] >= kmin_p) & (ks[None, :] <= kmax_p)
            agg = window_values(vals, aggregate, window_rule, outcome, inside=inside)
        observed = np.isfinite(agg[:, 0])
        pi = np.flatnonzero(mask & observed)
        Y = agg[pi]
        k_rows = None
        miss_persons = mask & ~observed
    n_miss = arm_counts(arm_all[miss_persons])
    if miss_persons.any():
        what = "at the horizon" if horizon is not None else (
            "at some period of the window (window_rule='complete': the mean or sum needs every period)"
            if aggregate != "stack" and window_rule == "complete" else "at any period of the window")
        ledger.insert(0, {"reason": f"persons without {outcome} {what} (excluded)",
                          "n_rows": int(miss_persons.sum()), "n_treated": n_miss[0], "n_control": n_miss[1]})
    if levels is not None:
        # categories that no selected person has (after subset=) get no row
        present = np.nanmax(Y, axis=0) > 0 if Y.size else np.zeros(Y.shape[1], bool)
        Y = Y[:, present]
        levels = tuple(lv for lv, keep in zip(levels, present) if keep)
        labels = tuple(lb for lb, keep in zip(labels, present) if keep)
        if not levels:
            raise EstimationError(
                f"no selected person has a category of {outcome!r} in the requested event times",
                table="panel", column=outcome, fix="check the horizon, window or subset",
            )
    for j in range(Y.shape[1]):
        require_numeric_outcome(Y[:, j], labels[j] if levels is None else f"{outcome} (share in {levels[j]!r})")
    arm = arm_all[pi].astype(np.float64)
    if arm.min() == arm.max():
        raise EstimationError(
            "every person with an observed outcome is in the same arm; there is no contrast",
            table="panel", column=outcome, fix="check the subset, horizon or window",
        )

    design, clusters, cov_type = design_for_rows(study, spec, pi, arm, k_rows, outcome=outcome,
                                                 matched_pair_ok=True)
    pairs = None
    if clusters is not None and design.adjustment == "none" and k_rows is None and spec["strata"] is not False:
        pairs = matched_pairs(_stratum_codes(study, spec["strata"])[pi], clusters, arm)
    return _Prepared(
        Y=Y, person_index=pi, k=k_rows, arm=arm, design=design, clusters=clusters, cov_type=cov_type,
        outcome_labels=labels, levels=levels, horizon=hlabel, n_missing=n_miss, ledger=tuple(ledger),
        spec=spec, pairs=pairs,
    )


def _welch_df(y: np.ndarray, arm: np.ndarray) -> float:
    """Welch–Satterthwaite df of the unblocked difference in means (estimatr's)."""
    v = []
    for a in (1.0, 0.0):
        ya = y[arm == a]
        v.append((ya.var(ddof=1) / ya.size, ya.size))
    (a1, n1), (a0, n0) = v
    return float((a1 + a0) ** 2 / (a1**2 / (n1 - 1) + a0**2 / (n0 - 1)))


def _arm_fit(prep: _Prepared, design: OLSDesign, y: np.ndarray, welch: bool) -> tuple[OLSFit, float, float]:
    """Fit one outcome; return the fit and the arm's standard error and df under the design's variance rule."""
    j = prep.design.arm_index
    # every coefficient with its own df (CR2 Satterthwaite df differ by coefficient;
    # they depend on X only and are cached across outcomes), but for stacked rows:
    # there the other coefficients are period effects and covariates of the
    # person-period rows, whose df are not reported, and computing them took a third
    # of the fit (38 coefficients, 14,400 rows)
    fit: OLSFit = design.fit(y, df_for=(j,) if prep.k is not None else None)
    se, df = float(fit.std_error[j]), float(fit.df[j])
    if welch:
        df = _welch_df(y, prep.arm)
    if prep.pairs is not None:
        _, se, df = matched_pair_inference(y, prep.arm, prep.pairs)
    return fit, se, df


def _welch_rule(prep: _Prepared) -> bool:
    """Whether the arm's df is Welch's (difference in means with HC2 on one row per person)."""
    return (prep.design.adjustment == "none" and prep.design.X.shape[1] == 2
            and prep.cov_type == "HC2" and prep.k is None)


@hot_path(study_size)
def _itt_arm(study: Any, outcome: str, *, level: float = 0.95, **options: Any) -> tuple[float, float, float]:
    """``(estimate, std_error, p_value)`` of :func:`itt` for a numeric outcome, without its result.

    The same request, sample and variance rule as ``itt(study, outcome, **options)`` (the
    same functions compute them), for callers that refit thousands of simulated trials
    and read three numbers (:func:`ips_impact.power`); building the result and its frozen
    tables was a sixth of a replicate.
    """
    spec = _spec(level=level, **{**_ITT_DEFAULTS, **options})
    spec["adjustment"], spec["adjustment_reason"] = resolve_adjustment(
        spec["adjustment"], study.design, strata=spec["strata"])
    prep = _prepare(study, outcome, spec)
    if prep.levels is not None:
        raise EstimationError(f"outcome {outcome!r} is categorical: it has one effect per category",
                              table="panel", column=outcome, fix="choose a numeric outcome.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IpsImpactWarning)  # itt reports them on its result
        design = OLSDesign(prep.design.X, prep.design.names, cov_type="CR0" if prep.pairs is not None
                           else prep.cov_type, clusters=prep.clusters)
    fit, se, df = _arm_fit(prep, design, prep.Y[:, 0], _welch_rule(prep))
    est = float(fit.coef[prep.design.arm_index])
    return est, se, float(wald_inference(est, se, df, level)[1])


def _fit_prepared(prep: _Prepared, *, level: float, outcome: str) -> EffectResult | CategoricalEffectResult:
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", IpsImpactWarning)
        # matched pairs: the CR variance is replaced below (CR0 only builds the table)
        ols_cov = "CR0" if prep.pairs is not None else prep.cov_type
        design = OLSDesign(prep.design.X, prep.design.names, cov_type=ols_cov, clusters=prep.clusters)
    for w in rec:
        caught.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    j = prep.design.arm_index
    welch = _welch_rule(prep)
    effects = []
    # persons, not rows, in n_treated / n_control (stacked rows are in nobs)
    persons_in, first = np.unique(prep.person_index, return_index=True)
    n_persons = int(persons_in.size)
    n1 = int((prep.arm[first] == 1).sum())
    n0 = n_persons - n1
    ledger = pd.DataFrame(list(prep.ledger), columns=["reason", "n_rows", "n_treated", "n_control"])
    spec = dict(prep.spec)
    spec["cov_type"] = prep.cov_type
    spec["outcome"] = outcome
    spec["estimator"] = "itt"
    vcov_names = list(prep.design.names)
    for m, label in enumerate(prep.outcome_labels):
        y = prep.Y[:, m]
        fit, se, df = _arm_fit(prep, design, y, welch)
        table = fit.table(level)
        if welch:
            stat, p, lo, hi = wald_inference(fit.coef[j], fit.std_error[j], df, level)
            table.iloc[j, 2:] = [stat, p, lo, hi, df]
        vcov = pd.DataFrame(fit.vcov, index=vcov_names, columns=vcov_names)
        if prep.pairs is not None:
            stat, p, lo, hi = wald_inference(fit.coef[j], se, df, level)
            table = table.copy()
            table.iloc[:, 1:] = np.nan  # only the arm has a design-based variance here
            table.iloc[j, 1:] = [se, stat, p, lo, hi, df]
            v = np.full((len(vcov_names), len(vcov_names)), np.nan)
            v[j, j] = se**2
            vcov = pd.DataFrame(v, index=vcov_names, columns=vcov_names)
        effects.append(
            EffectResult(
                outcome=label,
                estimate=float(fit.coef[j]),
                std_error=se,
                df=df,
                nobs=fit.nobs, n_treated=n1, n_control=n0, term="arm", level=level,
                horizon=prep.horizon,
                control_mean=float(y[prep.arm == 0].mean()),
                coefficients=table,
                vcov=vcov,
                n_missing_treated=prep.n_missing[0], n_missing_control=prep.n_missing[1],
                diagnostics={
                    "adjustment": prep.design.adjustment,
                    "adjustment_reason": spec.get("adjustment_reason", "as requested"),
                    "cov_type": prep.cov_type if prep.pairs is None else "matched-pair",
                    "variance": (f"{prep.cov_type} sandwich" if prep.pairs is None else
                                 "matched-pair cluster-randomized (Imai, King & Nall 2009; "
                                 "estimatr), df = pairs - 1"),
                    "n_persons": n_persons,
                    "n_clusters": fit.n_clusters,
                    "stacked_rows": prep.k is not None,
                },
                spec=spec, warnings=tuple(caught), ledger=ledger,
            )
        )
    if prep.levels is None:
        return effects[0]
    return CategoricalEffectResult(outcome=outcome, levels=prep.levels, effects=tuple(effects),
                                   spec=spec, warnings=tuple(caught), ledger=ledger)


# ------------------------------------------------------------------------------- itt


@hot_path(study_size)
@records_frequency
def itt(
    study: Any,
    outcome: str,
    *,
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
) -> EffectResult | CategoricalEffectResult:
    r"""Intention-to-treat effect of the offer of IPS on an outcome.

    Estimand (with :math:`Z_i` the assigned arm and :math:`Y_i(z)` potential outcomes):

    * ``horizon=h``: :math:`\tau_h = E[Y_{ih}(1) - Y_{ih}(0)]`, the outcome at event
      time k = h (k = 0 is the randomization period);
    * ``window=(a, b)``, ``aggregate="mean"`` / ``"sum"``: the effect on the person's
      mean :math:`\bar Y_i = \frac{1}{b-a+1}\sum_{k=a}^{b} Y_{ik}` (or the sum) — only
      persons observed at every k of the window enter, so that the aggregate means the
      same for everyone;
    * ``window=(a, b)``, ``aggregate="stack"``: person-period rows
      :math:`Y_{ik} = \alpha_k + \tau Z_i + \dots + e_{ik}` with period fixed effects
      :math:`\alpha_k`, clustered by person (CR2 by default); with a balanced window τ
      is the average of the per-period effects, :math:`\frac{1}{b-a+1}\sum_k \tau_k`,
      and partly observed persons contribute their observed periods.

    What each ``adjustment`` estimates, with strata :math:`b` of size :math:`n_b`:

    * ``"none"``: without strata, the difference in means
      :math:`\bar Y_1 - \bar Y_0` (estimatr ``difference_in_means``; with HC2 its
      Neyman standard error and Welch df); with strata, the blocked difference in
      means :math:`\sum_b \frac{n_b}{n}(\bar Y_{1b} - \bar Y_{0b})` (estimatr
      ``difference_in_means(blocks=)``), computed as arm interacted with centred
      stratum dummies. Unbiased for the average effect τ.
    * ``"ancova"``: :math:`Y_i = \alpha + \tau Z_i + X_i'\beta + \gamma_{b(i)} + e_i`
      (additive covariates and stratum fixed effects). With equal assignment
      probabilities across strata it estimates τ; with unequal probabilities the
      stratum effects weight each stratum by :math:`n_b p_b(1-p_b)` (a
      variance-weighted average, not τ when effects differ across strata).
    * ``"lin"`` (Lin 2013): :math:`Y_i = \alpha + \tau Z_i + \tilde W_i'\beta +
      Z_i \tilde W_i'\delta + e_i` with :math:`\tilde W` the covariates and stratum
      dummies centred at their sample means. τ is the stratum-size-weighted average
      effect :math:`\sum_b \frac{n_b}{n}\tau_b` (= τ) even with unequal assignment
      probabilities, and is never less precise asymptotically than "none".

    Parameters
    ----------
    study
        A :class:`~ips_impact.study.Study`.
    outcome
        A numeric panel column (``study.outcomes``), or a categorical one
        (``study.categorical_outcomes``): then one effect per category on the
        *unconditional* share in that category (see :class:`CategoricalEffectResult`).
    horizon, window, aggregate
        Event time(s) of the outcome; exactly one of ``horizon``/``window``.
        ``aggregate`` is ``"mean"``, ``"sum"`` or ``"stack"``; it applies to windows
        (with ``horizon`` there is one period and nothing to aggregate). Stacked rows
        centre the "lin" covariates at their means over the rows.
    covariates
        Baseline columns of ``study.persons`` (categorical ones become dummies; missing
        values are refused).
    adjustment
        ``"none"``, ``"ancova"`` or ``"lin"`` (above). Default ``None``: ``"ancova"``
        when the assignment probability is the same in every stratum (it then
        estimates τ), ``"lin"`` when it differs (the ATE with stratum-share weights);
        ``diagnostics["adjustment"]`` and ``["adjustment_reason"]`` say which. The
        strata fixed-effects estimand stays available as ``adjustment="ancova"`` (with
        a warning when the probabilities differ).
    window_rule
        How a window's mean or sum treats periods without the outcome:
        ``"complete"`` (default, as in every estimator: the person needs every period),
        ``"available"`` (the periods observed) or ``"absent_not_at_work"`` (LMD job
        variables only: a period without an LMD row within the person's follow-up
        counts as 0). See :mod:`ips_impact.estimators._options`.
    strata
        ``True``: the randomization strata of ``study.design``; ``False``: none; or a
        column of ``persons`` to use as strata. One stratum ⇒ same as ``False``.
    cov_type
        ``"HC0"``–``"HC3"``, ``"CR0"``, ``"CR1"``, ``"CR2"``
        (:data:`~ips_impact.inference.covariance.COV_TYPES`). Default ``"HC2"``,
        ``"CR2"`` when clustered (``cluster=`` or stacked rows).
    cluster
        A column of ``persons`` (e.g. ``"household_id"``, ``"site"``); stacked rows
        are clustered by person when ``cluster`` is not given.
    level
        Confidence level.
    subset
        Boolean mask on ``persons``, a boolean column name, or a query string
        (``"region == 'VL'"``).

    Returns
    -------
    EffectResult or CategoricalEffectResult
        ``term == "arm"``; ``n_missing_treated`` / ``n_missing_control`` count the
        persons excluded for a missing outcome (also in ``.ledger``). ``nobs`` counts
        regression rows (person-periods when stacked); ``n_treated``, ``n_control``
        and ``diagnostics["n_persons"]`` count persons. ``coefficients`` holds every
        coefficient with its standard error; with stacked rows (CR2 by person) only the
        arm's row has Satterthwaite df, p-value and interval (the period effects and
        covariates get NaN there: only what is reported is computed), ``vcov`` stays full.

    Raises
    ------
    EstimationError
        Unknown ``cov_type``/``adjustment``/``aggregate`` (the message lists the
        allowed values), a CR type without a cluster, fewer than 2 clusters, horizon or
        window outside the observed follow-up, an outcome without variation, collinear
        covariates, a stratum with one arm under "none"/"lin", a stratum × arm cell
        with a single person under "none"/"lin" with HC2/HC3 (leverage one; estimatr's
        matched-pair variance for blocks of two is not implemented — use "ancova" or
        coarser strata).
    DataContractError
        The outcome is not a panel column.

    Warns
    -----
    SmallSampleWarning
        Fewer than 20 clusters.
    """
    spec = _spec(horizon=horizon, window=window, aggregate=aggregate, covariates=covariates,
                 adjustment=adjustment, strata=strata, cov_type=cov_type, cluster=cluster,
                 level=level, subset=subset, window_rule=window_rule)
    spec["adjustment"], spec["adjustment_reason"] = resolve_adjustment(
        adjustment, study.design, strata=strata)
    prep = _prepare(study, outcome, spec)
    return _fit_prepared(prep, level=level, outcome=outcome)


# itt's options and their defaults, for _itt_arm (one list: the signature)
_ITT_DEFAULTS = {name: p.default for name, p in inspect.signature(itt).parameters.items()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "level"}


# ------------------------------------------------------------------ RI components


@dataclass(frozen=True)
class ITTComponents:
    r"""The arrays behind a fitted :func:`itt` result, for randomization inference.

    Rows are the regression rows (persons, or person-periods when stacked). The
    regression is :math:`y = \alpha + \tau z + N\gamma + (z \odot I)\delta + e`, with
    ``N = nuisance[:, 1:]`` and ``I = interact`` (empty unless ``adjustment`` is "lin",
    or "none" with strata). Under a re-drawn assignment :math:`z^*` (a row of
    ``study.design.permutations(...)``), the rows take ``z*[person_index]``; the
    nuisance and the centred interaction columns do not depend on the assignment, so:

    * without interactions (``interact.shape[1] == 0``), by Frisch–Waugh–Lovell
      :math:`\hat\tau(z^*) = \tilde z^{*\prime}\tilde y / \tilde z^{*\prime}\tilde z^*`
      with :math:`\tilde{\cdot}` the residual from ``nuisance`` — residualise ``y``
      once, then one matrix product over the permutation matrix;
    * with interactions, :math:`\hat\tau(z^*)` is the Lin estimator: per arm,
      regress y on the centred ``interact`` columns; τ = difference of the intercepts.

    Attributes
    ----------
    y
        (N,) outcome of each row (the indicator of ``level`` for categorical outcomes).
    person_index
        (N,) row of ``study.persons`` of each regression row.
    arm
        (N,) observed assignment of each row (0/1 float).
    nuisance, nuisance_names
        (N, q) columns not involving the arm: intercept first, then covariates,
        stratum dummies (centred under "lin", and under "none" with strata), period
        fixed effects of stacked rows.
    interact, interact_names
        (N, r) centred columns interacted with the arm.
    adjustment, cov_type
        As fitted.
    clusters
        (N,) cluster codes (``None`` for HC types); stacked rows are clustered by person.
    estimate
        The fitted τ.
    outcome
        The outcome label of the row of the result these arrays belong to.
    """

    y: np.ndarray
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
    outcome: str

    def __post_init__(self) -> None:
        for a in (self.y, self.person_index, self.arm, self.nuisance, self.interact, self.clusters):
            if a is not None:
                a.setflags(write=False)

    def design_matrix(self, arm: np.ndarray | None = None) -> np.ndarray:
        """Return the full regressor matrix ``[1, z, N, z ⊙ I]`` for ``arm`` (default: observed)."""
        z = self.arm if arm is None else np.asarray(arm, dtype=np.float64)
        return np.hstack([self.nuisance[:, :1], z[:, None], self.nuisance[:, 1:], z[:, None] * self.interact])


def itt_components(
    study: Any, result: EffectResult | CategoricalEffectResult, *, level: str | None = None
) -> ITTComponents:
    """Return the arrays of a fitted :func:`itt` result (see :class:`ITTComponents`).

    Parameters
    ----------
    study
        The study the result was fitted on.
    result
        An :func:`itt` result (its ``spec`` is replayed; nothing is refitted).
    level
        For a :class:`CategoricalEffectResult`, the category whose indicator is ``y``
        (required then).

    Raises
    ------
    EstimationError
        The result does not come from :func:`itt`, or ``level`` is missing/unknown.
    """
    spec = dict(result.spec)
    needed = ("horizon", "window", "aggregate", "covariates", "adjustment", "strata", "cov_type",
              "cluster", "level", "subset", "outcome")
    if any(k not in spec for k in needed) or spec.get("estimator", "itt") != "itt":
        raise EstimationError("the result was not produced by itt(); its spec cannot be replayed")
    outcome = spec.pop("outcome")
    prep = _prepare(study, outcome, spec)
    m = 0
    if prep.levels is not None:
        if level is None or level not in prep.levels:
            raise EstimationError(
                f"pass level= one of {', '.join(map(repr, prep.levels))} for the categorical outcome {outcome!r}"
            )
        m = prep.levels.index(level)
        est = result.effect_at(level).estimate  # type: ignore[union-attr]
    else:
        est = result.estimate  # type: ignore[union-attr]
    d = prep.design
    return ITTComponents(
        y=prep.Y[:, m].copy(), person_index=prep.person_index.copy(), arm=prep.arm.copy(),
        nuisance=d.nuisance.copy(), nuisance_names=d.nuisance_names,
        interact=d.interact.copy(), interact_names=d.interact_names,
        adjustment=d.adjustment, cov_type=prep.cov_type,
        clusters=None if prep.clusters is None else np.asarray(prep.clusters).copy(),
        estimate=float(est), outcome=prep.outcome_labels[m],
    )



def randomization_problem(study: Any, result: EffectResult | CategoricalEffectResult) -> list[LinearProblem]:
    """Build the randomization problem of an :func:`itt` result from :func:`itt_components`.

    Any adjustment; horizon, window or stacked rows.

    The regression is :math:`y = \\alpha + \\tau z + N\\gamma + (z \\odot I)\\delta`: the
    nuisance is N (intercept first), the arm multiplies ``[1, I]`` and τ is the first
    coefficient. Stacked rows follow their person (``person_index``). For a categorical
    outcome, one problem per level (the tidy rows' order).
    """
    levels = getattr(result, "levels", None)
    comps = ([itt_components(study, result)] if levels is None
             else [itt_components(study, result, level=lv) for lv in levels])
    out = []
    for c in comps:
        inter = np.column_stack([np.ones(len(c.y)), np.asarray(c.interact, dtype=float).reshape(len(c.y), -1)])
        out.append(LinearProblem(y=np.asarray(c.y, dtype=float), row_person=np.asarray(c.person_index),
                                 nuisance=np.asarray(c.nuisance, dtype=float), interact=inter, coef=(0,)))
    return out


register_randomization("itt", randomization_problem)
