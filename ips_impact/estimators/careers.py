r"""Employment careers over five years: states, spells, occupation, job starts, transitions.

Public functions (``study`` first, options keyword-only):

* :func:`careers` — each person's quarterly positions turned into spells (start,
  stop, state, reason of exit) in event time; a tidy frame with no person key.
* :func:`state_occupation` — Aalen–Johansen probability of being in each state by
  arm and quarter, and the difference between arms at ``tau``.
* :func:`recurrent_spells` — mean cumulative number of job starts per person by arm
  (Nelson–Aalen MCF, Lawless–Nadeau robust SE), its difference at ``tau``, and the
  Andersen–Gill / LWYY marginal rate ratio with person-clustered robust variance.
* :func:`transitions` — the hazard of one transition (e.g. work → DI only) by arm:
  Nelson–Aalen cumulative hazard and Cox log hazard ratio on the spells at risk.
* :func:`randomization_statistics` — the statistics of a result of the three
  estimators above for many assignment vectors at once (randomization inference),
  never refitting per draw.

States (the default rule)
-------------------------
From the panel columns ``employed`` (works on the last day of the quarter),
``on_di`` (on disability insurance in some month of the quarter) and ``sep_code``
(LMD socio-economic position, first digit 2 = job-seeker):

===============  ==============================================================
state            rule (checked in this order)
===============  ==============================================================
``work``         employed = 1 and on_di = 0
``work_on_di``   employed = 1 and on_di = 1 (authorised work while on DI)
``di_only``      employed = 0 and on_di = 1
``unemployed``   employed = 0, on_di = 0 and sep_code starts with 2 (job-seeker);
                 without ``sep_code``: unemployment_benefit > 0
``other``        employed = 0, on_di = 0 and not a job-seeker (inactive, unknown)
===============  ==============================================================

DI takes precedence over the SEP code for persons out of work (LMD codes a DI
recipient as inactive; the insurer's flag says DI). A quarter with ``employed`` or
``on_di`` missing has no state. Other states: ``states={name: column or callable}``,
checked in order, the first true one wins.

Follow-up and time scale
------------------------
Time is the event time k (quarters since the randomization quarter). A career
starts at k = 0 (the state at randomization) and is followed without gaps: it is
censored at the last quarter before the first quarter without a state (the ledger
counts persons set aside because k = 0 has no state, and quarters after a gap). The
process is observed at integer k; a spell occupying quarters a..b ends at stop = b + 1
(the quarter the next state is first seen), or is censored at stop = b, so that the
counting-process interval (start, stop] of R ``Surv(start, stop, state)`` holds the
time at risk in the state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd
from scipy import stats

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators._options import check_level, check_option, records_frequency
from ips_impact.estimators._survival.cox import COX_TIES, cox_fit
from ips_impact.estimators._survival.multistate import aalen_johansen, occupation_by_assignment
from ips_impact.estimators._survival.randomization import _cox_binary
from ips_impact.estimators._survival.recurrent import (
    counting_process_rows,
    mcf_by_assignment,
    mean_cumulative,
)
from ips_impact.estimators.survival import _complete_cases, _event_matrix, _ledger_row
from ips_impact.inference.ri_protocol import RandomizationProblem, register_randomization
from ips_impact.results.base import make_row
from ips_impact.results.careers import RecurrentResult, StateOccupationResult, TransitionResult

__all__ = [
    "DEFAULT_STATES",
    "careers",
    "career_states",
    "CareerStates",
    "state_occupation",
    "recurrent_spells",
    "transitions",
    "randomization_statistics",
    "job_starts",
    "randomization_problem",
]

#: Default states of :func:`careers`, in the order of the rule.
DEFAULT_STATES: tuple[str, ...] = ("work", "work_on_di", "di_only", "unemployed", "other")

StateSpec = Union[str, Callable[[pd.DataFrame], Any]]  # noqa: UP007 (a runtime alias)
_ARMS = ((1, "IPS"), (0, "control"))


# ----------------------------------------------------------------------- states


@dataclass(frozen=True)
class CareerStates:
    """State codes of every person (rows aligned with ``study.persons``) at k = 0..K-1.

    ``code`` is int8 (n, K), ``-1`` where the person is not followed (set aside, or
    after censoring); ``follow`` is the last k followed (``-1`` when set aside).
    """

    states: tuple[str, ...]
    code: np.ndarray
    follow: np.ndarray
    arm: np.ndarray
    stratum: np.ndarray
    last_observed: np.ndarray
    ledger: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]
    rule: str

    @property
    def usable(self) -> np.ndarray:
        """Persons with a state at k = 0 (the others are set aside)."""
        return self.follow >= 0


def _job_seeker(panel: pd.DataFrame) -> pd.Series:
    """First digit of the SEP code is 2 (NaN where the code is missing)."""
    sep = panel["sep_code"]
    if pd.api.types.is_numeric_dtype(sep):
        v = sep.to_numpy(dtype=np.float64, na_value=np.nan)
        # codes have up to 3 digits: the leading digit is 2 for 2, 20-29 and 200-299
        seek = ((v >= 200) & (v < 300)) | ((v >= 20) & (v < 30)) | (v == 2)
        return pd.Series(np.where(np.isnan(v), np.nan, seek.astype(float)), index=panel.index)
    s = sep.astype("string").str.strip()
    return pd.Series(np.where(s.isna(), np.nan, (s.str[0] == "2").astype(float)), index=panel.index)


def _matrix(study: Any, spec: StateSpec, ks: np.ndarray, *, what: str = "state") -> np.ndarray:
    """Person x k matrix of a panel column or callable (NaN = no row), as survival's helper.

    Numeric columns and vectorised values go through the Study's cached row positions
    (the person-key search of the generic helper costs seconds on millions of rows).
    """
    panel = study.panel
    pidx, kk = getattr(study, "_pidx", None), getattr(study, "_k", None)
    if pidx is None or kk is None:
        return _event_matrix(study, spec, ks, what=what)
    if (
        isinstance(spec, str)
        and spec in panel.columns
        and (pd.api.types.is_numeric_dtype(panel[spec]) or pd.api.types.is_bool_dtype(panel[spec]))
    ):
        vals = panel[spec].to_numpy(dtype=np.float64, na_value=np.nan)
    elif spec is _job_seeker:
        vals = _job_seeker(panel).to_numpy(dtype=np.float64)
    else:
        return _event_matrix(study, spec, ks, what=what)
    out = np.full((len(study.persons), ks.size), np.nan)
    col = np.asarray(kk) - ks[0]
    ok = (col >= 0) & (col < ks.size)
    out[np.asarray(pidx)[ok], col[ok]] = vals[ok]
    return out


def _follow_up(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last k of the gap-free run from k = 0 (-1 if k = 0 is missing), last observed k."""
    obs = code >= 0
    K = code.shape[1]
    miss = ~obs
    first_miss = np.where(miss.any(axis=1), np.argmax(miss, axis=1), K)
    follow = first_miss - 1
    last_obs = np.where(obs.any(axis=1), K - 1 - np.argmax(obs[:, ::-1], axis=1), -1)
    return follow.astype(np.int64), last_obs.astype(np.int64)


