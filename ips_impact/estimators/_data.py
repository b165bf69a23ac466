"""Shared helpers: from a Study and an estimator's options to y, arm and design matrices.

Every regression estimator of the package (itt, itt_by_period, did, spillover,
heterogeneity, balance, late, bounds) turns the same ingredients into arrays the same
way, so the helpers live here:

* :func:`check_option` — a string option checked against its allowed values;
* :func:`person_mask` — ``subset=`` (boolean mask, boolean column, or a
  :meth:`pandas.DataFrame.query` string on ``persons``) → boolean array;
* :func:`cluster_labels` — ``cluster=`` (a column of ``persons``) → labels, refusing
  missing ones;
* :func:`covariate_matrix` — baseline covariates → numeric matrix (categorical
  columns become dummies, first level dropped), refusing missing values;
* :func:`dummies` — integer codes → indicator matrix (first level dropped, unused
  levels removed);
* :func:`regression_design` — the regressor matrix of an adjustment ``"none"``,
  ``"ancova"`` or ``"lin"`` (see :class:`RegressionDesign`).

The helpers work on plain arrays and DataFrames, so they can be tested (and compared
with R) without a Study.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError
from ips_impact.estimators._options import ADJUSTMENTS, AGGREGATES, check_option

__all__ = [
    "ADJUSTMENTS",
    "AGGREGATES",
    "check_option",
    "person_mask",
    "cluster_labels",
    "covariate_matrix",
    "dummies",
    "RegressionDesign",
    "regression_design",
    "arm_counts",
    "require_numeric_outcome",
    "independent_columns",
    "collinear_covariates",
    "refuse_collinear",
]

def arm_counts(arm: np.ndarray) -> tuple[int, int]:
    """(number treated, number control) of a 0/1 array."""
    a = np.asarray(arm)
    n1 = int((a == 1).sum())
    return n1, int(a.size - n1)


def person_mask(persons: pd.DataFrame, subset: Any) -> np.ndarray:
    """Boolean array (n_persons,) selecting the persons of ``subset``.

    Parameters
    ----------
    persons
        ``Study.persons``.
    subset
        ``None`` (everyone); a boolean array or Series aligned with ``persons``; the
        name of a boolean (or 0/1) column of ``persons``; or a query string such as
        ``"region == 'VL' and age < 40"`` evaluated by :meth:`pandas.DataFrame.query`.

    Raises
    ------
    EstimationError
        Wrong length, not boolean, unknown column, a query that fails, or an empty
        selection.
    """
    n = len(persons)
    if subset is None:
        return np.ones(n, dtype=bool)
    if isinstance(subset, str):
        if subset in persons.columns:
            col = persons[subset]
            if col.isna().any() or not set(pd.unique(col)).issubset({0, 1}):
                raise EstimationError(
                    f"subset column {subset!r} must be boolean (or 0/1) without missing values",
                    table="persons", column=subset,
                    fix="pass a boolean column, or a query string such as \"region == 'VL'\"",
                )
            mask = col.to_numpy().astype(bool)
        else:
            try:
                sel = persons.query(subset, engine="python")
            except Exception as exc:  # pandas raises many types; report them as ours
                raise EstimationError(
                    f"subset {subset!r} is neither a column of persons nor a valid query "
                    f"({type(exc).__name__}: {exc})",
                    table="persons",
                    fix="pass a boolean mask, a boolean column name, or a query over the "
                    f"columns {', '.join(map(str, persons.columns[:12]))} …",
                ) from None
            mask = persons.index.isin(sel.index)
    else:
        arr = subset.reindex(persons.index).to_numpy() if isinstance(subset, pd.Series) else np.asarray(subset)
        if arr.shape != (n,):
            raise EstimationError(
                f"subset has shape {arr.shape} but there are {n} persons",
                fix="pass one boolean per row of study.persons (in its order)",
            )
        if arr.dtype != bool:
            if pd.isna(arr).any() or not set(pd.unique(arr)).issubset({0, 1}):
                raise EstimationError("subset must be boolean (True = keep)", fix="pass a boolean mask")
            arr = arr.astype(bool)
        mask = arr
    if not mask.any():
        raise EstimationError("subset selects no person", fix="check the subset condition")
    return np.asarray(mask, dtype=bool)


def cluster_labels(persons: pd.DataFrame, cluster: str) -> np.ndarray:
    """Integer cluster codes (n_persons,) from the column ``cluster`` of ``persons``.

    Raises
    ------
    EstimationError
        Unknown column (the message lists the columns) or missing labels.
    """
    if not isinstance(cluster, str) or cluster not in persons.columns:
        raise EstimationError(
            f"cluster must be a column of persons; you passed {cluster!r}",
            table="persons",
            fix="use one of " + ", ".join(repr(c) for c in persons.columns if c not in ("arm",)),
        )
    col = persons[cluster]
    if col.isna().any():
        raise EstimationError(
            f"cluster column {cluster!r} has missing labels",
            table="persons", column=cluster, n_rows=int(col.isna().sum()),
            fix="fill the missing labels (e.g. a person's own id as a singleton cluster)",
        )
    codes, _ = pd.factorize(col, sort=True)
    return codes.astype(np.int64)


def dummies(codes: np.ndarray, labels: Sequence[Any], prefix: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Indicator columns for integer ``codes``, first used level dropped.

    Levels that do not occur in ``codes`` are removed (an empty stratum after
    ``subset=`` would otherwise be an all-zero column). Names are ``prefix[level]``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    used = np.unique(codes)
    if used.size <= 1:
        return np.zeros((codes.size, 0)), ()
    pos = np.searchsorted(used, codes)
    D = np.zeros((codes.size, used.size), dtype=np.float64)
    D[np.arange(codes.size), pos] = 1.0
    names = tuple(f"{prefix}[{labels[u]}]" for u in used[1:])
    return D[:, 1:], names


def covariate_matrix(
    persons: pd.DataFrame,
    covariates: Iterable[str],
    *,
    rows: np.ndarray | None = None,
    table: str = "persons",
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Numeric matrix of baseline covariates.

    Numeric and boolean columns enter as they are; text, categorical and other
    columns become dummies (one per level present, first level in sorted order
    dropped), named ``column[level]``.

    Parameters
    ----------
    persons
        ``Study.persons`` (or any frame with the covariate columns).
    covariates
        Column names.
    rows
        Row positions to keep (default all); levels absent from these rows get no
        dummy. The result has one row per entry of ``rows``.
    table
        Table name for messages.

    Raises
    ------
    EstimationError
        A covariate that is not a column (the message lists the available ones),
        ``"arm"`` or a person key among the covariates, or missing values (no row is
        dropped silently: impute, or add a missing-value indicator, first).
    """
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = tuple(covariates)
    n = len(persons) if rows is None else len(rows)
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for c in covariates:
        if c not in persons.columns:
            raise EstimationError(
                f"covariate {c!r} is not a column of {table}",
                table=table, column=c,
                fix="choose among " + ", ".join(repr(x) for x in persons.columns if x != "person_id"),
            )
        if c in ("arm", "person_id"):
            raise EstimationError(
                f"{c!r} cannot be a covariate", table=table, column=c,
                fix="remove it from covariates",
            )
        col = persons[c]
        numeric = pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)
        vals = col.to_numpy()
        if rows is not None:
            vals = vals[rows]
        miss = pd.isna(vals)
        if miss.any():
            raise EstimationError(
                f"covariate {c!r} has missing values",
                table=table, column=c, n_rows=int(miss.sum()),
                fix="impute it (e.g. the mean) and add a 0/1 missing-value indicator as a covariate",
            )
        if numeric:
            blocks.append(vals.astype(np.float64)[:, None])
            names.append(str(c))
        else:
            try:
                codes, uniq = pd.factorize(vals, sort=True)
            except TypeError:  # mixed types cannot be sorted: compare their text
                codes, uniq = pd.factorize(vals.astype(str), sort=True)
            D, nm = dummies(codes, [str(u) for u in uniq], str(c))
            blocks.append(D)
            names.extend(nm)
    if not blocks:
        return np.zeros((n, 0)), ()
    return np.hstack(blocks), tuple(names)


