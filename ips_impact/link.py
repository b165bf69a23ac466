"""Linking the trial's tables: persons, benefits, roster, take-up → one event-time study.

Each function takes validated tables (keys as text, 0/1 as floats) and returns linked
frames; every row set aside, repaired or assumed goes to the :class:`~ips_impact.ledger.Ledger`.
:class:`~ips_impact.study.Study` calls them in order:

1. :func:`build_persons` — one row per randomized person, arm, stratum, randomization period;
2. :func:`merge_benefits` — monthly insurer records aggregated to the panel frequency
   (flags: any month; amounts: monthly mean; codes: the last month of the period);
3. :func:`clean_roster` and :func:`baseline_members` — the household at randomization;
4. :func:`merge_takeup` — IPS take-up;
5. :func:`members_panel` and :func:`derive_outcomes` — the members' panel and derived outcomes.

Keys are compared exactly (as text); :func:`near_misses` says how many unmatched keys
would match after a common spelling repair, so that a delivery problem is visible.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ips_impact import validate as V
from ips_impact.errors import DataContractError
from ips_impact.io.periods import Frequency, date_to_period, parse_dates, parse_periods, period_ordinals
from ips_impact.ledger import Ledger

__all__ = [
    "LinkageReport",
    "REGIONS",
    "normalise_region",
    "arm_counts",
    "build_persons",
    "derive_outcomes",
    "merge_benefits",
    "clean_roster",
    "baseline_members",
    "members_panel",
    "merge_takeup",
    "sep_code_numbers",
    "near_misses",
]


REGIONS = {
    "vl": "VL", "vla": "VL", "flanders": "VL", "vlaanderen": "VL", "flandre": "VL", "flandres": "VL",
    "vlaams gewest": "VL", "région flamande": "VL", "region flamande": "VL", "flemish region": "VL",
    "02000": "VL", "2000": "VL",
    "wal": "WAL", "wallonia": "WAL", "wallonie": "WAL", "wallonië": "WAL", "w": "WAL",
    "waals gewest": "WAL", "région wallonne": "WAL", "region wallonne": "WAL", "walloon region": "WAL",
    "03000": "WAL", "3000": "WAL",
    "bxl": "BXL", "bru": "BXL", "brussels": "BXL", "bruxelles": "BXL", "brussel": "BXL",
    "brussels hoofdstedelijk gewest": "BXL", "région de bruxelles-capitale": "BXL",
    "region de bruxelles-capitale": "BXL", "brussels-capital region": "BXL", "brussels capital region": "BXL",
    "04000": "BXL", "4000": "BXL",
}
"""Region spellings read as VL / WAL / BXL: abbreviations, names in Dutch, French and English,
and the NIS codes of the regions (02000 Flemish, 03000 Walloon, 04000 Brussels-Capital)."""


def normalise_region(values: pd.Series) -> pd.Series:
    """Regions as ``VL``, ``WAL``, ``BXL`` (see :data:`REGIONS`); other spellings are refused."""
    # read once per distinct spelling, spread to the rows by code
    codes, uniques = pd.factorize(values)
    low_u = pd.Series([str(v).strip().lower() for v in uniques], dtype=object)
    out_u = low_u.map(REGIONS).to_numpy(dtype=object)
    out = pd.Series(np.append(out_u, np.nan)[codes], index=values.index, name=values.name)
    bad = pd.Series((codes >= 0) & pd.isna(np.append(out_u, "")[codes]), index=values.index)
    if bad.any():
        raise DataContractError(
            "has unknown regions", table="assignment", column="region", n_rows=int(bad.sum()),
            examples=sorted({str(v) for v in values[bad]})[:5],
            fix="use VL (Flanders), WAL (Wallonia) or BXL (Brussels), or recode them in the mapping file "
                "([assignment.values.region], e.g. \"Vlaanderen (provincie)\" = \"VL\").",
        )
    return out


def arm_counts(arm: pd.Series | np.ndarray) -> tuple[int, int]:
    """Numbers of IPS (1) and control (0) entries."""
    a = np.asarray(arm)
    return int((a == 1).sum()), int((a == 0).sum())


def build_persons(assignment: pd.DataFrame, freq: Frequency, *, date_order: str | None = None) -> pd.DataFrame:
    """One row per randomized person: arm (int8), stratum, randomization period and date.

    ``randomization_date`` is read by :func:`~ips_impact.io.periods.parse_dates` (``date_order``
    settles dd/mm against mm/dd); when ``randomization_period`` is given as well, both
    must agree. Rows are sorted by ``person_id``; covariate columns by name, so the
    order of the input's rows and columns does not matter.
    """
    a = assignment.copy()
    V.check_unique(a, "assignment", ("person_id",), what="person")
    a["arm"] = V.parse_arm(a["arm"])
    if "randomization_date" in a.columns:
        dates = parse_dates(a["randomization_date"], order=date_order, table="assignment",
                            column="randomization_date")
    else:
        dates = None
    if "randomization_period" in a.columns:
        rp, _ = parse_periods(a["randomization_period"], freq, table="assignment", column="randomization_period")
        a["randomization_period"] = rp
        if dates is not None:
            a["randomization_date"] = dates
            if freq != "int":
                implied = date_to_period(dates, freq)
                off = dates.notna() & (implied.astype(str) != rp.astype(str))
                if off.any():
                    n1, n0 = arm_counts(a.loc[off, "arm"])
                    raise DataContractError(
                        f"randomization_period disagrees with the period of randomization_date for "
                        f"{int(off.sum())} persons ({n1} IPS, {n0} control)", table="assignment",
                        column=["randomization_period", "randomization_date"], n_rows=int(off.sum()),
                        examples=[f"row {i}: period {rp[i]} but date {dates[i].date()}" for i in a.index[off][:5]],
                        fix="keep one of the two columns, or correct the extract (a date order read the wrong "
                            "way, dd/mm vs mm/dd, shifts the period: check date_order).",
                    )
        else:
            a["randomization_date"] = (rp.dt.start_time if isinstance(rp.dtype, pd.PeriodDtype)
                                       else pd.Series(pd.NaT, index=a.index))
    else:
        assert dates is not None
        bad = dates.isna()
        if bad.any():
            raise DataContractError(
                "has missing randomization dates", table="assignment",
                column="randomization_date", n_rows=int(bad.sum()),
                examples=[f"row {i}" for i in a.index[bad][:5]],
                fix="every randomized person needs the date of random assignment.",
            )
        a["randomization_date"] = dates
        a["randomization_period"] = date_to_period(a["randomization_date"], freq)
    if "region" in a.columns:
        a["region"] = normalise_region(a["region"])
    if "stratum" not in a.columns:
        a["stratum"] = a["region"] if "region" in a.columns else "all"
    if a["stratum"].isna().any():
        mask = a["stratum"].isna()
        raise DataContractError("has missing strata", table="assignment", column="stratum",
                                n_rows=int(mask.sum()), examples=[f"row {i}" for i in a.index[mask][:5]],
                                fix="fill the randomization block of every person.")
    a["stratum"] = a["stratum"].astype(str)
    a = a.sort_values("person_id", kind="stable").reset_index(drop=True)
    first = ["person_id", "arm", "stratum", "randomization_period", "randomization_date"]
    return a[first + sorted(c for c in a.columns if c not in first)]


def sep_code_numbers(codes: pd.Series, *, table: str = "panel") -> pd.Series:
    """LMD socio-economic position codes as numbers: ``"1.1.1"``, ``"1 1 1"`` and ``111`` are 111.

    Dots, spaces and dashes between the digits are one spelling of the code, not a
    reading choice. Codes that are not digits, or whose first digit is not 1–4, are
    refused (recode them in the mapping file's ``[panel.values.sep_code]``).
    """
    text = codes.map(lambda v: v if pd.isna(v) else str(v).strip())
    text = text.map(lambda v: v[:-2] if isinstance(v, str) and v.endswith(".0") else v)
    digits = text.str.replace(r"[.\s\-]", "", regex=True)
    num = pd.to_numeric(digits, errors="coerce")
    bad = text.notna() & (num.isna() | ~digits.str.slice(0, 1).isin(list("1234")))
    if bad.any():
        raise DataContractError(
            "has socio-economic position codes that are not LMD codes (first digit 1 working, 2 job-seeker, "
            "3 inactive, 4 unknown)", table=table, column="sep_code", n_rows=int(bad.sum()),
            examples=sorted({str(v) for v in codes[bad]})[:5],
            fix="recode them in the mapping file, e.g. [panel.values.sep_code] \"werknemer\" = \"111\".",
        )
    return num.astype("float64")


#: LMD code columns held as text whatever the file gave (a parquet extract may store
#: 111 as an integer, a CSV read text-first gives "111"): one Study for the same data.
CODE_COLUMNS = ("sep_code", "nace", "joint_committee")


def _code_text(values: pd.Series) -> pd.Series:
    if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
        return values.map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    num = values.astype("float64")
    integral = num.isna() | (num == np.floor(num))
    if not bool(integral.all()):
        return values.map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    out = num.map(lambda v: None if np.isnan(v) else str(int(v)))
    return out.astype(object)


def derive_outcomes(panel: pd.DataFrame) -> pd.DataFrame:
    """Add the derived outcomes: ``employed`` from sep_code / n_jobs when absent; ``work_on_di``.

    The LMD code columns (:data:`CODE_COLUMNS`) are normalised to text first; a SEP code
    is stored as its digits (``"1.1.1"`` and ``111`` both become ``"111"``).
    """
    codes = {c: _code_text(panel[c]) for c in CODE_COLUMNS if c in panel.columns}
    if "sep_code" in codes:
        num = sep_code_numbers(panel["sep_code"])
        codes["sep_code"] = num.map(lambda v: None if np.isnan(v) else str(int(v))).astype(object)
    if codes:
        panel = panel.assign(**codes)
    if "employed" not in panel.columns:
        if "sep_code" in panel.columns:
            code = sep_code_numbers(panel["sep_code"])
            first = np.floor(code / 10 ** np.floor(np.log10(code.where(code > 0)))).astype("float64")
            panel = panel.assign(employed=np.where(code.isna(), np.nan, (first == 1).astype(float)))
        elif "n_jobs" in panel.columns:
            emp = (panel["n_jobs"] > 0).astype(float)
            if "self_employed" in panel.columns:
                emp = np.maximum(emp, panel["self_employed"].fillna(0))
            panel = panel.assign(employed=emp.where(panel["n_jobs"].notna()))
    if "work_on_di" not in panel.columns and {"employed", "on_di"} <= set(panel.columns):
        e, d = panel["employed"].astype(float), panel["on_di"].astype(float)
        panel = panel.assign(work_on_di=(e * d).where(e.notna() & d.notna()))
    return panel


def merge_benefits(panel: pd.DataFrame, benefits: pd.DataFrame, freq: Frequency, ledger: Ledger,
                    pid_index: pd.Index) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Aggregate monthly benefit records to the panel frequency and merge them.

    Per person and period: flags as "any month" (max), amounts as the monthly mean over
    the months observed, codes as the last month of the period (rows sorted by month
    first, so the file's order does not matter). Missing panel cells are filled from
    the records (ledger entry per column); months without a panel row are ledgered.
    """
    if freq in ("int", "W"):
        raise DataContractError(
            "monthly benefit records cannot be aggregated to a panel of "
            + ("integer" if freq == "int" else "weekly") + " periods",
            table="benefits", column="month",
            fix="give the panel calendar periods (quarters, months or years), or aggregate the benefits yourself.",
        )
    months, _ = parse_periods(benefits["month"], "M", table="benefits", column="month")
    V.check_unique(benefits.assign(month=months), "benefits", ("person_id", "month"), what="person × month")
    # "last month of the period" must not depend on the file's row order: sort by month first
    order = np.lexsort((months.array.asi8, benefits["person_id"].to_numpy(dtype=str)))
    benefits, months = benefits.iloc[order], months.iloc[order]
    b = benefits.drop(columns="month").assign(period=months.dt.asfreq({"Q": "Q-DEC", "M": "M", "Y": "Y-DEC"}[freq]))
    flags = [c for c in ("on_di", "authorised_work") if c in b.columns]
    cats = [c for c in b.columns if c not in flags + ["person_id", "period"]
            and not pd.api.types.is_numeric_dtype(b[c])]
    nums = [c for c in b.columns if c not in flags + cats + ["person_id", "period"]]
    g = b.groupby(["person_id", "period"], sort=False)
    parts = []
    if flags:
        parts.append(g[flags].max())  # "any month in the period"
    if nums:
        parts.append(g[nums].mean())  # monthly mean over the months observed
    if cats:
        parts.append(g[cats].last())  # status at the end of the period, as LMD codes do
    agg = pd.concat(parts, axis=1).reset_index()
    keys = pd.MultiIndex.from_frame(panel[["person_id", "period"]])
    akeys = pd.MultiIndex.from_frame(agg[["person_id", "period"]])
    pos = keys.get_indexer(akeys)
    unmatched = pos < 0
    if unmatched.any():
        ledger.add("benefits", "benefit months with no panel row for that person and period",
                   int(b.set_index(["person_id", "period"]).index.isin(akeys[unmatched]).sum()),
                   n_persons=int(agg.loc[unmatched, "person_id"].nunique()), action="dropped")
    panel = panel.copy()
    for col in flags + nums + cats:
        vals = agg[col].to_numpy()[~unmatched]
        if col in panel.columns:
            current = panel[col].to_numpy(copy=True)
            tgt = pos[~unmatched]
            # count only cells that really change: missing in the panel, known in the records
            fill = pd.isna(current[tgt]) & ~pd.isna(vals)
            if fill.any():
                current = current.astype(object) if cats and col in cats else current
                current[tgt[fill]] = vals[fill]
                ledger.add("panel", f"missing '{col}' filled from the monthly benefit records", int(fill.sum()),
                           column=col, action="filled")
            panel[col] = current
        else:
            dtype = np.float64 if col in flags + nums else object
            full = np.full(len(panel), np.nan if dtype is np.float64 else None, dtype=dtype)
            full[pos[~unmatched]] = vals
            panel[col] = full
    matched = int(pid_index.isin(benefits["person_id"]).sum())
    return panel, {"table": "benefits", "n_persons_randomized": len(pid_index),
                   "n_persons_matched": matched, "n_rows_unmatched": int(unmatched.sum())}


def clean_roster(roster: pd.DataFrame, ledger: Ledger | None = None, *, date_order: str | None = None) -> pd.DataFrame:
    """Roles normalised, membership dates read, exact duplicate rows set aside (ledger).

    The same person listed twice in one household with overlapping dates but another
    role is refused: which role holds cannot be told.
    """
    r = roster.copy()
    r["role"] = V.normalise_roles(r["role"])
    for c in ("valid_from", "valid_to"):
        if c in r.columns:
            r[c] = parse_dates(r[c], order=date_order, table="households", column=c)
        else:
            r[c] = pd.NaT
    inverted = r["valid_from"].notna() & r["valid_to"].notna() & (r["valid_to"] < r["valid_from"])
    if inverted.any():
        raise DataContractError("has memberships that end before they start", table="households",
                                column=["valid_from", "valid_to"], n_rows=int(inverted.sum()),
                                examples=[f"row {i}" for i in r.index[inverted][:5]],
                                fix="swap or correct valid_from / valid_to.")
    ident = ["household_id", "person_id", "valid_from", "valid_to"]
    exact = r.duplicated(ident + ["role"], keep="first")
    if exact.any():
        if ledger is not None:
            ledger.add("households", "duplicate roster rows (same household, person, role and dates; one kept)",
                       int(exact.sum()), n_persons=int(r.loc[exact, "person_id"].nunique()), action="dropped")
        r = r[~exact]
    conflict = r.duplicated(ident, keep=False)
    if conflict.any():
        raise DataContractError(
            "lists persons twice in the same household over the same dates with different roles",
            table="households", column="role", n_rows=int(conflict.sum()),
            examples=[f"row {i}" for i in r.index[conflict][:5]],
            fix="keep one row per person and membership spell (or give the spells their dates).",
        )
    r = r.sort_values(["household_id", "person_id", "valid_from"], kind="stable", na_position="first")
    r = r.reset_index(drop=True)
    V.check_household_overlaps(r)
    return r


def baseline_members(persons: pd.DataFrame, roster: pd.DataFrame,
                      ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Members of each index person's household at the randomization date.

    Returns the persons (household at randomization filled from the roster), the
    member → index-person map, and the keys of members who joined later or had left
    (their panel rows are set aside under the baseline-roster rule).
    """
    p = persons
    if "household_id" not in p.columns or p["household_id"].isna().any():
        # household at randomization from the roster
        idx_rows = roster.merge(p[["person_id", "randomization_date"]], on="person_id")
        valid = ((idx_rows["valid_from"].isna() | (idx_rows["valid_from"] <= idx_rows["randomization_date"]))
                 & (idx_rows["valid_to"].isna() | (idx_rows["valid_to"] >= idx_rows["randomization_date"])))
        hh_at = idx_rows.loc[valid].drop_duplicates("person_id").set_index("person_id")["household_id"]
        given = p["household_id"] if "household_id" in p.columns else pd.Series(np.nan, index=p.index, dtype=object)
        p = p.assign(household_id=given.fillna(p["person_id"].map(hh_at)))
    idx = p.loc[p["household_id"].notna(), ["person_id", "household_id", "randomization_date", "arm"]]
    cand = roster.merge(idx.rename(columns={"person_id": "index_person_id"}), on="household_id")
    cand = cand[cand["person_id"] != cand["index_person_id"]]
    randomized = cand["person_id"].isin(p["person_id"])
    if randomized.any():
        n1, n0 = arm_counts(cand.loc[randomized, "arm"])
        ledger.add("households", "members who are themselves randomized (analysed as participants, not "
                   "as members of another participant's household)", int(randomized.sum()),
                   n_treated=n1, n_control=n0, action="set aside")
    cand = cand[~randomized]
    d = cand["randomization_date"]
    joined_later = cand["valid_from"].notna() & (cand["valid_from"] > d)
    left_before = cand["valid_to"].notna() & (cand["valid_to"] < d)
    for mask, why in ((joined_later, "members who joined the household after the index person's "
                                     "randomization (post-treatment; not in the baseline roster)"),
                      (left_before, "members who had left the household before randomization")):
        if mask.any():
            n1, n0 = arm_counts(cand.loc[mask, "arm"])
            ledger.add("households", why, int(mask.sum()), n_persons=int(cand.loc[mask, "person_id"].nunique()),
                       n_treated=n1, n_control=n0, action="set aside")
    base = cand[~joined_later & ~left_before]
    mislabeled = base["role"] == "index"
    if mislabeled.any():
        ledger.add("households", "members labelled 'index' who are not the randomized person (role set to "
                   "'other')", int(mislabeled.sum()), column="role", action="repaired")
        base = base.assign(role=base["role"].where(~mislabeled, "other"))
    members_map = base[["person_id", "index_person_id", "household_id", "role"]].reset_index(drop=True)
    later_ids = sorted(set(cand.loc[joined_later | left_before, "person_id"]) - set(members_map["person_id"]))
    not_in_roster = p["household_id"].isna()
    if not_in_roster.any():
        n1, n0 = arm_counts(p.loc[not_in_roster, "arm"])
        ledger.add("households", "randomized persons without a household at randomization in the roster "
                   "(no members linked)", int(not_in_roster.sum()), n_treated=n1, n_control=n0,
                   action="kept, no members")
    return p, members_map, later_ids


def members_panel(rows: pd.DataFrame, members_map: pd.DataFrame, persons: pd.DataFrame,
                   freq: Frequency) -> pd.DataFrame:
    """Panel rows of baseline members with their index person, household, role and ``k``.

    ``k`` is measured from the index person's randomization period; rows are sorted by
    index person, member and ``k``.
    """
    cols = ["person_id", "index_person_id", "household_id", "role", "period", "k"]
    if members_map.empty or rows.empty:
        extra = [c for c in rows.columns if c not in ("person_id", "period")]
        return pd.DataFrame(columns=cols + extra)
    m = rows.merge(members_map, on="person_id", how="inner")
    rp = persons.set_index("person_id")["randomization_period"]
    idx_period = pd.Index(rp.index).get_indexer(m["index_person_id"])
    m["k"] = period_ordinals(m["period"]) - period_ordinals(rp.iloc[idx_period].reset_index(drop=True))
    m = m.sort_values(["index_person_id", "person_id", "k"], kind="stable").reset_index(drop=True)
    return m[cols + [c for c in m.columns if c not in cols]]


def merge_takeup(persons: pd.DataFrame, takeup: pd.DataFrame, ledger: Ledger, *,
                 date_order: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Add ``ips_started`` (and ``ips_start_date``) to the persons.

    A start before the person's randomization date is refused (IPS cannot start
    before assignment: a date order read the wrong way, or a wrong key).
    """
    V.check_unique(takeup, "takeup", ("person_id",), what="person")
    t = takeup.copy()
    if "ips_start_date" in t.columns:
        t["ips_start_date"] = parse_dates(t["ips_start_date"], order=date_order, table="takeup",
                                          column="ips_start_date")
        if "ips_started" not in t.columns:
            t["ips_started"] = t["ips_start_date"].notna().astype(float)
    unknown = ~t["person_id"].isin(persons["person_id"])
    if unknown.any():
        ledger.add("takeup", "take-up rows of persons who were not randomized", int(unknown.sum()),
                   action="dropped")
    t = t[~unknown]
    keep = ["person_id", "ips_started"] + (["ips_start_date"] if "ips_start_date" in t.columns else [])
    out = persons.merge(t[keep], on="person_id", how="left")
    if "ips_start_date" in out.columns:
        early = out["ips_start_date"].notna() & (out["ips_start_date"] < out["randomization_date"])
        if early.any():
            n1, n0 = arm_counts(out.loc[early, "arm"])
            raise DataContractError(
                f"IPS starts before the randomization date for {int(early.sum())} persons ({n1} IPS, "
                f"{n0} control)", table="takeup", column="ips_start_date", n_rows=int(early.sum()),
                examples=[f"row {i}" for i in out.index[early][:5]],
                fix="check the date order of both files (date_order) and the keys; a start cannot precede "
                    "random assignment.",
            )
    absent = out["ips_started"].isna()
    if absent.any():
        n1, n0 = arm_counts(out.loc[absent, "arm"])
        ledger.add("takeup", "randomized persons absent from the take-up list (assumed not to have started "
                   "IPS)", int(absent.sum()), column="ips_started", n_treated=n1, n_control=n0,
                   action="assumed 0")
        out["ips_started"] = out["ips_started"].fillna(0.0)
    out["ips_started"] = out["ips_started"].astype("int8")
    return out, {"table": "takeup", "n_persons_randomized": len(persons),
                 "n_persons_matched": int((~absent).sum()), "n_rows_unmatched": int(unknown.sum())}


# ---------------------------------------------------------------------- near misses
_REPAIRS: tuple[tuple[str, Any, str], ...] = (
    ("surrounding spaces", lambda k: k.strip(), "strip the spaces around the keys in the extract"),
    ("letter case", lambda k: k.casefold(), "write the keys in one case in every table"),
    ("Unicode form (NFC vs NFD)", lambda k: unicodedata.normalize("NFC", k),
     "normalise the keys to Unicode NFC in every table"),
    ("leading zeros", lambda k: k.lstrip("0") or "0",
     "keep the zeros: read the key as text in every table (a spreadsheet or a numeric column drops them)"),
    ("number written as decimal (123 vs 123.0)", lambda k: k[:-2] if k.endswith(".0") else k,
     "store the key as text, not as a floating-point number"),
)


def _full_repair(k: str) -> str:
    k = unicodedata.normalize("NFC", k.strip()).casefold()
    k = k[:-2] if k.endswith(".0") else k
    return k.lstrip("0") or "0"


def near_misses(table: str, unmatched: Iterable[str], others: Iterable[str]) -> pd.DataFrame:
    """How many unmatched randomized keys would match a key of ``table`` after a common repair.

    Keys are compared exactly; this only explains a shortfall. Returns one row per
    repair that would link someone: ``table, kind, n_persons, fix`` (no key is shown).
    """
    miss = [str(k) for k in unmatched]
    pool = [str(k) for k in others]
    rows: list[dict[str, Any]] = []
    if miss and pool:
        for kind, repair, fix in (*_REPAIRS, ("several of these at once", _full_repair,
                                              "apply all the repairs above")):
            target = {repair(k) for k in pool}
            n = sum(repair(k) in target for k in miss)
            if n:
                rows.append({"table": table, "kind": kind, "n_persons": n, "fix": fix})
        if len(rows) > 1 and rows[-1]["kind"] == "several of these at once" and \
                rows[-1]["n_persons"] <= max(r["n_persons"] for r in rows[:-1]):
            rows.pop()
    return pd.DataFrame(rows, columns=["table", "kind", "n_persons", "fix"])


@dataclass(frozen=True)
class LinkageReport:
    """Match rates of the randomized persons to the panel, by arm and stratum.

    ``odds_ratio`` and ``p_value`` are Fisher's exact test of the hypothesis that
    linkage does not depend on the arm (differential linkage would bias every
    comparison of linked persons). ``near_misses`` counts unlinked persons whose key
    would match after a common repair (spaces, case, Unicode form, zeros), with the fix.
    """

    by_arm: pd.DataFrame
    by_stratum: pd.DataFrame
    other_tables: pd.DataFrame
    odds_ratio: float
    p_value: float
    near_misses: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["table", "kind", "n_persons", "fix"]))
    min_share: float = 0.5

    def to_frame(self) -> pd.DataFrame:
        """By-arm rows (``stratum = "all"``) and by-stratum rows in one frame."""
        return pd.concat([self.by_arm.assign(stratum="all"), self.by_stratum], ignore_index=True)

    @property
    def n_linked(self) -> int:
        """Randomized persons with at least one panel row."""
        return int(self.by_arm["n_linked"].sum())

    def _summary_line(self) -> str:
        n = int(self.by_arm["n_randomized"].sum())
        rates = ", ".join(f"{r.arm} {100 * r.match_rate:.1f}%" for r in self.by_arm.itertuples())
        head = f"{self.n_linked} of {n} randomized persons linked to the panel ({rates})"
        if self.n_linked == 0:
            head += " — no one linked: no outcome can be estimated"
        return head

    def __repr__(self) -> str:
        lines = ["Linkage of randomized persons to the panel", self._summary_line(), "",
                 self.by_arm.to_string(index=False), "", self.by_stratum.to_string(index=False), "",
                 self._test_line()]
        if len(self.near_misses):
            lines += ["", "Near misses (unlinked keys that would match after a repair; keys are compared "
                          "exactly)", self.near_misses.to_string(index=False)]
        if len(self.other_tables):
            lines += ["", self.other_tables.to_string(index=False)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        near = (f"<p>Near misses (keys are compared exactly):</p>{self.near_misses.to_html(index=False)}"
                if len(self.near_misses) else "")
        return (f"<h4>Linkage to the panel</h4><p>{self._summary_line()}</p>{self.by_arm.to_html(index=False)}"
                f"{self.by_stratum.to_html(index=False)}"
                f"<p>{self._test_line()}</p>{near}{self.other_tables.to_html(index=False)}")

    def _test_line(self) -> str:
        if not np.isfinite(self.p_value):
            return "Differential linkage (Fisher's exact test): not defined"
        odds = ("not defined (no unlinked person in one arm)" if not np.isfinite(self.odds_ratio)
                or self.odds_ratio == 0 else f"{self.odds_ratio:.3f}")
        return (f"Differential linkage (Fisher's exact test, IPS vs control): odds ratio {odds}, "
                f"p = {self.p_value:.4f}")
