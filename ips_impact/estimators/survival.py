r"""Time-to-event analysis of the trial: time to first job, job spells, competing exits.

Public functions (``study`` first, the event second, options keyword-only):

* :func:`time_to_event` — Kaplan–Meier by arm, medians, survival at tau, (stratified)
  log-rank, Cox hazard ratio with the proportional-hazards test, restricted mean
  survival time (RMST) per arm and its difference.
* :func:`spell_survival` — the same for the duration of the first spell in a state
  (e.g. a job); conditional on entering it, so not a randomized comparison.
* :func:`competing_risks` — cumulative incidence per arm and cause, Gray's test.
* :func:`discrete_time_hazard` — complementary log-log (or logit) model on
  person-period rows, clustered by person: the hazard ratio of grouped time.
* :func:`event_times` and :func:`randomization_statistics` — the per-person data and
  the log-rank / Cox / RMST statistics for many assignment vectors at once (for
  randomization inference).

Time scale and ties
-------------------
Time is the event time ``k`` (periods since the randomization period). The event
time of a person is the first ``k >= start`` at which the event column is true
(non-zero); a person without the event is censored at the last ``k`` where the
column is observed (capped at ``horizon``). Quarterly panels give grouped times with
many ties: Kaplan–Meier and the log-rank test treat them exactly (all events of
quarter k happen before the censorings of quarter k, the convention of R
``survival``); the Cox model handles them with Efron's approximation by default
(closer to the exact grouped-time likelihood than Breslow's); and
:func:`discrete_time_hazard` with ``link="cloglog"`` fits the grouped-time
proportional-hazards model, whose coefficient is the log hazard ratio of the
underlying continuous-time model without any tie approximation.

Numerics live in :mod:`ips_impact.estimators._survival` and match R ``survival``
3.5 (survfit, survdiff, coxph, cox.zph), ``survRM2`` and ``cmprsk`` to 1e-6 or
better (tests/test_survival_reference.py).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import pandas as pd
from scipy import stats

from ips_impact.errors import (
    DataContractError,
    EstimationError,
    EstimationWarning,
    SmallSampleWarning,
)
from ips_impact.estimators._data import check_option, collinear_covariates, covariate_matrix
from ips_impact.estimators._survival.competing import cif_at, cumulative_incidence, gray_test
from ips_impact.estimators._survival.cox import COX_TIES, cox_fit, cox_zph
from ips_impact.estimators._survival.discrete import hazard_glm
from ips_impact.estimators._survival.km import kaplan_meier, km_median, rmst, survival_at
from ips_impact.estimators._survival.logrank import logrank
from ips_impact.estimators._survival.randomization import survival_statistics
from ips_impact.inference.ri_protocol import RandomizationProblem, register_randomization
from ips_impact.results.base import make_row
from ips_impact.results.survival import SurvivalResult

__all__ = [
    "time_to_event",
    "spell_survival",
    "competing_risks",
    "discrete_time_hazard",
    "event_times",
    "randomization_statistics",
    "survival_statistics",
]

EventSpec = Union[str, Callable[[pd.DataFrame], Any]]

_LINKS = ("cloglog", "logit")
_ENTRY = ("new", "any")
_ARMS = ((1, "IPS"), (0, "control"))


# ----------------------------------------------------------------------- checks


def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < float(level) < 1:
        raise EstimationError(
            f"level must be a number strictly between 0 and 1; you passed {level!r}",
            fix="use e.g. level=0.95.",
        )
    return float(level)


def _check_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise EstimationError(
            f"{name} must be an integer event time k; you passed {value!r}",
            fix=f"pass {name} as an int (periods since the randomization period).",
        )
    return int(value)


def _check_tau(tau: Any) -> float | None:
    if tau is None:
        return None
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.integer, np.floating)) or not (
        np.isfinite(tau) and tau > 0
    ):
        raise EstimationError(
            f"tau must be a positive number of periods; you passed {tau!r}",
            fix="pass e.g. tau=20 (RMST up to 20 periods after randomization), or leave it None.",
        )
    return float(tau)


def _event_label(event: EventSpec) -> str:
    if isinstance(event, str):
        return event
    return getattr(event, "__name__", "event") if callable(event) else str(event)


def _tau_label(tau: float) -> int | float:
    """Tau as the tidy ``horizon``: an event time k (int) when it is one."""
    return int(tau) if float(tau).is_integer() else float(tau)


def _k_grid(study: Any, start: int, horizon: int | None, *, first: int | None = None) -> np.ndarray:
    if start < 0:
        raise EstimationError(
            f"start must be an event time k >= 0 (0 = the randomization period); you passed {start}",
            fix="use start=1 to count events from the first period after randomization.",
        )
    kmin, kmax = study.k_range
    last = kmax if horizon is None else horizon
    if horizon is not None and horizon > kmax:
        # follow-up ends at kmax anyway; say so rather than silently capping
        warnings.warn(
            f"horizon {horizon} is beyond the last observed event time k = {kmax}; follow-up ends at {kmax}",
            EstimationWarning, stacklevel=3,
        )
        last = kmax
    lo = start if first is None else first
    if last < start:
        raise EstimationError(
            f"horizon {horizon} is before start {start}: no period to follow",
            table="panel", column="k", fix="choose horizon >= start.",
        )
    return np.arange(lo, last + 1, dtype=np.int64)


def _event_matrix(study: Any, event: EventSpec, ks: np.ndarray, *, what: str = "event") -> np.ndarray:
    """Values of the event (column or callable on the panel) by person x k; NaN = not observed."""
    if isinstance(event, str):
        panel = study.panel
        if event not in panel.columns:
            raise DataContractError(
                f"the {what} column {event!r} is not in the panel",
                table="panel", column=event, examples=list(study.outcomes),
                fix="pass the name of a 0/1 panel column (e.g. 'employed'), or a callable on the panel.",
            )
        if not pd.api.types.is_numeric_dtype(panel[event]) and not pd.api.types.is_bool_dtype(panel[event]):
            raise DataContractError(
                f"the {what} column {event!r} is not numeric or boolean",
                table="panel", column=event,
                fix="pass a callable that turns the column into True/False, e.g. "
                    "lambda p: p['sep_code'].astype(str).str.startswith('1').",
            )
        vals = panel[event].to_numpy(dtype=np.float64, na_value=np.nan)
    elif callable(event):
        try:
            raw = event(study.panel)
        except Exception as exc:  # the user's function failed: say where, keep the cause
            raise EstimationError(
                f"the {what} callable raised {type(exc).__name__}: {exc}",
                table="panel", fix="make the callable return one True/False (or NaN) per panel row.",
            ) from exc
        try:
            vals = np.asarray(pd.Series(raw).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EstimationError(
                f"the {what} callable returned values that are not True/False or numbers",
                table="panel", fix="return a boolean Series aligned with the panel rows.",
            ) from exc
        if vals.shape != (len(study.panel),):
            raise EstimationError(
                f"the {what} callable returned {vals.size} values for {len(study.panel)} panel rows",
                table="panel", fix="return one value per panel row, in panel order.",
            )
    else:
        raise EstimationError(
            f"{what} must be a panel column name or a callable on the panel; you passed {type(event).__name__}",
            fix="pass e.g. 'employed' or lambda p: p['earnings'] > 0.",
        )
    persons = study.persons
    pidx = np.searchsorted(persons["person_id"].to_numpy(), study.panel["person_id"].to_numpy())
    k = study.panel["k"].to_numpy()
    out = np.full((len(persons), ks.size), np.nan)
    col = k - ks[0]
    ok = (col >= 0) & (col < ks.size)
    out[pidx[ok], col[ok]] = vals[ok]
    return out


def _first_event(m: np.ndarray, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, status, usable) from a person x k matrix of event values."""
    observed = ~np.isnan(m)
    hit = observed & (np.nan_to_num(m) != 0)
    has_event = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    has_obs = observed.any(axis=1)
    last = m.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    time = np.where(has_event, ks[first], ks[last]).astype(float)
    return time, has_event.astype(float), has_obs


