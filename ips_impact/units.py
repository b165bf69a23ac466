"""Units of outcomes and of event time, for every number a user sees.

Two jobs:

* a **data dictionary** of the outcome columns of the contract: what the column
  measures and its unit (``di_benefit`` is EUR per month, ``earnings`` EUR per quarter,
  ``fte`` a share of full time, ``work_on_di`` a 0/1 indicator whose effect is in
  percentage points, survival times in periods of the study's frequency);
* **event time in words** from the Study's frequency: ``k = 6`` in a quarterly panel
  is ``"k = 6 (18 months)"``; a window ``(5, 8)`` is ``"k 5–8 (months 15–24)"``.

>>> from ips_impact import units
>>> units.time_label(6, "Q")
'k = 6 (18 months)'
>>> units.unit_of("di_benefit").short
'EUR/month'
>>> units.effect_unit("work_on_di").short
'pp'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

__all__ = [
    "Unit",
    "OUTCOME_UNITS",
    "unit_of",
    "effect_unit",
    "months_per_period",
    "period_word",
    "time_label",
    "horizon_text",
]


@dataclasses.dataclass(frozen=True)
class Unit:
    """The unit of an outcome: a short label for axes and tables, and its kind.

    ``kind`` is ``"binary"`` (0/1: levels are shares, effects percentage points),
    ``"money"`` (EUR, ``per`` gives the period), ``"share"`` (0–1 but not 0/1, e.g. FTE),
    ``"periods"`` (a count of panel periods), ``"count"`` or ``"number"``.
    """

    kind: str
    short: str
    description: str
    per: str | None = None


_BIN = "binary"

#: The data dictionary of outcome columns named by the contract (``shared/DESIGN.md``).
OUTCOME_UNITS: dict[str, Unit] = {
    "work_on_di": Unit(_BIN, "share", "works while on disability insurance (0/1)"),
    "employed": Unit(_BIN, "share", "works on the last day of the period (0/1)"),
    "self_employed": Unit(_BIN, "share", "self-employed (0/1)"),
    "on_di": Unit(_BIN, "share", "receives disability insurance (0/1)"),
    "authorised_work": Unit(_BIN, "share", "authorised work under art. 100 §2 (0/1)"),
    "temp_agency": Unit(_BIN, "share", "temporary-agency work (0/1)"),
    "permanent_contract": Unit(_BIN, "share", "permanent contract (0/1)"),
    "ips_started": Unit(_BIN, "share", "started IPS (0/1)"),
    "di_benefit": Unit("money", "EUR/month", "DI benefit, EUR per month", per="month"),
    "unemployment_benefit": Unit("money", "EUR/month", "unemployment benefit, EUR per month",
                                 per="month"),
    "social_assistance": Unit("money", "EUR/month", "social assistance, EUR per month",
                              per="month"),
    "earnings": Unit("money", "EUR/quarter", "gross earnings, EUR per quarter", per="quarter"),
    "fte": Unit("share", "FTE share", "part-time fraction (1.0 = full time)"),
    "n_jobs": Unit("count", "jobs", "number of salaried jobs"),
    "days_worked": Unit("count", "days", "days worked in the period"),
}


def unit_of(outcome: str, *, frequency: str | None = None) -> Unit:
    """Return the unit of ``outcome`` (from :data:`OUTCOME_UNITS`; ``number`` when unknown).

    ``earnings`` follows the panel: EUR per month in a monthly panel, per quarter in a
    quarterly one (the gross wage is summed over the period).
    """
    if outcome == "earnings" and frequency is not None and frequency != "Q":
        per = {"M": "month", "Y": "year", "W": "week"}.get(str(frequency), "period")
        return Unit("money", f"EUR/{per}", f"gross earnings, EUR per {per}", per=per)
    return OUTCOME_UNITS.get(outcome, Unit("number", "", outcome))


def effect_unit(outcome: str, *, frequency: str | None = None) -> Unit:
    """Return the unit of an effect on ``outcome``: percentage points for 0/1 outcomes."""
    u = unit_of(outcome, frequency=frequency)
    if u.kind == _BIN:
        return Unit("pp", "pp", "percentage points")
    return u


def months_per_period(frequency: str | None) -> float | None:
    """Months in one period of the panel (``None`` for integer periods)."""
    if not frequency:
        return None
    return {"Q": 3.0, "M": 1.0, "Y": 12.0, "W": 12.0 / 52.0}.get(str(frequency))


def period_word(frequency: str | None, n: float = 2) -> str:
    """Return the English name of the panel period (plural unless ``n == 1``)."""
    word = {"Q": "quarter", "M": "month", "Y": "year", "W": "week"}.get(str(frequency), "period")
    return word if n == 1 else word + "s"


def _months(k: float, frequency: str | None) -> float | None:
    m = months_per_period(frequency)
    return None if m is None else k * m


def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def time_label(k: Any, frequency: str | None) -> str:
    """Return ``"k = 6 (18 months)"`` for a quarterly panel; the bare ``k`` otherwise.

    Weeks are stated in weeks (a week is not a whole number of months); a monthly
    panel reads ``"k = 18 (18 months)"`` so the unit is never implicit.
    """
    if k is None or (isinstance(k, float) and k != k):
        return ""
    if isinstance(k, (tuple, list)):
        return window_label(tuple(k), frequency)
    if frequency == "W":
        return f"k = {_num(float(k))} ({_num(float(k))} weeks)"
    if frequency is None:  # unknown frequency: the bare event time, never a guessed unit
        return f"k = {_num(float(k))}"
    m = _months(float(k), frequency)
    if m is None:
        return f"k = {k} ({period_word(frequency, float(k))})"
    return f"k = {_num(float(k))} ({_num(m)} {'month' if m == 1 else 'months'})"


def window_label(window: Sequence[Any], frequency: str | None) -> str:
    """Return ``"k 5–8 (months 13–24)"``: the months a window of periods covers."""
    a, b = (float(window[0]), float(window[1]))
    m = months_per_period(frequency)
    if m is None or frequency == "W":
        unit = period_word(frequency)
        return f"k {_num(a)}–{_num(b)} ({unit} {_num(a)}–{_num(b)})"
    # period k covers months (k-1)*m+1 … k*m after the randomization period
    return f"k {_num(a)}–{_num(b)} (months {_num((a - 1) * m + 1)}–{_num(b * m)})"


def horizon_text(horizon: Any, frequency: str | None) -> str:
    """Label of a tidy ``horizon`` value: an int, ``"a:b"`` (a window) or empty."""
    if horizon is None or (isinstance(horizon, float) and horizon != horizon) or horizon == "":
        return ""
    if isinstance(horizon, str) and ":" in horizon:
        a, b = horizon.split(":", 1)
        try:
            return window_label((float(a), float(b)), frequency)
        except ValueError:
            return horizon
    try:
        return time_label(float(horizon), frequency)
    except (TypeError, ValueError):
        return str(horizon)
