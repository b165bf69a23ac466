"""Public entry points: :func:`generate`, :class:`SyntheticTrial`, :func:`population_truth`."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ips_impact.errors import DataContractError
from ips_impact.synthetic import truth as _truth
from ips_impact.synthetic.dynamics import NACE, WORKER_CLASS
from ips_impact.synthetic.params import REGIONS, SyntheticParams
from ips_impact.synthetic.population import DIAGNOSIS, EDUCATION, HOUSEHOLD
from ips_impact.synthetic.world import (
    OUTCOMES,
    Group,
    World,
    aggregate,
    build_world,
    job_details,
    map_chunks,
    month_labels,
    monthly,
    quarter_labels,
    quarterly,
    redraw,
    subgroup,
)

if TYPE_CHECKING:  # pragma: no cover
    from ips_impact.study import Study

__all__ = ["generate", "SyntheticTrial", "population_truth", "TABLES", "PopulationTruth"]

#: Tables a synthetic trial can hold, in the order of :meth:`SyntheticTrial.frames`.
TABLES: tuple[str, ...] = ("assignment", "panel", "households", "benefits", "takeup")

_PANEL_COLUMNS = (
    "person_id", "period", "sep_code", "employed", "self_employed", "n_jobs",
    "days_worked", "earnings", "fte", "worker_class", "nace", "temp_agency",
    "permanent_contract", "on_di", "di_phase", "di_benefit", "authorised_work",
    "work_on_di", "unemployment_benefit",
)
_KEEP_POTENTIALS_CELLS = 2_000_000  # persons × quarters
_PHASE = np.array([None, "primary", "invalidity"], dtype=object)
_NACE_LUT = np.append(NACE, [None]).astype(object)  # code -1 -> None
_WC_LUT = np.append(WORKER_CLASS, [None]).astype(object)


@dataclass(frozen=True, eq=False, repr=False)
class SyntheticTrial:
    """A synthetic randomized IPS trial with its exact truth.

    Attributes
    ----------
    assignment, panel, households, benefits, takeup
        Frames in the data contracts of ``shared/DESIGN.md`` (``None`` for a table
        that was not asked for in :func:`generate`).
    truth
        Sample average treatment effects: ``population`` ("participants",
        "partners" = baseline partners, "members" = all baseline household members
        with an own panel), ``outcome``, ``k`` (quarters since the randomization
        quarter), ``group`` ("all" or a region), ``n``, ``ate`` = mean(Y(1) − Y(0)),
        ``control_mean`` = mean Y(0), ``treated_mean`` = mean Y(1), ``estimand`` = "ATE".
        The truth does not depend on the assignment: it is the effect in this sample.
    truth_late
        Compliers' effect mean(Y(1) − Y(0) | complier) by outcome, k and group, with
        the sample complier share (estimand "LATE").
    truth_rmst
        Restricted mean time to the first job (``event`` "employed" or "work_on_di",
        first k ≥ ``start``) per arm up to ``tau`` quarters (estimand "RMST"); see
        :meth:`rmst_truth` for other choices.
    params
        The parameters that produced the sample.
    seed
        Seed of the sample.
    assignment_seed
        ``None`` for the design's own draw, else the seed given to :meth:`rerandomize`.
    """

    assignment: pd.DataFrame
    panel: pd.DataFrame
    households: pd.DataFrame | None
    benefits: pd.DataFrame | None
    takeup: pd.DataFrame | None
    truth: pd.DataFrame
    truth_late: pd.DataFrame
    truth_rmst: pd.DataFrame
    params: SyntheticParams
    seed: int
    assignment_seed: int | None = None
    tables: tuple[str, ...] = TABLES
    job_details: bool = True
    _world: World = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    # participants' potential outcomes, kept for fast re-randomization of small samples
    _pots: Any = field(default=None, repr=False, compare=False)

    @property
    def n_persons(self) -> int:
        """Number of randomized participants."""
        return int(len(self.assignment))

    def __repr__(self) -> str:
        a = self.assignment
        n1 = int(a["arm"].sum())
        redraw = "" if self.assignment_seed is None else f", assignment_seed={self.assignment_seed}"
        return (
            f"SyntheticTrial(n_persons={len(a)} ({n1} IPS, {len(a) - n1} control), "
            f"seed={self.seed}{redraw}, tables={list(self.tables)}, "
            f"panel_rows={len(self.panel)}, k={-self.params.pre_quarters}..{self.params.post_quarters})"
        )

    # ------------------------------------------------------------------ frames
    def frames(self) -> dict[str, pd.DataFrame]:
        """Return the data tables (those generated), keyed by name as ``load_study`` expects."""
        out = {}
        for name in TABLES:
            df = getattr(self, name)
            if df is not None:
                out[name] = df
        return out

    def study(self, **kwargs: Any) -> Study:
        """``ips_impact.study.Study.from_frames`` on the generated tables.

        Extra keyword arguments are passed on (e.g. ``frequency``).
        """
        from ips_impact.study import Study  # lazy: study depends on much more

        return Study.from_frames(
            self.assignment, self.panel, households=self.households,
            benefits=self.benefits, takeup=self.takeup, **kwargs,
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write one parquet per table plus the truths and ``params.json``.

        Files: ``assignment.parquet``, ``panel.parquet``, ``households.parquet``,
        ``benefits.parquet``, ``takeup.parquet`` (those generated), ``truth.parquet``,
        ``truth_late.parquet``, ``truth_rmst.parquet`` and ``params.json`` (seed,
        number of persons, every parameter). The same seed and parameters give
        byte-identical files (no pandas index, fixed row order, fixed compression).
        Each file is written to a temporary name and renamed, so a reader never sees
        half a file.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        files = dict(self.frames())
        files.update(truth=self.truth, truth_late=self.truth_late, truth_rmst=self.truth_rmst)
        for name, df in files.items():
            target = out / f"{name}.parquet"
            tmp = out / f".{name}.parquet.tmp"
            df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
            os.replace(tmp, target)
        meta = {
            "generator": "ips_impact.synthetic.generate",
            "n_persons": self.n_persons,
            "seed": self.seed,
            "assignment_seed": self.assignment_seed,
            "tables": list(self.tables),
            "job_details": self.job_details,
            "params": self.params.to_dict(),
        }
        tmp = out / ".params.json.tmp"
        tmp.write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out / "params.json")
        return out

    # ------------------------------------------------------------------ designs
    def rerandomize(self, seed: int) -> SyntheticTrial:
        """Return the same persons and potential outcomes under a new random assignment.

        The assignment is re-drawn exactly as the design did (complete randomization
        within strata, the same number of IPS places per stratum) with
        ``numpy.random.Generator(PCG64(seed))``; the revealed tables follow the new
        arms; ``truth`` is unchanged (it is the sample effect, which does not depend
        on who is assigned).
        """
        rng = np.random.Generator(np.random.PCG64(seed))
        arm = redraw(self._world, rng)
        frames = _reveal(self._world, arm, self.tables, self.job_details, self._pots)
        return dataclasses.replace(self, assignment_seed=int(seed), **frames)

    # ------------------------------------------------------------------ truths
    def potential_outcomes(self, outcome: str, *, population: str = "participants") -> pd.DataFrame:
        """Both potential outcomes per person and k: ``person_id, k, y0, y1``.

        ``population`` is "participants", "partners" or "members" (baseline roster).
        """
        if outcome not in OUTCOMES:
            raise DataContractError(
                f"unknown outcome {outcome!r}", table="truth", column="outcome",
                fix=f"use one of {', '.join(OUTCOMES)}",
            )
        g, mask = _population_group(self._world, population)
        p = self.params
        ks = np.arange(-p.pre_quarters, p.post_quarters + 1)
        cols = self._world.origin + ks
        only = {outcome}
        y0 = quarterly(g, np.zeros(g.m, dtype=np.int8), p, details=False, only=only)[outcome][cols][:, mask]
        y1 = quarterly(g, np.ones(g.m, dtype=np.int8), p, details=False, only=only)[outcome][cols][:, mask]
        m = int(mask.sum())
        return pd.DataFrame({
            "person_id": np.repeat(g.person_id[mask], ks.size),
            "k": np.tile(ks, m),
            "y0": y0.T.ravel().astype(np.float64),
            "y1": y1.T.ravel().astype(np.float64),
        })

    def rmst_truth(
        self, event: str = "employed", *, start: int = 1, taus: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Return the true restricted mean time to the first ``event`` per arm (see ``truth_rmst``)."""
        if event not in OUTCOMES:
            raise DataContractError(
                f"unknown event {event!r}", table="truth", column="event",
                fix=f"use one of {', '.join(OUTCOMES)}",
            )
        return _truth.rmst_table(self._world, events=(event,), start=start, taus=taus)


