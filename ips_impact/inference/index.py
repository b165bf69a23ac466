"""Summary indices: one outcome from a family of outcomes.

A summary index answers "did IPS improve this domain?" with one test instead of one
per outcome (Kling, Liebman & Katz 2007; Anderson 2008). For outcomes
:math:`j = 1..J` observed at event time k, each is first standardized on the control
group at that k,

.. math:: \\tilde y_{ijk} = s_j \\, \\frac{y_{ijk} - \\bar y^{(0)}_{jk}}{\\sigma^{(0)}_{jk}},

with :math:`\\bar y^{(0)}_{jk}, \\sigma^{(0)}_{jk}` the mean and standard deviation
among control persons observed at k and :math:`s_j = -1` for outcomes listed in
``reverse`` (where more is worse, e.g. DI benefit), +1 otherwise. Then

* ``method="klk"`` (Kling–Liebman–Katz): equal weights, the mean of the available
  standardized outcomes, :math:`I_{ik} = \\frac{1}{|J_i|}\\sum_{j \\in J_i}
  \\tilde y_{ijk}`;
* ``method="anderson"`` (Anderson 2008, eq. 1): inverse-covariance weights
  :math:`w_k = \\hat\\Sigma_k^{-1}\\mathbf 1` (row sums of the inverse covariance matrix
  of the standardized outcomes, estimated on the control group at k, pairwise
  complete), :math:`I_{ik} = \\sum_{j \\in J_i} w_{jk}\\tilde y_{ijk} /
  \\sum_{j \\in J_i} w_{jk}`. Highly correlated outcomes share their weight, so that
  a domain measured by many similar variables does not dominate.

:math:`J_i` is the set of outcomes observed for person i at k (Anderson's treatment
of missing components); a person observing none has a missing index. The index is
not re-standardized; its control mean at each k is 0 when every outcome is observed.

Because the standardization uses the control group, the index is a function of the
observed assignment; randomization inference on it treats the index as the outcome
(the usual practice), which is exact for the sharp null on the index itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ips_impact.errors import EstimationError

__all__ = ["INDEX_METHODS", "summary_index", "summary_index_components"]

#: Methods of :func:`summary_index`.
INDEX_METHODS: tuple[str, ...] = ("anderson", "klk")


def _check_args(study: Any, outcomes: Any, method: Any, reverse: Any) -> tuple[list[str], set[str]]:
    if not isinstance(method, str) or method not in INDEX_METHODS:
        raise EstimationError(
            f"method must be one of {', '.join(repr(m) for m in INDEX_METHODS)}; you passed {method!r}",
            fix="use method='anderson' (inverse-covariance weights) or 'klk' (equal weights)",
        )
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    outs = [str(o) for o in outcomes]
    if len(outs) < 2 or len(set(outs)) != len(outs):
        raise EstimationError(
            f"a summary index needs at least two distinct outcomes; you passed {outs}",
            fix="list the outcomes of the domain, e.g. ['employed', 'earnings', 'fte']",
        )
    for o in outs:
        study.require_outcome(o)
    rev = {reverse} if isinstance(reverse, str) else set(reverse)
    unknown = sorted(rev - set(outs))
    if unknown:
        raise EstimationError(
            f"reverse names outcomes that are not in the index: {unknown}",
            fix="list in reverse only outcomes of the index where more is worse",
        )
    return outs, rev


def _k_mask(k: np.ndarray, horizon: int | None, window: tuple[int, int] | None) -> np.ndarray:
    if horizon is not None and window is not None:
        raise EstimationError("give either horizon= or window=, not both",
                              fix="horizon=k for one event time, window=(a, b) for a range")
    if horizon is not None:
        return k == int(horizon)
    if window is not None:
        a, b = (int(v) for v in window)
        if a > b:
            raise EstimationError(f"window=({a}, {b}) is empty", fix="use window=(a, b) with a <= b")
        return (k >= a) & (k <= b)
    return np.ones(k.size, dtype=bool)


def summary_index_components(
    study: Any,
    outcomes: Sequence[str],
    *,
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    method: Literal["anderson", "klk"] = "anderson",
    reverse: Sequence[str] = (),
) -> tuple[pd.Series, pd.DataFrame]:
    """The index for every panel row and the standardization and weights behind it.

    Parameters
    ----------
    study : Study
    outcomes : sequence of str
        Numeric panel columns forming the domain (at least two).
    horizon, window
        Compute the index only at event time ``horizon`` or over ``window=(a, b)``
        (other rows get NaN); default every k.
    method : {"anderson", "klk"}
        Inverse-covariance (Anderson 2008) or equal (Kling–Liebman–Katz) weights.
    reverse : sequence of str
        Outcomes where more is worse (their sign is flipped before standardizing).

    Returns
    -------
    index : pandas.Series
        Aligned with ``study.panel`` (same index), NaN outside the event times asked
        for or where no component is observed.
    weights : pandas.DataFrame
        One row per (k, outcome): ``k, outcome, sign, control_mean, control_sd,
        weight`` (weights normalised to sum to one over the outcomes at k).
    """
    outs, rev = _check_args(study, outcomes, method, reverse)
    panel = study.panel
    # the arm has one source of truth: the design (aligned with persons)
    arm_of = pd.Series(np.asarray(study.design.arm), index=study.persons["person_id"].to_numpy())
    arm = panel["person_id"].map(arm_of).to_numpy()
    k = panel["k"].to_numpy(dtype=np.int64)
    use = _k_mask(k, horizon, window)
    if not use.any():
        kmin, kmax = int(k.min()), int(k.max())
        raise EstimationError(
            "no panel row at the event time(s) asked for",
            table="panel", column="k",
            fix=f"choose event times between {kmin} and {kmax}",
        )
    sign = np.array([-1.0 if o in rev else 1.0 for o in outs])
    y = panel[outs].to_numpy(dtype=np.float64, na_value=np.nan) * sign
    out = np.full(len(panel), np.nan)
    rows = []
    for kk in np.unique(k[use]):
        at = np.flatnonzero(use & (k == kk))
        yk = y[at]
        ctrl = arm[at] == 0
        yc = yk[ctrl]
        n_obs_c = np.sum(~np.isnan(yc), axis=0)
        mean = np.nanmean(np.where(n_obs_c > 0, yc, 0.0), axis=0) if yc.size else np.full(len(outs), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.sqrt(np.nansum((yc - mean) ** 2, axis=0) / np.maximum(n_obs_c - 1, 1))
        informative = (n_obs_c >= 2) & (sd > 0)
        if not informative.any():
            # Nothing varies among controls at this k: no index there (NaN).
            for j, o in enumerate(outs):
                rows.append({"k": int(kk), "outcome": o, "sign": sign[j], "control_mean": mean[j],
                             "control_sd": sd[j], "weight": np.nan})
            continue
        z = np.where(informative, (yk - mean) / np.where(informative, sd, 1.0), np.nan)
        if method == "klk":
            w = informative.astype(float)
        else:
            w = np.zeros(len(outs))
            inf_idx = np.flatnonzero(informative)
            zc = z[ctrl][:, inf_idx]
            cov = pd.DataFrame(zc).cov(min_periods=2).to_numpy()
            if not np.all(np.isfinite(cov)):
                raise EstimationError(
                    f"the covariance of the standardized outcomes cannot be estimated at k = {kk} "
                    "(too few control persons observing pairs of outcomes)",
                    column=[outs[i] for i in inf_idx],
                    fix="use method='klk', or restrict the index to event times with more data",
                )
            if np.linalg.cond(cov) > 1e10:
                raise EstimationError(
                    f"the standardized outcomes are collinear among controls at k = {kk}, so "
                    "inverse-covariance weights are not defined",
                    column=[outs[i] for i in inf_idx],
                    fix="drop one of the redundant outcomes, or use method='klk'",
                )
            w[inf_idx] = np.linalg.solve(cov, np.ones(inf_idx.size))
        observed = ~np.isnan(z)
        num = np.nansum(z * w, axis=1)
        den = (observed * w).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[at] = np.where(observed.any(axis=1) & (den != 0), num / den, np.nan)
        total = w.sum()
        for j, o in enumerate(outs):
            rows.append({"k": int(kk), "outcome": o, "sign": sign[j], "control_mean": mean[j],
                         "control_sd": sd[j], "weight": w[j] / total if total else np.nan})
    name = f"index_{method}"
    return pd.Series(out, index=panel.index, name=name), pd.DataFrame(rows)


def summary_index(
    study: Any,
    outcomes: Sequence[str],
    *,
    horizon: int | None = None,
    window: tuple[int, int] | None = None,
    method: Literal["anderson", "klk"] = "anderson",
    reverse: Sequence[str] = (),
    name: str | None = None,
) -> Any:
    """A new Study whose panel holds a summary index of ``outcomes`` as an outcome.

    The index (see the module docstring for the formulas) is added to ``study.panel``
    as the column ``name`` (default ``"index_anderson"`` / ``"index_klk"``) through
    ``Study.with_outcome``, so that every estimator takes it like any outcome::

        s = summary_index(study, ["employed", "earnings", "fte"], method="anderson")
        itt(s, "index_anderson", horizon=6)

    Parameters
    ----------
    study : Study
    outcomes : sequence of str
        Numeric panel columns of one domain (at least two).
    horizon, window
        Restrict the index to these event times (NaN elsewhere); default: every k,
        standardized and weighted separately at each k.
    method : {"anderson", "klk"}
    reverse : sequence of str
        Outcomes where more is worse (sign flipped).
    name : str, optional
        Column name of the index.

    Returns
    -------
    Study
        A new study (the input is unchanged). The weights are given by
        :func:`summary_index_components`.
    """
    values, _ = summary_index_components(study, outcomes, horizon=horizon, window=window,
                                         method=method, reverse=reverse)
    return study.with_outcome(name or f"index_{method}", values.to_numpy())
