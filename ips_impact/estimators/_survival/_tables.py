"""Risk tables: counts at risk and events per (stratum, distinct time, group).

Every estimator of the survival core works on these tables rather than on person
rows, so that its cost grows with the number of distinct times (24 quarters in the
trial), not with the number of persons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RiskTable", "risk_table"]


@dataclass(frozen=True)
class RiskTable:
    """Counts per distinct (stratum, time), one column per group.

    Attributes
    ----------
    stratum, time
        Arrays of length K (sorted by stratum, then time).
    at_risk, events, censored
        Arrays (K, G): persons with time >= t in the stratum, events at t, censored at t.
    stratum_end
        For each row, the index one past the last row of its stratum.
    """

    stratum: np.ndarray
    time: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    stratum_end: np.ndarray


def _reverse_cumsum_within(x: np.ndarray, stratum_end: np.ndarray) -> np.ndarray:
    """Sum of rows r..end-of-stratum for every row r (x has rows sorted by stratum)."""
    rc = np.cumsum(x[::-1], axis=0)[::-1]
    pad = np.concatenate([rc, np.zeros((1,) + rc.shape[1:])], axis=0)
    return rc - pad[stratum_end]


def _entered_at_or_after(
    entry: np.ndarray, strata: np.ndarray, group: np.ndarray, n_groups: int,
    key_stratum: np.ndarray, key_time: np.ndarray,
) -> np.ndarray:
    """(K, G) counts of rows of each key's stratum and each group with entry >= key time.

    Those rows have time >= key time too (entry < time), so subtracting them from the
    right-censored risk set leaves the rows at risk on (entry, time].
    """
    out = np.zeros((key_time.size, n_groups))
    # one sorted vector of entries per (stratum, group); a handful of cells in a trial
    for s in np.unique(key_stratum):
        rows = key_stratum == s
        for g in range(n_groups):
            e = np.sort(entry[(strata == s) & (group == g)])
            out[rows, g] = e.size - np.searchsorted(e, key_time[rows], side="left")
    return out


def risk_table(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    strata: np.ndarray | None = None,
    entry: np.ndarray | None = None,
) -> RiskTable:
    """Build the risk table of right-censored, optionally left-truncated, data.

    ``group`` and ``strata`` are integer codes (0-based). A person censored at t is
    in the risk set at t (the convention of R ``survival``). With ``entry`` (delayed
    entry, counting-process rows ``Surv(entry, time, event)``) a row is at risk on
    (entry, time]: at a time t it counts when entry < t <= time, as in ``survfit``.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    n = time.shape[0]
    s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    # one key per (stratum, time); np.unique on a structured pair keeps the sort order
    keys = np.rec.fromarrays([s, time], formats=[s.dtype, time.dtype], names="s,t")
    uniq, inv = np.unique(keys, return_inverse=True)
    inv = inv.ravel()
    k = uniq.shape[0]
    idx = inv * n_groups + np.asarray(group, dtype=np.int64)
    tot = np.bincount(idx, minlength=k * n_groups).reshape(k, n_groups).astype(float)
    ev = np.bincount(idx, weights=event, minlength=k * n_groups).reshape(k, n_groups)
    ustr = np.asarray(uniq["s"])
    # index one past the last row of each row's stratum
    change = np.flatnonzero(np.diff(ustr)) + 1
    ends = np.concatenate([change, [k]])
    stratum_end = np.repeat(ends, np.diff(np.concatenate([[0], ends])))
    at_risk = _reverse_cumsum_within(tot, stratum_end)
    if entry is not None:
        at_risk = at_risk - _entered_at_or_after(
            np.asarray(entry, dtype=float), s, np.asarray(group, dtype=np.int64), n_groups,
            ustr, np.asarray(uniq["t"], dtype=float))
    return RiskTable(
        stratum=ustr,
        time=np.asarray(uniq["t"], dtype=float),
        at_risk=at_risk,
        events=ev,
        censored=tot - ev,
        stratum_end=stratum_end,
    )
