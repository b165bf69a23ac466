"""The validation report: tables, a figure of coverage with its bands, Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ips_impact.results.base import freeze


def _pct(x: Any, digits: int = 1) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{x:.{digits}f}"


@dataclass(frozen=True)
class ValidationReport:
    """Coverage, size and parity of every estimator, with Monte Carlo standard errors.

    Attributes
    ----------
    table
        One row per Monte Carlo check (columns of
        :data:`~ips_impact.validation.runner.TABLE_COLUMNS`): the coverage or rejection
        ``rate`` over ``replications``, its Monte Carlo SE, the band
        ``nominal ± 3 MC SE(nominal)`` and whether the rate lies ``inside`` it; for
        coverage checks with a point estimate also bias, RMSE and the ratio of the mean
        standard error to the standard deviation of the estimates.
    parity
        One row per R parity test of the test suite (``test, reference, tolerance,
        max_rel_error, comparisons, met``), or ``None`` when not collected.
    """

    table: pd.DataFrame
    parity: pd.DataFrame | None
    replications: int
    seed: int
    truth_n: int
    truths: dict[str, float] = field(default_factory=dict)
    studies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", freeze(self.table))
        if self.parity is not None:
            object.__setattr__(self, "parity", freeze(self.parity))

    @property
    def all_inside(self) -> bool:
        """Every banded check inside its band and every parity check met."""
        ok = all(bool(v) for v in self.table["inside"] if v is not None)
        if self.parity is not None and len(self.parity):
            ok = ok and bool(self.parity["met"].all())
        return ok

    def failures(self) -> pd.DataFrame:
        """Return the checks outside their band (empty when all is well)."""
        t = self.table
        return t[[v is not None and not bool(v) for v in t["inside"]]]

    def plot(self, ax: Any = None) -> Any:
        """Coverage (left) and rejection rates (right) per check, with the ±3 MC SE bands.

        Returns the coverage panel's Axes.
        """
        import matplotlib.pyplot as plt

        cov = self.table[self.table["kind"] == "coverage"]
        rej = self.table[(self.table["kind"] == "rejection") & self.table["nominal"].notna()]
        if ax is None:
            fig, (ax, ax2) = plt.subplots(
                1, 2, figsize=(10, 0.32 * max(len(cov), len(rej)) + 1.6),
                gridspec_kw={"width_ratios": [1.1, 1]},
            )
        else:
            fig, ax2 = ax.figure, None
        for a, sub, xlabel in ((ax, cov, "coverage of the 95% interval"),
                               (ax2, rej, "rejection rate at 5% under the null")):
            if a is None or not len(sub):
                continue
            y = list(range(len(sub)))[::-1]
            a.barh(y, sub["band_high"] - sub["band_low"], left=sub["band_low"], height=0.6,
                   color="#d9e6f2", label="±3 Monte Carlo SE around nominal")
            a.errorbar(sub["rate"], y, xerr=2 * sub["mc_se"], fmt="o", color="#1f4e79",
                       ms=4, capsize=2, label="rate ± 2 MC SE")
            a.axvline(sub["nominal"].iloc[0], color="grey", lw=0.8, ls="--")
            a.set_yticks(y)
            a.set_yticklabels(sub["check"])
            a.set_xlabel(xlabel)
            a.xaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
        ax.set_title(f"Validation on the synthetic trial ({self.replications:,} replications each)",
                     loc="left", fontsize=10)
        ax.legend(loc="lower left", fontsize=7, frameon=False)
        fig.tight_layout()
        return ax

    def to_markdown(self, *, command: str | None = None, figure: str | None = None) -> str:
        """Render the report as Markdown (the page ``docs/validation.md``).

        Parameters
        ----------
        command
            The command that produced the report, shown at the top.
        figure
            Relative path of the coverage figure to embed.
        """
        t = self.table
        lines = ["# Validation report", ""]
        if command:
            lines += ["Regenerate this page with:", "", "```bash", command, "```", ""]
        n_in = sum(1 for v in t["inside"] if v is not None and bool(v))
        n_band = sum(1 for v in t["inside"] if v is not None)
        lines += [
            f"- Replications per check: **{self.replications:,}** (root seed {self.seed}); each "
            f"replicate draws a new synthetic trial of 1,200 persons from the calibrated "
            f"generator and fits it through the public API.",
            f"- Truths: super-population values from one synthetic sample of "
            f"{self.truth_n:,} persons (both potential paths known) with a seed no replicate uses.",
            f"- Band: nominal ± 3 Monte Carlo SE of the nominal rate, "
            f"i.e. 95% ± {_pct(3 * math.sqrt(0.95 * 0.05 / self.replications))} for coverage and "
            f"5% ± {_pct(3 * math.sqrt(0.05 * 0.95 / self.replications))} for size.",
            f"- **{n_in} of {n_band}** banded checks lie inside their band.",
            "",
        ]
        if figure:
            lines += [f"![Coverage and size per check]({figure})", ""]
        for kind, title in (("coverage", "Coverage of 95% intervals"),
                            ("rejection", "Size of tests and family-wise error under the sharp null")):
            sub = t[t["kind"] == kind]
            if not len(sub):
                continue
            lines += [f"## {title}", ""]
            if kind == "coverage":
                head = "| check | estimator | quantity | coverage | MC SE | band | inside | bias | RMSE | SE/SD |"
                lines += [head, "|" + "---|" * 10]
            else:
                head = "| check | estimator | quantity | rejection | MC SE | band | inside |"
                lines += [head, "|" + "---|" * 7]
            for r in sub.itertuples(index=False):
                band = "" if math.isnan(r.band_low) else f"{_pct(r.band_low)}–{_pct(r.band_high)}"
                inside = "" if r.inside is None else ("yes" if r.inside else "**no**")
                cells = [f"`{r.check}`", r.estimator, r.quantity, _pct(r.rate), _pct(r.mc_se), band, inside]
                if kind == "coverage":
                    cells += [_num(r.bias, 4), _num(r.rmse, 4), _num(r.se_sd_ratio, 2)]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        lines += [
            "Bias and RMSE are in the outcome's units (share of persons for `work_on_di` and "
            "`employed`, quarters for the RMST difference); SE/SD is the mean standard error "
            "over the standard deviation of the estimates. The unadjusted family-wise error "
            "is shown for reference: it is what the corrections correct.",
            "",
        ]
        p = self.parity
        lines += ["## Parity with R", ""]
        if p is None:
            lines += ["Not collected in this run.", ""]
        else:
            met = int(p["met"].sum())
            lines += [
                f"**{met} of {len(p)}** parity tests met their tolerance. Each compares our "
                "numbers with those an R script printed (`tests/reference/r/`, committed with "
                "its JSON output); the largest relative error is over the comparisons the test "
                "makes (blank where the test compares by its own helper).",
                "",
                "| test | reference | tolerance | largest relative error | comparisons | met |",
                "|---|---|---|---|---|---|",
            ]
            for r in p.itertuples(index=False):
                err = "" if not math.isfinite(r.max_rel_error) else f"{r.max_rel_error:.1e}"
                tol = "" if not math.isfinite(r.tolerance) else f"{r.tolerance:.0e}"
                lines.append(f"| `{r.test}` | {r.reference} | {tol} | {err} | {int(r.comparisons)} | "
                             f"{'yes' if r.met else '**no**'} |")
            lines.append("")
        return "\n".join(lines)

    def write(self, path: str | Path, *, command: str | None = None) -> Path:
        """Write the Markdown page and its SVG figure (deterministic bytes) beside it."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig_path = path.with_name(path.stem + "_coverage.svg")
        with plt.rc_context({"svg.hashsalt": "ips_impact-validation", "svg.fonttype": "none"}):
            ax = self.plot()
            ax.figure.savefig(fig_path, format="svg", metadata={"Date": None})
            plt.close(ax.figure)
        path.write_text(self.to_markdown(command=command, figure=fig_path.name), encoding="utf-8")
        return path