def _population_group(w: World, population: str) -> tuple[Group, np.ndarray]:
    if population == "participants":
        return w.participants, np.ones(w.participants.m, dtype=bool)
    if population in ("partners", "members"):
        g = w.member_group
        if g is None:
            raise DataContractError(
                "household members were not simulated", table="truth", column="population",
                fix="generate with 'households' in tables",
            )
        mask = ((g.role == "partner") & g.baseline) if population == "partners" else g.baseline.copy()
        return g, mask
    raise DataContractError(
        f"unknown population {population!r}", table="truth", column="population",
        fix="use 'participants', 'partners' or 'members'",
    )


# ---------------------------------------------------------------------- reveal
def _panel_frame(
    g: Group, qo: dict[str, np.ndarray], w: World, details: bool
) -> dict[str, np.ndarray]:
    p = w.params
    cols = np.arange(w.origin - p.pre_quarters, w.origin + p.post_quarters + 1)
    K = cols.size
    qidx, labels = quarter_labels(g.start_month, w.n_quarters)
    period = labels[(qidx[:, None] + cols[None, :]).ravel()]
    rows = slice(int(cols[0]), int(cols[-1]) + 1)  # the same rows as a[cols], without a copy

    def flat(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[rows].T).ravel()

    data: dict[str, Any] = {
        "person_id": np.repeat(g.person_id, K),
        "period": period,
    }
    if details:
        data["sep_code"] = flat(qo["sep_code"])
    data.update(
        employed=flat(qo["employed"]), self_employed=flat(qo["self_employed"]),
        n_jobs=flat(qo["n_jobs"]), days_worked=flat(qo["days_worked"]),
        earnings=flat(qo["earnings"]), fte=flat(qo["fte"]),
    )
    if details:
        data["worker_class"] = _WC_LUT[flat(qo["worker_class"])]
        data["nace"] = _NACE_LUT[flat(qo["nace"])]
    data.update(
        temp_agency=flat(qo["temp_agency"]), permanent_contract=flat(qo["permanent_contract"]),
        on_di=flat(qo["on_di"]), di_phase=_PHASE[flat(qo["di_phase"])],
        di_benefit=flat(qo["di_benefit"]), authorised_work=flat(qo["authorised_work"]),
        work_on_di=flat(qo["work_on_di"]), unemployment_benefit=flat(qo["unemployment_benefit"]),
    )
    return data


