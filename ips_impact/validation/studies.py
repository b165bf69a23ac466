"""Monte Carlo studies with known truth: one function per study, one call per replicate.

Every replicate draws a NEW synthetic trial (``ips_impact.synthetic.generate``) from
the super-population of the calibrated generator, fits the estimators through the
public API exactly as a user would, and returns one record per *check*: whether the
interval covered the truth (coverage checks) or whether the test rejected at 5%
(rejection checks, on trials drawn under the sharp null ``SyntheticParams.null()``).

The truth of a coverage check is the super-population value, approximated once per
run on a large synthetic sample with a seed that no replicate uses (see
:func:`compute_truths`); its Monte Carlo error (about 0.001 for an employment rate) is
about 4% of an estimator's standard error with 1,200 persons, and is reported.

Sampling (not design-based) inference is checked on purpose: re-randomizing one fixed
sample gives 97–98% coverage of that sample's effect because Neyman / HC2 variances are
conservative under heterogeneous effects; drawing a new sample in each replicate
makes the robust variance target the right quantity (see ``ips_impact.synthetic``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ips_impact.results.effect import EffectResult
from ips_impact.synthetic import SyntheticParams, generate

#: Persons per simulated trial (the pilot's 1,200).
N_PERSONS = 1200
#: Event time of the primary horizon (quarters since randomization: 18 months).
K = 6
#: Window of the stacked estimator and of the DiD's post period (quarters).
WINDOW = (5, 8)
PRE = (-4, -1)
POST = (1, 8)
#: Event times of the event-study band (quarters).
PERIODS = tuple(range(1, 13))
#: Restriction time of the RMST difference (quarters).
TAU = 12
COVARIATES = ("age", "female", "di_months")
FAMILY = ("employed", "work_on_di", "earnings", "fte", "di_benefit")
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Check:
    """One line of the report: what is checked, against which nominal level.

    ``kind`` is ``"coverage"`` (share of intervals covering the truth; nominal 0.95) or
    ``"rejection"`` (share of tests rejecting at 5% under the null; nominal 0.05).
    """

    id: str
    study: str
    estimator: str
    quantity: str
    kind: str
    nominal: float


def _params() -> SyntheticParams:
    # short panels: 4 quarters before, 12 after randomization (every check lies inside)
    return dataclasses.replace(SyntheticParams(), pre_quarters=4, post_quarters=12)


def _null_params() -> SyntheticParams:
    return SyntheticParams.null(pre_quarters=4, post_quarters=12)


def _itt(study: Any, outcome: str, **options: Any) -> EffectResult:
    """Return ``itt`` of a numeric outcome: one effect (a categorical one gives one per level)."""
    from ips_impact.estimators.itt import itt

    result = itt(study, outcome, **options)
    assert isinstance(result, EffectResult)  # the outcomes of these studies are numeric
    return result


def _cov(rec: list[dict[str, Any]], check: str, est: float, se: float, lo: float, hi: float,
         truth: float) -> None:
    ok = all(math.isfinite(v) for v in (lo, hi))
    rec.append({"check": check, "hit": bool(ok and lo <= truth <= hi), "estimate": float(est),
                "std_error": float(se), "truth": float(truth)})


def _rej(rec: list[dict[str, Any]], check: str, p: float, alpha: float = 0.05) -> None:
    rec.append({"check": check, "hit": bool(math.isfinite(p) and p <= alpha),
                "estimate": float(p), "std_error": math.nan, "truth": math.nan})


def _row(result: Any, term: str | None = None) -> Any:
    tidy = result.tidy()
    if term is not None:
        tidy = tidy[tidy["term"] == term]
    return tidy.iloc[0]


# ------------------------------------------------------------------------- truths


def compute_truths(n: int = 100_000, seed: int = 2_000_000_011) -> dict[str, float]:
    """Super-population values of every coverage check, from one large synthetic sample.

    The sample has both potential paths of everyone, so each value is exact for the
    sample and approximates the super-population with Monte Carlo error of order
    ``sd / sqrt(n)``. The Lee bounds of the large sample approximate the population
    identified set ``[L, U]``.
    """
    p = _params()
    big = generate(n_persons=n, seed=seed, params=p)
    truth = big.truth
    part = truth[(truth["population"] == "participants")]

    def ate(outcome: str, k: int, group: str = "all", population: str = "participants") -> float:
        t = truth[(truth["population"] == population) & (truth["outcome"] == outcome)
                  & (truth["k"] == k) & (truth["group"] == group)]
        return float(t["ate"].iloc[0])

    out: dict[str, float] = {"work_on_di.k6": ate("work_on_di", K)}
    out["work_on_di.window"] = float(np.mean([ate("work_on_di", k) for k in range(WINDOW[0], WINDOW[1] + 1)]))
    out["work_on_di.post"] = float(np.mean([ate("work_on_di", k) for k in range(POST[0], POST[1] + 1)]))
    for k in PERIODS:
        out[f"work_on_di.k{k}"] = ate("work_on_di", k)
    for g in ("VL", "WAL", "BXL"):
        out[f"work_on_di.k6.{g}"] = ate("work_on_di", K, g)
    out["partner.employed.k6"] = ate("employed", K, population="partners")
    late = big.truth_late
    row = late[(late["outcome"] == "work_on_di") & (late["k"] == K) & (late["group"] == "all")]
    out["late.work_on_di.k6"] = float(row["late"].iloc[0])
    rm = big.rmst_truth("employed", start=1, taus=[TAU])
    rm = rm[rm["group"] == "all"]
    out["rmst.employed.tau12"] = float(rm["difference"].iloc[0])
    del part
    # Lee bounds of the large sample: the population identified set of the effect on
    # earnings of those employed whatever their arm.
    import ips_impact as ii

    study = big.study()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lb = ii.lee_bounds(study, "earnings", selection="employed", horizon=K)
    tidy = lb.tidy().set_index("estimand")
    out["lee.earnings.lower"] = float(tidy.loc["lee_lower", "estimate"])
    out["lee.earnings.upper"] = float(tidy.loc["lee_upper", "estimate"])
    # careers (exact potential careers of the large sample): state occupation at tau and
    # mean cumulative job starts in quarters 1..tau, IPS minus control
    from ips_impact.synthetic.truth import CAREER_STATES, career_potentials

    cp = career_potentials(big._world)
    for i, state in enumerate(CAREER_STATES):
        out[f"occupation.{state}"] = float((cp["state1"][:, TAU] == i).mean() - (cp["state0"][:, TAU] == i).mean())
    out["mcf.job_starts"] = float(cp["starts1"][:, 1:TAU + 1].sum(axis=1).mean()
                                  - cp["starts0"][:, 1:TAU + 1].sum(axis=1).mean())
    out["_n"] = float(n)
    return out


# ------------------------------------------------------------------------- studies


def effects_replicate(seed: int, truths: Mapping[str, float]) -> list[dict[str, Any]]:
    """ITT per adjustment and SE type, event study, DiD, heterogeneity, RMST, Lee bounds."""
    import ips_impact as ii

    trial = generate(n_persons=N_PERSONS, seed=seed, params=_params(), tables=("assignment", "panel"))
    study = trial.study()
    rec: list[dict[str, Any]] = []
    t6 = truths["work_on_di.k6"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for adj, covs, cov_type in (("none", (), None), ("ancova", COVARIATES, None),
                                    ("lin", COVARIATES, None), ("ancova", COVARIATES, "HC1"),
                                    ("ancova", COVARIATES, "HC3")):
            r = _itt(study, "work_on_di", horizon=K, adjustment=adj, covariates=covs, cov_type=cov_type)
            lo, hi = r.conf_low, r.conf_high
            _cov(rec, f"itt.{adj}.{cov_type or 'default'}", r.estimate, r.std_error, lo, hi, t6)
        r = _itt(study, "work_on_di", window=WINDOW, aggregate="stack")
        lo, hi = r.conf_low, r.conf_high
        _cov(rec, "itt.stack.CR2", r.estimate, r.std_error, lo, hi, truths["work_on_di.window"])

        dyn = ii.itt_by_period(study, "work_on_di", periods=PERIODS)
        band = dyn.band()
        truth_k = np.array([truths[f"work_on_di.k{k}"] for k in PERIODS])
        lo_b, hi_b = band["band_low"].to_numpy(), band["band_high"].to_numpy()
        rec.append({"check": "itt_by_period.sup_t", "hit": bool(np.all((lo_b <= truth_k) & (truth_k <= hi_b))),
                    "estimate": math.nan, "std_error": math.nan, "truth": math.nan})

        d = ii.did(study, "work_on_di", pre=PRE, post=POST)
        lo, hi = d.conf_low, d.conf_high
        _cov(rec, "did.arm_x_post", d.estimate, d.std_error, lo, hi, truths["work_on_di.post"])

        h = ii.heterogeneity(study, "work_on_di", by="region", horizon=K)
        ht = h.tidy()
        for g in ("VL", "WAL", "BXL"):
            row = ht[ht["term"] == f"arm:region={g}"].iloc[0]
            _cov(rec, f"heterogeneity.{g}", row["estimate"], row["std_error"], row["conf_low"],
                 row["conf_high"], truths[f"work_on_di.k6.{g}"])

        s = ii.time_to_event(study, "employed", tau=TAU)
        row = _row(s, "rmst_difference")
        _cov(rec, "time_to_event.rmst", row["estimate"], row["std_error"], row["conf_low"],
             row["conf_high"], truths["rmst.employed.tau12"])

        lb = ii.lee_bounds(study, "earnings", selection="employed", horizon=K)
        lt = lb.tidy().set_index("estimand")
        im = lt.loc["lee_effect_imbens_manski"]
        # The Imbens–Manski interval covers every point of the identified set with
        # probability >= 95%; its end points are the hardest to cover. Each bound's own
        # interval must cover the population bound at 95%.
        for side in ("lower", "upper"):
            tr = truths[f"lee.earnings.{side}"]
            rec.append({"check": f"lee_bounds.im.{side}", "hit": bool(im["conf_low"] <= tr <= im["conf_high"]),
                        "estimate": math.nan, "std_error": math.nan, "truth": tr})
            b = lt.loc[f"lee_{side}"]
            _cov(rec, f"lee_bounds.{side}", b["estimate"], b["std_error"], b["conf_low"], b["conf_high"], tr)
    return rec


def households_replicate(seed: int, truths: Mapping[str, float]) -> list[dict[str, Any]]:
    """LATE of IPS take-up and the partner spillover, on trials with all tables."""
    import ips_impact as ii

    trial = generate(n_persons=N_PERSONS, seed=seed, params=_params())
    study = trial.study()
    rec: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ii.late(study, "work_on_di", horizon=K)
        lo, hi = r.conf_low, r.conf_high
        _cov(rec, "late.work_on_di", r.estimate, r.std_error, lo, hi, truths["late.work_on_di.k6"])
        sp = ii.spillover(study, "employed", members="partner", horizon=K)
        lo, hi = sp.conf_low, sp.conf_high
        _cov(rec, "spillover.partner", sp.estimate, sp.std_error, lo, hi, truths["partner.employed.k6"])
    return rec


def careers_replicate(seed: int, truths: Mapping[str, float]) -> list[dict[str, Any]]:
    """State occupation (Aalen–Johansen) and mean cumulative job starts, at tau = 12 quarters."""
    import ips_impact as ii
    from ips_impact.synthetic.truth import CAREER_STATES

    trial = generate(n_persons=N_PERSONS, seed=seed, params=_params(), tables=("assignment", "panel"),
                     job_details=True)
    study = trial.study()
    rec: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        so = ii.state_occupation(study, tau=TAU).tidy().set_index("outcome")
        for state in CAREER_STATES:
            r = so.loc[state]
            _cov(rec, f"state_occupation.{state}", r["estimate"], r["std_error"], r["conf_low"], r["conf_high"],
                 truths[f"occupation.{state}"])
        rs = ii.recurrent_spells(study, tau=TAU).tidy().set_index("term").loc["mcf_difference"]
        _cov(rec, "recurrent_spells.mcf", rs["estimate"], rs["std_error"], rs["conf_low"], rs["conf_high"],
             truths["mcf.job_starts"])
    return rec


#: Planted effect of the unequal-probability study (EUR per quarter of earnings):
#: 0 in the Flemish strata (assigned with p = 0.5), +1,500 elsewhere (p = 0.1).
UNEQUAL_EFFECT = 1500.0


def unequal_replicate(seed: int, truths: Mapping[str, float]) -> list[dict[str, Any]]:
    """ATE coverage when assignment probabilities differ across strata (0.5 vs 0.1).

    A new synthetic sample per replicate; its control potential earnings at k = 6 are
    kept, the assignment is drawn with probability 0.5 in the Flemish strata and 0.1 in
    the others (complete randomization within each), and the effect is planted: 0 in
    Flanders, +1,500 EUR elsewhere. The region shares are fixed by the design (340/200/60
    per 600), so the super-population ATE is exactly ``1,500 × 260/600 = 650`` EUR. The
    default ``itt`` must cover it; strata fixed effects weight strata by precision and
    do not (reported for reference).
    """
    import pandas as pd

    from ips_impact.study import Study

    trial = generate(n_persons=N_PERSONS, seed=seed, params=_params(), tables=("assignment", "panel"))
    a0 = trial.assignment[["person_id", "stratum"]].reset_index(drop=True)
    po = trial.potential_outcomes("earnings")
    y0 = po[po["k"] == K].set_index("person_id").loc[a0["person_id"], "y0"].to_numpy()
    flemish = a0["stratum"].str.startswith("VL").to_numpy()
    tau = np.where(flemish, 0.0, UNEQUAL_EFFECT)
    rng = np.random.Generator(np.random.PCG64(seed))
    z = np.zeros(len(a0), dtype=np.int8)
    for s in np.unique(a0["stratum"]):
        idx = np.flatnonzero(a0["stratum"].to_numpy() == s)
        m = max(2, int(round(len(idx) * (0.5 if str(s).startswith("VL") else 0.1))))
        z[rng.choice(idx, m, replace=False)] = 1
    y = np.where(z == 1, y0 + tau, y0)
    a = pd.DataFrame({"person_id": a0["person_id"], "arm": z, "stratum": a0["stratum"], "randomization_period": 0})
    study = Study.from_frames(a, pd.DataFrame({"person_id": a0["person_id"], "period": K, "earnings": y}),
                              frequency="int")
    truth = UNEQUAL_EFFECT * float((~flemish).mean())
    rec: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = _itt(study, "earnings", horizon=K)
        _cov(rec, "itt.unequal.default", r.estimate, r.std_error, r.conf_low, r.conf_high, truth)
        f = _itt(study, "earnings", horizon=K, adjustment="ancova")
        _cov(rec, "itt.unequal.strata_fe", f.estimate, f.std_error, f.conf_low, f.conf_high, truth)
    return rec


def null_replicate(seed: int, truths: Mapping[str, float], n_permutations: int = 199) -> list[dict[str, Any]]:
    """Size of the tests under the sharp null (IPS changes nothing for anyone)."""
    import ips_impact as ii

    trial = generate(n_persons=N_PERSONS, seed=seed, params=_null_params(), tables=("assignment", "panel"))
    study = trial.study()
    rec: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = _itt(study, "work_on_di", horizon=K, covariates=COVARIATES)
        _rej(rec, "size.itt.model", r.p_value)
        rr = ii.randomization_inference(study, r, n_permutations=n_permutations, seed=seed % (2**31))
        _rej(rec, "size.itt.ri", float(rr.tidy()["ri_p_value"].iloc[0]))
        dyn = ii.itt_by_period(study, "work_on_di", periods=range(-4, 7))
        pre = dyn.pretest
        p_pre = float(pre["p_value"]) if isinstance(pre, Mapping) else float(getattr(pre, "p_value", math.nan))
        _rej(rec, "size.itt_by_period.pretest", p_pre)
        s = ii.time_to_event(study, "employed", tau=TAU)
        st = s.tidy()
        _rej(rec, "size.logrank", float(st[st["term"] == "logrank"]["p_value"].iloc[0]))
        _rej(rec, "size.cox", float(st[st["term"] == "cox"]["p_value"].iloc[0]))
        h = ii.heterogeneity(study, "work_on_di", by="region", horizon=K)
        ht = h.tidy()
        _rej(rec, "size.heterogeneity.joint", float(ht[ht["term"].str.startswith("joint")]["p_value"].iloc[0]))
        fam = [_itt(study, y, horizon=K) for y in FAMILY]
        p_raw = np.array([f.p_value for f in fam])
        rec.append({"check": "fwer.unadjusted", "hit": bool((p_raw <= 0.05).any()),
                    "estimate": float(p_raw.min()), "std_error": math.nan, "truth": math.nan})
        for method in ("holm", "westfall-young", "romano-wolf"):
            adj = ii.adjust_pvalues(fam, method=method, study=study, n_permutations=n_permutations,
                                    seed=seed % (2**31))
            p_adj = np.array([float(a.tidy()["adj_p_value"].iloc[0]) for a in adj])
            rec.append({"check": f"fwer.{method}", "hit": bool((p_adj <= 0.05).any()),
                        "estimate": float(np.nanmin(p_adj)), "std_error": math.nan, "truth": math.nan})
    return rec


def _coverage(study: str, rows: list[tuple[str, str, str]]) -> tuple[Check, ...]:
    return tuple(Check(i, study, e, q, "coverage", 0.95) for i, e, q in rows)


def _rejection(study: str, rows: list[tuple[str, str, str, float]]) -> tuple[Check, ...]:
    return tuple(Check(i, study, e, q, "rejection", a) for i, e, q, a in rows)


#: Every study: name -> (replicate function, its checks). A check whose ``nominal`` is
#: NaN is reported for reference (e.g. the unadjusted family-wise error) without a band.
STUDIES: dict[str, tuple[Callable[..., list[dict[str, Any]]], tuple[Check, ...]]] = {
    "effects": (effects_replicate, _coverage("effects", [
        ("itt.none.default", "itt", "difference in means, HC2, k = 6 (18 months)"),
        ("itt.ancova.default", "itt", "ANCOVA (age, female, di_months), HC2, k = 6"),
        ("itt.lin.default", "itt", "Lin (interacted), HC2, k = 6"),
        ("itt.ancova.HC1", "itt", "ANCOVA, HC1, k = 6"),
        ("itt.ancova.HC3", "itt", "ANCOVA, HC3, k = 6"),
        ("itt.stack.CR2", "itt", "stacked k = 5..8, period effects, CR2 by person"),
        ("itt_by_period.sup_t", "itt_by_period", "sup-t band over k = 1..12 (all covered)"),
        ("did.arm_x_post", "did", "arm × post, pre k = -4..-1, post k = 1..8"),
        ("heterogeneity.VL", "heterogeneity", "effect in Flanders, k = 6"),
        ("heterogeneity.WAL", "heterogeneity", "effect in Wallonia, k = 6"),
        ("heterogeneity.BXL", "heterogeneity", "effect in Brussels, k = 6"),
        ("time_to_event.rmst", "time_to_event", "RMST difference to the first job, tau = 12 quarters"),
        ("lee_bounds.im.lower", "lee_bounds", "Imbens–Manski interval covers the lower bound"),
        ("lee_bounds.im.upper", "lee_bounds", "Imbens–Manski interval covers the upper bound"),
        ("lee_bounds.lower", "lee_bounds", "lower bound's own interval (earnings of the always-employed, k = 6)"),
        ("lee_bounds.upper", "lee_bounds", "upper bound's own interval"),
    ])),
    "careers": (careers_replicate, _coverage("careers", [
        ("state_occupation.work", "state_occupation", "IPS − control share at work (not on DI), tau = 12 quarters"),
        ("state_occupation.work_on_di", "state_occupation", "share at work while on DI, tau = 12"),
        ("state_occupation.di_only", "state_occupation", "share on DI only, tau = 12"),
        ("state_occupation.unemployed", "state_occupation", "share unemployed, tau = 12"),
        ("state_occupation.other", "state_occupation", "share in another position, tau = 12"),
        ("recurrent_spells.mcf", "recurrent_spells", "mean cumulative job starts in quarters 1..12"),
    ])),
    "unequal": (unequal_replicate, (
        Check("itt.unequal.default", "unequal", "itt", "default (ATE) with p = 0.5 in Flanders, 0.1 elsewhere",
              "coverage", 0.95),
        Check("itt.unequal.strata_fe", "unequal", "itt", "strata fixed effects (precision-weighted; reference)",
              "coverage", math.nan),
    )),
    "households": (households_replicate, _coverage("households", [
        ("late.work_on_di", "late", "LATE of IPS take-up (2SLS, HC2), k = 6"),
        ("spillover.partner", "spillover", "partners' employment, CR2 by household, k = 6"),
    ])),
    "null": (null_replicate, _rejection("null", [
        ("size.itt.model", "itt", "ANCOVA HC2 t test at 5%", 0.05),
        ("size.itt.ri", "randomization_inference", "randomization p-value at 5% (199 draws)", 0.05),
        ("size.itt_by_period.pretest", "itt_by_period", "pre-period placebo joint test at 5%", 0.05),
        ("size.logrank", "time_to_event", "stratified log-rank test at 5%", 0.05),
        ("size.cox", "time_to_event", "Cox Wald test of the arm at 5%", 0.05),
        ("size.heterogeneity.joint", "heterogeneity", "joint test of equal regional effects at 5%", 0.05),
        ("fwer.unadjusted", "adjust_pvalues", "family of 5 outcomes, unadjusted (reference)", math.nan),
        ("fwer.holm", "adjust_pvalues", "family of 5 outcomes, Holm", 0.05),
        ("fwer.westfall-young", "adjust_pvalues", "family of 5 outcomes, Westfall–Young", 0.05),
        ("fwer.romano-wolf", "adjust_pvalues", "family of 5 outcomes, Romano–Wolf", 0.05),
    ])),
}
