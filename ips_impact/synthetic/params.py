"""Parameters of the synthetic IPS trial.

:class:`SyntheticParams` is a frozen dataclass: every number that shapes the synthetic
trial is a field with a default calibrated to the Belgian IPS pilot (see
``shared/DOMAIN.md``). Change any of them with :func:`dataclasses.replace`::

    from dataclasses import replace
    p = replace(SyntheticParams(), post_quarters=12, pre_quarters=4)

Time units: hazards are *monthly* probabilities (the simulation runs month by month and
the quarterly LMD panel is aggregated from it); horizons of the panel are in quarters.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ips_impact.errors import DataContractError

__all__ = ["SyntheticParams", "REGIONS", "SITES"]

#: Region codes in the order used everywhere (Flanders, Wallonia, Brussels).
REGIONS: tuple[str, ...] = ("VL", "WAL", "BXL")

#: IPS providers / regional services of the pilot, by region.
SITES: dict[str, tuple[str, ...]] = {
    "VL": ("VDAB-GTB",),
    "WAL": ("Forem-Liege-Article23", "Forem-Charleroi-ISPPC"),
    "BXL": ("Actiris-Bruxelles",),
}


def _d(**kw: float) -> Any:
    return field(default_factory=lambda: dict(kw))


@dataclass(frozen=True)
class SyntheticParams:
    """All parameters of the synthetic trial (frozen; use ``dataclasses.replace``).

    Design
    ------
    region_shares
        Share of randomized persons in each region; default 340/200/60 IPS trajectories
        with as many controls (VL 680, WAL 400, BXL 120 of 1,200).
    p_treated
        Share assigned to IPS within each stratum (complete randomization; odd strata
        put the extra person in a random arm).
    enrolment_start, enrolment_end
        Rolling enrolment window (ISO dates); strata are region × enrolment half-year.
    pre_quarters, post_quarters
        Panel span around each person's randomization quarter: ``k`` runs from
        ``-pre_quarters`` to ``post_quarters``.
    history_quarters
        Quarters simulated before randomization whatever ``pre_quarters`` is (the
        simulation starts ``max(history_quarters, pre_quarters)`` quarters before), so
        that shortening the displayed panel does not change the outcomes. The baseline
        covariates ``pre_employment_share`` and ``pre_earnings`` are computed over these
        quarters.
    site_weights_wal
        Split of Walloon participants between the Liège and Charleroi sites.

    Population
    ----------
    age_mean, age_sd, age_min, age_max
        Age at randomization (years), truncated normal.
    female_share
        Share of women.
    education_shares
        Shares of "low", "medium", "high" education.
    diagnosis_shares
        Shares of the diagnosis groups ("mood", "anxiety", "psychotic", "personality",
        "other").
    primary_share
        Share in primary incapacity (first year of DI) at randomization; the others are
        in invalidity. ``di_months`` (months on DI at randomization) is uniform on
        3–11 in primary incapacity and 12 + exponential(``invalidity_months_mean``) in
        invalidity.
    household_shares
        Shares of household types "single", "couple", "couple_children", "one_parent".
    married_share
        Share of couples who are married (LIPRO MAR*) rather than cohabiting (UNM*).
    children_extra_mean
        Children per household with children: 1 + Poisson(children_extra_mean), ≤ 4.
    child_panel_min_age
        Children at least this old at randomization are working age and have their own
        LMD panel.
    late_partner_share
        Share of single / one-parent index persons joined by a partner 3–24 months
        *after* randomization (not in the baseline roster; no effect on them).
    partner_leave_share
        Share of baseline partners who leave the household 6–48 months after
        randomization (``valid_to`` set; still in the baseline roster).

    Employment dynamics (monthly hazards)
    -------------------------------------
    job_exit_rate
        Monthly probability that a job spell ends (≈ 5% a month in the pilot).
    entry_rate_post
        Monthly job-finding hazard of a control participant on DI after randomization,
        for an average person, by region (regional labour markets).
    entry_rate_pre_di
        Job-finding hazard while on DI before randomization (authorised work is rare).
    entry_rate_no_di, exit_rate_no_di
        Hazards while not on DI (before DI onset, or after leaving DI).
    employability_sd
        SD of the person-level log-hazard frailty (unobserved employability).
    beta_age, beta_female, beta_education, beta_diagnosis, beta_invalidity
        Log-hazard shifts: per 10 years of age above 40, women, education level,
        diagnosis group, invalidity (vs primary incapacity) at baseline.
    p_employed_at_origin_di, p_employed_at_origin_no_di
        Employment probability at the start of the simulated history.
    onset_job_loss
        Probability that a job ends at DI onset.
    self_employed_share, second_job_share, civil_servant_share
        Shares of job spells that are self-employment, with two salaried jobs, in the
        public sector (worker class "civil_servant", LMD code 112).
    temp_agency_share, permanent_share, permanent_share_temp
        Shares of salaried spells that are temporary-agency work, and that have a
        permanent contract (outside and inside temp-agency work).
    fte_mean, fte_sd, fte_min
        Part-time fraction of a job in the control arm: clip(normal, fte_min, 1), in
        steps of 0.05.
    ips_fte_shift
        Shift of the mean part-time fraction of jobs found in the IPS arm (negative:
        more part-time work in IPS).
    wage_median_by_education, wage_sd_log, job_wage_sd_log
        Full-time gross monthly wage (EUR) of the person, its log-SD, and the log-SD of
        the job-specific wage factor.
    days_per_month
        Working days of a full-time month; days worked = days × (0.3 + 0.7 fte).

    IPS effect
    ----------
    effect_size
        Peak multiplicative boost of the job-finding hazard for IPS starters.
    effect_ramp_months
        Time constant of the ramp-up (rapid job search).
    effect_fade_months, effect_floor
        The boost fades as ``floor + (1 - floor) exp(-s / fade)``.
    effect_by_region
        Multiplier of the boost by region (1 = same effect everywhere).
    takeup_rate
        Share of IPS-arm participants who start IPS (compliers).
    takeup_employability_slope
        Log-odds shift of take-up per SD of employability (motivated people start more).
    crossover_rate
        Share of participants who would start IPS even in the control arm
        (always-takers; 0 = no crossover).
    start_delay_days_mean
        Mean days between randomization and the first IPS appointment.

    DI and benefits
    ---------------
    di_exit_rate, di_exit_rate_working, di_exit_rate_working_above_half
        Monthly probability of leaving DI after randomization when not working, when
        working at most half time, when working more than half time (authorised work
        needs ≥ 50% incapacity).
    ips_di_exit_multiplier
        Multiplier of the DI exit rates while working for IPS starters (benefits
        counselling and full return to work). It is what lets the DI benefit fall by
        ≈ EUR 110 with only +7.5 pp working on DI: the work cut alone cannot reach it.
    ips_di_exit_fade_months
        The extra DI exit of IPS starters fades as ``exp(-s / fade)`` (s in months).
    di_reentry_rate
        Monthly probability that a person who left DI after randomization and is out
        of work returns to DI (relapse).
    retirement_age
        DI and work stop at this age (pension).
    replacement_primary, replacement_dependants, replacement_single,
    replacement_cohabitant
        DI replacement rates (primary incapacity; invalidity by household situation).
    wage_cap, benefit_min_dependants, benefit_min_single, benefit_min_cohabitant,
    benefit_max
        Cap on the lost wage and minimum / maximum monthly benefits (EUR).
    benefit_scale
        Overall multiplier of the DI benefit (calibration of the level).
    authorised_work_threshold
        Since April 2018 the benefit is multiplied by 1 − max(0, fte − threshold).
    authorised_share
        Share of job spells on DI that have the physician's authorisation (art. 100 §2).
    ub_share, ub_amount_mean, ub_amount_sd
        Share of people off DI and out of work receiving unemployment benefit, its mean
        and SD (EUR per month).

    Household members
    -----------------
    partner_entry_rate, partner_exit_rate, partner_di_share
        Hazards of partners; share of partners on DI.
    partner_effect
        Multiplicative boost of the partner's job-finding hazard when the index person
        starts IPS (spillover), with the same time shape as the participant's effect.
    child_entry_rate, child_exit_rate, child_effect
        Same for working-age children.
    """

    # design
    region_shares: dict[str, float] = _d(VL=340 / 600, WAL=200 / 600, BXL=60 / 600)
    p_treated: float = 0.5
    enrolment_start: str = "2018-02-01"
    enrolment_end: str = "2019-12-31"
    pre_quarters: int = 16
    post_quarters: int = 20
    history_quarters: int = 16
    site_weights_wal: dict[str, float] = _d(
        **{"Forem-Liege-Article23": 0.5, "Forem-Charleroi-ISPPC": 0.5}
    )
    # population
    age_mean: float = 41.0
    age_sd: float = 10.0
    age_min: float = 20.0
    age_max: float = 63.0
    female_share: float = 0.55
    education_shares: dict[str, float] = _d(low=0.30, medium=0.45, high=0.25)
    diagnosis_shares: dict[str, float] = _d(
        mood=0.40, anxiety=0.20, psychotic=0.15, personality=0.10, other=0.15
    )
    primary_share: float = 0.35
    invalidity_months_mean: float = 40.0
    household_shares: dict[str, float] = _d(
        single=0.38, couple=0.18, couple_children=0.26, one_parent=0.18
    )
    married_share: float = 0.55
    children_extra_mean: float = 0.6
    child_panel_min_age: float = 18.0
    late_partner_share: float = 0.06
    partner_leave_share: float = 0.05
    # employment dynamics
    job_exit_rate: float = 0.05
    entry_rate_post: dict[str, float] = _d(VL=0.04253, WAL=0.03155, BXL=0.02559)
    entry_rate_pre_di: float = 0.006
    entry_rate_no_di: float = 0.040
    exit_rate_no_di: float = 0.030
    employability_sd: float = 0.6
    beta_age: float = -0.15
    beta_female: float = 0.0
    beta_education: dict[str, float] = _d(low=-0.25, medium=0.0, high=0.25)
    beta_diagnosis: dict[str, float] = _d(
        mood=0.0, anxiety=0.10, psychotic=-0.30, personality=-0.15, other=0.0
    )
    beta_invalidity: float = -0.20
    p_employed_at_origin_di: float = 0.06
    p_employed_at_origin_no_di: float = 0.55
    onset_job_loss: float = 0.9
    self_employed_share: float = 0.03
    second_job_share: float = 0.05
    civil_servant_share: float = 0.08
    temp_agency_share: float = 0.15
    permanent_share: float = 0.65
    permanent_share_temp: float = 0.05
    fte_mean: float = 0.48
    fte_sd: float = 0.22
    fte_min: float = 0.10
    ips_fte_shift: float = -0.05
    wage_median_by_education: dict[str, float] = _d(low=2600.0, medium=3000.0, high=3700.0)
    wage_sd_log: float = 0.25
    job_wage_sd_log: float = 0.12
    days_per_month: float = 22.0
    # IPS effect
    effect_size: float = 1.2516
    effect_ramp_months: float = 3.0
    effect_fade_months: float = 47.69
    effect_floor: float = 0.4431
    effect_by_region: dict[str, float] = _d(VL=1.0, WAL=1.0, BXL=1.0)
    takeup_rate: float = 0.85
    takeup_employability_slope: float = 0.3
    crossover_rate: float = 0.0
    start_delay_days_mean: float = 21.0
    # DI and benefits
    di_exit_rate: float = 0.003
    di_exit_rate_working: float = 0.01
    di_exit_rate_working_above_half: float = 0.03
    di_reentry_rate: float = 0.08
    ips_di_exit_multiplier: float = 1.7456
    ips_di_exit_fade_months: float = 24.0
    retirement_age: float = 65.0
    replacement_primary: float = 0.60
    replacement_dependants: float = 0.65
    replacement_single: float = 0.55
    replacement_cohabitant: float = 0.40
    wage_cap: float = 3900.0
    benefit_min_dependants: float = 1400.0
    benefit_min_single: float = 1120.0
    benefit_min_cohabitant: float = 960.0
    benefit_max: float = 2600.0
    benefit_scale: float = 0.7918
    authorised_work_threshold: float = 0.20
    authorised_share: float = 0.95
    ub_share: float = 0.6
    ub_amount_mean: float = 1150.0
    ub_amount_sd: float = 200.0
    # household members
    partner_entry_rate: float = 0.035
    partner_exit_rate: float = 0.025
    partner_di_share: float = 0.10
    partner_effect: float = 0.35
    child_entry_rate: float = 0.04
    child_exit_rate: float = 0.05
    child_effect: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Refuse parameters that cannot describe a trial (raises DataContractError)."""

        def bad(name: str, why: str, fix: str) -> DataContractError:
            return DataContractError(why, table="params", column=name, fix=fix)

        shares = self.region_shares
        if set(shares) - set(REGIONS) or not shares:
            raise bad(
                "region_shares",
                f"regions must be among {REGIONS}; got {sorted(shares)}",
                "use keys 'VL', 'WAL', 'BXL'",
            )
        if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
            raise bad("region_shares", "shares must be non-negative with a positive sum",
                      "give positive shares")
        if not 0.0 < self.p_treated < 1.0:
            raise bad("p_treated", f"must be in (0, 1); got {self.p_treated}",
                      "pass a value strictly between 0 and 1")
        if not 0.0 < self.takeup_rate <= 1.0:
            raise bad("takeup_rate", f"must be in (0, 1]; got {self.takeup_rate}",
                      "pass a positive probability")
        probs = (
            "crossover_rate", "female_share", "primary_share", "married_share",
            "late_partner_share", "partner_leave_share", "job_exit_rate",
            "entry_rate_pre_di", "entry_rate_no_di", "exit_rate_no_di",
            "p_employed_at_origin_di", "p_employed_at_origin_no_di", "onset_job_loss",
            "self_employed_share", "second_job_share", "civil_servant_share",
            "temp_agency_share", "permanent_share", "permanent_share_temp",
            "di_exit_rate", "di_exit_rate_working", "di_reentry_rate", "di_exit_rate_working_above_half",
            "authorised_share", "ub_share", "partner_entry_rate", "partner_exit_rate",
            "partner_di_share", "child_entry_rate", "child_exit_rate",
        )
        for name in probs:
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise bad(name, f"must be a probability in [0, 1]; got {v}",
                          "pass a value between 0 and 1")
        for r, v in self.entry_rate_post.items():
            if not 0.0 <= v <= 1.0:
                raise bad("entry_rate_post", f"hazard of {r} must be in [0, 1]; got {v}",
                          "pass monthly probabilities")
        if self.pre_quarters < 0 or self.post_quarters < 0 or self.history_quarters < 0:
            raise bad("pre_quarters/post_quarters", "panel spans must be ≥ 0",
                      "pass non-negative integers")
        if self.enrolment_end < self.enrolment_start:
            raise bad("enrolment_end", "enrolment ends before it starts",
                      "swap enrolment_start and enrolment_end")
        if self.fte_min <= 0 or self.fte_min > 1:
            raise bad("fte_min", "must be in (0, 1]", "e.g. 0.1")
        for name, d in (("education_shares", self.education_shares),
                        ("diagnosis_shares", self.diagnosis_shares),
                        ("household_shares", self.household_shares)):
            if any(v < 0 for v in d.values()) or sum(d.values()) <= 0:
                raise bad(name, "shares must be non-negative with a positive sum",
                          "give positive shares")
        if set(self.household_shares) - {"single", "couple", "couple_children", "one_parent"}:
            raise bad("household_shares", "unknown household type",
                      "use single, couple, couple_children, one_parent")

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable) of every parameter."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) — byte-identical for equal parameters."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def null(cls, **overrides: Any) -> SyntheticParams:
        """Parameters of a trial in which IPS changes nothing for anyone (the sharp null).

        IPS acts through four channels, each with its own parameter: job finding
        (``effect_size``), exits from DI of working IPS starters
        (``ips_di_exit_multiplier``), part-time work in new IPS jobs (``ips_fte_shift``)
        and partners (``partner_effect``). ``effect_size=0`` alone leaves the other three
        on; this switches all four off, so every potential-outcome difference is 0.
        ``overrides`` set any other parameter (e.g. ``SyntheticParams.null(pre_quarters=4)``).
        """
        off = {"effect_size": 0.0, "ips_di_exit_multiplier": 1.0, "ips_fte_shift": 0.0, "partner_effect": 0.0}
        clash = sorted(set(off) & set(overrides))
        if clash:
            raise DataContractError(
                "SyntheticParams.null() fixes the effect parameters", table="params", column=clash,
                fix="use dataclasses.replace(SyntheticParams(), ...) for a trial with an effect.",
            )
        return cls(**{**off, **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SyntheticParams:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise DataContractError(
                "unknown synthetic parameters", table="params", column=unknown,
                fix=f"use only fields of SyntheticParams ({len(names)} fields)",
            )
        return cls(**values)
