r"""Result of the survival estimators: :class:`SurvivalResult`.

One frozen result holds everything a time-to-event analysis of the trial reports:
Kaplan–Meier curves by arm with numbers at risk (``km``), medians (``medians``),
restricted mean survival times (``rmst``), the Cox model (``cox``), the
proportional-hazards test (``ph_test``), and for competing risks the cumulative
incidence curves (``cif``) and Gray's tests. ``.tidy()`` has one row per statistic:

=======================  =============================================================
term                     row
=======================  =============================================================
``logrank``              statistic = chi-square, df, p_value; estimate = O - E events
                         in the IPS arm, std_error = sqrt(V)
``cox``                  estimate = log hazard ratio IPS vs control, log-scale interval
``rmst_difference``      RMST(IPS) - RMST(control) up to tau (horizon = tau)
``survival_difference``  S_IPS(tau) - S_control(tau), Greenwood standard error
``median_difference``    median(IPS) - median(control); no standard error
``gray``                 (competing risks) Gray's chi-square for one cause (outcome)
``cif_difference``       (competing risks) F_IPS(tau) - F_control(tau) for one cause
=======================  =============================================================

No table holds a person key; counts at risk are aggregates by arm and time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError
from ips_impact.results.base import TIDY_COLUMNS, ResultBase, _p_clause, result_dataclass
from ips_impact.units import period_word, time_label

__all__ = ["SurvivalResult", "KM_COLUMNS", "RMST_COLUMNS", "CIF_COLUMNS"]

#: Columns of ``SurvivalResult.km``.
KM_COLUMNS: tuple[str, ...] = (
    "arm", "time", "survival", "conf_low", "conf_high", "at_risk", "events", "censored",
)
#: Columns of ``SurvivalResult.rmst``.
RMST_COLUMNS: tuple[str, ...] = ("arm", "tau", "rmst", "std_error")
#: Columns of ``SurvivalResult.cif``.
CIF_COLUMNS: tuple[str, ...] = ("arm", "cause", "time", "estimate", "std_error", "conf_low", "conf_high")

_ARM_LABEL = {1: "IPS", 0: "control"}


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=float) for c in columns})


@result_dataclass
class SurvivalResult(ResultBase):
    r"""Frozen result of :func:`time_to_event`, :func:`spell_survival` or :func:`competing_risks`.

    Estimands (arm a = 1 IPS, 0 control; T the event time in periods since randomization):

    * survival :math:`S_a(t) = P(T > t \mid Z = a)` (Kaplan–Meier);
    * restricted mean survival time :math:`\mathrm{RMST}_a(\tau) = \int_0^\tau S_a(t)\,dt
      = E[\min(T, \tau) \mid Z = a]` and its difference IPS - control;
    * :math:`S_1(\tau) - S_0(\tau)`, median(IPS) - median(control);
    * the Cox log hazard ratio of the IPS arm (a summary under proportional hazards);
    * for competing risks, cumulative incidence :math:`F_{ac}(t) = P(T \le t, C = c \mid Z = a)`.

    Parameters
    ----------
    outcome
        Name of the event (or of the state, for spells).
    kind
        ``"time_to_event"``, ``"spell"`` or ``"competing_risks"``.
    statistics
        The tidy rows (columns of :data:`TIDY_COLUMNS`).
    km, rmst, medians, cox, ph_test, cif, gray
        Tables (see the module docstring); empty when they do not apply.
    tau, level
        Restriction time of RMST / survival / CIF differences, and confidence level.
    notes
        Sentences a reader must see (e.g. that a spell analysis conditions on entry).
    """

    outcome: str
    kind: str
    statistics: pd.DataFrame
    tau: float
    level: float = 0.95
    km: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty(KM_COLUMNS))
    rmst: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty(RMST_COLUMNS))
    medians: pd.DataFrame = dataclasses.field(
        default_factory=lambda: _empty(("arm", "median", "conf_low", "conf_high"))
    )
    cox: pd.DataFrame = dataclasses.field(
        default_factory=lambda: _empty(("term", "estimate", "std_error", "p_value"))
    )
    ph_test: pd.DataFrame = dataclasses.field(
        default_factory=lambda: _empty(("term", "chisq", "df", "p_value"))
    )
    cif: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty(CIF_COLUMNS))
    gray: pd.DataFrame = dataclasses.field(
        default_factory=lambda: _empty(("cause", "statistic", "df", "p_value"))
    )
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        missing = [c for c in TIDY_COLUMNS if c not in self.statistics.columns]
        if missing:
            raise EstimationError(
                "the statistics table of a SurvivalResult lacks tidy columns",
                column=missing, fix="build it with make_row().",
            )
        if self.kind not in ("time_to_event", "spell", "competing_risks"):
            raise EstimationError(
                f"kind must be one of 'time_to_event', 'spell', 'competing_risks'; got {self.kind!r}"
            )
        if isinstance(self.notes, str):
            object.__setattr__(self, "notes", (self.notes,))
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
        object.__setattr__(self, "tau", float(self.tau))
        super().__post_init__()

    # ---- tidy
    def _tidy_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.statistics[list(TIDY_COLUMNS)].to_dict(orient="records")]

    def _summary_title(self) -> str:
        what = {"time_to_event": "Time to event", "spell": "Spell survival",
                "competing_risks": "Competing risks"}[self.kind]
        return f"{what}: {self.outcome} (tau = {self.tau:g})"

    def _plot_title(self) -> str:
        """Plain title of a plot: what is timed, and up to when."""
        freq = self.spec.get("frequency")
        until = time_label(self.tau, freq)
        what = {"time_to_event": f"Time to first '{self.outcome}'",
                "spell": f"How long a '{self.outcome}' spell lasts",
                "competing_risks": "Which exit comes first"}[self.kind]
        return f"{what} (IPS vs control, up to {until})"

    def _summary_lines(self) -> list[str]:
        lines = list(self.notes)
        for r in self.statistics.itertuples(index=False):
            if r.term in ("logrank", "gray") and np.isfinite(r.statistic):
                what = "log-rank" if r.term == "logrank" else f"Gray's test ({r.outcome})"
                lines.append(f"{what}: chi2 = {r.statistic:.3f}, df = {r.df:g}, {_p_clause(r.p_value)}")
        if len(self.rmst):
            for r in self.rmst.itertuples(index=False):
                lines.append(
                    f"RMST {_ARM_LABEL.get(int(r.arm), r.arm)} up to {r.tau:g}: "
                    f"{r.rmst:.3f} (SE {r.std_error:.3f})"
                )
        if len(self.medians):
            for r in self.medians.itertuples(index=False):
                med = "not reached" if not np.isfinite(r.median) else f"{r.median:g}"
                lines.append(f"median {_ARM_LABEL.get(int(r.arm), r.arm)}: {med}")
        if len(self.ph_test):
            for r in self.ph_test.itertuples(index=False):
                lines.append(
                    f"proportional hazards ({r.term}): chi2 = {r.chisq:.3f}, df = {int(r.df)}, "
                    f"{_p_clause(r.p_value)}"
                )
            arm_rows = self.ph_test[self.ph_test["term"] == "arm"]
            if len(arm_rows) and float(arm_rows["p_value"].iloc[0]) < 0.05:
                lines.append("note: proportional hazards are rejected for the arm (p < 0.05): the hazard "
                             "ratio averages an effect that changes over time; the RMST difference "
                             "needs no such assumption")
        return lines

    # ---- convenient accessors
    @property
    def hazard_ratio(self) -> float:
        """exp(Cox coefficient of the IPS arm); NaN when no Cox model was fitted."""
        rows = self.statistics[self.statistics["term"] == "cox"]
        return float(np.exp(rows["estimate"].iloc[0])) if len(rows) else math.nan

    def risk_table(self, times: Any = None, *, min_cell: int | None = None) -> pd.DataFrame:
        """Numbers at risk by arm at ``times`` (default: the integer times of the KM table).

        With ``min_cell``, counts below it are shown as NaN (disclosure control).
        """
        km = self.km
        if not len(km):
            return pd.DataFrame(columns=["time"])
        if times is None:
            tmax = float(km["time"].max())
            step = max(1.0, float(np.ceil(tmax / 8)))
            times = np.arange(0.0, tmax + 1e-9, step)
        times = np.asarray(times, dtype=float)
        out = {"time": times}
        for arm in sorted(km["arm"].unique(), reverse=True):
            a = km[km["arm"] == arm].sort_values("time")
            t = a["time"].to_numpy(dtype=float)
            n = a["at_risk"].to_numpy(dtype=float)
            # at risk at time x = at risk at the first KM time >= x
            j = np.searchsorted(t, times, side="left")
            vals = np.where(j < len(t), n[np.minimum(j, len(t) - 1)], 0.0)
            if min_cell is not None:
                vals = np.where((vals > 0) & (vals < min_cell), np.nan, vals)
            out[_ARM_LABEL.get(int(arm), str(arm))] = vals
        return pd.DataFrame(out)

    # ---- plots
    def plot(self, ax: Any = None, *, risk_table: bool = True, min_cell: int | None = 10,
             confidence: bool = True) -> Any:
        """Kaplan–Meier curves by arm with a table of numbers at risk (or, for competing
        risks, cumulative incidence curves by arm and cause).

        Parameters
        ----------
        ax
            Axes to draw the curves on. ``None`` (default) makes a new figure; with
            ``risk_table=True`` it has a second, lower panel for the numbers at risk.
            On a given ``ax`` no risk table is drawn (there is no room for it).
        risk_table
            Draw the numbers at risk by arm under the curves (new figure only).
        min_cell
            Numbers at risk below it are shown as ``<min_cell`` (disclosure control; default
            10, the disclosure policy's minimum; ``None`` shows every count, for analysts only).
        confidence
            Shade the pointwise confidence bands.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes of the curves (the main panel), like every ``.plot()`` of
            :mod:`ips_impact`; ``ax.figure`` is the whole figure, risk table included.
            (Up to ips_impact 0.1.0 this method returned the Figure; it is ``ax.figure``.)
        """
        import matplotlib.pyplot as plt

        if self.kind == "competing_risks":
            return self._plot_cif(ax=ax, confidence=confidence)
        if ax is None:
            if risk_table:
                fig, (ax, ax_tab) = plt.subplots(
                    2, 1, figsize=(7, 5.5), gridspec_kw={"height_ratios": [4, 1]}, sharex=True
                )
            else:
                fig, ax = plt.subplots(figsize=(7, 4.5))
                ax_tab = None
        else:
            fig = ax.figure
            ax_tab = None
        colours = {1: "#1b9e77", 0: "#7570b3"}
        for arm in (1, 0):
            a = self.km[self.km["arm"] == arm].sort_values("time")
            if not len(a):
                continue
            t = np.concatenate([[0.0], a["time"].to_numpy(dtype=float)])
            s = np.concatenate([[1.0], a["survival"].to_numpy(dtype=float)])
            ax.step(t, s, where="post", color=colours[arm], label=_ARM_LABEL[arm])
            if confidence:
                lo = np.concatenate([[1.0], a["conf_low"].to_numpy(dtype=float)])
                hi = np.concatenate([[1.0], a["conf_high"].to_numpy(dtype=float)])
                ax.fill_between(t, lo, hi, step="post", color=colours[arm], alpha=0.15, linewidth=0)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(f"share still {self.outcome}" if self.kind == "spell"
                      else f"share not yet {self.outcome}")
        ax.set_title(self._plot_title(), loc="left", fontsize="medium")
        ax.legend(loc="best", frameon=False)
        unit = period_word(self.spec.get("frequency")) if self.spec.get("frequency") else "periods"
        xlabel = f"{unit} since entering the spell" if self.kind == "spell" else f"{unit} since randomization"
        if ax_tab is not None:
            tab = self.risk_table(min_cell=min_cell)
            ax_tab.set_xticks(tab["time"].to_numpy())
            ax_tab.set_ylim(-0.5, 1.5)
            ax_tab.set_yticks([1, 0])
            ax_tab.set_yticklabels(["IPS", "control"])
            for _, row in tab.iterrows():
                for y, lab in ((1, "IPS"), (0, "control")):
                    v = row.get(lab, np.nan)
                    txt = f"<{min_cell}" if (min_cell is not None and not np.isfinite(v)) else (
                        "" if not np.isfinite(v) else f"{int(v)}")
                    ax_tab.text(row["time"], y, txt, ha="center", va="center", fontsize=8)
            ax_tab.set_xlabel(xlabel)
            ax_tab.set_title("number at risk", fontsize=9, loc="left")
            for side in ("top", "right", "left"):
                ax_tab.spines[side].set_visible(False)
        else:
            ax.set_xlabel(xlabel)
        fig.tight_layout()
        return ax

    def _plot_cif(self, *, ax: Any = None, confidence: bool = True) -> Any:
        """Cumulative incidence by cause (colour) and arm (line style); returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4.5))
        else:
            fig = ax.figure
        styles = {1: "-", 0: "--"}
        causes = list(dict.fromkeys(self.cif["cause"].tolist()))
        cmap = plt.get_cmap("tab10")
        for ci, cause in enumerate(causes):
            for arm in (1, 0):
                a = self.cif[(self.cif["cause"] == cause) & (self.cif["arm"] == arm)].sort_values("time")
                t = np.concatenate([[0.0], a["time"].to_numpy(dtype=float)])
                f = np.concatenate([[0.0], a["estimate"].to_numpy(dtype=float)])
                ax.step(t, f, where="post", color=cmap(ci), linestyle=styles[arm],
                        label=f"{cause}, {_ARM_LABEL[arm]}")
                if confidence and len(a):
                    lo = np.concatenate([[0.0], a["conf_low"].to_numpy(dtype=float)])
                    hi = np.concatenate([[0.0], a["conf_high"].to_numpy(dtype=float)])
                    ax.fill_between(t, lo, hi, step="post", color=cmap(ci), alpha=0.1, linewidth=0)
        ax.set_ylim(0, 1)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # event time is whole periods
        unit = period_word(self.spec.get("frequency")) if self.spec.get("frequency") else "periods"
        ax.set_xlabel(f"{unit} since randomization")
        ax.set_ylabel("cumulative incidence")
        ax.set_title(self._plot_title(), loc="left", fontsize="medium")
        ax.legend(loc="best", frameon=False, fontsize=8)
        fig.tight_layout()
        return ax
