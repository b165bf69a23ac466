r"""Result types of the effect estimators: one effect, effects over time, bounds, balance.

All are frozen dataclasses with keyword-only fields built on
:class:`~ips_impact.results.base.ResultBase` (``spec``, ``warnings``, ``ledger``,
``annotations`` are inherited). Constructors, in short:

``EffectResult(outcome=, estimate=, std_error=, df=, nobs=, n_treated=, n_control=, ...)``
    or, from a fitted regression, ``EffectResult.from_fit(outcome=, params=, vcov=,
    df=, term="arm", nobs=, n_treated=, n_control=, ...)``.
``DynamicEffectResult(outcome=, effects=(EffectResult, ...), vcov=, pretest=, sup_t_crit=)``
    one :class:`EffectResult` per event time ``k`` (its ``horizon``).
``BoundsResult(outcome=, selection=, lower=, upper=, se_lower=, se_upper=, ...)``
    the Imbens–Manski interval is computed from the bounds and their standard errors.
``BalanceTable(table=, joint=, missingness=)``
    ``table`` has the columns of :data:`BALANCE_COLUMNS`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ips_impact.errors import EstimationError
from ips_impact.results.base import (
    ResultBase,
    _fmt_horizon,
    _fmt_num,
    _fmt_p,
    _p_clause,
    _text_table,
    critical_value,
    make_row,
    result_dataclass,
    two_sided_p,
    wald_inference,
)
from ips_impact.units import horizon_text, period_word, unit_of

__all__ = [
    "EffectResult",
    "DynamicEffectResult",
    "BoundsResult",
    "BalanceTable",
    "BALANCE_COLUMNS",
    "COEFFICIENT_COLUMNS",
    "imbens_manski_interval",
    "PretestResult",
]

#: Columns of ``EffectResult.coefficients`` (indexed by term).
COEFFICIENT_COLUMNS: tuple[str, ...] = (
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "conf_low",
    "conf_high",
)

#: Columns of ``BalanceTable.table``.
BALANCE_COLUMNS: tuple[str, ...] = (
    "covariate",
    "level",
    "mean_treated",
    "mean_control",
    "sd_treated",
    "sd_control",
    "difference",
    "norm_diff",
    "estimate",
    "std_error",
    "df",
    "p_value",
    "n_treated",
    "n_control",
    "n_missing_treated",
    "n_missing_control",
)


def _finite_or_nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def _fmt_df(df: float | None) -> str:
    """Degrees of freedom as a reader expects them: ``1183``, ``41.3``, ``inf``."""
    if df is None or not np.isfinite(df):
        return "inf"
    return str(int(df)) if float(df).is_integer() else f"{df:.1f}"


def _coef_table(params: pd.Series, se: pd.Series, df: float | None, level: float) -> pd.DataFrame:
    """Coefficient table with Wald inference, vectorised (one scipy call per quantity)."""
    est = params.to_numpy(dtype=float)
    sev = se.to_numpy(dtype=float)
    crit = critical_value(level, df)
    ok = np.isfinite(sev) & (sev > 0) & np.isfinite(est)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(ok, est / sev, np.nan)
    p = np.where(ok, two_sided_p(np.nan_to_num(stat), df), np.nan)
    lo = np.where(ok, est - crit * sev, np.nan)
    hi = np.where(ok, est + crit * sev, np.nan)
    arr = np.column_stack([est, sev, stat, p, lo, hi])
    return pd.DataFrame(arr, columns=list(COEFFICIENT_COLUMNS),
                        index=pd.Index([str(t) for t in params.index], name="term"))


# ---------------------------------------------------------------------------- effect


@result_dataclass
class EffectResult(ResultBase):
    r"""One causal effect with its inference.

    With :math:`Z_i` the assigned arm (1 = IPS), :math:`Y_i(z)` the potential outcomes
    at the horizon (or aggregated over the window) and :math:`D_i` the take-up:

    * ``estimand == "itt"``: :math:`\tau_{ITT} = E[Y_i(1) - Y_i(0)]`, the effect of
      being offered IPS;
    * ``estimand == "late"``: :math:`\tau_{LATE} = E[Y_i(1) - Y_i(0) \mid
      D_i(1) > D_i(0)] = \tau_{ITT} / E[D_i(1) - D_i(0)]`, the effect on compliers.

    The effect row of :meth:`tidy` has ``term == "arm"`` (for LATE, the take-up
    column's name). Inference uses a t(``df``) reference (normal when ``df`` is
    ``None``/``inf``).

    Parameters
    ----------
    outcome, term, estimand, horizon
        Labels of the tidy row.
    estimate, std_error, df
        The effect, its standard error and the reference degrees of freedom.
    nobs, n_treated, n_control
        Estimation sample: persons (or person-periods), of whom assigned to IPS / control.
    control_mean
        Mean outcome of the control arm in the estimation sample.
    level
        Confidence level of ``conf_low``/``conf_high``.
    coefficients
        All coefficients (index ``term``; columns :data:`COEFFICIENT_COLUMNS`); when
        omitted, the effect row alone.
    vcov
        Covariance matrix of the coefficients (DataFrame, terms × terms), if kept.
    n_missing_treated, n_missing_control
        Persons set aside because the outcome was missing, per arm.
    diagnostics
        Estimator-specific numbers, e.g. ``first_stage_f``, ``complier_share``.
    """

    outcome: str
    estimate: float
    std_error: float
    nobs: int
    n_treated: int
    n_control: int
    df: float | None = None
    control_mean: float = math.nan
    term: str = "arm"
    estimand: str = "itt"
    horizon: Any = None
    level: float = 0.95
    coefficients: pd.DataFrame | None = None
    vcov: pd.DataFrame | None = None
    n_missing_treated: int = 0
    n_missing_control: int = 0
    diagnostics: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("estimate", "std_error", "control_mean"):
            object.__setattr__(self, name, _finite_or_nan(getattr(self, name)))
        if self.std_error < 0:
            raise EstimationError(
                f"std_error must not be negative; got {self.std_error}",
                fix="pass the square root of the variance (NaN when it is undefined).",
            )
        for name in ("nobs", "n_treated", "n_control", "n_missing_treated", "n_missing_control"):
            object.__setattr__(self, name, int(getattr(self, name)))
        df = self.df
        object.__setattr__(self, "df", math.inf if df is None else float(df))
        critical_value(self.level)  # validates level
        if self.coefficients is None:
            params = pd.Series([self.estimate], index=[self.term])
            ses = pd.Series([self.std_error], index=[self.term])
            object.__setattr__(self, "coefficients", _coef_table(params, ses, self.df, self.level))
        else:
            coefs = self.coefficients
            if self.term not in coefs.index:
                raise EstimationError(
                    f"the coefficient table has no row for the effect term '{self.term}'",
                    fix="index the coefficient table by term and include the effect term.",
                )
            missing = [c for c in ("estimate", "std_error") if c not in coefs.columns]
            if missing:
                raise EstimationError(
                    "the coefficient table lacks required columns", column=missing,
                    fix=f"give the columns {', '.join(COEFFICIENT_COLUMNS)}.",
                )
            if not all(c in coefs.columns for c in COEFFICIENT_COLUMNS):
                coefs = _coef_table(coefs["estimate"], coefs["std_error"], self.df, self.level)
                object.__setattr__(self, "coefficients", coefs)
        super().__post_init__()

    @classmethod
    def from_fit(
        cls,
        *,
        outcome: str,
        params: pd.Series,
        vcov: pd.DataFrame,
        nobs: int,
        n_treated: int,
        n_control: int,
        df: float | None = None,
        term: str = "arm",
        level: float = 0.95,
        **kwargs: Any,
    ) -> EffectResult:
        """Build from a fitted regression's coefficients and covariance matrix.

        ``params`` is indexed by term; ``vcov`` is the matching square DataFrame. The
        effect is ``params[term]`` with standard error ``sqrt(vcov[term, term])``.
        """
        params = pd.Series(params, dtype=float)
        vcov = pd.DataFrame(vcov, dtype=float)
        ses = pd.Series(np.sqrt(np.clip(np.diag(vcov.to_numpy()), 0.0, None)), index=vcov.index)
        ses = ses.reindex(params.index)
        coefs = _coef_table(params, ses, df, level)
        vcov.index = [str(t) for t in vcov.index]
        vcov.columns = [str(t) for t in vcov.columns]
        if str(term) not in coefs.index:
            raise EstimationError(
                f"the fitted model has no coefficient '{term}'",
                fix="name the effect term as it appears in params.",
            )
        return cls(
            outcome=outcome,
            estimate=float(coefs.loc[str(term), "estimate"]),
            std_error=float(coefs.loc[str(term), "std_error"]),
            df=df,
            nobs=nobs,
            n_treated=n_treated,
            n_control=n_control,
            term=str(term),
            level=level,
            coefficients=coefs,
            vcov=vcov,
            **kwargs,
        )

    # ---- the effect row
    @property
    def statistic(self) -> float:
        """T (or z) statistic of the effect."""
        return wald_inference(self.estimate, self.std_error, self.df, self.level)[0]

    @property
    def p_value(self) -> float:
        """Two-sided p-value of the effect (t(df) reference, normal if df is inf)."""
        return wald_inference(self.estimate, self.std_error, self.df, self.level)[1]

    @property
    def conf_low(self) -> float:
        """Lower end of the ``level`` confidence interval."""
        return self.conf_int()[0]

    @property
    def conf_high(self) -> float:
        """Upper end of the ``level`` confidence interval."""
        return self.conf_int()[1]

    def conf_int(self, level: float | None = None) -> tuple[float, float]:
        r"""Confidence interval :math:`\hat\tau \pm t_{df,(1+level)/2}\,\widehat{se}`.

        ``level`` defaults to the level the result was fitted with.
        """
        lv = self.level if level is None else level
        _, _, lo, hi = wald_inference(self.estimate, self.std_error, self.df, lv)
        return (lo, hi)

    @property
    def ri_p_value(self) -> float | None:
        """Randomization-inference p-value, when set by :func:`with_ri`."""
        v = self.annotations.get("ri_p_value")
        return None if v is None else v[0]

    @property
    def ri_se(self) -> float | None:
        """Monte Carlo standard error of :attr:`ri_p_value` (None when exact or not set)."""
        v = self.annotations.get("ri_se")
        return None if v is None else v[0]

    @property
    def ri_conf_int(self) -> tuple[float, float] | None:
        """Randomization confidence interval by test inversion, when set by :func:`with_ri`."""
        lo, hi = self.annotations.get("ri_conf_low"), self.annotations.get("ri_conf_high")
        return None if lo is None or hi is None else (lo[0], hi[0])

    @property
    def adj_p_value(self) -> float | None:
        """Multiplicity-adjusted p-value, when set."""
        v = self.annotations.get("adj_p_value")
        return None if v is None else v[0]

    def _tidy_rows(self) -> list[dict[str, Any]]:
        return [
            make_row(
                outcome=self.outcome,
                term=self.term,
                estimand=self.estimand,
                horizon=self.horizon,
                estimate=self.estimate,
                std_error=self.std_error,
                df=self.df,
                nobs=self.nobs,
                n_treated=self.n_treated,
                n_control=self.n_control,
                control_mean=self.control_mean,
                level=self.level,
            )
        ]

    def _summary_title(self) -> str:
        if self.estimand == "did" and self.spec.get("pre") is not None and self.spec.get("post") is not None:
            (a, b), (c, d) = self.spec["pre"], self.spec["post"]
            return f"DiD ({self.term} × post) on {self.outcome}: post k {c}:{d} vs pre k {a}:{b}"
        h = "" if _fmt_horizon(self.horizon) == "" else f" at {horizon_text(self.horizon, self.spec.get('frequency'))}"
        return f"{self.estimand.upper()} of {self.term} on {self.outcome}{h}"

    def _summary_lines(self) -> list[str]:
        lines = [
            f"{int(round(self.level * 100))}% CI: [{_fmt_num(self.conf_low)}, {_fmt_num(self.conf_high)}]"
            f"  (df = {_fmt_df(self.df)})",
        ]
        cov = self.spec.get("cov_type")
        if cov is not None:
            lines.append(f"Standard errors: {cov}")
        if self.n_missing_treated or self.n_missing_control:
            lines.append(
                f"Missing outcome: {self.n_missing_treated} treated, "
                f"{self.n_missing_control} control (excluded)"
            )
        for k, v in self.diagnostics.items():
            # flags (e.g. stacked_rows) are internals, not numbers a reader needs
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
                lines.append(f"{k}: {_fmt_num(v)}")
        return lines


# --------------------------------------------------------------------------- dynamic


@result_dataclass
class DynamicEffectResult(ResultBase):
    r"""Effects per event time with a pre-period test and a simultaneous band.

    For each event time :math:`k`, :math:`\tau_k = E[Y_{ik}(1) - Y_{ik}(0)]`. Before
    randomization (:math:`k < 0`) the true effect is zero by design, so the joint test
    of :math:`H_0: \tau_k = 0\ \forall k < 0` is a placebo check. The sup-t band
    :math:`\hat\tau_k \pm c\,\widehat{se}_k`, with :math:`c` the ``level`` quantile of
    :math:`\max_k |\hat\tau_k - \tau_k| / \widehat{se}_k`, covers the whole path with
    probability ``level``.

    Parameters
    ----------
    outcome
        Outcome name.
    effects
        One :class:`EffectResult` per event time, in increasing ``horizon``.
    vcov
        Joint covariance matrix of the effects across ``k`` (index/columns = k), if kept.
    pretest
        Joint test of the pre-period effects: mapping with ``statistic``, ``df_num``,
        ``df_denom`` (inf for chi-square), ``p_value``, ``ks``, ``test``; ``None``
        when no pre-period was estimated.
    sup_t_crit
        Critical value ``c`` of the sup-t band (``None`` when not computed).
    """

    outcome: str
    effects: tuple[EffectResult, ...]
    vcov: pd.DataFrame | None = None
    pretest: Mapping[str, Any] | None = None
    sup_t_crit: float | None = None
    level: float = 0.95
    term: str = "arm"
    estimand: str = "itt"

    def __post_init__(self) -> None:
        effects = tuple(self.effects)
        if not effects or not all(isinstance(e, EffectResult) for e in effects):
            raise EstimationError(
                "a dynamic result needs at least one EffectResult",
                fix="pass effects=(EffectResult(...), ...), one per event time.",
            )
        ks = [e.horizon for e in effects]
        if len(set(ks)) != len(ks):
            raise EstimationError(
                "two effects share the same horizon", fix="give one effect per event time k."
            )
        object.__setattr__(self, "effects", effects)
        if self.sup_t_crit is not None:
            object.__setattr__(self, "sup_t_crit", float(self.sup_t_crit))
        super().__post_init__()

    @property
    def ks(self) -> tuple[Any, ...]:
        """Event times, in the order of :attr:`effects`."""
        return tuple(e.horizon for e in self.effects)

    @property
    def estimates(self) -> pd.Series:
        """Effects indexed by event time."""
        return pd.Series([e.estimate for e in self.effects], index=pd.Index(self.ks, name="k"),
                         name="estimate")

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors indexed by event time."""
        return pd.Series([e.std_error for e in self.effects], index=pd.Index(self.ks, name="k"),
                         name="std_error")

    def effect_at(self, k: Any) -> EffectResult:
        """The :class:`EffectResult` at event time ``k``."""
        for e in self.effects:
            if e.horizon == k:
                return e
        raise EstimationError(
            f"no effect estimated at k = {k!r}",
            fix=f"choose one of the estimated event times {list(self.ks)}.",
        )

    def band(self) -> pd.DataFrame:
        """Per-k estimate, pointwise interval and simultaneous (sup-t) band.

        Columns ``k, estimate, std_error, conf_low, conf_high, band_low, band_high``
        (band columns NaN when ``sup_t_crit`` is not set).
        """
        est = self.estimates.to_numpy()
        se = self.std_errors.to_numpy()
        lo = np.array([e.conf_low for e in self.effects])
        hi = np.array([e.conf_high for e in self.effects])
        c = math.nan if self.sup_t_crit is None else self.sup_t_crit
        return pd.DataFrame(
            {
                "k": list(self.ks),
                "estimate": est,
                "std_error": se,
                "conf_low": lo,
                "conf_high": hi,
                "band_low": est - c * se,
                "band_high": est + c * se,
            }
        )

    def plot(self, ax: Any = None, *, band: bool = True, pointwise: bool = True,
             reference: float = 0.0, label: str | None = None) -> Any:
        """Plot the effect path: points, pointwise intervals and the sup-t band.

        Parameters
        ----------
        ax
            Axes to draw on; ``None`` (default) makes a new figure.
        band
            Shade the simultaneous (sup-t) band, when it was computed.
        pointwise
            Draw the pointwise confidence intervals (else a line through the points).
        reference
            Height of the horizontal reference line (no effect).
        label
            Legend label of the estimates.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on (its ``.figure`` is the figure).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        b = self.band()
        k = b["k"].to_numpy(dtype=float)
        est = b["estimate"].to_numpy(dtype=float)
        pct = int(round(self.level * 100))
        if band and self.sup_t_crit is not None:
            ax.fill_between(k, b["band_low"].to_numpy(dtype=float),
                            b["band_high"].to_numpy(dtype=float), alpha=0.2, color="C0",
                            label=f"{pct}% simultaneous band")
        if pointwise:
            yerr = np.vstack([est - b["conf_low"].to_numpy(dtype=float),
                              b["conf_high"].to_numpy(dtype=float) - est])
            ax.errorbar(k, est, yerr=yerr, fmt="o", color="C0", ms=3, lw=1, capsize=0,
                        label=label or f"{self.estimand.upper()} ({pct}% CI)")
        else:
            ax.plot(k, est, "o-", color="C0", ms=3, label=label or self.estimand.upper())
        ax.axhline(reference, color="0.4", lw=0.8)
        if (k < 0).any() and (k >= 0).any():
            ax.axvline(-0.5, color="0.6", lw=0.8, ls="--")
        freq = self.spec.get("frequency")
        ax.set_xlabel(f"event time k ({period_word(freq) if freq else 'periods'} since randomization)")
        binary = unit_of(self.outcome).kind == "binary"
        if binary:  # a 0/1 outcome: effects in percentage points
            from matplotlib.ticker import FuncFormatter

            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{100 * v:g}"))
        unit = "percentage points" if binary else (unit_of(self.outcome).short or "outcome units")
        ax.set_ylabel(f"effect ({unit})")
        ax.set_title(f"{self.estimand.upper()} of the IPS offer on {self.outcome}, by event time",
                     loc="left", fontsize="medium")
        ax.legend(frameon=False, fontsize="small")
        return ax

    def _tidy_rows(self) -> list[dict[str, Any]]:
        return [row for e in self.effects for row in e._tidy_rows()]

    def _summary_title(self) -> str:
        return f"{self.estimand.upper()} of {self.term} on {self.outcome} by event time"

    def _summary_lines(self) -> list[str]:
        lines = []
        if self.pretest is not None:
            p = self.pretest
            lines.append(
                f"Pre-period joint test ({p.get('test', 'Wald')}): statistic "
                f"{_fmt_num(p.get('statistic'))}, df {_fmt_num(p.get('df_num'), 0)}, "
                f"{_p_clause(p.get('p_value'))}"
            )
        if self.sup_t_crit is not None:
            lines.append(f"Sup-t critical value: {_fmt_num(self.sup_t_crit)}")
        return lines


# ---------------------------------------------------------------------------- bounds


def imbens_manski_interval(
    lower: float, upper: float, se_lower: float, se_upper: float, level: float = 0.95
) -> tuple[float, float, float]:
    r"""Imbens–Manski (2004) confidence interval for a partially identified parameter.

    .. math:: [\hat\theta_L - C\,\widehat{se}_L,\ \hat\theta_U + C\,\widehat{se}_U],
              \quad \Phi\!\left(C + \frac{\hat\theta_U - \hat\theta_L}
              {\max(\widehat{se}_L, \widehat{se}_U)}\right) - \Phi(-C) = level

    covers the true parameter (not the identified set) with probability ``level``.
    ``C`` lies between the one-sided quantile :math:`z_{level}` (wide bounds) and
    the two-sided :math:`z_{(1+level)/2}` (point identification).

    Returns ``(conf_low, conf_high, C)``.
    """
    lo, hi, sl, su = float(lower), float(upper), float(se_lower), float(se_upper)
    critical_value(level)
    if not all(np.isfinite([lo, hi, sl, su])) or sl < 0 or su < 0:
        return (math.nan, math.nan, math.nan)
    width = max(hi - lo, 0.0)
    smax = max(sl, su)
    z2 = float(stats.norm.ppf(0.5 + level / 2))
    if smax == 0.0 or width == 0.0:
        c = z2
    else:
        def gap(c: float) -> float:
            return float(stats.norm.cdf(c + width / smax) - stats.norm.cdf(-c) - level)

        z1 = float(stats.norm.ppf(level))
        # gap is increasing in c; gap(z1) <= 0 <= gap(z2), so the root is bracketed.
        c = z1 if gap(z1) >= 0 else float(optimize.brentq(gap, z1, z2, xtol=1e-14, rtol=1e-14))
    return (lo - c * sl, hi + c * su, c)


@result_dataclass
class BoundsResult(ResultBase):
    r"""Lee (2009) trimming bounds with the Imbens–Manski interval.

    The outcome :math:`Y` is observed only when :math:`S = 1` (e.g. earnings of those
    at work). Under random assignment and monotone selection
    (:math:`S_i(1) \ge S_i(0)` for all :math:`i`, or the reverse), the effect on the
    *always-selected* (those with :math:`S_i(0) = S_i(1) = 1`),

    .. math:: \Delta = E[Y_i(1) - Y_i(0) \mid S_i(0) = S_i(1) = 1],

    lies in :math:`[\Delta_L, \Delta_U]`. With :math:`p = (s_1 - s_0)/s_1` the
    trimming share of the arm with the larger selection rate :math:`s_1` (observed
    shares :math:`s_z = P(S = 1 \mid Z = z)`), :math:`\Delta_L` compares the lower
    :math:`1-p` part of that arm's observed outcomes with the other arm, and
    :math:`\Delta_U` the upper part (signs follow the trimmed arm).

    Three tidy rows: ``lee_lower`` and ``lee_upper`` carry each bound with its own
    standard error and its own normal confidence interval (no statistic or p-value: a
    bound is not an effect, and testing it against 0 would read as a test of the
    effect); ``lee_effect_imbens_manski`` carries, in ``conf_low``/``conf_high``, the
    Imbens–Manski interval for :math:`\Delta` (:func:`imbens_manski_interval`), with no
    point estimate (the effect is set-identified).

    Parameters
    ----------
    outcome, selection, horizon
        Labels; ``selection`` names the condition under which the outcome is observed.
    lower, upper, se_lower, se_upper
        The bounds and their standard errors.
    trim_share
        :math:`p`, the share trimmed from ``trimmed_arm`` (``"treated"``/``"control"``).
    share_selected_treated, share_selected_control
        :math:`s_1`, :math:`s_0`.
    nobs, n_treated, n_control
        Persons used (selected or not), by arm.
    n_selected_treated, n_selected_control
        Persons with the outcome observed, by arm.
    control_mean
        Mean observed outcome of the selected control persons.
    naive_difference
        Difference in mean observed outcome between the selected of each arm — not a
        causal effect when selection responds to treatment; shown for contrast.
    se_method
        ``"analytic"`` (Lee 2009, Proposition 3) or ``"bootstrap"``.
    """

    outcome: str
    selection: str
    lower: float
    upper: float
    se_lower: float
    se_upper: float
    trim_share: float
    trimmed_arm: str
    share_selected_treated: float
    share_selected_control: float
    nobs: int
    n_treated: int
    n_control: int
    n_selected_treated: int
    n_selected_control: int
    control_mean: float = math.nan
    naive_difference: float = math.nan
    horizon: Any = None
    level: float = 0.95
    se_method: str = "analytic"
    term: str = "arm"

    def __post_init__(self) -> None:
        for name in ("lower", "upper", "se_lower", "se_upper", "trim_share",
                     "share_selected_treated", "share_selected_control", "control_mean",
                     "naive_difference"):
            object.__setattr__(self, name, _finite_or_nan(getattr(self, name)))
        for name in ("nobs", "n_treated", "n_control", "n_selected_treated", "n_selected_control"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.trimmed_arm not in ("treated", "control"):
            raise EstimationError(
                f"trimmed_arm must be 'treated' or 'control'; got {self.trimmed_arm!r}",
                fix="name the arm whose selected outcomes were trimmed.",
            )
        if self.lower > self.upper:
            raise EstimationError(
                f"lower bound {self.lower} exceeds upper bound {self.upper}",
                fix="pass lower <= upper.",
            )
        critical_value(self.level)
        super().__post_init__()

    def conf_int(self, level: float | None = None) -> tuple[float, float]:
        """Imbens–Manski interval for the effect on the always-selected."""
        lv = self.level if level is None else level
        lo, hi, _ = imbens_manski_interval(self.lower, self.upper, self.se_lower, self.se_upper, lv)
        return (lo, hi)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(lower, upper)``: estimated identified set."""
        return (self.lower, self.upper)

    def _tidy_rows(self) -> list[dict[str, Any]]:
        # Two rows for the bounds, each with its own standard error and its own
        # confidence interval (no test against 0: a bound is not an effect), then one
        # row for the effect on the always-selected: its Imbens-Manski interval.
        rows = []
        nan = math.nan
        for estimand, est, se in (("lee_lower", self.lower, self.se_lower),
                                  ("lee_upper", self.upper, self.se_upper)):
            _, _, lo_b, hi_b = wald_inference(est, se, None, self.level)
            rows.append(
                make_row(
                    outcome=self.outcome, term=self.term, estimand=estimand,
                    horizon=self.horizon, estimate=est, std_error=se, df=None,
                    nobs=self.nobs, n_treated=self.n_treated, n_control=self.n_control,
                    control_mean=self.control_mean, level=self.level,
                    statistic=nan, p_value=nan, conf_low=lo_b, conf_high=hi_b,
                )
            )
        lo, hi = self.conf_int()
        rows.append(
            make_row(
                outcome=self.outcome, term=self.term, estimand="lee_effect_imbens_manski",
                horizon=self.horizon, estimate=nan, std_error=nan, df=None,
                nobs=self.nobs, n_treated=self.n_treated, n_control=self.n_control,
                control_mean=self.control_mean, level=self.level,
                statistic=nan, p_value=nan, conf_low=lo, conf_high=hi,
            )
        )
        return rows

    def _summary_title(self) -> str:
        h = "" if _fmt_horizon(self.horizon) == "" else f" at {horizon_text(self.horizon, self.spec.get('frequency'))}"
        return f"Lee bounds for arm on {self.outcome} given {self.selection}{h}"

    def _summary_lines(self) -> list[str]:
        lo, hi = self.conf_int()
        return [
            f"Bounds: [{_fmt_num(self.lower)}, {_fmt_num(self.upper)}]; "
            f"Imbens-Manski {int(round(self.level * 100))}% CI: [{_fmt_num(lo)}, {_fmt_num(hi)}]",
            f"Selected: treated {_fmt_num(self.share_selected_treated)}, "
            f"control {_fmt_num(self.share_selected_control)}; trimmed "
            f"{_fmt_num(self.trim_share)} of the {self.trimmed_arm} arm",
            f"Naive difference among the selected (not causal): {_fmt_num(self.naive_difference)}",
            f"Standard errors: {self.se_method}",
        ] + ([f"Bounds within cells of {self.spec['by']!r}, averaged over the always-selected"]
             if self.spec.get("by") else [])