@dataclass(frozen=True)
class RegressionDesign:
    """Regressor matrix of an ITT regression and its parts.

    The columns are ``[1, arm, nuisance…, arm × interact…]``:

    * ``"none"`` without strata: ``[1, arm]`` (difference in means);
    * ``"none"`` with strata: ``[1, arm, S̃, arm × S̃]`` with S̃ the stratum dummies
      centred at their sample means — the blocked difference in means
      :math:`\\sum_b (n_b/n)\\,(\\bar y_{1b} - \\bar y_{0b})`;
    * ``"ancova"``: ``[1, arm, X, S]`` (additive covariates and stratum effects);
    * ``"lin"``: ``[1, arm, X̃, S̃, arm × X̃, arm × S̃]`` with centred covariates and
      stratum dummies (Lin 2013).

    Extra additive columns (period fixed effects of stacked rows) follow the nuisance
    columns.

    Attributes
    ----------
    X
        (N, K) regressors.
    names
        Column names; the effect is ``"arm"`` (column 1).
    nuisance
        (N, q) the columns that do not involve the arm: intercept, covariates (centred
        under "lin"), stratum dummies (centred under "none"/"lin" with strata), extra.
    interact
        (N, r) centred columns interacted with the arm (empty under "ancova").
    """

    X: np.ndarray
    names: tuple[str, ...]
    nuisance: np.ndarray
    nuisance_names: tuple[str, ...]
    interact: np.ndarray
    interact_names: tuple[str, ...]
    adjustment: str

    @property
    def arm_index(self) -> int:
        return 1


