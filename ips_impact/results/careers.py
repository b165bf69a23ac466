r"""Results of the career estimators: state occupation, recurrent job starts, transitions.

* :class:`StateOccupationResult` (:func:`~ips_impact.state_occupation`): Aalen–Johansen
  probability of being in each state by arm and quarter, ``.occupation`` (``arm, k,
  state, probability, std_error, conf_low, conf_high``), ``.at_risk`` (persons
  followed by arm and k) and tidy rows ``state_occupation_difference``
  :math:`p_{1s}(h) - p_{0s}(h)` per state and horizon h. ``.plot()`` draws stacked
  areas by arm.
* :class:`RecurrentResult` (:func:`~ips_impact.recurrent_spells`): mean cumulative
  number of events (job starts) per person, ``.mcf`` (``arm, k, mcf, std_error,
  conf_low, conf_high, at_risk, events``), tidy rows ``mcf_difference``
  :math:`\mu_1(h) - \mu_0(h)`, ``log_rate_ratio`` and ``rate_ratio`` (Andersen–Gill /
  LWYY marginal rate model). ``.plot()`` draws the mean cumulative jobs by arm with
  the numbers at risk, which ``.risk_table()`` returns as data.
* :class:`TransitionResult` (:func:`~ips_impact.transitions`): transition-specific
  hazard of one move (e.g. work → DI only), ``.cumhaz`` (Nelson–Aalen by arm), the
  Cox row ``cox`` (log hazard ratio) and ``hazard_ratio``.

No table holds a person key: every count is an aggregate by arm and k.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError
from ips_impact.results.base import TIDY_COLUMNS, ResultBase, _p_clause, result_dataclass

__all__ = [
    "StateOccupationResult",
    "RecurrentResult",
    "TransitionResult",
    "OCCUPATION_COLUMNS",
    "MCF_COLUMNS",
]

#: Columns of ``StateOccupationResult.occupation`` (``group`` first when ``by`` is given).
OCCUPATION_COLUMNS: tuple[str, ...] = (
    "arm",
    "k",
    "state",
    "probability",
    "std_error",
    "conf_low",
    "conf_high",
)
#: Columns of ``RecurrentResult.mcf``.
MCF_COLUMNS: tuple[str, ...] = (
    "arm",
    "k",
    "mcf",
    "std_error",
    "conf_low",
    "conf_high",
    "at_risk",
    "events",
)

_ARM_LABEL = {1: "IPS", 0: "control"}
_STATE_LABEL = {
    "work": "at work (not on DI)",
    "work_on_di": "at work while on DI",
    "di_only": "on DI, not working",
    "unemployed": "unemployed (job-seeker)",
    "other": "other (inactive, unknown)",
}
_ARM_COLOUR = {1: "#1b9e77", 0: "#7570b3"}


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=float) for c in columns})


class _CareerBase(ResultBase):
    statistics: pd.DataFrame

    def _check_statistics(self) -> None:
        missing = [c for c in TIDY_COLUMNS if c not in self.statistics.columns]
        if missing:
            raise EstimationError(
                f"the statistics table of a {type(self).__name__} lacks tidy columns",
                column=missing,
                fix="build it with make_row().",
            )

    def _tidy_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.statistics[list(TIDY_COLUMNS)].to_dict(orient="records")]

    def _row_lines(self, unit: str, scale: float = 1.0) -> list[str]:
        lines = []
        for r in self.statistics.itertuples(index=False):
            est, lo, hi = (scale * r.estimate, scale * r.conf_low, scale * r.conf_high)
            h = (
                ""
                if r.horizon is None or (isinstance(r.horizon, float) and np.isnan(r.horizon))
                else (f" at k = {r.horizon}")
            )
            lines.append(
                f"{r.outcome}: {r.term}{h} = {est:.2f}{unit} "
                f"[{lo:.2f}, {hi:.2f}], {_p_clause(r.p_value)}"
            )
        return lines


@result_dataclass
class StateOccupationResult(_CareerBase):
    r"""Frozen result of :func:`~ips_impact.state_occupation`.

    Estimand: :math:`p_{as}(k) = P(X(k) = s \mid Z = a)`, the probability that a
    person assigned to arm a is in state s (work, work on DI, DI only, unemployed,
    other) k quarters after randomization, and the difference
    :math:`p_{1s}(h) - p_{0s}(h)` (tidy rows, in probability units; ×100 for
    percentage points).

    Parameters
    ----------
    states
        The states in order.
    statistics
        Tidy rows (``state_occupation_difference`` per state and horizon).
    occupation
        ``arm, k, state, probability, std_error, conf_low, conf_high`` (``group``
        first when ``by`` was given).
    at_risk
        ``arm, k, at_risk`` (persons still followed; ``group`` first with ``by``).
    tau, level
        Main horizon (quarters) and confidence level.
    """

    states: tuple[str, ...]
    statistics: pd.DataFrame
    occupation: pd.DataFrame
    at_risk: pd.DataFrame
    tau: int
    level: float = 0.95

    def __post_init__(self) -> None:
        self._check_statistics()
        object.__setattr__(self, "states", tuple(self.states))
        super().__post_init__()

    def _summary_title(self) -> str:
        return f"State occupation by arm (Aalen–Johansen), tau = {self.tau} quarters"

    def _summary_lines(self) -> list[str]:
        return ["differences IPS − control in percentage points:", *self._row_lines(" pp", 100.0)]

    def plot(self, ax: Any = None, *, group: Any = None) -> Any:
        """Stacked areas of the state-occupation probabilities, one panel per arm.

        Returns the Axes of the IPS panel (``ax.figure`` holds both); with ``ax`` given
        (a pair of Axes), draws into them.
        """
        import matplotlib.pyplot as plt

        occ = self.occupation
        if "group" in occ.columns:
            g = occ["group"].iloc[0] if group is None else group
            occ = occ[occ["group"] == g]
        if ax is None:
            fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
        else:
            axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
            fig = axes[0].figure
        cmap = plt.get_cmap("Set2")
        for a_i, arm in enumerate((1, 0)[: len(axes)]):
            a = occ[occ["arm"] == arm]
            wide = a.pivot(index="k", columns="state", values="probability")[list(self.states)]
            axes[a_i].stackplot(
                wide.index.to_numpy(),
                wide.to_numpy().T,
                labels=[_STATE_LABEL.get(st, st) for st in self.states],
                colors=[cmap(i) for i in range(len(self.states))],
                alpha=0.9,
            )
            axes[a_i].set_title(_ARM_LABEL[arm])
            axes[a_i].set_xlabel("quarters since randomization")
            axes[a_i].set_xlim(float(wide.index.min()), float(wide.index.max()))
            axes[a_i].set_ylim(0, 1)
        axes[0].set_ylabel("share of persons in each state")
        # legend top-down in the order of the stack as drawn (the first state at the bottom)
        handles, labels = axes[0].get_legend_handles_labels()
        axes[-1].legend(
            handles[::-1],
            labels[::-1],
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
            fontsize=8,
        )
        fig.suptitle("Where are the participants? State occupation by arm")
        fig.tight_layout()
        return axes[0]


@result_dataclass
class RecurrentResult(_CareerBase):
    r"""Frozen result of :func:`~ips_impact.recurrent_spells`.

    Estimands: the mean cumulative number of events per person
    :math:`\mu_a(k) = E[N(k) \mid Z = a]` (job starts in quarters 1..k), the difference
    :math:`\mu_1(h) - \mu_0(h)` (events per person), and the Andersen–Gill / LWYY
    marginal rate ratio :math:`\exp(\beta)` of
    :math:`E[dN(t) \mid Z] = e^{\beta Z} d\mu_0(t)` with robust (person-clustered)
    variance.

    Parameters
    ----------
    event
        Name of the recurrent event (``"job_start"`` or ``"entry:<state>"``).
    statistics
        Tidy rows ``mcf_difference`` (per horizon), ``log_rate_ratio``, ``rate_ratio``.
    mcf
        ``arm, k, mcf, std_error, conf_low, conf_high, at_risk, events``.
    cox
        The Andersen–Gill coefficients: ``term, estimate, std_error, statistic,
        p_value, conf_low, conf_high, rate_ratio``.
    tau, level
        Main horizon (quarters) and confidence level.
    """

    event: str
    statistics: pd.DataFrame
    mcf: pd.DataFrame
    cox: pd.DataFrame
    tau: int
    level: float = 0.95

    def __post_init__(self) -> None:
        self._check_statistics()
        super().__post_init__()

    @property
    def rate_ratio(self) -> float:
        """exp(Andersen–Gill coefficient of the IPS arm)."""
        r = self.statistics[self.statistics["term"] == "rate_ratio"]
        return float(r["estimate"].iloc[0]) if len(r) else float("nan")

    def _summary_title(self) -> str:
        return (
            f"Recurrent events: {self.event} (mean cumulative number per person), "
            f"tau = {self.tau} quarters"
        )

    def _summary_lines(self) -> list[str]:
        lines = []
        for r in self.statistics.itertuples(index=False):
            unit = " per person" if r.term == "mcf_difference" else ""
            h = f" at k = {int(r.horizon)}" if r.term == "mcf_difference" else ""
            lines.append(
                f"{r.term}{h} = {r.estimate:.3f}{unit} [{r.conf_low:.3f}, {r.conf_high:.3f}], "
                f"{_p_clause(r.p_value)}"
            )
        return lines

    def risk_table(self, ks: Any = None, *, min_cell: int | None = None) -> pd.DataFrame:
        """Numbers of persons followed (at risk of an event) by arm at quarters ``ks``.

        Default: about eight evenly spaced quarters. With ``min_cell``, counts below it
        are NaN (disclosure control).
        """
        m = self.mcf
        kmax = int(m["k"].max())
        if ks is None:
            step = max(1, int(np.ceil(kmax / 8)))
            ks = np.unique(np.append(np.arange(0, kmax + 1, step), kmax))
        ks = np.asarray(ks, dtype=np.int64)
        out: dict[str, Any] = {"k": ks}
        for arm in (1, 0):
            a = m[m["arm"] == arm].set_index("k")["at_risk"]
            # at k = 0 everyone followed at k = 1 (or more) is counted
            vals = a.reindex(np.maximum(ks, 1)).to_numpy(dtype=float)
            if min_cell is not None:
                vals = np.where((vals > 0) & (vals < min_cell), np.nan, vals)
            out[_ARM_LABEL[arm]] = vals
        return pd.DataFrame(out)

    def plot(
        self,
        ax: Any = None,
        *,
        risk_table: bool = True,
        min_cell: int | None = None,
        confidence: bool = True,
    ) -> Any:
        """Mean cumulative number of events per person by arm, with numbers at risk.

        Returns the Axes of the curves (``ax.figure`` holds the risk table too).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            if risk_table:
                fig, (ax, ax_tab) = plt.subplots(
                    2, 1, figsize=(7, 5.5), sharex=True, gridspec_kw={"height_ratios": [4, 1]}
                )
            else:
                fig, ax = plt.subplots(figsize=(7, 4.5))
                ax_tab = None
        else:
            fig, ax_tab = ax.figure, None
        for arm in (1, 0):
            a = self.mcf[self.mcf["arm"] == arm].sort_values("k")
            k = a["k"].to_numpy(dtype=float)
            ax.step(
                k, a["mcf"].to_numpy(), where="post", color=_ARM_COLOUR[arm], label=_ARM_LABEL[arm]
            )
            if confidence:
                ax.fill_between(
                    k,
                    a["conf_low"].to_numpy(),
                    a["conf_high"].to_numpy(),
                    step="post",
                    color=_ARM_COLOUR[arm],
                    alpha=0.15,
                    linewidth=0,
                )
        label = "job starts" if self.event == "job_start" else self.event
        ax.set_ylabel(f"mean cumulative {label} per person")
        ax.set_title(f"Mean cumulative {label} per person, by arm")
        ax.legend(loc="upper left", frameon=False)
        if ax_tab is not None:
            tab = self.risk_table(min_cell=min_cell)
            ax_tab.set_xticks(tab["k"].to_numpy())
            ax_tab.set_ylim(-0.5, 1.5)
            ax_tab.set_yticks([1, 0])
            ax_tab.set_yticklabels(["IPS", "control"])
            for _, row in tab.iterrows():
                for y, lab in ((1, "IPS"), (0, "control")):
                    v = row[lab]
                    txt = (
                        f"<{min_cell}"
                        if (min_cell is not None and not np.isfinite(v))
                        else ("" if not np.isfinite(v) else f"{int(v)}")
                    )
                    ax_tab.text(row["k"], y, txt, ha="center", va="center", fontsize=8)
            ax_tab.set_xlabel("quarters since randomization")
            ax_tab.set_title("number followed (at risk)", fontsize=9, loc="left")
            for side in ("top", "right", "left"):
                ax_tab.spines[side].set_visible(False)
        else:
            ax.set_xlabel("quarters since randomization")
        fig.tight_layout()
        return ax


