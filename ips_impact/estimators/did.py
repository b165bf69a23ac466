r"""Difference in differences with person and period fixed effects (linearmodels PanelOLS).

:func:`did` fits, on person-period rows with k in the ``pre`` and ``post`` windows,

.. math:: Y_{ik} = \alpha_i + \lambda_t + \tau\,(Z_i \times \mathrm{Post}_k) + e_{ik},

with person effects :math:`\alpha_i`, period effects :math:`\lambda_t` (event time k,
or the calendar period) and :math:`\mathrm{Post}_k = 1\{k \in \text{post}\}`. With a
balanced panel,

.. math:: \hat\tau = (\bar Y^{post}_1 - \bar Y^{pre}_1) - (\bar Y^{post}_0 - \bar Y^{pre}_0),

which estimates the average post-window ITT effect
:math:`E[\bar Y^{post}_i(1) - \bar Y^{post}_i(0)]` because randomization makes the
pre-window difference zero in expectation (no parallel-trends assumption is needed
in a trial; the pre-period only removes persistent person-level noise). It is more
precise than the post-window difference in means when outcomes are persistent, and
less precise than ANCOVA on the pre-window mean (:func:`~ips_impact.estimators.itt.itt`
with the pre-period outcome as a covariate) when they are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError
from ips_impact.estimators._data import arm_counts, check_option, cluster_labels, person_mask
from ips_impact.inference.ri_engine import LinearProblem
from ips_impact.inference.ri_protocol import register_randomization
from ips_impact.results.base import critical_value
from ips_impact.results.effect import EffectResult

__all__ = ["did", "DID_COV_TYPES"]

#: Covariance types of :func:`did` (a subset of the registry that PanelOLS reproduces).
DID_COV_TYPES: tuple[str, ...] = ("CR1", "CR0")


def _window(value: Any, name: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in value)
        if any(isinstance(v, bool) or float(v) != int(v) for v in value):
            raise ValueError
    except (TypeError, ValueError):
        raise EstimationError(
            f"{name} must be a pair of integer event times (a, b); you passed {value!r}",
            fix=f"pass e.g. {name}=(-4, -1)" if name == "pre" else f"pass e.g. {name}=(1, 8)",
        ) from None
    if a > b:
        raise EstimationError(f"{name}=({a}, {b}) is empty: a must not exceed b")
    return a, b


@dataclass(frozen=True)
class _Sample:
    """Person-period rows of a DiD: persons ``pi``, window positions ``ti``, outcome ``y``."""

    pre: tuple[int, int]
    post: tuple[int, int]
    ks: np.ndarray
    is_post: np.ndarray
    Y: np.ndarray  # (n_persons, len(ks)), NaN where unobserved
    mask: np.ndarray  # persons in subset
    pi: np.ndarray
    ti: np.ndarray
    y: np.ndarray
    t_index: np.ndarray  # period of each row (event time or calendar ordinal)


def _sample(study: Any, outcome: str, pre: Any, post: Any, time: str, subset: Any) -> _Sample:
    """The rows of :func:`did` (shared with its randomization problem): every observed
    person-period of the subset in the two windows (available periods; a person
    observed in one window only still identifies the period effects)."""
    a, b = _window(pre, "pre")
    c, d = _window(post, "post")
    if not b < c:
        raise EstimationError(
            f"post=({c}, {d}) must come after pre=({a}, {b}) (disjoint, post later)"
            if d < a else f"pre=({a}, {b}) and post=({c}, {d}) overlap",
            fix="give disjoint windows with the post window later, e.g. pre=(-4, -1), post=(1, 8)",
        )
    kmin, kmax = study.k_range
    if min(a, c) < kmin or max(b, d) > kmax:
        raise EstimationError(
            f"the windows go outside the observed follow-up (k from {kmin} to {kmax})",
            table="panel", column="k", fix=f"choose event times between {kmin} and {kmax}",
        )
    study.require_outcome(outcome)
    persons = study.persons
    ks = np.r_[np.arange(a, b + 1), np.arange(c, d + 1)]
    is_post = np.r_[np.zeros(b - a + 1, bool), np.ones(d - c + 1, bool)]
    Y = study.outcome_matrix(outcome, ks)
    mask = person_mask(persons, subset)
    pi, ti = np.nonzero(np.isfinite(Y) & mask[:, None])
    if time == "k":
        t_index = ks[ti]
    else:
        from ips_impact.io.periods import period_ordinals

        t_index = period_ordinals(persons["randomization_period"])[pi] + ks[ti]
    return _Sample(pre=(a, b), post=(c, d), ks=ks, is_post=is_post, Y=Y, mask=mask, pi=pi, ti=ti,
                   y=Y[pi, ti], t_index=np.asarray(t_index))


def randomization_problem(study: Any, result: EffectResult) -> LinearProblem:
    """Randomization problem of a :func:`did` result: the rows of :func:`_sample`, the
    arm multiplying the post indicator, person effects absorbed, period effects
    (event or calendar time) as nuisance. The engine's estimate under the observed
    assignment is checked against the result."""
    spec = result.spec
    s = _sample(study, spec["outcome"], spec["pre"], spec["post"], spec.get("time", "k"), spec.get("subset"))
    _, t_code = np.unique(s.t_index, return_inverse=True)
    periods = np.zeros((s.pi.size, int(t_code.max()) + 1))
    periods[np.arange(s.pi.size), t_code] = 1.0
    return LinearProblem(y=s.y, row_person=s.pi, nuisance=periods,
                         interact=s.is_post[s.ti].astype(float), absorb=s.pi)


register_randomization("did", randomization_problem)


def did(
    study: Any,
    outcome: str,
    *,
    pre: tuple[int, int],
    post: tuple[int, int],
    time: str = "k",
    cov_type: str = "CR1",
    cluster: str | None = None,
    level: float = 0.95,
    subset: Any = None,
) -> EffectResult:
    r"""Difference-in-differences effect of the offer of IPS (person and period fixed effects).

    Estimand: the average effect of the offer over the post window ``post=(c, d)``,

    .. math:: \tau_{DID} = E[\bar Y^{post}_i(1) - \bar Y^{post}_i(0)],
              \qquad \bar Y^{post}_i(z) = \frac{1}{d-c+1}\sum_{k=c}^{d} Y_{ik}(z),

    identified by randomization (the pre-window contrast
    :math:`E[\bar Y^{pre}_i \mid Z_i = 1] - E[\bar Y^{pre}_i \mid Z_i = 0]` is zero by
    design, so no parallel-trends assumption is needed). It is estimated by
    :math:`\hat\tau = (\bar Y^{post}_1 - \bar Y^{pre}_1) - (\bar Y^{post}_0 -
    \bar Y^{pre}_0)` with a balanced panel, in general the coefficient of
    :math:`Z_i \times \mathrm{Post}_k` with person and period fixed effects (module
    docstring). The tidy row is labelled ``estimand == "did"`` to tell this estimator
    from the post-window ITT of :func:`~ips_impact.estimators.itt.itt`, which targets
    the same τ.

    Parameters
    ----------
    study
        A :class:`~ips_impact.study.Study`.
    outcome
        A numeric panel column.
    pre, post
        Event-time windows ``(a, b)`` (inclusive); they must not overlap.
    time
        ``"k"`` (default): period effects by event time; ``"period"``: by calendar
        period (absorbs seasonality and business cycle under rolling enrolment).
    cov_type
        Clustered by person (or ``cluster``). ``"CR1"`` multiplies the sandwich by
        :math:`G/(G-1) \cdot (N-1)/(N-K)` with K = 1 regressor: the absorbed
        effects are not counted, as in Stata's ``xtreg, fe vce(cluster)`` where they
        are nested in the clusters (linearmodels ``debiased=True,
        group_debias=True, auto_df=False, count_effects=False``). ``"CR0"``
        applies no correction and equals the CR0 sandwich of the dummy-variable
        regression. Inference uses t(G − 1).
    cluster
        A column of ``persons`` whose groups nest persons (e.g. ``"household_id"``);
        default: the person.
    level
        Confidence level.
    subset
        As in :func:`~ips_impact.estimators.itt.itt`.

    Returns
    -------
    EffectResult
        ``term == "arm"`` (the coefficient of arm × post), ``estimand == "did"``, ``horizon`` = ``"c:d"`` of the post window, ``nobs``
        person-periods, ``n_treated`` / ``n_control`` persons; ``diagnostics`` holds ``n_persons``,
        ``n_clusters``, ``r2_within``.

    Raises
    ------
    EstimationError
        Bad windows (outside the follow-up, overlapping, post before pre), unknown ``cov_type`` or
        ``time``, an outcome without variation, no contrast.
    """
    critical_value(level)
    cov_type = check_option(cov_type, DID_COV_TYPES, "cov_type")
    time = check_option(time, ("k", "period"), "time")
    sample = _sample(study, outcome, pre, post, time, subset)
    a, b = sample.pre
    c, d = sample.post
    persons = study.persons
    pi, ti, y, Y, mask, is_post, t_index = (sample.pi, sample.ti, sample.y, sample.Y, sample.mask,
                                            sample.is_post, sample.t_index)
    if y.size == 0 or np.ptp(y) == 0:
        raise EstimationError(
            f"outcome {outcome!r} does not vary (or is missing) in the pre and post windows",
            table="panel", column=outcome, fix="choose another outcome or windows",
        )
    arm_all = np.asarray(study.design.arm, dtype=np.float64)  # the arm has one source: the design
    treat_post = arm_all[pi] * is_post[ti]
    if np.ptp(treat_post) == 0:
        raise EstimationError("no treated person is observed in the post window; there is no contrast")
    if cluster is None:
        groups = pi
    else:
        groups = cluster_labels(persons, cluster)[pi]

    from linearmodels import PanelOLS

    index = pd.MultiIndex.from_arrays([pi, t_index], names=["person", "time"])
    dep = pd.Series(y, index=index, name=outcome)
    exog = pd.DataFrame({"arm": treat_post}, index=index)
    model = PanelOLS(dep, exog, entity_effects=True, time_effects=True)
    clusters = pd.DataFrame({"cluster": groups}, index=index)
    robust = cov_type == "CR1"
    res = model.fit(cov_type="clustered", clusters=clusters, debiased=robust, group_debias=robust,
                    auto_df=False, count_effects=False)
    G = int(np.unique(groups).size)
    if G < 2:
        raise EstimationError(f"clustered standard errors need at least 2 clusters; there is {G}")

    # ---- ledger: person-periods missing in the windows
    miss = mask[:, None] & ~np.isfinite(Y)
    ledger = []
    if miss.any():
        n1, n0 = arm_counts(np.broadcast_to(arm_all[:, None], Y.shape)[miss])
        ledger.append({"reason": f"person-periods without {outcome} in the pre or post window (excluded)",
                       "n_rows": int(miss.sum()), "n_treated": n1, "n_control": n0})
    in_sample = np.unique(pi)
    n_persons = in_sample.size
    # persons, not person-period rows, in n_treated / n_control (rows are in nobs)
    n1p = int((arm_all[in_sample] == 1).sum())
    ctrl_post = (arm_all[pi] == 0) & is_post[ti]
    return EffectResult(
        outcome=outcome,
        estimate=float(res.params["arm"]),
        std_error=float(res.std_errors["arm"]),
        df=float(G - 1),
        nobs=int(y.size),
        n_treated=n1p,
        n_control=int(n_persons - n1p),
        control_mean=float(y[ctrl_post].mean()) if ctrl_post.any() else float("nan"),
        horizon=f"{c}:{d}",
        level=level,
        estimand="did",
        spec={"outcome": outcome, "pre": (a, b), "post": (c, d), "time": time, "cov_type": cov_type,
              "cluster": cluster, "level": level,
              "subset": subset if (subset is None or isinstance(subset, str)) else np.asarray(subset, bool),
              "estimator": "did"},
        diagnostics={"n_persons": int(n_persons), "n_clusters": G, "r2_within": float(res.rsquared_within),
                     "method": "PanelOLS entity + time effects, arm x post"},
        ledger=pd.DataFrame(ledger, columns=["reason", "n_rows", "n_treated", "n_control"]),
    )

