"""Validation of the input tables against the data contract.

Each rule is one function that raises a typed error naming the table, the column,
the number of offending rows, up to five example keys and the fix. Problems that
are not errors (rows that cannot be linked) are the study's business: they go to
the ledger, not here.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError, DesignError, LinkageError
from ips_impact.io.schema import HOUSEHOLD_ROLES, LIPRO_ROLES, SCHEMAS, TableSchema

__all__ = [
    "check_not_empty",
    "check_required",
    "check_keys_are_strings",
    "check_no_national_numbers",
    "check_unique",
    "parse_arm",
    "check_contrast",
    "check_binary",
    "check_nonnegative",
    "normalise_roles",
    "check_household_overlaps",
    "looks_like_national_number",
    "validate_table",
]

_ARM_VALUES = {"1": 1, "0": 0, "ips": 1, "control": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0}


def _example_keys(frame: pd.DataFrame, mask: np.ndarray | pd.Series, key: str = "person_id") -> list[object]:
    rows = frame.loc[np.asarray(mask)]
    if key in rows.columns:
        vals = rows[key].drop_duplicates()
        # never echo something that looks like a national number: show the row instead
        return [v if not looks_like_national_number(pd.Series([v])).iloc[0] else f"row {i}"
                for i, v in zip(vals.index[:5], vals.iloc[:5])] + (["…"] if len(vals) > 5 else [])
    return [f"row {i}" for i in rows.index[:5]]


def check_not_empty(frame: pd.DataFrame, table: str) -> None:
    """Rule: a table has at least one row."""
    if not isinstance(frame, pd.DataFrame):
        raise DataContractError(
            f"expected a pandas DataFrame, got {type(frame).__name__}", table=table,
            fix="pass a DataFrame (pd.read_parquet / pd.read_csv) or use ii.load_study(folder).",
        )
    if len(frame) == 0:
        raise DataContractError("is empty", table=table, n_rows=0,
                                fix="check the extract: the table has a header but no rows.")


def check_required(frame: pd.DataFrame, schema: TableSchema) -> None:
    """Rule: every required column (or one of its alternatives) is present."""
    missing = [alts for alts in schema.required if not any(a in frame.columns for a in alts)]
    if missing:
        names = [" or ".join(a) for a in missing]
        raise DataContractError(
            f"is missing required column{'s' if len(names) > 1 else ''} {', '.join(names)}",
            table=schema.name, column=[a[0] for a in missing], n_rows=len(frame),
            examples=list(frame.columns)[:5],
            fix="rename the columns (column_map=…) or add them; the columns present are listed above.",
        )


def check_keys_are_strings(frame: pd.DataFrame, table: str, keys: Iterable[str]) -> pd.DataFrame:
    """Keys are pseudonymised strings: numbers are converted, missing keys refused."""
    out = frame
    for key in keys:
        if key not in frame.columns:
            continue
        col = frame[key]
        if col.isna().any():
            mask = col.isna()
            if key == "household_id" and table == "assignment":
                continue  # optional per person
            raise DataContractError(
                "has missing keys", table=table, column=key, n_rows=int(mask.sum()),
                examples=[f"row {i}" for i in frame.index[mask][:5]],
                fix="every row needs its pseudonymised key; drop the rows without one.",
            )
        if col.dtype != object or not all(isinstance(v, str) for v in col.iloc[:50]):
            if out is frame:
                out = frame.copy()
            if pd.api.types.is_float_dtype(col):
                out[key] = col.map(lambda v: v if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
            else:
                out[key] = col.map(lambda v: v if pd.isna(v) else str(v))
    return out


def looks_like_national_number(values: pd.Series) -> pd.Series:
    """True where a value looks like a Belgian national register number.

    Eleven digits (separators ``.``, ``-``, `` `` allowed) whose last two digits are
    the mod-97 check of the first nine (``97 - n mod 97``, or of ``2`` followed by the
    nine digits for persons born from 2000).
    """
    s = values.astype("string")
    digits = s.str.replace(r"[.\- ]", "", regex=True)
    cand = digits.str.fullmatch(r"\d{11}").fillna(False).astype(bool)
    out = pd.Series(False, index=values.index)
    if cand.any():
        d = digits[cand]
        body = d.str.slice(0, 9).astype("int64")
        check = d.str.slice(9, 11).astype("int64")
        ok = (97 - body % 97 == check) | (97 - (2_000_000_000 + body) % 97 == check)
        out.loc[cand[cand].index] = ok.to_numpy()
    return out


def check_no_national_numbers(frame: pd.DataFrame, table: str, keys: Iterable[str]) -> None:
    """Rule: no key column holds values that look like national register numbers."""
    for key in keys:
        if key not in frame.columns:
            continue
        uniq = pd.Series(frame[key].dropna().unique())
        if uniq.empty:
            continue
        flagged = looks_like_national_number(uniq)
        if flagged.any():
            bad = set(uniq[flagged])
            mask = frame[key].isin(bad)
            raise DataContractError(
                "holds values that look like national register numbers (11 digits with a valid "
                "mod-97 check); they are not shown here",
                table=table, column=key, n_rows=int(mask.sum()),
                examples=[f"row {i}" for i in frame.index[mask][:5]],
                fix="pseudonymise the keys before analysis (the raw national number must never enter analysis data).",
            )


def check_unique(frame: pd.DataFrame, table: str, columns: tuple[str, ...], *, what: str) -> None:
    """Rule: the combination of ``columns`` identifies a row."""
    cols = [c for c in columns if c in frame.columns]
    if len(cols) != len(columns):
        return
    # Period columns are compared on their integer ordinals: pandas would box every value
    keyframe = pd.DataFrame({c: (frame[c].array.asi8 if isinstance(frame[c].dtype, pd.PeriodDtype) else frame[c])
                             for c in cols}, index=frame.index)
    dup = keyframe.duplicated(keep=False)
    if dup.any():
        raise DataContractError(
            f"has duplicate {what}", table=table, column=cols, n_rows=int(dup.sum()),
            examples=_example_keys(frame, dup),
            fix=f"keep one row per {what} (aggregate or de-duplicate the extract).",
        )


def parse_arm(values: pd.Series) -> pd.Series:
    """Rule: the arm is 0/1, True/False or "control"/"ips" (any case). Returns int8 (1 = IPS)."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("int8")
    key = values.map(lambda v: v if pd.isna(v) else str(v).strip().lower())
    parsed = key.map(_ARM_VALUES)
    bad = parsed.isna()
    if bad.any():
        raise DataContractError(
            "has values other than 0/1 or 'control'/'ips'",
            table="assignment", column="arm", n_rows=int(bad.sum()),
            examples=sorted({str(v) for v in values[bad]})[:5],
            fix="code the arm as 1 = IPS, 0 = control (or 'ips' / 'control'); missing arms are not allowed.",
        )
    return parsed.astype("int8")