def _benefit_frame(g: Group, mo: dict[str, np.ndarray], w: World) -> dict[str, np.ndarray]:
    p = w.params
    first = 3 * (w.origin - p.pre_quarters)
    last = 3 * (w.origin + p.post_quarters + 1)
    cols = np.arange(first, last)
    keep = np.flatnonzero(g.benefit_rows)
    midx, labels = month_labels(g.start_month[keep], w.n_quarters * 3)
    month = labels[(midx[:, None] + cols[None, :]).ravel()]
    K = cols.size

    every = keep.size == g.m  # participants: everyone has insurer records

    def flat(a: np.ndarray) -> np.ndarray:
        # the same values as a[cols][:, keep].T, with fewer copies (the months are a slice)
        part = a[first:last] if every else a[first:last][:, keep]
        return np.ascontiguousarray(part.T).ravel()

    phase = np.where(mo["on_di"], np.where(mo["invalidity"], 2, 1), 0).astype(np.int8)
    return {
        "person_id": np.repeat(g.person_id[keep], K),
        "month": month,
        "on_di": flat(mo["on_di"]).astype(np.int8),
        "di_phase": _PHASE[flat(phase)],
        "di_benefit": flat(mo["benefit"]),
        "authorised_work": flat(mo["authorised"]).astype(np.int8),
    }


def _slim(q: dict[str, Any]) -> dict[str, np.ndarray]:
    """Return the monthly arrays the benefit records need; the others are freed at once."""
    mo = q.pop("_monthly")
    for name in [k for k in mo if k not in ("on_di", "invalidity", "benefit", "authorised")]:
        del mo[name]
    return mo


