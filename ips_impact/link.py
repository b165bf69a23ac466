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

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ips_impact import validate as V
from ips_impact.errors import DataContractError
from ips_impact.io.periods import Frequency, date_to_period, parse_periods, period_ordinals
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
]


REGIONS = {
    "vl": "VL", "vla": "VL", "flanders": "VL", "vlaanderen": "VL", "flandre": "VL", "flandres": "VL",
    "wal": "WAL", "wallonia": "WAL", "wallonie": "WAL", "wallonië": "WAL", "w": "WAL",
    "bxl": "BXL", "bru": "BXL", "brussels": "BXL", "bruxelles": "BXL", "brussel": "BXL",
}


def normalise_region(values: pd.Series) -> pd.Series:
    low = values.map(lambda v: v if pd.isna(v) else str(v).strip().lower())
    out = low.map(REGIONS)
    bad = low.notna() & out.isna()
    if bad.any():
        raise DataContractError(
            "has unknown regions", table="assignment", column="region", n_rows=int(bad.sum()),
            examples=sorted({str(v) for v in values[bad]})[:5],
            fix="use VL (Flanders), WAL (Wallonia) or BXL (Brussels).",
        )
    return out


def arm_counts(arm: pd.Series | np.ndarray) -> tuple[int, int]:
    a = np.asarray(arm)
    return int((a == 1).sum()), int((a == 0).sum())


def build_persons(assignment: pd.DataFrame, freq: Frequency) -> pd.DataFrame:
    a = assignment.copy()
    V.check_unique(a, "assignment", ("person_id",), what="person")
    a["arm"] = V.parse_arm(a["arm"])
    if "randomization_period" in a.columns:
        rp, _ = parse_periods(a["randomization_period"], freq, table="assignment", column="randomization_period")
        a["randomization_period"] = rp
        if "randomization_date" in a.columns:
            a["randomization_date"] = pd.to_datetime(a["randomization_date"], errors="coerce")
        else:
            a["randomization_date"] = (rp.dt.start_time if isinstance(rp.dtype, pd.PeriodDtype)
                                       else pd.Series(pd.NaT, index=a.index))
    else:
        raw = a["randomization_date"]
        dates = pd.to_datetime(raw, errors="coerce") if not pd.api.types.is_datetime64_any_dtype(raw) else raw
        bad = dates.isna()
        if bad.any():
            raise DataContractError(
                "has missing or unparseable randomization dates", table="assignment",
                column="randomization_date", n_rows=int(bad.sum()),
                examples=[f"{pid}: {raw[i]!r}" for i, pid in a.loc[bad, "person_id"].items()][:5],
                fix="write dates as YYYY-MM-DD; every randomized person needs one.",
            )
        a["randomization_date"] = dates.dt.normalize()
        a["randomization_period"] = date_to_period(a["randomization_date"], freq)
    if "region" in a.columns:
        a["region"] = normalise_region(a["region"])
    if "stratum" not in a.columns:
        a["stratum"] = a["region"] if "region" in a.columns else "all"
    if a["stratum"].isna().any():
        mask = a["stratum"].isna()
        raise DataContractError("has missing strata", table="assignment", column="stratum",
                                n_rows=int(mask.sum()), examples=a.loc[mask, "person_id"].tolist(),
                                fix="fill the randomization block of every person.")
    a["stratum"] = a["stratum"].astype(str)
    a = a.sort_values("person_id", kind="stable").reset_index(drop=True)
    first = ["person_id", "arm", "stratum", "randomization_period", "randomization_date"]
    return a[first + [c for c in a.columns if c not in first]]


def derive_outcomes(panel: pd.DataFrame) -> pd.DataFrame:
    """Derived outcomes: ``employed`` from sep_code / n_jobs when absent; ``work_on_di``."""
    if "employed" not in panel.columns:
        if "sep_code" in panel.columns:
            code = pd.to_numeric(panel["sep_code"], errors="coerce")
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
    if freq in ("int", "W"):
        raise DataContractError(
            "monthly benefit records cannot be aggregated to a panel of "
            + ("integer" if freq == "int" else "weekly") + " periods",
            table="benefits", column="month",
            fix="give the panel calendar periods (quarters, months or years), or aggregate the benefits yourself.",
        )
    months, _ = parse_periods(benefits["month"], "M", table="benefits", column="month")
    V.check_unique(benefits.assign(month=months), "benefits", ("person_id", "month"), what="person × month")
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


