"""The data layer's household roster and sites table: moderators derived from them.

Heterogeneity analyses (and the Study, for its ``sites=`` table) need facts about a
randomized person that are not columns of the assignment table: the household type
and the partner's work at baseline (from the roster), the local unemployment tercile
and the site's IPS fidelity score (from the sites table). They are data, not
estimation, so they live here, beside the Study, and import no estimator.

Rules:

* the baseline household is the roster on the randomization date (a member present
  on that date; unknown dates kept), as in the Study's linkage;
* a column of ``persons`` named like a derived moderator always wins (the user's own
  variable is used as given);
* the fidelity score is the total of the 25-item IPS fidelity scale (25–125); a site
  assessed several times gets the mean of its scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError, EstimationError

__all__ = [
    "DERIVED_MODERATORS",
    "FIDELITY_RANGE",
    "MODERATOR_SOURCES",
    "check_sites",
    "moderator",
    "household_type",
    "partner_at_work",
    "baseline_roster",
]

#: Moderators derived from the study (besides any column of ``persons``).
DERIVED_MODERATORS: tuple[str, ...] = (
    "household_type",
    "partner_at_work",
    "unemployment_tercile",
    "fidelity",
)
_UNEMPLOYMENT_COLUMNS = ("local_unemployment", "unemployment_rate")
#: IPS fidelity scale: 25 items scored 1-5.
FIDELITY_RANGE = (25.0, 125.0)


# ------------------------------------------------------------------ sites table


def check_sites(sites: Any) -> pd.DataFrame:
    """Validate a sites table; one row per site with its mean fidelity score.

    Parameters
    ----------
    sites
        DataFrame with ``site``, ``fidelity`` (or ``fidelity_score``): the total of the
        25-item IPS fidelity scale (25–125), and optionally ``assessment_date``. A site
        assessed several times gets the mean of its scores (``n_assessments`` counts
        them).

    Raises
    ------
    DataContractError
        Not a DataFrame, missing columns, missing or out-of-range scores.
    """
    if not isinstance(sites, pd.DataFrame):
        raise DataContractError(
            f"sites must be a DataFrame, got {type(sites).__name__}", table="sites",
            fix="pass a table with the columns site, fidelity (25-125), assessment_date",
        )
    s = sites.rename(columns={"fidelity_score": "fidelity"})
    missing = [c for c in ("site", "fidelity") if c not in s.columns]
    if missing:
        raise DataContractError(
            "is missing required columns", table="sites", column=missing,
            examples=list(s.columns), fix="give the columns site and fidelity (25-125)",
        )
    score = pd.to_numeric(s["fidelity"], errors="coerce")
    bad = score.isna() | (score < FIDELITY_RANGE[0]) | (score > FIDELITY_RANGE[1])
    if bad.any():
        raise DataContractError(
            "has fidelity scores that are missing or outside the 25-item IPS scale (25-125)",
            table="sites", column="fidelity", n_rows=int(bad.sum()),
            examples=s.loc[bad, "site"].astype(str).tolist(),
            fix="give the total of the 25 items (each scored 1-5) for every assessment",
        )
    if "assessment_date" in s.columns:
        d = pd.to_datetime(s["assessment_date"], errors="coerce", format="ISO8601")
        badd = s["assessment_date"].notna() & d.isna()
        if badd.any():
            raise DataContractError(
                "has unparseable assessment dates", table="sites", column="assessment_date",
                n_rows=int(badd.sum()), examples=s.loc[badd, "site"].astype(str).tolist(),
                fix="write dates as YYYY-MM-DD",
            )
    if s["site"].isna().any():
        raise DataContractError("has rows without a site", table="sites", column="site",
                                n_rows=int(s["site"].isna().sum()), fix="fill the site label")
    g = pd.DataFrame({"site": s["site"].astype(str), "fidelity": score}).groupby("site", sort=True)
    return pd.DataFrame({"fidelity": g["fidelity"].mean(), "n_assessments": g.size()}).reset_index()


# ------------------------------------------------------------------ moderators


def _baseline_roster(study: Any) -> pd.DataFrame:
    """Members (index_person_id, person_id, role) of each baseline household.

    From the roster, on each index person's randomization date (members without any
    panel row included).
    """
    roster = study.households
    persons = study.persons
    if roster is None or "household_id" not in persons.columns:
        raise EstimationError(
            "household moderators need the household roster",
            table="households",
            fix="build the Study with households=<roster>",
        )
    p = persons[["person_id", "household_id", "randomization_date"]].rename(
        columns={"person_id": "index_person_id"})
    cand = roster.merge(p[p["household_id"].notna()], on="household_id")
    cand = cand[(cand["person_id"] != cand["index_person_id"])
                & ~cand["person_id"].isin(persons["person_id"])]
    d = cand["randomization_date"]
    # the Study's baseline rule: present on the randomization date (unknown dates kept)
    later = cand["valid_from"].notna() & (cand["valid_from"] > d)
    left = cand["valid_to"].notna() & (cand["valid_to"] < d)
    return cand.loc[~later & ~left, ["index_person_id", "person_id", "role"]].drop_duplicates()


def _household_type(study: Any) -> pd.Series:
    r"""Single / couple / couple with children / single parent / other, per index person.

    From the baseline roster: partner and child → "couple with children"; partner, no
    child → "couple"; child, no partner → "single parent"; only parents or other
    members → "other"; nobody → "single". Missing when the person has no household.
    """
    persons = study.persons
    base = _baseline_roster(study)
    pid = persons["person_id"]
    partner = pid.isin(base.loc[base["role"] == "partner", "index_person_id"])
    child = pid.isin(base.loc[base["role"] == "child", "index_person_id"])
    anyone = pid.isin(base["index_person_id"])
    out = np.select(
        [partner & child, partner, child, anyone],
        ["couple with children", "couple", "single parent", "other"],
        default="single",
    )
    out = pd.Series(out, index=persons.index, dtype=object)
    out[persons["household_id"].isna().to_numpy()] = None
    return out


def _partner_at_work(study: Any, baseline: int) -> pd.Series:
    """"no partner" / "partner not at work" / "partner at work" at event time ``baseline``.

    Missing when a partner is in the roster but not observed at ``baseline``.
    """
    persons = study.persons
    base = _baseline_roster(study)
    members = study.members
    if "employed" not in members.columns:
        raise EstimationError(
            "partner_at_work needs the members' 'employed' (or sep_code / n_jobs) column",
            table="members", column="employed",
            fix="include the partners' LMD rows with sep_code or n_jobs in the panel",
        )
    partners = base[base["role"] == "partner"]
    m = members[(members["role"] == "partner") & (members["k"] == baseline)]
    m = m[m["employed"].notna()]
    at_work = m.groupby("index_person_id")["employed"].max()
    pid = persons["person_id"]
    has_partner = pid.isin(partners["index_person_id"])
    observed = pid.isin(at_work.index)
    work = pid.map(at_work)
    at_work_label = np.where(work.fillna(0).to_numpy() > 0,
                             "partner at work", "partner not at work")
    out = np.where(~has_partner, "no partner", at_work_label)
    out = pd.Series(out, index=persons.index, dtype=object)
    out[(has_partner & ~observed).to_numpy()] = None
    out[persons["household_id"].isna().to_numpy()] = None
    return out


#: Where a moderator's values come from (``spec["moderator_source"]``).
MODERATOR_SOURCES = {
    "persons": "the column of persons (the user's own variable)",
    "roster": "derived from the baseline household roster",
    "sites": "the site's fidelity score from the sites table",
}


def _moderator(
    study: Any, by: str, sites: pd.DataFrame | None, baseline: int
) -> tuple[pd.Series, str | None, str, str]:
    """Moderator values aligned with persons, and where they come from.

    Returns the values, a forced kind (or None), the column used and the source (a
    key of :data:`MODERATOR_SOURCES`).

    A column of ``persons`` named ``by`` always wins: the user's own variable is used
    as given, even for the names of derived moderators (``household_type``…); a derived
    moderator is built only when ``persons`` has no such column.
    """
    persons = study.persons
    reserved = ("person_id", "arm", "randomization_date", "randomization_period")
    if by in persons.columns and by not in reserved:
        return persons[by], None, by, "persons"
    if by == "household_type":
        return _household_type(study), "categorical", by, "roster"
    if by == "partner_at_work":
        return _partner_at_work(study, baseline), "categorical", by, "roster"
    if by == "unemployment_tercile":
        col = next((c for c in _UNEMPLOYMENT_COLUMNS if c in persons.columns), None)
        if col is None:
            raise EstimationError(
                "unemployment_tercile needs a column of local unemployment in persons",
                table="persons", column=list(_UNEMPLOYMENT_COLUMNS),
                fix="add local_unemployment (rate in the person's municipality or district) "
                "to the assignment table",
            )
        return persons[col], "tercile", col, "persons"
    if by == "fidelity":
        if sites is None:
            raise EstimationError(
                "by='fidelity' needs the sites table", table="sites",
                fix="pass sites=<DataFrame with site, fidelity, assessment_date>",
            )
        if "site" not in persons.columns:
            raise EstimationError("by='fidelity' needs the persons' site", table="persons",
                                  column="site", fix="add site to the assignment table")
        fid = sites.set_index("site")["fidelity"]
        fidelity = persons["site"].astype(str).map(fid).where(persons["site"].notna())
        return fidelity, "continuous", by, "sites"
    allowed = [c for c in persons.columns if c not in reserved] + list(DERIVED_MODERATORS)
    raise EstimationError(
        f"by must be a column of persons or one of {', '.join(DERIVED_MODERATORS)}; "
        f"you passed {by!r}",
        table="persons", column=by, examples=allowed,
        fix="choose one of the moderators listed",
    )


#: Public names of the derived moderators' builders.
moderator = _moderator
household_type = _household_type
partner_at_work = _partner_at_work
baseline_roster = _baseline_roster
