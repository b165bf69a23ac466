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

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ips_impact import link as L
from ips_impact import validate as V
from ips_impact.design import Design
from ips_impact.errors import DataContractError, DataWarning, EstimationError, LinkageError, UsageError
from ips_impact.io.duck import Outside
from ips_impact.io.mapping import ColumnMap
from ips_impact.io.periods import (
    Frequency,
    date_to_period,
    normalise_frequency,
    parse_periods,
    period_ordinals,
)
from ips_impact.io.readers import CODES_ATTR, TABLE_NAMES, TEXT_COLUMNS, find_table_files, read_table
from ips_impact.io.schema import KEY_COLUMNS, PANEL_CATEGORICAL
from ips_impact.ledger import Ledger

LinkageReport = L.LinkageReport

__all__ = ["Study", "load_study", "LinkageReport", "Consort"]

_ASSIGNMENT_RESERVED = ("person_id", "arm", "randomization_date", "randomization_period", "stratum",
                        "region", "site", "household_id")
_PANEL_KEYS = ("person_id", "period", "k")


#: Stage names of :meth:`Study.consort` that other modules read (the brief's flow figure).
CONSORT_LOST = "lost to follow-up (no period after randomization)"
CONSORT_ANALYSED = "analysed (observed after randomization, k ≥ 1)"


@dataclass(frozen=True)
class Consort:
    """CONSORT-style flow per arm: randomized → linked → analysed (and lost) → IPS started."""

    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """Return the flow as a frame (stage, n_ips, n_control)."""
        return self.table.copy()

    def __repr__(self) -> str:
        return "CONSORT flow\n" + self.table.to_string(index=False)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)

    def plot(self, ax: Any = None) -> Any:
        """Draw the flow as two columns of boxes (IPS, control), losses to the side; returns the Axes."""
        import matplotlib.pyplot as plt

        main = [r for r in self.table.itertuples(index=False) if r.stage != CONSORT_LOST]
        lost = [r for r in self.table.itertuples(index=False) if r.stage == CONSORT_LOST]
        n = len(main)
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 1.2 + 1.1 * n))
        ax.set_axis_off()
        ax.set_xlim(0, 3.4)
        ax.set_ylim(-0.5, n - 0.3)
        for col, (label, x) in enumerate((("IPS", 0.6), ("control", 2.0))):
            ax.text(x, n - 0.45, label, ha="center", va="center", fontsize=11, fontweight="bold")
            for i, row in enumerate(main):
                y = n - 1 - i
                val = row.n_ips if col == 0 else row.n_control
                txt = f"{row.stage}\nn = {val}" if pd.notna(val) else f"{row.stage}\n—"
                ax.text(x, y, txt, ha="center", va="center", fontsize=9,
                        bbox=dict(boxstyle="round,pad=0.4", fc="#eef3f8", ec="#4a6fa5"))
                if i:
                    ax.annotate("", xy=(x, y + 0.28), xytext=(x, y + 0.72),
                                arrowprops=dict(arrowstyle="->", color="#4a6fa5"))
                if lost and row.stage == CONSORT_ANALYSED:
                    lv = lost[0].n_ips if col == 0 else lost[0].n_control
                    ax.text(x + 0.62, y + 0.5, f"lost to follow-up\nn = {lv}", ha="left", va="center",
                            fontsize=8, bbox=dict(boxstyle="round,pad=0.3", fc="#fbeeee", ec="#a54a4a"))
                    ax.annotate("", xy=(x + 0.6, y + 0.5), xytext=(x, y + 0.5),
                                arrowprops=dict(arrowstyle="->", color="#a54a4a", ls="--"))
        return ax


