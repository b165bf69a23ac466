r"""Result of :func:`ips_impact.heterogeneity`: effects by subgroup or along a moderator.

``HeterogeneityResult`` is a frozen result on :class:`~ips_impact.results.base.ResultBase`
with the common tidy schema:

* categorical moderator: one row per subgroup :math:`g` (``term == "arm:<by>=<g>"``,
  ``estimand == "subgroup"``) with :math:`\tau_g = E[Y(1) - Y(0) \mid G = g]`, and one
  row for the joint test that they are all equal (``term == "joint:<by>"``,
  ``estimand == "heterogeneity_test"``: ``statistic`` is the F statistic, ``df`` its
  denominator degrees of freedom, ``estimate`` and ``std_error`` are NaN);
* continuous moderator :math:`m`: the effect at the mean moderator (``term == "arm"``,
  ``estimand == "effect_at_mean"``), the interaction (``term == "arm:<by>"``,
  ``estimand == "interaction"``, the change of the effect per unit of :math:`m`), and
  the joint-test row (the interaction is zero).

The per-subgroup numbers that the tidy schema has no column for (minimum detectable
effect, small-sample flag, site fidelity…) are in ``subgroups``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.disclosure import DisclosurePolicy
from ips_impact.results.base import (
    ResultBase,
    _fmt_horizon,
    _fmt_num,
    _p_clause,
    critical_value,
    make_row,
    result_dataclass,
)
from ips_impact.units import horizon_text, unit_of

__all__ = ["HeterogeneityResult", "SUBGROUP_COLUMNS"]

#: Columns of ``HeterogeneityResult.subgroups`` (more may follow, e.g. ``fidelity``).
SUBGROUP_COLUMNS: tuple[str, ...] = (
    "subgroup",
    "term",
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "conf_low",
    "conf_high",
    "df",
    "nobs",
    "n_treated",
    "n_control",
    "control_mean",
    "mde",
    "small",
)


@result_dataclass
class HeterogeneityResult(ResultBase):
    r"""Effects by subgroup (or along a continuous moderator) and the test of equality.

    Parameters
    ----------
    outcome
        Outcome column.
    by
        The moderator's name (``"region"``, ``"household_type"``, a column…).
    moderator
        ``"categorical"`` or ``"continuous"``.
    horizon
        Tidy horizon label (event time ``k`` or ``"a:b"``).
    subgroups
        One row per effect, columns :data:`SUBGROUP_COLUMNS` (+ e.g. ``fidelity``,
        ``range``): subgroup label, coefficient name, inference, counts, control mean,
        minimum detectable effect (``mde``: 80% power, 5% two-sided unless the spec
        says otherwise) and ``small`` (fewer than ``min_per_arm`` persons in an arm).
    joint
        The joint test: ``test`` (``"equal_effects"`` / ``"no_interaction"``),
        ``statistic`` (F = W/q), ``chi2`` (W), ``df_num`` (q), ``df_denom``,
        ``p_value`` (from F(q, df_denom)), ``p_value_chi2``.
    vcov
        Covariance of the reported effects (subgroup terms × subgroup terms).
    nobs, n_treated, n_control
        The whole estimation sample.
    level
        Confidence level of the intervals.
    centre
        Continuous moderator: the sample mean at which it is centred (NaN otherwise).
    """

    outcome: str
    by: str
    moderator: str
    subgroups: pd.DataFrame
    joint: Mapping[str, Any]
    vcov: pd.DataFrame
    nobs: int
    n_treated: int
    n_control: int
    horizon: Any = None
    level: float = 0.95
    centre: float = math.nan

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", float(self.centre))
        critical_value(self.level)  # validates level
        super().__post_init__()

    # ---- accessors
    @property
    def effects(self) -> pd.DataFrame:
        """The subgroup table (a copy)."""
        return self.subgroups.copy()

    @property
    def p_value(self) -> float:
        """p-value of the joint test (equal effects / no interaction)."""
        return float(self.joint["p_value"])

    @property
    def statistic(self) -> float:
        """F statistic of the joint test."""
        return float(self.joint["statistic"])

    def effect_at(self, value: float | np.ndarray) -> pd.DataFrame:
        r"""Continuous moderator: the effect at moderator value(s) :math:`m`.

        .. math:: \tau(m) = \tau + \gamma (m - \bar m), \quad
                  \mathrm{Var} = V_{\tau\tau} + 2 (m - \bar m) V_{\tau\gamma}
                  + (m - \bar m)^2 V_{\gamma\gamma}

        with a t interval on the df of the effect at the mean.
        """
        if self.moderator != "continuous":
            from ips_impact.errors import EstimationError

            raise EstimationError(
                "effect_at() needs a continuous moderator; this result has subgroups",
                fix="read the subgroup effects from .subgroups or .tidy()",
            )
        m = np.atleast_1d(np.asarray(value, dtype=float)) - self.centre
        est = self.subgroups["estimate"].to_numpy(dtype=float)
        V = self.vcov.to_numpy(dtype=float)
        eff = est[0] + est[1] * m
        se = np.sqrt(np.maximum(V[0, 0] + 2 * m * V[0, 1] + m**2 * V[1, 1], 0.0))
        df = float(self.subgroups["df"].iloc[0])
        crit = critical_value(self.level, df)
        return pd.DataFrame({"value": m + self.centre, "estimate": eff, "std_error": se,
                             "conf_low": eff - crit * se, "conf_high": eff + crit * se})

    # ---- tidy
    def _tidy_rows(self) -> list[dict[str, Any]]:
        rows = []
        cont = self.moderator == "continuous"
        for i, r in enumerate(self.subgroups.itertuples(index=False)):
            if cont:
                estimand = "effect_at_mean" if i == 0 else "interaction"
            else:
                estimand = "subgroup"
            rows.append(
                make_row(
                    outcome=self.outcome, term=r.term, estimand=estimand, horizon=self.horizon,
                    estimate=r.estimate, std_error=r.std_error, df=r.df, nobs=r.nobs,
                    n_treated=r.n_treated, n_control=r.n_control,
                    control_mean=r.control_mean, level=self.level,
                )
            )
        j = self.joint
        rows.append(
            make_row(
                outcome=self.outcome, term=f"joint:{self.by}", estimand="heterogeneity_test",
                horizon=self.horizon, estimate=math.nan, std_error=math.nan,
                df=float(j["df_denom"]), nobs=self.nobs, n_treated=self.n_treated,
                n_control=self.n_control, level=self.level, statistic=float(j["statistic"]),
                p_value=float(j["p_value"]), conf_low=math.nan, conf_high=math.nan,
            )
        )
        return rows

    def _summary_title(self) -> str:
        h = "" if _fmt_horizon(self.horizon) == "" else f" at {horizon_text(self.horizon, self.spec.get('frequency'))}"
        return f"Effect of arm on {self.outcome}{h} by {self.by}"

    def _summary_lines(self) -> list[str]:
        j = self.joint
        what = "equal effects" if j["test"] == "equal_effects" else "no interaction"
        method = j.get("method")
        label = f"Joint test of {what}" + (f" ({method})" if method else "")
        stat, p_value = float(j["statistic"]), float(j["p_value"])
        if not (math.isfinite(stat) and math.isfinite(p_value)):
            lines = [f"{label}: not computed (see the warnings)"]
        elif method == "chi-square":
            lines = [f"{label}: chi-square({int(j['df_num'])}) = {_fmt_num(stat)}, {_p_clause(p_value)}"]
        else:
            lines = [f"{label}: F({int(j['df_num'])}, {_fmt_num(float(j['df_denom']), 1)}) = "
                     f"{_fmt_num(stat)}, {_p_clause(p_value)}"]
        source = self.spec.get("moderator_source")
        if source is not None:
            column = self.spec.get("moderator_column") or self.spec.get("by")
            where = {"persons": "column of persons (as given)",
                     "roster": "derived from the baseline household roster",
                     "sites": "from the sites (fidelity) table"}.get(str(source), str(source))
            lines.append(f"Moderator {column}: {where}")
        if self.moderator == "continuous":
            lines.append(f"Moderator centred at its sample mean {_fmt_num(self.centre)}")
        mde = self.subgroups[["subgroup", "mde"]]
        lines.append("Minimum detectable effect (80% power, 5% two-sided): "
                     + ", ".join(f"{s}: {_fmt_num(float(m))}" for s, m in mde.itertuples(index=False)))
        small = self.subgroups.loc[self.subgroups["small"], "subgroup"].tolist()
        if small:
            lines.append("Too small to say much (fewer than the minimum per arm): " + ", ".join(map(str, small)))
        cov = self.spec.get("cov_type")
        if cov is not None:
            lines.append(f"Standard errors: {cov}")
        return lines

    # ---- figure
    def plot(self, ax: Any = None, *, reference: float = 0.0, show_mde: bool = True) -> Any:
        """Forest plot of the subgroup effects with their intervals (categorical), or the
        effect along the moderator with its pointwise band (continuous).

        Parameters
        ----------
        ax
            Axes to draw on; ``None`` (default) makes a new figure.
        reference
            Position of the no-effect line.
        show_mde
            Categorical moderator: mark each subgroup's minimum detectable effect.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on (its ``.figure`` is the figure).
        """
        import matplotlib.pyplot as plt

        pct = int(round(self.level * 100))
        if self.moderator == "continuous":
            if ax is None:
                _, ax = plt.subplots(figsize=(6, 4))
            lo, hi = self.spec.get("moderator_range", (self.centre - 1.0, self.centre + 1.0))
            grid = self.effect_at(np.linspace(lo, hi, 101))
            ax.fill_between(grid["value"], grid["conf_low"], grid["conf_high"], alpha=0.2,
                            color="C0", label=f"{pct}% pointwise CI")
            ax.plot(grid["value"], grid["estimate"], color="C0", label="effect")
            ax.axhline(reference, color="0.4", lw=0.8)
            ax.set_xlabel(self.by)
            ax.set_ylabel(f"effect on {self.outcome}")
            ax.legend(frameon=False, fontsize="small")
            return ax
        sg = self.subgroups
        n = len(sg)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 1.0 + 0.5 * n))
        ypos = np.arange(n)[::-1]
        est = sg["estimate"].to_numpy(dtype=float)
        ax.errorbar(est, ypos, xerr=np.vstack([est - sg["conf_low"].to_numpy(dtype=float),
                                               sg["conf_high"].to_numpy(dtype=float) - est]),
                    fmt="s", color="C0", ms=5, capsize=3, lw=1.2, label=f"effect ({pct}% CI)")
        if show_mde:
            ax.scatter(reference + sg["mde"].to_numpy(dtype=float), ypos, marker="|", s=120,
                       color="C3", label="minimum detectable effect")
        ax.axvline(reference, color="0.4", lw=0.8)
        # counts in labels are published numbers: rounded as the disclosure policy says
        policy = DisclosurePolicy()
        labels = [f"{s}  (n ≈ {policy.round_count(int(a) + int(b))})" if policy.count_ok(int(a) + int(b))
                  else f"{s}  (n < {policy.min_persons})"
                  for s, a, b in zip(sg["subgroup"], sg["n_treated"], sg["n_control"])]
        ax.set_yticks(ypos)
        ax.set_yticklabels(labels)
        j = self.joint
        ax.set_title(f"{self.by}: test of equal effects {_p_clause(float(j['p_value']))}",
                     fontsize="medium")
        if unit_of(self.outcome).kind == "binary":
            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{100 * v:g}"))
            ax.set_xlabel(f"effect on {self.outcome} (percentage points)")
        else:
            ax.set_xlabel(f"effect on {self.outcome}")
        ax.set_ylabel(self.by)
        # under the axes: inside them ("best") it can sit on the widest interval (Brussels)
        ax.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.25),
                  ncol=2)
        ax.figure.tight_layout()
        return ax