def career_states(
    study: Any, states: Mapping[str, StateSpec] | None = None, *, horizon: int | None = None
) -> CareerStates:
    """State of each person at k = 0..horizon (default: the last observed k).

    See the module docstring for the default rule; ``states`` maps state names to a
    panel column (true = non-zero) or a callable on the panel, checked in order.
    """
    kmax = study.k_range[1]
    if kmax < 1:
        raise EstimationError(
            f"the panel ends at k = {kmax}: no quarter after randomization to follow",
            table="panel",
            column="k",
            fix="careers need quarters k >= 1.",
        )
    last = kmax if horizon is None else min(int(horizon), kmax)
    ks = np.arange(0, last + 1, dtype=np.int64)
    msgs: list[str] = []
    panel = study.panel
    if states is None:
        names = DEFAULT_STATES
        for col in ("employed", "on_di"):
            if col not in panel.columns:
                raise DataContractError(
                    f"the default career states need the panel column {col!r}",
                    table="panel",
                    column=col,
                    examples=list(study.outcomes),
                    fix="add it (on_di from the insurer's benefit records), or pass "
                    "states={name: column or "
                    "callable} to define the states yourself.",
                )
        emp = _matrix(study, "employed", ks)
        di = _matrix(study, "on_di", ks)
        if "sep_code" in panel.columns:
            seek = _matrix(study, _job_seeker, ks, what="job-seeker (sep_code)")
            rule_seek = "sep_code starts with 2"
        else:
            seek = np.full(emp.shape, np.nan)
            rule_seek = "no sep_code"
        if "unemployment_benefit" in panel.columns:
            ub = _matrix(study, "unemployment_benefit", ks)
            fill = np.isnan(seek) & ~np.isnan(ub)
            seek = np.where(fill, (np.nan_to_num(ub) > 0).astype(float), seek)
            rule_seek += "; where sep_code is missing, unemployment_benefit > 0"
        e, d = np.nan_to_num(emp) != 0, np.nan_to_num(di) != 0
        known = ~np.isnan(emp) & ~np.isnan(di)
        no_seek = known & ~e & ~d & np.isnan(seek)
        if no_seek.any():
            msg = (
                f"{int(no_seek.sum())} person-quarters out of work and off DI have neither "
                f"sep_code nor "
                f"unemployment_benefit: counted as 'other' (not 'unemployed')"
            )
            msgs.append(msg)
            warnings.warn(msg, EstimationWarning, stacklevel=3)
        js = np.nan_to_num(seek) != 0
        code = np.select([e & ~d, e & d, ~e & d, ~e & ~d & js], [0, 1, 2, 3], default=4).astype(
            np.int8
        )
        code[~known] = -1
        rule = (
            "work: employed & !on_di; work_on_di: employed & on_di; di_only: !employed & on_di; "
            f"unemployed: !employed & !on_di & job-seeker ({rule_seek}); other: the rest"
        )
    else:
        if not isinstance(states, Mapping) or not states:
            raise EstimationError(
                "states must be a non-empty mapping {state name: column or callable}",
                fix="pass e.g. {'work': 'employed', 'not_working': lambda p: p['employed'] == 0}.",
            )
        names = tuple(str(s) for s in states)
        mats = [_matrix(study, spec, ks, what=f"state {name!r}") for name, spec in states.items()]
        code = np.full(mats[0].shape, -1, dtype=np.int8)
        undecided = np.ones(code.shape, dtype=bool)
        unknown = np.zeros(code.shape, dtype=bool)
        for j, m in enumerate(mats):
            # a missing condition leaves the state unknown unless an earlier one was true
            unknown |= undecided & np.isnan(m)
            hit = undecided & ~unknown & (np.nan_to_num(m) != 0)
            code[hit] = j
            undecided &= ~hit
        observed = _matrix(study, "k", ks)  # NaN where the person has no panel row
        none = undecided & ~unknown & ~np.isnan(observed)
        if none.any():
            raise EstimationError(
                f"{int(none.sum())} person-quarters are in none of the states {list(names)}",
                table="panel",
                fix="add a last catch-all state, e.g. "
                "states={..., 'other': lambda p: p['k'] >= 0}.",
            )
        rule = "first true of: " + ", ".join(names)
    if len(names) > 127:
        raise EstimationError("at most 127 states", fix="merge states.")
    arm = np.asarray(study.design.arm, dtype=np.int64)
    follow, last_obs = _follow_up(code)
    ledger: list[dict[str, Any]] = []
    unusable = follow < 0
    if unusable.any():
        ledger.append(
            _ledger_row(
                "no career state at k = 0 (employed / on_di / states missing): set aside",
                unusable,
                arm,
            )
        )
    gap = (last_obs > follow) & ~unusable
    if gap.any():
        row = _ledger_row(
            "gap in the panel after k = 0: follow-up censored before the gap", gap, arm
        )
        row["n_quarters_after_gap"] = int((code[gap] >= 0).sum() - (follow[gap] + 1).sum())
        ledger.append(row)
    for row in ledger:
        msg = f"{row['n_rows']} persons: {row['reason']}"
        msgs.append(msg)
        warnings.warn(msg, EstimationWarning, stacklevel=3)
    cols = np.arange(code.shape[1])
    code = np.where(cols[None, :] <= follow[:, None], code, -1).astype(np.int8)
    return CareerStates(
        states=tuple(names),
        code=code,
        follow=follow,
        arm=arm,
        stratum=np.asarray(study.design.stratum, dtype=np.int64),
        last_observed=last_obs,
        ledger=tuple(ledger),
        warnings=tuple(msgs),
        rule=rule,
    )


