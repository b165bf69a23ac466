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

from ips_impact.errors import DataContractError, DataWarning, DesignError, LinkageError, is_national_number
from ips_impact.io.codes import decode_text, distinct_values, is_text_codes
from ips_impact.io.schema import HOUSEHOLD_ROLES, KEY_COLUMNS, LIPRO_ROLES, PANEL_CATEGORICAL, SCHEMAS, TableSchema

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
    "check_values",
    "check_earnings_ceiling",
    "is_key_like",
    "is_text_codes",
    "distinct_values",
    "decode_text",
    "OPTIONAL_KEYS",
    "P_RANDOM_PASS",
    "EARNINGS_CEILING_PER_MONTH",
]

_ARM_VALUES = {"1": 1, "0": 0, "ips": 1, "control": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0,
               "controle": 0, "témoin": 0, "temoin": 0}


def _example_keys(frame: pd.DataFrame, mask: np.ndarray | pd.Series, key: str = "person_id") -> list[object]:
    rows = frame.loc[np.asarray(mask)]
    if key in rows.columns:
        vals = rows[key].drop_duplicates()
        # never echo something that looks like a national number: show the row instead
        return [v if not is_national_number(str(v)) else f"row {i}"
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


#: Key columns that may be empty (an employer only for those at work; the household of
#: an assignment row can come from the roster).
OPTIONAL_KEYS = {("panel", "employer_id"), ("assignment", "household_id"), ("assignment", "partner_id"),
                 ("households", "partner_id")}


def _key_text(v: object) -> object:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return np.nan
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else str(v)
    return str(v)


def _missing_keys(frame: pd.DataFrame, table: str, key: str, mask: pd.Series) -> DataContractError:
    return DataContractError(
        "has missing keys", table=table, column=key, n_rows=int(mask.sum()),
        examples=[f"row {i}" for i in frame.index[mask][:5]],
        fix="every row needs its pseudonymised key: ask the data provider for the missing keys "
            "(dropping the rows would bias the comparison if they differ by arm).",
    )


def check_keys_are_strings(frame: pd.DataFrame, table: str, keys: Iterable[str]) -> pd.DataFrame:
    """Keys are pseudonymised text: numbers and bytes become text (decided on all values).

    Missing keys are refused, except for optional ones (``employer_id`` of persons not at
    work, the assignment's ``household_id``). Keys are compared exactly afterwards;
    near misses (spaces, case, Unicode form, zeros) are reported by the linkage.
    """
    out = frame
    for key in keys:
        if key not in frame.columns:
            continue
        col = frame[key]
        if isinstance(col.dtype, pd.CategoricalDtype):
            # keys held as codes: the rule runs on the distinct values; rows only for the message
            if (col.cat.codes.to_numpy() < 0).any() and (table, key) not in OPTIONAL_KEYS:
                raise _missing_keys(frame, table, key, col.isna())
            if is_text_codes(col):
                continue
            texts = pd.Index([_key_text(v) for v in col.cat.categories], dtype=object)
            if texts.is_unique and not texts.isna().any():
                if out is frame:
                    out = frame.copy(deep=False)
                out[key] = col.cat.rename_categories(texts)
                continue
            col = col.astype(object)  # two categories give one text (1 and "1"): decided per row
        if col.isna().any() and (table, key) not in OPTIONAL_KEYS:
            raise _missing_keys(frame, table, key, col.isna())
        # infer_dtype is one C pass; the per-value map only runs on columns that need it
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=False) == "string":
            continue
        if not (col.dtype == object and col.map(type).eq(str).all()):
            if out is frame:
                out = frame.copy()
            out[key] = col.astype(object).map(_key_text)
    return out


#: Share of random 11-digit strings that pass :func:`looks_like_national_number` (birth
#: date part, serial, mod-97 check in either century); tests/test_delivery_values.py
#: measures it on a million random strings.
P_RANDOM_PASS = 0.0025
#: A column of 11-digit values is refused when so many pass that chance would explain it
#: less often than this (a column of real national numbers has every value passing).
_NRN_ALPHA = 1e-6


