"""The frozen base of every result: tidy schema, summary, HTML, JSON, spec, warnings, ledger.

Every estimator of :mod:`ips_impact` returns a frozen dataclass built on
:class:`ResultBase`. This module fixes what they have in common so that a result of
any family can be tidied, compared, adjusted for multiple testing and saved the same way.

Building a new result family (for other modules of the package)
---------------------------------------------------------------
1. Decorate the class with :func:`result_dataclass` (frozen, keyword-only fields,
   identity equality, no generated ``repr``) and inherit from :class:`ResultBase`.
2. Implement ``_tidy_rows(self) -> list[dict]``: one dict per estimand row, with the
   keys of :data:`TIDY_COLUMNS` (build them with :func:`make_row`, which derives the
   statistic, p-value and confidence interval from estimate, standard error and df).
3. Optionally override ``_summary_title`` and ``_summary_lines`` for ``.summary()``.
4. If you define ``__post_init__``, call ``super().__post_init__()`` first: it freezes
   every field (DataFrames and arrays become read-only copies, mappings become
   read-only mappings, lists become tuples) and refuses person keys.

Results never change. :func:`with_ri` and :func:`with_adjusted_pvalues` (or
:func:`dataclasses.replace`) return a *new* result; the optional tidy columns
``ri_p_value``, ``ri_se``, ``ri_conf_low``, ``ri_conf_high``, ``adj_p_value`` and
``family`` live in the ``annotations``
field (one value per tidy row) and appear in ``.tidy()`` only when set; so do
``ri_conf_low`` and ``ri_conf_high``, a randomization confidence interval obtained by
inverting the randomization test over hypothesised constant effects.

Conventions of the tidy table
-----------------------------
``term`` is the regressor whose coefficient is the effect (``"arm"``; for ``late`` the
take-up column). ``estimand`` is a short code: ``"itt"``, ``"late"``, ``"lee_lower"``,
``"lee_upper"``, ``"balance"``, ``"spillover"``, ``"subgroup"``… ``horizon`` is the event
time ``k`` (int) of a horizon, the label ``"a:b"`` of a window, or ``None``. ``df`` is
the degrees of freedom of the reference t distribution; ``inf`` means a normal
reference. ``control_mean`` is the mean outcome of the control arm in the estimation
sample.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar, dataclass_transform

import numpy as np
import pandas as pd

from ips_impact.errors import DisclosureError, EstimationError
from ips_impact.inference.wald import (  # noqa: F401  (public names of the results)
    _check_level,
    critical_value,
    two_sided_p,
    wald_inference,
)

__all__ = [
    "TIDY_COLUMNS",
    "OPTIONAL_TIDY_COLUMNS",
    "LEDGER_COLUMNS",
    "PERSON_KEY_COLUMNS",
    "ResultBase",
    "result_dataclass",
    "make_row",
    "wald_inference",
    "two_sided_p",
    "critical_value",
    "horizon_label",
    "with_ri",
    "with_adjusted_pvalues",
    "freeze",
    "frozen_frame",
    "FrozenMapping",
    "to_jsonable",
]

#: Columns of every ``.tidy()`` table, in this order.
TIDY_COLUMNS: tuple[str, ...] = (
    "outcome",
    "term",
    "estimand",
    "horizon",
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "conf_low",
    "conf_high",
    "df",
    "nobs",
    "n_treated",
    "n_control",
    "control_mean",
)

#: Columns appended to ``.tidy()`` (in this order) only when a result carries them.
OPTIONAL_TIDY_COLUMNS: tuple[str, ...] = (
    "ri_p_value",
    "ri_se",
    "ri_conf_low",
    "ri_conf_high",
    "adj_p_value",
    "family",
)

#: Columns of a result's ``.ledger`` (rows set aside by the estimator).
LEDGER_COLUMNS: tuple[str, ...] = ("reason", "n_rows", "n_treated", "n_control")

#: Column names that would carry a person or household key; refused in any result.
PERSON_KEY_COLUMNS: frozenset[str] = frozenset(
    {"person_id", "index_person_id", "household_id", "employer_id"}
)

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, kw_only_default=True, eq_default=False)
def result_dataclass(cls: type[_T]) -> type[_T]:
    """Decorate a result class: frozen, keyword-only, identity equality, base ``repr``.

    ``eq=False`` because results hold DataFrames (whose ``==`` is element-wise);
    ``repr=False`` so that :meth:`ResultBase.__repr__` (a short summary) is kept.
    """
    return dataclasses.dataclass(frozen=True, kw_only=True, eq=False, repr=False)(cls)


# --------------------------------------------------------------------------- freezing


class FrozenMapping(Mapping):
    """A read-only mapping (like :class:`types.MappingProxyType`, but picklable).

    Results are pickled by multiprocessing and caches; a mapping proxy cannot be.
    """

    __slots__ = ("_data",)
    _data: dict[Any, Any]

    def __init__(self, data: Mapping[Any, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a FrozenMapping cannot be changed")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMapping, (self._data,))

    def __repr__(self) -> str:
        return f"FrozenMapping({self._data!r})"

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))


def frozen_frame(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Return a copy of ``frame`` whose data cannot be changed in place.

    Every column is copied into a read-only NumPy array, so that ``.loc``/``.iloc``
    assignment or writing through ``.to_numpy()`` raises instead of silently changing
    a result.
    """
    if isinstance(frame, pd.Series):
        arr = frame.to_numpy(copy=True)
        arr.setflags(write=False)
        return pd.Series(arr, index=frame.index.copy(), name=frame.name, copy=False)
    dtypes = set(frame.dtypes)
    if len(dtypes) == 1 and frame.shape[1] > 0 and all(
        isinstance(d, np.dtype) and d.kind in "fiub" for d in dtypes
    ):
        # one numeric block (coefficient tables, covariance matrices): one read-only array
        arr = frame.to_numpy(copy=True)
        arr.setflags(write=False)
        return pd.DataFrame(arr, index=frame.index.copy(), columns=frame.columns.copy(), copy=False)
    if frame.columns.has_duplicates:
        raise EstimationError(
            "a result table has duplicate column names",
            column=[str(c) for c in frame.columns[frame.columns.duplicated()]],
            fix="give every column of the table a distinct name.",
        )
    cols: dict[Any, np.ndarray] = {}
    for col, series in frame.items():  # distinct names: one Series per column, no positional lookups
        arr = series.to_numpy(copy=True)
        arr.setflags(write=False)
        cols[col] = arr
    out = pd.DataFrame(cols, index=frame.index.copy(), columns=frame.columns, copy=False)
    return out