def _spells(cs: CareerStates) -> dict[str, np.ndarray]:
    """Split each career into runs of one state (vectorised over the code matrix)."""
    code = cs.code
    followed = code >= 0
    begin = np.zeros(code.shape, dtype=bool)
    begin[:, 0] = followed[:, 0]
    begin[:, 1:] = followed[:, 1:] & (code[:, 1:] != code[:, :-1])
    pi, start = np.nonzero(begin)
    nxt_same = np.concatenate([pi[1:] == pi[:-1], [False]])
    nxt_start = np.concatenate([start[1:], [0]])
    stop = np.where(nxt_same, nxt_start, cs.follow[pi])
    to = np.where(nxt_same, code[pi, np.where(nxt_same, nxt_start, 0)], -1)
    first = np.concatenate([[True], pi[1:] != pi[:-1]])
    idx = np.arange(pi.size)
    spell_no = idx - np.maximum.accumulate(np.where(first, idx, 0)) + 1
    reason = np.where(nxt_same, 0, np.where(cs.last_observed[pi] > cs.follow[pi], 2, 1))
    return {
        "person": pi,
        "spell": spell_no,
        "state": code[pi, start],
        "start": start,
        "stop": stop,
        "event": nxt_same,
        "to": to,
        "reason": reason,
    }


def careers(study: Any, *, states: Mapping[str, StateSpec] | None = None) -> pd.DataFrame:
    """Each person's career as spells in event time (a tidy frame, no person key).

    Parameters
    ----------
    study
        A :class:`~ips_impact.Study`.
    states
        ``None`` for the default states (module docstring), or a mapping
        ``{state name: panel column or callable}`` checked in order.

    Returns
    -------
    DataFrame
        One row per spell, sorted by person then start: ``person`` (row position in
        ``study.persons``, not a key), ``arm`` (1 = IPS), ``stratum``, ``spell``
        (1, 2, …), ``state``, ``start`` (first quarter k in the state), ``stop`` (the
        quarter the next state is first observed, or the last quarter followed when
        censored), ``quarters`` (quarters observed in the spell), ``event`` (True when
        the spell ended in a transition), ``to_state`` (the next state, missing when
        censored), ``reason`` ("transition", "end_of_follow_up" or "gap").
        ``(start, stop]`` is the time at risk of R ``Surv(start, stop, to_state)``;
        the first spell starts at k = 0 (its earlier duration is not counted).
    """
    cs = career_states(study, states)
    sp = _spells(cs)
    cats = pd.CategoricalDtype(list(cs.states), ordered=False)
    labels = np.asarray(cs.states, dtype=object)
    to = np.where(sp["to"] >= 0, labels[np.maximum(sp["to"], 0)], None)
    slab = np.asarray(study.design.stratum_labels, dtype=object)
    return pd.DataFrame(
        {
            "person": sp["person"].astype(np.int64),
            "arm": cs.arm[sp["person"]].astype(np.int8),
            "stratum": slab[cs.stratum[sp["person"]]],
            "spell": sp["spell"].astype(np.int64),
            "state": pd.Categorical(labels[sp["state"]], dtype=cats),
            "start": sp["start"].astype(np.int64),
            "stop": sp["stop"].astype(np.int64),
            "quarters": (sp["stop"] - sp["start"] + np.where(sp["event"], 0, 1)).astype(np.int64),
            "event": sp["event"].astype(bool),
            "to_state": pd.Categorical(to, dtype=cats),
            "reason": np.asarray(["transition", "end_of_follow_up", "gap"], dtype=object)[
                sp["reason"]
            ],
        }
    )


# ----------------------------------------------------------------------- checks


def _check_k(name: str, value: Any, kmax: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not 1 <= int(value) <= kmax
    ):
        raise EstimationError(
            f"{name} must be a quarter k between 1 and the last followed quarter {kmax}; "
            f"you passed {value!r}",
            table="panel",
            column="k",
            fix=f"pass e.g. {name}={min(kmax, 20)} (quarters since randomization).",
        )
    return int(value)


def _horizons(tau: int, horizons: Sequence[int], kmax: int) -> tuple[int, ...]:
    if isinstance(horizons, (int, np.integer)):
        horizons = (int(horizons),)
    hs = [tau] + [_check_k("horizons", h, kmax) for h in horizons]
    return tuple(dict.fromkeys(hs))