class Study:
    """A validated, linked trial: persons, event-time panel, household members, design, ledger.

    Build it with :meth:`from_frames` or :func:`load_study`; do not call the
    constructor directly. All attributes are read-only: ``persons``, ``panel`` and
    ``members`` return copies, so editing them changes no estimate; the arm has one
    source of truth, :attr:`design` (``persons["arm"]`` is a copy of ``design.arm``).

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
        # drop the row-to-person index without copying the panel (the new frame holds views)
        self._panel = pd.DataFrame({c: self._panel[c] for c in self._panel.columns if c != "_pidx"}, copy=False)
        self._k = self._panel["k"].to_numpy()
        # event time as a small offset (k spans a few dozen periods): outcome_matrix looks it up
        self._kmin = int(self._k.min()) if self._k.size else 0
        span = int(self._k.max()) - self._kmin if self._k.size else 0
        self._k_offset = (self._k - self._kmin).astype(np.int16 if span < 2**15 else np.int64)
        self._k_span = span
        self._dense = _dense_rows(self._pidx, self._k, len(self._persons))
        self._extra_linkage: pd.DataFrame = parts["extra_linkage"]
        self._sites: pd.DataFrame | None = parts.get("sites")
        self._near_misses: pd.DataFrame = (parts["near_misses"] if "near_misses" in parts
                                           else L.near_misses("panel", [], []))  # not built when given
        self._min_linked_share: float = parts.get("min_linked_share", 0.5)
        self._categorical: tuple[str, ...] = parts.get("categorical", ())
        self._key_columns: tuple[str, ...] = parts.get("key_columns", ())

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
        date_order: str | None = None,
        min_linked_share: float | None = None,
        _decode: Sequence[str] = (),
        _owned: bool = False,
        _outside: Outside | None = None,
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
            amounts as the monthly mean, codes as the last month of the period.
        takeup
            ``person_id`` with ``ips_started`` (0/1) or ``ips_start_date``.
        sites
            IPS programme fidelity: ``site``, ``fidelity`` (total of the 25-item IPS
            fidelity scale, 25–125), optional ``assessment_date``; one row per
            assessment. Used by ``heterogeneity(by="fidelity")`` and ``by="site"``.
        frequency
            ``"Q"``, ``"M"``, ``"Y"``, ``"W"`` or ``"int"``; detected when omitted (an
            ambiguous period column is refused with the readings it allows).
        column_map
            The delivery's mapping (dict, :class:`ColumnMap` or a TOML path): column
            renames, recodings, keys, date order, period format (see ``docs/data.md``).
        date_order
            ``"DMY"``, ``"MDY"`` or ``"YMD"`` for text dates like ``02/05/2018``
            (overrides the mapping file's).
        min_linked_share
            Refuse the study when, in either arm, fewer than this share of the
            randomized persons link to the panel (default 0.5, or the mapping file's
            ``[linkage] min_share``). Any shortfall above it is a :class:`DataWarning`.

        Raises
        ------
        DataContractError, LinkageError, DesignError
            With the table, column, number of rows, examples and the fix.
        """
        cmap = ColumnMap.coerce(column_map)
        ledger = Ledger()
        opts = {t: cmap.read_options(t) for t in ("assignment", "panel", "households", "benefits", "takeup")}
        order = {t: date_order or o.date_order for t, o in opts.items()}
        share = (min_linked_share if min_linked_share is not None else
                 cmap.min_linked_share if cmap.min_linked_share is not None else 0.5)
        if not 0 <= float(share) <= 1:
            raise UsageError(f"min_linked_share must be between 0 and 1, got {share!r}",
                             fix="pass e.g. min_linked_share=0.5.")

        def prepare(frame: pd.DataFrame, table: str, keep_codes: tuple[str, ...] = ()) -> pd.DataFrame:
            return V.validate_table(cmap.apply(frame, table), table, keys=cmap.key_columns(table),
                                    categorical=cmap.categorical(table), keep_codes=keep_codes)

        assignment = prepare(assignment, "assignment")
        # the panel's keys and periods may come as codes (load_study reads them so): they are
        # validated on their distinct values and decoded once, for the rows the study keeps
        # (so may other text columns of the panel: ``_decode`` names those load_study read as
        # codes, decoded to text the same way once the rows are cut)
        decode = tuple(c for c in _decode if c not in ("person_id", "period"))
        panel = prepare(panel, "panel", keep_codes=("person_id", "period", *decode))
        frequency = normalise_frequency(frequency or opts["panel"].frequency or opts["panel"].period_format)

        if sites is not None:
            sites = _check_sites_table(cmap.apply(sites, "sites"), assignment, ledger)

        # ---- panel periods (the study frequency comes from here)
        periods, freq = parse_periods(panel["period"], frequency, table="panel", column="period")
        panel = panel.copy(deep=False)  # setting a column never writes into the caller's arrays
        panel["period"] = periods
        pcodes, pkeys = _key_codes(panel["person_id"])  # the panel's keys as compact codes
        ords = period_ordinals(panel["period"])
        if not _unique_person_period(pcodes, ords):  # fast check; the rule names the rows
            V.check_unique(panel, "panel", ("person_id", "period"), what="person × period")
        V.check_earnings_ceiling(panel, "panel", freq)

        persons = L.build_persons(assignment, freq, date_order=order["assignment"])
        declared_keys = set(cmap.key_columns("assignment"))
        categorical = tuple(cmap.categorical("assignment"))
        covariates = tuple(c for c in persons.columns if c not in _ASSIGNMENT_RESERVED
                           and c not in ("randomization_date", "randomization_period")
                           and not V.is_key_like(c, declared_keys))

        # ---- a stratum holding one arm has no within-stratum contrast: set aside
        lone = V.check_contrast(persons["arm"], persons["stratum"])
        set_aside_ids: list[str] = []
        if lone.any():
            n1, n0 = L.arm_counts(persons.loc[lone, "arm"])
            strata = sorted(persons.loc[lone, "stratum"].unique())
            ledger.add("assignment", "randomized persons in strata holding one arm only (no within-stratum "
                       "contrast; set aside as estimatr drops such blocks)", int(lone.sum()), column="stratum",
                       n_persons=int(lone.sum()), n_treated=n1, n_control=n0, action="set aside")
            warnings.warn(
                f"{len(strata)} randomization strata hold one arm only ({', '.join(map(str, strata[:5]))}"
                f"{'…' if len(strata) > 5 else ''}); their {int(lone.sum())} persons ({n1} IPS, {n0} control) "
                "are set aside (see the ledger). Merge such blocks with neighbours if the design allows.",
                DataWarning, stacklevel=2,
            )
            set_aside_ids = persons.loc[lone, "person_id"].tolist()
            persons = persons.loc[~lone].reset_index(drop=True)
            V.check_contrast(persons["arm"], persons["stratum"])
        pid_index = pd.Index(persons["person_id"])

        # ---- benefits → panel frequency
        extra_linkage = []
        near = []
        if benefits is not None:
            benefits = prepare(benefits, "benefits")
            for c in ("person_id", *decode):
                if c in panel.columns:
                    panel[c] = V.decode_text(panel[c])
            decode = ()
            panel, info = L.merge_benefits(panel, benefits, freq, ledger, pid_index)
            extra_linkage.append(info)
            unmatched = pid_index.difference(pd.Index(benefits["person_id"].unique()))
            near.append(L.near_misses("benefits", unmatched, benefits["person_id"].unique()))

        # ---- households: roster at randomization
        roster = None
        members_map = pd.DataFrame(columns=["person_id", "index_person_id", "household_id", "role"])
        later_ids: list[str] = []
        if households is not None:
            roster = L.clean_roster(prepare(households, "households"), ledger, date_order=order["households"])
            persons, members_map, later_ids = L.baseline_members(persons, roster, ledger)

        # ---- take-up
        if takeup is not None:
            takeup = prepare(takeup, "takeup")
            persons, info = L.merge_takeup(persons, takeup, ledger, date_order=order["takeup"])
            extra_linkage.append(info)
            unmatched = pid_index.difference(pd.Index(takeup["person_id"].unique()))
            near.append(L.near_misses("takeup", unmatched, takeup["person_id"].unique()))

        # ---- split panel rows: randomized persons / baseline members / set aside / neither
        # each lookup runs on the distinct keys once, then is spread to the rows by code
        if benefits is not None:  # the merge made new panel rows
            pcodes, pkeys = pd.factorize(panel["person_id"])
            ords = period_ordinals(panel["period"])
        pkeys = pd.Index(pkeys, dtype=object)
        pidx = pid_index.get_indexer(pkeys)[pcodes]
        key_text = pkeys.to_numpy(dtype=object)
        is_person = pidx >= 0
        member_ids = pd.Index(members_map["person_id"].unique())
        is_member = (member_ids.get_indexer(pkeys) >= 0)[pcodes]
        later = pd.Index(later_ids)
        is_later = (~is_person & ~is_member) & (later.get_indexer(pkeys) >= 0)[pcodes]
        if is_later.any():
            ledger.add("panel", "rows of household members who were not in the household at the index "
                       "person's randomization (baseline roster rule)", int(is_later.sum()),
                       n_persons=_n_distinct(pcodes, is_later), action="set aside")
        is_aside = (~is_person & ~is_member & ~is_later) & pkeys.isin(set_aside_ids)[pcodes]
        if is_aside.any():
            ledger.add("panel", "rows of persons set aside with their one-arm stratum", int(is_aside.sum()),
                       n_persons=_n_distinct(pcodes, is_aside), action="set aside")
        neither = ~is_person & ~is_member & ~is_later & ~is_aside
        # rows load_study(engine="duckdb") left out in SQL are of such persons too (io/duck.py)
        out_rows, out_persons = (_outside.n_rows, _outside.n_persons) if _outside is not None else (0, 0)
        if neither.any() or out_rows:
            ledger.add("panel", "rows of persons neither randomized nor in a baseline household roster",
                       int(neither.sum()) + out_rows,
                       n_persons=_n_distinct(pcodes, neither) + out_persons, action="dropped")

        rand_period_ord = period_ordinals(persons["randomization_period"])
        # one sort and one gather of the randomized persons' rows (by person, then k)
        # (None: every row, already in that order, as extracts sorted by person and period come)
        rows = None if bool(is_person.all()) else np.flatnonzero(is_person)
        main_pidx = pidx if rows is None else pidx[rows]
        main_k = rand_period_ord[main_pidx]  # k = period - randomization period, in place
        np.subtract(ords if rows is None else ords[rows], main_k, out=main_k)
        order_rows = _person_k_order(main_pidx, main_k)
        if order_rows is None:
            take = rows
        else:
            take = order_rows if rows is None else rows[order_rows]
            main_k, main_pidx = main_k[order_rows], main_pidx[order_rows]
        del rows, order_rows, pidx, periods, ords  # 8 bytes a row each: not kept through the gather
        # what is needed of the other rows is taken first, so that each column of the file's
        # frame is freed as soon as it is gathered (peak: the file's frame plus one column)
        member_rows = panel.loc[is_member]
        member_rows = member_rows.assign(person_id=key_text[pcodes[is_member]],
                                         **{c: V.decode_text(member_rows[c]) for c in decode if c in member_rows})
        # members' keys may be the near misses (in order of first appearance, as .unique() gives)
        panel_unmatched = key_text[pd.unique(pcodes[~is_person])]
        if _outside is not None and len(_outside.keys):
            panel_unmatched = np.concatenate([np.asarray(panel_unmatched, dtype=object), _outside.keys])
        # rows already in study order in frames nobody else holds (load_study's): no copy
        in_place = _owned and take is None
        source = {c: panel[c] for c in panel.columns}
        del panel
        gathered = {}
        for c in list(source):
            col = source.pop(c)
            if c == "person_id":  # decoded once, for the rows kept: shared strings, no text per row
                values = key_text[pcodes if take is None else pcodes[take]]
                del pcodes
            else:
                values = col.array if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col.to_numpy()
                if not in_place:  # a copy: the caller keeps its frame
                    values = values.take(np.arange(len(col)) if take is None else take)
                if c in decode:
                    values = V.decode_text(pd.Series(values)).to_numpy()
            del col
            gathered[c] = values
        main = pd.DataFrame(gathered, copy=False)
        del gathered, take
        main["k"] = main_k
        main["_pidx"] = main_pidx
        del main_k, main_pidx
        main = L.derive_outcomes(main)
        # the column order without a copy: the new frame holds views of the gathered columns
        main = pd.DataFrame({c: main[c] for c in ["person_id", "period", "k"]
                             + sorted(c for c in main.columns if c not in _PANEL_KEYS)}, copy=False)

        # ---- persons: follow-up and linkage
        counts = np.bincount(main["_pidx"].to_numpy(), minlength=len(persons))
        persons["linked"] = counts > 0
        # rows come by person, then k: a person's first row holds k_min, the last k_max
        ks = main["k"].to_numpy()
        last = np.cumsum(counts) - 1
        linked = counts > 0
        k_min = np.full(len(persons), np.nan)
        k_max = np.full(len(persons), np.nan)
        k_min[linked] = ks[(last - counts + 1)[linked]]
        k_max[linked] = ks[last[linked]]
        persons["k_min"] = k_min
        persons["k_max"] = k_max
        unlinked = ~persons["linked"]
        if unlinked.any():
            n1, n0 = L.arm_counts(persons.loc[unlinked, "arm"])
            ledger.add("assignment", "randomized persons with no panel row (kept in persons, missing in "
                       "every outcome)", int(unlinked.sum()), n_persons=int(unlinked.sum()),
                       n_treated=n1, n_control=n0, action="kept, unlinked")
        never = persons["linked"] & (persons["k_max"] < 0)
        if never.any():
            n1, n0 = L.arm_counts(persons.loc[never, "arm"])
            what = (f"the panel of {int(never.sum())} randomized persons ({n1} IPS, {n0} control) ends before "
                    "their randomization period: no period after assignment is observed")
            fix = ("ask for an extract that covers the follow-up, or check the randomization dates "
                   "(date_order, dd/mm vs mm/dd) and the period format (quarters vs months)")
            if bool(never[persons["linked"]].all()):
                raise DataContractError(
                    what + " — for every linked person", table="panel", column="period",
                    n_rows=int(len(main)), fix=fix + ".")
            ledger.add("assignment", "randomized persons whose panel ends before randomization (no follow-up)",
                       int(never.sum()), column="period", n_persons=int(never.sum()), n_treated=n1,
                       n_control=n0, action="kept, no follow-up")
            warnings.warn(f"table 'panel': {what}. Fix: {fix}.", DataWarning, stacklevel=2)
        near.insert(0, L.near_misses("panel", persons.loc[unlinked, "person_id"], panel_unmatched))
        near_frame = pd.concat([n for n in near if len(n)], ignore_index=True) if any(len(n) for n in near) \
            else L.near_misses("panel", [], [])
        _check_linkage(persons, share, near_frame)

        # ---- members panel
        members = L.members_panel(member_rows, members_map, persons, freq)
        members = L.derive_outcomes(members)
        mfirst = ["person_id", "index_person_id", "household_id", "role", "period", "k"]
        members = members[mfirst + sorted(c for c in members.columns if c not in mfirst)]

        # ---- design
        strata_codes, strata_labels = pd.factorize(persons["stratum"], sort=True)
        hh = None
        if "household_id" in persons.columns:
            hcodes = _sorted_codes(persons["household_id"])
            hh = hcodes
        design = Design(arm=persons["arm"].to_numpy(), stratum=strata_codes,
                        stratum_labels=tuple(str(s) for s in strata_labels), household=hh)

        return cls(
            _token=_BUILD_TOKEN, persons=persons, panel=main, members=members,
            households=roster, design=design, ledger=ledger.freeze(), frequency=freq,
            covariates=covariates, sites=sites, near_misses=near_frame, min_linked_share=float(share),
            categorical=categorical,
            key_columns=tuple(sorted(declared_keys | set(cmap.key_columns("panel")))),
            extra_linkage=pd.DataFrame(extra_linkage, columns=["table", "n_persons_randomized",
                                                               "n_persons_matched", "n_rows_unmatched"]),
        )

    # ------------------------------------------------------------------ accessors
    @property
    def persons(self) -> pd.DataFrame:
        """One row per randomized person, sorted by ``person_id`` (a copy: edits change nothing).

        ``arm`` is taken from :attr:`design`, the one source of truth of the assignment.
        """
        out = self._persons.copy()
        out["arm"] = self._design.arm.astype("int8")
        return out

    def _persons_frame(self) -> pd.DataFrame:
        """Return the persons table itself, for the estimators' reading (no copy: they never write to it).

        Its ``arm`` equals :attr:`design`'s (both are fixed when the Study is built and
        the Study cannot be changed); :attr:`persons` is the copy users get.
        """
        return self._persons

    @property
    def panel(self) -> pd.DataFrame:
        """Person × period rows of the randomized persons with event time ``k`` (a copy)."""
        return self._panel.copy()

    @property
    def members(self) -> pd.DataFrame:
        """Baseline household members' panel (a copy).

        Columns ``person_id, index_person_id, household_id, role, period, k`` and the panel's.
        """
        return self._members.copy()

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
        """How the arm was assigned (the one source of truth of the arm)."""
        return self._design

    @property
    def ledger(self) -> Ledger:
        """Every row set aside, repaired or assumed (frozen)."""
        return self._ledger

    @property
    def frequency(self) -> Frequency:
        """Period frequency of the panel: ``"Q"``, ``"M"``, ``"Y"``, ``"W"`` or ``"int"``."""
        return self._frequency

    @property
    def covariates(self) -> tuple[str, ...]:
        """Baseline covariate columns of ``persons`` (from the assignment table; keys excluded)."""
        return self._covariates

    @property
    def categorical_covariates(self) -> tuple[str, ...]:
        """Covariates the user asked to treat as categorical (the mapping file's ``categorical``)."""
        return tuple(c for c in self._categorical if c in self._covariates)

    @property
    def min_linked_share(self) -> float:
        """The linkage threshold the study was built with (each arm links at least this share)."""
        return self._min_linked_share

    def is_key(self, column: str) -> bool:
        """Tell whether a column is key-like (person, household, partner, employer ids, declared keys)."""
        return V.is_key_like(column, self._key_columns)

    def require_covariate(self, covariate: str, *, categorical_ok: bool | None = None,
                          role: str = "covariate") -> str:
        """Check that ``covariate`` may be used as a covariate or moderator; return its kind.

        Returns ``"numeric"`` or ``"categorical"``. A categorical column is allowed only
        when it was named categorical (mapping file) or ``categorical_ok=True``.

        Raises
        ------
        DataContractError
            For a key-like column (person, household, partner, employer ids: never a
            covariate, moderator or outcome), a column not in ``persons``, or a text column
            that was not asked for as categorical.
        """
        if not isinstance(covariate, str):
            raise DataContractError(f"a {role} must be a column name (str), got {type(covariate).__name__}",
                                    table="assignment", fix=f"use one of {', '.join(self._covariates)}.")
        if self.is_key(covariate):
            raise DataContractError(
                f"{covariate!r} is a key (an identifier), not a {role}", table="assignment", column=covariate,
                fix="keys identify persons, households or employers; they cannot be covariates, moderators "
                    "or outcomes. Choose a baseline characteristic.",
            )
        if covariate not in self._persons.columns or covariate not in self._covariates:
            raise DataContractError(
                f"{role} {covariate!r} is not a baseline column of the assignment table", table="assignment",
                column=covariate, examples=list(self._covariates), fix="choose one of the columns listed.",
            )
        col = self._persons[covariate]
        if pd.api.types.is_bool_dtype(col) or (pd.api.types.is_numeric_dtype(col)
                                               and not isinstance(col.dtype, pd.CategoricalDtype)):
            return "numeric"
        asked = covariate in self._categorical if categorical_ok is None else categorical_ok
        txt = col.dropna().astype(str).str.strip()
        if not asked and len(txt) and txt.str.fullmatch(r"[+-]?\d+([.,]\d+)?").all():
            raise DataContractError(
                f"{role} {covariate!r} holds numbers stored as text (e.g. {txt.iloc[0]!r}); as text it would "
                "become one dummy per value", table="assignment", column=covariate, n_rows=len(txt),
                fix="convert it to numbers (pd.to_numeric), or list it under categorical in the mapping file "
                    "if the digits are codes.",
            )
        if not asked:
            raise DataContractError(
                f"{role} {covariate!r} holds text or categories; it is used as categorical only when asked",
                table="assignment", column=covariate, n_rows=int(col.notna().sum()),
                fix=f'list it under categorical = ["{covariate}"] in the [assignment] section of the mapping '
                    "file (or pass categorical_ok=True), or convert it to numbers.",
            )
        return "categorical"

    @property
    def n_persons(self) -> int:
        """Number of randomized persons in the study (after one-arm strata are set aside)."""
        return len(self._persons)

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Numeric panel columns usable as outcomes (keys and codes excluded)."""
        return tuple(c for c in self._panel.columns if c not in _PANEL_KEYS and c not in PANEL_CATEGORICAL
                     and not self.is_key(c) and pd.api.types.is_numeric_dtype(self._panel[c])
                     and not isinstance(self._panel[c].dtype, pd.CategoricalDtype))

    @property
    def categorical_outcomes(self) -> tuple[str, ...]:
        """Panel columns holding codes or categories (sector, worker class, contract…); keys excluded."""
        return tuple(c for c in self._panel.columns if c not in _PANEL_KEYS and c not in self.outcomes
                     and not self.is_key(c))

    @property
    def k_range(self) -> tuple[int, int]:
        """Smallest and largest event time observed."""
        if self._k.size == 0:
            raise EstimationError("no randomized person is linked to the panel, so no event time is observed",
                                  table="panel", column="k",
                                  fix="see study.linkage_report() for the near misses of the keys.")
        return self._kmin, self._kmin + self._k_span

    def require_outcome(self, outcome: str, *, categorical_ok: bool = False) -> None:
        """Raise :class:`DataContractError` unless ``outcome`` is a usable panel column."""
        if not isinstance(outcome, str):
            raise DataContractError(f"outcome must be a column name (str), got {type(outcome).__name__}",
                                    table="panel", fix=f"use one of {', '.join(self.outcomes)}.")
        if self.is_key(outcome):
            raise DataContractError(
                f"{outcome!r} is a key (an identifier), not an outcome", table="panel", column=outcome,
                examples=list(self.outcomes), fix="choose one of the numeric panel columns listed.",
            )
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
        if ks.size == 0 or self._k.size == 0:
            return out
        assert self._pidx is not None
        series = self._panel[outcome]
        vals = series.to_numpy() if series.dtype == np.float64 else \
            series.to_numpy(dtype=np.float64, na_value=np.nan)
        if self._dense is not None:
            # every person's rows are consecutive event times: (person, k) is at a known row
            start, first, count = self._dense
            lo, hi = int(ks.min()), int(ks.max())
            if bool(((first <= lo) & (hi < first + count)).all()) and not pd.Index(ks).has_duplicates:
                # everyone observed over the whole range (a full extract): one index array,
                # gathered straight into the result
                idx = (start - first)[:, None] + ks[None, :]
                np.take(vals, idx, out=out)
                return out
            rel = ks[None, :] - first[:, None]
            ok = (rel >= 0) & (rel < count[:, None])
            ok &= ~pd.Index(ks).duplicated().reshape(1, -1)  # a k asked twice fills its first column
            out[ok] = vals[(start[:, None] + rel)[ok]]
            return out
        offset, kmin = self._k_offset, self._kmin
        # column of each event time, by table look-up (k spans a few dozen values); a k
        # asked twice fills its first column only
        # (the narrowest column type: the gather over every panel row writes a byte a row)
        lut = np.full(self._k_span + 1, -1, dtype=np.int8 if ks.size < 127 else np.intp)
        inside = np.flatnonzero((ks >= kmin) & (ks - kmin < lut.size))
        lut[(ks[inside] - kmin)[::-1]] = inside[::-1]
        col = lut[offset]
        rows = np.flatnonzero(col >= 0)
        cell = self._pidx[rows] * ks.size + col[rows]  # row-major position in ``out``
        out.reshape(-1)[cell] = vals[rows]
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
                  .reindex([0, 1], fill_value=0).rename_axis("arm")
                  .reset_index().assign(arm=lambda d: d["arm"].map({1: "IPS", 0: "control"})))
        by_arm["n_linked"] = by_arm["n_linked"].astype(int)
        by_arm["match_rate"] = by_arm["n_linked"] / by_arm["n_randomized"].where(by_arm["n_randomized"] > 0)
        by_stratum = (p.groupby(["stratum", "arm"])["linked"].agg(n_randomized="size", n_linked="sum")
                      .reset_index())
        by_stratum["arm"] = by_stratum["arm"].map({1: "IPS", 0: "control"})
        by_stratum["n_linked"] = by_stratum["n_linked"].astype(int)
        by_stratum["match_rate"] = by_stratum["n_linked"] / by_stratum["n_randomized"]
        tab = np.array([[int(((p.arm == a) & p.linked).sum()), int(((p.arm == a) & ~p.linked).sum())]
                        for a in (1, 0)])
        odds, pval = fisher_exact(tab)
        return LinkageReport(by_arm=by_arm, by_stratum=by_stratum, other_tables=self._extra_linkage.copy(),
                             odds_ratio=float(odds), p_value=float(pval), near_misses=self._near_misses.copy(),
                             min_share=self._min_linked_share)

    def consort(self) -> Consort:
        """Randomized → linked → analysed (observed after randomization; the others lost) → IPS started."""
        p = self._persons
        rows = []

        def add(stage: str, mask: pd.Series) -> None:
            rows.append({"stage": stage, "n_ips": int((mask & (p.arm == 1)).sum()),
                         "n_control": int((mask & (p.arm == 0)).sum())})

        add("randomized", pd.Series(True, index=p.index))
        add("linked to the panel", p["linked"])
        seen = p["k_max"].fillna(-np.inf) >= 1
        add(CONSORT_LOST, ~seen)
        add(CONSORT_ANALYSED, seen)
        if "ips_started" in p.columns:
            rows.append({"stage": "started IPS", "n_ips": int(((p.arm == 1) & (p.ips_started == 1)).sum()),
                         "n_control": int(((p.arm == 0) & (p.ips_started == 1)).sum())})
        return Consort(pd.DataFrame(rows))

    def with_outcome(self, name: str, values: pd.Series | np.ndarray | Callable[[pd.DataFrame], Any]) -> Study:
        """Return a new study whose panel has one more outcome column (e.g. a summary index).

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
                     extra_linkage=self._extra_linkage, sites=self._sites, near_misses=self._near_misses,
                     min_linked_share=self._min_linked_share, categorical=self._categorical,
                     key_columns=self._key_columns, sources=self._sources)

    def __repr__(self) -> str:
        n1, n0 = self._design.n_treated, self._design.n_control
        n_linked = int(self._persons["linked"].sum())
        if self._k.size:
            kmin, kmax = int(self._k.min()), int(self._k.max())
            follow = f"k from {kmin} to {kmax}"
        else:
            follow = "no event time (0 persons linked)"
        return (f"Study: {self.n_persons} randomized ({n1} IPS, {n0} control) in "
                f"{self._design.n_strata} strata, {n_linked} linked; panel {len(self._panel)} rows at "
                f"frequency {self._frequency}, {follow}; {self._members['person_id'].nunique()} "
                f"household members; ledger {len(self._ledger)} entries")

    def _repr_html_(self) -> str:
        """HTML for notebooks: what ``repr`` says, the linkage report, the CONSORT flow and the ledger (no key)."""
        import html as _html

        from ips_impact.units import time_label

        d = self._design
        if self._k.size:
            kmin, kmax = self.k_range
            span = f"{time_label(kmin, str(self._frequency))} to {time_label(kmax, str(self._frequency))}"
        else:
            span = "none (no randomized person is linked to the panel)"
        rows = [("randomized", f"{self.n_persons} ({d.n_treated} IPS, {d.n_control} control)"),
                ("strata", str(d.n_strata)), ("panel rows", str(len(self._panel))),
                ("frequency", str(self._frequency)), ("event time", span),
                ("household members", str(self._members["person_id"].nunique())),
                ("ledger entries", str(len(self._ledger)))]
        body = "".join(f"<tr><th style='text-align:left'>{_html.escape(k)}</th>"
                       f"<td>{_html.escape(v)}</td></tr>" for k, v in rows)
        parts = ["<h4>Study</h4>", f"<table>{body}</table>", self.linkage_report()._repr_html_(),
                 "<p><b>CONSORT flow</b></p>", self.consort().to_frame().to_html(index=False)]
        if len(self._ledger):
            parts += ["<p><b>Ledger (rows set aside, repaired or assumed)</b></p>",
                      self._ledger.to_frame().to_html(index=False)]
        return "\n".join(parts)