def check_contrast(arm: pd.Series, stratum: pd.Series) -> None:
    """Rule: both arms are present overall and within every stratum."""
    n1 = int(arm.sum())
    if n1 == 0 or n1 == len(arm):
        only = "IPS" if n1 else "control"
        raise DesignError(
            f"every randomized person is in the {only} arm: there is no contrast",
            table="assignment", column="arm", n_rows=len(arm),
            fix="check the arm coding and that both arms of the trial are in the extract.",
        )
    tab = pd.crosstab(stratum, arm)
    for a in (0, 1):
        if a not in tab.columns:
            tab[a] = 0
    lone = tab[(tab[0] == 0) | (tab[1] == 0)]
    if len(lone):
        raise DesignError(
            "some randomization strata hold only one arm, so no within-stratum contrast exists",
            table="assignment", column="stratum", n_rows=int(lone.sum(axis=1).sum()),
            examples=[f"{s} ({int(r[1])} IPS / {int(r[0])} control)" for s, r in lone.iterrows()],
            fix="check the stratum column; merge those blocks with neighbours, or pass a coarser stratum.",
        )


def check_binary(frame: pd.DataFrame, table: str, columns: Iterable[str]) -> pd.DataFrame:
    """Rule: 0/1 columns hold only 0, 1, True, False or missing. Returns them as float (NaN = missing)."""
    out = frame
    for col in columns:
        if col not in frame.columns:
            continue
        s = frame[col]
        if pd.api.types.is_bool_dtype(s):
            vals = s.astype("float64")
        elif pd.api.types.is_numeric_dtype(s):
            vals = s.astype("float64")
        else:
            low = s.map(lambda v: v if pd.isna(v) else str(v).strip().lower())
            vals = low.map({"0": 0.0, "1": 1.0, "true": 1.0, "false": 0.0, "0.0": 0.0, "1.0": 1.0})
            vals[low.notna() & vals.isna()] = -1.0  # flag unknown text
        bad = vals.notna() & ~vals.isin([0.0, 1.0])
        if bad.any():
            raise DataContractError(
                "is a 0/1 column but holds other values", table=table, column=col,
                n_rows=int(bad.sum()), examples=sorted({str(v) for v in s[bad]})[:5],
                fix="code it 1 = yes, 0 = no (missing allowed).",
            )
        if out is frame:
            out = frame.copy()
        out[col] = vals
    return out