def regression_design(
    arm: np.ndarray,
    *,
    adjustment: str,
    covariates: np.ndarray | None = None,
    covariate_names: Sequence[str] = (),
    strata: np.ndarray | None = None,
    strata_names: Sequence[str] = (),
    extra: np.ndarray | None = None,
    extra_names: Sequence[str] = (),
) -> RegressionDesign:
    """Build the regressors of an ITT regression (see :class:`RegressionDesign`).

    Parameters
    ----------
    arm
        0/1 (N,).
    adjustment
        ``"none"``, ``"ancova"`` or ``"lin"``.
    covariates, covariate_names
        (N, p) covariates (ignored, and must be empty, under ``"none"``).
    strata, strata_names
        (N, B−1) stratum dummies (first stratum dropped), or None.
    extra, extra_names
        (N, m) additive columns never interacted (e.g. period fixed effects).
    """
    adjustment = check_option(adjustment, ADJUSTMENTS, "adjustment")
    arm = np.asarray(arm, dtype=np.float64)
    n = arm.size
    Z = np.zeros((n, 0)) if covariates is None else np.asarray(covariates, dtype=np.float64)
    S = np.zeros((n, 0)) if strata is None else np.asarray(strata, dtype=np.float64)
    E = np.zeros((n, 0)) if extra is None else np.asarray(extra, dtype=np.float64)
    if adjustment == "none" and Z.shape[1]:
        raise EstimationError(
            "adjustment='none' takes no covariates",
            fix="use adjustment='ancova' or 'lin' to adjust for covariates, or drop covariates=",
        )
    one = np.ones((n, 1))
    if adjustment == "ancova":
        nuis = np.hstack([one, Z, S, E])
        nuis_names = ("(Intercept)", *covariate_names, *strata_names, *extra_names)
        W = np.zeros((n, 0))
        W_names: tuple[str, ...] = ()
    else:
        # centring makes the arm coefficient the effect at the sample means (Lin 2013)
        W = np.hstack([Z, S])
        W = W - W.mean(axis=0) if W.shape[1] else W
        W_names = (*covariate_names, *strata_names)
        nuis = np.hstack([one, W, E])
        nuis_names = ("(Intercept)", *W_names, *extra_names)
    X = np.hstack([nuis[:, :1], arm[:, None], nuis[:, 1:], arm[:, None] * W])
    names = (nuis_names[0], "arm", *nuis_names[1:], *(f"arm:{w}" for w in W_names))
    return RegressionDesign(
        X=X,
        names=tuple(names),
        nuisance=nuis,
        nuisance_names=tuple(nuis_names),
        interact=W,
        interact_names=tuple(W_names),
        adjustment=adjustment,
    )