_BUILD_TOKEN = object()


def _check_linkage(persons: pd.DataFrame, min_share: float, near: pd.DataFrame) -> None:
    """Refuse a study in which an arm links below ``min_share``; warn about any shortfall."""
    rates = {}
    for arm, label in ((1, "IPS"), (0, "control")):
        sel = persons["arm"] == arm
        rates[label] = (int(persons.loc[sel, "linked"].sum()), int(sel.sum()))
    short = {k: v for k, v in rates.items() if v[1] and v[0] < v[1]}
    if not short:
        return
    desc = ", ".join(f"{k} {n} of {m} ({100 * n / m:.1f}%)" for k, (n, m) in rates.items() if m)
    hints = "; ".join(f"{int(r.n_persons)} would link after repairing {r.kind} in table '{r.table}' "
                      f"({r.fix})" for r in near.itertuples()) if len(near) else ""
    low = [k for k, (n, m) in rates.items() if m and n / m < min_share]
    if low:
        raise LinkageError(
            f"too few randomized persons link to the panel: {desc}; the study needs at least "
            f"{100 * min_share:.0f}% in each arm" + (f". Near misses: {hints}" if hints else ""),
            table="panel", column="person_id", n_rows=sum(m - n for n, m in rates.values()),
            fix="compare the keys of the assignment and the panel (same pseudonymisation, text with zeros); "
                "min_linked_share= (or [linkage] min_share) sets the threshold.",
        )
    warnings.warn(
        f"not every randomized person links to the panel: {desc}" + (f". Near misses: {hints}" if hints else "")
        + ". See study.linkage_report(); unlinked persons are missing in every outcome.",
        DataWarning, stacklevel=3,
    )


