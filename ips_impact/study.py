"""Study: validated, linked, event-time panel of a randomized trial.

``Study.from_frames`` (or ``load_study`` on a folder) reads the trial's assignment
list, the LMD-style panel, and optionally the household roster, the monthly benefit
records and the IPS take-up list. It validates every table (typed errors that name the
table, column, number of rows, examples and the fix), links them on pseudonymised
person keys, and builds

* ``persons``: one row per randomized person (arm, stratum, covariates, follow-up);
* ``panel``: person × period rows with the event time

  .. math:: k_{it} = \\operatorname{ord}(t) - \\operatorname{ord}(t^{rand}_i),

  so that ``k = 0`` is the period of randomization;
* ``members``: the panel of the other members of each index person's household *at
  randomization* (the baseline roster; members who joined later are set aside because
  their presence may itself be an effect of the treatment);
* ``design``: how the arm was assigned;
* ``ledger``: every row set aside, repaired or assumed, with its reason.

Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ips_impact import validate as V
from ips_impact.design import Design
from ips_impact.errors import DataContractError, EstimationError
from ips_impact.io.mapping import ColumnMap
from ips_impact.io.periods import (
    Frequency,
    date_to_period,
    normalise_frequency,
    parse_periods,
    period_ordinals,
)
from ips_impact.io.readers import find_table_files, read_table
from ips_impact.io.schema import PANEL_CATEGORICAL
from ips_impact.ledger import Ledger

__all__ = ["Study", "load_study", "LinkageReport", "Consort"]

_REGIONS = {
    "vl": "VL", "vla": "VL", "flanders": "VL", "vlaanderen": "VL", "flandre": "VL", "flandres": "VL",
    "wal": "WAL", "wallonia": "WAL", "wallonie": "WAL", "wallonië": "WAL", "w": "WAL",
    "bxl": "BXL", "bru": "BXL", "brussels": "BXL", "bruxelles": "BXL", "brussel": "BXL",
}
_ASSIGNMENT_RESERVED = ("person_id", "arm", "randomization_date", "randomization_period", "stratum",
                        "region", "site", "household_id")
_PANEL_KEYS = ("person_id", "period", "k")


def _normalise_region(values: pd.Series) -> pd.Series:
    low = values.map(lambda v: v if pd.isna(v) else str(v).strip().lower())
    out = low.map(_REGIONS)
    bad = low.notna() & out.isna()
    if bad.any():
        raise DataContractError(
            "has unknown regions", table="assignment", column="region", n_rows=int(bad.sum()),
            examples=sorted({str(v) for v in values[bad]})[:5],
            fix="use VL (Flanders), WAL (Wallonia) or BXL (Brussels).",
        )
    return out


def _arm_counts(arm: pd.Series | np.ndarray) -> tuple[int, int]:
    a = np.asarray(arm)
    return int((a == 1).sum()), int((a == 0).sum())


@dataclass(frozen=True)
class LinkageReport:
    """Match rates of the randomized persons to the panel, by arm and stratum.

    ``test`` is Fisher's exact test of the hypothesis that linkage does not depend on
    the arm (differential linkage would bias every comparison of linked persons).
    """

    by_arm: pd.DataFrame
    by_stratum: pd.DataFrame
    other_tables: pd.DataFrame
    odds_ratio: float
    p_value: float

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([self.by_arm.assign(stratum="all"), self.by_stratum], ignore_index=True)

    def __repr__(self) -> str:
        lines = ["Linkage of randomized persons to the panel", self.by_arm.to_string(index=False), "",
                 self.by_stratum.to_string(index=False), "", self._test_line()]
        if len(self.other_tables):
            lines += ["", self.other_tables.to_string(index=False)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return (f"<h4>Linkage to the panel</h4>{self.by_arm.to_html(index=False)}"
                f"{self.by_stratum.to_html(index=False)}"
                f"<p>{self._test_line()}</p>{self.other_tables.to_html(index=False)}")

    def _test_line(self) -> str:
        odds = ("not defined (no unlinked person in one arm)" if not np.isfinite(self.odds_ratio)
                or self.odds_ratio == 0 else f"{self.odds_ratio:.3f}")
        return (f"Differential linkage (Fisher's exact test, IPS vs control): odds ratio {odds}, "
                f"p = {self.p_value:.4f}")


@dataclass(frozen=True)
class Consort:
    """CONSORT-style flow: randomized → linked → followed up → (IPS started), per arm."""

    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        return "CONSORT flow\n" + self.table.to_string(index=False)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)

    def plot(self, ax: Any = None) -> Any:
        """Draw the flow as two columns of boxes (IPS, control); returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 1.2 + 1.1 * len(self.table)))
        ax.set_axis_off()
        ax.set_xlim(0, 2)
        n = len(self.table)
        ax.set_ylim(-0.5, n - 0.3)
        for col, (label, x) in enumerate((("IPS", 0.5), ("control", 1.5))):
            ax.text(x, n - 0.45, label, ha="center", va="center", fontsize=11, fontweight="bold")
            for i, row in enumerate(self.table.itertuples(index=False)):
                y = n - 1 - i
                val = row.n_ips if col == 0 else row.n_control
                txt = f"{row.stage}\nn = {val}" if pd.notna(val) else f"{row.stage}\n—"
                ax.text(x, y, txt, ha="center", va="center", fontsize=9,
                        bbox=dict(boxstyle="round,pad=0.4", fc="#eef3f8", ec="#4a6fa5"))
                if i:
                    ax.annotate("", xy=(x, y + 0.28), xytext=(x, y + 0.72),
                                arrowprops=dict(arrowstyle="->", color="#4a6fa5"))
        return ax


