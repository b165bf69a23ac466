r"""Household spillovers: the effect of the index person's assignment on the other members.

Only the index persons were randomized; the other members of their households "follow"
the assignment :math:`Z_{h}` of their index person. With :math:`Y_{j}(z)` the potential
outcome of member :math:`j` of household :math:`h(j)` when the index person is assigned
:math:`z`, :func:`spillover` estimates

.. math:: \tau_{S} = E\left[Y_j(1) - Y_j(0)\right]

over the members in the baseline roster (members present at the index person's
randomization date; members who joined later are set aside by the Study, because their
presence may itself be an effect of IPS) whose role is selected by ``members``:

* ``level="member"``: one row per member, every member weighing the same,
  :math:`y_j = \alpha + \tau_S Z_{h(j)} + \ldots + e_j`, clustered by household (CR2 with
  Bell–McCaffrey/Satterthwaite degrees of freedom by default), because members of the
  same household share the assignment and much else;
* ``level="household"``: one row per index person with at least one selected member,
  :math:`\bar y_h = \alpha + \tau_H Z_h + \ldots + e_h` with :math:`\bar y_h` the mean
  over the household's selected members; every household weighs the same (HC2).

:func:`household_total` estimates the effect on a household total that *includes* the
index person, :math:`T_h = Y_{i(h)} + \sum_{j \in h} Y_j` (household earnings, household
DI or other benefits): :math:`\tau_T = E[T_h(1) - T_h(0)]`, one row per index person.

The regressions are those of :func:`ips_impact.itt`: ``adjustment="none"`` (difference
in means; with ``strata=True`` the blocked difference in means, arm × centred stratum
indicators), ``"ancova"`` (stratum fixed effects and additive covariates) or ``"lin"``
(arm × covariates and strata centred at their sample mean, Lin 2013). ``covariates`` are columns of
``study.persons`` (the index person's baseline characteristics); ``member_covariates``
are columns of the members' own panel taken at event time ``baseline`` (default
:math:`k=-1`, the period before randomization) — typically the member's own
pre-randomization outcome.

Randomization inference
-----------------------
:func:`randomization_problem` rebuilds, from a fitted result's ``spec``, the
:class:`ips_impact.inference.randomization.LinearProblem` (outcome vector, row → index
person map, nuisance design, arm multipliers) with which the randomization engine
recomputes the estimate for every re-drawn assignment of the index persons by matrix
products; household members follow their index person.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError
from ips_impact.estimators._data import (
    check_option,
    covariate_matrix,
    independent_columns,
    refuse_collinear,
)
from ips_impact.estimators._options import WINDOW_RULES, resolve_adjustment
from ips_impact.inference.covariance import COV_TYPES, OLSDesign, check_cov_type
from ips_impact.inference.ri_engine import LinearProblem
from ips_impact.inference.ri_protocol import register_randomization
from ips_impact.results.base import horizon_label
from ips_impact.results.effect import EffectResult

__all__ = [
    "spillover",
    "household_total",
    "randomization_problem",
    "MEMBER_SETS",
    "ModelMatrices",
]

#: Named sets of household roles (the baseline roster's roles).
MEMBER_SETS: dict[str, tuple[str, ...]] = {
    "partner": ("partner",),
    "adults": ("partner", "parent", "other"),
    "children": ("child",),
    "all": ("partner", "child", "parent", "other"),
}
_ROLES = ("partner", "child", "parent", "other")
_ADJUSTMENTS = ("none", "ancova", "lin")
_AGGREGATES = ("mean", "sum")
_LEVELS = ("member", "household")
_MISSING_MEMBERS = ("drop", "zero")


# ----------------------------------------------------------------------- options


def check_names(argument: str, value: Any) -> tuple[str, ...]:
    """A tuple of column names from a string or an iterable of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        names = None
    if names is None or not all(isinstance(v, str) for v in names):
        raise EstimationError(
            f"{argument} must be a column name or a sequence of column names; you passed {value!r}",
            fix=f"e.g. {argument}=('age', 'sex')",
        )
    return names


