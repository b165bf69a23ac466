"""Compare two saved analyses: which estimands changed, and by how much.

Rows are matched on ``(estimand_id, term, estimand, horizon)``; each numeric column
of the tidy table is compared with the tolerance of :func:`numpy.isclose`,

.. math:: |a - b| \\le \\mathrm{atol} + \\mathrm{rtol}\\,|b| ,

NaN equal to NaN. An estimand present (or filled) in one analysis only is a change
whatever the tolerance. Differences in provenance (inputs, plan, versions, seed) are
reported as context: they explain a change but are not one.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.plan.store import MANIFEST, read_tidy
from ips_impact.results.base import TIDY_COLUMNS

__all__ = ["diff_analyses", "AnalysisDiff", "COMPARED_COLUMNS"]

#: Tidy columns compared by :func:`diff_analyses`.
COMPARED_COLUMNS: tuple[str, ...] = tuple(
    c for c in TIDY_COLUMNS if c not in ("outcome", "term", "estimand", "horizon")
) + ("ri_p_value", "adj_p_value")
_KEY = ("estimand_id", "term", "estimand", "horizon")


@dataclasses.dataclass(frozen=True)
class AnalysisDiff:
    """What differs between two saved analyses.

    Attributes
    ----------
    changes
        One row per difference beyond tolerance: ``estimand_id, term, estimand, horizon,
        column, a, b, abs_diff, rel_diff`` (``column`` is ``"<row>"`` for a row present in
        one analysis only, with ``a``/``b`` saying which).
    max_rel_diff
        Largest relative difference over all compared values (0 when identical).
    context
        Provenance keys that differ (``{"plan": (a, b), …}``).
    rtol, atol
        The tolerance used.
    """

    changes: pd.DataFrame
    max_rel_diff: float
    context: dict[str, tuple[Any, Any]]
    rtol: float
    atol: float

    @property
    def within_tolerance(self) -> bool:
        """Whether no value differs beyond the tolerance and no row is missing."""
        return len(self.changes) == 0

    def summary(self) -> str:
        """Return a plain-text report: verdict, changed estimands, provenance context."""
        lines = []
        if self.within_tolerance:
            lines.append(
                f"No estimand differs beyond rtol={self.rtol:g}, atol={self.atol:g} "
                f"(largest relative difference {self.max_rel_diff:.3g})."
            )
        else:
            ids = list(dict.fromkeys(self.changes["estimand_id"]))
            lines.append(
                f"{len(ids)} estimand{'s' if len(ids) != 1 else ''} differ beyond "
                f"rtol={self.rtol:g}, atol={self.atol:g}:"
            )
            shown = self.changes.copy()
            for c in ("a", "b", "abs_diff", "rel_diff"):
                shown[c] = [
                    v if isinstance(v, str) else ("" if v is None or pd.isna(v) else f"{v:.6g}")
                    for v in shown[c]
                ]
            shown["horizon"] = shown["horizon"].fillna("")
            lines.append(shown.to_string(index=False))
        if self.context:
            lines.append("")
            lines.append("Provenance differs (context, not a change by itself):")
            for key, (a, b) in self.context.items():
                lines.append(f"  - {key}: {_short(a)} → {_short(b)}")
        return "\n".join(lines)


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 80 else text[:77] + "…"


def _keyed(tidy: pd.DataFrame) -> pd.DataFrame:
    t = tidy.copy()
    t["horizon"] = t["horizon"].astype(object).where(t["horizon"].notna(), None)
    t["_dup"] = t.groupby(list(_KEY), dropna=False, sort=False).cumcount()
    return t.set_index([*_KEY, "_dup"])


def _provenance(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    prov = manifest.get("provenance", {})
    return prov if isinstance(prov, dict) else {}


def diff_analyses(
    a: str | Path, b: str | Path, *, rtol: float = 1e-6, atol: float = 1e-12
) -> AnalysisDiff:
    """Compare the saved analyses in folders ``a`` and ``b`` (see the module docstring).

    Parameters
    ----------
    a, b
        Folders written by :meth:`Analysis.save` (``b`` is the reference of ``rtol``).
    rtol, atol
        Relative and absolute tolerance.

    Returns
    -------
    AnalysisDiff
    """
    ta, tb = _keyed(read_tidy(a)), _keyed(read_tidy(b))
    rows: list[dict[str, Any]] = []
    only_a = ta.index.difference(tb.index, sort=False)
    only_b = tb.index.difference(ta.index, sort=False)
    for idx, where in [(i, "only in A") for i in only_a] + [(i, "only in B") for i in only_b]:
        rows.append(
            dict(
                zip(_KEY, idx[:4]),
                column="<row>",
                a=where if where.endswith("A") else None,
                b=where if where.endswith("B") else None,
                abs_diff=np.nan,
                rel_diff=np.nan,
            )
        )
    common = ta.index.intersection(tb.index, sort=False)
    max_rel = 0.0
    for col in COMPARED_COLUMNS:
        if col not in ta.columns or col not in tb.columns:
            continue
        va = ta.loc[common, col].to_numpy(dtype=float)
        vb = tb.loc[common, col].to_numpy(dtype=float)
        both_nan = np.isnan(va) & np.isnan(vb)
        close = np.isclose(va, vb, rtol=rtol, atol=atol) | both_nan
        with np.errstate(divide="ignore", invalid="ignore"):
            absd = np.abs(va - vb)
            reld = np.where(vb != 0, absd / np.abs(vb), np.where(absd == 0, 0.0, np.inf))
        finite = np.isfinite(reld) & ~both_nan
        if finite.any():
            max_rel = max(max_rel, float(reld[finite].max()))
        for i in np.flatnonzero(~close):
            idx = common[i]
            rows.append(
                dict(
                    zip(_KEY, idx[:4]),
                    column=col,
                    a=float(va[i]),
                    b=float(vb[i]),
                    abs_diff=float(absd[i]),
                    rel_diff=float(reld[i]),
                )
            )
    changes = pd.DataFrame(rows, columns=[*_KEY, "column", "a", "b", "abs_diff", "rel_diff"])
    pa, pb = _provenance(Path(a)), _provenance(Path(b))
    context = {
        k: (pa.get(k), pb.get(k))
        for k in ("inputs", "column_map", "plan", "versions", "seed", "n_permutations")
        if pa.get(k) != pb.get(k)
    }
    return AnalysisDiff(
        changes=changes, max_rel_diff=max_rel, context=context, rtol=rtol, atol=atol
    )
