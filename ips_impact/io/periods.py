"""Period parsing: one frequency per study, detected or given.

Administrative panels arrive with periods written in many ways: ``"2019Q1"``,
``"2019-Q1"``, ``pandas.Period``, ``"2019-01"`` for months, ``"2019"`` for years,
``"2019-W05"`` for ISO weeks, dates, or plain integers. This module turns a column
of any of these into a :class:`pandas.PeriodArray` (or an ``int64`` array for
integer periods) so that event time is an integer difference of ordinals:

.. math:: k_{it} = \\operatorname{ord}(t) - \\operatorname{ord}(t^{rand}_i)

Parsing works on the *unique* values of a column (a panel repeats each period for
every person), so it costs little on large panels.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError

__all__ = [
    "FREQUENCIES",
    "Frequency",
    "parse_periods",
    "detect_frequency",
    "date_to_period",
    "period_ordinals",
]

Frequency = Literal["Q", "M", "Y", "W", "int"]
FREQUENCIES: tuple[str, ...] = ("Q", "M", "Y", "W", "int")

# pandas frequency aliases behind each study frequency (weeks are ISO weeks: Mon–Sun).
_PANDAS_FREQ = {"Q": "Q-DEC", "M": "M", "Y": "Y-DEC", "W": "W-SUN"}
_PANDAS_FREQSTR = {"Q": "Q", "M": "M", "Y": "Y", "W": "W"}

_PATTERNS: dict[str, re.Pattern[str]] = {
    "Q": re.compile(r"^\s*(\d{4})\s*[-_ ]?\s*[Qq]\s*([1-4])\s*$"),
    "W": re.compile(r"^\s*(\d{4})\s*[-_ ]?\s*[Ww]\s*(\d{1,2})\s*$"),
    "M": re.compile(r"^\s*(\d{4})\s*[-_/]\s*(\d{1,2})\s*$|^\s*(\d{4})(\d{2})\s*$"),
    "Y": re.compile(r"^\s*(\d{4})\s*$"),
}
_FREQ_WORDS = {
    "q": "Q", "quarter": "Q", "quarterly": "Q", "qs": "Q", "q-dec": "Q",
    "m": "M", "month": "M", "monthly": "M", "ms": "M",
    "y": "Y", "a": "Y", "year": "Y", "yearly": "Y", "annual": "Y", "y-dec": "Y",
    "w": "W", "week": "W", "weekly": "W", "w-sun": "W",
    "int": "int", "integer": "int", "i": "int",
}


def normalise_frequency(frequency: str | None, *, table: str = "panel") -> Frequency | None:
    """Map user spellings (``"quarter"``, ``"Q"``, ``"monthly"``…) to a study frequency."""
    if frequency is None:
        return None
    key = str(frequency).strip().lower()
    if key not in _FREQ_WORDS:
        raise DataContractError(
            f"unknown frequency {frequency!r}",
            table=table,
            fix=f"pass one of {', '.join(FREQUENCIES)} (or 'quarter', 'month', 'year', 'week', 'integer').",
        )
    return _FREQ_WORDS[key]  # type: ignore[return-value]


def _classify_string(value: str) -> str | None:
    for freq in ("Q", "W", "M", "Y"):
        if _PATTERNS[freq].match(value):
            return freq
    return None


def _period_from_string(value: str, freq: str) -> pd.Period:
    m = _PATTERNS[freq].match(value)
    assert m is not None  # classified before
    if freq == "Q":
        return pd.Period(year=int(m.group(1)), quarter=int(m.group(2)), freq="Q-DEC")
    if freq == "M":
        year, month = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if not 1 <= int(month) <= 12:
            raise ValueError(value)
        return pd.Period(year=int(year), month=int(month), freq="M")
    if freq == "Y":
        return pd.Period(year=int(m.group(1)), freq="Y-DEC")
    # ISO week: the Monday of that week, as a Monday–Sunday period.
    monday = pd.Timestamp.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    return pd.Period(monday, freq="W-SUN")


def _freq_of_period_dtype(dtype: pd.PeriodDtype) -> str:
    code = dtype.freq.name.upper()
    if code.startswith("Q"):
        return "Q"
    if code.startswith("W"):
        return "W"
    if code.startswith("M"):
        return "M"
    if code.startswith(("Y", "A")):
        return "Y"
    raise DataContractError(
        f"periods of frequency {code!r} are not supported",
        fix="use quarters, months, years, ISO weeks or integer periods.",
    )


def _infer_date_frequency(dates: pd.DatetimeIndex) -> str | None:
    """Infer Q / M / Y from dates that mark the start or end of their period."""
    if len(dates) == 0:
        return None
    starts = dates.is_month_start.all()
    ends = dates.is_month_end.all()
    if not (starts or ends):
        return None
    months = set(dates.month.tolist())
    if starts and months <= {1} or ends and months <= {12}:
        # a single month value could also be quarterly/monthly data on one period only
        return "Y" if len(dates.unique()) > 1 else None
    if starts and months <= {1, 4, 7, 10} or ends and months <= {3, 6, 9, 12}:
        return "Q"
    return "M"


def detect_frequency(values: pd.Series, *, table: str = "panel", column: str = "period") -> Frequency:
    """Detect the one frequency of a period column.

    Raises
    ------
    DataContractError
        When values of several frequencies are mixed, or a value cannot be read.
    """
    freq, _ = _parse_unique(values, None, table=table, column=column)
    return freq  # type: ignore[return-value]


def _parse_unique(
    values: pd.Series, frequency: str | None, *, table: str, column: str
) -> tuple[str, dict[object, object]]:
    s = values
    if isinstance(s.dtype, pd.PeriodDtype):
        freq = _freq_of_period_dtype(s.dtype)
        if frequency is not None and frequency != freq:
            raise DataContractError(
                f"holds {freq} periods but the study frequency is {frequency}",
                table=table, column=column, n_rows=int(s.notna().sum()),
                fix="pass the matching frequency= or convert the column.",
            )
        return freq, {}
    if pd.api.types.is_datetime64_any_dtype(s):
        uniq = pd.DatetimeIndex(s.dropna().unique())
        freq = frequency or _infer_date_frequency(uniq)
        if freq is None or freq == "int":
            raise DataContractError(
                "holds dates whose frequency cannot be inferred",
                table=table, column=column, n_rows=int(s.notna().sum()),
                examples=[str(d.date()) for d in uniq[:5]],
                fix="pass frequency='Q' (or 'M', 'Y', 'W') to the study.",
            )
        return freq, {d: pd.Period(d, freq=_PANDAS_FREQ[freq]) for d in uniq}
    if pd.api.types.is_integer_dtype(s) or (
        pd.api.types.is_float_dtype(s) and np.all(np.mod(s.dropna().to_numpy(), 1) == 0)
    ):
        if frequency in (None, "int"):
            return "int", {}
        if frequency == "Y":
            return "Y", {v: pd.Period(year=int(v), freq="Y-DEC") for v in s.dropna().unique()}
        raise DataContractError(
            f"holds integers but the study frequency is {frequency}",
            table=table, column=column, n_rows=int(s.notna().sum()),
            examples=s.dropna().unique()[:5].tolist(),
            fix="write periods as '2019Q1' / '2019-01' / '2019-W05', or use frequency='int'.",
        )
    # strings / objects (possibly pandas Period objects in an object column)
    uniq = pd.unique(s.dropna())
    kinds: dict[str, list[object]] = {}
    mapping: dict[object, object] = {}
    bad: list[object] = []
    for v in uniq:
        if isinstance(v, pd.Period):
            f = _freq_of_period_dtype(pd.PeriodDtype(v.freq))
            kinds.setdefault(f, []).append(v)
            mapping[v] = v
            continue
        if isinstance(v, (pd.Timestamp, np.datetime64)):
            kinds.setdefault("date", []).append(v)
            continue
        txt = str(v)
        f = _classify_string(txt)
        if f is None:
            # ISO dates as text: read later with the study frequency
            try:
                pd.Timestamp(txt)
            except (ValueError, TypeError):
                bad.append(v)
                continue
            kinds.setdefault("date", []).append(v)
            continue
        kinds.setdefault(f, []).append(v)
    if bad:
        raise DataContractError(
            "has period values that cannot be read",
            table=table, column=column, n_rows=int(s.isin(bad).sum()), examples=bad,
            fix="write quarters as '2019Q1', months as '2019-01', years as '2019', ISO weeks as '2019-W05'.",
        )
    if "date" in kinds:
        dates = pd.DatetimeIndex([pd.Timestamp(str(v)) for v in kinds["date"]])
        f = frequency or _infer_date_frequency(dates)
        if f is None or f == "int":
            raise DataContractError(
                "holds dates whose frequency cannot be inferred",
                table=table, column=column, n_rows=int(s.isin(kinds["date"]).sum()),
                examples=kinds["date"], fix="pass frequency='Q' (or 'M', 'Y', 'W') to the study.",
            )
        for v, d in zip(kinds.pop("date"), dates):
            mapping[v] = pd.Period(d, freq=_PANDAS_FREQ[f])
        kinds.setdefault(f, [])
    # "2019" alone is a year, but in a monthly/quarterly study it is a mistake
    if len(kinds) > 1:
        counts = {f: int(s.isin(vs).sum()) for f, vs in kinds.items()}
        examples = [vs[0] for vs in kinds.values() if vs]
        raise DataContractError(
            "mixes period frequencies " + ", ".join(f"{f}: {n} rows" for f, n in sorted(counts.items())),
            table=table, column=column, n_rows=int(sum(counts.values())), examples=examples,
            fix="write every period at one frequency (e.g. all quarters '2019Q1').",
        )
    if not kinds:
        raise DataContractError(
            "has no period values", table=table, column=column, n_rows=0,
            fix="fill the period column.",
        )
    freq = next(iter(kinds))
    if frequency is not None and frequency != freq:
        raise DataContractError(
            f"holds {freq} periods but the study frequency is {frequency}",
            table=table, column=column, n_rows=int(s.notna().sum()), examples=uniq[:5].tolist(),
            fix="pass the matching frequency= or convert the column.",
        )
    for v in kinds[freq]:
        if v not in mapping:
            try:
                mapping[v] = _period_from_string(str(v), freq)
            except ValueError:
                bad.append(v)
    if bad:
        raise DataContractError(
            "has period values that cannot be read",
            table=table, column=column, n_rows=int(s.isin(bad).sum()), examples=bad,
            fix="check month numbers (1–12) and ISO week numbers (1–53).",
        )
    return freq, mapping


def parse_periods(
    values: pd.Series,
    frequency: str | None = None,
    *,
    table: str = "panel",
    column: str = "period",
) -> tuple[pd.Series, Frequency]:
    """Parse a period column into one frequency.

    Parameters
    ----------
    values
        The raw column.
    frequency
        ``"Q"``, ``"M"``, ``"Y"``, ``"W"``, ``"int"`` or ``None`` to detect it.

    Returns
    -------
    (periods, frequency)
        ``periods`` is a Series of ``period[...]`` dtype (or ``int64`` for integer
        periods) with the index of ``values``.
    """
    frequency = normalise_frequency(frequency, table=table)
    if values.isna().any():
        raise DataContractError(
            "has missing periods",
            table=table, column=column, n_rows=int(values.isna().sum()),
            fix="drop or fill the rows without a period before building the study.",
        )
    freq, mapping = _parse_unique(values, frequency, table=table, column=column)
    if freq == "int":
        return values.astype("int64"), "int"
    if isinstance(values.dtype, pd.PeriodDtype):
        return values, freq  # type: ignore[return-value]
    # map unique → Period, then build a typed PeriodArray from ordinals (fast)
    keys = list(mapping)
    ordinals = np.array([mapping[k].ordinal for k in keys], dtype="int64")  # type: ignore[attr-defined]
    codes = pd.Index(keys).get_indexer(values) if not isinstance(values.dtype, pd.DatetimeTZDtype) else None
    if codes is None or (codes < 0).any():  # values unhashable in Index form: slower path
        out = values.map(mapping)
        return out.astype(pd.PeriodDtype(_PANDAS_FREQ[freq])), freq  # type: ignore[return-value]
    arr = pd.arrays.PeriodArray(ordinals[codes], dtype=pd.PeriodDtype(_PANDAS_FREQ[freq]))
    return pd.Series(arr, index=values.index, name=values.name), freq  # type: ignore[return-value]


def date_to_period(dates: pd.Series, frequency: str) -> pd.Series:
    """The period (at the study frequency) that holds each date."""
    if frequency == "int":
        raise DataContractError(
            "randomization dates cannot be placed in integer periods",
            table="assignment", column="randomization_date",
            fix="give an integer 'randomization_period' column instead of dates.",
        )
    return dates.dt.to_period(_PANDAS_FREQ[frequency])


def period_ordinals(periods: pd.Series) -> np.ndarray:
    """Integer ordinals of a period Series (consecutive periods differ by 1)."""
    if isinstance(periods.dtype, pd.PeriodDtype):
        return periods.array.asi8.copy()
    return periods.to_numpy(dtype="int64")


def period_labels(periods: pd.Series) -> pd.Series:
    """Human-readable labels (``2019Q1``, ``2019-01``, ``2019``, ``2019-W05``)."""
    if not isinstance(periods.dtype, pd.PeriodDtype):
        return periods.astype(str)
    return periods.astype(str)