class Study:
    """A validated, linked trial: persons, event-time panel, household members, design, ledger.

    Build it with :meth:`from_frames` or :func:`load_study`; do not call the
    constructor directly. All attributes are read-only; ``persons``, ``panel`` and
    ``members`` return the stored frames (treat them as read-only).

    Examples
    --------
    >>> import ips_impact as ii
    >>> trial = ii.synthetic.generate(n_persons=200, seed=1)   # doctest: +SKIP
    >>> study = ii.Study.from_frames(trial.assignment, trial.panel,
    ...                              households=trial.households)  # doctest: +SKIP
    >>> study.persons.shape[0], study.frequency                    # doctest: +SKIP
    (200, 'Q')
    """

    def __init__(self, *, _token: object = None, **parts: Any) -> None:
        if _token is not _BUILD_TOKEN:
            raise TypeError("build a Study with Study.from_frames(...) or ii.load_study(path)")
        self._persons: pd.DataFrame = parts["persons"]
        self._panel: pd.DataFrame = parts["panel"]
        self._members: pd.DataFrame = parts["members"]
        self._households: pd.DataFrame | None = parts["households"]
        self._design: Design = parts["design"]
        self._ledger: Ledger = parts["ledger"]
        self._frequency: Frequency = parts["frequency"]
        self._covariates: tuple[str, ...] = parts["covariates"]
        self._sources: dict[str, Any] = parts.get("sources", {})
        self._pidx = self._panel["_pidx"].to_numpy() if "_pidx" in self._panel else None
        self._panel = self._panel.drop(columns="_pidx")
        self._k = self._panel["k"].to_numpy()
        self._extra_linkage: pd.DataFrame = parts["extra_linkage"]
        self._sites: pd.DataFrame | None = parts.get("sites")

    # ------------------------------------------------------------------ build
    @classmethod
    def from_frames(
        cls,
        assignment: pd.DataFrame,
        panel: pd.DataFrame,
        *,
        households: pd.DataFrame | None = None,
        benefits: pd.DataFrame | None = None,
        takeup: pd.DataFrame | None = None,
        sites: pd.DataFrame | None = None,
        frequency: str | None = None,
        column_map: ColumnMap | Mapping[str, object] | str | Path | None = None,
    ) -> Study:
        """Validate and link the trial's tables.

        Parameters
        ----------
        assignment
            One row per randomized person: ``person_id``, ``arm`` (1 = IPS),
            ``randomization_date`` (or ``randomization_period``), optional
            ``stratum``, ``region``, ``site``, ``household_id`` and baseline covariates.
        panel
            One row per person × period (``person_id``, ``period`` + LMD columns), for
            randomized persons and the other members of their households.
        households
            Roster: ``household_id``, ``person_id``, ``role`` (index, partner, child,
            parent, other, or LIPRO codes), optional ``valid_from`` / ``valid_to``.
        benefits
            Monthly insurer records (``person_id``, ``month``, ``on_di``,
            ``di_benefit``…), aggregated to the panel frequency: flags as "any month",
            amounts as the monthly mean.
        takeup
            ``person_id`` with ``ips_started`` (0/1) or ``ips_start_date``.
        sites
            IPS programme fidelity: ``site``, ``fidelity`` (total of the 25-item IPS
            fidelity scale, 25–125), optional ``assessment_date``; one row per
            assessment. Used by ``heterogeneity(by="fidelity")`` and ``by="site"``.
        frequency
            ``"Q"``, ``"M"``, ``"Y"``, ``"W"`` or ``"int"``; detected when omitted.
        column_map
            Renames extract columns to contract names (dict, :class:`ColumnMap` or a
            TOML path).

        Raises
        ------
        DataContractError, LinkageError, DesignError
            With the table, column, number of rows, examples and the fix.
        """
        cmap = ColumnMap.coerce(column_map)
        ledger = Ledger()
        assignment = V.validate_table(cmap.apply(assignment, "assignment"), "assignment")
        panel = V.validate_table(cmap.apply(panel, "panel"), "panel")
        frequency = normalise_frequency(frequency)

        if sites is not None:
            sites = _check_sites_table(cmap.apply(sites, "sites"), assignment, ledger)

        # ---- panel periods (the study frequency comes from here)
        periods, freq = parse_periods(panel["period"], frequency, table="panel", column="period")
        panel = panel.assign(period=periods)
        V.check_unique(panel, "panel", ("person_id", "period"), what="person × period")

        persons = _build_persons(assignment, freq)
        covariates = tuple(c for c in persons.columns if c not in _ASSIGNMENT_RESERVED
                           and c not in ("randomization_date", "randomization_period"))
        pid_index = pd.Index(persons["person_id"])

        # ---- benefits → panel frequency
        extra_linkage = []
        if benefits is not None:
            benefits = V.validate_table(cmap.apply(benefits, "benefits"), "benefits")
            panel, info = _merge_benefits(panel, benefits, freq, ledger, pid_index)
            extra_linkage.append(info)

        # ---- households: roster at randomization
        roster = None
        members_map = pd.DataFrame(columns=["person_id", "index_person_id", "household_id", "role"])
        later_ids: list[str] = []
        if households is not None:
            roster = _clean_roster(V.validate_table(cmap.apply(households, "households"), "households"))
            persons, members_map, later_ids = _baseline_members(persons, roster, ledger)

        # ---- take-up
        if takeup is not None:
            takeup = V.validate_table(cmap.apply(takeup, "takeup"), "takeup")
            persons, info = _merge_takeup(persons, takeup, ledger)
            extra_linkage.append(info)

        # ---- split panel rows: randomized persons / baseline members / neither
        pidx = pid_index.get_indexer(panel["person_id"])
        is_person = pidx >= 0
        member_ids = pd.Index(members_map["person_id"].unique())
        is_member = member_ids.get_indexer(panel["person_id"]) >= 0
        later = pd.Index(later_ids)
        is_later = (~is_person & ~is_member) & (later.get_indexer(panel["person_id"]) >= 0)
        if is_later.any():
            ledger.add("panel", "rows of household members who were not in the household at the index "
                       "person's randomization (baseline roster rule)", int(is_later.sum()),
                       n_persons=int(panel.loc[is_later, "person_id"].nunique()), action="set aside")
        neither = ~is_person & ~is_member & ~is_later
        if neither.any():
            ledger.add("panel", "rows of persons neither randomized nor in a baseline household roster",
                       int(neither.sum()), n_persons=int(panel.loc[neither, "person_id"].nunique()),
                       action="dropped")

        rand_period_ord = period_ordinals(persons["randomization_period"])
        main = panel.loc[is_person].copy()
        main_pidx = pidx[is_person]
        main["k"] = period_ordinals(main["period"]) - rand_period_ord[main_pidx]
        main["_pidx"] = main_pidx
        order = np.lexsort((main["k"].to_numpy(), main_pidx))
        main = main.iloc[order].reset_index(drop=True)
        main = _derive(main)
        main = main[["person_id", "period", "k"] + [c for c in main.columns if c not in _PANEL_KEYS]]

        # ---- persons: follow-up and linkage
        counts = np.bincount(main["_pidx"].to_numpy(), minlength=len(persons))
        persons["linked"] = counts > 0
        kmin = pd.Series(main["k"].to_numpy()).groupby(main["_pidx"].to_numpy()).min()
        kmax = pd.Series(main["k"].to_numpy()).groupby(main["_pidx"].to_numpy()).max()
        persons["k_min"] = kmin.reindex(range(len(persons))).to_numpy(dtype=float)
        persons["k_max"] = kmax.reindex(range(len(persons))).to_numpy(dtype=float)
        unlinked = ~persons["linked"]
        if unlinked.any():
            n1, n0 = _arm_counts(persons.loc[unlinked, "arm"])
            ledger.add("assignment", "randomized persons with no panel row (kept in persons, missing in "
                       "every outcome)", int(unlinked.sum()), n_persons=int(unlinked.sum()),
                       n_treated=n1, n_control=n0, action="kept, unlinked")

        # ---- members panel
        members = _members_panel(panel.loc[is_member], members_map, persons, freq)
        members = _derive(members)

        # ---- design
        strata_codes, strata_labels = pd.factorize(persons["stratum"], sort=True)
        hh = None
        if "household_id" in persons.columns:
            hcodes, _ = pd.factorize(persons["household_id"], sort=True)
            hh = hcodes
        design = Design(arm=persons["arm"].to_numpy(), stratum=strata_codes,
                        stratum_labels=tuple(str(s) for s in strata_labels), household=hh)
        V.check_contrast(persons["arm"], persons["stratum"])

        return cls(
            _token=_BUILD_TOKEN, persons=persons, panel=main, members=members,
            households=roster, design=design, ledger=ledger.freeze(), frequency=freq,
            covariates=covariates, sites=sites,
            extra_linkage=pd.DataFrame(extra_linkage, columns=["table", "n_persons_randomized",
                                                               "n_persons_matched", "n_rows_unmatched"]),
        )

    # ------------------------------------------------------------------ accessors
    @property
    def persons(self) -> pd.DataFrame:
        """One row per randomized person, sorted by ``person_id`` (treat as read-only)."""
        return self._persons

    @property
    def panel(self) -> pd.DataFrame:
        """Person × period rows of the randomized persons with event time ``k``."""
        return self._panel

    @property
    def members(self) -> pd.DataFrame:
        """Panel of baseline household members: ``person_id, index_person_id, household_id, role, period, k``…"""
        return self._members

    @property
    def households(self) -> pd.DataFrame | None:
        """The household roster as given, roles normalised (None when not given)."""
        return self._households

    @property
    def sites(self) -> pd.DataFrame | None:
        """IPS sites with their fidelity assessments (None when not given)."""
        return self._sites

    @property
    def design(self) -> Design:
        return self._design

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def frequency(self) -> Frequency:
        return self._frequency

    @property
    def covariates(self) -> tuple[str, ...]:
        """Baseline covariate columns of ``persons`` (from the assignment table)."""
        return self._covariates

    @property
    def n_persons(self) -> int:
        return len(self._persons)

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Numeric panel columns usable as outcomes."""
        return tuple(c for c in self._panel.columns if c not in _PANEL_KEYS and c not in PANEL_CATEGORICAL
                     and pd.api.types.is_numeric_dtype(self._panel[c]))

    @property
    def categorical_outcomes(self) -> tuple[str, ...]:
        """Panel columns holding codes or categories (sector, worker class, contract…)."""
        return tuple(c for c in self._panel.columns if c not in _PANEL_KEYS and c not in self.outcomes)

    @property
    def k_range(self) -> tuple[int, int]:
        """Smallest and largest event time observed."""
        return int(self._k.min()), int(self._k.max())

    def require_outcome(self, outcome: str, *, categorical_ok: bool = False) -> None:
        """Raise :class:`DataContractError` unless ``outcome`` is a usable panel column."""
        if not isinstance(outcome, str):
            raise DataContractError(f"outcome must be a column name (str), got {type(outcome).__name__}",
                                    table="panel", fix=f"use one of {', '.join(self.outcomes)}.")
        if outcome not in self._panel.columns or outcome in _PANEL_KEYS:
            raise DataContractError(
                f"outcome {outcome!r} is not in the panel", table="panel", column=outcome,
                examples=list(self.outcomes), fix="choose one of the numeric panel columns listed.",
            )
        if outcome not in self.outcomes and not categorical_ok:
            raise DataContractError(
                f"outcome {outcome!r} is not numeric (it holds codes or categories)",
                table="panel", column=outcome, examples=list(self.outcomes),
                fix="choose a numeric outcome, or use the category-share effect of itt for categorical columns.",
            )

    def outcome_matrix(self, outcome: str, ks: Sequence[int] | np.ndarray) -> np.ndarray:
        """Outcome by person (rows aligned with ``persons``) and event time ``ks``.

        Returns a float64 array (n_persons, len(ks)) with NaN where the person has no
        observation at that k.
        """
        self.require_outcome(outcome)
        ks = np.asarray(ks, dtype=np.int64)
        out = np.full((self.n_persons, ks.size), np.nan)
        order = np.argsort(ks, kind="stable")
        sorted_ks = ks[order]
        pos = np.searchsorted(sorted_ks, self._k)
        pos_c = np.minimum(pos, ks.size - 1)
        hit = (pos < ks.size) & (sorted_ks[pos_c] == self._k)
        vals = self._panel[outcome].to_numpy(dtype=np.float64, na_value=np.nan)
        out[self._pidx[hit], order[pos_c[hit]]] = vals[hit]
        return out

    def outcome_at(self, outcome: str, horizon: int) -> pd.Series:
        """Outcome at event time ``horizon`` for every person (NaN = not observed)."""
        kmin, kmax = self.k_range
        if not kmin <= int(horizon) <= kmax:
            raise EstimationError(
                f"horizon {horizon} is outside the observed follow-up (k from {kmin} to {kmax})",
                table="panel", column="k", fix=f"choose a horizon between {kmin} and {kmax}.",
            )
        return pd.Series(self.outcome_matrix(outcome, [int(horizon)])[:, 0], name=outcome)

    # ------------------------------------------------------------------ reports
    def linkage_report(self) -> LinkageReport:
        """Match rates by arm and stratum, with Fisher's exact test of differential linkage."""
        from scipy.stats import fisher_exact

        p = self._persons
        by_arm = (p.groupby("arm")["linked"].agg(n_randomized="size", n_linked="sum")
                  .reset_index().assign(arm=lambda d: d["arm"].map({1: "IPS", 0: "control"})))
        by_arm["match_rate"] = by_arm["n_linked"] / by_arm["n_randomized"]
        by_stratum = (p.groupby(["stratum", "arm"])["linked"].agg(n_randomized="size", n_linked="sum")
                      .reset_index())
        by_stratum["arm"] = by_stratum["arm"].map({1: "IPS", 0: "control"})
        by_stratum["match_rate"] = by_stratum["n_linked"] / by_stratum["n_randomized"]
        tab = np.array([[int(((p.arm == a) & p.linked).sum()), int(((p.arm == a) & ~p.linked).sum())]
                        for a in (1, 0)])
        odds, pval = fisher_exact(tab)
        return LinkageReport(by_arm=by_arm, by_stratum=by_stratum, other_tables=self._extra_linkage.copy(),
                             odds_ratio=float(odds), p_value=float(pval))

    def consort(self) -> Consort:
        """Randomized → linked → followed up after randomization → IPS started, per arm."""
        p = self._persons
        rows = []

        def add(stage: str, mask: pd.Series) -> None:
            rows.append({"stage": stage, "n_ips": int((mask & (p.arm == 1)).sum()),
                         "n_control": int((mask & (p.arm == 0)).sum())})

        add("randomized", pd.Series(True, index=p.index))
        add("linked to the panel", p["linked"])
        add("observed after randomization (k ≥ 1)", p["k_max"].fillna(-np.inf) >= 1)
        if "ips_started" in p.columns:
            rows.append({"stage": "started IPS", "n_ips": int(((p.arm == 1) & (p.ips_started == 1)).sum()),
                         "n_control": int(((p.arm == 0) & (p.ips_started == 1)).sum())})
        return Consort(pd.DataFrame(rows))

    def with_outcome(self, name: str, values: pd.Series | np.ndarray | Callable[[pd.DataFrame], Any]) -> Study:
        """A new study whose panel has one more outcome column (e.g. a summary index).

        ``values`` is aligned with ``panel`` rows, or a callable on the panel.
        """
        if name in self._panel.columns:
            raise DataContractError(f"the panel already has a column {name!r}", table="panel", column=name,
                                    fix="choose another name.")
        vals = values(self._panel) if callable(values) else values
        arr = np.asarray(vals, dtype=np.float64)
        if arr.shape != (len(self._panel),):
            raise DataContractError(
                f"the new outcome has {arr.shape[0] if arr.ndim else 0} values but the panel has "
                f"{len(self._panel)} rows", table="panel", column=name,
                fix="pass one value per panel row (in panel order).")
        panel = self._panel.assign(**{name: arr})
        panel["_pidx"] = self._pidx
        return Study(_token=_BUILD_TOKEN, persons=self._persons, panel=panel, members=self._members,
                     households=self._households, design=self._design, ledger=self._ledger,
                     frequency=self._frequency, covariates=self._covariates,
                     extra_linkage=self._extra_linkage, sites=self._sites)

    def __repr__(self) -> str:
        kmin, kmax = self.k_range
        n1, n0 = self._design.n_treated, self._design.n_control
        return (f"Study: {self.n_persons} randomized ({n1} IPS, {n0} control) in "
                f"{self._design.n_strata} strata; panel {len(self._panel)} rows at frequency "
                f"{self._frequency}, k from {kmin} to {kmax}; {self._members['person_id'].nunique()} "
                f"household members; ledger {len(self._ledger)} entries")