# ---------------------------------------------------------------------- helpers
def _key_codes(keys: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of a key column and the distinct keys (text held as codes: read, not recomputed)."""
    if isinstance(keys.dtype, pd.CategoricalDtype):
        codes = keys.cat.codes.to_numpy()
        # int32 codes (more than 32,767 keys) index as they are: no 8-byte copy per row
        return (codes if codes.dtype == np.int32 else codes.astype(np.intp),
                pd.Index(keys.cat.categories, dtype=object))
    codes, uniques = pd.factorize(keys)
    return codes, pd.Index(uniques, dtype=object)


def _dense_rows(pidx: np.ndarray | None, k: np.ndarray, n_persons: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per person: first row, first event time and number of rows, when rows are dense.

    Dense: rows by person, then k, and each person's event times consecutive (no gap),
    as in LMD extracts; then the row of (person, k) is ``first row + k - first k``.
    ``None`` otherwise (``outcome_matrix`` then looks every row up).
    """
    if pidx is None or pidx.size == 0:
        return None
    same = pidx[1:] == pidx[:-1]
    if not bool(((pidx[1:] > pidx[:-1]) | (same & (k[1:] > k[:-1]))).all()):
        return None  # not by person, then increasing k
    count = np.bincount(pidx, minlength=n_persons)
    start = np.cumsum(count) - count
    linked = count > 0
    first = np.zeros(n_persons, dtype=np.int64)
    first[linked] = k[start[linked]]
    last = k[(start + count - 1)[linked]]
    if not bool((last - first[linked] + 1 == count[linked]).all()):
        return None
    return start, first, count


def _sorted_codes(values: pd.Series) -> np.ndarray:
    """``pd.factorize(values, sort=True)[0]``, with text keys sorted as one fixed-width array."""
    codes, uniques = pd.factorize(values)
    if len(uniques) and pd.api.types.infer_dtype(uniques, skipna=False) == "string":
        text = np.asarray(uniques, dtype=object).astype(str)
        # numpy's unicode order is Python's (code points) except for trailing NULs it drops
        if not any(t.endswith("\x00") for t in uniques):
            rank = np.empty(len(text), dtype=np.intp)
            rank[np.argsort(text, kind="stable")] = np.arange(len(text))
            return np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
    return pd.factorize(values, sort=True)[0]


def _n_distinct(codes: np.ndarray, mask: np.ndarray) -> int:
    """Count the distinct codes among the rows of ``mask``."""
    return int(np.unique(codes[mask]).size)


def _person_k_order(pidx: np.ndarray, k: np.ndarray) -> np.ndarray | None:
    """Row order by person, then event time: ``np.lexsort((k, pidx))`` in one stable sort.

    The two are combined in one int64 key; ``None`` when the rows already come in that
    order, as extracts sorted by person and period do (then nothing is sorted or moved).
    Person × period is unique, so the order is the same as the lexsort's.
    """
    if k.size == 0:
        return None
    kmin = int(k.min())
    span = int(k.max()) - kmin + 1
    if float(pidx.max() + 1) * span >= 2.0**62:
        return np.lexsort((k, pidx))
    key = pidx.astype(np.int64)
    key *= span
    key += k
    key -= kmin
    if bool((key[1:] > key[:-1]).all()):
        return None
    return np.argsort(key, kind="stable")


def _unique_person_period(pcodes: np.ndarray, ords: np.ndarray) -> bool:
    """Tell whether no person × period occurs twice (one int64 key per row, no Python objects)."""
    if len(ords) == 0:
        return True
    span = int(ords.max()) - int(ords.min()) + 1
    cells = float(int(pcodes.max()) + 1) * span
    if cells >= 2.0**62:
        return False  # let the general rule decide
    # one int64 array, built in place (fresh memory is the dear part at 15 M rows)
    key = pcodes.astype(np.int64)
    key *= span
    key += ords
    key -= int(ords.min())
    if bool((key[1:] > key[:-1]).all()):
        return True  # rows by person, then period (as extracts come): strictly increasing keys
    if cells <= 4.0 * len(key) + 1_000_000:  # a dense grid: count the cells
        return bool(np.bincount(key, minlength=int(cells)).max() <= 1)
    return bool(pd.Index(key).is_unique)


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


def load_study(
    path: str | Path,
    *,
    frequency: str | None = None,
    column_map: ColumnMap | Mapping[str, object] | str | Path | None = None,
    date_order: str | None = None,
    min_linked_share: float | None = None,
    engine: str = "pandas",
    duckdb_config: Mapping[str, object] | None = None,
) -> Study:
    """Read a delivery folder and build the :class:`Study` (see :meth:`Study.from_frames`).

    The folder holds ``assignment.*`` and ``panel.*`` (and optionally ``households.*``,
    ``benefits.*``, ``takeup.*``, ``sites.*``) as parquet, csv / tsv / txt or xlsx; names
    are matched without regard to case, or given by the mapping file's ``file`` option.
    Text files are read as text and converted after the mapping is known (keys keep
    their zeros); separator, decimal mark and date order are detected when the mapping
    file is silent, and refused when the file allows two readings.

    Parameters
    ----------
    path
        The delivery folder.
    frequency, column_map, date_order, min_linked_share
        As in :meth:`Study.from_frames`.
    engine
        ``"pandas"`` (default) reads every table into memory. ``"duckdb"`` (extra
        ``ips_impact[scale]``) reads the parquet tables with embedded DuckDB and keeps
        only the panel rows of persons in the assignment, the household roster or the
        benefit records, :math:`\\{(i, t) : i \\in A \\cup H \\cup B\\}`, filtered in SQL
        before pandas sees them: a population panel larger than memory can be linked.
        The rows left out are counted in the ledger and their keys enter the near-miss
        report as with ``"pandas"``; the study is the same. A table may then also be a
        folder of parquet parts (``panel/part-2019.parquet``…) or a glob in the ``file``
        option (``file = "panel/part-*.parquet"``). CSV and Excel tables are read as
        with ``"pandas"``. See ``docs/data.md``, "Population extracts".
    duckdb_config
        DuckDB settings for ``engine="duckdb"``: ``threads`` (default: the cores this
        process may use), ``memory_limit`` (default: a quarter of the physical memory,
        e.g. ``"8GB"``), ``temp_directory`` (default: a temporary folder, removed
        afterwards) where DuckDB spills what does not fit. The result does not depend on
        them: every query has an ``ORDER BY``.

    Raises
    ------
    UsageError
        An unknown ``engine`` or DuckDB setting, or ``engine="duckdb"`` without the
        duckdb package (the fix: ``pip install 'ips_impact[scale]'``).
    DataContractError, LinkageError, DesignError
        As :meth:`Study.from_frames`.
    """
    from ips_impact.io import duck

    duck.check_engine(engine)
    cmap = ColumnMap.coerce(column_map)
    outside = None
    if engine == "duckdb":
        frames, outside, sources = duck.read_delivery(path, cmap, config=duckdb_config)
    else:
        if duckdb_config is not None:
            raise UsageError("duckdb_config applies to engine='duckdb' only",
                             fix="pass engine='duckdb', or drop duckdb_config.")
        names = {t: cmap.read_options(t).file for t in TABLE_NAMES}
        files = find_table_files(path, files={t: f for t, f in names.items() if f})
        frames = {}
        for name, f in files.items():
            keys = cmap.source_names(name, set(KEY_COLUMNS) | set(cmap.key_columns(name)))
            # the panel's text columns come as codes (parquet), decoded by the study once cut to its rows
            text = cmap.source_names(name, set(TEXT_COLUMNS))
            frames[name] = read_table(f, table=name, options=cmap.read_options(name), key_columns=keys,
                                      text_columns=text, keep_codes=(keys | text) if name == "panel" else ())
        sources = {name: str(f) for name, f in files.items()}
    ren = cmap.for_table("panel")
    decode = [ren.get(c, c) for c in frames["panel"].attrs.pop(CODES_ATTR, [])]
    study = Study.from_frames(
        frames.pop("assignment"), frames.pop("panel"),
        households=frames.get("households"), benefits=frames.get("benefits"),
        takeup=frames.get("takeup"), sites=frames.get("sites"), frequency=frequency,
        column_map=cmap, date_order=date_order, min_linked_share=min_linked_share, _decode=decode,
        _owned=True, _outside=outside,
    )
    study._sources = sources
    return study


# ---------------------------------------------------------------------- generator's frames
def _study_from_generator_frames(assignment: pd.DataFrame, panel: pd.DataFrame) -> Study:
    """Build the Study of an assignment and a panel made by ``ips_impact.synthetic``.

    Equal to ``Study.from_frames(assignment, panel)`` (persons, panel, members, design,
    covariates, ledger: tests/test_power_simulation.py), without re-running the delivery
    checks, at a fraction of the cost (a power study builds a thousand Studies). Skipping
    them is sound here, and only here: the frames come from our own generator
    (``ips_impact.synthetic.generate``, or the power draw that builds a subset of its
    columns), whose contract is tested on its own (tests/test_synthetic*.py): text keys
    that are not national numbers, 0/1 flags as integers, one row per person × quarter,
    non-negative amounts, canonical regions, randomization dates at midnight. What the
    checks would *change* (0/1 flags as floats, periods parsed, rows ordered, derived
    outcomes) is done here as there. Whatever the cheap guards below do not confirm — a
    stratum with one arm, a person without a panel row, a panel row of a person not
    randomized, unsorted or non-text keys, a code column to normalise — sends the frames
    to ``Study.from_frames``, which handles it (set aside, ledger, warning, typed error)
    as for any delivery.
    """
    # imported here: this function is appended to the module without touching its imports
    from ips_impact.io.schema import SCHEMAS

    def slow() -> Study:
        return Study.from_frames(assignment, panel)

    cols_a, cols_p = list(assignment.columns), list(panel.columns)
    if not ({"person_id", "arm", "randomization_date", "stratum"} <= set(cols_a)
            and "randomization_period" not in cols_a and cols_p[:2] == ["person_id", "period"]
            and len(set(cols_a)) == len(cols_a) and len(set(cols_p)) == len(cols_p)
            and isinstance(assignment.index, pd.RangeIndex) and isinstance(panel.index, pd.RangeIndex)
            and assignment.index.start == 0 and panel.index.start == 0):
        return slow()
    ids = assignment["person_id"].to_numpy()
    arm_in = assignment["arm"].to_numpy()
    dates = assignment["randomization_date"]
    stratum = assignment["stratum"]
    if not (pd.api.types.is_integer_dtype(arm_in.dtype) and dates.dtype == "datetime64[ns]"
            and stratum.dtype == object
            and all(pd.api.types.infer_dtype(c, skipna=False) == "string" for c in
                    (ids, stratum, assignment.get("household_id", stratum)))):
        return slow()
    day = dates.to_numpy()
    region = assignment["region"].to_numpy() if "region" in cols_a else None
    if (np.isnat(day).any() or (day.astype("datetime64[D]") != day).any()
            or (region is not None and not set(pd.unique(region)) <= {"VL", "WAL", "BXL"})
            or not (ids[1:] > ids[:-1]).all() or not _zero_one(arm_in)):
        return slow()
    # the design's stratum codes (sorted labels), computed once for the check and the design
    strata_codes, strata_labels = pd.factorize(stratum, sort=True)
    n_arm1 = np.bincount(strata_codes, weights=arm_in)
    if ((n_arm1 == 0) | (n_arm1 == np.bincount(strata_codes))).any():  # also "one arm overall"
        return slow()
    binary = set(SCHEMAS["panel"].binary)
    amounts = set(SCHEMAS["panel"].nonnegative)
    for c in cols_p[2:]:
        v = panel[c].to_numpy()
        if c in binary and not (v.dtype.kind in "biuf" and _zero_one(v)):
            return slow()
        if c in amounts and not (v.dtype.kind in "iuf" and (v >= 0).all()):
            return slow()
    # the periods are parsed once per distinct label (a few dozen), then spread by code
    # sorted, the labels of the replicates of a power study are nearly always the same
    # (in the order of first appearance they hardly ever are): the cache hits
    p_codes, p_labels = pd.factorize(panel["period"].to_numpy(), sort=True)
    got = _GENERATOR_PERIODS.get(tuple(p_labels))
    if got is None:
        got = parse_periods(pd.Series(p_labels), None, table="panel", column="period")
        if len(_GENERATOR_PERIODS) >= 256:
            _GENERATOR_PERIODS.clear()
        _GENERATOR_PERIODS[tuple(p_labels)] = got
    labels, freq = got
    periods = pd.Series(labels.array.take(p_codes))
    rand_period = date_to_period(dates, freq)
    panel_ids = panel["person_id"].to_numpy()
    K = panel_ids.size // max(ids.size, 1)
    if K * ids.size == panel_ids.size and (panel_ids == np.repeat(ids, K)).all():
        pidx = np.repeat(np.arange(ids.size, dtype=np.intp), K)  # the generator's row order
    else:
        if pd.api.types.infer_dtype(panel_ids, skipna=False) != "string":
            return slow()
        pidx = pd.Index(ids).get_indexer(panel_ids)
        if (pidx < 0).any():
            return slow()
    # the ordinals of the labels, spread by code (as period_ordinals(periods), without the copy)
    k = period_ordinals(labels).take(p_codes) - period_ordinals(rand_period)[pidx]
    order_rows = _person_k_order(pidx, k)  # None: already by person and k (the generator's order)
    if order_rows is None:
        order_rows = np.arange(pidx.size)
    p_sorted, k_sorted = pidx[order_rows], k[order_rows]
    new_person = np.r_[True, p_sorted[1:] != p_sorted[:-1]]
    if (~new_person & np.r_[True, k_sorted[1:] == k_sorted[:-1]]).any():
        return slow()  # a person × period twice
    starts = np.flatnonzero(new_person)
    if starts.size != ids.size:
        return slow()  # a randomized person without a panel row
    k_min = k_sorted[starts].astype(float)
    k_max = k_sorted[np.r_[starts[1:], k_sorted.size] - 1].astype(float)
    if (k_max < 0).any():
        return slow()

    cmap = ColumnMap.coerce(None)
    # ---- persons (as L.build_persons and the linkage step make them)
    first = {"person_id": ids, "arm": arm_in.astype("int8"), "stratum": stratum.to_numpy(),
             "randomization_period": rand_period.array, "randomization_date": day}
    names = [*first, *sorted(c for c in cols_a if c not in first)]
    declared_keys = set(cmap.key_columns("assignment"))
    covariates = tuple(c for c in names if c not in _ASSIGNMENT_RESERVED
                       and c not in ("randomization_date", "randomization_period")
                       and not V.is_key_like(c, declared_keys))
    # columns as arrays, not copied (building from Series aligns their indexes and copies):
    # the Study holds the assignment's columns, which the generator's caller hands over
    persons = pd.DataFrame({**{c: first[c] if c in first else _values(assignment[c]) for c in names},
                            "linked": np.ones(ids.size, dtype=bool), "k_min": k_min, "k_max": k_max},
                           copy=False)
    shape = (tuple(cols_p), tuple(str(panel[c].dtype) for c in cols_p))
    if shape not in _GENERATOR_FRAME_TEMPLATES:
        _GENERATOR_FRAME_TEMPLATES[shape] = _generator_templates(panel.iloc[:0], binary, freq)
    templates = _GENERATOR_FRAME_TEMPLATES[shape]
    if templates is None:
        return slow()  # an outcome to derive or a code column to normalise: from_frames does it
    members, near, extra = (t.copy() for t in templates)
    # ---- panel: rows by person and k; validation turns the 0/1 flags into floats
    data: dict[str, Any] = {"person_id": panel["person_id"].to_numpy().take(order_rows),
                            "period": periods.array.take(order_rows), "k": k_sorted}
    for c in sorted(c for c in cols_p if c not in _PANEL_KEYS):
        v = panel[c].to_numpy().take(order_rows)
        data[c] = v.astype("float64") if c in binary else v
    data["_pidx"] = p_sorted
    main = pd.DataFrame(data, copy=False)
    hh = _sorted_codes(persons["household_id"]) if "household_id" in persons.columns else None
    design = Design(arm=persons["arm"].to_numpy(), stratum=strata_codes,
                    stratum_labels=tuple(str(s) for s in strata_labels), household=hh)
    return Study(
        _token=_BUILD_TOKEN, persons=persons, panel=main, members=members, households=None,
        design=design, ledger=Ledger().freeze(), frequency=freq, covariates=covariates, sites=None,
        near_misses=near, min_linked_share=0.5, categorical=tuple(cmap.categorical("assignment")),
        key_columns=tuple(sorted(declared_keys | set(cmap.key_columns("panel")))), extra_linkage=extra,
    )


def _zero_one(v: np.ndarray) -> bool:
    """``np.isin(v, (0, 1)).all()`` for a numeric array, without isin's sort."""
    return bool(((v == 0) | (v == 1)).all())


def _values(column: pd.Series) -> Any:
    """Return the values of a column: a numpy array, or the array of an extension dtype."""
    return column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array


#: Parsed period labels of generator panels (the labels → (periods, frequency)).
_GENERATOR_PERIODS: dict[tuple[object, ...], tuple[pd.Series, Frequency]] = {}

#: Empty frames of a generator Study, by the panel's columns and dtypes (a power study
#: builds a thousand Studies of the same shape; each gets copies of these).
_GENERATOR_FRAME_TEMPLATES: dict[tuple[tuple[str, ...], tuple[str, ...]],
                                 tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None] = {}


def _generator_templates(empty: pd.DataFrame, binary: set[str], freq: Frequency
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    """Return the empty members panel, near misses and extra linkage of a roster-less Study.

    As ``Study.from_frames`` makes them for a panel of these columns; ``None`` when the panel
    has an outcome to derive or a code column to normalise (then from_frames is used).
    """
    cols = list(empty.columns)
    empty = empty.assign(**{c: empty[c].astype("float64") for c in cols[2:] if c in binary})
    if set(L.CODE_COLUMNS) & set(cols) or \
            list(L.derive_outcomes(empty.assign(k=np.zeros(0, np.int64))).columns) != cols + ["k"]:
        return None
    no_persons = pd.DataFrame({"person_id": pd.Series([], dtype=object),
                               "randomization_period": pd.Series([], dtype=object)})
    members = L.derive_outcomes(L.members_panel(
        empty, pd.DataFrame(columns=["person_id", "index_person_id", "household_id", "role"]), no_persons, freq))
    mfirst = ["person_id", "index_person_id", "household_id", "role", "period", "k"]
    members = members[mfirst + sorted(c for c in members.columns if c not in mfirst)]
    extra = pd.DataFrame([], columns=["table", "n_persons_randomized", "n_persons_matched", "n_rows_unmatched"])
    return members, L.near_misses("panel", [], []), extra