def check_nonnegative(frame: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    """Rule: amounts, counts and FTE fractions are not negative."""
    for col in columns:
        if col not in frame.columns:
            continue
        s = frame[col]
        if not pd.api.types.is_numeric_dtype(s):
            raise DataContractError(
                "is an amount but is not numeric", table=table, column=col, n_rows=len(s),
                examples=[str(v) for v in s.dropna().unique()[:5]],
                fix="write amounts as numbers (decimal point, no currency sign).",
            )
        bad = s < 0
        if bad.any():
            raise DataContractError(
                "has negative values", table=table, column=col, n_rows=int(bad.sum()),
                examples=_example_keys(frame, bad),
                fix="amounts, counts and FTE fractions cannot be negative; correct or set them missing.",
            )


def normalise_roles(roles: pd.Series) -> pd.Series:
    """Rule: roles are index / partner / child / parent / other, or LIPRO codes that map onto them."""
    raw = roles.map(lambda v: v if pd.isna(v) else str(v).strip())
    low = raw.str.lower()
    out = low.where(low.isin(HOUSEHOLD_ROLES))
    lipro = raw.str.upper().map(LIPRO_ROLES)
    out = out.fillna(lipro)
    bad = out.isna()
    if bad.any():
        raise DataContractError(
            "has unknown household roles", table="households", column="role", n_rows=int(bad.sum()),
            examples=sorted({str(v) for v in roles[bad]})[:5],
            fix=f"use {', '.join(HOUSEHOLD_ROLES)} or a LIPRO code ({', '.join(sorted(LIPRO_ROLES))}).",
        )
    return out


def check_household_overlaps(roster: pd.DataFrame) -> None:
    """Rule: nobody belongs to two households at the same time."""
    multi = roster[roster.duplicated("person_id", keep=False)]
    if multi.empty:
        return
    m = multi.sort_values(["person_id", "valid_from"], na_position="first")
    start = m["valid_from"].fillna(pd.Timestamp.min)
    end = m["valid_to"].fillna(pd.Timestamp.max)
    same_person = m["person_id"].eq(m["person_id"].shift())
    other_hh = m["household_id"].ne(m["household_id"].shift())
    overlaps = same_person & other_hh & (start <= end.shift())
    if overlaps.any():
        persons = m.loc[overlaps, "person_id"].unique()
        raise LinkageError(
            "places persons in two households over the same dates",
            table="households", column=["person_id", "valid_from", "valid_to"],
            n_rows=int(roster["person_id"].isin(persons).sum()), examples=list(persons),
            fix="close the first membership (valid_to) before the next one starts (valid_from).",
        )


def validate_table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Run the generic rules of one table; returns the frame with keys as strings and 0/1 as floats."""
    schema = SCHEMAS[table]
    check_not_empty(frame, table)
    # rows are named by position in messages: a duplicated index would make that ambiguous
    frame = frame.reset_index(drop=True)
    if frame.columns.duplicated().any():
        dups = frame.columns[frame.columns.duplicated()].unique().tolist()
        raise DataContractError("has duplicate column names", table=table, column=dups,
                                fix="rename or drop one of each pair.")
    check_required(frame, schema)
    frame = check_keys_are_strings(frame, table, schema.keys)
    check_no_national_numbers(frame, table, schema.keys)
    frame = check_binary(frame, table, schema.binary)
    check_nonnegative(frame, table, schema.nonnegative)
    return frame