_BUILD_TOKEN = object()


# ---------------------------------------------------------------------- helpers
def _build_persons(assignment: pd.DataFrame, freq: Frequency) -> pd.DataFrame:
    a = assignment.copy()
    V.check_unique(a, "assignment", ("person_id",), what="person")
    a["arm"] = V.parse_arm(a["arm"])
    if "randomization_period" in a.columns:
        rp, _ = parse_periods(a["randomization_period"], freq, table="assignment", column="randomization_period")
        a["randomization_period"] = rp
        if "randomization_date" in a.columns:
            a["randomization_date"] = pd.to_datetime(a["randomization_date"], errors="coerce")
        else:
            a["randomization_date"] = (rp.dt.start_time if isinstance(rp.dtype, pd.PeriodDtype)
                                       else pd.Series(pd.NaT, index=a.index))
    else:
        raw = a["randomization_date"]
        dates = pd.to_datetime(raw, errors="coerce") if not pd.api.types.is_datetime64_any_dtype(raw) else raw
        bad = dates.isna()
        if bad.any():
            raise DataContractError(
                "has missing or unparseable randomization dates", table="assignment",
                column="randomization_date", n_rows=int(bad.sum()),
                examples=[f"{pid}: {raw[i]!r}" for i, pid in a.loc[bad, "person_id"].items()][:5],
                fix="write dates as YYYY-MM-DD; every randomized person needs one.",
            )
        a["randomization_date"] = dates.dt.normalize()
        a["randomization_period"] = date_to_period(a["randomization_date"], freq)
    if "region" in a.columns:
        a["region"] = _normalise_region(a["region"])
    if "stratum" not in a.columns:
        a["stratum"] = a["region"] if "region" in a.columns else "all"
    if a["stratum"].isna().any():
        mask = a["stratum"].isna()
        raise DataContractError("has missing strata", table="assignment", column="stratum",
                                n_rows=int(mask.sum()), examples=a.loc[mask, "person_id"].tolist(),
                                fix="fill the randomization block of every person.")
    a["stratum"] = a["stratum"].astype(str)
    a = a.sort_values("person_id", kind="stable").reset_index(drop=True)
    first = ["person_id", "arm", "stratum", "randomization_period", "randomization_date"]
    return a[first + [c for c in a.columns if c not in first]]


