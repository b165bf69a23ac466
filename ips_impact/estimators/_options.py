r"""The options every estimator shares: their literals, their checks and their defaults.

One module so that the same request means the same thing in every estimator (the
analysis plan calls all of them with the same options):

* :data:`ADJUSTMENTS`, :data:`AGGREGATES`, :data:`WINDOW_RULES` and their ``Literal``
  types; :func:`check_option` refuses anything else with the allowed values listed;
* :func:`check_level`, :func:`check_horizon`, :func:`check_window` — typed errors, never
  a raw ``TypeError``;
* :func:`resolve_adjustment` — the default adjustment targets the ATE;
* :func:`window_values` — the one rule for aggregating an outcome over a window.

Rules (documented in ``docs/estimators.md``, "One pipeline"):

Windows (``window_rule=``)
    ``"complete"`` (default everywhere): a person's mean or sum over ``window=(a, b)``
    needs the outcome at every k of the window; persons missing a period are set aside
    in the ledger (a mean over fewer periods would mean something else).
    ``"available"``: the mean or sum over the periods where the outcome is observed
    (persons observed at no period are set aside). ``"absent_not_at_work"``: for the
    LMD job variables only (:data:`NOT_AT_WORK_ZERO`), a period without an LMD row
    counts as 0 (not at work); refused for any other outcome.
Missing covariates
    refused with the column and the count (impute and add a missing indicator first) —
    no row is dropped silently.
Categorical covariates
    text, categorical and boolean-like object columns become dummies of their levels
    present in the sample (first level in sorted order dropped), named ``column[level]``.
Collinear covariates
    a covariate that is a linear combination of the intercept, the strata and earlier
    covariates is refused, naming it (no silent dropping, no pseudo-inverse).
Adjustment default (``adjustment=None``)
    ``"ancova"`` (stratum fixed effects, additive covariates) when the assignment
    probability is the same in every stratum — it then estimates the ATE
    :math:`\tau = E[Y_i(1) - Y_i(0)]`; ``"lin"`` (arm × centred strata and covariates)
    when the probabilities differ, since stratum fixed effects then estimate the
    precision-weighted :math:`\sum_b n_b p_b (1-p_b) \tau_b / \sum_b n_b p_b (1-p_b)`
    and not τ. The strata-FE estimand stays available by name: ``adjustment="ancova"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from ips_impact.errors import EstimationError, EstimationWarning

__all__ = [
    "ADJUSTMENTS",
    "AGGREGATES",
    "WINDOW_RULES",
    "NOT_AT_WORK_ZERO",
    "Adjustment",
    "Aggregate",
    "WindowRule",
    "check_option",
    "check_level",
    "check_horizon",
    "check_window",
    "resolve_adjustment",
    "window_values",
]

Adjustment = Literal["none", "ancova", "lin"]
Aggregate = Literal["mean", "sum", "stack"]
WindowRule = Literal["complete", "available", "absent_not_at_work"]

#: Allowed values of ``adjustment=``.
ADJUSTMENTS: tuple[str, ...] = ("none", "ancova", "lin")
#: Allowed values of ``aggregate=``.
AGGREGATES: tuple[str, ...] = ("mean", "sum", "stack")
#: Allowed values of ``window_rule=`` (default ``"complete"`` in every estimator).
WINDOW_RULES: tuple[str, ...] = ("complete", "available", "absent_not_at_work")
#: LMD job variables for which a period without an LMD row means "not at work" (0).
NOT_AT_WORK_ZERO: frozenset[str] = frozenset(
    {"employed", "self_employed", "temp_agency", "permanent_contract", "work_on_di",
     "earnings", "fte", "days_worked", "n_jobs"}
)


def check_option(value: Any, allowed: Sequence[str], argument: str) -> str:
    """Return ``value`` if it is one of ``allowed``; else raise :class:`EstimationError`.

    The message names the argument, lists the allowed values and echoes what was passed.
    """
    if isinstance(value, str) and value in allowed:
        return value
    raise EstimationError(
        f"{argument} must be one of {', '.join(repr(a) for a in allowed)}; you passed {value!r}",
        fix=f"pass {argument}=" + " or ".join(repr(a) for a in allowed),
    )


def check_level(level: Any, argument: str = "level") -> float:
    """Check a confidence level: strictly between 0 and 1."""
    numeric = (isinstance(level, (float, int, np.floating, np.integer))
               and not isinstance(level, bool))
    if not numeric or not 0.0 < float(level) < 1.0:
        raise EstimationError(
            f"{argument} must be a number strictly between 0 and 1; you passed {level!r}",
            fix=f"use e.g. {argument}=0.95 for 95% confidence intervals",
        )
    return float(level)


def check_horizon(horizon: Any) -> int:
    """Check one integer event time k (a list is refused, naming the alternatives)."""
    if isinstance(horizon, (list, tuple, np.ndarray, range)):
        raise EstimationError(
            f"horizon must be one integer event time; you passed {horizon!r}",
            fix="call the estimator once per horizon, use window=(a, b) for a range, or "
            "itt_by_period(study, outcome, periods=[...]) for one effect per event time",
        )
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise EstimationError(
            f"horizon must be an integer event time; you passed {horizon!r}",
            fix="pass e.g. horizon=6 (6 periods after the randomization period)",
        )
    return int(horizon)


def check_window(window: Any, argument: str = "window") -> tuple[int, int]:
    """Check a pair (a, b) of integer event times with a ≤ b."""
    try:
        if isinstance(window, (str, bytes)) or any(
            isinstance(v, bool) or not float(v).is_integer() for v in window
        ):
            raise ValueError
        a, b = (int(v) for v in window)
    except (TypeError, ValueError):
        raise EstimationError(
            f"{argument} must be a pair of integer event times (a, b); you passed {window!r}",
            fix=f"pass e.g. {argument}=(4, 8) for event times 4 to 8",
        ) from None
    if a > b:
        raise EstimationError(f"{argument}=({a}, {b}) is empty: a must not exceed b",
                              fix=f"pass {argument}=({b}, {a})")
    return a, b


def resolve_adjustment(adjustment: Any, design: Any, *, strata: Any = True) -> tuple[Adjustment, str]:
    """Return the adjustment to fit and why (a sentence for the result's diagnostics).

    ``None`` resolves to ``"ancova"`` with equal assignment probabilities across strata
    (or without strata), else to ``"lin"`` (see the module docstring).
    """
    equal = bool(getattr(design, "equal_probabilities", True))
    if adjustment is not None:
        adjustment = check_option(adjustment, ADJUSTMENTS, "adjustment")
        if adjustment == "ancova" and strata is not False and not equal:
            warnings.warn(
                "adjustment='ancova' with assignment probabilities that differ across strata "
                "estimates the precision-weighted average of the stratum effects (weights "
                "n_b p_b (1 - p_b)), not the ATE; adjustment='lin' or 'none' estimate the ATE",
                EstimationWarning, stacklevel=3,
            )
        return adjustment, "as requested"
    if strata is False or equal:
        return "ancova", ("default: equal assignment probabilities across strata, so strata "
                          "fixed effects estimate the ATE")
    p = np.unique(np.round(np.asarray(design.counts["p_treated"], dtype=float), 3))
    return "lin", (
        "default: assignment probabilities differ across strata "
        f"({', '.join(f'{v:g}' for v in p)}), so the arm is interacted with the centred "
        "strata (Lin), which estimates the ATE with stratum-share weights; "
        "adjustment='ancova' gives the strata fixed-effects (precision-weighted) estimand"
    )


def window_values(values: np.ndarray, aggregate: str, rule: str, outcome: str,
                  inside: np.ndarray | None = None) -> np.ndarray:
    """Per-person mean or sum over a window under ``rule`` (NaN = the person is set aside).

    ``values`` is (n, T) or (n, T, L), NaN where the outcome is unobserved. ``inside``
    (n, T) marks the periods within each person's observed follow-up
    (``k_min ≤ k ≤ k_max``): under ``"absent_not_at_work"`` only those absent periods
    count as 0 — after the end of the extraction a person is unobserved, not idle.
    """
    rule = check_option(rule, WINDOW_RULES, "window_rule")
    if rule == "absent_not_at_work":
        if outcome not in NOT_AT_WORK_ZERO:
            raise EstimationError(
                f"window_rule='absent_not_at_work' counts a period without an LMD row as 0 "
                f"(not at work); that holds for the LMD job variables only, not {outcome!r}",
                column=outcome,
                fix="use window_rule='complete' or 'available', or one of "
                + ", ".join(sorted(NOT_AT_WORK_ZERO)),
            )
        fill = np.isnan(values)
        if inside is not None:
            fill &= inside.reshape(inside.shape + (1,) * (values.ndim - 2))
        values = np.where(fill, 0.0, values)
    if rule in ("complete", "absent_not_at_work"):
        return values.mean(axis=1) if aggregate == "mean" else values.sum(axis=1)
    obs = ~np.isnan(values)
    n_obs = obs.sum(axis=1)
    total = np.where(obs, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / n_obs if aggregate == "mean" else total
    return np.where(n_obs > 0, out, np.nan)


def records_frequency(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a public estimator so that its result's spec records the study's frequency.

    Summaries, tidy labels and plots state event time in months and quarters
    (``"k = 6 (18 months)"``) from ``spec["frequency"]``; one decorator gives every
    estimator that rule instead of one line in each spec builder.
    """
    import functools

    from ips_impact.results.base import ResultBase, freeze

    @functools.wraps(fn)
    def inner(study: Any, *args: Any, **kwargs: Any) -> Any:
        out = fn(study, *args, **kwargs)
        freq = getattr(study, "frequency", None)
        if freq is not None and isinstance(out, ResultBase) and "frequency" not in out.spec:
            # the result was built just now and nobody else holds it: give its frozen spec
            # one more frozen entry instead of building (and freezing) the result again
            # with dataclasses.replace (no __post_init__ reads the spec)
            object.__setattr__(out, "spec", freeze({**out.spec, "frequency": str(freq)}))
        return out

    return inner
