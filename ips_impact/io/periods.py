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
from ips_impact.io.codes import used_categories

__all__ = [
    "DATE_ORDERS",
    "PERIOD_FORMATS",
    "parse_dates",
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

# A period string is read into (kind, year, number). Kinds: "Q", "W", "M", "Y" are
# unambiguous; "YN" is a year and a number 1–12 joined by a separator ("2019/1",
# "2019-1", "1/2019"): a month, or a quarter when every number is 1–4 — ambiguous
# unless the study frequency says which. Two digits ("2019-01", "01/2019") are months.
_STRING_FORMS: tuple[tuple[str, re.Pattern[str], tuple[int, int]], ...] = (
    # 2019Q1, 2019-Q1, 2019 T1 (trimestre), 2019K1 (kwartaal)
    ("Q", re.compile(r"^\s*(\d{4})\s*[-_ /.]?\s*[QqTtKk]\s*([1-4])\s*$"), (1, 2)),
    # Q1-2019, T1/2019, K1 2019
    ("Q", re.compile(r"^\s*[QqTtKk]\s*([1-4])\s*[-_ /.]?\s*(\d{4})\s*$"), (2, 1)),
    ("W", re.compile(r"^\s*(\d{4})\s*[-_ ]?\s*[Ww]\s*(\d{1,2})\s*$"), (1, 2)),
    # a single digit after the year: month or quarter; two digits (2019-01) is a month
    ("YN", re.compile(r"^\s*(\d{4})\s*[-_/.]\s*(\d)\s*$"), (1, 2)),
    ("YN", re.compile(r"^\s*(\d)\s*[-_/.]\s*(\d{4})\s*$"), (2, 1)),
    ("M", re.compile(r"^\s*(\d{4})\s*[-_/.]\s*(\d{2})\s*$"), (1, 2)),
    ("M", re.compile(r"^\s*(\d{2})\s*[-_/.]\s*(\d{4})\s*$"), (2, 1)),
    ("M", re.compile(r"^\s*(\d{4})(\d{2})\s*$"), (1, 2)),     # YYYYMM
    ("Q", re.compile(r"^\s*(\d{4})([1-4])\s*$"), (1, 2)),      # YYYYq
    ("Y", re.compile(r"^\s*(\d{4})\s*$"), (1, 1)),
)

#: ``period_format`` spellings of a mapping file → the frequency they imply.
PERIOD_FORMATS: dict[str, str] = {
    "YYYYQq": "Q", "YYYY-Qq": "Q", "YYYY/q": "Q", "YYYY-q": "Q", "YYYYTq": "Q", "YYYYKq": "Q",
    "q/YYYY": "Q", "YYYYq": "Q", "YYYY-MM": "M", "YYYY/MM": "M", "YYYYMM": "M", "MM/YYYY": "M",
    "YYYY": "Y", "YYYY-Www": "W", "int": "int",
}
_FREQ_WORDS = {
    "q": "Q", "quarter": "Q", "quarterly": "Q", "qs": "Q", "q-dec": "Q",
    "m": "M", "month": "M", "monthly": "M", "ms": "M",
    "y": "Y", "a": "Y", "year": "Y", "yearly": "Y", "annual": "Y", "y-dec": "Y",
    "w": "W", "week": "W", "weekly": "W", "w-sun": "W",
    "int": "int", "integer": "int", "i": "int",
}


def normalise_frequency(frequency: str | None, *, table: str = "panel") -> Frequency | None:
    """Map user spellings (``"quarter"``, ``"Q"``, ``"monthly"``, ``"YYYY/q"``…) to a study frequency."""
    if frequency is None:
        return None
    if str(frequency).strip() in PERIOD_FORMATS:
        return PERIOD_FORMATS[str(frequency).strip()]  # type: ignore[return-value]
    key = str(frequency).strip().lower()
    if key not in _FREQ_WORDS:
        raise DataContractError(
            f"unknown frequency {frequency!r}",
            table=table,
            fix=f"pass one of {', '.join(FREQUENCIES)} (or 'quarter', 'month', 'year', 'week', 'integer'), "
                f"or a period format ({', '.join(PERIOD_FORMATS)}).",
        )
    return _FREQ_WORDS[key]  # type: ignore[return-value]


def _read_string(value: str) -> tuple[str, int, int] | None:
    for kind, pattern, (iy, inum) in _STRING_FORMS:
        m = pattern.match(value)
        if m:
            return kind, int(m.group(iy)), int(m.group(inum))
    return None


def _period_of(kind: str, year: int, num: int) -> pd.Period:
    if kind == "Q":
        return pd.Period(year=year, quarter=num, freq="Q-DEC")
    if kind == "M":
        if not 1 <= num <= 12:
            raise ValueError(num)
        return pd.Period(year=year, month=num, freq="M")
    if kind == "Y":
        return pd.Period(year=year, freq="Y-DEC")
    # ISO week: the Monday of that week, as a Monday–Sunday period.
    monday = pd.Timestamp.fromisocalendar(year, num, 1)
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


def _ambiguous_integers(uniq: np.ndarray) -> str | None:
    """'M' if every integer reads as YYYYMM, 'Q' if as YYYYq, else None."""
    if uniq.size == 0:
        return None
    year6, rest6 = np.divmod(uniq, 100)
    if np.all((year6 >= 1900) & (year6 <= 2100) & (rest6 >= 1) & (rest6 <= 12)):
        return "M"
    year5, rest5 = np.divmod(uniq, 10)
    if np.all((year5 >= 1900) & (year5 <= 2100) & (rest5 >= 1) & (rest5 <= 4)):
        return "Q"
    return None


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
        raw = pd.Series(pd.unique(s.dropna()), dtype=s.dtype)
        conv = parse_dates(raw, table=table, column=column)
        uniq = pd.DatetimeIndex(conv.unique())
        dfreq = frequency or _infer_date_frequency(uniq)
        if dfreq is None or dfreq == "int":
            raise DataContractError(
                "holds dates whose frequency cannot be inferred",
                table=table, column=column, n_rows=int(s.notna().sum()),
                examples=[str(d.date()) for d in uniq[:5]],
                fix="pass frequency='Q' (or 'M', 'Y', 'W') to the study.",
            )
        return dfreq, {r: pd.Period(d, freq=_PANDAS_FREQ[dfreq]) for r, d in zip(raw, conv)}
    if pd.api.types.is_bool_dtype(s):
        raise DataContractError(
            "holds true/false values, not periods", table=table, column=column, n_rows=int(s.notna().sum()),
            fix="map the period column of the extract (column names in the mapping file).",
        )
    if pd.api.types.is_integer_dtype(s) or (
        pd.api.types.is_float_dtype(s) and np.all(np.mod(s.dropna().to_numpy(), 1) == 0)
    ):
        uniq = np.unique(s.dropna().to_numpy(dtype="int64"))
        looks = _ambiguous_integers(uniq)
        if frequency is None and looks is not None:
            ex = int(uniq[0])
            reading = (f"month {ex // 100}-{ex % 100:02d}" if looks == "M" else f"quarter {ex // 10}Q{ex % 10}")
            raise DataContractError(
                f"holds integers that read either as integer periods ({ex} is period number {ex}) or as "
                f"{'YYYYMM months' if looks == 'M' else 'YYYYq quarters'} ({ex} is {reading})",
                table=table, column=column, n_rows=int(s.notna().sum()), examples=uniq[:3].tolist(),
                fix=f"say which: frequency = \"{looks}\" (or period_format = "
                    f"\"{'YYYYMM' if looks == 'M' else 'YYYYq'}\") for calendar periods, or frequency = \"int\" "
                    "in the [panel] section of the mapping file (or frequency= of the study).",
            )
        if frequency in (None, "int"):
            return "int", {}
        if frequency == "Y" and np.all((uniq >= 1000) & (uniq <= 9999)):
            return "Y", {v: pd.Period(year=int(v), freq="Y-DEC") for v in s.dropna().unique()}
        if frequency in ("M", "Q") and looks == frequency:
            div = 100 if frequency == "M" else 10
            return frequency, {v: _period_of(frequency, int(v) // div, int(v) % div) for v in s.dropna().unique()}
        raise DataContractError(
            f"holds integers but the study frequency is {frequency}",
            table=table, column=column, n_rows=int(s.notna().sum()),
            examples=s.dropna().unique()[:5].tolist(),
            fix="write periods as '2019Q1' / '2019-01' / '2019-W05' (or YYYYMM / YYYYq integers), "
                "or use frequency='int'.",
        )
    # strings / objects (possibly pandas Period objects in an object column)
    uniq = pd.unique(s.dropna())
    kinds: dict[str, list[object]] = {}
    parsed: dict[object, tuple[str, int, int]] = {}
    mapping: dict[object, object] = {}
    bad: list[object] = []
    date_like: list[object] = []
    for v in uniq:
        if isinstance(v, pd.Period):
            f = _freq_of_period_dtype(pd.PeriodDtype(v.freq))
            kinds.setdefault(f, []).append(v)
            mapping[v] = v
            continue
        if isinstance(v, (pd.Timestamp, np.datetime64)):
            date_like.append(v)
            continue
        txt = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        got = _read_string(txt)
        if got is None:
            date_like.append(v)
            continue
        parsed[v] = got
        kinds.setdefault(got[0], []).append(v)
    if date_like:
        try:
            dates = parse_dates(pd.Series(date_like, dtype=object), table=table, column=column)
        except DataContractError as exc:
            if "cannot be read" not in exc.problem:
                raise
            dates = None
        if dates is None or dates.isna().any():
            bad = date_like if dates is None else [v for v, d in zip(date_like, dates) if pd.isna(d)]
            raise DataContractError(
                "has period values that cannot be read",
                table=table, column=column, n_rows=int(s.isin(bad).sum()), examples=bad,
                fix="write quarters as '2019Q1' (or 2019/1, 2019T1, 1/2019 with frequency = \"Q\"), months "
                    "as '2019-01', years as '2019', ISO weeks as '2019-W05'.",
            )
        datef = frequency or _infer_date_frequency(pd.DatetimeIndex(dates))
        if datef is None or datef == "int":
            raise DataContractError(
                "holds dates whose frequency cannot be inferred",
                table=table, column=column, n_rows=int(s.isin(date_like).sum()),
                examples=[str(d.date()) for d in dates[:5]], fix="pass frequency='Q' (or 'M', 'Y', 'W') to the study.",
            )
        for v, d in zip(date_like, dates):
            mapping[v] = pd.Period(d, freq=_PANDAS_FREQ[datef])
        kinds.setdefault(datef, [])
    if "YN" in kinds:
        nums = {parsed[v][2] for v in kinds["YN"]}
        if frequency == "Q":
            target = "Q"
        elif frequency == "M" or (frequency is None and max(nums) > 4):
            target = "M"
        elif frequency is None and len(kinds) > 1:
            target = "M"  # reported as a mix below
        elif frequency is None:
            ex_yn = kinds["YN"][0]
            _, yy, nn = parsed[ex_yn]
            raise DataContractError(
                f"holds periods like {str(ex_yn)!r} whose number after the year is only 1–4: "
                f"{str(ex_yn)!r} reads as quarter {yy}Q{nn} or as month {yy}-{nn:02d}",
                table=table, column=column, n_rows=int(s.isin(kinds["YN"]).sum()), examples=kinds["YN"][:3],
                fix="say which: frequency = \"Q\" (quarters) or frequency = \"M\" (months) in the [panel] "
                    "section of the mapping file (or frequency= of the study).",
            )
        else:
            target = frequency
        for v in kinds.pop("YN"):
            _, yy, nn = parsed[v]
            parsed[v] = (target, yy, nn)
            kinds.setdefault(target, []).append(v)
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
            _, yy, nn = parsed[v]
            try:
                mapping[v] = _period_of(freq, yy, nn)
            except ValueError:
                bad.append(v)
    if bad:
        raise DataContractError(
            "has period values that cannot be read",
            table=table, column=column, n_rows=int(s.isin(bad).sum()), examples=bad,
            fix="check month numbers (1–12), quarter numbers (1–4) and ISO week numbers (1–53).",
        )
    return freq, mapping


# ---------------------------------------------------------------------------- dates
DATE_ORDERS = ("DMY", "MDY", "YMD")
_DMY = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[ T].*)?$")
_YMD = re.compile(r"^\s*(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})(?:[ T].*)?$")
_YYYYMMDD = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_SERIAL = re.compile(r"^\s*(\d{5})(?:\.0+)?\s*$")
#: Excel serial day numbers accepted as dates: 1927-05-18 (10000) to 2173-10-14 (99999).
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")


def _valid_ymd(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    ok = (m >= 1) & (m <= 12) & (d >= 1) & (d <= 31) & (y >= 1900) & (y <= 2100)
    days = pd.to_datetime(pd.DataFrame({"year": np.where(ok, y, 2000), "month": np.where(ok, m, 1),
                                        "day": 1})).dt.days_in_month.to_numpy()
    return ok & (d <= days)


def _from_ymd(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(pd.DataFrame({"year": y, "month": m, "day": d})))


def _numbers_to_dates(vals: np.ndarray, *, table: str, column: str, n_rows: int) -> pd.DatetimeIndex:
    """Integers as YYYYMMDD (8 digits) or Excel serial day numbers (5 digits)."""
    if not np.all(np.mod(vals, 1) == 0):
        raise DataContractError(
            "holds numbers with decimals where dates are expected", table=table, column=column, n_rows=n_rows,
            examples=[v for v in vals[np.mod(vals, 1) != 0][:3]],
            fix="write dates as YYYY-MM-DD (or YYYYMMDD integers, or Excel dates).",
        )
    iv = vals.astype("int64")
    y, rest = np.divmod(iv, 10_000)
    m, d = np.divmod(rest, 100)
    is_ymd = (iv >= 10_000_000) & _valid_ymd(y, m, d)
    is_serial = (iv >= 10_000) & (iv <= 99_999)
    neither = ~is_ymd & ~is_serial
    if neither.any() or (is_ymd.any() and is_serial.any()):
        raise DataContractError(
            "holds numbers that are neither YYYYMMDD dates (e.g. 20180502) nor Excel serial dates "
            "(e.g. 43222 = 2018-05-02), or mixes both",
            table=table, column=column, n_rows=int(neither.sum()) or n_rows, examples=iv[neither][:3].tolist(),
            fix="write dates as YYYY-MM-DD text, or one numeric form for the whole column.",
        )
    if is_ymd.all():
        return _from_ymd(y, m, d)
    return pd.DatetimeIndex(_EXCEL_EPOCH + pd.to_timedelta(iv, unit="D"))


def parse_dates(
    values: pd.Series,
    *,
    order: str | None = None,
    table: str = "assignment",
    column: str = "randomization_date",
) -> pd.Series:
    """Read a date column as it comes in an administrative delivery.

    Accepts datetimes (time-zone aware ones are taken at their local wall-clock date),
    ISO text (``2018-05-02``), day-first or month-first text (``02/05/2018``,
    ``02.05.2018``), ``YYYYMMDD`` integers or text, and Excel serial day numbers
    (``43222``). Missing values stay missing (``NaT``).

    Parameters
    ----------
    order
        ``"DMY"`` (Belgian ``dd/mm/yyyy``), ``"MDY"`` or ``"YMD"``; needed only when the
        values cannot tell: when no day exceeds 12, ``02/05/2018`` is refused rather
        than guessed.

    Returns
    -------
    pandas.Series
        ``datetime64[ns]``, normalised to midnight, index of ``values``.

    Raises
    ------
    DataContractError
        For unreadable values, a mix of day-first and month-first values, or an
        ambiguous column without ``order`` (the message shows both readings).
    """
    if order is not None:
        order = str(order).strip().upper().replace("/", "").replace("-", "")
        if order not in DATE_ORDERS:
            raise DataContractError(f"unknown date order {order!r}", table=table, column=column,
                                    fix=f"use one of {', '.join(DATE_ORDERS)} (DMY = dd/mm/yyyy).")
    s = values
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return pd.Series(s.dt.tz_localize(None).dt.normalize().to_numpy(), index=s.index, name=s.name)
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.normalize()
    if pd.api.types.is_bool_dtype(s):
        raise DataContractError("holds true/false values where dates are expected", table=table, column=column,
                                n_rows=len(s), fix="map the date column of the extract.")
    notna = s.notna()
    if pd.api.types.is_numeric_dtype(s):
        uniq = np.unique(s[notna].to_numpy(dtype="float64"))
        if not np.all(np.isfinite(uniq)):
            raise DataContractError("holds infinite values where dates are expected", table=table, column=column,
                                    n_rows=int(np.isinf(s.to_numpy(dtype=float)).sum()),
                                    fix="correct or empty those cells.")
        conv = _numbers_to_dates(uniq, table=table, column=column, n_rows=int(notna.sum()))
        lookup = dict(zip(uniq.tolist(), conv))
        out = s.map(lambda v: lookup.get(float(v), pd.NaT) if pd.notna(v) else pd.NaT)
        return pd.Series(pd.DatetimeIndex(out), index=s.index, name=s.name)
    uniq = pd.unique(s[notna])
    result: dict[object, pd.Timestamp] = {}
    dm: list[tuple[object, int, int, int]] = []
    bad: list[object] = []
    for v in uniq:
        if isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "year"):
            ts = pd.Timestamp(v)
            result[v] = (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()
            continue
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            try:
                result[v] = _numbers_to_dates(np.array([float(v)]), table=table, column=column, n_rows=1)[0]
            except DataContractError:
                bad.append(v)
            continue
        txt = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        if m := _YMD.match(txt):
            y, mo, d = (int(g) for g in m.groups())
            if order in (None, "YMD") and _valid_ymd(np.array([y]), np.array([mo]), np.array([d]))[0]:
                result[v] = _from_ymd(np.array([y]), np.array([mo]), np.array([d]))[0]
                if "T" in txt or ":" in txt:  # keep the local wall-clock date of a timestamp
                    try:
                        ts = pd.Timestamp(txt)
                        result[v] = (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()
                    except ValueError:
                        pass
            else:
                bad.append(v)
        elif m := _DMY.match(txt):
            a, b, y = (int(g) for g in m.groups())
            dm.append((v, a, b, y))
        elif m := _YYYYMMDD.match(txt):
            y, mo, d = (int(g) for g in m.groups())
            if _valid_ymd(np.array([y]), np.array([mo]), np.array([d]))[0]:
                result[v] = _from_ymd(np.array([y]), np.array([mo]), np.array([d]))[0]
            else:
                bad.append(v)
        elif m := _SERIAL.match(txt):
            result[v] = _EXCEL_EPOCH + pd.Timedelta(days=int(m.group(1)))
        else:
            bad.append(v)
    if dm:
        first = np.array([t[1] for t in dm])
        second = np.array([t[2] for t in dm])
        year = np.array([t[3] for t in dm])
        if order in (None,):
            day_first = bool((first > 12).any())
            month_first = bool((second > 12).any())
            if day_first and month_first:
                ex1 = dm[int(np.argmax(first > 12))][0]
                ex2 = dm[int(np.argmax(second > 12))][0]
                raise DataContractError(
                    f"mixes day-first and month-first dates ({str(ex1)!r} must be dd/mm, {str(ex2)!r} mm/dd)",
                    table=table, column=column, n_rows=len(s), fix="write one date order for the whole column "
                    "(ISO YYYY-MM-DD is best) and set date_order in the mapping file.",
                )
            if not day_first and not month_first:
                ex = dm[0]
                dmy = pd.Timestamp(year=ex[3], month=ex[2], day=ex[1])
                mdy = pd.Timestamp(year=ex[3], month=ex[1], day=ex[2])
                raise DataContractError(
                    f"holds dates like {str(ex[0])!r} where no day exceeds 12, so the order cannot be told "
                    f"from the values: {str(ex[0])!r} reads as {dmy:%d %B %Y} (day first, Belgian dd/mm/yyyy) "
                    f"or {mdy:%d %B %Y} (month first)",
                    table=table, column=column, n_rows=int(s.isin([t[0] for t in dm]).sum()),
                    fix='say which: date_order = "DMY" (or "MDY") in the mapping file, or write ISO dates '
                        "(YYYY-MM-DD).",
                )
            order_used = "DMY" if day_first else "MDY"
        else:
            order_used = order
        if order_used == "YMD":
            bad.extend(t[0] for t in dm)
        else:
            d_, m_ = (first, second) if order_used == "DMY" else (second, first)
            ok = _valid_ymd(year, m_, d_)
            if (~ok).any():
                bad.extend(t[0] for t, good in zip(dm, ok) if not good)
            if ok.any():
                conv = _from_ymd(year[ok], m_[ok], d_[ok])
                for t, ts in zip([t for t, good in zip(dm, ok) if good], conv):
                    result[t[0]] = ts
    if bad:
        raise DataContractError(
            "has dates that cannot be read" + (f" in the order {order}" if order else ""),
            table=table, column=column, n_rows=int(s.isin(bad).sum()), examples=bad,
            fix="write dates as YYYY-MM-DD (dd/mm/yyyy with date_order = \"DMY\", YYYYMMDD integers and "
                "Excel dates are read too).",
        )
    out = s.map(lambda v: result.get(v, pd.NaT) if pd.notna(v) else pd.NaT)
    return pd.Series(pd.DatetimeIndex(out), index=s.index, name=s.name)


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
    if isinstance(values.dtype, pd.CategoricalDtype) and not values.cat.codes.lt(0).any():
        # periods held as codes: read each distinct value once, spread by the codes (the
        # categories as objects, so they are read exactly as an object column would be)
        codes = values.cat.codes.to_numpy()
        cats = values.cat.categories
        used = used_categories(values)
        distinct = pd.Series(cats.to_numpy(dtype=object)[used], dtype=object)
        try:
            parsed, got = parse_periods(distinct, frequency, table=table, column=column)
        except DataContractError:  # the message counts rows: say it from the rows
            return parse_periods(values.astype(object), frequency, table=table, column=column)
        if isinstance(parsed.dtype, pd.PeriodDtype):
            by_cat = np.zeros(len(cats), dtype="int64")
            by_cat[used] = parsed.array.asi8
            arr = pd.arrays.PeriodArray(by_cat[codes], dtype=parsed.dtype)
            return pd.Series(arr, index=values.index, name=values.name), got
        by_cat = np.zeros(len(cats), dtype=parsed.dtype)
        by_cat[used] = parsed.to_numpy()
        return pd.Series(by_cat[codes], index=values.index, name=values.name), got
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
    """Return the period (at the study frequency) that holds each date."""
    if frequency == "int":
        raise DataContractError(
            "randomization dates cannot be placed in integer periods",
            table="assignment", column="randomization_date",
            fix="give an integer 'randomization_period' column instead of dates.",
        )
    if frequency in _MONTHS_PER and isinstance(dates.dtype, np.dtype) and dates.dtype.kind == "M":
        # a quarter, month or year ordinal counts from 1970's first: (months since
        # 1970-01) // months per period (floor division, so also before 1970), the
        # ordinals ``dt.to_period`` gives, without its per-date conversion
        day = dates.to_numpy()
        months = day.astype("datetime64[M]").astype(np.int64)
        ords = np.where(np.isnat(day), np.iinfo(np.int64).min, months // _MONTHS_PER[frequency])
        arr = pd.arrays.PeriodArray(ords, dtype=pd.PeriodDtype(_PANDAS_FREQ[frequency]))
        return pd.Series(arr, index=dates.index, name=dates.name)
    return dates.dt.to_period(_PANDAS_FREQ[frequency])


#: Months in one period of the frequencies whose ordinals are month counts
_MONTHS_PER = {"M": 1, "Q": 3, "Y": 12}


def period_ordinals(periods: pd.Series) -> np.ndarray:
    """Integer ordinals of a period Series (consecutive periods differ by 1), read-only.

    For periods, a view of the ordinals the Series holds, not a copy (15 M panel rows:
    120 MB not allocated); it is read-only, so nothing can write into the Series.
    """
    if isinstance(periods.dtype, pd.PeriodDtype):
        out = periods.array.asi8.view()
    else:
        out = periods.to_numpy(dtype="int64").view()  # a view: the flag never reaches the Series' array
    out.flags.writeable = False
    return out


def period_labels(periods: pd.Series) -> pd.Series:
    """Human-readable labels (``2019Q1``, ``2019-01``, ``2019``, ``2019-W05``)."""
    if not isinstance(periods.dtype, pd.PeriodDtype):
        return periods.astype(str)
    return periods.astype(str)