def _ledger_row(reason: str, mask: np.ndarray, arm: np.ndarray) -> dict[str, Any]:
    return {
        "reason": reason,
        "n_rows": int(mask.sum()),
        "n_treated": int((mask & (arm == 1)).sum()),
        "n_control": int((mask & (arm == 0)).sum()),
    }


def _covariate_matrix(
    study: Any, covariates: Sequence[str], keep: np.ndarray, arm: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Baseline covariates by the rules of every estimator (``estimators/_options.py``).

    Categorical columns become dummies of the levels among the ``keep`` persons, a
    missing value among them is refused (impute it and add a missing indicator), and a
    collinear covariate is refused, naming it — as in :func:`~ips_impact.itt`. Rows
    outside ``keep`` are NaN. Returns the (n_persons, p) matrix and its column names.
    """
    if isinstance(covariates, str):
        covariates = (covariates,)
    persons = study.persons
    for c in covariates:
        if c in ("household_id", "site", "region") and c not in getattr(study, "covariates", ()):
            raise EstimationError(f"{c!r} is not a baseline covariate", table="persons", column=c,
                                  fix="use cluster= for clustering on a key.")
    rows = np.flatnonzero(keep)
    X, names = covariate_matrix(persons, covariates, rows=rows)
    collinear_covariates(np.column_stack([np.ones(rows.size), arm[rows]]), X, names,
                         what="the intercept and the arm")
    full = np.full((len(persons), X.shape[1]), np.nan)
    full[rows] = X
    return full, names


def _complete_cases(
    study: Any, keep: np.ndarray, arm: np.ndarray, covariates: Sequence[str], cluster: str | None,
    ledger: list[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray | None]:
    """Covariates by the one rule (missing refused) and persons with a missing cluster
    set aside, with a ledger row.

    Returns the updated ``keep`` mask, the covariate matrix, its names and the cluster
    codes.
    """
    x_cov, names = _covariate_matrix(study, covariates, keep, arm)
    keep = keep.copy()
    cl = _cluster_codes(study, cluster)
    if cl is not None:
        miss = (cl < 0) & keep
        if miss.any():
            ledger.append(_ledger_row(f"missing cluster ({cluster})", miss, arm))
            keep &= ~miss
    return keep, x_cov, names, cl


def _cluster_codes(study: Any, cluster: str | None) -> np.ndarray | None:
    if cluster is None:
        return None
    if not isinstance(cluster, str) or cluster not in study.persons.columns:
        raise EstimationError(
            f"cluster must be a column of the persons table; you passed {cluster!r}",
            table="persons", column=str(cluster),
            fix="use e.g. cluster='household_id' or cluster='site', or None for person-level robust SE.",
        )
    vals = study.persons[cluster]
    codes = pd.factorize(vals, use_na_sentinel=True)[0]
    return codes.astype(np.int64)


# ----------------------------------------------------------------------- analysis


def _warn(msgs: list[str], msg: str, category: type[Warning]) -> None:
    msgs.append(msg)
    warnings.warn(msg, category, stacklevel=4)


def _fill_ci(surv: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # survfit gives no interval where S = 1 (no event yet); the interval is the point itself
    one = surv == 1
    return np.where(one, 1.0, lo), np.where(one, 1.0, hi)


def _hazard_ratio_row(cox_row: dict[str, Any], suffix: str, horizon: Any,
                     common: dict[str, Any]) -> dict[str, Any]:
    r"""The hazard ratio beside the log hazard ratio: :math:`HR = e^{\hat\beta}`, its
    delta-method standard error :math:`e^{\hat\beta}\,\widehat{se}(\hat\beta)`, and the
    interval and test of the log scale transformed (:math:`e^{lo}, e^{hi}`; the same
    statistic and p-value)."""
    b, se = cox_row["estimate"], cox_row["std_error"]
    hr = math.exp(b) if np.isfinite(b) else math.nan
    return make_row(
        term="hazard_ratio", estimand="hazard_ratio" + suffix, horizon=horizon, estimate=hr,
        std_error=hr * se if np.isfinite(hr) else math.nan, statistic=cox_row["statistic"],
        p_value=cox_row["p_value"],
        conf_low=math.exp(cox_row["conf_low"]) if np.isfinite(cox_row["conf_low"]) else math.nan,
        conf_high=math.exp(cox_row["conf_high"]) if np.isfinite(cox_row["conf_high"]) else math.nan,
        **common,
    )


def _analyse(
    *,
    outcome: str,
    time: np.ndarray,
    status: np.ndarray,
    arm: np.ndarray,
    strata: np.ndarray | None,
    x_cov: np.ndarray,
    cov_names: Sequence[str],
    cluster: np.ndarray | None,
    robust: bool,
    tau: float | None,
    ties: str,
    level: float,
    horizon: int | None,
    min_at_risk: int,
    estimand_suffix: str = "",
) -> dict[str, Any]:
    """KM, medians, survival at tau, log-rank, Cox + PH test and RMST on prepared arrays."""
    msgs: list[str] = []
    z = stats.norm.ppf(0.5 + level / 2)
    n1, n0 = int((arm == 1).sum()), int((arm == 0).sum())
    if n1 == 0 or n0 == 0:
        raise EstimationError(
            f"one arm is empty in the analysis sample ({n1} IPS, {n0} control)",
            fix="check the event column and start/horizon: every person may have been set aside.",
        )
    if x_cov.size:
        const = [c for j, c in enumerate(cov_names) if np.ptp(x_cov[:, j]) == 0]
        if const:
            raise EstimationError(
                "covariate(s) constant in the analysis sample: the Cox model cannot estimate them",
                column=const, fix="drop them from covariates.",
            )
    grp = arm.astype(np.int64)  # group code 1 = IPS, 0 = control
    kms = kaplan_meier(time, status, grp, 2, level=level)
    last = {a: kms[a].max_time for a in (0, 1)}
    if tau is None:
        tau = float(min(last.values()))
    for a, lab in _ARMS:
        if status[arm == a].sum() == 0:
            _warn(msgs, f"no event in the {lab} arm: the Kaplan–Meier curve is reported, the hazard "
                        f"ratio and the median are not estimable", EstimationWarning)
        if tau > last[a]:
            _warn(msgs, f"tau = {tau:g} is beyond the follow-up of the {lab} arm (last time {last[a]:g}); "
                        f"its survival curve is carried forward from there", EstimationWarning)
        kma = kms[a]
        j = np.searchsorted(kma.time, tau, side="left")
        at_tau = float(kma.at_risk[j]) if j < kma.time.size else 0.0
        if at_tau < min_at_risk:
            _warn(msgs, f"only {int(at_tau)} {'person' if int(at_tau) == 1 else 'persons'} of the {lab} arm {'is' if int(at_tau) == 1 else 'are'} still at risk at tau = {tau:g} "
                        f"(fewer than {min_at_risk}): estimates near tau are imprecise", SmallSampleWarning)

    km_rows = []
    med_rows = []
    rm_rows = []
    surv_tau = {}
    rm = {}
    med = {}
    for a, _ in _ARMS:
        k = kms[a]
        lo, hi = _fill_ci(k.survival, k.conf_low, k.conf_high)
        km_rows.append(pd.DataFrame({
            "arm": np.full(k.time.size, a, dtype=np.int64), "time": k.time, "survival": k.survival,
            "conf_low": lo, "conf_high": hi, "at_risk": k.at_risk.astype(np.int64),
            "events": k.events.astype(np.int64), "censored": k.censored.astype(np.int64),
        }))
        med[a] = km_median(k)
        med_rows.append({"arm": a, "median": med[a][0], "conf_low": med[a][1], "conf_high": med[a][2]})
        rm[a] = rmst(k, tau)
        rm_rows.append({"arm": a, "tau": tau, "rmst": rm[a].estimate, "std_error": rm[a].std_error})
        surv_tau[a] = survival_at(k, tau)
    km_df = pd.concat(km_rows, ignore_index=True)

    common = dict(outcome=outcome, nobs=n1 + n0, n_treated=n1, n_control=n0, level=level)
    rows = []
    # log-rank
    lr = logrank(time, status, grp, 2, strata)
    rows.append(make_row(
        # estimate: observed minus expected events in the IPS arm (O - E, a count);
        # statistic: the (stratified) log-rank chi-square
        term="logrank", estimand="logrank_observed_minus_expected_ips" + estimand_suffix, horizon=horizon,
        estimate=float(lr.observed[1] - lr.expected[1]), std_error=float(np.sqrt(lr.variance[1, 1])),
        statistic=lr.statistic, p_value=lr.p_value, conf_low=math.nan, conf_high=math.nan,
        df=float(lr.df) if lr.df else math.nan, **common,
    ))
    # Cox
    cox_df = pd.DataFrame(columns=["term", "estimate", "std_error", "statistic", "p_value",
                                   "conf_low", "conf_high", "hazard_ratio"])
    zph_df = pd.DataFrame(columns=["term", "chisq", "df", "p_value"])
    both_have_events = status[arm == 1].sum() > 0 and status[arm == 0].sum() > 0
    if both_have_events:
        x = np.column_stack([arm.astype(float), x_cov]) if x_cov.size else arm.astype(float)[:, None]
        names = ["arm", *cov_names]
        fit = cox_fit(time, status, x, strata=strata, ties=ties, cluster=cluster, robust=robust)
        if not fit.converged:
            _warn(msgs, "the Cox model did not converge; its hazard ratio is unreliable", EstimationWarning)
        se = fit.std_error
        zstat = fit.coef / se
        cox_df = pd.DataFrame({
            "term": names, "estimate": fit.coef, "std_error": se, "statistic": zstat,
            "p_value": 2 * stats.norm.sf(np.abs(zstat)),
            "conf_low": fit.coef - z * se, "conf_high": fit.coef + z * se,
            "hazard_ratio": np.exp(fit.coef),
        })
        rows.append(make_row(term="cox", estimand="log_hazard_ratio" + estimand_suffix, horizon=horizon,
                             estimate=float(fit.coef[0]), std_error=float(se[0]), **common))
        rows.append(_hazard_ratio_row(rows[-1], estimand_suffix, horizon, common))
        try:
            zt = cox_zph(time, status, x, fit.coef, strata=strata, ties=ties)
            zph_df = pd.DataFrame({"term": [*names, "GLOBAL"], "chisq": zt.chisq,
                                   "df": zt.df.astype(np.int64), "p_value": zt.p_value})
        except np.linalg.LinAlgError:
            _warn(msgs, "the proportional-hazards test could not be computed (singular information)",
                  EstimationWarning)
    else:
        rows.append(make_row(term="cox", estimand="log_hazard_ratio" + estimand_suffix, horizon=horizon,
                             estimate=math.nan, std_error=math.nan, **common))
        rows.append(_hazard_ratio_row(rows[-1], estimand_suffix, horizon, common))
    # RMST
    d = rm[1].estimate - rm[0].estimate
    se = math.sqrt(rm[1].std_error ** 2 + rm[0].std_error ** 2)
    rows.append(make_row(term="rmst_difference", estimand="rmst_difference" + estimand_suffix,
                         horizon=_tau_label(tau), estimate=d, std_error=se, control_mean=rm[0].estimate, **common))
    # survival at tau
    d = surv_tau[1][0] - surv_tau[0][0]
    se = math.sqrt(surv_tau[1][1] ** 2 + surv_tau[0][1] ** 2)
    rows.append(make_row(term="survival_difference", estimand="survival_difference" + estimand_suffix,
                         horizon=_tau_label(tau), estimate=d, std_error=se, control_mean=surv_tau[0][0], **common))
    # median
    if not (np.isfinite(med[1][0]) and np.isfinite(med[0][0])):
        _warn(msgs, "the median is not reached in at least one arm (survival stays above 1/2): "
                    "median_difference is NaN; use the RMST difference", EstimationWarning)
    rows.append(make_row(term="median_difference", estimand="median_difference" + estimand_suffix,
                         horizon=None, estimate=med[1][0] - med[0][0], std_error=math.nan,
                         control_mean=med[0][0], **common))
    return {
        "statistics": pd.DataFrame(rows),
        "km": km_df,
        "rmst": pd.DataFrame(rm_rows),
        "medians": pd.DataFrame(med_rows),
        "cox": cox_df,
        "ph_test": zph_df,
        "tau": tau,
        "warnings": msgs,
    }


# ----------------------------------------------------------------------- public


def event_times(
    study: Any,
    event: EventSpec,
    *,
    start: int = 1,
    horizon: int | None = None,
) -> pd.DataFrame:
    """Per-person event time, status, arm and stratum code (rows aligned with ``study.persons``).

    ``time`` is the first k >= ``start`` with the event, or the last k with the event
    column observed (capped at ``horizon``); ``event`` is 1/0; ``usable`` is False for
    persons never observed at or after ``start`` (set aside by the estimators). The
    frame holds no key: it is aligned with ``study.persons`` by position.
    """
    start = _check_int("start", start)
    horizon = _check_int("horizon", horizon, allow_none=True)
    ks = _k_grid(study, start, horizon)
    m = _event_matrix(study, event, ks)
    time, status, usable = _first_event(m, ks)
    return pd.DataFrame({
        "time": time, "event": status, "usable": usable,
        "arm": np.asarray(study.design.arm, dtype=np.int64),
        "stratum": np.asarray(study.design.stratum, dtype=np.int64),
    })


def time_to_event(
    study: Any,
    event: EventSpec,
    *,
    start: int = 1,
    horizon: int | None = None,
    tau: float | None = None,
    strata: bool = True,
    ties: str = "efron",
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    robust: bool = True,
    level: float = 0.95,
    min_at_risk: int = 10,
) -> SurvivalResult:
    r"""Time from randomization to the first event (e.g. the first job), by arm.

    With T the first event time :math:`k \ge` ``start`` and Z the assigned arm:

    * :math:`S_z(t) = P(T > t \mid Z = z)` by Kaplan–Meier (log-log intervals, numbers at risk);
    * :math:`\mathrm{RMST}_z(\tau) = \int_0^\tau S_z(t)\,dt = E[\min(T,\tau) \mid Z=z]`,
      the expected number of periods (up to tau) without the event, and
      :math:`\mathrm{RMST}_1(\tau) - \mathrm{RMST}_0(\tau)` with the survRM2 variance of the
      estimator :math:`\sum_{t_j\le\tau}[\int_{t_j}^\tau \hat S]^2 d_j/(n_j(n_j-d_j))`;
    * :math:`S_1(\tau) - S_0(\tau)` (Greenwood) and median(IPS) - median(control);
    * the log-rank test (stratified by randomization stratum when ``strata``) — the
      randomization-based test of no effect;
    * the Cox log hazard ratio of IPS (stratified baseline hazards when ``strata``),
      with the scaled-Schoenfeld (``cox.zph``) test of proportional hazards.

    Parameters
    ----------
    study
        A :class:`~ips_impact.Study`.
    event
        Panel column (true = non-zero) or a callable ``f(panel) -> bool Series``. A person
        already in the state at randomization has the event at ``start`` if still in it;
        to time *new* entries only, pass a callable that marks them (or use
        :func:`spell_survival` with ``entry="new"`` for what follows the entry).
    start
        First event time k at which the event counts (k = 0 is the randomization period).
    horizon
        Last event time followed; censoring at min(last observed k, horizon).
    tau
        Restriction time of RMST and of the survival difference; default: the shorter of
        the two arms' follow-up (the largest tau both arms support).
    strata
        Stratify the log-rank test and the Cox baseline hazard by randomization stratum.
    ties
        ``"efron"`` (default) or ``"breslow"`` handling of tied event times in Cox.
    covariates
        Baseline (numeric) covariates added to the Cox model.
    cluster
        Persons column for clustered (grouped dfbeta) Cox standard errors, e.g.
        ``"household_id"``; with ``robust=True`` and no cluster, each person is a cluster.
    robust
        Robust (Lin–Wei) Cox variance, valid when hazards are not proportional
        (default); ``False`` gives the model-based variance.
    level
        Confidence level.
    min_at_risk
        Warn when fewer persons than this are at risk at tau in an arm.

    Returns
    -------
    SurvivalResult
        ``.tidy()`` rows ``logrank``, ``cox``, ``rmst_difference``,
        ``survival_difference``, ``median_difference``; tables ``km``, ``rmst``,
        ``medians``, ``cox``, ``ph_test``; ``.plot()``.

    Raises
    ------
    DataContractError
        The event column is not in the panel, or a covariate is missing / not numeric.
    EstimationError
        An option is invalid, a covariate is constant, or no person can be analysed in
        one arm.

    Notes
    -----
    Quarterly data have many tied event times. Kaplan–Meier, the log-rank test and
    RMST are exact for grouped times (events of quarter k precede the censorings of
    quarter k). The Cox partial likelihood needs a tie rule: Efron's (default) is close
    to the exact grouped-time likelihood, Breslow's biases the log hazard ratio towards
    0 when many events share a quarter. For a hazard ratio that respects the grouping
    exactly use :func:`discrete_time_hazard` (complementary log-log).

    Examples
    --------
    >>> res = time_to_event(study, "employed", horizon=20, tau=20)  # doctest: +SKIP
    >>> res.tidy()[["term", "estimate", "conf_low", "conf_high", "p_value"]]  # doctest: +SKIP
    >>> res.plot(min_cell=10)  # doctest: +SKIP
    """
    label = _event_label(event)
    ties = check_option(ties, COX_TIES, "ties")
    level = _check_level(level)
    start = _check_int("start", start)
    horizon = _check_int("horizon", horizon, allow_none=True)
    tau = _check_tau(tau)
    strata = _check_bool("strata", strata)
    robust = _check_bool("robust", robust)
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = tuple(covariates)
    ks = _k_grid(study, start, horizon)
    m = _event_matrix(study, event, ks)
    time, status, usable = _first_event(m, ks)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    ledger = []
    if (~usable).any():
        ledger.append(_ledger_row(f"event column not observed at any k from {start} to {ks[-1]}",
                                  ~usable, arm))
    keep, x_cov, cov_names, cl = _complete_cases(study, usable, arm, covariates, cluster, ledger)
    warn_msgs = []
    for row in ledger:
        msg = f"{row['n_rows']} persons set aside: {row['reason']}"
        warn_msgs.append(msg)
        warnings.warn(msg, EstimationWarning, stacklevel=2)
    st = np.asarray(study.design.stratum, dtype=np.int64)[keep] if strata else None
    res = _analyse(
        outcome=label, time=time[keep], status=status[keep], arm=arm[keep], strata=st,
        x_cov=x_cov[keep] if x_cov.size else x_cov, cov_names=cov_names,
        cluster=cl[keep] if cl is not None else None, robust=robust, tau=tau, ties=ties,
        level=level, horizon=horizon, min_at_risk=min_at_risk,
    )
    spec = {
        "estimator": "time_to_event", "event": label, "start": start, "horizon": horizon,
        "tau": res["tau"], "tau_given": tau, "strata": strata, "ties": ties,
        "covariates": covariates, "cluster": cluster, "robust": robust, "level": level,
        "time_scale": "event time k (periods since the randomization period)",
    }
    return SurvivalResult(
        outcome=label, kind="time_to_event", statistics=res["statistics"], tau=res["tau"],
        level=level, km=res["km"], rmst=res["rmst"], medians=res["medians"], cox=res["cox"],
        ph_test=res["ph_test"], spec=spec, warnings=tuple(warn_msgs + res["warnings"]),
        ledger=pd.DataFrame(ledger) if ledger else None,
    )


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise EstimationError(f"{name} must be True or False; you passed {value!r}",
                              fix=f"pass {name}=True or {name}=False.")
    return bool(value)


def spell_survival(
    study: Any,
    state: EventSpec = "employed",
    *,
    horizon: int,
    start: int = 1,
    entry: str = "new",
    tau: float | None = None,
    strata: bool = True,
    ties: str = "efron",
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    robust: bool = True,
    level: float = 0.95,
    min_at_risk: int = 10,
) -> SurvivalResult:
    r"""Duration of the first spell in ``state`` (e.g. the first job) entered after ``start``.

    The spell starts at the first k in [start, horizon] where the state holds (with
    ``entry="new"``, only a spell that begins then: the state did not hold at k - 1;
    ``entry="any"`` also takes a spell already running). Its duration D is the number
    of periods until the first observed period out of the state (event), or is censored
    at the last consecutive observed period in the state (follow-up capped at horizon).
    The estimand is the survival of spells :math:`P(D > d \mid Z = z, \text{entered})`.

    **Not a randomized comparison.** Who enters a spell depends on the arm (IPS helps
    people into work), so the spells compared are from different populations. The
    result says so in ``notes``. Unconditional alternatives with a causal reading:
    ``itt_by_period(study, "employed", ...)`` (employment at each k), ``itt`` with a
    window and ``aggregate="sum"`` (periods in the state), and
    ``time_to_event(study, state)`` (RMST of the time to the first spell).

    Parameters are those of :func:`time_to_event`, plus ``entry`` ("new" or "any").
    """
    label = _event_label(state)
    ties = check_option(ties, COX_TIES, "ties")
    entry = check_option(entry, _ENTRY, "entry")
    level = _check_level(level)
    start = _check_int("start", start)
    horizon = _check_int("horizon", horizon)
    tau = _check_tau(tau)
    strata = _check_bool("strata", strata)
    robust = _check_bool("robust", robust)
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = tuple(covariates)
    ks = _k_grid(study, start, horizon, first=start - 1)
    m = _event_matrix(study, state, ks, what="state")
    observed = ~np.isnan(m)
    in_state = observed & (np.nan_to_num(m) != 0)
    out_state = observed & ~in_state
    cols = np.arange(ks.size)
    prev_out = np.zeros_like(in_state)
    prev_out[:, 1:] = out_state[:, :-1]
    can_enter = in_state & (cols[None, :] >= 1)
    if entry == "new":
        can_enter &= prev_out
    entered = can_enter.any(axis=1)
    e = np.argmax(can_enter, axis=1)
    after = cols[None, :] > e[:, None]
    brk = after & ~in_state
    has_brk = brk.any(axis=1)
    j = np.argmax(brk, axis=1)
    ended = has_brk & out_state[np.arange(len(m)), j]
    # event: out of the state at column j -> duration j - e; else censored at the last
    # consecutive period in the state (j - 1, or the last column)
    dur = np.where(ended, j - e, np.where(has_brk, j - 1 - e, ks.size - 1 - e)).astype(float)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    ledger = []
    if (~entered).any():
        ledger.append(_ledger_row(f"no spell in {label!r} entered between k = {start} and {ks[-1]}",
                                  ~entered, arm))
    keep, x_cov, cov_names, cl = _complete_cases(study, entered, arm, covariates, cluster, ledger)
    n1, n0 = int((arm == 1).sum()), int((arm == 0).sum())
    e1, e0 = int((entered & (arm == 1)).sum()), int((entered & (arm == 0)).sum())
    note = (
        f"Spell survival conditions on entering a spell in {label!r} (IPS {e1} of {n1}, control "
        f"{e0} of {n0} by k = {ks[-1]}): who enters depends on the arm, so this is not a randomized "
        f"comparison. For causal effects use itt_by_period on the state, the number of periods in the "
        f"state (itt with window and aggregate='sum'), or the RMST of the time to the first spell "
        f"(time_to_event)."
    )
    st = np.asarray(study.design.stratum, dtype=np.int64)[keep] if strata else None
    res = _analyse(
        outcome=label, time=dur[keep], status=ended[keep].astype(float), arm=arm[keep], strata=st,
        x_cov=x_cov[keep] if x_cov.size else x_cov, cov_names=cov_names,
        cluster=cl[keep] if cl is not None else None, robust=robust, tau=tau, ties=ties,
        level=level, horizon=horizon, min_at_risk=min_at_risk, estimand_suffix="_given_entry",
    )
    spec = {
        "estimator": "spell_survival", "state": label, "start": start, "horizon": horizon,
        "entry": entry, "tau": res["tau"], "tau_given": tau, "strata": strata, "ties": ties,
        "covariates": covariates, "cluster": cluster, "robust": robust, "level": level,
        "time_scale": "periods since entering the spell",
        "randomized_comparison": False,
    }
    return SurvivalResult(
        outcome=label, kind="spell", statistics=res["statistics"], tau=res["tau"], level=level,
        km=res["km"], rmst=res["rmst"], medians=res["medians"], cox=res["cox"],
        ph_test=res["ph_test"], spec=spec, warnings=tuple(res["warnings"]), notes=(note,),
        ledger=pd.DataFrame(ledger) if ledger else None,
    )


def competing_risks(
    study: Any,
    events: Mapping[str, EventSpec] | Sequence[str],
    *,
    horizon: int | None = None,
    start: int = 1,
    tau: float | None = None,
    strata: bool = True,
    level: float = 0.95,
) -> SurvivalResult:
    r"""Cumulative incidence of competing exits by arm (Aalen–Johansen) and Gray's test.

    For causes c (e.g. leaving DI for work, leaving DI for other reasons) and the first
    exit time T with cause C,

    .. math:: F_{zc}(t) = P(T \le t,\ C = c \mid Z = z)
              = \sum_{t_j \le t} \hat S_z(t_{j-1})\, d_{zcj} / n_{zj},

    with Gray's (1988) variance; ``cif_difference`` rows give
    :math:`F_{1c}(\tau) - F_{0c}(\tau)` and ``gray`` rows Gray's chi-square test of equal
    cumulative incidence for each cause (stratified by randomization stratum when
    ``strata``), as ``cmprsk::cuminc`` computes them.

    Parameters
    ----------
    events
        Mapping cause name -> panel column or callable (or a list of column names).
        The exit is the first k >= start where any cause is true; when two causes are
        true in the same period, the first in ``events`` order is taken.
    horizon, start, tau, strata, level
        As in :func:`time_to_event`; ``tau`` defaults to the shorter follow-up of the arms.
    """
    if isinstance(events, str) or not isinstance(events, (Mapping, Sequence)):
        raise EstimationError(
            "events must be a mapping {cause name: column or callable} or a list of columns",
            fix="pass e.g. {'work': 'employed', 'other': lambda p: p['on_di'] == 0}.",
        )
    if not isinstance(events, Mapping):
        names = [str(e) for e in events]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise EstimationError(
                f"competing causes must differ; {', '.join(map(repr, dup))} is given more than once",
                column=dup, fix="list each cause once, e.g. events=['employed', 'di_exit']",
            )
        events = {str(e): e for e in events}
    if len(events) < 1:
        raise EstimationError("events is empty", fix="give at least one cause.")
    level = _check_level(level)
    start = _check_int("start", start)
    horizon = _check_int("horizon", horizon, allow_none=True)
    tau = _check_tau(tau)
    tau_given = tau
    strata = _check_bool("strata", strata)
    ks = _k_grid(study, start, horizon)
    mats = [_event_matrix(study, ev, ks, what=f"cause {name!r}") for name, ev in events.items()]
    observed = np.logical_and.reduce([~np.isnan(m) for m in mats])
    hits = np.stack([observed & (np.nan_to_num(m) != 0) for m in mats])  # cause x n x k
    any_hit = hits.any(axis=0)
    has_event = any_hit.any(axis=1)
    first = np.argmax(any_hit, axis=1)
    rows_i = np.arange(any_hit.shape[0])
    cause_at_first = np.argmax(hits[:, rows_i, first], axis=0) + 1
    usable = observed.any(axis=1)
    last = ks.size - 1 - np.argmax(observed[:, ::-1], axis=1)
    time = np.where(has_event, ks[first], ks[last]).astype(float)
    status = np.where(has_event, cause_at_first, 0)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    ledger = []
    msgs: list[str] = []
    if (~usable).any():
        ledger.append(_ledger_row(f"causes not jointly observed at any k from {start} to {ks[-1]}",
                                  ~usable, arm))
        _warn(msgs, f"{int((~usable).sum())} persons set aside: {ledger[-1]['reason']}", EstimationWarning)
    time, status, arm_k = time[usable], status[usable], arm[usable]
    st = np.asarray(study.design.stratum, dtype=np.int64)[usable] if strata else None
    n1, n0 = int((arm_k == 1).sum()), int((arm_k == 0).sum())
    if n1 == 0 or n0 == 0:
        raise EstimationError(f"one arm is empty in the analysis sample ({n1} IPS, {n0} control)")
    last_t = {a: float(time[arm_k == a].max()) for a in (0, 1)}
    if tau is None:
        tau = min(last_t.values())
    for a, lab in _ARMS:
        if tau > last_t[a]:
            _warn(msgs, f"tau = {tau:g} is beyond the follow-up of the {lab} arm (last time {last_t[a]:g})",
                  EstimationWarning)
    z = stats.norm.ppf(0.5 + level / 2)
    cif_rows = []
    rows = []
    gray_rows = []
    common = dict(nobs=n1 + n0, n_treated=n1, n_control=n0, level=level)
    for c, name in enumerate(events, start=1):
        at_tau = {}
        for a, lab in _ARMS:
            sel = arm_k == a
            if not (status[sel] == c).any():
                _warn(msgs, f"no exit for cause {name!r} in the {lab} arm", EstimationWarning)
            ci = cumulative_incidence(time[sel], status[sel], c)
            se = np.sqrt(np.clip(ci.variance, 0, None))
            with np.errstate(divide="ignore", invalid="ignore"):
                # log(-log) interval for a probability, kept inside (0, 1)
                th = np.log(-np.log(ci.estimate))
                se_th = se / (ci.estimate * np.abs(np.log(ci.estimate)))
                lo = np.exp(-np.exp(th + z * se_th))
                hi = np.exp(-np.exp(th - z * se_th))
            cif_rows.append(pd.DataFrame({
                "arm": np.full(ci.time.size, a, dtype=np.int64), "cause": name, "time": ci.time,
                "estimate": ci.estimate, "std_error": se, "conf_low": lo, "conf_high": hi,
            }))
            at_tau[a] = cif_at(ci, tau)
        g = gray_test(time, status, arm_k, 2, c, strata=st)
        if not np.isfinite(g.statistic):
            _warn(msgs, f"Gray's test for cause {name!r} cannot be computed (no variance: too few exits)",
                  EstimationWarning)
        gray_rows.append({"cause": name, "statistic": g.statistic, "df": g.df, "p_value": g.p_value})
        rows.append(make_row(outcome=name, term="gray", estimand="gray_test", horizon=horizon,
                             estimate=math.nan, std_error=math.nan, statistic=g.statistic,
                             p_value=g.p_value, conf_low=math.nan, conf_high=math.nan, df=float(g.df),
                             **common))
        d = at_tau[1][0] - at_tau[0][0]
        se = math.sqrt(at_tau[1][1] + at_tau[0][1])
        rows.append(make_row(outcome=name, term="cif_difference", estimand="cif_difference",
                             horizon=_tau_label(tau), estimate=d, std_error=se, control_mean=at_tau[0][0], **common))
    spec = {
        "estimator": "competing_risks", "events": tuple(events), "start": start, "horizon": horizon,
        "tau": tau, "tau_given": tau_given, "strata": strata, "level": level,
        "time_scale": "event time k (periods since the randomization period)",
        "ties_between_causes": "first cause in the order given",
    }
    return SurvivalResult(
        outcome=" / ".join(events), kind="competing_risks", statistics=pd.DataFrame(rows),
        tau=tau, level=level, cif=pd.concat(cif_rows, ignore_index=True),
        gray=pd.DataFrame(gray_rows), spec=spec, warnings=tuple(msgs),
        ledger=pd.DataFrame(ledger) if ledger else None,
    )


def discrete_time_hazard(
    study: Any,
    event: EventSpec,
    *,
    start: int = 1,
    horizon: int | None = None,
    link: str = "cloglog",
    covariates: Sequence[str] = (),
    strata: bool = True,
    level: float = 0.95,
) -> Any:
    r"""Grouped-time hazard model on person-period rows, clustered by person.

    One row per person and period at risk (k from ``start`` to the event or censoring
    period, where the event column is observed), y = 1 in the event period:

    .. math:: g\{P(T = k \mid T \ge k, Z, X)\} = \alpha_k + \beta Z + \gamma^\top X
              (+\ \text{stratum effects})

    With ``link="cloglog"`` this is the grouped-time proportional-hazards model
    (Prentice & Gloeckler 1978): :math:`\beta` is the log hazard ratio of IPS in the
    underlying continuous-time model, with no approximation for ties. ``"logit"`` gives
    the discrete-time log odds ratio. Standard errors are clustered by person
    (CR1: expected-information bread, G/(G-1) (n-1)/(n-p); = R ``sandwich::vcovCL(type = "HC1")``).

    Periods in which nobody has the event carry no information on beta (their
    intercept would be minus infinity) and are left out; the ledger says how many rows.

    Returns
    -------
    EffectResult
        ``estimand`` ``"log_hazard_ratio"`` (cloglog) or ``"log_odds_ratio"`` (logit), term ``"arm"``.
    """
    from ips_impact.results.effect import EffectResult

    label = _event_label(event)
    link = check_option(link, _LINKS, "link")
    level = _check_level(level)
    start = _check_int("start", start)
    horizon = _check_int("horizon", horizon, allow_none=True)
    strata = _check_bool("strata", strata)
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = tuple(covariates)
    ks = _k_grid(study, start, horizon)
    m = _event_matrix(study, event, ks)
    time, status, usable = _first_event(m, ks)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    keep = usable.copy()
    x_cov, cov_names = _covariate_matrix(study, covariates, keep, arm)
    ledger = []
    if (~usable).any():
        ledger.append(_ledger_row(f"event column not observed at any k from {start} to {ks[-1]}",
                                  ~usable, arm))
    observed = ~np.isnan(m)
    at_risk = observed & (ks[None, :] <= time[:, None]) & keep[:, None]
    pi, kj = np.nonzero(at_risk)
    y = ((ks[kj] == time[pi]) & (status[pi] == 1)).astype(float)
    ev_by_k = np.bincount(kj, weights=y, minlength=ks.size)
    informative = ev_by_k[kj] > 0
    if (~informative).any():
        ledger.append({"reason": "person-periods in periods with no event (no information on the effect)",
                       "n_rows": int((~informative).sum()),
                       "n_treated": int((~informative & (arm[pi] == 1)).sum()),
                       "n_control": int((~informative & (arm[pi] == 0)).sum())})
    pi, kj, y = pi[informative], kj[informative], y[informative]
    if y.sum() == 0:
        raise EstimationError(f"no event {label!r} in the follow-up: the hazard cannot be modelled",
                              table="panel", column=label if isinstance(event, str) else None,
                              fix="check the event definition, start and horizon.")
    kcodes, kinv = np.unique(kj, return_inverse=True)
    cols = [arm[pi].astype(float)]
    names = ["arm"]
    dummies = np.zeros((pi.size, kcodes.size))
    dummies[np.arange(pi.size), kinv.ravel()] = 1.0
    cols.extend(dummies.T)
    names.extend(f"k={int(ks[c])}" for c in kcodes)
    if strata:
        st = np.asarray(study.design.stratum, dtype=np.int64)[pi]
        labels = study.design.stratum_labels
        for s in np.unique(st)[1:]:
            cols.append((st == s).astype(float))
            names.append(f"stratum={labels[s]}")
    for j, c in enumerate(cov_names):
        cols.append(x_cov[pi, j])
        names.append(c)
    x = np.column_stack(cols)
    msgs: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = hazard_glm(y, x, pi, link)
    for w in caught:
        _warn(msgs, f"hazard model: {w.message}", EstimationWarning)
    params = pd.Series(fit.params, index=names)
    vcov = pd.DataFrame(fit.vcov, index=names, columns=names)
    kept_persons = np.zeros(arm.size, dtype=bool)
    kept_persons[pi] = True
    spec = {
        "estimator": "discrete_time_hazard", "event": label, "start": start, "horizon": horizon,
        "link": link, "covariates": covariates, "strata": strata, "level": level,
        "cov_type": "CR1 (clustered by person)",
    }
    return EffectResult.from_fit(
        outcome=label, params=params, vcov=vcov, nobs=int(pi.size),
        n_treated=int((kept_persons & (arm == 1)).sum()), n_control=int((kept_persons & (arm == 0)).sum()),
        df=None, term="arm", level=level,
        estimand="log_hazard_ratio" if link == "cloglog" else "log_odds_ratio",
        spec=spec, warnings=tuple(msgs), ledger=pd.DataFrame(ledger) if ledger else None,
        diagnostics={"n_person_periods": int(pi.size), "n_events": int(y.sum()),
                     "n_clusters": fit.n_clusters, "link": link, "converged": fit.converged},
    )


def randomization_statistics(
    study: Any,
    result: SurvivalResult,
    assignments: np.ndarray,
    *,
    event: EventSpec | None = None,
) -> pd.DataFrame:
    """Log-rank chi-square, Cox log hazard ratio and RMST difference under other assignments.

    For randomization inference: ``assignments`` is (B, n_persons) 0/1 (e.g.
    ``study.design.permutations(B, seed)``); the statistics are computed as in
    ``result`` (same event, start, horizon, tau, strata, ties) for every row at once,
    without refitting. The Cox statistic is the arm-only model (covariates are not
    re-fitted per draw). For an event given as a callable, pass it again as ``event``.

    Returns
    -------
    DataFrame
        Columns ``logrank``, ``cox``, ``rmst_difference``; one row per assignment.
    """
    if result.kind != "time_to_event":
        raise EstimationError(
            f"randomization statistics are defined for time_to_event results, not {result.kind!r}",
            fix="use a time_to_event result (spells condition on post-randomization entry).",
        )
    spec = result.spec
    ev = event if event is not None else spec["event"]
    et = event_times(study, ev, start=spec["start"], horizon=spec["horizon"])
    a = np.atleast_2d(np.asarray(assignments))
    if a.shape[1] != len(et):
        raise EstimationError(
            f"assignments have {a.shape[1]} columns but the study has {len(et)} persons",
            fix="pass a (B, n_persons) array aligned with study.persons.",
        )
    use = et["usable"].to_numpy()
    out = survival_statistics(
        et["time"].to_numpy()[use], et["event"].to_numpy()[use], a[:, use],
        strata=et["stratum"].to_numpy()[use] if spec["strata"] else None,
        tau=spec["tau"], ties=spec.get("ties", "efron"),
    )
    return pd.DataFrame(out)


def randomization_problem(study: Any, result: SurvivalResult) -> RandomizationProblem:
    """Randomization problem of a :func:`time_to_event` result: log-rank chi-square,
    Cox log hazard ratio (arm-only model) and RMST difference under each assignment,
    from :func:`randomization_statistics`; other tidy rows (survival or median
    difference, hazard ratio) get NaN (not available). The observed statistics are
    recomputed the same way, so the comparison is like with like even when the
    reported Cox model had covariates (hence no check against the estimates)."""
    terms = result.tidy()["term"].tolist()

    def statistic(draws: np.ndarray) -> np.ndarray:
        stats_ = randomization_statistics(study, result, draws)
        return np.column_stack([
            stats_[t].to_numpy(dtype=float) if t in stats_.columns else np.full(draws.shape[0], np.nan)
            for t in terms
        ])

    return RandomizationProblem(statistic=statistic, reproduces=False, interval="none")


register_randomization("time_to_event", randomization_problem)
