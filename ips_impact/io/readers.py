"""Read the study tables from parquet or csv files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ips_impact.errors import DataContractError

__all__ = ["read_table", "find_table_files", "TABLE_NAMES"]

TABLE_NAMES = ("assignment", "panel", "households", "benefits", "takeup", "sites")
_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv")
# Keys stay strings: pseudonyms may have leading zeros that a csv reader would eat.
_STRING_COLUMNS = ("person_id", "household_id", "index_person_id", "employer_id", "stratum",
                   "site", "region", "role", "period", "month")


def read_table(path: str | Path, *, table: str | None = None) -> pd.DataFrame:
    """Read one table; keys are read as strings.

    Raises
    ------
    DataContractError
        If the file is missing, of an unknown type, or cannot be parsed.
    """
    path = Path(path)
    name = table or path.name.split(".")[0]
    if not path.exists():
        raise DataContractError(f"file {str(path)!r} does not exist", table=name,
                                fix="check the path.")
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".csv.gz") else path.suffix
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            for col in _STRING_COLUMNS:
                if col in frame.columns and col not in ("period", "month") and frame[col].dtype != object:
                    if not isinstance(frame[col].dtype, pd.StringDtype):
                        frame[col] = frame[col].astype("string").astype(object)
            return frame
        if suffix in (".csv", ".csv.gz", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            header = pd.read_csv(path, sep=sep, nrows=0).columns
            dtypes = {c: str for c in _STRING_COLUMNS if c in header}
            return pd.read_csv(path, sep=sep, dtype=dtypes, keep_default_na=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataContractError(
            f"file {path.name!r} cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            table=name, fix="check that the file is valid parquet or comma-separated csv with a header row.",
        ) from None
    raise DataContractError(
        f"file {path.name!r} has an unknown type", table=name,
        fix=f"save the table as one of {', '.join(_SUFFIXES)}.",
    )


def find_table_files(folder: str | Path) -> dict[str, Path]:
    """Find ``assignment.*``, ``panel.*`` and the optional tables in a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataContractError(f"{str(folder)!r} is not a folder", fix="pass the folder that holds assignment.* and panel.*.")
    found: dict[str, Path] = {}
    for name in TABLE_NAMES:
        hits = sorted(p for p in folder.iterdir()
                      if p.is_file() and any(p.name == name + s for s in _SUFFIXES))
        if len(hits) > 1:
            raise DataContractError(
                f"several files hold table '{name}'", table=name,
                examples=[h.name for h in hits], fix="keep one file per table.",
            )
        if hits:
            found[name] = hits[0]
    for name in ("assignment", "panel"):
        if name not in found:
            raise DataContractError(
                f"no file for the required table '{name}' in {str(folder)!r}", table=name,
                examples=sorted(p.name for p in folder.iterdir())[:5],
                fix=f"save it as {name}.parquet or {name}.csv in that folder.",
            )
    return found