# --------------------------------------------------------------------------- balance


@result_dataclass
class BalanceTable(ResultBase):
    r"""Covariate balance between the arms at randomization.

    For covariate (or category share) :math:`X`: the means :math:`\bar X_1, \bar X_0`
    by arm, the normalised difference
    :math:`(\bar X_1 - \bar X_0) / \sqrt{(s_1^2 + s_0^2)/2}`, and the within-stratum
    difference :math:`\hat\beta` from :math:`X_i = \beta Z_i + \gamma_{s(i)} + e_i`
    (stratum fixed effects) with its robust standard error and p-value. The joint test
    regresses :math:`Z_i` on all covariates (and strata) and tests that every slope
    is zero; under randomization its null holds by design.

    Parameters
    ----------
    table
        One row per covariate or category level, columns :data:`BALANCE_COLUMNS`.
    joint
        Omnibus test: mapping with ``statistic``, ``df_num``, ``df_denom``,
        ``p_value``, ``test`` (``"F"``/``"chi2"``), ``nobs``.
    missingness
        Differential missingness of outcomes: ``outcome, horizon, share_missing_treated,
        share_missing_control, difference, std_error, p_value, n_treated, n_control``.
    """

    table: pd.DataFrame
    joint: Mapping[str, Any] | None = None
    missingness: pd.DataFrame | None = None
    level: float = 0.95

    def __post_init__(self) -> None:
        missing = [c for c in BALANCE_COLUMNS if c not in self.table.columns]
        if missing:
            raise EstimationError(
                "the balance table lacks required columns", column=missing,
                fix=f"build it with the columns {', '.join(BALANCE_COLUMNS)}.",
            )
        object.__setattr__(self, "table", self.table.reset_index(drop=True))
        super().__post_init__()

    @staticmethod
    def _label(covariate: Any, level: Any) -> str:
        if level is None or (isinstance(level, float) and math.isnan(level)) or level == "":
            return str(covariate)
        return f"{covariate}={level}"

    def _tidy_rows(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.table.itertuples(index=False):
            df = None if not np.isfinite(r.df) else float(r.df)
            rows.append(
                make_row(
                    outcome=self._label(r.covariate, r.level), term="arm", estimand="balance",
                    horizon=None, estimate=r.estimate, std_error=r.std_error, df=df,
                    nobs=int(r.n_treated + r.n_control), n_treated=int(r.n_treated),
                    n_control=int(r.n_control), control_mean=r.mean_control, level=self.level,
                    p_value=r.p_value,
                )
            )
        return rows

    def to_frame(self) -> pd.DataFrame:
        """The balance table (a copy), with a ``label`` column first."""
        t = self.table.copy()
        t.insert(0, "label", [self._label(c, lv) for c, lv in zip(t["covariate"], t["level"])])
        return t

    def plot(self, ax: Any = None, *, threshold: float = 0.1) -> Any:
        """Dot plot of the normalised differences (one row per covariate or level).

        Parameters
        ----------
        ax
            Axes to draw on; ``None`` (default) makes a new figure.
        threshold
            Dashed lines at ``±threshold`` (0.1 is a common rule of thumb for a
            noticeable imbalance).

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on (its ``.figure`` is the figure).
        """
        import matplotlib.pyplot as plt

        t = self.to_frame()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.25 * len(t) + 1.2))
        y = np.arange(len(t))[::-1]
        ax.plot(t["norm_diff"].to_numpy(dtype=float), y, "o", color="C0", ms=4)
        ax.axvline(0.0, color="0.4", lw=0.8)
        for v in (-threshold, threshold):
            ax.axvline(v, color="0.6", lw=0.8, ls="--")
        ax.set_yticks(y)
        ax.set_yticklabels(t["label"].tolist())
        ax.set_xlabel("normalised difference (IPS - control)")
        ax.set_ylabel("baseline covariate")
        return ax

    def _summary_title(self) -> str:
        return "Balance of baseline covariates by arm"

    def summary(self) -> str:
        """Text: means by arm, normalised differences, p-values, joint test, missingness,
        then warnings and the rows set aside, like every result's summary.
        """
        t = self.to_frame()[["label", "mean_treated", "mean_control", "norm_diff", "p_value",
                             "n_treated", "n_control"]]
        lines = [self._summary_title(), "=" * len(self._summary_title()), _text_table(t)]
        lines.extend([""] + self._summary_lines())
        lines.extend(self._notice_lines())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """HTML for notebooks: the means by arm and normalised differences that :meth:`summary` shows."""
        import html as _html

        t = self.to_frame()[["label", "mean_treated", "mean_control", "norm_diff", "p_value",
                             "n_treated", "n_control"]].copy()
        t["p_value"] = [_fmt_p(v) for v in t["p_value"]]
        t = t.rename(columns={"label": "covariate", "mean_treated": "mean IPS",
                              "mean_control": "mean control", "norm_diff": "normalised difference",
                              "p_value": "p (within strata)", "n_treated": "n IPS",
                              "n_control": "n control"})
        parts = [f"<h4>{_html.escape(self._summary_title())}</h4>",
                 t.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="")]
        extra = self._summary_lines()
        if extra:
            parts.append("<pre>" + _html.escape("\n".join(extra)) + "</pre>")
        if self.warnings:
            items = "".join(f"<li>{_html.escape(w)}</li>" for w in self.warnings)
            parts.append(f"<p><b>Warnings</b></p><ul>{items}</ul>")
        return "\n".join(parts)

    def _summary_lines(self) -> list[str]:
        lines = []
        if self.joint is not None:
            j = self.joint
            lines.append(
                f"Joint test ({j.get('test')}): statistic {_fmt_num(j.get('statistic'))}, "
                f"df {_fmt_num(j.get('df_num'), 0)}, {_p_clause(j.get('p_value'))}"
            )
        if self.missingness is not None and len(self.missingness):
            lines.append("Missing outcomes by arm:")
            lines.append(_text_table(self.missingness))
        return lines