def looks_like_national_number(values: pd.Series) -> pd.Series:
    """Flag values with the structure of a Belgian national register number.

    See :func:`ips_impact.errors.is_national_number`: ``YYMMDD`` (bis numbers with the
    month + 20 or + 40), a serial 001–998 and the mod-97 check of either century.
    Integers of 10 digits are read with their lost leading zero. ASCII text is screened
    by Arrow's string kernels and array arithmetic (population extracts hold hundreds of
    thousands of distinct keys); other text by :func:`is_national_number` value by value.
    """
    if pd.api.types.is_integer_dtype(values):
        s = values.astype("string").str.zfill(11)
    else:
        s = values.astype("string")
    fast = _looks_like_nrn_ascii(s)
    if fast is not None:
        return pd.Series(fast, index=values.index)
    digits = s.str.replace(r"[.\- ]", "", regex=True)
    cand = digits.str.fullmatch(r"\d{11}").fillna(False).astype(bool)
    out = pd.Series(False, index=values.index)
    if cand.any():
        out.loc[cand[cand].index] = [is_national_number(d) for d in digits[cand]]
    return out


_MONTH_DAYS = np.array((31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), dtype=np.int64)


def _looks_like_nrn_ascii(s: pd.Series) -> np.ndarray | None:
    """:func:`is_national_number` of every value, vectorised; ``None`` unless all text is ASCII."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.string())
    if pc.all(pc.string_is_ascii(arr)).as_py() is False:
        return None  # str.isdigit and int() accept other digits: keep the exact rule
    digits = pc.replace_substring_regex(arr, r"[.\- ]", "")
    cand = pc.fill_null(pc.match_substring_regex(digits, r"^[0-9]{11}$"), False).to_numpy(zero_copy_only=False)
    out = np.zeros(len(s), dtype=bool)
    if not cand.any():
        return out
    raw = np.array(pc.filter(digits, pa.array(cand)).to_pylist(), dtype="S11")
    d = raw.view(np.uint8).reshape(-1, 11).astype(np.int64) - 48
    month = d[:, 2] * 10 + d[:, 3]
    day = d[:, 4] * 10 + d[:, 5]
    serial = d[:, 6] * 100 + d[:, 7] * 10 + d[:, 8]
    month = np.where(month >= 40, month - 40, np.where(month >= 20, month - 20, month))
    ok = (month <= 12) & (day <= 31) & (serial >= 1) & (serial <= 998)
    ok &= ~((month > 0) & (day > _MONTH_DAYS[np.clip(month - 1, 0, 11)]))
    body = d[:, :9] @ (10 ** np.arange(8, -1, -1, dtype=np.int64))
    check = d[:, 9] * 10 + d[:, 10]
    ok &= (97 - body % 97 == check) | (97 - (2_000_000_000 + body) % 97 == check)
    out[cand] = ok
    return out


def _screened_columns(frame: pd.DataFrame, keys: Iterable[str]) -> list[str]:
    cols = []
    for c in frame.columns:
        s = frame[c]
        if c in keys or s.dtype == object or isinstance(s.dtype, pd.StringDtype) or is_text_codes(s):
            cols.append(c)
        elif pd.api.types.is_integer_dtype(s) and len(s) and s.max() >= 10**9 and s.min() >= 0:
            cols.append(c)
    return cols


def check_no_national_numbers(frame: pd.DataFrame, table: str, keys: Iterable[str] = ()) -> None:
    """Rule: no text column (keys or not) holds national register numbers.

    A column whose values are mostly 11-digit numbers (numeric pseudonyms) is refused
    only when more of them pass the check than chance allows (a random 11-digit string
    passes with probability :data:`P_RANDOM_PASS`; a binomial tail below 1e-6 refuses);
    any other text column is refused at the first value that passes. The values are
    never shown: rows are named by position.
    """
    from scipy.stats import binom

    keys = tuple(keys)
    for col in _screened_columns(frame, keys):
        uniq = distinct_values(frame[col])  # distinct values first: the screen never runs per row
        if uniq.empty:
            continue
        if uniq.dtype == object and pd.api.types.infer_dtype(uniq, skipna=False) != "string":
            uniq = uniq.map(_key_text)
        flagged = looks_like_national_number(uniq)
        n_flag = int(flagged.sum())
        if n_flag == 0:
            continue
        digits = uniq.astype(str).str.replace(r"[.\- ]", "", regex=True)
        n11 = int(digits.str.fullmatch(r"\d{10,11}").sum())
        if n11 >= 0.9 * len(uniq) and binom.sf(n_flag - 1, n11, P_RANDOM_PASS) >= _NRN_ALPHA:
            continue  # as many as random pseudonyms would give: not national numbers
        bad = set(uniq[flagged])
        mask = frame[col].map(_key_text).isin(bad) if frame[col].dtype == object else frame[col].isin(bad)
        raise DataContractError(
            f"holds {n_flag} distinct value{'s' if n_flag > 1 else ''} with the structure of Belgian national "
            "register numbers (birth date, serial, mod-97 check); they are not shown here",
            table=table, column=col, n_rows=int(mask.sum()),
            examples=[f"row {i}" for i in frame.index[np.asarray(mask)][:5]],
            fix="pseudonymise the column before analysis, or drop it (the raw national number must never "
                "enter analysis data).",
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
    """Rule: the arm is 0/1, True/False, "ips"/"control" (or "controle", "témoin"). Returns int8 (1 = IPS).

    Other labels (``ja``/``nee``, ``interventie``…) are recoded in the mapping file
    (``[assignment.values.arm]``): their meaning depends on the delivery.
    """
    if values.isna().any():
        mask = values.isna()
        raise DataContractError(
            "has missing arms", table="assignment", column="arm", n_rows=int(mask.sum()),
            examples=[f"row {i}" for i in values.index[mask][:5]],
            fix="every randomized person has an arm: ask the data provider for the missing ones.",
        )
    if pd.api.types.is_bool_dtype(values):
        return values.astype("int8")
    # each distinct label read once, spread to the rows by code
    codes, labels = pd.factorize(values.astype(object))
    read = pd.Series([str(v).strip().lower() for v in labels], dtype=object).map(_ARM_VALUES)
    parsed = pd.Series(read.to_numpy(dtype="float64")[codes], index=values.index, name=values.name)
    bad = parsed.isna()
    if bad.any():
        raise DataContractError(
            "has values other than 0/1 or 'control'/'ips'",
            table="assignment", column="arm", n_rows=int(bad.sum()),
            examples=sorted({str(v) for v in values[bad]})[:5],
            fix="code the arm as 1 = IPS, 0 = control, or recode the labels in the mapping file "
                "([assignment.values.arm] with e.g. nee = 0 and ja = 1).",
        )
    return parsed.astype("int8")


def check_contrast(arm: pd.Series, stratum: pd.Series) -> pd.Series:
    """Rule: both arms are present overall. Returns a mask of persons in one-arm strata.

    A stratum holding one arm gives no within-stratum contrast; the study sets its
    persons aside (ledger entry and warning), as estimatr and clubSandwich let it drop
    out of a blocked estimate.
    """
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
    lone = tab.index[(tab[0] == 0) | (tab[1] == 0)]
    return stratum.isin(lone)


def check_binary(frame: pd.DataFrame, table: str, columns: Iterable[str]) -> pd.DataFrame:
    """Rule: 0/1 columns hold only 0, 1, True, False or missing. Returns them as float (NaN = missing)."""
    converted: dict[str, np.ndarray] = {}
    for col in columns:
        if col not in frame.columns:
            continue
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)  # a 0/1 flag stored as category is read as the 0/1 it holds
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biu":
            # plain integers (no missing): checked on their own bytes, one float copy made
            raw = s.to_numpy()
            bad = (raw != 0) & (raw != 1)
            v = raw.astype(np.float64)
        else:
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                v = s.to_numpy(dtype="float64", na_value=np.nan)
            else:
                low = s.map(lambda v: v if pd.isna(v) else str(v).strip().lower())
                vals = low.map({"0": 0.0, "1": 1.0, "true": 1.0, "false": 0.0, "0.0": 0.0,
                                "1.0": 1.0}).astype("float64")
                vals[low.notna() & vals.isna()] = -1.0  # flag unknown text
                v = vals.to_numpy(dtype="float64", na_value=np.nan)
            bad = ~np.isnan(v) & (v != 0.0) & (v != 1.0)
        if bad.any():
            raise DataContractError(
                "is a 0/1 column but holds other values", table=table, column=col,
                n_rows=int(bad.sum()), examples=sorted({str(v) for v in s[bad]})[:5],
                fix="code it 1 = yes, 0 = no (missing allowed).",
            )
        converted[col] = v
    if not converted:
        return frame
    # one new frame holding the caller's other columns (no copy, nothing written into them)
    out = pd.DataFrame({c: converted[c] if c in converted else frame[c] for c in frame.columns},
                       index=frame.index, copy=False)
    out.attrs = dict(frame.attrs)
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


#: Gross earnings above this many EUR per month of the period are implausible for
#: persons on disability insurance (the highest wage classes of the LMD are far below);
#: they are flagged with a :class:`DataWarning` (a quarter: 3 × this).
EARNINGS_CEILING_PER_MONTH = 25_000.0
_MONTHS_PER_PERIOD = {"Q": 3, "M": 1, "Y": 12}


def check_values(frame: pd.DataFrame, table: str, *, categorical: Iterable[str] = (),
                 skip: Iterable[str] = ()) -> None:
    """Rule: quantities are numbers, finite, on the right scale.

    * numbers with decimals stored as text (``'46,5'``) and numbers stored as ``category``
      are refused unless the column was named categorical (the mapping file's
      ``categorical``); digit-only text (``'3'``, ``'0012'``) may be a code and is left as
      text (:meth:`Study.require_covariate` refuses it as a number);
    * ``inf`` is refused in every numeric column;
    * ``fte`` above 1.5 is refused as a percentage (1.0 = full time).
    """
    cats = set(categorical)
    skip = set(skip) | cats | set(KEY_COLUMNS)
    for col in frame.columns:
        if col in skip:
            continue
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            levels = pd.Series(s.cat.categories)
            if pd.api.types.is_numeric_dtype(levels) or pd.to_numeric(levels, errors="coerce").notna().all():
                raise DataContractError(
                    "holds numbers stored as a pandas category (a 0/1 flag or an amount would become a "
                    "categorical result)", table=table, column=col, n_rows=int(s.notna().sum()),
                    examples=levels.tolist()[:5],
                    fix=f"convert it: frame['{col}'] = frame['{col}'].astype(float) (or list it under "
                        "categorical in the mapping file if it really is a set of categories).",
                )
            continue
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
            # the rule is decided on the distinct values (in order of first appearance)
            vals = distinct_values(s)
            if vals.empty or pd.api.types.infer_dtype(vals, skipna=False) != "string":
                continue
            txt = vals.astype(object).str.strip()
            looks = txt.str.fullmatch(r"[+-]?(\d+([.,]\d+)?|[.,]\d+)")
            # digits only ('3', '0012') may be codes (clusters, sites): refused later if used as a number
            if looks.all() and txt.str.contains(r"[.,]\d", regex=True).any():
                raise DataContractError(
                    f"holds numbers stored as text (e.g. {txt.iloc[0]!r}); read as text they would become "
                    "categories (one dummy per value)", table=table, column=col, n_rows=int(s.notna().sum()),
                    fix="read the file through ii.load_study with the decimal option of the mapping file "
                        "(decimal = \",\"), or convert: pd.to_numeric(frame[col].str.replace(',', '.')).",
                )
            continue
        if pd.api.types.is_float_dtype(s):
            inf = np.isinf(s.to_numpy(dtype="float64", na_value=np.nan))
            if inf.any():
                raise DataContractError(
                    "holds infinite values", table=table, column=col, n_rows=int(inf.sum()),
                    examples=_example_keys(frame, inf),
                    fix="an infinite amount is an extraction error: correct the rows or set them missing.",
                )
    if "fte" in frame.columns and pd.api.types.is_numeric_dtype(frame["fte"]):
        big = frame["fte"] > 1.5
        if big.any():
            raise DataContractError(
                f"looks like a percentage (largest value {float(frame['fte'].max()):g}); fte is the cumulative "
                "part-time fraction, 1.0 = full time", table=table, column="fte", n_rows=int(big.sum()),
                fix="divide by 100, e.g. with [panel.scale] fte = 0.01 in the mapping file.",
            )


def check_earnings_ceiling(frame: pd.DataFrame, table: str, frequency: str) -> None:
    """Warn (:class:`DataWarning`) about gross earnings above the documented ceiling.

    The ceiling is :data:`EARNINGS_CEILING_PER_MONTH` EUR times the months of a period.
    """
    if "earnings" not in frame.columns or frequency not in _MONTHS_PER_PERIOD:
        return
    if not pd.api.types.is_numeric_dtype(frame["earnings"]):
        return
    ceiling = EARNINGS_CEILING_PER_MONTH * _MONTHS_PER_PERIOD[frequency]
    high = frame["earnings"] > ceiling
    if high.any():
        import warnings

        warnings.warn(
            f"table '{table}', column 'earnings': {int(high.sum())} rows above EUR {ceiling:,.0f} per period "
            f"(EUR {EARNINGS_CEILING_PER_MONTH:,.0f} a month), implausible for DI recipients; check the unit "
            "(cents? yearly totals?) and the extraction before estimating.",
            DataWarning, stacklevel=3,
        )


def is_key_like(column: str, declared: Iterable[str] = ()) -> bool:
    """Tell whether a column is a person, household, partner or employer key (never a covariate)."""
    name = str(column).lower()
    return name in KEY_COLUMNS or name in set(declared) or name.endswith("_id") or name in _KEY_NAMES


_KEY_NAMES = {"insz", "niss", "rrn", "nrn", "ssin", "person", "household", "employer", "partner"}


def validate_table(frame: pd.DataFrame, table: str, *, keys: Iterable[str] = (),
                   categorical: Iterable[str] = (), keep_codes: Iterable[str] = ()) -> pd.DataFrame:
    """Run the generic rules of one table; returns the frame with keys as text and 0/1 as floats.

    ``keys`` are extra key columns declared in the mapping file; ``categorical`` the
    columns the user asked to treat as categories. Key columns held as codes (a
    ``Categorical``, as :func:`ips_impact.io.readers.read_table` gives with
    ``keep_codes``) are checked on their distinct values and returned as object text,
    except those of ``keep_codes``, which stay codes for the caller to decode.
    """
    schema = SCHEMAS[table]
    check_not_empty(frame, table)
    # rows are named by position in messages: a duplicated index would make that ambiguous
    if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1):
        frame = frame.copy(deep=False)  # a new index without copying the columns
        frame.index = pd.RangeIndex(len(frame))
    if frame.columns.duplicated().any():
        dups = frame.columns[frame.columns.duplicated()].unique().tolist()
        raise DataContractError("has duplicate column names", table=table, column=dups,
                                fix="rename or drop one of each pair.")
    check_required(frame, schema)
    all_keys = tuple(schema.keys) + tuple(k for k in keys if k not in schema.keys)
    all_keys += tuple(c for c in frame.columns if c in KEY_COLUMNS and c not in all_keys)
    frame = check_keys_are_strings(frame, table, all_keys)
    check_no_national_numbers(frame, table, all_keys)
    frame = check_binary(frame, table, schema.binary)
    check_values(frame, table, categorical=categorical,
                 skip=set(all_keys) | set(PANEL_CATEGORICAL) | set(_TEXT_FIELDS))
    check_nonnegative(frame, table, schema.nonnegative)
    keep = set(keep_codes)
    coded = [k for k in all_keys if k in frame.columns and k not in keep
             and isinstance(frame[k].dtype, pd.CategoricalDtype)]
    if coded:
        frame = frame.copy(deep=False)
        for k in coded:
            frame[k] = decode_text(frame[k])
    return frame


# Columns that are text by nature (codes, labels, dates, periods): not "numbers as text".
_TEXT_FIELDS = ("stratum", "site", "region", "role", "period", "month", "randomization_period",
                "randomization_date", "ips_start_date", "valid_from", "valid_to", "assessment_date", "arm")