def clean_roster(roster: pd.DataFrame) -> pd.DataFrame:
    r = roster.copy()
    r["role"] = V.normalise_roles(r["role"])
    for c in ("valid_from", "valid_to"):
        if c in r.columns:
            raw = r[c]
            r[c] = pd.to_datetime(raw, errors="coerce")
            bad = raw.notna() & r[c].isna()
            if bad.any():
                raise DataContractError("has unparseable dates", table="households", column=c,
                                        n_rows=int(bad.sum()), examples=r.loc[bad, "person_id"].tolist(),
                                        fix="write dates as YYYY-MM-DD (empty = open).")
        else:
            r[c] = pd.NaT
    inverted = r["valid_from"].notna() & r["valid_to"].notna() & (r["valid_to"] < r["valid_from"])
    if inverted.any():
        raise DataContractError("has memberships that end before they start", table="households",
                                column=["valid_from", "valid_to"], n_rows=int(inverted.sum()),
                                examples=r.loc[inverted, "person_id"].tolist(),
                                fix="swap or correct valid_from / valid_to.")
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


def merge_takeup(persons: pd.DataFrame, takeup: pd.DataFrame, ledger: Ledger) -> tuple[pd.DataFrame, dict]:
    V.check_unique(takeup, "takeup", ("person_id",), what="person")
    t = takeup.copy()
    if "ips_start_date" in t.columns:
        raw = t["ips_start_date"]
        t["ips_start_date"] = pd.to_datetime(raw, errors="coerce")
        bad = raw.notna() & t["ips_start_date"].isna()
        if bad.any():
            raise DataContractError("has unparseable dates", table="takeup", column="ips_start_date",
                                    n_rows=int(bad.sum()), examples=t.loc[bad, "person_id"].tolist(),
                                    fix="write dates as YYYY-MM-DD (empty = never started).")
        if "ips_started" not in t.columns:
            t["ips_started"] = t["ips_start_date"].notna().astype(float)
    unknown = ~t["person_id"].isin(persons["person_id"])
    if unknown.any():
        ledger.add("takeup", "take-up rows of persons who were not randomized", int(unknown.sum()),
                   action="dropped")
    t = t[~unknown]
    keep = ["person_id", "ips_started"] + (["ips_start_date"] if "ips_start_date" in t.columns else [])
    out = persons.merge(t[keep], on="person_id", how="left")
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


@dataclass(frozen=True)
class LinkageReport:
    """Match rates of the randomized persons to the panel, by arm and stratum.

    ``test`` is Fisher's exact test of the hypothesis that linkage does not depend on
    the arm (differential linkage would bias every comparison of linked persons).
    """

    by_arm: pd.DataFrame
    by_stratum: pd.DataFrame
    other_tables: pd.DataFrame
    odds_ratio: float
    p_value: float

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([self.by_arm.assign(stratum="all"), self.by_stratum], ignore_index=True)

    def __repr__(self) -> str:
        lines = ["Linkage of randomized persons to the panel", self.by_arm.to_string(index=False), "",
                 self.by_stratum.to_string(index=False), "", self._test_line()]
        if len(self.other_tables):
            lines += ["", self.other_tables.to_string(index=False)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return (f"<h4>Linkage to the panel</h4>{self.by_arm.to_html(index=False)}"
                f"{self.by_stratum.to_html(index=False)}"
                f"<p>{self._test_line()}</p>{self.other_tables.to_html(index=False)}")

    def _test_line(self) -> str:
        odds = ("not defined (no unlinked person in one arm)" if not np.isfinite(self.odds_ratio)
                or self.odds_ratio == 0 else f"{self.odds_ratio:.3f}")
        return (f"Differential linkage (Fisher's exact test, IPS vs control): odds ratio {odds}, "
                f"p = {self.p_value:.4f}")
