"""Column-name mapping for real extracts (LMD variable names → contract names).

A mapping is a dict ``{source: target}`` for all tables, or per table
``{"panel": {source: target}, ...}``, or a TOML file with the same shape::

    [panel]
    socio_economic_position = "sep_code"
    gross_wage_quarter = "earnings"

Applying a mapping is idempotent: a table whose columns are already in the contract
is returned unchanged, and applying the mapping twice gives the same table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ips_impact.errors import DataContractError

__all__ = ["ColumnMap"]

_TABLES = ("assignment", "panel", "households", "benefits", "takeup", "sites")


class ColumnMap:
    """Rename columns of input tables to the names of the data contract.

    Parameters
    ----------
    mapping
        ``{source: target}`` (applies to every table) and/or
        ``{table: {source: target}}``.
    """

    def __init__(self, mapping: Mapping[str, object] | None = None) -> None:
        self._common: dict[str, str] = {}
        self._per_table: dict[str, dict[str, str]] = {}
        for key, value in (mapping or {}).items():
            if isinstance(value, Mapping):
                if key not in _TABLES:
                    raise DataContractError(
                        f"column map names an unknown table {key!r}",
                        fix=f"use one of {', '.join(_TABLES)}.",
                    )
                self._per_table[key] = {str(s): str(t) for s, t in value.items()}
            else:
                self._common[str(key)] = str(value)

    @classmethod
    def from_toml(cls, path: str | Path) -> ColumnMap:
        """Read a mapping from a TOML file."""
        try:
            with open(path, "rb") as fh:
                return cls(tomllib.load(fh))
        except tomllib.TOMLDecodeError as exc:
            raise DataContractError(
                f"column map {str(path)!r} is not valid TOML: {exc}",
                fix="write `source = \"target\"` lines, optionally under [panel], [assignment]… headers.",
            ) from None

    @classmethod
    def coerce(cls, mapping: ColumnMap | Mapping[str, object] | str | Path | None) -> ColumnMap:
        if isinstance(mapping, ColumnMap):
            return mapping
        if isinstance(mapping, (str, Path)):
            return cls.from_toml(mapping)
        return cls(mapping)

    def for_table(self, table: str) -> dict[str, str]:
        out = dict(self._common)
        out.update(self._per_table.get(table, {}))
        return out

    def apply(self, frame: pd.DataFrame, table: str) -> pd.DataFrame:
        """Rename the columns of ``frame`` (a table named ``table``)."""
        ren = {s: t for s, t in self.for_table(table).items() if s in frame.columns and s != t}
        clash = [t for s, t in ren.items() if t in frame.columns]
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
        return frame.rename(columns=ren) if ren else frame

    def __repr__(self) -> str:
        return f"ColumnMap(common={self._common!r}, per_table={self._per_table!r})"