def _logit_ci(p: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Logit-scale interval of a probability (inside [0, 1]; the point itself at 0 or 1)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = (p > 0) & (p < 1)
        pp = np.where(inner, p, 0.5)
        lg = np.log(pp / (1 - pp))
        s = se / (pp * (1 - pp))
        lo = 1 / (1 + np.exp(-(lg - z * s)))
        hi = 1 / (1 + np.exp(-(lg + z * s)))
    return np.where(inner, lo, p), np.where(inner, hi, p)


def _arm_counts(arm: np.ndarray) -> tuple[int, int]:
    return int((arm == 1).sum()), int((arm == 0).sum())


def _need_both_arms(arm: np.ndarray) -> None:
    n1, n0 = _arm_counts(arm)
    if n1 == 0 or n0 == 0:
        raise EstimationError(
            f"one arm is empty in the analysis sample ({n1} IPS, {n0} control)",
            fix="check the panel: every person may have been set aside (see the ledger).",
        )


# ----------------------------------------------------------------------- state occupation


@records_frequency
def state_occupation(
    study: Any,
    *,
    tau: int,
    states: Mapping[str, StateSpec] | None = None,
    horizons: Sequence[int] = (),
    by: str | None = None,
    initial_variance: bool = True,
    level: float = 0.95,
) -> StateOccupationResult:
    r"""Probability of being in each career state by arm and quarter (Aalen–Johansen).

    For state s and arm a,

    .. math:: p_{as}(k) = P(X(k) = s \mid Z = a), \qquad
              \hat p_a(k) = \hat p_a(0) \prod_{t=1}^{k} \hat H_a(t),
              \quad \hat H_{a,jl}(t) = N_{a,jl}(t) / n_{a,j}(t),

    the Aalen–Johansen estimator (product of the empirical transition matrices among
    the persons still followed; the empirical shares when nobody is censored), with
    the infinitesimal-jackknife standard error of R ``survfit``. Tidy rows give
    :math:`p_{1s}(h) - p_{0s}(h)` for every state at ``tau`` and each of
    ``horizons`` (probability scale; ×100 = percentage points), SE
    :math:`\sqrt{se_1^2 + se_0^2}` (independent arms).

    Parameters
    ----------
    tau
        Main horizon, a quarter k >= 1.
    states
        As in :func:`careers`.
    horizons
        Further quarters for difference rows.
    by
        A persons column (e.g. ``"region"``): curves and rows per subgroup; the
        ``occupation`` and ``at_risk`` frames get a ``group`` column and the tidy rows
        the term ``"arm:<by>=<value>"``.
    initial_variance
        Include the sampling variance of the distribution of states at k = 0 (default;
        the persons are a sample). ``False`` treats it as known, as R ``survfit`` does.
    level
        Confidence level; intervals are logit-scale (inside [0, 1]).
    """
    level = check_level(level)
    cs = career_states(study, states)
    K = cs.code.shape[1]
    tau = _check_k("tau", tau, K - 1)
    hs = _horizons(tau, horizons, K - 1)
    z = float(stats.norm.ppf(0.5 + level / 2))
    use = cs.usable
    _need_both_arms(cs.arm[use])
    S = len(cs.states)
    if by is None:
        groups: list[tuple[Any, np.ndarray]] = [(None, use)]
    else:
        if not isinstance(by, str) or by not in study.persons.columns:
            raise EstimationError(
                f"by must be a column of the persons table; you passed {by!r}",
                table="persons",
                column=str(by),
                fix="use e.g. by='region'.",
            )
        vals = study.persons[by]
        if vals.isna().any():
            raise DataContractError(
                f"{int(vals.isna().sum())} persons have no {by!r}",
                table="persons",
                column=by,
                fix="fill the column or choose another.",
            )
        groups = [
            (g, use & (vals == g).to_numpy()) for g in sorted(vals.unique().tolist(), key=str)
        ]
    occ_rows, risk_rows, rows = [], [], []
    msgs = list(cs.warnings)
    for g, sel in groups:
        aj = {}
        for a, lab in _ARMS:
            m = sel & (cs.arm == a)
            if not m.any():
                raise EstimationError(
                    f"no {lab} person in group {by}={g!r}",
                    table="persons",
                    column=by,
                    fix="choose a coarser grouping.",
                )
            aj[a] = aalen_johansen(cs.code[m], S, initial_variance=bool(initial_variance))
            lo, hi = _logit_ci(aj[a].probability, aj[a].std_error, z)
            frame = pd.DataFrame(
                {
                    "arm": np.full(K * S, a, dtype=np.int64),
                    "k": np.repeat(np.arange(K), S),
                    "state": np.tile(np.asarray(cs.states, dtype=object), K),
                    "probability": aj[a].probability.ravel(),
                    "std_error": aj[a].std_error.ravel(),
                    "conf_low": lo.ravel(),
                    "conf_high": hi.ravel(),
                }
            )
            risk = pd.DataFrame(
                {"arm": np.full(K, a, dtype=np.int64), "k": np.arange(K), "at_risk": aj[a].at_risk}
            )
            if by is not None:
                frame.insert(0, "group", g)
                risk.insert(0, "group", g)
            occ_rows.append(frame)
            risk_rows.append(risk)
        n1, n0 = _arm_counts(cs.arm[sel])
        for h in hs:
            for j, s in enumerate(cs.states):
                d = aj[1].probability[h, j] - aj[0].probability[h, j]
                se = math.sqrt(aj[1].std_error[h, j] ** 2 + aj[0].std_error[h, j] ** 2)
                rows.append(
                    make_row(
                        outcome=s,
                        term="arm" if by is None else f"arm:{by}={g}",
                        estimand="state_occupation_difference",
                        horizon=int(h),
                        estimate=d,
                        std_error=se,
                        nobs=n1 + n0,
                        n_treated=n1,
                        n_control=n0,
                        control_mean=aj[0].probability[h, j],
                        level=level,
                    )
                )
        for a, lab in _ARMS:
            if aj[a].at_risk[tau] < 10:
                msg = (
                    f"only {int(aj[a].at_risk[tau])} {lab} persons are followed at tau = {tau}"
                    f"{'' if by is None else f' in {by}={g}'}: the estimates there are imprecise"
                )
                msgs.append(msg)
                warnings.warn(msg, EstimationWarning, stacklevel=2)
    spec = {
        "estimator": "state_occupation",
        "custom_states": states is not None,
        "tau": tau,
        "horizons": hs,
        "states": cs.states,
        "state_rule": cs.rule,
        "by": by,
        "level": level,
        "time_scale": "event time k (quarters since the randomization quarter)",
        "variance": "infinitesimal jackknife"
        + (
            " with the initial distribution's"
            if initial_variance
            else " given the initial distribution (survfit)"
        ),
        "initial_variance": bool(initial_variance),
        "interval": "logit",
    }
    return StateOccupationResult(
        states=cs.states,
        statistics=pd.DataFrame(rows),
        occupation=pd.concat(occ_rows, ignore_index=True),
        at_risk=pd.concat(risk_rows, ignore_index=True),
        tau=tau,
        level=level,
        spec=spec,
        warnings=tuple(msgs),
        ledger=pd.DataFrame(list(cs.ledger)) if cs.ledger else None,
    )


# ----------------------------------------------------------------------- recurrent events


@dataclass(frozen=True)
class _Events:
    dn: np.ndarray  # (n, K) events at k (0/1), 0 outside follow-up
    follow: np.ndarray
    arm: np.ndarray
    stratum: np.ndarray
    label: str
    rule: str
    ledger: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]


def job_starts(
    study: Any, *, event: str = "job_start", states: Mapping[str, StateSpec] | None = None
) -> _Events:
    """Recurrent events per person and quarter, with each person's follow-up.

    ``"job_start"``: quarter k >= 1 with employed = 1 after a quarter with employed = 0
    (follow-up: the gap-free run of ``employed`` from k = 0). ``"entry:<state>"``
    (e.g. ``"entry:di_only"``, returns to DI): quarter k >= 1 in the career state after a
    quarter in another state.
    """
    if not isinstance(event, str):
        raise EstimationError(
            f"event must be 'job_start' or 'entry:<state>'; you passed {event!r}",
            fix="pass event='job_start'.",
        )
    arm = np.asarray(study.design.arm, dtype=np.int64)
    msgs: list[str] = []
    ledger: list[dict[str, Any]] = []
    if event == "job_start":
        if states is not None:
            raise EstimationError(
                "states has no use with event='job_start' (defined by employed)",
                fix="drop states=, or use event='entry:<state>'.",
            )
        kmax = study.k_range[1]
        if kmax < 1:
            raise EstimationError(
                f"the panel ends at k = {kmax}",
                table="panel",
                column="k",
                fix="recurrent events need quarters k >= 1.",
            )
        ks = np.arange(0, kmax + 1, dtype=np.int64)
        emp = _matrix(study, "employed", ks)
        code = np.where(np.isnan(emp), -1, (np.nan_to_num(emp) != 0).astype(np.int8)).astype(
            np.int8
        )
        follow, last_obs = _follow_up(code)
        target = np.array([False, True])
        rule = "job start: employed = 1 at k >= 1 after employed = 0 at k - 1"
        unusable = follow < 0
        if unusable.any():
            ledger.append(_ledger_row("employed missing at k = 0: set aside", unusable, arm))
        gap = (last_obs > follow) & ~unusable
        if gap.any():
            ledger.append(
                _ledger_row(
                    "gap in employed after k = 0: follow-up censored before the gap", gap, arm
                )
            )
        for row in ledger:
            msg = f"{row['n_rows']} persons: {row['reason']}"
            msgs.append(msg)
            warnings.warn(msg, EstimationWarning, stacklevel=3)
        cols = np.arange(code.shape[1])
        code = np.where(cols[None, :] <= follow[:, None], code, -1)
    elif event.startswith("entry:"):
        cs = career_states(study, states)
        want = [s.strip() for s in event[len("entry:") :].split("|")]
        bad = [s for s in want if s not in cs.states]
        if bad:
            raise EstimationError(
                f"unknown state(s) {bad} in event={event!r}",
                fix=f"use states among {', '.join(cs.states)}, e.g. 'entry:di_only'.",
            )
        target = np.isin(np.asarray(cs.states), want)
        code, follow = cs.code, cs.follow
        msgs.extend(cs.warnings)
        ledger.extend(cs.ledger)
        rule = f"entry into {' or '.join(want)}: in it at k >= 1 and not at k - 1 ({cs.rule})"
    else:
        raise EstimationError(
            f"event must be 'job_start' or 'entry:<state>'; you passed {event!r}",
            fix="pass event='job_start' or e.g. event='entry:di_only'.",
        )
    inside = np.where(code >= 0, target[np.maximum(code, 0)], False)
    dn = np.zeros(code.shape, dtype=np.int8)
    dn[:, 1:] = inside[:, 1:] & (code[:, :-1] >= 0) & ~inside[:, :-1]
    return _Events(
        dn=dn,
        follow=follow,
        arm=arm,
        stratum=np.asarray(study.design.stratum, dtype=np.int64),
        label=event,
        rule=rule,
        ledger=tuple(ledger),
        warnings=tuple(msgs),
    )


