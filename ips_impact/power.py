r"""Minimum detectable effects (MDE).

The minimum detectable effect of a two-sided test at level :math:`\alpha` with power
:math:`1-\beta` is (Bloom 1995)

.. math:: \mathrm{MDE} = \left(t_{1-\alpha/2,\,\nu} + t_{1-\beta,\,\nu}\right)\,
          \mathrm{SE}(\hat\tau),

with :math:`\nu` the degrees of freedom of the reference t distribution (the normal
when :math:`\nu = \infty`; then the multiplier is :math:`1.960 + 0.842 = 2.802` for 5%
and 80%). :func:`mde` takes the standard error of a fitted effect (this is how
:func:`ips_impact.estimators.heterogeneity.heterogeneity` reports an MDE per subgroup);
:func:`mde_from_design` takes the design (numbers per arm, outcome SD, R² of the
covariates, design effect) for planning before data exist.

Simulation-based power
----------------------
:func:`power` draws synthetic trials (:func:`ips_impact.synthetic.generate`) with the
user's parameters — sample size per region, base rates, effect paths, take-up,
household structure: any field of :class:`~ips_impact.synthetic.SyntheticParams` — and
fits each with the estimator the analysis will use. In grid cell g (a sample size and
an effect scale) with R replicates,

.. math:: \widehat{\text{power}}_g = \frac{1}{R}\sum_{r=1}^{R}
          \mathbf 1\{p_{gr} < \alpha\}, \qquad
          \mathrm{SE}_{MC} = \sqrt{\widehat{\text{power}}_g(1-\widehat{\text{power}}_g)/R},

and the simulated MDE at a sample size is the true effect at which the power curve
over effect sizes crosses the target power (linear interpolation between grid cells).
Replicate r of cell g draws its sample from ``SeedSequence(seed)`` keyed on (g, r)
(:func:`ips_impact.parallel.task_seed`), so results do not depend on the backend, the
number of workers or the chunking; chunks are checkpointed (:mod:`ips_impact.parallel`).

The package exports the function as ``ips_impact.power``, the same name as this module:
take the module's other names with ``from ips_impact.power import mde, PowerResult``
(``import ips_impact.power as m`` binds the function, which Python finds first).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ips_impact.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from ips_impact.synthetic.params import SyntheticParams

__all__ = ["mde", "mde_multiplier", "mde_from_design", "power", "PowerResult", "ESTIMANDS"]


def _check_probability(name: str, value: float, *, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise EstimationError(
            f"{name} must be a number strictly between 0 and {upper:g}; you passed {value!r}",
            fix=f"use e.g. {name}={'0.05' if name == 'alpha' else '0.8'}.",
        )
    v = float(value)
    if not (0.0 < v < upper):
        raise EstimationError(
            f"{name} must be strictly between 0 and {upper:g}; you passed {value!r}",
            fix=f"use e.g. {name}={'0.05' if name == 'alpha' else '0.8'}.",
        )
    return v


def mde_multiplier(
    *, alpha: float = 0.05, power: float = 0.8, df: float | None = None, two_sided: bool = True
) -> float:
    r"""Return the factor :math:`t_{1-\alpha/2,\nu} + t_{1-\beta,\nu}` turning an SE into an MDE.

    Parameters
    ----------
    alpha
        Size of the test (0.05).
    power
        Power :math:`1-\beta` (0.8).
    df
        Degrees of freedom :math:`\nu`; ``None`` or ``inf`` for the normal.
    two_sided
        Two-sided test (``alpha/2`` in each tail) or one-sided.

    Returns
    -------
    float
        About 2.802 for the defaults with the normal reference.
    """
    a = _check_probability("alpha", alpha)
    p = _check_probability("power", power)
    tail = a / 2.0 if two_sided else a
    if df is None or not np.isfinite(df):
        return float(stats.norm.ppf(1.0 - tail) + stats.norm.ppf(p))
    if not df > 0:
        raise EstimationError(
            f"df must be positive; you passed {df!r}",
            fix="pass the degrees of freedom of the fitted effect, or None for the normal.",
        )
    return float(stats.t.ppf(1.0 - tail, df) + stats.t.ppf(p, df))


def mde(
    std_error: float | Sequence[float] | np.ndarray,
    *,
    df: float | Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> float | np.ndarray:
    r"""Minimum detectable effect from the standard error of an estimated effect.

    .. math:: \mathrm{MDE} = \left(t_{1-\alpha/2,\,\nu} + t_{1-\beta,\,\nu}\right)\,\mathrm{SE}

    Parameters
    ----------
    std_error
        One standard error or an array of them (one per subgroup).
    df
        Degrees of freedom per standard error (scalar or same shape); ``None`` / ``inf``
        for the normal reference.
    alpha, power, two_sided
        As in :func:`mde_multiplier`.

    Returns
    -------
    float or numpy.ndarray
        Same shape as ``std_error``; NaN where the standard error is NaN.
    """
    se = np.asarray(std_error, dtype=float)
    if np.any(se[np.isfinite(se)] < 0):
        raise EstimationError(
            "std_error must be non-negative",
            fix="pass standard errors, not estimates or statistics.",
        )
    a = _check_probability("alpha", alpha)
    p = _check_probability("power", power)
    tail = a / 2.0 if two_sided else a
    if df is None:
        mult = stats.norm.ppf(1.0 - tail) + stats.norm.ppf(p)
    else:
        d = np.broadcast_to(np.asarray(df, dtype=float), se.shape)
        if np.any(~(d > 0)):
            raise EstimationError(
                "df must be positive (inf for the normal reference)",
                fix="pass the degrees of freedom of each fitted effect, or df=None.",
            )
        # t.ppf handles df = inf as the normal, so one expression serves both.
        mult = stats.t.ppf(1.0 - tail, d) + stats.t.ppf(p, d)
    out = mult * se
    return float(out) if out.ndim == 0 else out


def mde_from_design(
    n_treated: int,
    n_control: int,
    *,
    sd: float = 1.0,
    r2: float = 0.0,
    design_effect: float = 1.0,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
    df: float | None = None,
) -> float:
    r"""Minimum detectable effect of a difference in means planned from the design.

    .. math:: \mathrm{SE} = \sigma\,\sqrt{(1-R^2)\,\mathrm{deff}\,\left(\tfrac{1}{n_1}
              + \tfrac{1}{n_0}\right)}, \qquad \mathrm{MDE} = (t_{1-\alpha/2} +
              t_{1-\beta})\,\mathrm{SE}

    Parameters
    ----------
    n_treated, n_control
        Persons per arm (e.g. 60 and 60 in Brussels).
    sd
        Standard deviation :math:`\sigma` of the outcome (for a proportion
        :math:`\pi`: :math:`\sqrt{\pi(1-\pi)}`).
    r2
        Share of the outcome variance explained by the covariates (ANCOVA), in [0, 1).
    design_effect
        Variance inflation from clustering, :math:`1 + (m-1)\rho` (1 for persons).
    alpha, power, two_sided, df
        As in :func:`mde`; ``df=None`` uses the normal.

    Returns
    -------
    float
        The MDE in the units of the outcome (divide by ``sd`` for an effect size).

    Examples
    --------
    Working-on-DI at 18 months (control ≈ 29%), 60 persons per arm:

    >>> round(mde_from_design(60, 60, sd=(0.29 * 0.71) ** 0.5), 3)
    0.232
    """
    for name, n in (("n_treated", n_treated), ("n_control", n_control)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise EstimationError(
                f"{name} must be a positive whole number; you passed {n!r}",
                fix="give the number of persons in each arm.",
            )
    if not (isinstance(sd, (int, float, np.floating)) and sd > 0 and math.isfinite(sd)):
        raise EstimationError(
            f"sd must be a positive number; you passed {sd!r}",
            fix="give the outcome's standard deviation.",
        )
    if not (isinstance(r2, (int, float, np.floating)) and 0.0 <= r2 < 1.0):
        raise EstimationError(
            f"r2 must lie in [0, 1); you passed {r2!r}",
            fix="give the share of variance explained by the covariates.",
        )
    if not (isinstance(design_effect, (int, float, np.floating)) and design_effect >= 1.0):
        raise EstimationError(
            f"design_effect must be at least 1; you passed {design_effect!r}",
            fix="use 1 + (m - 1) * icc for clusters of size m, 1 for persons.",
        )
    se = sd * math.sqrt((1.0 - r2) * design_effect * (1.0 / n_treated + 1.0 / n_control))
    return float(mde(se, df=df, alpha=alpha, power=power, two_sided=two_sided))


# ---------------------------------------------------------------------- simulation
#: Estimands :func:`power` simulates.
ESTIMANDS: tuple[str, ...] = ("itt", "rmst", "spillover", "family")

_BINARY = frozenset(
    {
        "employed",
        "work_on_di",
        "self_employed",
        "temp_agency",
        "permanent_contract",
        "on_di",
        "authorised_work",
    }
)
_UNITS = {
    "earnings": "EUR per quarter",
    "di_benefit": "EUR per month",
    "unemployment_benefit": "EUR per month",
    "fte": "FTE",
    "days_worked": "days per quarter",
    "n_jobs": "jobs",
}
_CORRECTIONS = ("bonferroni", "holm", "bh", "by", "sharpened-q")


def _unit(estimand: str, outcome: str) -> tuple[str, float]:
    """Return the unit label of an effect and the factor that expresses it in that unit."""
    if estimand == "rmst":
        return "quarters", 1.0
    if outcome in _BINARY:
        return "pp", 100.0
    return _UNITS.get(outcome, "outcome units"), 1.0


@dataclass(frozen=True)
class _Cell:
    """Everything one replicate needs (plain data, so that it travels to any worker)."""

    estimand: str
    members: tuple[tuple[str, int], ...]  # (outcome or event, horizon or tau)
    n_persons: int
    params: SyntheticParams
    covariates: tuple[str, ...]
    adjustment: str
    alpha: float
    correction: str | None
    spill_members: str


def _truth_of(trial: Any, cell: _Cell, name: str, h: int) -> float:
    """Return the sample effect the estimand targets, from the generator's exact truth."""
    if cell.estimand == "rmst":
        rt = trial.rmst_truth(name, taus=[h])
        return float(rt.loc[rt["group"] == "all", "difference"].iloc[0])
    if isinstance(trial, _Drawn):
        return trial.draw.ate(name, h)
    t = trial.truth
    pop = "participants"
    if cell.estimand == "spillover":
        pop = "partners" if cell.spill_members == "partner" else "members"
    sel = ((t["population"].to_numpy() == pop) & (t["outcome"].to_numpy() == name)
           & (t["k"].to_numpy() == h) & (t["group"].to_numpy() == "all"))
    return float(t["ate"].to_numpy()[sel][0])