@result_dataclass
class TransitionResult(_CareerBase):
    r"""Frozen result of :func:`~ips_impact.transitions`.

    Tidy rows: ``cox`` (log hazard ratio) and ``hazard_ratio`` (its exponential, the
    log row's test). Estimand: the transition-specific (cause-specific) hazard of moving from
    ``from_state`` to ``to_state``, :math:`\alpha_{a}(t)`, through the Cox log hazard
    ratio IPS vs control (time since randomization, Markov: the hazard may depend on t
    but not on time already spent in the state), and the Nelson–Aalen cumulative
    transition hazard :math:`A_a(k) = \sum_{t \le k} d_{a}(t)/n_{a}(t)` by arm.
    """

    from_state: str
    to_state: tuple[str, ...]
    statistics: pd.DataFrame
    cumhaz: pd.DataFrame
    cox: pd.DataFrame
    level: float = 0.95

    def __post_init__(self) -> None:
        self._check_statistics()
        object.__setattr__(self, "to_state", tuple(self.to_state))
        super().__post_init__()

    @property
    def hazard_ratio(self) -> float:
        """exp(Cox coefficient of the IPS arm)."""
        r = self.statistics[self.statistics["term"] == "cox"]
        return float(np.exp(r["estimate"].iloc[0])) if len(r) else float("nan")

    def _summary_title(self) -> str:
        return f"Transition hazard: {self.from_state} → {' / '.join(self.to_state)}"

    def _summary_lines(self) -> list[str]:
        lines = []
        for r in self.statistics.itertuples(index=False):
            if r.term != "cox":
                continue
            lines.append(
                f"log hazard ratio (IPS vs control) = {r.estimate:.3f} (SE {r.std_error:.3f}); "
                f"hazard ratio {np.exp(r.estimate):.3f} [{np.exp(r.conf_low):.3f}, "
                f"{np.exp(r.conf_high):.3f}], {_p_clause(r.p_value)}"
            )
        return lines

    def plot(self, ax: Any = None) -> Any:
        """Cumulative transition hazard by arm; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4.5))
        else:
            fig = ax.figure
        for arm in (1, 0):
            a = self.cumhaz[self.cumhaz["arm"] == arm].sort_values("k")
            ax.step(
                a["k"].to_numpy(dtype=float),
                a["cumhaz"].to_numpy(),
                where="post",
                color=_ARM_COLOUR[arm],
                label=_ARM_LABEL[arm],
            )
        ax.set_xlabel("quarters since randomization")
        ax.set_ylabel("cumulative transition hazard")
        ax.set_title(self._summary_title())
        ax.legend(loc="upper left", frameon=False)
        fig.tight_layout()
        return ax