# A column whose part not explained by the columns before it is smaller than this
# (relative to its length) is redundant (R's lm tolerance).
_COLLINEAR_TOL = 1e-7


def independent_columns(mat: np.ndarray, n_protected: int, tol: float = _COLLINEAR_TOL) -> np.ndarray:
    """Indices of the columns of ``mat`` to keep so that they are linearly independent.

    Columns are taken in order (as R's ``lm`` does): a column is dropped when the part
    of it not explained by the columns kept before it is below ``tol`` of its length.
    The first ``n_protected`` columns are always kept (an error arises later if they
    are themselves collinear).
    """
    n, p = mat.shape
    keep: list[int] = []
    basis = np.zeros((n, 0))
    for j in range(p):
        a = mat[:, j]
        norm = float(np.sqrt(a @ a))
        if j >= n_protected and norm == 0.0:
            continue
        r = a - basis @ (basis.T @ a)
        r = r - basis @ (basis.T @ r)  # re-orthogonalise (classical Gram–Schmidt twice)
        rn = float(np.sqrt(r @ r))
        if j < n_protected or rn > tol * norm:
            keep.append(j)
            if rn > 0:
                basis = np.column_stack([basis, r / rn])
    return np.asarray(keep, dtype=np.int64)


def collinear_covariates(base: np.ndarray, X: np.ndarray, names: Sequence[str], *,
                         what: str = "the intercept, the arm and the strata") -> None:
    """Refuse covariates that are linear combinations of ``base`` and earlier covariates.

    The one collinearity rule of every estimator: a redundant covariate (``age`` and
    ``2 * age``, a dummy of every level, a covariate constant in the sample) is an
    error naming it — never a silently dropped column or a pseudo-inverse.
    """
    X = np.asarray(X, dtype=np.float64)
    if not X.shape[1]:
        return
    base = np.asarray(base, dtype=np.float64).reshape(X.shape[0], -1)
    keep = set(independent_columns(np.column_stack([base, X]), base.shape[1]).tolist())
    refuse_collinear([str(n) for j, n in enumerate(names) if base.shape[1] + j not in keep], what)


def refuse_collinear(bad: Sequence[str], what: str = "the intercept, the arm and the strata") -> None:
    """Raise the collinearity error of :func:`collinear_covariates` for ``bad`` (if any)."""
    bad = [str(b) for b in bad]
    if bad:
        raise EstimationError(
            f"collinear covariate(s) {', '.join(map(repr, bad))}: linear combinations of "
            f"{what} and the covariates before them (or constant in the sample), so their "
            "effects are not identified",
            table="persons", column=bad,
            fix="remove the redundant covariate(s) (for a categorical one, a dummy per level "
            "is made already)",
        )


def require_numeric_outcome(values: np.ndarray, outcome: str) -> None:
    """Refuse an outcome without variation among the observed values."""
    obs = values[np.isfinite(values)]
    if obs.size == 0:
        raise EstimationError(
            f"outcome {outcome!r} is missing for every selected person",
            table="panel", column=outcome,
            fix="check the horizon/window and the subset",
        )
    if np.ptp(obs) == 0:
        raise EstimationError(
            f"outcome {outcome!r} does not vary (every observed value is {obs[0]:g})",
            table="panel", column=outcome, n_rows=int(obs.size),
            fix="choose another outcome, horizon or window; there is no effect to estimate",
        )