def _derive(panel: pd.DataFrame) -> pd.DataFrame:
    """Derived outcomes: ``employed`` from sep_code / n_jobs when absent; ``work_on_di``."""
    if "employed" not in panel.columns:
        if "sep_code" in panel.columns:
            code = pd.to_numeric(panel["sep_code"], errors="coerce")
            first = np.floor(code / 10 ** np.floor(np.log10(code.where(code > 0)))).astype("float64")
            panel = panel.assign(employed=np.where(code.isna(), np.nan, (first == 1).astype(float)))
        elif "n_jobs" in panel.columns:
            emp = (panel["n_jobs"] > 0).astype(float)
            if "self_employed" in panel.columns:
                emp = np.maximum(emp, panel["self_employed"].fillna(0))
            panel = panel.assign(employed=emp.where(panel["n_jobs"].notna()))
    if "work_on_di" not in panel.columns and {"employed", "on_di"} <= set(panel.columns):
        e, d = panel["employed"].astype(float), panel["on_di"].astype(float)
        panel = panel.assign(work_on_di=(e * d).where(e.notna() & d.notna()))
    return panel


def _merge_benefits(panel: pd.DataFrame, benefits: pd.DataFrame, freq: Frequency, ledger: Ledger,
                    pid_index: pd.Index) -> tuple[pd.DataFrame, dict[str, Any]]:
    if freq in ("int", "W"):
        raise DataContractError(
            "monthly benefit records cannot be aggregated to a panel of "
            + ("integer" if freq == "int" else "weekly") + " periods",
            table="benefits", column="month",
            fix="give the panel calendar periods (quarters, months or years), or aggregate the benefits yourself.",
        )
    months, _ = parse_periods(benefits["month"], "M", table="benefits", column="month")
    V.check_unique(benefits.assign(month=months), "benefits", ("person_id", "month"), what="person × month")
    b = benefits.drop(columns="month").assign(period=months.dt.asfreq({"Q": "Q-DEC", "M": "M", "Y": "Y-DEC"}[freq]))
    flags = [c for c in ("on_di", "authorised_work") if c in b.columns]
    cats = [c for c in b.columns if c not in flags + ["person_id", "period"]
            and not pd.api.types.is_numeric_dtype(b[c])]
    nums = [c for c in b.columns if c not in flags + cats + ["person_id", "period"]]
    g = b.groupby(["person_id", "period"], sort=False)
    parts = []
    if flags:
        parts.append(g[flags].max())  # "any month in the period"
    if nums:
        parts.append(g[nums].mean())  # monthly mean over the months observed
    if cats:
        parts.append(g[cats].last())  # status at the end of the period, as LMD codes do
    agg = pd.concat(parts, axis=1).reset_index()
    keys = pd.MultiIndex.from_frame(panel[["person_id", "period"]])
    akeys = pd.MultiIndex.from_frame(agg[["person_id", "period"]])
    pos = keys.get_indexer(akeys)
    unmatched = pos < 0
    if unmatched.any():
        ledger.add("benefits", "benefit months with no panel row for that person and period",
                   int(b.set_index(["person_id", "period"]).index.isin(akeys[unmatched]).sum()),
                   n_persons=int(agg.loc[unmatched, "person_id"].nunique()), action="dropped")
    panel = panel.copy()
    for col in flags + nums + cats:
        vals = agg[col].to_numpy()[~unmatched]
        if col in panel.columns:
            current = panel[col].to_numpy(copy=True)
            tgt = pos[~unmatched]
            # count only cells that really change: missing in the panel, known in the records
            fill = pd.isna(current[tgt]) & ~pd.isna(vals)
            if fill.any():
                current = current.astype(object) if cats and col in cats else current
                current[tgt[fill]] = vals[fill]
                ledger.add("panel", f"missing '{col}' filled from the monthly benefit records", int(fill.sum()),
                           column=col, action="filled")
            panel[col] = current
        else:
            dtype = np.float64 if col in flags + nums else object
            full = np.full(len(panel), np.nan if dtype is np.float64 else None, dtype=dtype)
            full[pos[~unmatched]] = vals
            panel[col] = full
    matched = int(pid_index.isin(benefits["person_id"]).sum())
    return panel, {"table": "benefits", "n_persons_randomized": len(pid_index),
                   "n_persons_matched": matched, "n_rows_unmatched": int(unmatched.sum())}