def _fit(study: Any, cell: _Cell, name: str, h: int) -> tuple[float, float, float]:
    """(estimate, std_error, p_value) of the estimand on one simulated study."""
    if cell.estimand == "spillover":
        from ips_impact.estimators.spillover import spillover

        row = spillover(study, name, members=cell.spill_members, horizon=h).tidy().iloc[0]
        return float(row["estimate"]), float(row["std_error"]), float(row["p_value"])
    if cell.estimand == "rmst":
        from ips_impact.estimators.survival import time_to_event

        tidy = time_to_event(study, name, tau=h).tidy()
        row = tidy.loc[tidy["term"] == "rmst_difference"].iloc[0]
        return float(row["estimate"]), float(row["std_error"]), float(row["p_value"])
    from ips_impact.estimators.itt import _itt_arm

    # itt's numbers without its result object (the same request, sample and variance rule)
    return _itt_arm(study, name, horizon=h, covariates=cell.covariates, adjustment=cell.adjustment)


_DESIGN_COLUMNS = (
    "person_id",
    "arm",
    "randomization_date",
    "stratum",
    "region",
    "site",
    "household_id",
)


#: What an itt or a family reads of the design: the arm, the strata and the randomization
#: date (event time); region, site and households only by request (covariates, subset,
#: cluster), which power does not make
_ITT_DESIGN_COLUMNS = ("person_id", "arm", "randomization_date", "stratum")