@result_dataclass
class PretestResult(ResultBase):
    r"""Randomization p-value of the pre-period placebo test of an ``itt_by_period`` result.

    Before randomization the assignment cannot have had an effect, so the sharp null
    holds for the pre-period outcomes by design. The statistic is the Wald form
    :math:`W = \hat\tau_{pre}'\,\hat V_{pre}^{+}\,\hat\tau_{pre}` of the pre-period
    ITTs (event times ``ks`` < 0) with their observed covariance; its randomization
    p-value is :math:`(1 + \#\{b: W_b \ge W_{obs}\})/(1 + B)` (exact proportion under
    enumeration). One tidy row: ``estimate`` and ``statistic`` are :math:`W` (no unit:
    a chi-square-type statistic), ``p_value`` and ``ri_p_value`` the randomization
    p-value, ``df`` the number of pre periods.
    """

    outcome: str
    ks: tuple[int, ...]
    statistic: float
    ri_p_value: float
    ri_se: float | None
    n_draws: int
    exact: bool
    nobs: int = 0
    n_treated: int = 0
    n_control: int = 0

    def __getitem__(self, key: str) -> Any:
        # The fields as a read-only mapping, as the dict this result replaces was read.
        if key not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def _tidy_rows(self) -> list[dict[str, Any]]:
        row = make_row(
            outcome=self.outcome, estimate=self.statistic, std_error=math.nan,
            nobs=self.nobs, n_treated=self.n_treated, n_control=self.n_control,
            term="pre_period_placebo",
            estimand=f"Wald statistic W of the ITTs at k = {', '.join(map(str, self.ks))} "
                     "(before randomization: zero by design); randomization p-value",
            df=float(len(self.ks)), statistic=self.statistic, p_value=self.ri_p_value,
            conf_low=math.nan, conf_high=math.nan,
        )
        return [row]

    def _summary_title(self) -> str:
        return f"Pre-period placebo test (randomization) of {self.outcome}"

    def _summary_lines(self) -> list[str]:
        how = "exact enumeration" if self.exact else f"{self.n_draws} Monte Carlo draws"
        return [f"W = {self.statistic:.4g} over k = {list(self.ks)}; RI p = {self.ri_p_value:.4g} ({how})."]