def _assemble(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One frame from column dicts, column by column.

    Columns are joined one at a time (each part is freed as soon as it is used) and
    handed to pandas without a copy, so building a 25-million-row panel never holds two
    copies of it.
    """
    names = list(parts[0])
    columns = {}
    for name in names:
        cols = [part.pop(name) for part in parts]
        columns[name] = cols[0] if len(cols) == 1 else np.concatenate(cols)
        del cols
    # one frame of the arrays as they are: no consolidation into blocks (a copy), and an
    # object column keeps its dtype without pandas inferring the type of each value
    return pd.DataFrame(columns, copy=False)


def _assignment_frame(
    pop: Any, arm: np.ndarray, pre_emp: np.ndarray, pre_earn: np.ndarray,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return the assignment table: one row per participant, in the population's order.

    ``columns`` builds only those columns (in the table's order); ``None``: all of them.
    """
    build: dict[str, Any] = {
        "person_id": lambda: pop.person_id,
        "arm": lambda: arm.astype(np.int64),
        "randomization_date": lambda: pop.randomization_date.astype("datetime64[ns]"),
        "stratum": lambda: pop.stratum,
        "region": lambda: np.asarray(REGIONS, dtype=object)[pop.region],
        "site": lambda: pop.site,
        "household_id": lambda: pop.household_id,
        "age": lambda: np.round(pop.age, 1),
        "female": lambda: pop.female.astype(np.int64),
        "education": lambda: np.asarray(EDUCATION, dtype=object)[pop.education],
        "diagnosis": lambda: np.asarray(DIAGNOSIS, dtype=object)[pop.diagnosis],
        "di_phase": lambda: np.where(pop.primary, "primary", "invalidity").astype(object),
        "di_months": lambda: pop.di_months.astype(np.int64),
        "household_type": lambda: np.asarray(HOUSEHOLD, dtype=object)[pop.household_type],
        "pre_employment_share": lambda: np.round(pre_emp, 4),
        "pre_earnings": lambda: np.round(pre_earn, 2),
    }
    names = list(build) if columns is None else [c for c in build if c in set(columns)]
    return pd.DataFrame({c: build[c]() for c in names})


# ---------------------------------------------------------------------- one pass
class _Sink:
    """Output arrays allocated once and filled in place by chunks (from several threads).

    Each chunk writes its own rows, so no part is concatenated afterwards (one copy of
    each table, built on the chunk threads instead of one thread at the end). A text
    column is held as integer codes into its lookup table until :meth:`ordered`: an
    object array costs a reference per cell, and is built under the GIL.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.arrays: dict[str, np.ndarray] = {}
        self.luts: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def get(self, name: str, dtype: Any, lut: np.ndarray | None = None) -> np.ndarray:
        with self._lock:
            a = self.arrays.get(name)
            if a is None:
                a = self.arrays[name] = np.empty(self.shape, dtype=dtype)
                if lut is not None:
                    self.luts[name] = lut
        if a.dtype != np.dtype(dtype) or self.luts.get(name) is not lut:  # pragma: no cover
            raise TypeError(f"column {name}: inconsistent chunks")  # internal consistency
        return a

    def ordered(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the columns ``names`` (those written), text decoded, and empty the sink."""
        out = {}
        for n in names:
            if n in self.arrays:
                a = self.arrays.pop(n)
                lut = self.luts.pop(n, None)
                out[n] = a if lut is None else _decode(lut, a)
                del a
        return out


_PIECE = 1 << 20  # cells decoded at once: the index temporaries stay small and re-used


def _decode(lut: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``lut[codes]`` by pieces (codes -1 are the last entry, as in Python indexing)."""
    out = np.empty(codes.shape, dtype=lut.dtype)
    for i in range(0, codes.size, _PIECE):
        np.take(lut, codes[i:i + _PIECE], out=out[i:i + _PIECE], mode="wrap")
    return out


def _put(sink: _Sink, name: str, lo: int, src: np.ndarray, lut: np.ndarray | None = None) -> None:
    """Write ``src`` (persons × periods) as the rows ``lo:lo + src.size`` of ``name``.

    With ``lut``, ``src`` holds codes: the column is ``lut[codes]`` (see :class:`_Sink`).
    """
    dst = sink.get(name, src.dtype, lut)
    np.copyto(dst[lo:lo + src.size].reshape(src.shape), src)


_DETAILS = ("sep_code", "worker_class", "nace")
_BENEFIT_COLUMNS = ("person_id", "month", "on_di", "di_phase", "di_benefit", "authorised_work")


@dataclass(frozen=True)
class _Labels:
    """Text labels shared by the groups written to the same tables, and each person's codes."""

    person_lut: np.ndarray  # person_id of the groups, concatenated
    quarter: np.ndarray  # code in quarter_lut of each person's quarter column 0
    quarter_lut: np.ndarray
    month: np.ndarray  # code in month_lut of each person's month column 0
    month_lut: np.ndarray

    @classmethod
    def of(cls, w: World, groups: Sequence[Group]) -> _Labels:
        start = np.concatenate([x.start_month for x in groups])
        q, qlut = quarter_labels(start, w.n_quarters)
        mo, mlut = month_labels(start, w.n_quarters * 3)
        return cls(np.concatenate([x.person_id for x in groups]), q, qlut, mo, mlut)


def _one_pass(
    w: World, g: Group, arm: np.ndarray, *, details: bool, benefits: bool,
    panel: _Sink, panel_at: int, bens: _Sink | None, bens_at: int,
    pre: tuple[np.ndarray, np.ndarray] | None, labels: _Labels, at: int,
) -> _truth.Potentials:
    """Potential outcomes of ``g`` and its revealed panel and benefit rows, in one pass.

    Each chunk of persons simulates the monthly states of both worlds once. The
    quarterly outcomes of world a are the potential outcomes Y(a) (returned, for the
    truth); the revealed ones are Y(arm) = where(arm, Y(1), Y(0)), and the revealed
    monthly states where(arm, world 1, world 0) give the job details and the monthly
    benefit records: every step from months to quarters is elementwise per person, so
    this is, bit for bit, :func:`quarterly` of the revealed world (what ``_reveal``
    computes). ``labels`` are the person, quarter and month labels of all the groups
    written to the same tables, ``g``'s persons from position ``at``.
    """
    p = w.params
    keep = frozenset(OUTCOMES) | {"di_phase"}  # as truth.potentials
    cols = np.arange(w.origin - p.pre_quarters, w.origin + p.post_quarters + 1)
    K = cols.size
    rows = slice(int(cols[0]), int(cols[-1]) + 1)
    qidx, midx = labels.quarter[at:at + g.m], labels.month[at:at + g.m]
    first, last = 3 * int(cols[0]), 3 * (int(cols[-1]) + 1)
    mcols = np.arange(first, last)
    nben = np.concatenate([[0], np.cumsum(g.benefit_rows)])  # benefit persons before each
    hist = np.arange(w.origin - p.history_quarters, w.origin)
    pots = (_Sink((w.n_quarters, g.m)), _Sink((w.n_quarters, g.m)))
    order: list[str] = []  # outcomes in the order quarterly() returns them

    def part(a: int, b: int) -> None:
        sub = subgroup(g, a, b)
        m = b - a
        q0 = aggregate(sub, monthly(sub, np.zeros(m, np.int8), p, need=keep), p, details=False, need=keep)
        q1 = aggregate(sub, monthly(sub, np.ones(m, np.int8), p, need=keep), p, details=False, need=keep)
        mo0, mo1 = q0.pop("_monthly"), q1.pop("_monthly")
        order[:] = list(q0)  # the same in every chunk
        for sink, q in zip(pots, (q0, q1)):
            for o, v in q.items():
                sink.get(o, v.dtype)[:, a:b] = v
        pick = arm[a:b].astype(bool)[None, :]
        qo = {o: np.where(pick, q1[o], q0[o]) for o in q0}
        del q0, q1
        if pre is not None and hist.size:
            pre[0][a:b] = qo["employed"][hist].mean(axis=0)
            pre[1][a:b] = qo["earnings"][hist].mean(axis=0)
        if details:
            def at_end(k: str) -> np.ndarray:  # revealed state in the last month of each quarter
                return np.where(pick, mo1[k][2::3], mo0[k][2::3])

            qo.update(job_details(sub.spells, at_end("employed"), at_end("flat"), at_end("on_di"),
                                  at_end("retired"), at_end("ub")))
        lo = panel_at + a * K
        pid = np.arange(at + a, at + b, dtype=np.int32)[:, None]
        _put(panel, "person_id", lo, np.broadcast_to(pid, (m, K)), labels.person_lut)
        _put(panel, "period", lo, (qidx[a:b, None] + cols[None, :]).astype(np.int32), labels.quarter_lut)
        for name in _PANEL_COLUMNS[2:]:
            if name in qo:
                lut = {"worker_class": _WC_LUT, "nace": _NACE_LUT, "di_phase": _PHASE}.get(name)
                _put(panel, name, lo, qo[name][rows].T, lut)
        del qo
        if not (benefits and bens is not None) or nben[b] == nben[a]:
            return
        keep_b = np.flatnonzero(sub.benefit_rows)
        every = keep_b.size == m

        def rev(k: str) -> np.ndarray:  # revealed monthly state, persons × months
            x1, x0 = mo1[k][first:last], mo0[k][first:last]
            if not every:
                x1, x0 = x1[:, keep_b], x0[:, keep_b]
                return np.where(pick[:, keep_b], x1, x0).T
            return np.where(pick, x1, x0).T

        on_di = rev("on_di")
        phase = np.where(on_di, np.where(rev("invalidity"), 2, 1), 0).astype(np.int8)
        lo = bens_at + int(nben[a]) * mcols.size
        n_b = keep_b.size
        pid_b = pid[keep_b]
        _put(bens, "person_id", lo, np.broadcast_to(pid_b, (n_b, mcols.size)), labels.person_lut)
        _put(bens, "month", lo, (midx[a + keep_b, None] + mcols[None, :]).astype(np.int32), labels.month_lut)
        _put(bens, "on_di", lo, on_di.astype(np.int8))
        _put(bens, "di_phase", lo, phase, _PHASE)
        _put(bens, "di_benefit", lo, rev("benefit"))
        _put(bens, "authorised_work", lo, rev("authorised").astype(np.int8))

    map_chunks(part, g.m)
    return pots[0].ordered(order), pots[1].ordered(order)


def _generate(
    w: World, tabs: tuple[str, ...], details: bool, small: bool
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame, _truth.Potentials | None]:
    """Frames and truths of :func:`generate`, each group in one pass (:func:`_one_pass`).

    The same tables, bit for bit, as the truths computed from :func:`_truth.potentials`
    and the frames from :func:`_reveal` (tests/test_synthetic_speed.py). A group's
    potential outcomes are freed once its truth is computed (the participants' are
    returned when ``small``, for :meth:`SyntheticTrial.rerandomize`).
    """
    pop = w.pop
    p = w.params
    arm = w.arm
    g = w.participants
    mg = w.member_group if "households" in tabs else None
    benefits = "benefits" in tabs
    K = p.pre_quarters + p.post_quarters + 1
    n_rows = (g.m + (mg.m if mg is not None else 0)) * K
    panel = _Sink((n_rows,))
    n_ben = int(g.benefit_rows.sum()) + (int(mg.benefit_rows.sum()) if mg is not None else 0)
    bens = _Sink((n_ben * 3 * K,)) if benefits else None
    pre = (np.zeros(pop.n), np.zeros(pop.n))
    labels = _Labels.of(w, [g] if mg is None else [g, mg])
    pots = _one_pass(
        w, g, arm, details=details, benefits=benefits, panel=panel, panel_at=0,
        bens=bens, bens_at=0, pre=pre, labels=labels, at=0,
    )
    truth, truth_late = _truth.participant_tables(w, pots)
    truth_rmst = _truth.rmst_table(w, pots=pots)
    kept = pots if small else None
    del pots  # free them before the members' pass (unless kept)
    if mg is not None:
        mpots = _one_pass(
            w, mg, arm[mg.index], details=details, benefits=benefits, panel=panel,
            panel_at=g.m * K, bens=bens, bens_at=int(g.benefit_rows.sum()) * 3 * K, pre=None,
            labels=labels, at=g.m,
        )
        mtruth = _truth.ate_table(w, members=True, member_pots=mpots, populations=("partners", "members"))
        del mpots
        truth = pd.concat([truth, mtruth], ignore_index=True)
    out: dict[str, Any] = {"assignment": _assignment_frame(pop, arm, pre[0], pre[1])}
    out["panel"] = pd.DataFrame(panel.ordered(_PANEL_COLUMNS), copy=False)
    out["benefits"] = (pd.DataFrame(bens.ordered(_BENEFIT_COLUMNS), copy=False)
                       if bens is not None and n_ben else None)
    out.update(_other_frames(w, arm, tabs))
    return out, truth, truth_late, truth_rmst, kept


def _reveal(
    w: World, arm: np.ndarray, tables: tuple[str, ...], details: bool,
    pots: _truth.Potentials | None = None,
) -> dict[str, Any]:
    """Frames of the world each person is assigned to (revealed outcomes).

    With the participants' potential outcomes ``pots`` (and no job details or monthly
    benefits to build), the panel is taken from them directly: Y = Y(arm).
    """
    pop = w.pop
    p = w.params
    g = w.participants
    panels: list[dict[str, np.ndarray]] = []
    bens: list[dict[str, np.ndarray]] = []
    pre_emp = np.zeros(pop.n)
    pre_earn = np.zeros(pop.n)
    # baseline history: identical in both worlds (IPS acts only after randomization)
    hist = np.arange(w.origin - p.history_quarters, w.origin)
    if pots is not None and not details and "benefits" not in tables:
        pick = arm.astype(bool)[None, :]
        qo = {o: np.where(pick, pots[1][o], pots[0][o]) for o in pots[0]}
        panels.append(_panel_frame(g, qo, w, details))
        if hist.size:
            pre_emp = qo["employed"][hist].mean(axis=0)
            pre_earn = qo["earnings"][hist].mean(axis=0)
        del qo
    else:
        # by chunks of persons, so that the monthly temporaries stay small
        def part(a: int, b: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
            sub = subgroup(g, a, b)
            qo = quarterly(sub, arm[a:b], p, details=details)
            frame = _panel_frame(sub, qo, w, details)
            if hist.size:
                pre_emp[a:b] = qo["employed"][hist].mean(axis=0)
                pre_earn[a:b] = qo["earnings"][hist].mean(axis=0)
            ben = _benefit_frame(sub, _slim(qo), w) if "benefits" in tables else None
            return frame, ben

        for frame, ben in map_chunks(part, g.m):
            panels.append(frame)
            if ben is not None:
                bens.append(ben)
    out: dict[str, Any] = {}
    out["assignment"] = _assignment_frame(pop, arm, pre_emp, pre_earn)
    mg = w.member_group
    if mg is not None and "households" in tables:
        marm = arm[mg.index]
        def member_part(
            a: int, b: int
        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
            sub = subgroup(mg, a, b)
            mq = quarterly(sub, marm[a:b], p, details=details)
            frame = _panel_frame(sub, mq, w, details)
            ben = None
            if "benefits" in tables and sub.benefit_rows.any():
                ben = _benefit_frame(sub, _slim(mq), w)
            return frame, ben

        for frame, ben in map_chunks(member_part, mg.m):
            panels.append(frame)
            if ben is not None:
                bens.append(ben)
    out["panel"] = _assemble(panels)
    out["benefits"] = _assemble(bens) if bens else None
    out.update(_other_frames(w, arm, tables))
    return out


def _other_frames(w: World, arm: np.ndarray, tables: tuple[str, ...]) -> dict[str, Any]:
    """Build the roster and take-up tables (``None`` when not asked for)."""
    pop = w.pop
    out: dict[str, Any] = {}
    if "households" in tables:
        from ips_impact.synthetic.households import roster_frame

        out["households"] = roster_frame(pop, w.members, w.index_lipro)
    else:
        out["households"] = None
    if "takeup" in tables:
        started = np.where(arm == 1, pop.takeup_if_ips, pop.takeup_if_control)
        date = pop.randomization_date + pop.ips_start_delay
        out["takeup"] = pd.DataFrame({
            "person_id": pop.person_id,
            "ips_started": started.astype(np.int64),
            "ips_start_date": pd.Series(
                np.where(started, date, np.datetime64("NaT")).astype("datetime64[ns]")
            ),
        })
    else:
        out["takeup"] = None
    return out


def _check_tables(tables: Sequence[str]) -> tuple[str, ...]:
    tabs = tuple(tables)
    unknown = [t for t in tabs if t not in TABLES]
    if unknown:
        raise DataContractError(
            f"unknown tables {unknown}", table="params", column="tables",
            fix=f"choose among {', '.join(TABLES)}",
        )
    missing = [t for t in ("assignment", "panel") if t not in tabs]
    if missing:
        raise DataContractError(
            f"tables must include {missing}", table="params", column="tables",
            fix="every synthetic trial has an assignment and a panel",
        )
    return tuple(t for t in TABLES if t in tabs)


def generate(
    *,
    n_persons: int = 1200,
    seed: int = 0,
    params: SyntheticParams | None = None,
    tables: Sequence[str] = TABLES,
    job_details: bool | None = None,
) -> SyntheticTrial:
    """Simulate a randomized IPS trial with both potential outcomes of everyone.

    Parameters
    ----------
    n_persons
        Number of randomized participants (IPS and control together); default 1,200
        as in the Belgian pilot (600 IPS trajectories + 600 controls).
    seed
        Seed of the sample. Randomness comes only from
        ``numpy.random.Generator(PCG64)`` streams spawned from it, one per component
        (population, households, design, job spells, paths…), so the same seed gives
        byte-identical frames and files.
    params
        :class:`SyntheticParams`; ``None`` uses the calibrated defaults.
    tables
        Tables to build. ``("assignment", "panel")`` is the fast path for coverage
        simulations: household members, the roster, monthly benefits and take-up are
        not built (and only the participants' truth is computed). The truth of the
        participants and the assignment are the same as with all tables.
    job_details
        Build ``sep_code``, ``worker_class`` and ``nace``; default: true unless the fast
        path (only assignment and panel) is asked for.

    Returns
    -------
    SyntheticTrial

    Examples
    --------
    >>> from ips_impact.synthetic import generate
    >>> trial = generate(n_persons=200, seed=1)
    >>> sorted(trial.frames())
    ['assignment', 'benefits', 'households', 'panel', 'takeup']
    """
    p = params if params is not None else SyntheticParams()
    if not isinstance(p, SyntheticParams):
        raise DataContractError(
            f"params must be a SyntheticParams, got {type(p).__name__}", table="params",
            fix="build it with SyntheticParams(...) or dataclasses.replace",
        )
    if isinstance(n_persons, bool) or not isinstance(n_persons, (int, np.integer)):
        raise DataContractError(
            f"n_persons must be an integer, got {n_persons!r}", table="params",
            column="n_persons", fix="pass e.g. n_persons=1200",
        )
    tabs = _check_tables(tables)
    details = (set(tabs) != {"assignment", "panel"}) if job_details is None else bool(job_details)
    members = "households" in tabs
    w = build_world(int(n_persons), int(seed), p, members=members)
    # keep the participants' potential outcomes for rerandomize() when they are small
    # (coverage simulations); large samples recompute them from the monthly paths
    small = n_persons * w.n_quarters <= _KEEP_POTENTIALS_CELLS
    frames, truth, truth_late, truth_rmst, pots = _generate(w, tabs, details, small)
    return SyntheticTrial(
        truth=truth, truth_late=truth_late, truth_rmst=truth_rmst,
        params=p, seed=int(seed), tables=tabs, job_details=details, _world=w,
        _pots=pots if small else None, **frames,
    )


@dataclass(frozen=True)
class _Draw:
    """The columns of one synthetic trial that a simulation reads (see :func:`_draw`).

    ``effects[outcome]`` holds the participants' sample effects ``mean(Y(1) - Y(0))``
    (the ``ate`` column of :attr:`SyntheticTrial.truth`), one row per group of
    ``groups`` ("all" and the regions present), one column per event time of ``ks``:
    the difference of the group means of Y(1) and Y(0) kept in ``_means``.
    """

    assignment: pd.DataFrame
    panel: pd.DataFrame
    groups: tuple[str, ...]
    ks: np.ndarray
    _means: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False, default_factory=dict)
    _sizes: np.ndarray | None = field(repr=False, default=None)

    @property
    def effects(self) -> dict[str, np.ndarray]:
        """Sample effects of every drawn outcome (groups × event times)."""
        return {o: t - c for o, (c, t) in self._means.items()}

    @property
    def truth(self) -> pd.DataFrame:
        """The participants' rows of :attr:`SyntheticTrial.truth` for the drawn outcomes (built on demand)."""
        names = list(self._means)
        c = np.stack([self._means[o][0] for o in names])
        t = np.stack([self._means[o][1] for o in names])
        assert self._sizes is not None, "built by _draw"
        df = _truth._frame(list(self.groups), self._sizes, self.ks, names, c, t)
        df.insert(0, "population", "participants")
        df = df.rename(columns={"effect": "ate"})
        df["estimand"] = "ATE"
        return df

    def ate(self, outcome: str, k: int, group: str = "all") -> float:
        """Return the participants' sample effect of ``outcome`` at event time ``k`` in ``group``."""
        col = int(k) - int(self.ks[0])
        if not 0 <= col < self.ks.size or group not in self.groups or outcome not in self._means:
            raise DataContractError(
                f"no truth for {outcome!r} at k = {k} in group {group!r}", table="truth",
                fix=f"draw it: outcomes {sorted(self._means)}, k {int(self.ks[0])}..{int(self.ks[-1])}, "
                f"groups {list(self.groups)}",
            )
        c, t = self._means[outcome]
        g = self.groups.index(group)
        return float(t[g, col] - c[g, col])


def _draw(
    *, n_persons: int, seed: int, params: SyntheticParams, outcomes: Sequence[str],
    assignment_columns: Sequence[str],
) -> _Draw:
    """Build columns of ``generate(..., tables=("assignment", "panel"), job_details=False)``.

    The simulations of :func:`ips_impact.power.power` read a few columns of a trial:
    ``assignment[assignment_columns]``, ``panel[["person_id", "period", *outcomes]]``
    and the participants' sample effects of ``outcomes`` (the ``ate`` of ``truth``).
    This draws the same sample (the same :func:`build_world`, hence the same random
    streams) and builds only those: they are equal, bit for bit, to what
    :func:`generate` returns (tests/test_synthetic_speed.py). The quarterly outcomes are
    deterministic functions of the simulated monthly paths, each computed on its own,
    so restricting the outcomes computed does not change any of them; the effects are
    the truth table's own means (:func:`ips_impact.synthetic.truth.ate_table`: the
    same arrays, the same operations), without the table.
    """
    from ips_impact.synthetic.world import quarterly_chunked

    p = params
    w = build_world(int(n_persons), int(seed), p, members=False)
    g = w.participants
    pre = [c for c in ("pre_employment_share", "pre_earnings") if c in assignment_columns]
    names = tuple(dict.fromkeys(outcomes))
    wanted = frozenset((*names, *(("employed", "earnings") if pre else ())))
    y0 = quarterly_chunked(g, np.zeros(g.m, dtype=np.int8), p, details=False, only=wanted)
    y1 = quarterly_chunked(g, np.ones(g.m, dtype=np.int8), p, details=False, only=wanted)
    ks = np.arange(-p.pre_quarters, p.post_quarters + 1)
    rows = slice(int(w.origin + ks[0]), int(w.origin + ks[-1]) + 1)
    # the groups and weights of truth._table for the participants (everyone in the sample)
    present, ind = _truth._present(*_truth._groups(g.region))
    groups = tuple(present)
    means = {}
    for o in names:
        c, t, _ = _truth._means(y0[o][rows], y1[o][rows], ind)
        means[o] = (c, t)
    pick = w.arm.astype(bool)[None, :]
    qo = {o: np.where(pick, y1[o], y0[o]) for o in wanted}
    pre_emp = np.zeros(w.pop.n)
    pre_earn = np.zeros(w.pop.n)
    hist = np.arange(w.origin - p.history_quarters, w.origin)
    if pre and hist.size:
        pre_emp = qo["employed"][hist].mean(axis=0)
        pre_earn = qo["earnings"][hist].mean(axis=0)
    keep_a = list(dict.fromkeys(assignment_columns))
    a = _assignment_frame(w.pop, w.arm, pre_emp, pre_earn, columns=keep_a)
    order = [c for c in keep_a if c in a.columns]
    if list(a.columns) != order:  # built in the table's order; the caller's order asked
        a = a[order]
    qidx, labels_q = quarter_labels(g.start_month, w.n_quarters)
    data: dict[str, np.ndarray] = {
        "person_id": np.repeat(g.person_id, ks.size),
        "period": labels_q[(qidx[:, None] + (w.origin + ks)[None, :]).ravel()],
    }
    for o in names:
        data[o] = np.ascontiguousarray(qo[o][rows].T).ravel()
    return _Draw(assignment=a, panel=_assemble([data]), groups=groups, ks=ks, _means=means,
                 _sizes=ind.sum(axis=0))


@dataclass(frozen=True)
class PopulationTruth:
    """Monte-Carlo approximation of a super-population effect.

    ``ate`` is the mean of Y(1) − Y(0) over ``n`` simulated persons, ``std_error`` its
    Monte-Carlo standard error sd(Y(1) − Y(0)) / sqrt(n): the population effect lies
    within ``ate ± 2 std_error`` with ≈ 95% probability.
    """

    outcome: str
    k: int
    population: str
    group: str
    n: int
    ate: float
    std_error: float
    control_mean: float
    treated_mean: float


def population_truth(
    params: SyntheticParams | None = None,
    *,
    outcome: str = "work_on_di",
    k: int = 6,
    n: int = 200_000,
    seed: int = 2_000_000_000,
    population: str = "participants",
    group: str = "all",
) -> PopulationTruth:
    """Super-population effect of ``outcome`` at event time ``k`` (Monte Carlo).

    Simulations that draw a new sample in each replication should check coverage
    against this effect, not against one sample's ``truth``. It is computed on one
    large synthetic sample of ``n`` participants (only up to ``k`` quarters after
    randomization, so it is quick) and is an approximation with Monte-Carlo standard
    error ``std_error`` (about 0.001 for an employment rate with the default
    n = 200,000); use a seed different from those of the replications.

    Parameters
    ----------
    params
        Parameters of the data-generating process (defaults if ``None``).
    outcome
        Outcome column (one of the panel's numeric outcomes).
    k
        Event time in quarters since the randomization quarter.
    n
        Number of participants simulated.
    seed
        Seed of the large sample.
    population
        "participants", "partners" or "members".
    group
        "all" or a region code.
    """
    p = params if params is not None else SyntheticParams()
    if outcome not in OUTCOMES:
        raise DataContractError(
            f"unknown outcome {outcome!r}", table="truth", column="outcome",
            fix=f"use one of {', '.join(OUTCOMES)}",
        )
    if not -p.history_quarters <= k:
        raise DataContractError(
            f"k = {k} is before the simulated history", table="truth", column="k",
            fix=f"use k ≥ -{p.history_quarters}",
        )
    # a shorter window does not change the paths up to k (draws are made month by
    # month and job spells are pre-drawn), so simulate only what is needed
    short = dataclasses.replace(p, post_quarters=max(k, 0), pre_quarters=min(p.pre_quarters, max(-k, 0)))
    w = build_world(int(n), int(seed), short, members=population != "participants")
    g, mask = _population_group(w, population)
    if group != "all":
        if group not in REGIONS:
            raise DataContractError(
                f"unknown group {group!r}", table="truth", column="group",
                fix="use 'all', 'VL', 'WAL' or 'BXL'",
            )
        mask = mask & (g.region == REGIONS.index(group))
    col = w.origin + k
    only = {outcome}
    y0 = quarterly(g, np.zeros(g.m, dtype=np.int8), short, details=False, only=only)[outcome][col][mask].astype(float)
    y1 = quarterly(g, np.ones(g.m, dtype=np.int8), short, details=False, only=only)[outcome][col][mask].astype(float)
    d = y1 - y0
    m = int(mask.sum())
    return PopulationTruth(
        outcome=outcome, k=int(k), population=population, group=group, n=m,
        ate=float(d.mean()), std_error=float(d.std(ddof=1) / np.sqrt(m)) if m > 1 else float("nan"),
        control_mean=float(y0.mean()), treated_mean=float(y1.mean()),
    )
