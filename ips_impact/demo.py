"""The demo pipeline behind ``ips-impact demo`` / ``make demo``.

simulate (synthetic trial with known truth; or read a folder such as the committed
sample ``synthetic_data/``) → write the tables → load and validate them as a user
would → run the registered analysis plan (:meth:`AnalysisPlan.default`) and save the
Analysis to ``analysis/`` beside the report → analyse (balance, ITT per horizon and
over time, LATE, Lee bounds, spillovers, regional heterogeneity, survival of
employment, randomization inference, multiple testing) → write a report:
``report.md`` with figures, the tidy results as ``results.csv``, and the estimates set
against the generator's truth.

Same seed ⇒ the same ``results.csv``, ``report.md`` and ``analysis/`` (but for its
``run.json``: when and where it ran), byte for byte.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["run_demo"]


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if pd.isna(x) else f"{x:.{digits}f}"


def _plan_line(analysis) -> str:
    n = len(analysis.entries)
    filled = sum(e.filled for e in analysis.entries)
    return (
        f"{filled} of {n} registered estimands filled (plan seed {analysis.provenance['seed']}, "
        f"{analysis.provenance['n_permutations']:,} randomization draws per estimand; provenance "
        f"digest `{analysis.provenance['digest'][:16]}`)."
    )


def _primary_table(analysis):
    """Return the primary estimands with the unit of each estimate."""
    units = analysis.overview().set_index("estimand_id")["unit"]
    t = analysis.tidy().query("tag == 'primary'")
    t = t.assign(unit=[units[i] for i in t["estimand_id"]])
    cols = [
        "estimand_id",
        "unit",
        "family",
        "estimate",
        "std_error",
        "p_value",
        "ri_p_value",
        "adj_p_value",
        "control_mean",
        "nobs",
    ]
    return t[cols]


def _deviation_lines(analysis) -> list[str]:
    dev = analysis.deviations()
    if not len(dev):
        return ["Deviations from the plan: none."]
    return ["Deviations from the plan:", ""] + [
        f"- `{r.estimand_id}`: {r.reason}" for r in dev.itertuples()
    ]


def run_demo(
    *,
    out: Path,
    seed: int = 2018,
    n_permutations: int = 2000,
    progress: Callable[[str], None] = print,
    data: Path | None = None,
) -> int:
    """Run the demo; writes ``out/report.md``, figures, ``out/results.csv``, ``out/analysis/``.

    Without ``data`` a trial is simulated with ``seed`` and written to ``out/data/``;
    with ``data`` (a folder holding the tables, e.g. ``synthetic_data/``) that folder is
    read instead, and its ``truth.parquet`` (if any) gives the true effects.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import ips_impact as ii
    from ips_impact.io.readers import find_table_files

    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        data_dir = out / "data"
        progress(f"simulating the calibrated synthetic trial (1,200 persons, seed {seed})")
        trial = ii.synthetic.generate(n_persons=1200, seed=seed)
        trial.write(data_dir)
        truth = trial.truth
    else:
        data_dir = Path(data)
        truth_file = data_dir / "truth.parquet"
        truth = (
            pd.read_parquet(truth_file)
            if truth_file.is_file()
            else pd.DataFrame(columns=["population", "group", "estimand", "outcome", "k", "ate"])
        )
    progress(f"reading and validating {data_dir}")
    study = ii.load_study(data_dir)

    progress(
        f"running the registered analysis plan ({n_permutations:,} randomization draws "
        "per estimand)"
    )
    analysis = ii.run_plan(
        study,
        ii.AnalysisPlan.default(),
        n_permutations=n_permutations,
        progress=False,
        inputs=find_table_files(data_dir),
    )
    analysis.save(out / "analysis")
    progress(f"analysis saved to {out / 'analysis'} (ii.load_analysis reads it back)")

    def save(fig_or_ax, name: str) -> str:
        fig = getattr(fig_or_ax, "figure", fig_or_ax)
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return name

    caught: list[str] = []
    with warnings.catch_warnings(record=True) as wlist:
        warnings.simplefilter("always")
        progress("balance of baseline covariates")
        covs = ("age", "female", "di_months", "pre_employment_share", "pre_earnings")
        bal = ii.balance(study, covs)
        progress("intention-to-treat effects at 18 and 30 months")
        adj = ("age", "female", "di_months", "pre_employment_share")
        # numeric outcomes: every result is an EffectResult (not a categorical one)
        itt_results: list[Any] = [
            ii.itt(study, y, horizon=h, covariates=adj)
            for y in ("work_on_di", "employed", "earnings", "di_benefit")
            for h in (6, 10)
        ]
        progress("effects over time (event study, sup-t band)")
        dyn = ii.itt_by_period(study, "work_on_di", periods=range(-8, 21), covariates=adj)
        progress("compliers (LATE) and Lee bounds on earnings of those at work")
        late = ii.late(study, "work_on_di", horizon=6, covariates=adj)
        lee = ii.lee_bounds(study, "earnings", selection="employed", horizon=6)
        progress("household spillovers and regional heterogeneity")
        sp = ii.spillover(study, "employed", members="partner", horizon=6)
        het = ii.heterogeneity(study, "work_on_di", by="region", horizon=6, covariates=adj)
        progress("survival: time to first job over five years")
        surv = ii.time_to_event(study, "employed", start=1, tau=20)
        progress(
            f"randomization inference ({n_permutations:,} re-draws of the design) "
            "and Holm adjustment"
        )
        primary = ii.randomization_inference(
            study, itt_results + [sp], n_permutations=n_permutations, seed=seed
        )
        primary = ii.adjust_pvalues(primary, method="holm")
        caught = sorted({f"{w.category.__name__}: {w.message}" for w in wlist})

    progress("writing the report")
    tidy = pd.concat(
        [r.tidy() for r in primary] + [late.tidy(), lee.tidy(), het.tidy(), surv.tidy()],
        ignore_index=True,
    )
    tidy.to_csv(out / "results.csv", index=False, float_format="%.10g")

    rows = []
    for r in itt_results:
        t = truth.query(
            "population == 'participants' and group == 'all' and estimand == 'ATE' "
            "and outcome == @r.outcome and k == @r.horizon"
        )
        rows.append(
            {
                "outcome": r.outcome,
                "k": r.horizon,
                "estimate": r.estimate,
                "95% CI": f"[{_fmt(r.conf_int()[0])}, {_fmt(r.conf_int()[1])}]",
                "true effect (sample)": float(t["ate"].iloc[0]) if len(t) else float("nan"),
            }
        )
    vs_truth = pd.DataFrame(rows)

    fig_consort = save(study.consort().plot(), "consort.png")
    fig_dyn = save(dyn.plot(), "effect_over_time.png")
    fig_surv = save(surv.plot(), "time_to_first_job.png")
    fig_het = save(het.plot(), "regional_effects.png")

    head = primary[0]
    lo, hi = head.conf_int()
    more = "more" if head.estimate > 0 else "fewer"
    itt_header = (
        "## Intention-to-treat effects (ANCOVA, HC2; randomization p-values; Holm-adjusted)"
    )
    report = [
        "# ips_impact demo report",
        "",
        "Synthetic IPS trial calibrated to the Belgian pilot; the generator knows every "
        "person's two potential paths, so estimates can be set against the truth.",
        "",
        "## Study",
        "",
        "```",
        repr(study),
        "```",
        "",
        "![CONSORT flow](" + fig_consort + ")",
        "",
        "```",
        repr(study.linkage_report()),
        "```",
        "",
        "### Ledger (rows set aside, repaired or assumed)",
        "",
        study.ledger.to_frame().to_markdown(index=False),
        "",
        "## Baseline balance",
        "",
        bal.tidy().to_markdown(index=False, floatfmt=".3f"),
        "",
        "## Headline",
        "",
        f"At 18 months (k = 6), {100 * head.control_mean:.1f}% of the control group worked "
        "while on "
        f"disability insurance; assignment to IPS changed that by {100 * head.estimate:+.1f} "
        f"percentage points (95% CI {100 * lo:+.1f} to {100 * hi:+.1f}): "
        f"per 100 participants, {abs(100 * head.estimate):.0f} {more} at work.",
        "",
        itt_header,
        "",
        pd.concat([r.tidy() for r in primary], ignore_index=True)[
            [
                "outcome",
                "estimand",
                "horizon",
                "estimate",
                "std_error",
                "p_value",
                "ri_p_value",
                "adj_p_value",
                "conf_low",
                "conf_high",
                "control_mean",
                "nobs",
            ]
        ].to_markdown(index=False, floatfmt=".4g"),
        "",
        "### Estimates against the generator's truth",
        "",
        vs_truth.to_markdown(index=False, floatfmt=".3f"),
        "",
        "## Effect over time",
        "",
        f"![effect over time]({fig_dyn})",
        "",
        "## Compliers and bounds",
        "",
        late.tidy().to_markdown(index=False, floatfmt=".4g"),
        "",
        lee.tidy().to_markdown(index=False, floatfmt=".4g"),
        "",
        "## Household spillovers and regions",
        "",
        f"![regional effects]({fig_het})",
        "",
        het.tidy().to_markdown(index=False, floatfmt=".4g"),
        "",
        "## Survival: time to first job",
        "",
        f"![time to first job]({fig_surv})",
        "",
        surv.tidy().to_markdown(index=False, floatfmt=".4g"),
        "",
        "## The registered analysis (default plan)",
        "",
        f"{_plan_line(analysis)} Saved in `analysis/` (read it with `ii.load_analysis`); "
        "primary estimands below, every estimand in `analysis/tidy.parquet`.",
        "",
        _primary_table(analysis).to_markdown(index=False, floatfmt=".4g"),
        "",
        *_deviation_lines(analysis),
        "",
        "## Warnings raised during the analysis",
        "",
        *(["- " + w for w in caught] or ["none"]),
        "",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n", encoding="utf-8")
    progress(f"report written to {out / 'report.md'}")
    print("\n".join(report[: report.index(itt_header)]))  # the study, balance and headline
    return 0
