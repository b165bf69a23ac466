"""The mapping file of a delivery: column names, read options, value recodings, keys.

A real extract (Crossroads Bank, insurer) arrives with its own column names, separator,
decimal mark, encoding, date order and codes. One TOML file describes all of it::

    [read]                         # defaults for every table
    separator = ";"
    decimal = ","
    encoding = "cp1252"
    date_order = "DMY"             # 02/05/2018 is 2 May 2018

    [linkage]
    min_share = 0.5                # refuse the study if an arm links below 50 %

    [assignment]
    file = "toewijzing.csv"        # found case-insensitively in the delivery folder
    keys = ["partner_insz"]        # extra key columns: text, screened, never covariates
    categorical = ["opleiding"]    # covariates to treat as categories (only when asked)

    [assignment.columns]           # extract name = contract name
    INSZ_PSEUDO = "person_id"
    GROEP = "arm"

    [assignment.values.arm]        # recode values of a contract column
    controle = 0
    IPS = 1

    [panel]
    frequency = "Q"                # or period_format = "YYYY/q"
    [panel.scale]
    fte = 0.01                     # percent → fraction

Plain ``source = "target"`` lines directly under ``[panel]`` (or at the top) are column
renames too, as in earlier versions. Every key is checked: an unknown key or a bad value
is refused with the file, the line and the key.

Applying a mapping is idempotent: a table whose columns are already in the contract is
returned unchanged.
"""

from __future__ import annotations

import codecs
import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from ips_impact.errors import DataContractError

__all__ = ["ColumnMap", "ReadOptions", "TABLES", "READ_OPTIONS"]

TABLES = ("assignment", "panel", "households", "benefits", "takeup", "sites")
#: Read options a table section (or ``[read]``) may set, with what each accepts.
READ_OPTIONS = {
    "file": "file name in the delivery folder (case-insensitive)",
    "separator": "one character: ';', ',', '\\t' or '|' (detected when omitted)",
    "decimal": "'.' or ',' (detected when omitted; ambiguous columns are refused)",
    "thousands": "'', '.', ',', ' ' or \"'\"",
    "encoding": "a Python codec name: 'utf-8', 'cp1252', 'latin-1'…",
    "sheet": "sheet name or 0-based number of an .xlsx workbook",
    "date_order": "'DMY' (dd/mm/yyyy), 'MDY' or 'YMD'",
    "period_format": "e.g. 'YYYYQq', 'YYYY/q', 'YYYYTq', 'q/YYYY', 'YYYYq', 'YYYYMM', 'YYYY-MM'",
    "frequency": "'Q', 'M', 'Y', 'W' or 'int'",
}
_SECTION_KEYS = ("columns", "values", "scale", "keys", "categorical")
_LINKAGE_KEYS = {"min_share": "share of each arm's randomized persons that must link (0–1; default 0.5)"}


@dataclass(frozen=True)
class ReadOptions:
    """How to read one table's file (``None``: detect from the file)."""

    file: str | None = None
    separator: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    date_order: str | None = None
    period_format: str | None = None
    frequency: str | None = None

    def merged(self, other: Mapping[str, Any]) -> ReadOptions:
        """Return these options overridden by ``other``'s."""
        values = {k: getattr(self, k) for k in READ_OPTIONS}
        values.update({k: v for k, v in other.items() if v is not None})
        return ReadOptions(**values)


@dataclass
class _Table:
    renames: dict[str, str] = field(default_factory=dict)
    read: dict[str, Any] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()


def _line_of(text: str | None, section: str | None, key: str | None) -> int | None:
    """Line number (1-based) of ``key`` under ``[section]`` in a TOML text (best effort)."""
    if text is None:
        return None
    current = ""
    header_line = None
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and "]" in line:
            current = line.strip("[]").strip()
            if current == section:
                header_line = i
            continue
        if key is not None and (current == (section or "")):
            name = line.split("=", 1)[0].strip().strip("'\"")
            if "=" in line and name == key:
                return i
    return header_line


