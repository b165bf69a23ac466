"""Who is in the synthetic trial: participants, design, households, take-up types.

Everything here is drawn once per sample and is common to both potential worlds
(baseline covariates, strata, households). The assignment itself is drawn by
:func:`draw_assignment`, which :meth:`SyntheticTrial.rerandomize` re-uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ips_impact.errors import DataContractError
from ips_impact.synthetic.params import REGIONS, SITES, SyntheticParams

__all__ = ["Population", "draw_population", "draw_assignment", "pseudonyms"]

_B32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)
EDUCATION = ("low", "medium", "high")
DIAGNOSIS = ("mood", "anxiety", "psychotic", "personality", "other")
HOUSEHOLD = ("single", "couple", "couple_children", "one_parent")


def pseudonyms(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    """``n`` distinct random keys ``prefix`` + 10 base32 characters (object array).

    The letter prefix guarantees a key is never all digits (so it can never be mistaken
    for a national register number). Collisions (probability ≈ n²/2·32¹⁰) are re-drawn.
    """
    out = np.empty(0, dtype="S11")
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    while out.size < n:
        need = n - out.size + 8
        codes = _B32[rng.integers(0, 32, size=(need, 10))]
        raw = np.concatenate([np.broadcast_to(pre, (need, pre.size)), codes], axis=1)
        keys = np.ascontiguousarray(raw).view(f"S{10 + pre.size}").ravel()
        allk = np.concatenate([out, keys])
        _, first = np.unique(allk, return_index=True)
        out = allk[np.sort(first)][:n]
    return out.astype(str).astype(object)


@dataclass(frozen=True)
class Population:
    """Arrays describing the participants (length n) and their household members.

    Month indices are absolute (``year * 12 + month - 1``). ``origin_month`` is the
    first month of the first simulated quarter of the person's window.
    """

    n: int
    person_id: np.ndarray
    household_id: np.ndarray
    region: np.ndarray  # int codes into REGIONS
    site: np.ndarray  # object
    stratum: np.ndarray  # object labels
    stratum_code: np.ndarray  # int
    randomization_date: np.ndarray  # datetime64[D]
    rand_month: np.ndarray  # absolute month index
    age: np.ndarray
    female: np.ndarray
    education: np.ndarray  # int codes into EDUCATION
    diagnosis: np.ndarray  # int codes into DIAGNOSIS
    primary: np.ndarray  # bool: primary incapacity at randomization
    di_months: np.ndarray  # months on DI at randomization
    employability: np.ndarray  # log-hazard shift (covariates + frailty)
    wage_ft: np.ndarray  # full-time monthly wage, EUR
    household_type: np.ndarray  # int codes into HOUSEHOLD
    situation: np.ndarray  # 0 dependants, 1 single, 2 cohabitant (DI invalidity rate)
    takeup_if_ips: np.ndarray  # bool D(1)
    takeup_if_control: np.ndarray  # bool D(0)
    ips_start_delay: np.ndarray  # days from randomization to IPS start
    ub_eligible: np.ndarray
    ub_amount: np.ndarray


def _largest_remainder(n: int, weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    raw = n * w / w.sum()
    base = np.floor(raw).astype(np.int64)
    rest = n - base.sum()
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base


def _half_years(start: np.datetime64, end: np.datetime64) -> list[tuple[str, np.datetime64, np.datetime64]]:
    """Enrolment half-years intersecting [start, end]: (label, first day, last day)."""
    y0 = int(str(start)[:4])
    y1 = int(str(end)[:4])
    out = []
    for y in range(y0, y1 + 1):
        for h, (a, b) in enumerate(((f"{y}-01-01", f"{y}-06-30"), (f"{y}-07-01", f"{y}-12-31"))):
            lo = max(np.datetime64(a), start)
            hi = min(np.datetime64(b), end)
            if lo <= hi:
                out.append((f"{y}H{h + 1}", lo, hi))
    return out


def draw_assignment(
    rng: np.random.Generator, stratum_code: np.ndarray, n_treated: np.ndarray
) -> np.ndarray:
    """Complete randomization within strata: exactly ``n_treated[s]`` in IPS in stratum s.

    Parameters
    ----------
    rng
        Generator used for the random order within strata.
    stratum_code
        Integer stratum of each randomized person.
    n_treated
        Number of IPS places per stratum (indexed by stratum code).

    Returns
    -------
    numpy.ndarray
        int8 arm per person (1 = IPS).
    """
    n = stratum_code.size
    key = rng.random(n)
    order = np.lexsort((key, stratum_code))
    sorted_codes = stratum_code[order]
    starts = np.searchsorted(sorted_codes, sorted_codes, side="left")
    rank = np.arange(n) - starts
    arm = np.zeros(n, dtype=np.int8)
    arm[order] = (rank < n_treated[sorted_codes]).astype(np.int8)
    return arm


def draw_population(n: int, p: SyntheticParams, rngs: dict[str, np.random.Generator]) -> Population:
    """Draw participants, strata and baseline covariates (sorted by pseudonym)."""
    if n < 2:
        raise DataContractError(
            f"n_persons must be at least 2; got {n}", table="params", column="n_persons",
            fix="ask for at least two persons (one per arm)",
        )
    rng = rngs["population"]
    # --- design: regions, cohorts (even stratum sizes so that counts match 1:1)
    regions = [r for r in REGIONS if p.region_shares.get(r, 0) > 0]
    n_reg = _largest_remainder(n, np.array([p.region_shares[r] for r in regions]))
    start, end = np.datetime64(p.enrolment_start), np.datetime64(p.enrolment_end)
    cohorts = _half_years(start, end)
    days = np.array([(hi - lo).astype(int) + 1 for _, lo, hi in cohorts], dtype=float)
    reg_list, coh_list = [], []
    for ri, r in enumerate(regions):
        pairs = rng.multinomial(n_reg[ri] // 2, days / days.sum())
        sizes = 2 * pairs
        if n_reg[ri] % 2:
            sizes[rng.integers(len(cohorts))] += 1
        reg_list.append(np.full(n_reg[ri], REGIONS.index(r)))
        coh_list.append(np.repeat(np.arange(len(cohorts)), sizes))
    region = np.concatenate(reg_list).astype(np.int8)
    cohort = np.concatenate(coh_list)
    lo = np.array([c[1] for c in cohorts], dtype="datetime64[D]")
    span = days.astype(np.int64)
    rdate = lo[cohort] + (rng.random(n) * span[cohort]).astype(np.int64)
    labels = np.array([f"{REGIONS[r]}-{cohorts[c][0]}" for r in range(3) for c in range(len(cohorts))],
                      dtype=object)
    stratum_full = region.astype(np.int64) * len(cohorts) + cohort
    used, stratum_code = np.unique(stratum_full, return_inverse=True)
    stratum = labels[stratum_full]
    # sites
    site = np.empty(n, dtype=object)
    u_site = rng.random(n)
    for ri, r in enumerate(REGIONS):
        m = region == ri
        names = SITES[r]
        if len(names) == 1:
            site[m] = names[0]
        else:
            w = np.array([p.site_weights_wal.get(s, 0.0) for s in names], dtype=float)
            cum = np.cumsum(w / w.sum())
            pick = np.searchsorted(cum, u_site[m], side="right").clip(0, len(names) - 1)
            site[m] = np.asarray(names, dtype=object)[pick]
    # --- covariates
    age = np.clip(p.age_mean + p.age_sd * rng.standard_normal(n), p.age_min, p.age_max)
    female = (rng.random(n) < p.female_share).astype(np.int8)
    edu = _categorical(rng, n, p.education_shares, EDUCATION)
    diag = _categorical(rng, n, p.diagnosis_shares, DIAGNOSIS)
    primary = rng.random(n) < p.primary_share
    di_months = np.where(
        primary,
        rng.integers(3, 12, size=n),
        12 + np.floor(rng.exponential(p.invalidity_months_mean, size=n)).astype(np.int64),
    ).astype(np.int64)
    frailty = rng.standard_normal(n)
    b_edu = np.array([p.beta_education.get(e, 0.0) for e in EDUCATION])
    b_diag = np.array([p.beta_diagnosis.get(d, 0.0) for d in DIAGNOSIS])
    employability = (
        p.employability_sd * frailty
        + p.beta_age * (age - 40.0) / 10.0
        + p.beta_female * female
        + b_edu[edu]
        + b_diag[diag]
        + p.beta_invalidity * (~primary)
    )
    med = np.array([p.wage_median_by_education.get(e, 3000.0) for e in EDUCATION])
    wage_ft = med[edu] * np.exp(p.wage_sd_log * rng.standard_normal(n))
    hh = _categorical(rng, n, p.household_shares, HOUSEHOLD)
    # take-up types: compliers are a little more employable (motivation)
    zs = (employability - employability.mean()) / max(employability.std(), 1e-12)
    u_take = rng.random(n)  # drawn even when everyone starts, to keep the stream
    if p.takeup_rate >= 1.0:
        take1 = np.ones(n, dtype=bool)
    else:
        logit = np.log(p.takeup_rate / (1 - p.takeup_rate)) + p.takeup_employability_slope * zs
        take1 = u_take < 1.0 / (1.0 + np.exp(-logit))
    take0 = rng.random(n) < p.crossover_rate
    take1 |= take0  # monotonicity: always-takers start in both arms
    delay = 1 + np.floor(rng.exponential(max(p.start_delay_days_mean - 1, 0.0) + 1e-9, size=n))
    ub_elig = rng.random(n) < p.ub_share
    ub_amt = np.maximum(p.ub_amount_mean + p.ub_amount_sd * rng.standard_normal(n), 600.0)
    # --- keys, then sort everything by pseudonym (hides the generation order)
    pid = pseudonyms(rngs["ids"], n, "P")
    order = np.argsort(pid.astype(str), kind="stable")
    rmonth = _month_index(rdate)
    pop = Population(
        n=n, person_id=pid, household_id=np.empty(0, dtype=object),
        region=region, site=site, stratum=stratum, stratum_code=stratum_code.astype(np.int64),
        randomization_date=rdate, rand_month=rmonth, age=age, female=female,
        education=edu, diagnosis=diag, primary=primary, di_months=di_months,
        employability=employability, wage_ft=wage_ft, household_type=hh,
        situation=np.zeros(n, dtype=np.int8), takeup_if_ips=take1,
        takeup_if_control=take0, ips_start_delay=delay.astype(np.int64),
        ub_eligible=ub_elig, ub_amount=ub_amt,
    )
    return _take(pop, order)


def _take(pop: Population, order: np.ndarray) -> Population:
    vals = {}
    for name in Population.__dataclass_fields__:
        v = getattr(pop, name)
        vals[name] = v[order] if isinstance(v, np.ndarray) and v.shape[:1] == (pop.n,) else v
    return Population(**vals)


def _categorical(rng: np.random.Generator, n: int, shares: dict[str, float], levels: tuple[str, ...]) -> np.ndarray:
    w = np.array([shares.get(lv, 0.0) for lv in levels], dtype=float)
    cum = np.cumsum(w / w.sum())
    return np.searchsorted(cum, rng.random(n), side="right").clip(0, len(levels) - 1).astype(np.int8)


def _month_index(dates: np.ndarray) -> np.ndarray:
    m = dates.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    return m + 1970 * 12