def _clean_roster(roster: pd.DataFrame) -> pd.DataFrame:
    r = roster.copy()
    r["role"] = V.normalise_roles(r["role"])
    for c in ("valid_from", "valid_to"):
        if c in r.columns:
            raw = r[c]
            r[c] = pd.to_datetime(raw, errors="coerce")
            bad = raw.notna() & r[c].isna()
            if bad.any():
                raise DataContractError("has unparseable dates", table="households", column=c,
                                        n_rows=int(bad.sum()), examples=r.loc[bad, "person_id"].tolist(),
                                        fix="write dates as YYYY-MM-DD (empty = open).")
        else:
            r[c] = pd.NaT
    inverted = r["valid_from"].notna() & r["valid_to"].notna() & (r["valid_to"] < r["valid_from"])
    if inverted.any():
        raise DataContractError("has memberships that end before they start", table="households",
                                column=["valid_from", "valid_to"], n_rows=int(inverted.sum()),
                                examples=r.loc[inverted, "person_id"].tolist(),
                                fix="swap or correct valid_from / valid_to.")
    V.check_household_overlaps(r)
    return r


def _baseline_members(persons: pd.DataFrame, roster: pd.DataFrame,
                      ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Members of each index person's household at the randomization date.

    Returns the persons (household at randomization filled from the roster), the
    member → index-person map, and the keys of members who joined later or had left
    (their panel rows are set aside under the baseline-roster rule).
    """
    p = persons
    date = p["randomization_date"]
    if "household_id" not in p.columns or p["household_id"].isna().any():
        # household at randomization from the roster
        idx_rows = roster.merge(p[["person_id", "randomization_date"]], on="person_id")
        valid = ((idx_rows["valid_from"].isna() | (idx_rows["valid_from"] <= idx_rows["randomization_date"]))
                 & (idx_rows["valid_to"].isna() | (idx_rows["valid_to"] >= idx_rows["randomization_date"])))
        hh_at = idx_rows.loc[valid].drop_duplicates("person_id").set_index("person_id")["household_id"]
        given = p["household_id"] if "household_id" in p.columns else pd.Series(np.nan, index=p.index, dtype=object)
        p = p.assign(household_id=given.fillna(p["person_id"].map(hh_at)))
    idx = p.loc[p["household_id"].notna(), ["person_id", "household_id", "randomization_date", "arm"]]
    cand = roster.merge(idx.rename(columns={"person_id": "index_person_id"}), on="household_id")
    cand = cand[cand["person_id"] != cand["index_person_id"]]
    randomized = cand["person_id"].isin(p["person_id"])
    if randomized.any():
        n1, n0 = _arm_counts(cand.loc[randomized, "arm"])
        ledger.add("households", "members who are themselves randomized (analysed as participants, not "
                   "as members of another participant's household)", int(randomized.sum()),
                   n_treated=n1, n_control=n0, action="set aside")
    cand = cand[~randomized]
    d = cand["randomization_date"]
    joined_later = cand["valid_from"].notna() & (cand["valid_from"] > d)
    left_before = cand["valid_to"].notna() & (cand["valid_to"] < d)
    for mask, why in ((joined_later, "members who joined the household after the index person's "
                                     "randomization (post-treatment; not in the baseline roster)"),
                      (left_before, "members who had left the household before randomization")):
        if mask.any():
            n1, n0 = _arm_counts(cand.loc[mask, "arm"])
            ledger.add("households", why, int(mask.sum()), n_persons=int(cand.loc[mask, "person_id"].nunique()),
                       n_treated=n1, n_control=n0, action="set aside")
    base = cand[~joined_later & ~left_before]
    mislabeled = base["role"] == "index"
    if mislabeled.any():
        ledger.add("households", "members labelled 'index' who are not the randomized person (role set to "
                   "'other')", int(mislabeled.sum()), column="role", action="repaired")
        base = base.assign(role=base["role"].where(~mislabeled, "other"))
    members_map = base[["person_id", "index_person_id", "household_id", "role"]].reset_index(drop=True)
    later_ids = sorted(set(cand.loc[joined_later | left_before, "person_id"]) - set(members_map["person_id"]))
    not_in_roster = p["household_id"].isna()
    if not_in_roster.any():
        n1, n0 = _arm_counts(p.loc[not_in_roster, "arm"])
        ledger.add("households", "randomized persons without a household at randomization in the roster "
                   "(no members linked)", int(not_in_roster.sum()), n_treated=n1, n_control=n0,
                   action="kept, no members")
    return p, members_map, later_ids


def _members_panel(rows: pd.DataFrame, members_map: pd.DataFrame, persons: pd.DataFrame,
                   freq: Frequency) -> pd.DataFrame:
    cols = ["person_id", "index_person_id", "household_id", "role", "period", "k"]
    if members_map.empty or rows.empty:
        extra = [c for c in rows.columns if c not in ("person_id", "period")]
        return pd.DataFrame(columns=cols + extra)
    m = rows.merge(members_map, on="person_id", how="inner")
    rp = persons.set_index("person_id")["randomization_period"]
    idx_period = pd.Index(rp.index).get_indexer(m["index_person_id"])
    m["k"] = period_ordinals(m["period"]) - period_ordinals(rp.iloc[idx_period].reset_index(drop=True))
    m = m.sort_values(["index_person_id", "person_id", "k"], kind="stable").reset_index(drop=True)
    return m[cols + [c for c in m.columns if c not in cols]]


def _check_sites_table(sites: pd.DataFrame, assignment: pd.DataFrame, ledger: Ledger) -> pd.DataFrame:
    """Validate the fidelity table; sites unknown to the assignment go to the ledger."""
    from ips_impact.roster import check_sites

    V.check_not_empty(sites, "sites")
    check_sites(sites)  # raises on missing columns, scores outside 25–125, bad dates
    out = sites.rename(columns={"fidelity_score": "fidelity"}).reset_index(drop=True)
    if "site" in assignment.columns:
        known = set(assignment["site"].dropna().astype(str))
        unknown = ~out["site"].astype(str).isin(known)
        if unknown.any():
            ledger.add("sites", "fidelity rows of sites where no randomized person was enrolled",
                       int(unknown.sum()), column="site", action="kept, unused")
        missing = sorted(known - set(out["site"].astype(str)))
        if missing:
            ledger.add("sites", "sites of randomized persons without a fidelity assessment",
                       len(missing), column="site", action="fidelity missing")
    return out


def _merge_takeup(persons: pd.DataFrame, takeup: pd.DataFrame, ledger: Ledger) -> tuple[pd.DataFrame, dict]:
    V.check_unique(takeup, "takeup", ("person_id",), what="person")
    t = takeup.copy()
    if "ips_start_date" in t.columns:
        raw = t["ips_start_date"]
        t["ips_start_date"] = pd.to_datetime(raw, errors="coerce")
        bad = raw.notna() & t["ips_start_date"].isna()
        if bad.any():
            raise DataContractError("has unparseable dates", table="takeup", column="ips_start_date",
                                    n_rows=int(bad.sum()), examples=t.loc[bad, "person_id"].tolist(),
                                    fix="write dates as YYYY-MM-DD (empty = never started).")
        if "ips_started" not in t.columns:
            t["ips_started"] = t["ips_start_date"].notna().astype(float)
    unknown = ~t["person_id"].isin(persons["person_id"])
    if unknown.any():
        ledger.add("takeup", "take-up rows of persons who were not randomized", int(unknown.sum()),
                   action="dropped")
    t = t[~unknown]
    keep = ["person_id", "ips_started"] + (["ips_start_date"] if "ips_start_date" in t.columns else [])
    out = persons.merge(t[keep], on="person_id", how="left")
    absent = out["ips_started"].isna()
    if absent.any():
        n1, n0 = _arm_counts(out.loc[absent, "arm"])
        ledger.add("takeup", "randomized persons absent from the take-up list (assumed not to have started "
                   "IPS)", int(absent.sum()), column="ips_started", n_treated=n1, n_control=n0,
                   action="assumed 0")
        out["ips_started"] = out["ips_started"].fillna(0.0)
    out["ips_started"] = out["ips_started"].astype("int8")
    return out, {"table": "takeup", "n_persons_randomized": len(persons),
                 "n_persons_matched": int((~absent).sum()), "n_rows_unmatched": int(unknown.sum())}


def load_study(
    path: str | Path,
    *,
    frequency: str | None = None,
    column_map: ColumnMap | Mapping[str, object] | str | Path | None = None,
) -> Study:
    """Read a folder holding ``assignment.*`` and ``panel.*`` (and optionally
    ``households.*``, ``benefits.*``, ``takeup.*``, ``sites.*``) as parquet or csv, then build the
    :class:`Study` (see :meth:`Study.from_frames`).
    """
    files = find_table_files(path)
    frames = {name: read_table(f, table=name) for name, f in files.items()}
    study = Study.from_frames(
        frames.pop("assignment"), frames.pop("panel"),
        households=frames.get("households"), benefits=frames.get("benefits"),
        takeup=frames.get("takeup"), sites=frames.get("sites"), frequency=frequency,
        column_map=column_map,
    )
    study._sources = {name: str(f) for name, f in files.items()}
    return study