#: Types that are immutable as they are: freeze returns them and the key check skips them
#: before any ``isinstance`` test (the ABC checks cost ~1 µs each, and a result's spec
#: holds dozens of them: the event times of an ``itt_by_period``)
_ATOMS: frozenset[type] = frozenset({str, int, float, bool, type(None), complex, bytes})


def _atoms(value: tuple[Any, ...]) -> bool:
    """Tell whether every element of a plain tuple is an atom (the tuple is already frozen)."""
    return all(type(v) in _ATOMS for v in value)


def freeze(value: Any) -> Any:
    """Return an immutable (or read-only) equivalent of ``value``.

    DataFrames/Series → read-only copies; arrays → read-only copies; mappings →
    :class:`FrozenMapping` of frozen values; lists/tuples → tuples; sets →
    frozensets. Other values are returned as they are.
    """
    kind = type(value)
    if kind in _ATOMS or (kind is tuple and _atoms(value)):
        return value
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return frozen_frame(value)
    if isinstance(value, np.ndarray):
        arr = value.copy()
        arr.setflags(write=False)
        return arr
    if isinstance(value, Mapping):
        return FrozenMapping({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    return value


def _check_no_person_key(value: Any, where: str) -> None:
    """Refuse a table that holds a person or household key (disclosure control)."""
    kind = type(value)
    if kind in _ATOMS or (kind is tuple and _atoms(value)):
        return
    if isinstance(value, (pd.DataFrame, pd.Series)):
        labels = list(value.columns) if isinstance(value, pd.DataFrame) else [value.name]
        names = {str(c) for c in labels} | {str(n) for n in value.index.names}
        bad = sorted(names & PERSON_KEY_COLUMNS)
        if bad:
            raise DisclosureError(
                f"result field '{where}' holds a person or household key",
                column=bad,
                fix="aggregate before building a result; no key may reach a result.",
            )
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_no_person_key(v, f"{where}.{k}")
    elif isinstance(value, tuple):
        for i, v in enumerate(value):
            _check_no_person_key(v, f"{where}[{i}]")


def _normalise_ledger(ledger: Any) -> pd.DataFrame:
    """Ledger as a DataFrame with at least :data:`LEDGER_COLUMNS` (empty if none)."""
    if ledger is None:
        frame = pd.DataFrame({c: pd.Series([], dtype="int64") for c in LEDGER_COLUMNS})
        frame["reason"] = frame["reason"].astype(object)
        return frame
    if isinstance(ledger, pd.DataFrame):
        index = ledger.index
        plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None
        # the frame is frozen (copied) after this: no copy here when there is nothing to change
        frame = ledger if plain else ledger.reset_index(drop=True)
    else:
        records = list(ledger)
        if not records:
            return _normalise_ledger(None)
        keys = list(dict.fromkeys(k for r in records for k in r))
        frame = pd.DataFrame({k: [r.get(k) for r in records] for k in keys})
    missing = [c for c in LEDGER_COLUMNS if c not in frame.columns]
    if missing:
        raise EstimationError(
            "a result ledger lacks required columns",
            column=missing,
            fix=f"build the ledger with the columns {', '.join(LEDGER_COLUMNS)}.",
        )
    rest = [c for c in frame.columns if c not in LEDGER_COLUMNS]
    ordered = list(LEDGER_COLUMNS) + rest
    if list(frame.columns) == ordered:
        return frame
    return frame[ordered]


# -------------------------------------------------------------------------- inference


def horizon_label(horizon: int | None = None, window: Sequence[int] | None = None) -> Any:
    """Tidy ``horizon`` value: the int ``k`` of a horizon, ``"a:b"`` for a window, else None."""
    if horizon is not None and window is not None:
        raise EstimationError(
            "give either horizon= or window=, not both",
            fix="use horizon=k for one event time or window=(a, b) for a range.",
        )
    if horizon is not None:
        return int(horizon)
    if window is not None:
        a, b = window
        return f"{int(a)}:{int(b)}"
    return None


def _df_value(df: float | None) -> float:
    return math.inf if df is None else float(df)


def make_row(
    *,
    outcome: str,
    estimate: float,
    std_error: float,
    nobs: int,
    n_treated: int,
    n_control: int,
    term: str = "arm",
    estimand: str = "itt",
    horizon: Any = None,
    df: float | None = None,
    control_mean: float = math.nan,
    level: float = 0.95,
    statistic: float | None = None,
    p_value: float | None = None,
    conf_low: float | None = None,
    conf_high: float | None = None,
) -> dict[str, Any]:
    """One tidy row (a dict with the keys of :data:`TIDY_COLUMNS`).

    Statistic, p-value and interval default to the Wald values of
    :func:`wald_inference` with reference t(``df``) (normal when ``df`` is None);
    pass them explicitly when the estimator uses another reference (e.g. an
    Imbens–Manski interval).
    """
    stat, p, lo, hi = wald_inference(estimate, std_error, df, level)
    return {
        "outcome": str(outcome),
        "term": str(term),
        "estimand": str(estimand),
        "horizon": horizon,
        "estimate": float(estimate),
        "std_error": float(std_error),
        "statistic": float(stat if statistic is None else statistic),
        "p_value": float(p if p_value is None else p_value),
        "conf_low": float(lo if conf_low is None else conf_low),
        "conf_high": float(hi if conf_high is None else conf_high),
        "df": _df_value(df),
        "nobs": int(nobs),
        "n_treated": int(n_treated),
        "n_control": int(n_control),
        "control_mean": float(control_mean),
    }


# ----------------------------------------------------------------------------- JSON


def to_jsonable(value: Any) -> Any:
    """Convert ``value`` to plain JSON types, deterministically.

    NaN → ``None``; ±inf → ``"inf"``/``"-inf"``; NumPy scalars → Python scalars;
    arrays/tuples → lists; DataFrames → ``{"columns", "index", "data"}`` (row-major);
    Series → ``{"index", "data"}``; periods/timestamps → ISO strings; mappings → dicts
    with string keys in insertion order.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, pd.DataFrame):
        return {
            "columns": [to_jsonable(c) for c in value.columns],
            "index": [to_jsonable(i) for i in value.index],
            "data": [[to_jsonable(v) for v in row] for row in value.itertuples(index=False)],
        }
    if isinstance(value, pd.Series):
        return {
            "name": to_jsonable(value.name),
            "index": [to_jsonable(i) for i in value.index],
            "data": [to_jsonable(v) for v in value.tolist()],
        }
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, (pd.Timestamp, pd.Period)):
        return str(value)
    if value is pd.NaT:
        return None
    if dataclasses.is_dataclass(value) and hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


# ----------------------------------------------------------------------- formatting


def _fmt_num(x: Any, digits: int = 4) -> str:
    if x is None:
        return ""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}f}"
    return str(x)


def _fmt_p(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    v = float(x)
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _fmt_horizon(x: Any) -> str:
    """Return a tidy ``horizon`` as text: ``6`` (also when pandas made it ``6.0``), ``"4:8"``, or ``""``.

    A column mixing horizons with ``None`` (e.g. survival rows at ``tau`` next to a
    median difference) is float in pandas; an event time is still shown as an integer.
    """
    if x is None or x is pd.NaT:
        return ""
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() else f"{v:g}"
    if isinstance(x, (np.integer,)):
        return str(int(x))
    return str(x)


def _p_clause(x: Any) -> str:
    """Return a p-value in a sentence: ``"p = 0.021"``, ``"p < 0.001"`` (never ``"p = 0.000"``)."""
    if x is None or (isinstance(x, (float, np.floating)) and math.isnan(x)):
        return "p = n/a"
    v = float(x)
    return "p < 0.001" if v < 0.001 else f"p = {v:.3f}"


#: Tidy columns of a summary table (HTML and text alike).
_SUMMARY_COLUMNS: tuple[str, ...] = (
    "outcome", "term", "estimand", "horizon", "estimate", "std_error", "p_value", "conf_low",
    "conf_high", "nobs", "n_treated", "n_control", "control_mean",
)


def _text_table(frame: pd.DataFrame) -> str:
    """Deterministic fixed-width text rendering of a tidy-like table."""
    shown = frame.copy()
    for col in shown.columns:
        if col == "horizon":
            shown[col] = [_fmt_horizon(v) for v in shown[col].tolist()]
        elif col in ("p_value", "ri_p_value", "adj_p_value"):
            shown[col] = [_fmt_p(v) for v in shown[col]]
        elif col in ("nobs", "n_treated", "n_control"):
            shown[col] = [_fmt_num(v) for v in shown[col]]
        elif col == "df":
            shown[col] = [_fmt_num(v, 1) for v in shown[col]]
        else:
            shown[col] = [
                _fmt_num(v) if not isinstance(v, str) else v for v in shown[col].tolist()
            ]
    return shown.to_string(index=False)


# ---------------------------------------------------------------------------- base


@result_dataclass
class ResultBase:
    """Common fields and behaviour of every result (see the module docstring).

    Parameters
    ----------
    spec
        The options that produced the result (outcome, horizon, covariates,
        cov_type…): a read-only mapping, enough to refit the same model.
    warnings
        Messages the estimator raised as warnings (tuple of str).
    ledger
        Rows set aside by the estimator: ``reason, n_rows, n_treated, n_control``
        (and possibly ``table``, ``column``). Never holds person keys.
    annotations
        Optional tidy columns (keys among :data:`OPTIONAL_TIDY_COLUMNS`), each a
        tuple with one value per tidy row. Set with :func:`with_ri` /
        :func:`with_adjusted_pvalues`, never by hand.
    """

    spec: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    ledger: pd.DataFrame | None = None
    annotations: Mapping[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Freeze every field so that a result can never drift from what produced it.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "ledger":
                value = _normalise_ledger(value)
            elif f.name == "warnings":
                if isinstance(value, str):
                    value = (value,)
                value = tuple(str(w) for w in value)
            elif f.name == "annotations":
                bad = [k for k in value if k not in OPTIONAL_TIDY_COLUMNS]
                if bad:
                    raise EstimationError(
                        f"unknown annotation column(s) {bad}",
                        fix=f"use only {', '.join(OPTIONAL_TIDY_COLUMNS)}.",
                    )
                value = {k: tuple(v) for k, v in value.items()}
            _check_no_person_key(value, f.name)
            object.__setattr__(self, f.name, freeze(value))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild through the constructor, so that an unpickled (or deep-copied) result
        # is frozen again: NumPy arrays come back writeable from a pickle.
        return (_rebuild_result, (type(self), {f.name: getattr(self, f.name)
                                               for f in dataclasses.fields(self)}))

    # ---- to be provided by subclasses
    def _tidy_rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _summary_title(self) -> str:
        return type(self).__name__

    def _summary_lines(self) -> list[str]:
        return []

    # ---- common behaviour
    def tidy(self) -> pd.DataFrame:
        """Return the result as a DataFrame with the columns of :data:`TIDY_COLUMNS`.

        Optional columns (:data:`OPTIONAL_TIDY_COLUMNS`: ``ri_p_value``, ``ri_se``,
        ``ri_conf_low``, ``ri_conf_high``, ``adj_p_value``, ``family``) are appended, in
        that order, when set. A new DataFrame on each call.
        """
        rows = self._tidy_rows()
        frame = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
        if len(frame):
            for col in ("nobs", "n_treated", "n_control"):
                frame[col] = frame[col].astype("int64")
        for col in OPTIONAL_TIDY_COLUMNS:
            if col in self.annotations:
                vals = self.annotations[col]
                if len(vals) != len(frame):
                    raise EstimationError(
                        f"annotation '{col}' has {len(vals)} values for {len(frame)} tidy rows",
                        fix="give one value per row of .tidy().",
                    )
                frame[col] = list(vals)
        return frame

    @property
    def n_rows(self) -> int:
        """Number of rows of :meth:`tidy`."""
        return len(self._tidy_rows())

    def summary(self) -> str:
        """Return a plain-text summary: title, tidy table, notes, warnings and set-aside rows."""
        lines = [self._summary_title()]
        lines.append("=" * len(lines[0]))
        tidy = self.tidy()
        keep = [
            c
            for c in (
                "outcome", "term", "estimand", "horizon", "estimate", "std_error",
                "p_value", "conf_low", "conf_high", "nobs", "n_treated", "n_control",
                "control_mean", *OPTIONAL_TIDY_COLUMNS,
            )
            if c in tidy.columns
        ]
        lines.append(_text_table(tidy[keep]))
        extra = self._summary_lines()
        if extra:
            lines.append("")
            lines.extend(extra)
        lines.extend(self._notice_lines())
        return "\n".join(lines)

    def _notice_lines(self) -> list[str]:
        """Return the end of every summary: warnings, then the rows set aside (the ledger)."""
        lines: list[str] = []
        if self.warnings:
            lines.append("")
            lines.append("Warnings:")
            lines.extend(f"  - {w}" for w in self.warnings)
        ledger = self.ledger
        assert ledger is not None  # __post_init__ turns None into an empty frame
        if len(ledger):
            lines.append("")
            lines.append("Rows set aside:")
            for row in ledger.itertuples(index=False):
                lines.append(
                    f"  - {row.reason}: {int(row.n_rows)} "
                    f"(treated {int(row.n_treated)}, control {int(row.n_control)})"
                )
        return lines

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self._summary_title()}>"

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        """HTML rendering for notebooks: what :meth:`summary` shows, as HTML."""
        tidy = self.tidy()
        parts = [f"<h4>{html.escape(self._summary_title())}</h4>"]
        # the columns summary() shows (no statistic, no raw df with four decimals)
        shown = tidy[[c for c in _SUMMARY_COLUMNS + OPTIONAL_TIDY_COLUMNS if c in tidy.columns]].copy()
        for col in ("p_value", "ri_p_value", "adj_p_value"):
            if col in shown:
                shown[col] = [_fmt_p(v) for v in shown[col]]
        if "horizon" in shown:
            shown["horizon"] = [_fmt_horizon(v) for v in shown["horizon"].tolist()]
        for col in ("nobs", "n_treated", "n_control"):
            if col in shown:
                shown[col] = [_fmt_num(v, 0) for v in shown[col]]
        parts.append(
            shown.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="")
        )
        extra = self._summary_lines()
        if extra:
            parts.append("<pre>" + html.escape("\n".join(extra)) + "</pre>")
        if self.warnings:
            items = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
            parts.append(f"<p><b>Warnings</b></p><ul>{items}</ul>")
        ledger = self.ledger
        assert ledger is not None  # __post_init__ turns None into an empty frame
        if len(ledger):
            parts.append("<p><b>Rows set aside</b></p>")
            parts.append(ledger.to_html(index=False))
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, deterministic dictionary: type, tidy rows and every field.

        ``json.dumps(result.to_dict())`` always works; the same result gives the same
        dictionary (NaN becomes ``None``, infinities the strings ``"inf"``/``"-inf"``).
        """
        out: dict[str, Any] = {"type": type(self).__name__}
        out["tidy"] = [to_jsonable(r) for r in self.tidy().to_dict(orient="records")]
        for f in dataclasses.fields(self):
            out[f.name] = to_jsonable(getattr(self, f.name))
        return out

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string with sorted keys (byte-stable)."""
        kwargs.setdefault("sort_keys", True)
        return json.dumps(self.to_dict(), **kwargs)


def _rebuild_result(cls: type, fields: dict[str, Any]) -> Any:
    return cls(**fields)


# ----------------------------------------------------------------------- annotating


def _per_row(result: ResultBase, name: str, values: Any, *, probability: bool) -> tuple:
    n = result.n_rows
    if np.ndim(values) == 0:
        vals = [values]
    else:
        vals = list(values)
    if len(vals) != n:
        raise EstimationError(
            f"{name} has {len(vals)} value(s) but the result has {n} tidy row(s)",
            fix="give one value per row of result.tidy(), in its order.",
        )
    if name == "family":
        return tuple(None if v is None else str(v) for v in vals)
    out = []
    for v in vals:
        x = math.nan if v is None else float(v)
        if probability and not math.isnan(x) and not (0.0 <= x <= 1.0):
            raise EstimationError(
                f"{name} must lie in [0, 1]; got {x}",
                fix="pass p-values, not statistics.",
            )
        out.append(x)
    return tuple(out)


def with_ri(
    result: ResultBase,
    ri_p_value: float | Iterable[float],
    ri_se: float | Iterable[float] | None = None,
    *,
    ri_conf_low: float | Iterable[float] | None = None,
    ri_conf_high: float | Iterable[float] | None = None,
) -> ResultBase:
    r"""Return a new result carrying randomization-inference numbers (one value per tidy row).

    Parameters
    ----------
    result
        The result to annotate; it is not changed.
    ri_p_value
        Randomization p-value of each tidy row (in ``[0, 1]``; NaN/None where none).
    ri_se
        Monte Carlo standard error of each p-value; ``None`` when the randomization
        distribution was enumerated exactly.
    ri_conf_low, ri_conf_high
        Randomization confidence interval of each row by test inversion: the set of
        constant effects :math:`\tau_0` that the randomization test of
        :math:`H_0: Y_i(1) - Y_i(0) = \tau_0\ \forall i` does not reject. Give both or
        neither; an end may be infinite (an unbounded side), NaN/None where none.

    Returns
    -------
    ResultBase
        A new result of the same type. The randomization columns not given here
        (``ri_se``, ``ri_conf_low``/``ri_conf_high``) are removed, so that every
        randomization column of the new result comes from the same run.
    """
    ann = dict(result.annotations)
    ann["ri_p_value"] = _per_row(result, "ri_p_value", ri_p_value, probability=True)
    if ri_se is not None:
        ann["ri_se"] = _per_row(result, "ri_se", ri_se, probability=False)
    else:
        ann.pop("ri_se", None)
    if (ri_conf_low is None) != (ri_conf_high is None):
        raise EstimationError(
            "give both ri_conf_low and ri_conf_high, or neither",
            fix="pass both ends of the randomization confidence interval "
                "(use inf for an unbounded side).",
        )
    if ri_conf_low is not None:
        lo = _per_row(result, "ri_conf_low", ri_conf_low, probability=False)
        hi = _per_row(result, "ri_conf_high", ri_conf_high, probability=False)
        bad = [i for i, (a, b) in enumerate(zip(lo, hi)) if a > b]  # NaN compares False
        if bad:
            raise EstimationError(
                f"ri_conf_low exceeds ri_conf_high in tidy row(s) {bad[:5]}",
                fix="pass the lower end first: ri_conf_low <= ri_conf_high.",
            )
        ann["ri_conf_low"], ann["ri_conf_high"] = lo, hi
    else:
        ann.pop("ri_conf_low", None)
        ann.pop("ri_conf_high", None)
    return dataclasses.replace(result, annotations=ann)


def with_adjusted_pvalues(
    result: ResultBase, adj_p_value: float | Iterable[float | None], family: str | Iterable[str] | None = None
) -> ResultBase:
    """Return a new result carrying multiplicity-adjusted p-values and the family they belong to."""
    ann = dict(result.annotations)
    ann["adj_p_value"] = _per_row(result, "adj_p_value", adj_p_value, probability=True)
    if family is not None:
        fam = [family] * result.n_rows if isinstance(family, str) else family
        ann["family"] = _per_row(result, "family", fam, probability=False)
    return dataclasses.replace(result, annotations=ann)