def _ratio_row(log_row: dict[str, Any], name: str) -> dict[str, Any]:
    r"""Make the row of a ratio beside the row of its log (rate ratio beside log rate ratio).

    :math:`e^{\hat\beta}`, its delta-method standard error :math:`e^{\hat\beta}\,se`,
    the log-scale interval transformed (:math:`e^{lo}, e^{hi}`: not symmetric around
    the ratio) and the log scale's statistic and p-value.
    """

    def exp_or_nan(v: float) -> float:
        return math.exp(v) if np.isfinite(v) else math.nan

    row = dict(log_row)
    ratio = exp_or_nan(log_row["estimate"])
    row.update(
        term=name,
        estimand=name,
        estimate=ratio,
        std_error=ratio * log_row["std_error"] if np.isfinite(ratio) else math.nan,
        conf_low=exp_or_nan(log_row["conf_low"]),
        conf_high=exp_or_nan(log_row["conf_high"]),
        control_mean=math.nan,
    )
    return row


def _log_ci(mu: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.exp(z * se / np.where(mu > 0, mu, 1.0))
    return np.where(mu > 0, mu / f, 0.0), np.where(mu > 0, mu * f, 0.0)


def _cluster_of_rows(
    study: Any,
    cluster: str | None,
    keep: np.ndarray,
    ledger: list[dict[str, Any]],
    arm: np.ndarray,
    covariates: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    """Build covariates and clusters by the survival estimators' rule.

    Categorical covariates become dummies, a missing or collinear one is refused, a
    person with a missing cluster is set aside in the ledger.

    Returns ``keep``, the covariate matrix, its column names and the cluster code per
    person (each person its own cluster when ``cluster`` is None).
    """
    keep, x_cov, names, cl = _complete_cases(study, keep, arm, covariates, cluster, ledger)
    codes = np.arange(arm.size) if cl is None else cl
    return keep, x_cov, tuple(names), codes


@records_frequency
def recurrent_spells(
    study: Any,
    *,
    tau: int,
    event: str = "job_start",
    horizons: Sequence[int] = (),
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    strata: bool = False,
    ties: str = "efron",
    states: Mapping[str, StateSpec] | None = None,
    level: float = 0.95,
) -> RecurrentResult:
    r"""Mean cumulative number of job starts per person by arm, and the rate ratio.

    With :math:`N_i(k)` the number of job starts of person i in quarters 1..k (a start
    is a quarter with employed = 1 after one with employed = 0):

    * :math:`\mu_a(k) = E[N(k) \mid Z = a]` by the Nelson–Aalen mean cumulative
      function :math:`\hat\mu_a(k) = \sum_{t \le k} d_a(t) / Y_a(t)` (persons followed
      at t), Lawless–Nadeau robust SE, log-scale intervals;
    * ``mcf_difference``: :math:`\hat\mu_1(h) - \hat\mu_0(h)` at ``tau`` and
      ``horizons`` (job starts per person), SE :math:`\sqrt{se_1^2 + se_0^2}`;
    * ``log_rate_ratio`` / ``rate_ratio``: the Andersen–Gill Cox model on the
      counting-process rows (gaps between starts, every person at risk throughout
      follow-up), :math:`E[dN(t) \mid Z, X] = e^{\beta Z + \gamma^\top X} d\mu_0(t)`,
      with the robust sandwich variance clustered by person (or by ``cluster``) —
      the LWYY / Ghosh–Lin marginal rate model (without a terminal event the two
      coincide). R: ``coxph(Surv(start, stop, event) ~ arm + cluster(id))``.

    Parameters
    ----------
    tau
        Main horizon (quarter k >= 1).
    event
        ``"job_start"`` (default) or ``"entry:<state>"`` for entries into a career state
        (``"entry:di_only"``: moves onto DI without work).
    horizons
        Further quarters for ``mcf_difference`` rows.
    covariates
        Baseline numeric covariates of the rate model (not of the MCF).
    cluster
        Persons column for the robust variance (default: each person is a cluster).
    strata
        Stratify the baseline rate by randomization stratum.
    ties
        ``"efron"`` (default) or ``"breslow"``.
    states
        Career states for ``event="entry:<state>"``.
    level
        Confidence level.
    """
    level = check_level(level)
    ties = check_option(ties, COX_TIES, "ties")
    if not isinstance(strata, (bool, np.bool_)):
        raise EstimationError(
            f"strata must be True or False; you passed {strata!r}", fix="pass strata=False."
        )
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = tuple(covariates)
    ev = job_starts(study, event=event, states=states)
    K = ev.dn.shape[1]
    tau = _check_k("tau", tau, K - 1)
    hs = _horizons(tau, horizons, K - 1)
    z = float(stats.norm.ppf(0.5 + level / 2))
    arm = ev.arm
    ledger = list(ev.ledger)
    msgs = list(ev.warnings)
    keep = ev.follow >= 1
    never = ev.follow == 0
    if never.any():
        ledger.append(_ledger_row("followed at k = 0 only: no quarter at risk", never, arm))
    keep, x_cov, cov_names, cl = _cluster_of_rows(study, cluster, keep, ledger, arm, covariates)
    _need_both_arms(arm[keep])
    mcf_rows = []
    mc = {}
    for a, _ in _ARMS:
        m = keep & (arm == a)
        mc[a] = mean_cumulative(ev.dn[m], ev.follow[m])
        lo, hi = _log_ci(mc[a].mcf, mc[a].std_error, z)
        mcf_rows.append(
            pd.DataFrame(
                {
                    "arm": np.full(K, a, dtype=np.int64),
                    "k": np.arange(K),
                    "mcf": mc[a].mcf,
                    "std_error": mc[a].std_error,
                    "conf_low": lo,
                    "conf_high": hi,
                    "at_risk": mc[a].at_risk,
                    "events": mc[a].events,
                }
            )
        )
    n1, n0 = _arm_counts(arm[keep])
    common: dict[str, Any] = dict(nobs=n1 + n0, n_treated=n1, n_control=n0, level=level)
    rows = []
    for h in hs:
        d = mc[1].mcf[h] - mc[0].mcf[h]
        se = math.sqrt(mc[1].std_error[h] ** 2 + mc[0].std_error[h] ** 2)
        rows.append(
            make_row(
                outcome=ev.label,
                term="mcf_difference",
                estimand="mcf_difference",
                horizon=int(h),
                estimate=d,
                std_error=se,
                control_mean=mc[0].mcf[h],
                **common,
            )
        )
    # Andersen–Gill on counting-process rows of the kept persons
    idx = np.flatnonzero(keep)
    cp = counting_process_rows(ev.dn[idx], ev.follow[idx])
    person = idx[cp["person"]]
    x = (
        np.column_stack([arm[person].astype(float), x_cov[person]])
        if x_cov.size
        else (arm[person].astype(float)[:, None])
    )
    names = ["arm", *cov_names]
    n_events = int(cp["event"].sum())
    if (
        n_events == 0
        or cp["event"][arm[person] == 1].sum() == 0
        or cp["event"][arm[person] == 0].sum() == 0
    ):
        msg = "no event in at least one arm: the rate ratio is not estimable"
        msgs.append(msg)
        warnings.warn(msg, EstimationWarning, stacklevel=2)
        coef, se_c = np.full(len(names), math.nan), np.full(len(names), math.nan)
    else:
        fit = cox_fit(
            cp["stop"].astype(float),
            cp["event"].astype(float),
            x,
            entry=cp["start"].astype(float),
            strata=ev.stratum[person] if strata else None,
            ties=ties,
            cluster=cl[person],
            robust=True,
        )
        if not fit.converged:
            msg = "the Andersen–Gill model did not converge; its rate ratio is unreliable"
            msgs.append(msg)
            warnings.warn(msg, EstimationWarning, stacklevel=2)
        coef, se_c = fit.coef, fit.std_error
    zstat = coef / se_c
    cox_df = pd.DataFrame(
        {
            "term": names,
            "estimate": coef,
            "std_error": se_c,
            "statistic": zstat,
            "p_value": 2 * stats.norm.sf(np.abs(zstat)),
            "conf_low": coef - z * se_c,
            "conf_high": coef + z * se_c,
            "rate_ratio": np.exp(coef),
        }
    )
    b, s = float(coef[0]), float(se_c[0])
    rows.append(
        make_row(
            outcome=ev.label,
            term="log_rate_ratio",
            estimand="log_rate_ratio",
            horizon=None,
            estimate=b,
            std_error=s,
            **common,
        )
    )
    rows.append(_ratio_row(rows[-1], "rate_ratio"))
    spec = {
        "estimator": "recurrent_spells",
        "custom_states": states is not None,
        "event": ev.label,
        "event_rule": ev.rule,
        "tau": tau,
        "horizons": hs,
        "covariates": covariates,
        "cluster": cluster,
        "strata": bool(strata),
        "ties": ties,
        "level": level,
        "n_events": n_events,
        "n_rows": int(cp["stop"].size),
        "variance": "MCF: Lawless–Nadeau; rate model: robust sandwich clustered by "
        + ("person" if cluster is None else cluster),
        "states": None if states is None else tuple(states),
        "time_scale": "event time k (quarters since the randomization quarter)",
    }
    return RecurrentResult(
        event=ev.label,
        statistics=pd.DataFrame(rows),
        mcf=pd.concat(mcf_rows, ignore_index=True),
        cox=cox_df,
        tau=tau,
        level=level,
        spec=spec,
        warnings=tuple(msgs),
        ledger=pd.DataFrame(ledger) if ledger else None,
    )


# ----------------------------------------------------------------------- transitions


def _transition_rows(
    cs: CareerStates, from_state: str, to_state: Sequence[str]
) -> dict[str, np.ndarray]:
    sp = _spells(cs)
    fi = cs.states.index(from_state)
    tis = [cs.states.index(t) for t in to_state]
    sel = (sp["state"] == fi) & (sp["stop"] > sp["start"]) & cs.usable[sp["person"]]
    out = {k: v[sel] for k, v in sp.items()}
    out["hit"] = out["event"] & np.isin(out["to"], tis)
    return out


@records_frequency
def transitions(
    study: Any,
    *,
    from_state: str,
    to_state: str | Sequence[str],
    states: Mapping[str, StateSpec] | None = None,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    strata: bool = False,
    ties: str = "efron",
    level: float = 0.95,
) -> TransitionResult:
    r"""Hazard of one transition (e.g. ``work`` → ``di_only``) by arm, with Cox per transition.

    Rows are the spells in ``from_state`` as counting-process intervals (start, stop]
    in event time; a spell that ends in ``to_state`` is an event, one that ends in
    another state or is censored is censored for this transition (the
    transition-specific, cause-specific hazard of a Markov multi-state model). A
    person can contribute several spells: the variance is robust, clustered by person
    (or ``cluster``). Estimands: the Nelson–Aalen cumulative transition hazard
    :math:`A_a(k) = \sum_{t \le k} d_a(t)/n_a(t)` (``cumhaz``) and the log hazard
    ratio :math:`\beta` of :math:`\alpha(t \mid Z) = \alpha_0(t) e^{\beta Z + \gamma^\top X}`
    (R: ``coxph(Surv(start, stop, to == to_state) ~ arm + cluster(id),
    subset = state == from_state)``).

    Note: the rows condition on being in ``from_state``, which the arm affects; the
    hazard ratio describes the dynamics and is not a randomized contrast (the
    state-occupation probabilities are).
    """
    level = check_level(level)
    ties = check_option(ties, COX_TIES, "ties")
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = tuple(covariates)
    cs = career_states(study, states)
    targets = (to_state,) if isinstance(to_state, str) else tuple(to_state)
    for name, vals in (("from_state", (from_state,)), ("to_state", targets)):
        bad = [v for v in vals if v not in cs.states]
        if bad:
            raise EstimationError(
                f"unknown {name} {bad}", fix=f"use one of {', '.join(cs.states)}."
            )
    if from_state in targets:
        raise EstimationError(
            "to_state must differ from from_state", fix="a transition changes state."
        )
    tr = _transition_rows(cs, from_state, targets)
    arm = cs.arm
    ledger = list(cs.ledger)
    msgs = list(cs.warnings)
    keep_p, x_cov, cov_names, cl = _cluster_of_rows(
        study, cluster, cs.usable, ledger, arm, covariates
    )
    r = keep_p[tr["person"]]
    tr = {k: v[r] for k, v in tr.items()}
    person = tr["person"]
    z = float(stats.norm.ppf(0.5 + level / 2))
    label = f"{from_state}->{'|'.join(targets)}"
    if person.size == 0:
        raise EstimationError(
            f"no spell in {from_state!r} with time at risk", fix="choose another from_state."
        )
    # Nelson–Aalen by arm on the grid k = 1..K-1
    K = cs.code.shape[1]
    ks = np.arange(K)
    ch_rows = []
    for a, _ in _ARMS:
        m = arm[person] == a
        st, sp_, hit = tr["start"][m], tr["stop"][m], tr["hit"][m]
        # at risk at k when start < k <= stop: a difference array, not a spells x k matrix
        at_risk = np.cumsum(
            np.bincount(st + 1, minlength=K + 1) - np.bincount(sp_ + 1, minlength=K + 1)
        )[:K]
        d = np.bincount(sp_[hit], minlength=K)[:K]
        with np.errstate(invalid="ignore", divide="ignore"):
            inc = np.where(at_risk > 0, d / np.where(at_risk > 0, at_risk, 1), 0.0)
        ch_rows.append(
            pd.DataFrame(
                {
                    "arm": np.full(K, a, dtype=np.int64),
                    "k": ks,
                    "cumhaz": np.cumsum(inc),
                    "at_risk": at_risk.astype(np.int64),
                    "events": d.astype(np.int64),
                }
            )
        )
    x = (
        np.column_stack([arm[person].astype(float), x_cov[person]])
        if x_cov.size
        else (arm[person].astype(float)[:, None])
    )
    names = ["arm", *cov_names]
    hits_arm = [int(tr["hit"][arm[person] == a].sum()) for a in (1, 0)]
    if min(hits_arm) == 0:
        msg = (
            f"no {label} transition in at least one arm (IPS {hits_arm[0]}, control {hits_arm[1]})"
        )
        msgs.append(msg)
        warnings.warn(msg, EstimationWarning, stacklevel=2)
        coef, se_c = np.full(len(names), math.nan), np.full(len(names), math.nan)
    else:
        fit = cox_fit(
            tr["stop"].astype(float),
            tr["hit"].astype(float),
            x,
            entry=tr["start"].astype(float),
            strata=cs.stratum[person] if strata else None,
            ties=ties,
            cluster=cl[person],
            robust=True,
        )
        coef, se_c = fit.coef, fit.std_error
    zstat = coef / se_c
    cox_df = pd.DataFrame(
        {
            "term": names,
            "estimate": coef,
            "std_error": se_c,
            "statistic": zstat,
            "p_value": 2 * stats.norm.sf(np.abs(zstat)),
            "conf_low": coef - z * se_c,
            "conf_high": coef + z * se_c,
            "hazard_ratio": np.exp(coef),
        }
    )
    pk = np.unique(person)
    n1, n0 = _arm_counts(arm[pk])
    rows = [
        make_row(
            outcome=label,
            term="cox",
            estimand="log_hazard_ratio",
            horizon=None,
            estimate=float(coef[0]),
            std_error=float(se_c[0]),
            nobs=n1 + n0,
            n_treated=n1,
            n_control=n0,
            level=level,
        )
    ]
    rows.append(_ratio_row(rows[0], "hazard_ratio"))
    spec = {
        "estimator": "transitions",
        "custom_states": states is not None,
        "from_state": from_state,
        "to_state": targets,
        "states": cs.states,
        "state_rule": cs.rule,
        "covariates": covariates,
        "cluster": cluster,
        "strata": bool(strata),
        "ties": ties,
        "level": level,
        "n_spells": int(person.size),
        "n_events": int(tr["hit"].sum()),
        "time_scale": "event time k (quarters since the randomization quarter)",
        "randomized_comparison": False,
    }
    return TransitionResult(
        from_state=from_state,
        to_state=targets,
        statistics=pd.DataFrame(rows),
        cumhaz=pd.concat(ch_rows, ignore_index=True),
        cox=cox_df,
        level=level,
        spec=spec,
        warnings=tuple(msgs),
        ledger=pd.DataFrame(ledger) if ledger else None,
    )


# ----------------------------------------------------------------------- randomization


def _ag_log_rate_ratio(
    ev: _Events, keep: np.ndarray, z: np.ndarray, strata: bool, ties: str
) -> np.ndarray:
    """Andersen–Gill coefficient of the arm (arm-only model) for each assignment row of z.

    With a 0/1 covariate the partial likelihood depends on the assignment only through
    the numbers at risk and the events of the treated at each (stratum, k): one product
    ``z @ counts`` and a Newton–Raphson on all rows in parallel.
    """
    dn = ev.dn[keep].astype(float)
    c = ev.follow[keep]
    K = dn.shape[1]
    ks = np.arange(K)
    y = ((ks[None, :] >= 1) & (ks[None, :] <= c[:, None])).astype(float)
    dn = dn * y
    st = ev.stratum[keep] if strata else np.zeros(c.size, dtype=np.int64)
    zk = z[:, keep]
    n1s, n0s, d1s, d0s = [], [], [], []
    for s in np.unique(st):
        m = st == s
        ys, ds = y[m], dn[m]
        tot, dk = ys.sum(axis=0), ds.sum(axis=0)
        ev_k = dk > 0
        n1 = zk[:, m] @ ys[:, ev_k]
        d1 = zk[:, m] @ ds[:, ev_k]
        n1s.append(n1)
        n0s.append(tot[ev_k][None, :] - n1)
        d1s.append(d1)
        d0s.append(dk[ev_k][None, :] - d1)
    return _cox_binary(np.hstack(n1s), np.hstack(n0s), np.hstack(d1s), np.hstack(d0s), ties, 50)


def randomization_statistics(
    study: Any,
    result: Any,
    assignments: np.ndarray,
    *,
    states: Mapping[str, StateSpec] | None = None,
) -> pd.DataFrame:
    """Compute the tidy statistics of a careers result under other assignments, no refit.

    ``assignments`` is (B, n_persons) 0/1 (e.g. ``study.design.permutations(B, seed)``).
    Columns follow the tidy rows of ``result`` (``"<term>|<outcome>|<horizon>"``):

    * state occupation: :math:`\\hat p_{1s}(h) - \\hat p_{0s}(h)` from the Aalen–Johansen
      products of each arm's transition counts (one sparse product for all draws);
    * recurrent spells: :math:`\\hat\\mu_1(h) - \\hat\\mu_0(h)` and the arm-only
      Andersen–Gill log rate ratio (also for the ``rate_ratio`` row, whose test it is);
      a model with covariates is not re-fitted per draw (the arm-only statistic is the
      randomization test statistic);
    * transitions: the arm-only Cox log hazard ratio of the transition.

    A result fitted with custom ``states`` needs them again (callables are not kept in
    the spec).
    """
    a = np.atleast_2d(np.asarray(assignments, dtype=float))
    if a.shape[1] != len(study.persons):
        raise EstimationError(
            f"assignments have {a.shape[1]} columns but the study has {len(study.persons)} persons",
            fix="pass a (B, n_persons) array aligned with study.persons.",
        )
    spec = result.spec
    tidy = result.tidy()
    cols: dict[str, np.ndarray] = {}
    est = spec.get("estimator")
    if spec.get("custom_states") and states is None:
        raise EstimationError(
            "the result was fitted with custom states, which the spec does not keep",
            fix="pass the same states= to randomization_statistics.",
        )
    if est == "state_occupation":
        if spec.get("by") is not None:
            raise EstimationError(
                "randomization statistics of state_occupation(by=...) are not available",
                fix="fit without by= for randomization inference.",
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimationWarning)
            cs = career_states(study, states)
        if cs.states != tuple(spec["states"]):
            raise EstimationError(
                f"the states {list(cs.states)} are not those of the result {list(spec['states'])}",
                fix="pass the states= the result was fitted with.",
            )
        use = cs.usable
        for h in spec["horizons"]:
            occ = occupation_by_assignment(cs.code[use], len(cs.states), a[:, use], h)
            for j, s in enumerate(cs.states):
                cols[f"arm|{s}|{h}"] = occ["treated"][:, j] - occ["control"][:, j]
        keys = _row_keys(tidy)
    elif est == "recurrent_spells":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimationWarning)
            ev = job_starts(study, event=spec["event"], states=states)
        keep = ev.follow >= 1
        for h in spec["horizons"]:
            cols[f"mcf_difference|{ev.label}|{h}"] = mcf_by_assignment(
                ev.dn[keep], ev.follow[keep], a[:, keep], h
            )
        b = _ag_log_rate_ratio(ev, keep, a, spec["strata"], spec["ties"])
        cols[f"log_rate_ratio|{ev.label}|None"] = b
        cols[f"rate_ratio|{ev.label}|None"] = b
        keys = _row_keys(tidy)
    elif est == "transitions":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimationWarning)
            cs = career_states(study, states)
        tr = _transition_rows(cs, spec["from_state"], spec["to_state"])
        b = _transition_cox(tr, cs, a, spec["strata"], spec["ties"])
        cols["cox"] = b
        cols["hazard_ratio"] = b  # tested through its log
        keys = ["cox", "hazard_ratio"]
    else:
        raise EstimationError(
            f"not a careers result (estimator {est!r})",
            fix="pass a result of state_occupation, recurrent_spells or transitions.",
        )
    return pd.DataFrame({k: cols[k] for k in keys})