def _slim_study(trial: Any, cell: _Cell) -> Any:
    """Build the Study of a simulated trial with only the columns the estimand reads.

    Validation and linkage work column by column, so the outcome(s), the design columns
    and the covariates are kept and the other simulated outcomes and covariates are not
    read: the estimate is the same as on the full tables, at a fraction of the cost.
    Without a household roster (every estimand but the spillover) the Study is built by
    :func:`ips_impact.study._study_from_generator_frames`, equal to ``Study.from_frames``
    on the generator's frames without re-running the delivery checks on them.
    """
    from ips_impact.study import Study, _study_from_generator_frames

    outcomes = [name for name, _ in cell.members]
    a, panel = trial.assignment, trial.panel
    design = _ITT_DESIGN_COLUMNS if trial.households is None else _DESIGN_COLUMNS
    keep_a = [c for c in dict.fromkeys((*design, *cell.covariates)) if c in a.columns]
    keep_p = ["person_id", "period", *dict.fromkeys(outcomes)]
    # the power draw builds these columns only: selecting them again would copy the frames
    if list(a.columns) != keep_a:
        a = a[keep_a]
    if list(panel.columns) != keep_p:
        panel = panel[keep_p]
    if trial.households is None:
        return _study_from_generator_frames(a, panel)
    return Study.from_frames(a, panel, households=trial.households)


class _Drawn:
    """The columns of a synthetic trial that an itt or a family reads (see :func:`_draw_trial`)."""

    households = None

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.assignment, self.panel = draw.assignment, draw.panel


