r"""Heterogeneity of the effect: by subgroup, or along a continuous moderator.

With :math:`Z_i` the arm and :math:`G_i` a baseline subgroup (region, site, household
type, partner at work, tercile of local unemployment, any column of ``persons``),
:func:`heterogeneity` estimates the subgroup effects

.. math:: \tau_g = E\left[Y_i(1) - Y_i(0) \mid G_i = g\right]

from the fully interacted regression

.. math:: y_i = \sum_g \mathbb 1[G_i = g]\,(\alpha_g + \tau_g Z_i) + s_i'\delta + x_i'\beta + e_i

(``adjustment="ancova"``: stratum effects :math:`s_i` and covariates :math:`x_i` are
additive and common to the subgroups; ``"none"``: neither (with ``strata=True`` the
arm is interacted with the stratum indicators centred within each subgroup, a blocked
difference in means per subgroup); ``"lin"``: arm × covariates and strata centred
within each subgroup) and tests :math:`H_0: \tau_1 = \dots = \tau_G` with the Wald
statistic

.. math:: W = (R\hat\tau)'(R\hat V R')^{-1}(R\hat\tau), \qquad F = W / q,

:math:`R` the :math:`q = G-1` contrasts :math:`\tau_g - \tau_1` and :math:`\hat V` the
same robust covariance as the subgroup effects. Reference distribution (``joint_test``):

- ``"HTZ"`` (default with CR2): Hotelling's T² approximation of Pustejovsky & Tipton
  (2018), :math:`F = \delta W/q \sim F(q, \nu - q + 1)`,
  :math:`\delta = (\nu - q + 1)/\nu`, with :math:`\nu` matched to the first two moments
  of :math:`R\hat VR'` under the CR2 working model (independent homoskedastic errors);
  see :func:`htz_test`. It equals ``clubSandwich::Wald_test(test = "HTZ")``.
- ``"naive-F"`` (default with CR0/CR1): :math:`W/q \sim F(q, C-1)` (C clusters;
  clubSandwich's "Naive-F"). With few clusters it over-rejects.
- ``"F"`` (default with HC types): :math:`W/q \sim F(q, N-K)`.
- ``"chi-square"``: :math:`W \sim \chi^2_q`.

Moderator source: a column of ``persons`` named ``by`` is always used as given (the
user's own variable), also for the names of derived moderators; ``household_type`` and
``partner_at_work`` are derived from the baseline household roster only when
``persons`` has no such column. ``result.spec["moderator_source"]`` says which
(``"persons"``, ``"roster"`` or ``"sites"``) and ``spec["moderator_column"]`` the
column.

A continuous moderator :math:`m` enters centred at its sample mean :math:`\bar m`:

.. math:: y_i = \alpha + \tau Z_i + \lambda (m_i - \bar m) + \gamma Z_i (m_i - \bar m)
          + s_i'\delta + x_i'\beta + e_i,

so that :math:`\tau` is the effect at the mean moderator and :math:`\gamma` the change
of the effect per unit of :math:`m` (the joint test is :math:`\gamma = 0`).

Each subgroup also gets its minimum detectable effect (80% power, 5% two-sided, from
its own standard error; :func:`ips_impact.power.mde`); a subgroup with fewer than 30
persons in an arm draws a :class:`~ips_impact.errors.SmallSampleWarning`.

Randomization inference: :func:`randomization_problem` returns the
:class:`~ips_impact.inference.randomization.LinearProblem` (outcome, row → person map,
nuisance design, arm multipliers = subgroup indicators or ``[1, m − m̄]``) whose
coefficients are the subgroup effects under any re-drawn assignment.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ips_impact.errors import EstimationError, SmallSampleWarning
from ips_impact.estimators._data import check_option, cluster_labels
from ips_impact.estimators._options import WINDOW_RULES, resolve_adjustment, window_values
from ips_impact.estimators.spillover import (
    _AGGREGATES,
    ModelMatrices,
    _ledger_row,
    _person_covariates,
    assemble,
    check_conf_level,
    check_horizon_window,
    check_names,
    fit_model_design,
    stratum_dummies,
)
from ips_impact.inference.covariance import COV_TYPES, OLSDesign, check_cov_type
from ips_impact.inference.htz import htz_test
from ips_impact.inference.ri_engine import LinearProblem
from ips_impact.inference.ri_protocol import RandomizationProblem, register_randomization
from ips_impact.power import mde as _mde
from ips_impact.results.base import horizon_label
from ips_impact.results.heterogeneity import HeterogeneityResult
from ips_impact.roster import (  # noqa: F401  (check_sites re-exported: public name of this module)
    DERIVED_MODERATORS,
    FIDELITY_RANGE,
    MODERATOR_SOURCES,
    _moderator,
    check_sites,
)

__all__ = [
    "heterogeneity",
    "randomization_problem",
    "DERIVED_MODERATORS",
    "JOINT_TESTS",
    "check_sites",
    "htz_test",
]

_MODERATOR_KINDS = ("auto", "categorical", "continuous")
_ADJUSTMENTS = ("none", "ancova", "lin")
#: Reference distributions of the joint test, and the covariance types each one serves.
JOINT_TESTS: dict[str, tuple[str, ...]] = {
    "HTZ": ("CR2",),
    "naive-F": ("CR0", "CR1", "CR2"),
    "F": ("HC0", "HC1", "HC2", "HC3"),
    "chi-square": ("HC0", "HC1", "HC2", "HC3", "CR0", "CR1", "CR2"),
}


# ------------------------------------------------------------------- the model


def _check_joint_test(joint_test: Any, cov_type: str) -> str:
    """Default and check ``joint_test`` against the covariance type (see :data:`JOINT_TESTS`)."""
    clustered = COV_TYPES[cov_type].clustered
    if joint_test is None:
        if cov_type == "CR2":
            return "HTZ"
        return "naive-F" if clustered else "F"
    allowed = [t for t, types in JOINT_TESTS.items() if cov_type in types]
    if not isinstance(joint_test, str) or joint_test not in JOINT_TESTS:
        raise EstimationError(
            f"joint_test must be one of {', '.join(map(repr, JOINT_TESTS))} (or None for the "
            f"default); you passed {joint_test!r}",
            fix=f"with cov_type={cov_type!r} pass one of {', '.join(map(repr, allowed))}",
        )
    if joint_test not in allowed:
        why = {
            "HTZ": "HTZ takes its degrees of freedom from the CR2 working model",
            "naive-F": "naive-F refers to F(q, G - 1) with G clusters",
            "F": "F refers to F(q, N - K), the residual df of a fit without clusters",
        }[joint_test]
        raise EstimationError(
            f"joint_test={joint_test!r} does not go with cov_type={cov_type!r}: {why}",
            fix=f"with cov_type={cov_type!r} pass joint_test= one of "
            f"{', '.join(map(repr, allowed))}"
            + (", or cluster=<column> with cov_type='CR2' for HTZ" if joint_test == "HTZ" else ""),
        )
    return joint_test


def _spec(**kw: Any) -> dict[str, Any]:
    if not isinstance(kw["outcome"], str):
        raise EstimationError(f"outcome must be a column name (str); you passed {kw['outcome']!r}",
                              fix="e.g. outcome='work_on_di'")
    if not isinstance(kw["by"], str):
        raise EstimationError(f"by must be a column name (str); you passed {kw['by']!r}",
                              fix="e.g. by='region'")
    horizon, window = check_horizon_window(kw["horizon"], kw["window"])
    adjustment = check_option(kw["adjustment"], _ADJUSTMENTS, "adjustment")
    covariates = check_names("covariates", kw["covariates"])
    if adjustment == "none" and covariates:
        raise EstimationError("adjustment='none' takes no covariates",
                              fix="use adjustment='ancova' or 'lin', or drop covariates=")
    cluster = kw["cluster"]
    if cluster is not None and not isinstance(cluster, str):
        raise EstimationError(f"cluster must be a column name of persons; you passed {cluster!r}",
                              fix="e.g. cluster='household_id'")
    cov_type = kw["cov_type"]
    if cov_type is None:
        cov_type = "CR2" if cluster is not None else "HC2"
    cov_type = check_cov_type(cov_type)
    if COV_TYPES[cov_type].clustered and cluster is None:
        raise EstimationError(f"cov_type {cov_type!r} is cluster-robust but no cluster was given",
                              fix="pass cluster=<column of persons>, or use 'HC2'")
    if not COV_TYPES[cov_type].clustered and cluster is not None:
        raise EstimationError(f"cov_type {cov_type!r} ignores cluster={cluster!r}",
                              fix="use cov_type='CR2' (or 'CR1'), or drop cluster=")
    joint_test = _check_joint_test(kw["joint_test"], cov_type)
    cut = kw["cut"]
    if cut is not None and (isinstance(cut, bool) or not isinstance(cut, (int, np.integer)) or cut < 2):
        raise EstimationError(f"cut must be a whole number of quantile groups >= 2; you passed {cut!r}",
                              fix="e.g. cut=3 for terciles")
    mpa = kw["min_per_arm"]
    if isinstance(mpa, bool) or not isinstance(mpa, (int, np.integer)) or mpa < 0:
        raise EstimationError(f"min_per_arm must be a whole number >= 0; you passed {mpa!r}",
                              fix="e.g. min_per_arm=30")
    for name in ("strata",):
        if not isinstance(kw[name], bool):
            raise EstimationError(f"{name} must be True or False; you passed {kw[name]!r}")
    b = kw["baseline"]
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
        raise EstimationError(f"baseline must be a whole number (event time); you passed {b!r}",
                              fix="e.g. baseline=-1")
    return {
        "estimator": "heterogeneity",
        "outcome": kw["outcome"],
        "by": kw["by"],
        "horizon": horizon,
        "window": window,
        "aggregate": check_option(kw["aggregate"], _AGGREGATES, "aggregate"),
        "window_rule": check_option(kw.get("window_rule", "complete"), WINDOW_RULES, "window_rule"),
        "moderator": check_option(kw["moderator"], _MODERATOR_KINDS, "moderator"),
        "cut": None if cut is None else int(cut),
        "covariates": covariates,
        "adjustment": adjustment,
        "strata": kw["strata"],
        "cov_type": cov_type,
        "cluster": cluster,
        "joint_test": joint_test,
        "level": check_conf_level("level", kw["level"]),
        "baseline": int(b),
        "min_per_arm": int(mpa),
        "mde_power": check_conf_level("mde_power", kw["mde_power"]),
        "mde_alpha": check_conf_level("mde_alpha", kw["mde_alpha"]),
    }


def _person_outcome(study: Any, spec: dict[str, Any]) -> np.ndarray:
    outcome, horizon, window = spec["outcome"], spec["horizon"], spec["window"]
    study.require_outcome(outcome)
    if horizon is not None:
        return study.outcome_at(outcome, horizon).to_numpy(dtype=float)
    ks = np.arange(window[0], window[1] + 1)
    mat = study.outcome_matrix(outcome, ks)
    # the one window rule of every estimator (estimators/_options.py)
    persons = study.persons
    inside = ((ks[None, :] >= persons["k_min"].to_numpy(dtype=float)[:, None])
              & (ks[None, :] <= persons["k_max"].to_numpy(dtype=float)[:, None]))
    return window_values(mat, spec["aggregate"], spec.get("window_rule", "complete"), outcome,
                         inside=inside)


def _build(study: Any, spec: dict[str, Any], sites: pd.DataFrame | None) -> dict[str, Any]:
    """Sample, moderator coding and model matrices (shared with randomization_problem)."""
    persons = study.persons
    n = len(persons)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    y = _person_outcome(study, spec)
    values, forced, column, source = _moderator(study, spec["by"], sites, spec["baseline"])
    ledger: list[dict[str, Any]] = []
    keep = np.ones(n, dtype=bool)
    miss_y = np.isnan(y)
    if miss_y.any():
        ledger.append(_ledger_row(f"persons with no observed '{spec['outcome']}'", miss_y, arm))
        keep &= ~miss_y
    miss_m = values.isna().to_numpy()
    if (miss_m & keep).any():
        ledger.append(_ledger_row(f"persons with a missing moderator '{spec['by']}'", miss_m & keep, arm))
        keep &= ~miss_m

    kind = spec["moderator"]
    cut = spec["cut"]
    if forced == "tercile":
        cut = cut or 3
        forced = None
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if cut is not None:
        if not numeric:
            raise EstimationError(f"cut= needs a numeric moderator; {column!r} is not numeric",
                                  table="persons", column=column, fix="drop cut=")
        kind = "categorical"
    elif forced is not None:
        if kind != "auto" and kind != forced:
            raise EstimationError(
                f"by={spec['by']!r} is a {forced} moderator; you asked moderator={kind!r}",
                fix=f"use moderator='auto' or {forced!r}")
        kind = forced
    elif kind == "auto":
        # numbers with more than two values are continuous; text, categories, booleans
        # and 0/1 indicators are subgroups
        nvals = values[keep].nunique()
        kind = "continuous" if numeric and nvals > 2 else "categorical"
    elif kind == "continuous" and not numeric:
        raise EstimationError(f"moderator {column!r} is not numeric, so it cannot be continuous",
                              table="persons", column=column, fix="use moderator='categorical'")

    extra_range = None
    if kind == "categorical":
        if cut is not None:
            v = values.to_numpy(dtype=float)
            probs = np.linspace(0.0, 1.0, cut + 1)
            # quantiles of the estimation sample, R's type 7 (numpy's "linear"); intervals
            # (a, b] with the lowest value included, as cut(..., include.lowest = TRUE)
            edges = np.quantile(v[keep], probs)
            if np.unique(edges).size < edges.size:
                raise EstimationError(
                    f"{column!r} has too many tied values for {cut} quantile groups",
                    table="persons", column=column, fix="use a smaller cut= or moderator='categorical'")
            codes_all = np.clip(np.searchsorted(edges, v, side="left"), 1, cut) - 1
            labels = [f"Q{i + 1}" for i in range(cut)]
            ranges = [f"{'[' if i == 0 else '('}{edges[i]:.6g}, {edges[i + 1]:.6g}]" for i in range(cut)]
            codes = np.where(keep, codes_all, -1)
        else:
            if isinstance(values.dtype, pd.CategoricalDtype):
                cats = [str(c) for c in values.cat.categories]
                lab = values.astype(object).map(lambda x: None if pd.isna(x) else str(x))
            else:
                lab = values.map(lambda x: None if pd.isna(x) else (str(int(x)) if isinstance(x, float) and float(x).is_integer() else str(x)))
                cats = sorted(lab[keep].dropna().unique().tolist())
            cats = [c for c in cats if c in set(lab[keep].tolist())]
            labels = cats
            ranges = None
            pos = {c: i for i, c in enumerate(cats)}
            codes = np.array([pos.get(x, -1) if x is not None else -1 for x in lab], dtype=np.int64)
            codes[~keep] = -1
        # subgroups with one arm only cannot have an effect: set aside, with a ledger entry
        one_arm = []
        for gi, gl in enumerate(labels):
            in_g = codes == gi
            if in_g.any() and (arm[in_g].min() == arm[in_g].max()):
                one_arm.append(gl)
                ledger.append(_ledger_row(f"persons of subgroup {gl!r}, which has only one arm",
                                          in_g, arm))
                keep &= ~in_g
        if one_arm:
            warnings.warn(f"subgroup(s) {', '.join(map(repr, one_arm))} of {spec['by']!r} have "
                          "persons in one arm only and are left out", SmallSampleWarning, stacklevel=3)
        present = [gi for gi, _ in enumerate(labels) if ((codes == gi) & keep).any()]
        if len(present) < 2:
            raise EstimationError(
                f"{spec['by']!r} leaves fewer than two subgroups with both arms",
                table="persons", column=column, fix="choose another moderator")
        labels = [labels[gi] for gi in present]
        if ranges is not None:
            ranges = [ranges[gi] for gi in present]
        remap = np.full(max(codes.max() + 1, 1), -1)
        remap[present] = np.arange(len(present))
        codes = np.where(keep & (codes >= 0), remap[np.maximum(codes, 0)], -1)
    else:
        labels, ranges = None, None
        mvals = values.to_numpy(dtype=float)
        extra_range = (float(np.nanmin(mvals[keep])), float(np.nanmax(mvals[keep])))

    # covariates (refused if missing, as in itt) and clusters
    pcov, pcov_names, _ = _person_covariates(study, spec["covariates"])
    clusters_all = cluster_labels(persons, spec["cluster"]) if spec["cluster"] is not None else None
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise EstimationError("no person is left in the estimation sample",
                              fix="check the outcome, horizon and moderator")
    extra_parts, extra_names = [], []
    if spec["strata"]:
        sd, sd_names = stratum_dummies(study)
        extra_parts.append(sd[rows])
        extra_names += list(sd_names)
    if spec["adjustment"] != "none":
        extra_parts.append(pcov[rows])
        extra_names += list(pcov_names)
    extra = np.hstack(extra_parts) if extra_parts else np.zeros((rows.size, 0))
    lin = spec["adjustment"] in ("lin", "none")
    if kind == "categorical":
        g = codes[rows]
        D = (g[:, None] == np.arange(len(labels))[None, :]).astype(float)
        names = tuple(f"arm:{spec['by']}={lab}" for lab in labels)
        model = assemble(
            y=y[rows], row_person=rows, arm=arm, targets_v=D, targets_names=names,
            base=D, base_names=tuple(f"{spec['by']}={lab}" for lab in labels),
            extra=extra, extra_names=extra_names, lin=lin, lin_groups=g,
            clusters=None if clusters_all is None else clusters_all[rows], ledger=ledger,
            covariate_names=pcov_names,
        )
        centre = math.nan
        groups = g
    else:
        m = values.to_numpy(dtype=float)[rows]
        centre = float(m.mean())
        mc = m - centre
        V = np.column_stack([np.ones(rows.size), mc])
        model = assemble(
            y=y[rows], row_person=rows, arm=arm, targets_v=V,
            targets_names=("arm", f"arm:{spec['by']}"),
            base=V, base_names=("(Intercept)", spec["by"]),
            extra=extra, extra_names=extra_names, lin=lin,
            clusters=None if clusters_all is None else clusters_all[rows], ledger=ledger,
            covariate_names=pcov_names,
        )
        groups = None
    return {"model": model, "kind": kind, "labels": labels, "ranges": ranges, "groups": groups,
            "centre": centre, "arm": arm, "range": extra_range, "column": column,
            "source": source}


# ------------------------------------------------------------------ joint tests


def _joint_test(
    method: str, design: OLSDesign, fit: Any, t_idx: list[int], R: np.ndarray,
    b: np.ndarray, V: np.ndarray,
) -> dict[str, Any]:
    r"""The joint test :math:`R\tau = 0` by ``method`` (see :data:`JOINT_TESTS`)."""
    q = R.shape[0]
    rb = R @ b
    RVR = R @ V @ R.T
    ev = np.linalg.eigvalsh((RVR + RVR.T) / 2.0)
    if not ev[0] > 1e-10 * max(ev[-1], 0.0) or not np.isfinite(ev).all():
        # e.g. subgroups that coincide with clusters: a CR covariance from G clusters has
        # rank at most G - 1 here, and a Wald statistic from it would be meaningless
        nan = math.nan
        return {"method": method, "chi2": nan, "df_num": q, "p_value_chi2": nan, "delta": nan,
                "nu": nan, "statistic": nan, "df_denom": nan, "p_value": nan, "singular": True}
    W = float(rb @ np.linalg.solve(RVR, rb))
    out: dict[str, Any] = {"method": method, "chi2": W, "df_num": q,
                           "p_value_chi2": float(stats.chi2.sf(W, q)), "delta": 1.0, "nu": math.nan}
    if method == "HTZ":
        C = np.zeros((q, len(fit.coef)))
        C[:, t_idx] = R
        h = htz_test(design, C, np.asarray(fit.coef), np.asarray(fit.vcov))
        out.update(statistic=h["statistic"], df_denom=h["df_denom"], p_value=h["p_value"],
                   delta=h["delta"], nu=h["nu"])
    elif method == "chi-square":
        out.update(statistic=W / q, df_denom=math.inf, p_value=out["p_value_chi2"])
    else:
        # "naive-F": F(q, G - 1) (clubSandwich's Naive-F); "F": F(q, N - K)
        d = float(fit.n_clusters - 1) if method == "naive-F" else float(fit.nobs - fit.rank)
        out.update(statistic=W / q, df_denom=d, p_value=float(stats.f.sf(W / q, q, d)))
    return out


def heterogeneity(
    study: Any,
    outcome: str,
    *,
    by: str = "region",
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    aggregate: Literal["mean", "sum"] = "mean",
    moderator: Literal["auto", "categorical", "continuous"] = "auto",
    cut: int | None = None,
    covariates: Sequence[str] = (),
    adjustment: Literal["none", "ancova", "lin"] | None = None,
    strata: bool = True,
    cov_type: str | None = None,
    cluster: str | None = None,
    joint_test: Literal["HTZ", "naive-F", "F", "chi-square"] | None = None,
    level: float = 0.95,
    sites: pd.DataFrame | None = None,
    baseline: int = -1,
    min_per_arm: int = 30,
    mde_power: float = 0.8,
    mde_alpha: float = 0.05,
    window_rule: Literal["complete", "available", "absent_not_at_work"] = "complete",
) -> HeterogeneityResult:
    r"""Effects by subgroup (or along a continuous moderator) and the test of equality.

    Estimands: :math:`\tau_g = E[Y_i(1) - Y_i(0) \mid G_i = g]` for each subgroup, and
    :math:`H_0: \tau_1 = \dots = \tau_G`; for a continuous moderator :math:`m`, the
    effect at :math:`\bar m` and the slope :math:`\gamma` of the linear projection of
    the effect on :math:`m` (see the module docstring for the regressions).

    Parameters
    ----------
    study
        A :class:`ips_impact.Study`.
    outcome
        Numeric panel column.
    by
        A column of ``study.persons`` (``"region"``, ``"site"``, any baseline
        covariate; a column always wins over a derived moderator of the same name), or
        a derived moderator: ``"household_type"`` (single, couple, couple with
        children, single parent, other — from the baseline roster, when ``persons`` has
        no ``household_type`` column),
        ``"partner_at_work"`` (no partner / partner not at work / partner at work at
        event time ``baseline``), ``"unemployment_tercile"`` (terciles of the column
        ``local_unemployment`` of persons), ``"fidelity"`` (the IPS fidelity score of
        the person's site, from ``sites``; continuous).
    horizon, window, aggregate
        Outcome at event time ``k = horizon`` or its mean/sum over ``window=(a, b)``,
        under ``window_rule`` (default ``"complete"``: the person needs every period;
        ``"available"``: the periods observed; ``"absent_not_at_work"``: see
        :func:`~ips_impact.estimators.itt.itt`).
    moderator
        ``"auto"`` (text, categories, booleans and 0/1 → subgroups; other numbers →
        continuous), ``"categorical"`` or ``"continuous"``.
    cut
        Cut a numeric moderator into this many quantile groups (3 = terciles).
    covariates, adjustment, strata
        As in :func:`ips_impact.itt` (covariates: columns of ``persons``).
    cov_type, cluster
        Covariance type (default ``"HC2"``, or ``"CR2"`` when ``cluster`` is given).
    joint_test
        Reference distribution of the joint test (``None``: ``"HTZ"`` with CR2,
        ``"naive-F"`` with CR0/CR1, ``"F"`` with the HC types).

        - ``"HTZ"`` (CR2 only): Hotelling's T² approximation of Pustejovsky & Tipton
          (2018), :math:`F = \delta W/q` on :math:`F(q, \nu - q + 1)` with
          :math:`\nu` from the CR2 working model (:func:`htz_test`); as
          ``clubSandwich::Wald_test(test = "HTZ", vcov = "CR2")``. Holds its size with
          few clusters (households, sites), where the naive F over-rejects.
        - ``"naive-F"`` (CR types): :math:`W/q` on :math:`F(q, G - 1)` (clubSandwich's
          "Naive-F").
        - ``"F"`` (HC types): :math:`W/q` on :math:`F(q, N - K)` (``car::linearHypothesis``).
        - ``"chi-square"``: :math:`W` on :math:`\chi^2_q` (reported as :math:`W/q` with
          ``df_denom = inf``).
    level
        Confidence level of the intervals.
    sites
        Site table (``site``, ``fidelity`` 25–125, ``assessment_date``), needed for
        ``by="fidelity"``; with ``by="site"`` it adds each site's fidelity to the
        subgroup table. Defaults to ``study.sites`` when the Study carries one.
    baseline
        Event time of baseline characteristics of household members (default −1).
    min_per_arm
        A subgroup with fewer persons in an arm draws a SmallSampleWarning (30).
    mde_power, mde_alpha
        Power and two-sided size of the reported minimum detectable effects.

    Returns
    -------
    HeterogeneityResult
        ``joint`` holds ``method`` (the ``joint_test`` used), ``statistic``, ``chi2``
        (W), ``df_num``, ``df_denom``, ``p_value``, ``p_value_chi2``, ``delta`` and
        ``nu`` (HTZ; 1 and NaN otherwise); ``spec`` records ``joint_test``,
        ``moderator_source`` and ``moderator_column``.

    Raises
    ------
    EstimationError, DataContractError
        Unknown option or moderator (the allowed ones are listed), a ``joint_test``
        that does not go with ``cov_type``, fewer than two subgroups with both arms,
        bad sites table, collinear regressors.
    """
    # the one default of every estimator: the ATE (Lin) when probabilities differ by stratum
    adjustment, adjustment_reason = resolve_adjustment(adjustment, study.design, strata=strata)
    spec = _spec(
        outcome=outcome, by=by, horizon=horizon, window=window, aggregate=aggregate,
        moderator=moderator, cut=cut, covariates=covariates, adjustment=adjustment,
        strata=strata, cov_type=cov_type, cluster=cluster, joint_test=joint_test, level=level,
        baseline=baseline, window_rule=window_rule,
        min_per_arm=min_per_arm, mde_power=mde_power, mde_alpha=mde_alpha,
    )
    spec["adjustment_reason"] = adjustment_reason
    if sites is None:
        # a Study that carries the sites table (study.sites) needs no sites= argument
        sites = getattr(study, "sites", None)
    site_table = check_sites(sites) if sites is not None else None
    built = _build(study, spec, site_table)
    model: ModelMatrices = built["model"]
    arm = built["arm"]
    design, fit, msgs = fit_model_design(model, arm, spec["cov_type"])
    msgs = list(msgs)

    t_idx = [fit.names.index(nm) for nm in model.interact_names[: len(model.targets)]]
    b = np.asarray(fit.coef)[t_idx]
    V = np.asarray(fit.vcov)[np.ix_(t_idx, t_idx)]
    se = np.sqrt(np.diag(V))
    df = np.asarray(fit.df)[t_idx]
    crit = stats.t.ppf(0.5 + spec["level"] / 2.0, df)
    tstat = b / se
    pval = 2.0 * stats.t.sf(np.abs(tstat), df)
    mdes = _mde(se, df=df, alpha=spec["mde_alpha"], power=spec["mde_power"])
    if built["kind"] == "categorical" and model.clusters is not None:
        # A subgroup that lies within one cluster has no cluster-robust variance: the
        # sandwich is exactly 0 there, which would read as certainty. Report NaN instead.
        g_rows = built["groups"]
        n_cl = np.array([np.unique(model.clusters[g_rows == i]).size for i in range(len(b))])
        lone = n_cl < 2
        if lone.any():
            names = [str(built["labels"][i]) for i in np.flatnonzero(lone)]
            for arr in (se, tstat, pval, mdes, df):
                arr[lone] = np.nan
            crit = np.where(lone, np.nan, crit)
            msg = (f"subgroup(s) {', '.join(map(repr, names))} of {spec['by']!r} lie within a single "
                   f"cluster, so their cluster-robust standard errors are not defined (NaN): cluster at "
                   f"a finer level than the subgroups")
            warnings.warn(msg, SmallSampleWarning, stacklevel=2)
            msgs.append(msg)

    # joint test: equal subgroup effects, or a zero interaction
    if built["kind"] == "categorical":
        q = len(b) - 1
        R = np.hstack([-np.ones((q, 1)), np.eye(q)])
        test = "equal_effects"
    else:
        q = 1
        R = np.array([[0.0, 1.0]])
        test = "no_interaction"
    joint = {"test": test, **_joint_test(spec["joint_test"], design, fit, t_idx, R, b, V)}
    if joint.pop("singular", False):
        msg = (f"the covariance of the {q} contrast(s) is singular, so the joint test is not "
               f"available (NaN): with cov_type {spec['cov_type']!r} this happens when the "
               "subgroups are made of a few whole clusters (e.g. by='site' with "
               "cluster='site', or regions of one site each); cluster at a finer level or "
               "compare the subgroup effects one by one")
        warnings.warn(msg, SmallSampleWarning, stacklevel=2)
        msgs.append(msg)
    elif not math.isfinite(joint["p_value"]):
        msg = (f"the HTZ degrees of freedom of the joint test are not positive (nu = "
               f"{joint['nu']:.3g} for {q} restrictions): too few clusters for this test, so "
               "its p-value is missing; use fewer subgroups or joint_test='naive-F' with caution")
        warnings.warn(msg, SmallSampleWarning, stacklevel=2)
        msgs.append(msg)

    # per-subgroup counts and control means
    z = model.arm_rows(arm)
    yv = model.y
    rows = []
    if built["kind"] == "categorical":
        g = built["groups"]
        for i, lab in enumerate(built["labels"]):
            in_g = g == i
            c = in_g & (z == 0)
            rows.append((lab, int(in_g.sum()), int((in_g & (z == 1)).sum()), int(c.sum()),
                         float(yv[c].mean()) if c.any() else math.nan))
    else:
        c = z == 0
        for lab in ("at mean", "per unit"):
            rows.append((lab, len(yv), int((z == 1).sum()), int(c.sum()), float(yv[c].mean())))
    sub = pd.DataFrame({
        "subgroup": [r[0] for r in rows],
        "term": list(model.interact_names[: len(model.targets)]),
        "estimate": b, "std_error": se, "statistic": tstat, "p_value": pval,
        "conf_low": b - crit * se, "conf_high": b + crit * se, "df": df,
        "nobs": [r[1] for r in rows], "n_treated": [r[2] for r in rows],
        "n_control": [r[3] for r in rows], "control_mean": [r[4] for r in rows],
        "mde": mdes,
    })
    sub["small"] = (sub["n_treated"] < spec["min_per_arm"]) | (sub["n_control"] < spec["min_per_arm"])
    if built["kind"] == "continuous":
        sub["small"] = False
    if built["ranges"] is not None:
        sub["range"] = built["ranges"]
    if site_table is not None and spec["by"] == "site":
        fid = site_table.set_index("site")
        sub["fidelity"] = sub["subgroup"].map(fid["fidelity"]).to_numpy(dtype=float)
        sub["n_assessments"] = sub["subgroup"].map(fid["n_assessments"]).fillna(0).astype(int).to_numpy()
    small = sub.loc[sub["small"], "subgroup"].tolist()
    if small:
        msg = (f"subgroup(s) {', '.join(map(repr, small))} of {spec['by']!r} have fewer than "
               f"{spec['min_per_arm']} persons in an arm: their effects are imprecise (see the "
               "minimum detectable effect)")
        warnings.warn(msg, SmallSampleWarning, stacklevel=2)
        msgs.append(msg)

    spec_out = dict(spec)
    spec_out["moderator_source"] = built["source"]
    spec_out["moderator_column"] = built["column"]
    if built["range"] is not None:
        spec_out["moderator_range"] = built["range"]
    if model.dropped:
        spec_out["dropped_collinear"] = model.dropped
    names = list(sub["term"])
    return HeterogeneityResult(
        outcome=spec["outcome"], by=spec["by"], moderator=built["kind"],
        subgroups=sub, joint=joint, vcov=pd.DataFrame(V, index=names, columns=names),
        nobs=int(len(yv)), n_treated=int((z == 1).sum()), n_control=int((z == 0).sum()),
        horizon=horizon_label(spec["horizon"], spec["window"]), level=spec["level"],
        centre=built["centre"], spec=spec_out, warnings=tuple(msgs),
        ledger=list(model.ledger) if model.ledger else None,
    )


def randomization_problem(
    study: Any, result: HeterogeneityResult, *, sites: pd.DataFrame | None = None
) -> list[Any]:
    r"""The linear problems behind a :func:`heterogeneity` result, one statistic per tidy row.

    Returns two :class:`~ips_impact.inference.randomization.LinearProblem`:

    1. the reported effects (subgroup effects :math:`\hat\tau_g`, or the effect at the
       mean and the interaction :math:`\hat\gamma`) under any re-drawn assignment: the
       arm multiplies the subgroup indicators (or ``[1, m - m̄]``), the nuisance holds
       the subgroup intercepts, strata and covariates;
    2. the statistic of the joint-test row. With one restriction it is a coefficient:
       :math:`\hat\tau_2 - \hat\tau_1` (two subgroups, reparametrised as arm ×
       ``[1, 1(G = 2)]``) or :math:`\hat\gamma`; under the sharp null of no effect its
       randomization distribution gives an exact p-value. With more than two subgroups
       no single coefficient is the Wald statistic (a quadratic form), so the problem is
       degenerate on purpose (an all-zero multiplier) and the randomization p-value of
       the joint row comes out NaN: not available rather than wrong.

    Pass the same ``sites`` as for the fit when ``by="fidelity"``.
    """
    spec = {k: v for k, v in result.spec.items()
            if k not in ("moderator_range", "dropped_collinear", "moderator_source", "moderator_column")}
    if spec.get("estimator") != "heterogeneity":
        raise EstimationError("this result does not come from heterogeneity()",
                              fix="use the randomization_problem of the estimator that produced it")
    spec["covariates"] = tuple(spec["covariates"])
    if sites is None:
        sites = getattr(study, "sites", None)
    site_table = check_sites(sites) if sites is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        built = _build(study, spec, site_table)
    model: ModelMatrices = built["model"]
    main = model.problem()
    n_t = len(model.targets)
    if built["kind"] == "continuous":
        joint = LinearProblem(y=model.y, row_person=model.row_person, nuisance=model.nuisance,
                              interact=model.interact, coef=(1,))
    elif n_t == 2:
        v = model.interact.copy()
        v[:, 0] = v[:, 0] + v[:, 1]  # [1(G=1), 1(G=2)] -> [1, 1(G=2)]: same span
        joint = LinearProblem(y=model.y, row_person=model.row_person, nuisance=model.nuisance,
                              interact=v, coef=(1,))
    else:
        joint = LinearProblem(y=model.y, row_person=model.row_person, nuisance=model.nuisance,
                              interact=np.zeros((len(model.y), 1)), coef=(0,))
    return [main, joint]


def _joint_wald(result: HeterogeneityResult) -> Any:
    """``finalize`` of the randomization problem: with more than two subgroups the joint
    row is the Wald form with the observed covariance,
    :math:`W(z) = (R\\hat\\tau(z))'(R\\hat V R')^{+}(R\\hat\\tau(z))`, :math:`R` the
    contrasts with the first subgroup, evaluated on the subgroup-effect draws (the
    last column, left NaN by the degenerate joint problem)."""

    def finalize(observed: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vcov = getattr(result, "vcov", None)
        g = observed.size - 1
        if vcov is None or g <= 2 or not np.isnan(observed[-1]):
            return observed, draws
        v = np.asarray(vcov, dtype=float)[:g, :g]
        r = np.column_stack([-np.ones(g - 1), np.eye(g - 1)])
        m = np.linalg.pinv(r @ v @ r.T)
        d_obs = r @ observed[:g]
        observed[-1] = d_obs @ m @ d_obs
        d = draws[:, :g] @ r.T
        draws[:, -1] = np.einsum("bi,ij,bj->b", d, m, d)
        return observed, draws

    return finalize


def _ri_builder(study: Any, result: HeterogeneityResult) -> RandomizationProblem:
    return RandomizationProblem(linear=tuple(randomization_problem(study, result)),
                                finalize=_joint_wald(result))


register_randomization("heterogeneity", _ri_builder)