def check_conf_level(argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise EstimationError(
            f"{argument} must be a number strictly between 0 and 1; you passed {value!r}",
            fix=f"use e.g. {argument}=0.95",
        )
    return float(value)


def check_horizon_window(
    horizon: Any, window: Any
) -> tuple[int | None, tuple[int, int] | None]:
    """Exactly one of ``horizon`` (int k) and ``window`` ((a, b) with a ≤ b)."""
    if (horizon is None) == (window is None):
        raise EstimationError(
            "give exactly one of horizon= (one event time k) or window=(a, b)",
            fix="e.g. horizon=6 for the outcome 6 periods after randomization, or window=(4, 8)",
        )
    if horizon is not None:
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
            raise EstimationError(
                f"horizon must be a whole number of periods; you passed {horizon!r}",
                fix="e.g. horizon=6",
            )
        return int(horizon), None
    try:
        a, b = window
        ok = not isinstance(a, bool) and not isinstance(b, bool)
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        ok = False
    if not ok or a > b:
        raise EstimationError(
            f"window must be a pair (a, b) of whole numbers with a <= b; you passed {window!r}",
            fix="e.g. window=(4, 8) for event times 4 to 8",
        )
    return None, (a, b)


def resolve_roles(members: Any) -> tuple[str, ...]:
    """Roles selected by ``members`` (a name of :data:`MEMBER_SETS` or a list of roles)."""
    if isinstance(members, str):
        if members in MEMBER_SETS:
            return MEMBER_SETS[members]
        if members in _ROLES:
            return (members,)
    else:
        try:
            roles = tuple(members)
        except TypeError:
            roles = ()
        if roles and all(isinstance(r, str) and r in _ROLES for r in roles):
            return tuple(r for r in _ROLES if r in roles)
    raise EstimationError(
        f"members must be one of {', '.join(repr(m) for m in MEMBER_SETS)} or a list of roles "
        f"among {', '.join(repr(r) for r in _ROLES)}; you passed {members!r}",
        fix="e.g. members='partner' or members=['partner', 'parent']",
    )


# --------------------------------------------------------------------- the data


def _values_by_key(
    frame: pd.DataFrame,
    keys: Sequence[str],
    outcome: str,
    horizon: int | None,
    window: tuple[int, int] | None,
    aggregate: str,
    window_rule: str = "complete",
) -> pd.DataFrame:
    """Outcome per key at ``k == horizon`` or aggregated over ``a <= k <= b``.

    The window rule of every estimator (:mod:`ips_impact.estimators._options`):
    ``"complete"`` keeps the keys observed at every k of the window, ``"available"``
    takes the mean or sum over the observed periods; a key left without a value is
    absent from the result.
    """
    k = frame["k"].to_numpy()
    if horizon is not None:
        sel = k == horizon
    else:
        sel = (k >= window[0]) & (k <= window[1])
    part = frame.loc[sel, list(keys) + [outcome]]
    part = part[part[outcome].notna()]
    if horizon is not None:
        out = part.drop_duplicates(list(keys))
    else:
        g = part.groupby(list(keys), sort=True, observed=True)[outcome]
        out = (g.mean() if aggregate == "mean" else g.sum()).reset_index()
        if window_rule == "complete":
            n_obs = g.size().to_numpy()
            out = out[n_obs == window[1] - window[0] + 1]
    return out.rename(columns={outcome: "_y"}).reset_index(drop=True)


def _require_member_column(study: Any, column: str, argument: str) -> None:
    members = study.members
    if column not in members.columns or column in ("person_id", "index_person_id", "household_id",
                                                     "role", "period", "k"):
        numeric = [c for c in members.columns if c not in ("person_id", "index_person_id",
                   "household_id", "role", "period", "k")
                   and pd.api.types.is_numeric_dtype(members[c])]
        raise EstimationError(
            f"{argument} {column!r} is not a column of the household members' panel",
            table="members", column=column, examples=numeric,
            fix="choose one of the numeric columns of study.members listed.",
        )
    if not pd.api.types.is_numeric_dtype(members[column]):
        raise EstimationError(
            f"{argument} {column!r} is not numeric in the household members' panel",
            table="members", column=column, fix="choose a numeric column.",
        )


def _require_members(study: Any) -> None:
    if getattr(study, "households", None) is None:
        raise EstimationError(
            "the study has no household roster, so there are no household members",
            table="households",
            fix="build the Study with households=<roster> (household_id, person_id, role, "
            "valid_from, valid_to).",
        )


def _person_covariates(
    study: Any, covariates: Sequence[str]
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Index persons' covariates (persons × columns), as :func:`ips_impact.itt` builds them.

    Numeric and boolean columns enter as they are; other columns as indicators of each
    level but the first. Missing values are refused (as in ``itt``), so the returned
    mask of persons with a missing value is always empty; it is kept for the callers.
    """
    for c in covariates:
        if c in ("household_id", "randomization_date", "randomization_period"):
            raise EstimationError(f"{c!r} cannot be a covariate", table="persons", column=c,
                                  fix="remove it from covariates")
    mat, names = covariate_matrix(study.persons, covariates)
    return mat, names, np.zeros(len(study.persons), dtype=bool)


def stratum_dummies(study: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Indicators of every stratum but the first (persons × (S − 1))."""
    design = study.design
    codes = np.asarray(design.stratum)
    labels = design.stratum_labels
    if len(labels) < 2:
        return np.zeros((len(codes), 0)), ()
    mat = (codes[:, None] == np.arange(1, len(labels))[None, :]).astype(np.float64)
    return mat, tuple(f"stratum[{lab}]" for lab in labels[1:])


@dataclass(frozen=True, eq=False)
class ModelMatrices:
    r"""A regression whose effect columns are the arm of each row's randomized person.

    The model is :math:`y_r = \sum_j \beta_j\, z_{p(r)} v_{rj} + w_r'\gamma + e_r`
    (the form of :class:`ips_impact.inference.randomization.LinearProblem`).

    Attributes
    ----------
    y
        Outcome (N,).
    row_person
        Position in ``study.persons`` of the randomized person each row follows (N,).
    interact, interact_names
        :math:`v_{rj}` (N × J) and the names of the coefficients of :math:`z v_j`.
    nuisance, nuisance_names
        :math:`w_r` (N × r): intercept or group indicators, strata, covariates.
    targets
        Positions (in ``interact``) of the coefficients that are reported.
    clusters
        Cluster codes (N,) or None.
    ledger
        Rows set aside while building the sample (reason, n_rows, n_treated, n_control).
    """

    y: np.ndarray
    row_person: np.ndarray
    interact: np.ndarray
    interact_names: tuple[str, ...]
    nuisance: np.ndarray
    nuisance_names: tuple[str, ...]
    targets: tuple[int, ...]
    clusters: np.ndarray | None
    ledger: tuple[dict[str, Any], ...] = ()
    dropped: tuple[str, ...] = ()

    def arm_rows(self, arm: np.ndarray) -> np.ndarray:
        return np.asarray(arm, dtype=np.float64)[self.row_person]

    def regressors(self, arm: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """The regressor matrix for assignment ``arm`` (persons) and its column names."""
        z = self.arm_rows(arm)
        x = np.column_stack([z[:, None] * self.interact, self.nuisance])
        return x, self.interact_names + self.nuisance_names

    def problem(self) -> Any:
        """The :class:`~ips_impact.inference.randomization.LinearProblem` of this model."""
        return LinearProblem(
            y=self.y, row_person=self.row_person, nuisance=self.nuisance,
            interact=self.interact, coef=self.targets,
        )


def assemble(
    *,
    y: np.ndarray,
    row_person: np.ndarray,
    arm: np.ndarray,
    targets_v: np.ndarray,
    targets_names: Sequence[str],
    base: np.ndarray,
    base_names: Sequence[str],
    extra: np.ndarray,
    extra_names: Sequence[str],
    lin: bool,
    lin_groups: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    ledger: Sequence[dict[str, Any]] = (),
    covariate_names: Sequence[str] = (),
) -> ModelMatrices:
    """Build :class:`ModelMatrices`: drop redundant nuisance columns, add Lin terms.

    ``base`` (intercept or group indicators) is always kept; ``extra`` (strata and
    covariates) columns that are linear combinations of earlier ones are dropped and
    named in ``dropped``. With ``lin``, every kept extra column, centred at its mean,
    is interacted with the arm; with ``lin_groups`` (integer group codes) the extra
    columns are first split by group (group-specific slopes) and centred within their
    group, so that each group's effect is the Lin estimate on that group alone.
    """
    if lin and lin_groups is not None and extra.shape[1]:
        # Lin within subgroups: every subgroup gets its own covariate slopes, so that each
        # subgroup effect is the Lin estimate on that subgroup alone
        glabels = np.unique(lin_groups)
        extra = np.hstack([extra * (lin_groups == g)[:, None] for g in glabels])
        extra_names = [f"{g}:{n}" for g in glabels for n in extra_names]
    nuis = np.column_stack([base, extra]) if extra.shape[1] else base
    names = tuple(base_names) + tuple(extra_names)
    keep = independent_columns(nuis, base.shape[1])
    dropped = tuple(n for j, n in enumerate(names) if j not in set(keep.tolist()))
    # strata nested in a subgroup are structural and dropped; a redundant covariate is
    # refused, by the one collinearity rule of every estimator (_data.collinear_covariates)
    refuse_collinear([n for n in dropped if n in set(covariate_names)],
                     "the intercept (or subgroup indicators) and the strata")
    nuis = nuis[:, keep]
    names = tuple(names[j] for j in keep)
    v = targets_v
    v_names = tuple(targets_names)
    if lin:
        ex = nuis[:, base.shape[1]:]
        ex_names = names[base.shape[1]:]
        if ex.shape[1]:
            if lin_groups is None:
                centred = ex - ex.mean(axis=0)
                lin_cols, lin_names = centred, [f"arm:{n}" for n in ex_names]
            else:
                # the group-specific columns centred within their group (zero elsewhere)
                member = np.zeros(ex.shape[1], dtype=np.int64)
                for j, n in enumerate(ex_names):
                    member[j] = int(str(n).split(":", 1)[0])
                in_g = lin_groups[:, None] == member[None, :]
                sums = np.where(in_g, ex, 0.0).sum(axis=0)
                counts = np.maximum(in_g.sum(axis=0), 1)
                lin_cols = np.where(in_g, ex - sums / counts, 0.0)
                lin_names = [f"arm:{n}" for n in ex_names]
            # Interactions that vanish or repeat (a stratum nested in a group) are dropped
            # given the observed assignment; the targets come first and are kept.
            z = np.asarray(arm, dtype=np.float64)[row_person]
            full = np.column_stack([z[:, None] * v, nuis, z[:, None] * lin_cols])
            keep2 = independent_columns(full, v.shape[1] + nuis.shape[1])
            lin_keep = keep2[keep2 >= v.shape[1] + nuis.shape[1]] - (v.shape[1] + nuis.shape[1])
            v = np.column_stack([v, lin_cols[:, lin_keep]])
            v_names = v_names + tuple(lin_names[j] for j in lin_keep)
    return ModelMatrices(
        y=np.asarray(y, dtype=np.float64), row_person=np.asarray(row_person, dtype=np.int64),
        interact=v, interact_names=v_names, nuisance=nuis, nuisance_names=names,
        targets=tuple(range(targets_v.shape[1])), clusters=clusters, ledger=tuple(ledger),
        dropped=dropped,
    )


def fit_model(model: ModelMatrices, arm: np.ndarray, cov_type: str) -> tuple[Any, tuple[str, ...]]:
    """Fit the model with the package's OLS engine; returns the fit and its warnings.

    Warnings of the engine (too few clusters…) are re-issued and also returned so that
    the result can carry them.
    """
    _, fit, msgs = fit_model_design(model, arm, cov_type)
    return fit, msgs


def fit_model_design(
    model: ModelMatrices, arm: np.ndarray, cov_type: str
) -> tuple[OLSDesign, Any, tuple[str, ...]]:
    """As :func:`fit_model`, but also return the factorised
    :class:`~ips_impact.inference.covariance.OLSDesign` (for tests that need the CR2
    adjustment matrices, such as the HTZ joint test of :func:`heterogeneity`).
    """
    x, names = model.regressors(arm)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = OLSDesign(x, names, cov_type=cov_type, clusters=model.clusters)
        fit = design.fit(model.y, df_for=list(model.targets))
    msgs = []
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        msgs.append(str(w.message))
    return design, fit, tuple(msgs)


def _ledger_row(reason: str, mask: np.ndarray, arm_rows: np.ndarray) -> dict[str, Any]:
    return {
        "reason": reason,
        "n_rows": int(mask.sum()),
        "n_treated": int((mask & (arm_rows == 1)).sum()),
        "n_control": int((mask & (arm_rows == 0)).sum()),
    }


# ---------------------------------------------------------------- spillover


def _member_model(study: Any, spec: dict[str, Any]) -> tuple[ModelMatrices, dict[str, Any]]:
    """Rows, outcome and regressors of :func:`spillover` (shared with randomization_problem)."""
    _require_members(study)
    outcome = spec["outcome"]
    roles = tuple(spec["members"])
    horizon, window = spec["horizon"], spec["window"]
    persons = study.persons
    arm = np.asarray(study.design.arm, dtype=np.int64)
    members = study.members
    _require_member_column(study, outcome, "outcome")
    pid = pd.Index(persons["person_id"])
    sel = members[members["role"].isin(roles)]
    n_roster = sel[["person_id", "index_person_id"]].drop_duplicates()
    if n_roster.empty:
        raise EstimationError(
            f"no household member has a role among {', '.join(roles)}",
            table="members", column="role",
            examples=sorted(members["role"].dropna().unique().tolist()),
            fix="choose members= among the roles present (or 'all').",
        )
    vals = _values_by_key(sel, ("index_person_id", "person_id", "household_id"), outcome, horizon,
                          window, spec["aggregate"], spec.get("window_rule", "complete"))
    roster = n_roster.merge(
        sel[["person_id", "index_person_id", "household_id"]].drop_duplicates(
            ["person_id", "index_person_id"]),
        on=["person_id", "index_person_id"])
    roster_row = pid.get_indexer(roster["index_person_id"])
    ledger: list[dict[str, Any]] = []
    if len(vals) < len(roster):
        have = pd.MultiIndex.from_frame(vals[["index_person_id", "person_id"]])
        all_ = pd.MultiIndex.from_frame(roster[["index_person_id", "person_id"]])
        miss = ~all_.isin(have)
        ledger.append(_ledger_row(
            f"members with no observed '{outcome}' at "
            + (f"k = {horizon}" if horizon is not None else f"k in [{window[0]}, {window[1]}]"),
            miss, arm[roster_row]))
    if vals.empty:
        raise EstimationError(
            f"no selected household member has an observed '{outcome}' at "
            + (f"k = {horizon}" if horizon is not None else f"k in {window}"),
            table="members", column=outcome,
            fix="choose a horizon inside the members' follow-up "
            f"(k from {int(members['k'].min())} to {int(members['k'].max())}).",
        )
    row_person = pid.get_indexer(vals["index_person_id"])
    y = vals["_y"].to_numpy(dtype=np.float64)
    hh_codes = pd.factorize(vals["household_id"], sort=True)[0]
    keep = np.ones(len(vals), dtype=bool)

    # member covariates at the baseline event time
    mcov_names = tuple(spec["member_covariates"])
    mcov = np.zeros((len(vals), 0))
    if mcov_names:
        base_k = spec["baseline"]
        cols = []
        for c in mcov_names:
            _require_member_column(study, c, "member covariate")
            b = _values_by_key(sel, ("index_person_id", "person_id"), c, base_k, None, "mean")
            key = pd.MultiIndex.from_frame(vals[["index_person_id", "person_id"]])
            bkey = pd.MultiIndex.from_frame(b[["index_person_id", "person_id"]])
            pos = bkey.get_indexer(key)
            col = np.where(pos >= 0, b["_y"].to_numpy()[np.maximum(pos, 0)], np.nan)
            cols.append(col)
        mcov = np.column_stack(cols)
        miss = ~np.isfinite(mcov).all(axis=1)
        if miss.any():
            ledger.append(_ledger_row(
                f"members with a missing baseline (k = {base_k}) value of "
                + ", ".join(repr(c) for c in mcov_names), miss & keep, arm[row_person]))
            keep &= ~miss

    adjustment = spec["adjustment"]
    pcov, pcov_names, pmiss = _person_covariates(study, spec["covariates"])
    miss = pmiss[row_person]
    if miss.any():
        ledger.append(_ledger_row("members whose index person has a missing covariate",
                                  miss & keep, arm[row_person]))
        keep &= ~miss
    extra_parts, extra_names = [], []
    if spec["strata"]:
        sd, sd_names = stratum_dummies(study)
        extra_parts.append(sd[row_person])
        extra_names += sd_names
    if adjustment != "none":
        extra_parts.append(pcov[row_person])
        extra_names += pcov_names
        extra_parts.append(mcov)
        extra_names += [f"member_{c}" for c in mcov_names]
    extra = np.hstack(extra_parts) if extra_parts else np.zeros((len(vals), 0))

    if spec["level"] == "member":
        y_, rp_, extra_ = y[keep], row_person[keep], extra[keep]
        clusters = hh_codes[keep]
    else:
        # household means of the selected members, one row per index person
        frame = pd.DataFrame({"rp": row_person[keep], "y": y[keep]})
        g = frame.groupby("rp", sort=True)["y"]
        rp_ = g.mean().index.to_numpy()
        y_ = g.mean().to_numpy()
        first = pd.Series(np.flatnonzero(keep)).groupby(row_person[keep]).first().to_numpy()
        # index-person covariates are the same for every member; member covariates are averaged
        extra_ = extra[first]
        if mcov_names and adjustment != "none":
            k0 = extra.shape[1] - mcov.shape[1]
            mframe = pd.DataFrame(mcov[keep], columns=range(mcov.shape[1]))
            extra_[:, k0:] = mframe.groupby(row_person[keep], sort=True).mean().to_numpy()
        hh_index = np.asarray(study.design.household) if study.design.household is not None else None
        clusters = hh_index[rp_] if hh_index is not None else rp_
    cov_type = spec["cov_type"]
    if not COV_TYPES[cov_type].clustered:
        clusters = None
    model = assemble(
        y=y_, row_person=rp_, arm=arm,
        targets_v=np.ones((len(y_), 1)), targets_names=("arm",),
        base=np.ones((len(y_), 1)), base_names=("(Intercept)",),
        extra=extra_, extra_names=extra_names, lin=adjustment in ("lin", "none"),
        clusters=clusters, ledger=ledger,
        covariate_names=(*pcov_names, *(f"member_{c}" for c in mcov_names)),
    )
    info = {
        "n_members": int(keep.sum()),
        "n_households": int(len(np.unique(rp_))),
    }
    return model, info


def spillover(
    study: Any,
    outcome: str,
    *,
    members: Literal["partner", "adults", "children", "all"] | Sequence[str] = "partner",
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    aggregate: Literal["mean", "sum"] = "mean",
    level: Literal["member", "household"] = "member",
    cov_type: str | None = None,
    covariates: Sequence[str] = (),
    member_covariates: Sequence[str] = (),
    baseline: int = -1,
    adjustment: Literal["none", "ancova", "lin"] | None = None,
    strata: bool = True,
    conf_level: float = 0.95,
    window_rule: Literal["complete", "available"] = "complete",
) -> EffectResult:
    r"""Effect of the index person's assignment on the other members of the household.

    Estimand (``level="member"``), over the baseline-roster members with the selected
    roles:

    .. math:: \tau_S = \frac{1}{N_M}\sum_{j} E\left[Y_j(1) - Y_j(0)\right],

    :math:`Y_j(z)` being member j's outcome when the index person of j's household is
    assigned z; with ``level="household"`` the average of the household means of the
    selected members, :math:`\frac{1}{H}\sum_h E[\bar Y_h(1) - \bar Y_h(0)]` over the
    households with at least one such member.

    Parameters
    ----------
    study
        A :class:`ips_impact.Study` built with a household roster.
    outcome
        A numeric column of ``study.members`` (the members' panel).
    members
        ``"partner"``, ``"adults"`` (partner, parent, other), ``"children"``,
        ``"all"``, or a list of roles among partner, child, parent, other.
    horizon, window
        The event time :math:`k` (relative to the index person's randomization) or a
        window ``(a, b)`` over which each member's outcome is aggregated.
    aggregate
        ``"mean"`` or ``"sum"`` over the periods of the window.
    window_rule
        ``"complete"`` (default, as in every estimator: members observed at every
        period of the window) or ``"available"`` (the periods observed).
    level
        ``"member"`` (one row per member, clustered by household) or ``"household"``
        (one row per household: the mean over its selected members).
    cov_type
        A covariance type of :data:`ips_impact.inference.covariance.COV_TYPES`;
        default ``"CR2"`` clustered by household at member level, ``"HC2"`` at
        household level.
    covariates
        Baseline columns of ``study.persons`` (the index person).
    member_covariates
        Numeric columns of ``study.members`` taken at event time ``baseline`` (the
        member's own pre-randomization value).
    baseline
        Event time of the member covariates (default −1, the period before
        randomization).
    adjustment
        ``"none"`` (difference in means; blocked by stratum when ``strata``),
        ``"ancova"`` (stratum fixed effects and additive covariates), ``"lin"`` (arm ×
        centred covariates and strata).
    strata
        Use the index persons' randomization strata.
    conf_level
        Confidence level of the interval (named so because ``level`` chooses the
        member or household level).

    Returns
    -------
    EffectResult
        ``term == "arm"``, ``estimand == "spillover"``. ``nobs``, ``n_treated`` and
        ``n_control`` count member rows (households at household level);
        ``diagnostics`` holds the numbers of households and clusters.

    Raises
    ------
    EstimationError
        Unknown option (the message lists the allowed values), no roster, no member
        with the outcome at the horizon, collinear regressors, too few clusters.
    """
    # the one default of every estimator: the ATE (Lin) when probabilities differ by stratum
    adjustment, adjustment_reason = resolve_adjustment(adjustment, study.design, strata=strata)
    spec = _spillover_spec(
        outcome=outcome, members=members, horizon=horizon, window=window, aggregate=aggregate,
        level=level, cov_type=cov_type, covariates=covariates, member_covariates=member_covariates,
        baseline=baseline, adjustment=adjustment, strata=strata, conf_level=conf_level,
        window_rule=window_rule,
    )
    spec["adjustment_reason"] = adjustment_reason
    model, info = _member_model(study, spec)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    fit, msgs = fit_model(model, arm, spec["cov_type"])
    return _effect_result(model, fit, arm, spec, info, msgs, estimand="spillover")


def _member_window_rule(rule: Any) -> str:
    rule = check_option(rule, WINDOW_RULES, "window_rule")
    if rule == "absent_not_at_work":
        raise EstimationError(
            "window_rule='absent_not_at_work' is not available for household members: the "
            "members' follow-up range (which periods an absent LMD row means 'not at work') "
            "is not recorded",
            table="members", fix="use window_rule='complete' (default) or 'available'",
        )
    return rule


def _spillover_spec(**kw: Any) -> dict[str, Any]:
    if not isinstance(kw["outcome"], str):
        raise EstimationError(
            f"outcome must be a column name (str); you passed {kw['outcome']!r}",
            fix="e.g. outcome='employed'",
        )
    horizon, window = check_horizon_window(kw["horizon"], kw["window"])
    level = check_option(kw["level"], _LEVELS, "level")
    adjustment = check_option(kw["adjustment"], _ADJUSTMENTS, "adjustment")
    aggregate = check_option(kw["aggregate"], _AGGREGATES, "aggregate")
    covariates = check_names("covariates", kw["covariates"])
    mcov = check_names("member_covariates", kw["member_covariates"])
    if adjustment == "none" and (covariates or mcov):
        raise EstimationError(
            "adjustment='none' is a difference in means and takes no covariates",
            fix="use adjustment='ancova' (or 'lin') with covariates, or drop the covariates",
        )
    cov_type = kw["cov_type"]
    if cov_type is None:
        cov_type = "CR2" if level == "member" else "HC2"
    cov_type = check_cov_type(cov_type)
    if level == "member" and not COV_TYPES[cov_type].clustered:
        raise EstimationError(
            f"cov_type {cov_type!r} ignores that members of a household share the assignment",
            fix="use cov_type='CR2' (default) or 'CR1' at member level, or level='household'",
        )
    if not isinstance(kw["strata"], bool):
        raise EstimationError(f"strata must be True or False; you passed {kw['strata']!r}")
    b = kw["baseline"]
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
        raise EstimationError(f"baseline must be a whole number (event time); you passed {b!r}",
                              fix="e.g. baseline=-1")
    return {
        "estimator": kw.get("estimator", "spillover"),
        "outcome": kw["outcome"],
        "members": resolve_roles(kw["members"]),
        "horizon": horizon,
        "window": window,
        "aggregate": aggregate,
        "window_rule": _member_window_rule(kw.get("window_rule", "complete")),
        "level": level,
        "cov_type": cov_type,
        "covariates": covariates,
        "member_covariates": mcov,
        "baseline": int(b),
        "adjustment": adjustment,
        "strata": kw["strata"],
        "conf_level": check_conf_level("conf_level", kw["conf_level"]),
    }


def _effect_result(
    model: ModelMatrices,
    fit: Any,
    arm: np.ndarray,
    spec: dict[str, Any],
    info: dict[str, Any],
    msgs: tuple[str, ...],
    *,
    estimand: str,
) -> EffectResult:
    names = list(fit.names)
    params = pd.Series(np.asarray(fit.coef), index=names)
    vcov = pd.DataFrame(np.asarray(fit.vcov), index=names, columns=names)
    j = names.index("arm")
    df = float(fit.df[j])
    z = model.arm_rows(arm)
    diagnostics = dict(info)
    diagnostics["n_clusters"] = fit.n_clusters if fit.n_clusters is not None else len(model.y)
    diagnostics["cov_type"] = fit.cov_type
    if model.dropped:
        diagnostics["dropped_collinear"] = ", ".join(model.dropped)
    return EffectResult.from_fit(
        outcome=spec["outcome"],
        params=params,
        vcov=vcov,
        df=df,
        term="arm",
        nobs=int(len(model.y)),
        n_treated=int((z == 1).sum()),
        n_control=int((z == 0).sum()),
        level=spec["conf_level"],
        estimand=estimand,
        horizon=horizon_label(spec["horizon"], spec["window"]),
        control_mean=float(model.y[z == 0].mean()) if (z == 0).any() else math.nan,
        spec=spec,
        warnings=msgs,
        ledger=list(model.ledger) if model.ledger else None,
        diagnostics=diagnostics,
    )


# ------------------------------------------------------------ household total


def _total_model(study: Any, spec: dict[str, Any]) -> tuple[ModelMatrices, dict[str, Any]]:
    """Rows of :func:`household_total`: one per index person."""
    _require_members(study)
    outcome = spec["outcome"]
    horizon, window = spec["horizon"], spec["window"]
    persons = study.persons
    n = len(persons)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    study.require_outcome(outcome)
    _require_member_column(study, outcome, "outcome")
    if horizon is not None:
        own = study.outcome_matrix(outcome, [horizon])[:, 0]
    else:
        ks = np.arange(window[0], window[1] + 1)
        mat = study.outcome_matrix(outcome, ks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            own = np.nanmean(mat, axis=1) if spec["aggregate"] == "mean" else np.where(
                np.isnan(mat).all(axis=1), np.nan, np.nansum(mat, axis=1))
    ledger: list[dict[str, Any]] = []
    miss_own = np.isnan(own)
    if miss_own.any():
        ledger.append(_ledger_row(f"index persons with no observed '{outcome}'", miss_own, arm))
    pid = pd.Index(persons["person_id"])
    mem = study.members
    sel = mem[mem["role"].isin(spec["members"])]
    roster = sel[["index_person_id", "person_id"]].drop_duplicates()
    vals = _values_by_key(sel, ("index_person_id", "person_id"), outcome, horizon, window,
                          spec["aggregate"], spec.get("window_rule", "complete"))
    roster_rp = pid.get_indexer(roster["index_person_id"])
    n_roster = np.bincount(roster_rp, minlength=n)
    vals_rp = pid.get_indexer(vals["index_person_id"])
    n_obs = np.bincount(vals_rp, minlength=n)
    member_sum = np.bincount(vals_rp, weights=vals["_y"].to_numpy(dtype=float), minlength=n)
    incomplete = n_obs < n_roster
    keep = ~miss_own
    if spec["missing_members"] == "drop" and incomplete.any():
        ledger.append(_ledger_row(
            f"households where a selected member has no observed '{outcome}' (missing_members='drop')",
            incomplete & keep, arm))
        keep &= ~incomplete
    elif incomplete.any():
        ledger.append({**_ledger_row(
            f"households where a selected member has no observed '{outcome}', counted as 0 "
            "(missing_members='zero')", incomplete & keep, arm), "action": "assumed 0"})
    total = own + member_sum
    pcov, pcov_names, pmiss = _person_covariates(study, spec["covariates"])
    if (pmiss & keep).any():
        ledger.append(_ledger_row("index persons with a missing covariate", pmiss & keep, arm))
        keep &= ~pmiss
    rp = np.flatnonzero(keep)
    extra_parts, extra_names = [], []
    if spec["strata"]:
        sd, sd_names = stratum_dummies(study)
        extra_parts.append(sd[rp])
        extra_names += sd_names
    if spec["adjustment"] != "none":
        extra_parts.append(pcov[rp])
        extra_names += pcov_names
    extra = np.hstack(extra_parts) if extra_parts else np.zeros((len(rp), 0))
    clusters = None
    if COV_TYPES[spec["cov_type"]].clustered:
        hh = study.design.household
        clusters = np.asarray(hh)[rp] if hh is not None else rp
    model = assemble(
        y=total[rp], row_person=rp, arm=arm,
        targets_v=np.ones((len(rp), 1)), targets_names=("arm",),
        base=np.ones((len(rp), 1)), base_names=("(Intercept)",),
        extra=extra, extra_names=extra_names, lin=spec["adjustment"] in ("lin", "none"),
        clusters=clusters, ledger=ledger, covariate_names=pcov_names,
    )
    info = {
        "n_households": int(len(rp)),
        "mean_members_per_household": float(n_roster[rp].mean()) if len(rp) else math.nan,
    }
    return model, info


def household_total(
    study: Any,
    outcome: str,
    *,
    members: Literal["partner", "adults", "children", "all"] | Sequence[str] = "all",
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    aggregate: Literal["mean", "sum"] = "mean",
    missing_members: Literal["drop", "zero"] = "drop",
    cov_type: str = "HC2",
    covariates: Sequence[str] = (),
    adjustment: Literal["none", "ancova", "lin"] | None = None,
    strata: bool = True,
    conf_level: float = 0.95,
    window_rule: Literal["complete", "available"] = "complete",
) -> EffectResult:
    r"""Effect of IPS on a household total that includes the index person.

    .. math:: \tau_T = E\left[T_h(1) - T_h(0)\right], \qquad
              T_h = Y_{i(h)} + \sum_{j \in M_h} Y_j,

    with :math:`i(h)` the index person and :math:`M_h` the baseline-roster members of
    household h with the selected roles (household earnings, household DI benefit,
    household unemployment benefit…). One row per index person; persons without
    members contribute their own outcome (a one-person household).

    Parameters
    ----------
    study, outcome
        The outcome must be numeric in both the index persons' and the members' panels.
    members
        Roles counted in the total (default ``"all"``); as in :func:`spillover`.
    horizon, window, aggregate
        As in :func:`spillover`; the same rule applies to index person and members
        (``window_rule`` as in :func:`spillover`).
    missing_members
        A household with a selected member whose outcome is not observed is
        ``"drop"``-ped (default, with a ledger entry) or the member counts as 0
        (``"zero"``; LMD extracts often leave out quarters without any record).
    cov_type
        Default ``"HC2"``; a CR type clusters by household.
    covariates, adjustment, strata
        As in :func:`ips_impact.itt`.
    conf_level
        Confidence level of the interval.

    Returns
    -------
    EffectResult
        ``term == "arm"``, ``estimand == "household_total"``.
    """
    # the one default of every estimator: the ATE (Lin) when probabilities differ by stratum
    adjustment, adjustment_reason = resolve_adjustment(adjustment, study.design, strata=strata)
    spec = _spillover_spec(
        outcome=outcome, members=members, horizon=horizon, window=window, aggregate=aggregate,
        level="household", cov_type=cov_type, covariates=covariates, member_covariates=(),
        baseline=-1, adjustment=adjustment, strata=strata, conf_level=conf_level,
        estimator="household_total", window_rule=window_rule,
    )
    spec["adjustment_reason"] = adjustment_reason
    spec["missing_members"] = check_option(missing_members, _MISSING_MEMBERS, "missing_members")
    del spec["level"], spec["member_covariates"], spec["baseline"]
    model, info = _total_model(study, spec)
    arm = np.asarray(study.design.arm, dtype=np.int64)
    fit, msgs = fit_model(model, arm, spec["cov_type"])
    return _effect_result(model, fit, arm, spec, info, msgs, estimand="household_total")


# -------------------------------------------------------- randomization hook


def randomization_problem(study: Any, result: Any) -> Any:
    """The linear problem behind a :func:`spillover` or :func:`household_total` result.

    Returns a :class:`ips_impact.inference.randomization.LinearProblem` whose
    coefficient 0 is the effect under any re-drawn assignment of the index persons:
    ``y`` (member rows or households), ``row_person`` (the index person of each row,
    as a position in ``study.persons``), ``nuisance`` (intercept, strata, covariates)
    and ``interact`` (ones, plus the centred covariates under Lin).
    """
    spec = dict(result.spec)
    est = spec.get("estimator")
    if est == "spillover":
        model, _ = _member_model(study, spec)
    elif est == "household_total":
        model, _ = _total_model(study, spec)
    else:
        raise EstimationError(
            f"this result comes from {est!r}, not from spillover or household_total",
            fix="use the randomization_problem of the estimator that produced the result",
        )
    return model.problem()


register_randomization("spillover", randomization_problem)
register_randomization("household_total", randomization_problem)