def _draw_trial(cell: _Cell, seed: int) -> Any:
    """Draw the synthetic trial of one replicate.

    An itt or a family reads the assignment's design columns and covariates, the panel's
    outcome columns and the participants' sample effects: only those are built
    (:func:`ips_impact.synthetic.trial._draw`: the same sample as ``generate``, the same
    columns bit for bit). The RMST truth and the spillover need the whole trial.
    """
    from ips_impact.synthetic import generate
    from ips_impact.synthetic.trial import _draw

    if cell.estimand in ("itt", "family"):
        return _Drawn(_draw(n_persons=cell.n_persons, seed=seed, params=cell.params,
                            outcomes=[name for name, _ in cell.members],
                            assignment_columns=(*_ITT_DESIGN_COLUMNS, *cell.covariates)))
    tables: tuple[str, ...] = ("assignment", "panel")
    if cell.estimand == "spillover":
        tables = ("assignment", "panel", "households")
    return generate(
        n_persons=cell.n_persons, seed=seed, params=cell.params, tables=tables, job_details=False
    )


def _replicate(task: tuple[_Cell, int, int, int]) -> tuple[np.ndarray, ...]:
    """Draw one synthetic trial and test its estimand(s).

    Returns (estimate, std_error, p_value, true effect, failed), one entry per family
    member; ``p_value`` is the multiplicity-adjusted one for a family. A fit that the
    library refuses (e.g. a small sample with a stratum holding one arm) leaves NaN and
    ``failed`` = 1: it counts as no rejection, and the curve says how many there were.
    """
    from ips_impact.errors import IpsImpactError
    from ips_impact.parallel import task_seed

    cell, root, g, r = task
    # the generator takes an integer seed: the task's own stream, keyed on (g, r)
    seed = int(task_seed(root, g, r).generate_state(1, np.uint64)[0] >> np.uint64(1))
    trial = _draw_trial(cell, seed)
    m = len(cell.members)
    est, se, pv = (np.full(m, np.nan) for _ in range(3))
    failed = np.zeros(m)
    truth = np.array([_truth_of(trial, cell, name, h) for name, h in cell.members])
    with warnings.catch_warnings():
        # small simulated samples warn (few clusters, sparse strata); the power study
        # reports the rejection rate that results, warnings and all
        warnings.simplefilter("ignore")
        try:
            study = _slim_study(trial, cell)
        except IpsImpactError:
            failed[:] = 1.0
            return est, se, pv, truth, failed
        for i, (name, h) in enumerate(cell.members):
            try:
                est[i], se[i], pv[i] = _fit(study, cell, name, h)
            except IpsImpactError:
                failed[i] = 1.0
    if cell.estimand == "family":
        from ips_impact.inference.multiple import p_adjust

        pv = np.asarray(p_adjust(pv, cell.correction or "holm"), dtype=float)
    return est, se, pv, truth, failed


def _scaled(params: SyntheticParams, scale: float) -> SyntheticParams:
    """Return the same trial with every channel of the IPS effect multiplied by ``scale``.

    The four channels of :meth:`SyntheticParams.null`: the job-finding boost
    (``effect_size``), the extra DI exits of working starters
    (``ips_di_exit_multiplier - 1``), the part-time shift (``ips_fte_shift``) and the
    partners' boost (``partner_effect``); the effect's time path (ramp, fade, floor) and
    its regional profile are kept. ``scale=0`` is the sharp null.
    """
    return dataclasses.replace(
        params,
        effect_size=params.effect_size * scale,
        ips_di_exit_multiplier=1.0 + (params.ips_di_exit_multiplier - 1.0) * scale,
        ips_fte_shift=params.ips_fte_shift * scale,
        partner_effect=params.partner_effect * scale,
    )


def _sizes(sample_sizes: Any, params: SyntheticParams) -> list[tuple[int, SyntheticParams, str]]:
    """List (persons, parameters with those regional shares, label) per sample size."""
    from ips_impact.synthetic.params import REGIONS

    if isinstance(sample_sizes, (int, np.integer, Mapping)):
        sample_sizes = [sample_sizes]
    out = []
    for s in sample_sizes:
        if isinstance(s, Mapping):
            bad = sorted(set(s) - set(REGIONS))
            counts = {r: s[r] for r in REGIONS if r in s}
            if (
                bad
                or not counts
                or any(
                    isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0
                    for v in counts.values()
                )
            ):
                raise EstimationError(
                    f"a sample size per region must map {', '.join(REGIONS)} to whole numbers of "
                    f"persons; got {dict(s)!r}",
                    column="sample_sizes",
                    fix="use e.g. {'VL': 680, 'WAL': 400, 'BXL': 120}.",
                )
            n = int(sum(counts.values()))
            p = dataclasses.replace(
                params, region_shares={r: float(v) for r, v in counts.items() if v > 0}
            )
            label = " / ".join(f"{r} {v}" for r, v in counts.items())
        else:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise EstimationError(
                    f"sample sizes must be whole numbers of persons; got {s!r}",
                    column="sample_sizes",
                    fix="use e.g. sample_sizes=[600, 1200].",
                )
            n, p = int(s), params
            label = f"{n}"
        if n < 20:
            raise EstimationError(
                f"a simulated trial needs at least 20 randomized persons; got {n}",
                column="sample_sizes",
                fix="use larger sample sizes.",
            )
        out.append((n, p, label))
    return out


