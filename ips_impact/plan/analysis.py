"""The Analysis: a populated plan — every registered estimand filled, or with its reason.

An :class:`Analysis` is what :func:`~ips_impact.plan.run.run_plan` returns and what
:func:`~ips_impact.plan.store.load_analysis` gives back: the plan, one :class:`Entry`
per estimand (its result, or the reason it has none), the provenance and a summary of
the study that holds no microdata. Frozen, like every result of the package.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.errors import PlanError
from ips_impact.plan.schema import TAGS, AnalysisPlan
from ips_impact.results.base import TIDY_COLUMNS, ResultBase, freeze

__all__ = ["Analysis", "Entry", "TIDY_PREFIX", "TIDY_SUFFIX"]

#: Columns put before the result's own tidy columns in :meth:`Analysis.tidy`.
TIDY_PREFIX: tuple[str, ...] = ("estimand_id", "tag", "family", "estimator")
#: Columns after them (NaN where the estimand has none).
TIDY_SUFFIX: tuple[str, ...] = ("ri_p_value", "ri_se", "adj_p_value")


@dataclasses.dataclass(frozen=True, eq=False)
class Entry:
    """One estimand of the plan, filled or not.

    Parameters
    ----------
    id, tag, family, estimator, outcome, options
        As in the plan (:class:`~ips_impact.plan.schema.EstimandSpec`).
    result
        The fitted result (with ``ri_p_value`` and ``adj_p_value`` when computed), or
        ``None`` when the estimand could not be filled.
    reason
        Why there is no result (``None`` when there is one).
    notes
        What else the reader must know (no randomization p-value and why, left out of
        its family's adjustment…).
    warnings
        Warnings raised while fitting (also in ``result.warnings`` when the estimator
        records them).
    seed
        Seed of its randomization draws: derived from (plan seed, id).
    """

    id: str
    tag: str
    family: str | None
    estimator: str
    outcome: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    result: ResultBase | None = None
    reason: str | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", freeze(dict(self.options)))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        if (self.result is None) == (self.reason is None):
            raise PlanError(
                f"estimand '{self.id}' must have either a result or a reason",
                fix="report this as a bug of run_plan",
            )

    @property
    def filled(self) -> bool:
        """Whether the estimand has a result."""
        return self.result is not None

    def __repr__(self) -> str:
        state = (
            type(self.result).__name__ if self.result is not None else f"not filled: {self.reason}"
        )
        return f"<Entry {self.id} ({self.tag}{', ' + self.family if self.family else ''}): {state}>"


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis:
    """The registered analysis, run: results, p-values, deviations and provenance.

    Parameters
    ----------
    plan
        The :class:`~ips_impact.plan.schema.AnalysisPlan` that was run.
    entries
        One :class:`Entry` per estimand of the plan, in plan order, then the
        exploratory estimands run outside the plan.
    provenance
        Hashed part — ``inputs`` ({table: SHA-256}), ``input_kind``, ``column_map``,
        ``plan`` (SHA-256 of the canonical plan), ``versions``, ``seed``,
        ``n_permutations``, ``ledger`` — its ``digest``, and an unhashed ``run`` part
        (time, host).
    study_info
        No microdata: ``frequency``, ``n_persons``, ``n_treated``, ``n_control``,
        ``n_strata``, ``by_stratum`` (the design's counts: stratum, n, n_treated,
        n_control, p_treated), ``k_range``, ``n_members``, ``by_region_arm`` (counts),
        ``ledger`` (frame), ``consort`` (frame).
    """

    plan: AnalysisPlan
    entries: tuple[Entry, ...]
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    study_info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        object.__setattr__(self, "provenance", freeze(dict(self.provenance)))
        object.__setattr__(self, "study_info", freeze(dict(self.study_info)))
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise PlanError(
                "an analysis holds two entries with the same id", fix="report this as a bug"
            )

    # ---- access
    def entry(self, id: str) -> Entry:
        """Return the entry of estimand ``id``."""
        for e in self.entries:
            if e.id == id:
                return e
        raise PlanError(
            f"the analysis has no estimand '{id}'",
            fix=f"use one of {', '.join(e.id for e in self.entries[:8])}…",
        )

    def __getitem__(self, id: str) -> ResultBase:
        """Return the result of estimand ``id`` (PlanError with the reason if not filled)."""
        e = self.entry(id)
        if e.result is None:
            raise PlanError(
                f"estimand '{id}' was not filled: {e.reason}", fix="see analysis.deviations()"
            )
        return e.result

    def __iter__(self) -> Any:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def results(
        self, *, tag: str | None = None, family: str | None = None
    ) -> dict[str, ResultBase]:
        """Results by estimand id (filled entries only), optionally of one tag and/or family."""
        if tag is not None and tag not in TAGS:
            raise PlanError(
                f"tag must be one of {', '.join(TAGS)}; you passed {tag!r}",
                fix='use tag="primary", "secondary" or "exploratory"',
            )
        return {
            e.id: e.result
            for e in self.entries
            if e.result is not None
            and (tag is None or e.tag == tag)
            and (family is None or e.family == family)
        }

    def tidy(self) -> pd.DataFrame:
        """Every tidy row of every result, with ``estimand_id``, ``tag``, ``family``, ``estimator``.

        Columns: :data:`TIDY_PREFIX`, the tidy schema of the results, then
        ``ri_p_value``, ``ri_se`` and ``adj_p_value`` (NaN where not computed). The
        ``family`` column is the plan's family (None outside any family).
        """
        frames = []
        for e in self.entries:
            if e.result is None:
                continue
            t = e.result.tidy()
            for col in TIDY_SUFFIX:
                if col not in t.columns:
                    t[col] = np.nan
            t = t[list(TIDY_COLUMNS) + list(TIDY_SUFFIX)].copy()
            t.insert(0, "estimand_id", e.id)
            t.insert(1, "tag", e.tag)
            t.insert(2, "family", e.family)
            t.insert(3, "estimator", e.estimator)
            frames.append(t)
        cols = list(TIDY_PREFIX) + list(TIDY_COLUMNS) + list(TIDY_SUFFIX)
        if not frames:
            return pd.DataFrame(columns=cols)
        out = pd.concat(frames, ignore_index=True)
        for c in ("ri_p_value", "ri_se", "adj_p_value"):
            out[c] = out[c].astype(float)
        return out[cols]

    def compare(self, *, tag: str | None = None, family: str | None = None, **kwargs: Any) -> Any:
        """Return a multi-model table (:func:`ips_impact.compare`) of the selected results.

        Columns are named by estimand id; ``kwargs`` go to :func:`ips_impact.compare`.
        """
        from ips_impact.results import compare

        chosen = self.results(tag=tag, family=family)
        if not chosen:
            raise PlanError(
                f"no filled estimand with tag={tag!r}, family={family!r}",
                fix="see analysis.overview() for the tags and families",
            )
        return compare(chosen, **kwargs)

    def deviations(self) -> pd.DataFrame:
        """Every registered estimand that was not filled: ``estimand_id, tag, family, reason``."""
        rows = [
            {"estimand_id": e.id, "tag": e.tag, "family": e.family, "reason": e.reason}
            for e in self.entries
            if e.result is None
        ]
        return pd.DataFrame(rows, columns=["estimand_id", "tag", "family", "reason"])

    def notes(self) -> pd.DataFrame:
        """Return the notes of the estimands (e.g. no randomization p-value)."""
        rows = [{"estimand_id": e.id, "note": n} for e in self.entries for n in e.notes]
        return pd.DataFrame(rows, columns=["estimand_id", "note"])

    def overview(self) -> pd.DataFrame:
        """Return one row per estimand: id, tag, family, status, first tidy row's numbers."""
        rows = []
        for e in self.entries:
            row: dict[str, Any] = {
                "estimand_id": e.id,
                "tag": e.tag,
                "family": e.family,
                "estimator": e.estimator,
                "outcome": e.outcome,
            }
            if e.result is None:
                row.update(status="not filled", n_rows=0)
            else:
                t = e.result.tidy()
                first = t.iloc[0] if len(t) else None
                row.update(
                    status="filled",
                    n_rows=len(t),
                    unit=unit_of(
                        e.estimator, e.outcome, e.options, self.study_info.get("frequency")
                    ),
                )
                if first is not None:
                    for c in ("estimate", "std_error", "p_value", "ri_p_value", "adj_p_value"):
                        row[c] = (
                            float(first[c]) if c in t.columns and first[c] is not None else math.nan
                        )
            rows.append(row)
        cols = [
            "estimand_id",
            "tag",
            "family",
            "estimator",
            "outcome",
            "status",
            "n_rows",
            "unit",
            "estimate",
            "std_error",
            "p_value",
            "ri_p_value",
            "adj_p_value",
        ]
        return pd.DataFrame(rows).reindex(columns=cols)

    # ---- output
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the analysis to the folder ``path`` atomically.

        See :func:`ips_impact.plan.store.save_analysis`.
        """
        from ips_impact.plan.store import save_analysis

        return save_analysis(self, path, overwrite=overwrite)

    def _counts(self) -> tuple[int, int, int]:
        n = len(self.entries)
        filled = sum(e.filled for e in self.entries)
        return n, filled, n - filled

    def summary(self) -> str:
        """Plain text: plan, provenance digest, study, one line per estimand, deviations."""
        n, filled, missing = self._counts()
        info = self.study_info
        lines = [f"Analysis: {self.plan.name}", "=" * (10 + len(self.plan.name))]
        seed = self.provenance.get("seed", self.plan.seed)
        n_perm = int(self.provenance.get("n_permutations", self.plan.n_permutations))
        lines.append(
            f"{filled} of {n} estimands filled, {missing} not; seed {seed}, "
            f"{n_perm:,} randomization draws per estimand"
        )
        if info:
            lines.append(
                f"Study: {info.get('n_persons')} randomized ({info.get('n_treated')} IPS, "
                f"{info.get('n_control')} control), frequency {info.get('frequency')}"
            )
        if self.provenance.get("digest"):
            lines.append(
                f"Provenance digest: {self.provenance['digest'][:16]}…, "
                f"plan {str(self.provenance.get('plan'))[:16]}…"
            )
        ov = self.overview()
        shown = ov[
            [
                "estimand_id",
                "unit",
                "tag",
                "family",
                "status",
                "estimate",
                "p_value",
                "ri_p_value",
                "adj_p_value",
            ]
        ].copy()
        shown["family"] = shown["family"].fillna("")
        for c in ("p_value", "ri_p_value", "adj_p_value"):
            shown[c] = [
                (
                    ""
                    if (v is None or (isinstance(v, float) and math.isnan(v)))
                    else ("<0.001" if v < 0.001 else f"{v:.3f}")
                )
                for v in shown[c]
            ]
        shown["estimate"] = ["" if pd.isna(v) else f"{v:.4g}" for v in shown["estimate"]]
        lines.append("")
        lines.append("Estimands (first tidy row of each; see .tidy() for all rows):")
        lines.append(shown.to_string(index=False))
        dev = self.deviations()
        lines.append("")
        if len(dev):
            lines.append("Deviations from the plan (estimands not filled):")
            lines.extend(f"  - {r.estimand_id}: {r.reason}" for r in dev.itertuples(index=False))
        else:
            lines.append("Deviations from the plan: none (every registered estimand is filled).")
        notes = self.notes()
        if len(notes):
            lines.append("")
            lines.append("Notes:")
            lines.extend(f"  - {r.estimand_id}: {r.note}" for r in notes.itertuples(index=False))
        return "\n".join(lines)

    def __repr__(self) -> str:
        n, filled, missing = self._counts()
        return f"<Analysis {self.plan.name!r}: {filled}/{n} estimands filled, {missing} deviations>"

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        n, filled, missing = self._counts()
        digest = str(self.provenance.get("digest", ""))[:16]
        parts = [
            f"<h4>Analysis: {html.escape(self.plan.name)}</h4>",
            f"<p>{filled} of {n} estimands filled; {missing} deviations. "
            f"Provenance digest <code>{html.escape(digest)}</code>.</p>",
        ]
        ov = self.overview()
        parts.append(ov.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
        dev = self.deviations()
        if len(dev):
            parts.append("<p><b>Deviations from the plan</b></p>")
            parts.append(dev.to_html(index=False))
        return "\n".join(parts)


_PERIOD = {"Q": "quarter", "M": "month", "Y": "year", "W": "week", "int": "period"}
_SHARES = frozenset(
    {
        "work_on_di",
        "employed",
        "on_di",
        "self_employed",
        "temp_agency",
        "permanent_contract",
        "authorised_work",
    }
)
_MONTHLY_EUR = frozenset({"di_benefit", "unemployment_benefit", "social_assistance"})


def unit_of(estimator: str, outcome: str, options: Mapping[str, Any], frequency: Any) -> str:
    """Return the unit of the first tidy row's estimate of an estimand (for tables).

    Differences in a 0/1 outcome are shares (×100 = percentage points); ``earnings`` is
    EUR per period of the panel, benefits EUR per month; a window ``"sum"`` counts
    periods (0/1 outcomes) or adds the amounts; survival estimands start with the
    log-rank χ² (their other rows: log hazard ratio, RMST difference in periods…).
    """
    period = _PERIOD.get(str(frequency), "period")
    if estimator in ("time_to_event", "spell_survival"):
        return "log-rank chi2 (see tidy rows)"
    summed = options.get("window") is not None and options.get("aggregate") == "sum"
    if outcome in _SHARES or estimator == "itt" and outcome == "nace":
        return f"{period}s" if summed else "share (x100 = pp)"
    if outcome == "earnings":
        return "EUR (sum)" if summed else f"EUR per {period}"
    if outcome in _MONTHLY_EUR:
        return "EUR (sum of monthly)" if summed else "EUR per month"
    if outcome == "fte":
        return "FTE (sum)" if summed else "FTE fraction"
    if outcome == "days_worked":
        return "days"
    return "outcome units"


def study_info(study: Any) -> dict[str, Any]:
    """Return counts that describe the study without microdata (no key, no person-level row)."""
    persons = study.persons
    arm = persons["arm"].astype(int)
    info: dict[str, Any] = {
        "frequency": str(study.frequency),
        "n_persons": int(len(persons)),
        "n_treated": int((arm == 1).sum()),
        "n_control": int((arm == 0).sum()),
    }
    design = getattr(study, "design", None)
    counts = getattr(design, "counts", None)
    if isinstance(counts, pd.DataFrame):
        info["n_strata"] = int(len(counts))
        info["by_stratum"] = counts.reset_index(drop=True)
    panel = study.panel
    if len(panel):
        info["k_range"] = [int(panel["k"].min()), int(panel["k"].max())]
    members = getattr(study, "members", None)
    if isinstance(members, pd.DataFrame) and "person_id" in members:
        info["n_members"] = int(members["person_id"].nunique())
    if "region" in persons:
        counts = (
            persons.assign(arm=arm)
            .groupby(["region", "arm"], dropna=False, observed=True)
            .size()
            .rename("n")
            .reset_index()
        )
        counts["region"] = counts["region"].astype("string").fillna("unknown").astype(object)
        counts["arm"] = counts["arm"].astype("int64")
        counts["n"] = counts["n"].astype("int64")
        info["by_region_arm"] = counts.sort_values(["region", "arm"], kind="mergesort").reset_index(
            drop=True
        )
    ledger = study.ledger.to_frame().reset_index(drop=True)
    info["ledger"] = ledger
    info["consort"] = study.consort().to_frame().reset_index(drop=True)
    return info
