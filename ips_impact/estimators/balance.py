r"""Baseline balance: means by arm, normalised differences, stratified tests, omnibus test.

``balance(study)`` checks that randomization did what it should: the arms look alike
at baseline, and the outcomes are missing equally often in both arms.

For every covariate (or category share) :math:`X`:

* means :math:`\bar X_1, \bar X_0` and standard deviations :math:`s_1, s_0` by arm;
* the normalised difference :math:`(\bar X_1 - \bar X_0)/\sqrt{(s_1^2 + s_0^2)/2}`
  (Imbens & Rubin 2015, ch. 14) — scale-free, unlike a t statistic it does not grow
  with the sample;
* the within-stratum difference :math:`\hat\beta` of
  :math:`X_i = \alpha + \beta Z_i + \sum_s \gamma_s 1[s(i) = s] + e_i` with its HC2
  standard error and t(N − K) p-value.

The omnibus (joint) test regresses the arm :math:`Z_i` on every covariate and the
stratum dummies and tests that all covariate slopes are zero with an HC2 Wald test,
reported as F = W/q on (q, N − K) degrees of freedom (and as chi-square W on q df).
Missing covariate values are set to the covariate mean with a missing indicator in the
joint test (so nobody is dropped from it); categorical covariates enter as dummies
without their most frequent level.

Differential missingness: for each panel outcome, the share of persons (at a given
horizon) or of event times 0..K (over the follow-up) with the outcome missing, by arm,
and the within-stratum difference with its HC2 p-value.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators._data import dummies, regression_design
from ips_impact.estimators._options import records_frequency
from ips_impact.inference.covariance import OLSDesign, check_cov_type
from ips_impact.results.base import PERSON_KEY_COLUMNS
from ips_impact.results.effect import BALANCE_COLUMNS, BalanceTable

__all__ = ["balance"]

_HC_TYPES = ("HC0", "HC1", "HC2", "HC3")
# Persons columns that are never covariates (keys, design, derived follow-up fields).
_NOT_COVARIATES = frozenset(
    {"person_id", "household_id", "arm", "stratum", "randomization_date",
     "randomization_period", "linked", "k_min", "k_max", "ips_started"}
) | PERSON_KEY_COLUMNS


def _base_design(arm: np.ndarray, stratum: np.ndarray, n_strata: int, strata: bool) -> tuple[np.ndarray, list[str]]:
    """Intercept, arm and (when asked and there are several) stratum dummies.

    Built by the design-matrix builder of every regression estimator
    (:func:`~ips_impact.estimators._data.regression_design`, strata fixed effects).
    """
    S: np.ndarray | None = None
    snames: tuple[str, ...] = ()
    if strata and n_strata > 1:
        S, snames = dummies(stratum, [str(s) for s in range(n_strata)], "stratum")
    rd = regression_design(arm, adjustment="ancova", strata=S, strata_names=snames)
    return rd.X, list(rd.names)


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def _expand(persons: pd.DataFrame, covariates: Sequence[str]) -> list[tuple[str, Any, np.ndarray, bool]]:
    """(covariate, level, values with NaN for missing, categorical?) per table row."""
    out: list[tuple[str, Any, np.ndarray, bool]] = []
    for cov in covariates:
        s = persons[cov]
        if pd.api.types.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.PeriodDtype):
            raise EstimationError(
                f"covariate {cov!r} holds dates; balance compares numbers or categories",
                table="assignment", column=cov,
                fix="convert it first, e.g. to a year or to months since a reference date.",
            )
        if _is_categorical(s):
            miss = s.isna().to_numpy()
            levels = sorted({str(v) for v in s[~miss]})
            sv = s.astype(str).to_numpy()
            for lv in levels:
                x = (sv == lv).astype(float)
                x[miss] = np.nan
                out.append((cov, lv, x, True))
        else:
            out.append((cov, None, s.to_numpy(dtype=float, na_value=np.nan), False))
    return out


def _fit_column(design: OLSDesign, y: np.ndarray) -> tuple[float, float, float, float]:
    """(estimate, std_error, df, p_value) of the arm coefficient of y on the design."""
    fit = design.fit(y)
    j = 1
    est, se, df = float(fit.coef[j]), float(np.sqrt(fit.vcov[j, j])), float(fit.df[j])
    # A covariate with no residual variation (e.g. constant within strata) has se 0:
    # its p-value is undefined, not 0.
    scale = max(float(np.abs(y).max()), 1.0)
    if not np.isfinite(se) or se <= 1e-12 * scale:
        return est, 0.0, df, np.nan
    return est, se, df, float(2 * stats.t.sf(abs(est / se), df))


@records_frequency
def balance(
    study: Any,
    covariates: Sequence[str] | None = None,
    *,
    strata: bool = True,
    cov_type: str = "HC2",
    outcomes: Sequence[str] | None = None,
    missing_horizons: Sequence[int] | None = None,
    level: float = 0.95,
) -> BalanceTable:
    r"""Balance of baseline covariates between the arms, and differential missingness.

    Estimands (see the module docstring): for each covariate :math:`X`, the difference
    in means :math:`E[X \mid Z=1] - E[X \mid Z=0]`, which is zero by design; the
    within-stratum estimate :math:`\hat\beta` tests it; the omnibus test checks all
    covariates at once.

    Parameters
    ----------
    study
        A :class:`~ips_impact.study.Study`.
    covariates
        Columns of ``study.persons``. Default: the study's baseline covariates plus
        ``region`` and ``site`` when they vary within strata. Numeric (and 0/1)
        columns give one row; categorical columns one row per level (the share).
    strata
        Include stratum fixed effects in the tests (the design's blocks).
    cov_type
        ``"HC0"``, ``"HC1"``, ``"HC2"`` (default) or ``"HC3"``.
    outcomes
        Panel outcomes whose missingness is compared (default: every numeric
        outcome; ``()`` for none).
    missing_horizons
        Event times at which missingness is compared, one row per outcome × horizon.
        Default: one row per outcome, the share of event times 0..K missing, with K
        the last event time observed in the study.
    level
        Confidence level (used for the tidy intervals).

    Returns
    -------
    BalanceTable

    Raises
    ------
    EstimationError
        Unknown option, collinear covariates (named), too few persons.
    DataContractError
        A covariate or outcome that is not in the study.
    """
    cov_type = check_cov_type(cov_type, allowed=_HC_TYPES)
    if not isinstance(strata, bool):
        raise EstimationError(f"strata must be True or False; you passed {strata!r}")
    if not isinstance(level, float) or not 0 < level < 1:
        raise EstimationError(f"level must be a float strictly between 0 and 1; you passed {level!r}")
    persons: pd.DataFrame = study.persons
    design = study.design
    arm = np.asarray(design.arm, dtype=np.int64)
    stratum = np.asarray(design.stratum, dtype=np.int64)
    n_strata = len(design.stratum_labels)
    warn: list[str] = []

    # ---- which covariates
    def stratum_level(col: str) -> bool:
        s = persons[col].astype(str).where(persons[col].notna(), None)
        return bool((s.groupby(stratum).nunique(dropna=True) <= 1).all())

    if covariates is None:
        covs = list(study.covariates)
        for extra in ("region", "site"):
            if extra in persons.columns and not (strata and n_strata > 1 and stratum_level(extra)):
                covs.append(extra)
        covs = [c for c in covs if c not in _NOT_COVARIATES]
    else:
        if isinstance(covariates, str):
            covariates = [covariates]
        covs = list(dict.fromkeys(covariates))
        bad = [c for c in covs if c not in persons.columns or c in _NOT_COVARIATES]
        if bad:
            avail = [c for c in (*study.covariates, "region", "site") if c in persons.columns]
            raise DataContractError(
                f"covariate(s) {', '.join(repr(c) for c in bad)} are not baseline covariates of the study",
                table="assignment", column=bad, examples=avail,
                fix="choose among the baseline columns of the assignment table listed.",
            )
    if not covs:
        raise EstimationError(
            "there are no baseline covariates to compare",
            table="assignment",
            fix="add baseline covariates to the assignment table, or pass covariates=[...].",
        )

    X0, names0 = _base_design(arm, stratum, n_strata, strata)
    rows = []
    by_stratum_only: list[str] = []
    untestable: list[str] = []
    designs: dict[bytes, OLSDesign] = {}
    ledger = []
    for cov, lv, x, _cat in _expand(persons, covs):
        ok = np.isfinite(x)
        n1, n0 = int((ok & (arm == 1)).sum()), int((ok & (arm == 0)).sum())
        m1 = int(((~ok) & (arm == 1)).sum())
        m0 = int(((~ok) & (arm == 0)).sum())
        x1, x0 = x[ok & (arm == 1)], x[ok & (arm == 0)]
        if n1 < 2 or n0 < 2:
            raise EstimationError(
                f"covariate {cov!r} is observed for {n1} treated and {n0} control persons",
                table="assignment", column=cov,
                fix="drop the covariate from the balance check (too few values to compare).",
            )
        mean1, mean0 = float(x1.mean()), float(x0.mean())
        sd1, sd0 = float(x1.std(ddof=1)), float(x0.std(ddof=1))
        pooled = np.sqrt((sd1**2 + sd0**2) / 2.0)
        nd = (mean1 - mean0) / pooled if pooled > 0 else np.nan
        key = ok.tobytes()
        if key not in designs:  # one factorisation per pattern of missing values
            designs[key] = OLSDesign(X0[ok], names0, cov_type=cov_type)
        est, se, df, p = _fit_column(designs[key], x[ok])
        if np.isnan(p):
            if strata and n_strata > 1 and stratum_level(cov):
                if cov not in by_stratum_only:
                    by_stratum_only.append(cov)
            else:
                untestable.append(cov if lv is None else f"{cov}={lv}")
        rows.append({
            "covariate": cov, "level": lv, "mean_treated": mean1, "mean_control": mean0,
            "sd_treated": sd1, "sd_control": sd0, "difference": mean1 - mean0, "norm_diff": nd,
            "estimate": est, "std_error": se, "df": df, "p_value": p, "n_treated": n1,
            "n_control": n0, "n_missing_treated": m1, "n_missing_control": m0,
        })
        if lv is None or lv == sorted({str(v) for v in persons[cov].dropna()})[0]:
            if m1 + m0:
                ledger.append({"reason": f"missing value of covariate {cov!r} (left out of its row; "
                                         "mean-imputed with a missing indicator in the joint test)",
                               "n_rows": m1 + m0, "n_treated": m1, "n_control": m0})
    for cov in by_stratum_only:
        warn.append(f"covariate {cov!r} is constant within strata: balanced by design, "
                    "no test (left out of the joint test)")
    if untestable:
        warn.append("no within-stratum variation, so no test (balanced by design or constant): "
                    + ", ".join(untestable))
    table = pd.DataFrame(rows, columns=list(BALANCE_COLUMNS))

    joint = _joint_test(persons, [c for c in covs if c not in by_stratum_only], arm, X0, names0,
                        cov_type, warn)
    missingness = _missingness(study, outcomes, missing_horizons, arm, X0, names0, cov_type, warn,
                               designs)

    for w in warn:
        warnings.warn(w, EstimationWarning, stacklevel=2)
    spec = {
        "estimator": "balance", "covariates": tuple(covs), "strata": strata, "cov_type": cov_type,
        "outcomes": None if outcomes is None else tuple(outcomes),
        "missing_horizons": None if missing_horizons is None else tuple(int(h) for h in missing_horizons),
        "level": level,
    }
    return BalanceTable(table=table, joint=joint, missingness=missingness, level=level,
                        spec=spec, warnings=tuple(warn), ledger=ledger)


def _joint_test(persons: pd.DataFrame, covs: list[str], arm: np.ndarray, X0: np.ndarray,
                names0: list[str], cov_type: str, warn: list[str]) -> dict[str, Any] | None:
    r"""HC Wald test that every covariate slope is zero in :math:`Z \sim X + strata`."""
    if not covs:
        return None
    cols, names = [], []
    for cov in covs:
        s = persons[cov]
        miss = s.isna().to_numpy()
        if _is_categorical(s):
            sv = s.astype(str).to_numpy()
            counts = pd.Series(sv[~miss]).value_counts()
            # drop the most frequent level (ties: the first label) as the reference
            ref = sorted(counts.index[counts == counts.max()])[0]
            for lv in sorted(counts.index):
                if lv != ref:
                    cols.append(((sv == lv) & ~miss).astype(float))
                    names.append(f"{cov}={lv}")
        else:
            x = s.to_numpy(dtype=float, na_value=np.nan)
            if miss.any():
                x = np.where(miss, np.nanmean(x), x)
            cols.append(x)
            names.append(cov)
        if miss.any():
            cols.append(miss.astype(float))
            names.append(f"{cov} missing")
    C = np.column_stack(cols)
    # arm ~ intercept + strata + covariates (the arm column of X0 is the outcome here)
    base = np.delete(X0, 1, axis=1)
    bnames = [n for i, n in enumerate(names0) if i != 1]
    # Columns determined by the strata (a site nested in a region block, a constant) or by
    # other covariates carry no information about the arm: find them on the part of C
    # orthogonal to the strata, by a pivoted QR, and leave them out (named in a warning).
    Q, _ = np.linalg.qr(base)
    Cr = C - Q @ (Q.T @ C)
    norms = np.sqrt((Cr**2).sum(axis=0))
    scale = np.sqrt((C**2).sum(axis=0))
    keep = norms > 1e-9 * np.maximum(scale, 1.0)
    idx = np.flatnonzero(keep)
    if idx.size:
        import scipy.linalg

        _, R, piv = scipy.linalg.qr(Cr[:, idx] / norms[idx], mode="economic", pivoting=True)
        d = np.abs(np.diag(R))
        rank = int((d > 1e-7 * d[0]).sum())
        keep[:] = False
        keep[idx[piv[:rank]]] = True
    dropped = [n for n, k in zip(names, keep) if not k]
    if dropped:
        warn.append("left out of the joint test (determined by the strata or by other "
                    "covariates): " + ", ".join(dropped))
    C = C[:, keep]
    names = [n for n, k in zip(names, keep) if k]
    if C.shape[1] == 0:
        return None
    X = np.column_stack([base, C])
    design = OLSDesign(X, bnames + names, cov_type=cov_type)
    fit = design.fit(arm.astype(float))
    idx = np.arange(base.shape[1], X.shape[1])
    b = fit.coef[idx]
    V = fit.vcov[np.ix_(idx, idx)]
    W = float(b @ np.linalg.solve(V, b))
    q = len(idx)
    df2 = float(design.n - design.rank)
    F = W / q
    return {
        "test": "F", "statistic": F, "df_num": q, "df_denom": df2,
        "p_value": float(stats.f.sf(F, q, df2)),
        "chi2": W, "chi2_p_value": float(stats.chi2.sf(W, q)),
        "nobs": int(design.n), "terms": tuple(names), "dropped": tuple(dropped),
        "cov_type": cov_type,
    }


def _missingness(study: Any, outcomes: Sequence[str] | None, horizons: Sequence[int] | None,
                 arm: np.ndarray, X0: np.ndarray, names0: list[str], cov_type: str,
                 warn: list[str], designs: dict[bytes, OLSDesign]) -> pd.DataFrame:
    cols = ["outcome", "horizon", "share_missing_treated", "share_missing_control", "difference",
            "estimate", "std_error", "p_value", "n_treated", "n_control"]
    outs = list(study.outcomes) if outcomes is None else list(outcomes)
    for o in outs:
        study.require_outcome(o)
    if not outs:
        return pd.DataFrame(columns=cols)
    kmin, kmax = study.k_range
    labels: Sequence[str | int]
    if horizons is None:
        if kmax < 0:
            return pd.DataFrame(columns=cols)
        ks = np.arange(0, kmax + 1)
        labels = [f"0:{kmax}"]
    else:
        hs = [int(h) for h in horizons]
        bad = [h for h in hs if not kmin <= h <= kmax]
        if bad:
            raise EstimationError(
                f"missing_horizons {bad} are outside the observed follow-up (k from {kmin} to {kmax})",
                table="panel", column="k", fix=f"choose horizons between {kmin} and {kmax}.",
            )
        ks = np.array(hs)
        labels = hs
    full = np.ones(arm.size, dtype=bool).tobytes()
    design = designs.get(full) or OLSDesign(X0, names0, cov_type=cov_type)
    n1, n0 = int((arm == 1).sum()), int((arm == 0).sum())
    rows = []
    for o in outs:
        miss = np.isnan(study.outcome_matrix(o, ks))
        ys = [miss.mean(axis=1)] if horizons is None else [miss[:, j].astype(float) for j in range(len(ks))]
        for lab, y in zip(labels, ys):
            fit = design.fit(y)
            est, se, df = float(fit.coef[1]), float(np.sqrt(fit.vcov[1, 1])), float(fit.df[1])
            p = float(2 * stats.t.sf(abs(est / se), df)) if se > 1e-12 else np.nan
            s1, s0 = float(y[arm == 1].mean()), float(y[arm == 0].mean())
            rows.append({"outcome": o, "horizon": lab, "share_missing_treated": s1,
                         "share_missing_control": s0, "difference": s1 - s0, "estimate": est,
                         "std_error": se, "p_value": p, "n_treated": n1, "n_control": n0})
    frame = pd.DataFrame(rows, columns=cols)
    flagged = frame[frame["p_value"] < 0.05]
    for r in flagged.itertuples(index=False):
        warn.append(f"outcome {r.outcome!r} is missing more often in one arm at {r.horizon} "
                    f"(treated {r.share_missing_treated:.3f}, control {r.share_missing_control:.3f}, "
                    f"p = {r.p_value:.3f}): complete-case effects may be biased; consider lee_bounds")
    return frame