@dataclass(frozen=True)
class PowerResult:
    """Simulated power and minimum detectable effects (frozen).

    Attributes
    ----------
    estimand, members, unit
        What was tested: ``members`` lists (outcome, horizon in quarters) — for
        ``"rmst"`` (event, tau in quarters) — and ``unit`` the unit of the effects.
    curve
        One row per grid cell and family member: ``n_persons`` (randomized, both arms),
        ``sample`` (persons per region), ``effect_scale``, ``outcome``, ``horizon``, ``unit``,
        ``true_effect`` (mean over the replicates of the sample effect, in ``unit``),
        ``power``, ``power_se`` (Monte Carlo SE), ``rejections``, ``n_replicates``,
        ``n_failed`` (trials whose fit the library refused, e.g. a stratum with one arm
        in a small sample: counted as no rejection),
        ``mean_estimate``, ``mean_std_error`` (in ``unit``). A family adds rows with
        outcome ``"any"`` (at least one member rejected) and ``"all"``.
    mde
        One row per sample size and member: ``mde_simulated`` (true effect at which the
        simulated power reaches ``target_power``; NaN when the grid of effect scales
        does not bracket it, with the reason in ``note``) and ``mde_analytic``
        (:math:`(z_{1-\\alpha/2}+z_{1-\\beta})\\,\\overline{SE}`, Bonferroni's
        :math:`\\alpha/m` for a family), in ``unit``.
    replicates
        Every replicate: cell, replicate, member, estimate, std_error, p_value,
        true_effect (unit of the outcome, not rescaled).
    alpha, target_power, n_replicates, seed, correction
        The study's settings.
    """

    estimand: str
    members: tuple[tuple[str, int], ...]
    unit: str
    curve: pd.DataFrame = field(repr=False)
    mde: pd.DataFrame = field(repr=False)
    replicates: pd.DataFrame = field(repr=False)
    alpha: float
    target_power: float
    n_replicates: int
    seed: int
    correction: str | None = None

    def tidy(self) -> pd.DataFrame:
        """Return the power curve (a copy of :attr:`curve`)."""
        return self.curve.copy()

    def summary(self) -> str:
        """Render a plain-text table of power by sample size and effect, and the MDEs."""
        c = self.curve
        lines = [
            f"Simulated power: {self.estimand} ("
            + ", ".join(f"{o} at {h} q" for o, h in self.members)
            + f"), "
            f"{self.n_replicates} trials per cell, two-sided alpha = {self.alpha:g}"
            + (f", {self.correction} correction" if self.correction else ""),
            f"{'persons':>8} {'sample':>26} {'outcome':>12} {'true effect':>12} {'unit':<16} "
            f"{'power (%)':>9} {'MC SE (pp)':>10}",
        ]
        for row in c.itertuples():
            eff = "" if not np.isfinite(row.true_effect) else f"{row.true_effect:12.3f}"
            lines.append(
                f"{row.n_persons:8d} {row.sample:>26} {row.outcome:>12} {eff:>12} {row.unit:<16} "
                f"{100 * row.power:9.1f} {100 * row.power_se:10.1f}"
            )
        lines.append(f"Minimum detectable effect at {100 * self.target_power:.0f}% power:")
        for row in self.mde.itertuples():
            sim = "n/a" if not np.isfinite(row.mde_simulated) else f"{row.mde_simulated:.3f}"
            lines.append(
                f"{row.n_persons:8d} {row.outcome:>12}  simulated {sim:>8}  "
                f"analytic {row.mde_analytic:8.3f} {row.unit}"
                + (f"  ({row.note})" if row.note else "")
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"PowerResult(estimand={self.estimand!r}, members={list(self.members)}, "
            f"cells={self.curve[['n_persons', 'effect_scale']].drop_duplicates().shape[0]}, "
            f"n_replicates={self.n_replicates})"
        )

    def plot(self, ax: Any = None, *, outcome: str | None = None) -> Any:
        """Power curve over sample sizes, one line per effect, with 95% Monte Carlo bars.

        Parameters
        ----------
        ax
            A matplotlib Axes (a new figure when ``None``).
        outcome
            Family member (or "any" / "all") to draw; default the first.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 4.2))
        c = self.curve
        name = outcome if outcome is not None else c["outcome"].iloc[0]
        if name not in set(c["outcome"]):
            raise EstimationError(
                f"no power curve for {name!r}; there are {sorted(set(c['outcome']))}",
                fix="pass one of those as outcome.",
            )
        c = c[c["outcome"] == name]
        for scale, part in c.groupby("effect_scale", sort=True):
            part = part.sort_values("n_persons")
            eff = part["true_effect"].mean()
            what = f"effect {eff:+.2f} {part['unit'].iloc[0]}" if np.isfinite(eff) else "effect"
            ax.errorbar(
                part["n_persons"],
                100 * part["power"],
                yerr=196 * part["power_se"],
                marker="o",
                capsize=3,
                label=f"{what} (scale {scale:g})",
            )
        ax.axhline(100 * self.target_power, color="grey", linestyle="--", linewidth=1)
        ax.axhline(100 * self.alpha, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("persons randomized (both arms)")
        ax.set_ylabel(f"power (% of simulated trials rejecting at {100 * self.alpha:g}%)")
        ax.set_ylim(0, 100)
        horizon = c["horizon"].iloc[0]
        what = (
            f"{name} at {horizon} quarters"
            if name not in ("any", "all")
            else f"{name} of the family"
        )
        ax.set_title(f"Simulated power: {self.estimand}, {what}")
        ax.legend(fontsize="small")
        return ax


def power(
    estimand: str = "itt",
    *,
    outcome: str = "work_on_di",
    horizon: int = 6,
    family: Sequence[tuple[str, int]] | None = None,
    correction: str = "holm",
    sample_sizes: Any = (1200,),
    effect_scales: Sequence[float] = (1.0,),
    params: SyntheticParams | None = None,
    n_replicates: int = 200,
    alpha: float = 0.05,
    target_power: float = 0.8,
    covariates: Sequence[str] = (),
    adjustment: str = "ancova",
    members: str = "partner",
    seed: int = 0,
    backend: Any = "auto",
    n_workers: int | None = None,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> PowerResult:
    r"""Simulation-based power and minimum detectable effect of a planned trial.

    Each grid cell (a sample size × an effect scale) draws ``n_replicates`` synthetic
    trials, fits the estimand as the analysis would and counts the rejections of
    :math:`H_0: \tau = 0` at level :math:`\alpha` (two-sided):

    * ``"itt"`` — :func:`ips_impact.itt` of ``outcome`` at ``horizon`` (quarters since
      the randomization quarter), :math:`\tau = E[Y_h(1) - Y_h(0)]`;
    * ``"rmst"`` — the difference in restricted mean time to the first ``outcome``
      event (e.g. ``"employed"``) up to ``tau = horizon`` quarters,
      :math:`\int_0^{\tau} S_1(t) - S_0(t)\,dt` (:func:`ips_impact.time_to_event`);
    * ``"spillover"`` — :func:`ips_impact.spillover` on the baseline ``members``
      (partners by default) at ``horizon``;
    * ``"family"`` — the itt of each (outcome, horizon) in ``family``, p-values
      adjusted by ``correction``; power per member, of "any" rejection and of "all".

    Parameters
    ----------
    estimand
        One of :data:`ESTIMANDS`.
    outcome, horizon
        Outcome (panel column; for ``"rmst"`` the event) and horizon in quarters (for
        ``"rmst"`` the restriction time tau in quarters).
    family, correction
        For ``"family"``: (outcome, horizon) pairs and the multiple-testing method
        ("bonferroni", "holm", "bh", "by", "sharpened-q").
    sample_sizes
        Persons randomized (both arms) — an int, a list of ints, or dicts of persons
        per region (``{"VL": 680, "WAL": 400, "BXL": 120}``); an int splits by
        ``params.region_shares``.
    effect_scales
        Multipliers of every channel of the IPS effect in ``params`` (0 = no effect;
        the time path of the effect is kept). Several scales give the MDE.
    params
        :class:`~ips_impact.synthetic.SyntheticParams` of the trial: base rates,
        effect paths, take-up, household structure. Only the quarters up to the
        horizon are simulated (``pre_quarters=0``, ``post_quarters`` = the horizon),
        which does not change the outcomes.
    n_replicates
        Trials per cell. The Monte Carlo SE of a power near 80% is about
        :math:`0.4/\sqrt{R}` (2.8 pp with 200).
    alpha, target_power
        Level of the test and the power at which the MDE is read.
    covariates, adjustment
        Passed to :func:`ips_impact.itt` (itt and family).
    members
        Household members of the spillover: "partner" (baseline partners) or "all"
        (every baseline member with an own panel).
    seed
        Root of the seeds: replicate r of cell g uses ``SeedSequence(seed)`` keyed on
        (g, r).
    backend, n_workers, chunk_size, checkpoint, progress
        See :func:`ips_impact.parallel.run_tasks`; the result is the same bit for bit
        whatever they are.

    Returns
    -------
    PowerResult

    Examples
    --------
    >>> res = power("itt", outcome="work_on_di", horizon=6, sample_sizes=[400, 1200],
    ...             n_replicates=20, backend="serial")           # doctest: +SKIP
    >>> res.curve[["n_persons", "power", "power_se"]]            # doctest: +SKIP
    """
    from ips_impact.parallel import run_tasks
    from ips_impact.synthetic.params import SyntheticParams

    if estimand not in ESTIMANDS:
        raise EstimationError(
            f"estimand must be one of {', '.join(ESTIMANDS)}; you passed {estimand!r}",
            fix="use e.g. estimand='itt'.",
        )
    a = _check_probability("alpha", alpha)
    tp = _check_probability("power", target_power)
    if (
        isinstance(n_replicates, bool)
        or not isinstance(n_replicates, (int, np.integer))
        or n_replicates < 2
    ):
        raise EstimationError(
            f"n_replicates must be a whole number ≥ 2; you passed {n_replicates!r}",
            fix="use e.g. n_replicates=200 (Monte Carlo SE ≈ 2.8 pp at 80% power).",
        )
    p0 = params if params is not None else SyntheticParams()
    if not isinstance(p0, SyntheticParams):
        raise EstimationError(
            f"params must be a SyntheticParams; got {type(p0).__name__}",
            fix="build it with SyntheticParams(...) or dataclasses.replace.",
        )
    if estimand == "family":
        if not family:
            raise EstimationError(
                "estimand 'family' needs family=[(outcome, horizon), ...]",
                fix="e.g. family=[('work_on_di', 6), ('employed', 10)].",
            )
        if correction not in _CORRECTIONS:
            raise EstimationError(
                f"correction must be one of {', '.join(_CORRECTIONS)}; you passed {correction!r}",
                fix="use e.g. correction='holm'.",
            )
        mem = tuple((str(o), int(h)) for o, h in family)
    else:
        mem = ((str(outcome), int(horizon)),)
    from ips_impact.synthetic.world import OUTCOMES

    for o, h in mem:
        if o not in OUTCOMES:
            raise EstimationError(
                f"outcome {o!r} is not simulated; the outcomes are {', '.join(OUTCOMES)}",
                column="outcome",
                fix="choose one of those outcomes.",
            )
        if h < (1 if estimand == "rmst" else 0):
            raise EstimationError(
                f"horizon must be a quarter after randomization; got {h}",
                column="horizon",
                fix="use e.g. horizon=6 (18 months).",
            )
    if members not in ("partner", "all"):
        raise EstimationError(
            f"members must be 'partner' or 'all' (the populations whose truth the generator "
            f"knows exactly); you passed {members!r}",
            fix="use members='partner' (baseline partners) or 'all' (every baseline member).",
        )
    scales = [float(s) for s in effect_scales]
    if not scales or any(not np.isfinite(s) or s < 0 for s in scales):
        raise EstimationError(
            f"effect_scales must be non-negative numbers; you passed {effect_scales!r}",
            fix="use e.g. effect_scales=[0, 0.5, 1].",
        )
    hmax = max(h for _, h in mem)
    span = dataclasses.replace(p0, pre_quarters=0, post_quarters=hmax)
    sizes = _sizes(sample_sizes, span)
    cells: list[tuple[int, str, float, _Cell]] = []
    for n, pn, label in sizes:
        for s in scales:
            cells.append(
                (
                    n,
                    label,
                    s,
                    _Cell(
                        estimand=estimand,
                        members=mem,
                        n_persons=n,
                        params=_scaled(pn, s),
                        covariates=tuple(covariates),
                        adjustment=adjustment,
                        alpha=a,
                        correction=correction if estimand == "family" else None,
                        spill_members=members,
                    ),
                )
            )
    tasks = [
        (cell, int(seed), g, r)
        for g, (_, _, _, cell) in enumerate(cells)
        for r in range(int(n_replicates))
    ]
    out = run_tasks(
        _replicate,
        tasks,
        backend=backend,
        n_workers=n_workers,
        chunk_size=chunk_size,
        checkpoint=checkpoint,
        progress=progress,
        description=f"power ({estimand})",
    )
    return _summarise(
        estimand,
        mem,
        cells,
        out,
        int(n_replicates),
        a,
        tp,
        int(seed),
        correction if estimand == "family" else None,
    )


def _summarise(
    estimand: str,
    mem: tuple[tuple[str, int], ...],
    cells: list[tuple[int, str, float, _Cell]],
    out: list[tuple[np.ndarray, ...]],
    R: int,
    alpha: float,
    target: float,
    seed: int,
    correction: str | None,
) -> PowerResult:
    unit = _unit(estimand, mem[0][0])[0]
    m = len(mem)
    rows, reps = [], []
    for g, (n, label, s, _) in enumerate(cells):
        res = out[g * R : (g + 1) * R]
        est = np.array([x[0] for x in res])  # (R, m)
        se = np.array([x[1] for x in res])
        pv = np.array([x[2] for x in res])
        tr = np.array([x[3] for x in res])
        fl = np.array([x[4] for x in res])
        rej = pv < alpha  # NaN p-values (a failed fit) count as no rejection
        for r in range(R):
            for i, (o, h) in enumerate(mem):
                reps.append((g, n, s, r, o, h, est[r, i], se[r, i], pv[r, i], tr[r, i]))
        groups: list[tuple[Any, ...]] = [
            (o, h, rej[:, i], est[:, i], se[:, i], tr[:, i], fl[:, i])
            for i, (o, h) in enumerate(mem)
        ]
        if estimand == "family":
            nan = np.full(R, np.nan)
            anyfail = fl.max(axis=1)
            groups.append(("any", hmax_of(mem), rej.any(axis=1), nan, nan, nan, anyfail))
            groups.append(("all", hmax_of(mem), rej.all(axis=1), nan, nan, nan, anyfail))
        for o, h, rj, e, sd, t, f in groups:
            pw = float(rj.mean())
            u, factor = _unit(estimand, o) if o not in ("any", "all") else ("", 1.0)
            rows.append(
                {
                    "n_persons": n,
                    "sample": label,
                    "effect_scale": s,
                    "outcome": o,
                    "horizon": h,
                    "unit": u,
                    "true_effect": factor * float(np.mean(t)) if np.isfinite(t).any() else np.nan,
                    "power": pw,
                    "power_se": math.sqrt(pw * (1.0 - pw) / R),
                    "rejections": int(rj.sum()),
                    "n_replicates": R,
                    "n_failed": int(f.sum()),
                    "mean_estimate": factor * float(np.nanmean(e))
                    if np.isfinite(e).any()
                    else np.nan,
                    "mean_std_error": factor * float(np.nanmean(sd))
                    if np.isfinite(sd).any()
                    else np.nan,
                }
            )
    curve = pd.DataFrame(rows)
    replicates = pd.DataFrame(
        reps,
        columns=[
            "cell",
            "n_persons",
            "effect_scale",
            "replicate",
            "outcome",
            "horizon",
            "estimate",
            "std_error",
            "p_value",
            "true_effect",
        ],
    )
    mdes = []
    a_mde = alpha / m if estimand == "family" else alpha
    for (n, o), part in curve[curve["outcome"].isin([x for x, _ in mem])].groupby(
        ["n_persons", "outcome"], sort=False
    ):
        part = part.sort_values("effect_scale")
        eff = np.abs(part["true_effect"].to_numpy())
        pw = part["power"].to_numpy()
        sim, note = _crossing(eff, pw, target)
        mdes.append(
            {
                "n_persons": n,
                "outcome": o,
                "horizon": int(part["horizon"].iloc[0]),
                "mde_simulated": sim,
                "mde_analytic": float(
                    mde(float(part["mean_std_error"].mean()), alpha=a_mde, power=target)
                ),
                "unit": part["unit"].iloc[0],
                "note": note,
            }
        )
    return PowerResult(
        estimand=estimand,
        members=mem,
        unit=unit,
        curve=curve,
        mde=pd.DataFrame(mdes),
        replicates=replicates,
        alpha=alpha,
        target_power=target,
        n_replicates=R,
        seed=seed,
        correction=correction,
    )


def hmax_of(mem: tuple[tuple[str, int], ...]) -> int:
    """Largest horizon of a family (the label of its "any" / "all" rows)."""
    return max(h for _, h in mem)


def _crossing(effect: np.ndarray, pw: np.ndarray, target: float) -> tuple[float, str]:
    """Effect at which power first reaches ``target`` (linear between grid points)."""
    if effect.size < 2:
        return float("nan"), "one effect scale: pass several effect_scales for a simulated MDE"
    order = np.argsort(effect, kind="stable")
    e, p = effect[order], pw[order]
    if p[0] >= target:
        return float("nan"), f"power ≥ target already at the smallest effect ({e[0]:.3g})"
    for i in range(1, e.size):
        if p[i] >= target:
            if p[i] == p[i - 1]:
                return float(e[i]), ""
            return float(e[i - 1] + (target - p[i - 1]) * (e[i] - e[i - 1]) / (p[i] - p[i - 1])), ""
    return float(
        "nan"
    ), f"power < target at the largest effect ({e[-1]:.3g}): use larger effect_scales"