class ColumnMap:
    """The mapping of one delivery (column names, read options, recodings, keys).

    Parameters
    ----------
    mapping
        The parsed TOML (a dict): ``{source: target}`` renames for all tables, table
        sections, ``[read]`` and ``[linkage]``; see the module docstring.
    source
        Name of the file it came from (used in messages).
    text
        The file's text (used to name the line of a bad key).
    """

    def __init__(self, mapping: Mapping[str, object] | None = None, *, source: str | None = None,
                 text: str | None = None) -> None:
        self.source = source
        self._text = text
        self._common: dict[str, str] = {}
        self._tables: dict[str, _Table] = {t: _Table() for t in TABLES}
        self._read_defaults: dict[str, Any] = {}
        self.min_linked_share: float | None = None
        for key, value in (mapping or {}).items():
            if key == "read":
                self._read_defaults = self._read_section(value, "read")
            elif key == "linkage":
                self._linkage(value)
            elif isinstance(value, Mapping):
                if key not in TABLES:
                    self._fail(None, key, f"names an unknown table {key!r}",
                               f"use one of {', '.join(TABLES)}, or [read] / [linkage].")
                self._table_section(key, value)
            elif isinstance(value, str):
                self._common[str(key)] = value
            else:
                self._fail(None, key, f"top-level key {key!r} must be a column rename (\"source\" = \"target\")",
                           "put read options under [read] and table settings under [assignment], [panel]….")

    # ---------------------------------------------------------------- parsing
    def _fail(self, section: str | None, key: str | None, problem: str, fix: str) -> NoReturn:
        where = f"mapping file {self.source!r}" if self.source else "column map"
        line = _line_of(self._text, section, key)
        if line is not None:
            where += f", line {line}"
        if section:
            where += f", [{section}]"
        raise DataContractError(f"{where}: {problem}", fix=fix)

    def _read_section(self, value: object, section: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self._fail(None, section, f"[{section}] must be a table of options", f"write [{section}] on its own line.")
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k not in READ_OPTIONS:
                self._fail(section, k, f"unknown read option {k!r}",
                           "use one of: " + "; ".join(f"{o} ({d})" for o, d in READ_OPTIONS.items()) + ".")
            out[k] = self._check_option(section, k, v)
        return out

    def _check_option(self, section: str, key: str, v: object) -> Any:
        from ips_impact.io.periods import DATE_ORDERS, PERIOD_FORMATS, normalise_frequency

        def bad(why: str) -> NoReturn:
            self._fail(section, key, f"{key} = {v!r} {why}", f"{key}: {READ_OPTIONS[key]}.")

        if key == "sheet":
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                bad("is not a sheet name or number")
            return v
        if not isinstance(v, str):
            bad("must be text (in quotes)")
        assert isinstance(v, str)
        if key == "separator" and len(v.replace("\\t", "\t")) != 1:
            bad("must be one character")
        if key == "decimal" and v not in (".", ","):
            bad("is not a decimal mark")
        if key == "thousands" and v not in ("", ".", ",", " ", "'"):
            bad("is not a thousands mark")
        if key == "encoding":
            try:
                codecs.lookup(v)
            except LookupError:
                bad("is not a known encoding")
        if key == "date_order" and v.upper() not in DATE_ORDERS:
            bad("is not a date order")
        if key == "period_format" and v not in PERIOD_FORMATS:
            bad("is not a known period format")
        if key == "frequency":
            try:
                normalise_frequency(v)
            except DataContractError:
                bad("is not a frequency")
        return v.replace("\\t", "\t") if key == "separator" else (v.upper() if key == "date_order" else v)

    def _linkage(self, value: object) -> None:
        if not isinstance(value, Mapping):
            self._fail(None, "linkage", "[linkage] must be a table", "write [linkage] on its own line.")
        for k, v in value.items():
            if k not in _LINKAGE_KEYS:
                self._fail("linkage", k, f"unknown linkage option {k!r}",
                           f"use min_share ({_LINKAGE_KEYS['min_share']}).")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= float(v) <= 1:
                self._fail("linkage", k, f"min_share = {v!r} is not a share between 0 and 1",
                           "write e.g. min_share = 0.5.")
            self.min_linked_share = float(v)

    def _table_section(self, table: str, value: Mapping[str, Any]) -> None:
        t = self._tables[table]
        for k, v in value.items():
            if k == "columns":
                if not isinstance(v, Mapping) or not all(isinstance(x, str) for x in v.values()):
                    self._fail(f"{table}.columns", None, f"[{table}.columns] must hold \"source\" = \"target\" lines",
                               "write one line per column, e.g. INSZ = \"person_id\".")
                t.renames.update({str(s): str(x) for s, x in v.items()})
            elif k == "values":
                if not isinstance(v, Mapping):
                    self._fail(table, k, "values must be a table per column", f"write [{table}.values.COLUMN].")
                for col, codes in v.items():
                    if not isinstance(codes, Mapping) or any(isinstance(c, (Mapping, list)) for c in codes.values()):
                        self._fail(f"{table}.values", col, f"[{table}.values.{col}] must map values to values",
                                   "write e.g. controle = 0 under [assignment.values.arm].")
                    t.values[str(col)] = {str(a): b for a, b in codes.items()}
            elif k == "scale":
                if not isinstance(v, Mapping) or not all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in v.values()):
                    self._fail(f"{table}.scale", None, "scale factors must be positive numbers",
                               "write e.g. fte = 0.01 to turn percentages into fractions.")
                t.scale.update({str(c): float(x) for c, x in v.items()})
            elif k in ("keys", "categorical"):
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    self._fail(table, k, f"{k} must be a list of column names", f'write {k} = ["col_a", "col_b"].')
                setattr(t, k, tuple(v))
            elif k in READ_OPTIONS:
                t.read[k] = self._check_option(table, k, v)
            elif isinstance(v, str):
                near = difflib.get_close_matches(k, [*READ_OPTIONS, *_SECTION_KEYS], n=1, cutoff=0.75)
                if near:
                    self._fail(table, k, f"unknown key {k!r} (did you mean {near[0]!r}?)",
                               f"write {near[0]} = …; to rename a column called {k!r}, put the line under "
                               f"[{table}.columns].")
                t.renames[str(k)] = v  # a plain rename line, as in earlier mapping files
            else:
                self._fail(table, k, f"unknown key {k!r}",
                           f"a [{table}] section holds column renames (\"source\" = \"target\"), read options "
                           f"({', '.join(READ_OPTIONS)}) and {', '.join(_SECTION_KEYS)}.")

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_toml(cls, path: str | Path) -> ColumnMap:
        """Read a mapping file."""
        p = Path(path)
        if not p.is_file():
            raise DataContractError(f"mapping file {str(p)!r} does not exist", fix="check the path.")
        text = p.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataContractError(
                f"mapping file {p.name!r} is not valid TOML: {exc}",
                fix="write `source = \"target\"` lines, optionally under [panel], [assignment]… headers.",
            ) from None
        return cls(data, source=p.name, text=text)

    @classmethod
    def coerce(cls, mapping: ColumnMap | Mapping[str, object] | str | Path | None) -> ColumnMap:
        """Build a :class:`ColumnMap` from a map, a dict, a TOML path or ``None``."""
        if isinstance(mapping, ColumnMap):
            return mapping
        if isinstance(mapping, (str, Path)):
            return cls.from_toml(mapping)
        return cls(mapping)

    # ---------------------------------------------------------------- use
    def for_table(self, table: str) -> dict[str, str]:
        """``{source: target}`` renames of one table."""
        out = dict(self._common)
        out.update(self._tables[table].renames if table in self._tables else {})
        return out

    def read_options(self, table: str) -> ReadOptions:
        """Read options of one table (its section over ``[read]``)."""
        opts = ReadOptions().merged(self._read_defaults)
        return opts.merged(self._tables[table].read) if table in self._tables else opts

    def key_columns(self, table: str) -> tuple[str, ...]:
        """Extra key columns declared for ``table`` (contract names)."""
        return self._tables[table].keys if table in self._tables else ()

    def categorical(self, table: str) -> tuple[str, ...]:
        """Columns the user asked to treat as categorical."""
        return self._tables[table].categorical if table in self._tables else ()

    def source_names(self, table: str, targets: set[str]) -> set[str]:
        """Extract column names that map onto any of ``targets`` (and the targets themselves)."""
        return set(targets) | {s for s, t in self.for_table(table).items() if t in targets}

    def apply(self, frame: pd.DataFrame, table: str) -> pd.DataFrame:
        """Rename the columns of ``frame`` (a table named ``table``), then recode and rescale values."""
        ren = {s: t for s, t in self.for_table(table).items() if s in frame.columns and s != t}
        clash = [t for s, t in ren.items() if t in frame.columns and t not in ren]
        if clash:
            raise DataContractError(
                "column map would create duplicate columns",
                table=table, column=clash, examples=[f"{s} → {t}" for s, t in ren.items() if t in clash],
                fix="drop one of the two columns or remove that line from the map.",
            )
        targets = list(ren.values())
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise DataContractError(
                "column map sends several columns to the same name",
                table=table, column=dup, fix="map each contract column from one source column.",
            )
        out = frame.rename(columns=ren) if ren else frame
        spec = self._tables.get(table)
        if spec is None or not (spec.values or spec.scale):
            return out
        out = out.copy()
        for col, codes in spec.values.items():
            if col not in out.columns:
                continue
            s = out[col]
            text = s.map(lambda v: v if pd.isna(v) else (v.decode("utf-8", "replace") if isinstance(v, bytes)
                                                          else str(v)).strip())
            hit = text.isin(list(codes))
            if hit.any():
                recoded = text.map(codes)
                out[col] = s.astype(object).where(~hit, recoded)
        for col, factor in spec.scale.items():
            if col in out.columns and pd.api.types.is_numeric_dtype(out[col]):
                out[col] = out[col].astype("float64") * factor
        return out

    def __repr__(self) -> str:
        renames = {t: s.renames for t, s in self._tables.items() if s.renames}
        return f"ColumnMap(source={self.source!r}, common={self._common!r}, per_table={renames!r})"