def _row_keys(tidy: pd.DataFrame) -> list[str]:
    def h(v: Any) -> str:
        return "None" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v))

    return [f"{r.term}|{r.outcome}|{h(r.horizon)}" for r in tidy.itertuples(index=False)]


def _transition_cox(
    tr: dict[str, np.ndarray], cs: CareerStates, z: np.ndarray, strata: bool, ties: str
) -> np.ndarray:
    """Arm-only Cox coefficient of a transition for each assignment row (counts per key)."""
    K = cs.code.shape[1]
    st = cs.stratum[tr["person"]] if strata else np.zeros(tr["person"].size, dtype=np.int64)
    n1s, n0s, d1s, d0s = [], [], [], []
    for s in np.unique(st):
        m = st == s
        # per person (the arm is the person's): spells at risk at k (difference array over
        # start < k <= stop) and transitions at k
        up, inv = np.unique(tr["person"][m], return_inverse=True)
        inv = inv.ravel()
        diff = np.zeros((up.size, K + 1))
        np.add.at(diff, (inv, tr["start"][m] + 1), 1.0)
        np.add.at(diff, (inv, tr["stop"][m] + 1), -1.0)
        rp = np.cumsum(diff, axis=1)[:, :K]
        hp = np.zeros((up.size, K))
        hm = tr["hit"][m]
        np.add.at(hp, (inv[hm], tr["stop"][m][hm]), 1.0)
        tot, dk = rp.sum(axis=0), hp.sum(axis=0)
        e = dk > 0
        zz = z[:, up]
        n1 = zz @ rp[:, e]
        d1 = zz @ hp[:, e]
        n1s.append(n1)
        n0s.append(tot[e][None, :] - n1)
        d1s.append(d1)
        d0s.append(dk[e][None, :] - d1)
    return _cox_binary(np.hstack(n1s), np.hstack(n0s), np.hstack(d1s), np.hstack(d0s), ties, 50)


def randomization_problem(study: Any, result: Any) -> RandomizationProblem:
    """Randomization problem of a careers result (the protocol of :mod:`ips_impact.inference`).

    The statistic of every tidy row under a block of assignments comes from
    :func:`randomization_statistics`. For ``state_occupation`` the statistics are the
    tidy estimates (checked); for ``recurrent_spells`` and ``transitions`` the Cox
    statistic is the arm-only coefficient (covariates are not re-fitted per draw) and
    the ``rate_ratio`` row is tested through its log, so they are not checked against
    the estimates. No randomization interval (a state share does not shift by a
    constant effect).
    """

    def statistic(draws: np.ndarray) -> np.ndarray:
        return randomization_statistics(study, result, draws).to_numpy(dtype=float)

    return RandomizationProblem(
        statistic=statistic,
        reproduces=result.spec.get("estimator") == "state_occupation",
        interval="none",
    )


for _name in ("state_occupation", "recurrent_spells", "transitions"):
    register_randomization(_name, randomization_problem)
