"""The two potential worlds of a synthetic sample and how they are revealed.

:func:`build_world` draws the sample (population, households, job spells) and
simulates the monthly paths of both worlds. :func:`quarterly` turns the monthly paths
of a chosen world per person into the quarterly LMD outcomes; the same function gives
the potential outcomes Y(0), Y(1) (all persons in one world) and the revealed outcomes
(each person in the world of their assigned arm), so revealed = potential by
construction.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ips_impact.synthetic import dynamics as dyn
from ips_impact.synthetic.households import Members, draw_households
from ips_impact.synthetic.params import REGIONS, SyntheticParams
from ips_impact.synthetic.population import Population, draw_assignment, draw_population

__all__ = ["World", "Group", "build_world", "quarterly", "aggregate", "job_details", "monthly",
           "OUTCOMES", "COMPONENTS", "rngs_for"]

#: Numeric outcome columns of the panel (those for which the truth is computed).
OUTCOMES: tuple[str, ...] = (
    "employed", "work_on_di", "earnings", "fte", "days_worked", "n_jobs",
    "self_employed", "temp_agency", "permanent_contract", "on_di", "di_benefit",
    "authorised_work", "unemployment_benefit",
)

#: Random components, each with its own child SeedSequence (append only: the order
#: fixes the streams, so adding a component never shifts the others).
COMPONENTS: tuple[str, ...] = (
    "ids", "population", "households", "design", "spells_participants",
    "paths_participants", "spells_members", "paths_members",
)


def rngs_for(seed: int) -> dict[str, np.random.Generator]:
    """One independent PCG64 generator per component, spawned from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(len(COMPONENTS))
    return {name: np.random.Generator(np.random.PCG64(ss)) for name, ss in zip(COMPONENTS, children)}


@dataclass(frozen=True)
class Group:
    """A group of persons simulated together (participants, or members with a panel)."""

    person_id: np.ndarray
    start_month: np.ndarray  # absolute month index of column 0
    rand_col: np.ndarray
    onset_col: np.ndarray
    retire_col: np.ndarray
    wage_ft: np.ndarray
    benefit_primary: np.ndarray
    benefit_invalidity: np.ndarray
    ub_amount: np.ndarray  # 0 when not eligible
    paths: dyn.Paths
    spells: dyn.SpellDraws
    index: np.ndarray  # position of the (index) participant in the population
    region: np.ndarray  # region code of the index participant
    role: np.ndarray  # "index", "partner", "child"
    baseline: np.ndarray  # in the baseline roster (always true for participants)
    benefit_rows: np.ndarray  # bool: has monthly insurer records

    @property
    def m(self) -> int:
        """Number of persons in the population."""
        return int(self.person_id.size)


@dataclass(frozen=True)
class World:
    """Everything drawn for one sample: population, members and both potential worlds."""

    params: SyntheticParams
    seed: int
    pop: Population
    members: Members
    index_lipro: np.ndarray
    arm: np.ndarray  # int8 assigned arm of the original draw
    n_treated: np.ndarray  # IPS places per stratum (code)
    participants: Group
    member_group: Group | None
    origin: int  # quarters simulated before the randomization quarter
    n_quarters: int


def _benefits(wage: np.ndarray, situation: np.ndarray, p: SyntheticParams) -> tuple[np.ndarray, np.ndarray]:
    """Monthly DI benefit in primary incapacity and in invalidity (before work cuts)."""
    lost = np.minimum(p.benefit_scale * wage, p.wage_cap)
    rate_inv = np.array([p.replacement_dependants, p.replacement_single, p.replacement_cohabitant])
    floor = np.array([p.benefit_min_dependants, p.benefit_min_single, p.benefit_min_cohabitant])
    prim = np.clip(p.replacement_primary * lost, floor[situation], p.benefit_max)
    inv = np.clip(rate_inv[situation] * lost, floor[situation], p.benefit_max)
    return prim, inv


def build_world(n: int, seed: int, p: SyntheticParams, *, members: bool = True) -> World:
    """Draw a sample and simulate both potential worlds.

    Parameters
    ----------
    n
        Number of randomized participants.
    seed
        Seed of the whole sample (components get independent child streams).
    p
        Parameters.
    members
        Simulate the household members' panels (skipped by the fast path).
    """
    rngs = rngs_for(seed)
    pop = draw_population(n, p, rngs)
    pop, mem, index_lipro = draw_households(pop, p, rngs["households"], rngs["ids"], members=members)
    # design: complete randomization within strata, p_treated of each stratum
    n_strata = int(pop.stratum_code.max()) + 1
    size = np.bincount(pop.stratum_code, minlength=n_strata)
    want = size * p.p_treated
    n_treated = np.floor(want).astype(np.int64)
    frac = want - n_treated
    n_treated += (rngs["design"].random(n_strata) < frac).astype(np.int64)
    arm = draw_assignment(rngs["design"], pop.stratum_code, n_treated)

    origin = max(p.history_quarters, p.pre_quarters)
    n_q = origin + p.post_quarters + 1
    T = 3 * n_q
    start = (pop.rand_month // 3) * 3 - 3 * origin
    rand_col = pop.rand_month - start
    onset_col = rand_col - pop.di_months
    retire_col = rand_col + np.floor((p.retirement_age - pop.age) * 12.0).astype(np.int64)
    z = pop.employability
    reg_rate = np.array([p.entry_rate_post.get(r, 0.0) for r in REGIONS])[pop.region]
    reg_eff = np.array([p.effect_by_region.get(r, 1.0) for r in REGIONS])[pop.region]
    amp = p.effect_size * reg_eff
    boost = np.stack([pop.takeup_if_control * amp, pop.takeup_if_ips * amp])
    sp = dyn.draw_spells(n, p, rngs["spells_participants"])
    # the more part-time jobs of the IPS world are jobs found with IPS: only for
    # persons who start IPS in that world (exclusion restriction)
    d = np.stack([pop.takeup_if_control, pop.takeup_if_ips])[:, :, None]
    sp = dataclasses.replace(sp, fte=np.where(d, sp.fte[1][None], sp.fte[0][None]))
    simulate_participants = functools.partial(
        dyn.simulate_paths,
        rngs["paths_participants"], n_months=T, origin=origin, rand_col=rand_col,
        onset_col=onset_col, retire_col=retire_col, di_exit_from=rand_col + 1,
        active_from=np.zeros(n, dtype=np.int64),
        h_in_no_di=p.entry_rate_no_di * np.exp(z), h_in_di_pre=p.entry_rate_pre_di * np.exp(z),
        h_in_di_post=reg_rate * np.exp(z),
        h_out_no_di=np.full(n, p.exit_rate_no_di), h_out_di=np.full(n, p.job_exit_rate),
        boost=boost,
        di_exit=(p.di_exit_rate, p.di_exit_rate_working, p.di_exit_rate_working_above_half),
        di_reentry=p.di_reentry_rate,
        di_exit_mult=(p.ips_di_exit_multiplier - 1.0) * np.stack(
            [pop.takeup_if_control, pop.takeup_if_ips]
        ),
        p_emp0_di=p.p_employed_at_origin_di, p_emp0_no_di=p.p_employed_at_origin_no_di,
        onset_job_loss=p.onset_job_loss, spell_fte=sp.fte, p=p,
    )
    # the participants' and the members' paths draw from their own streams and share
    # nothing, so they are simulated at the same time (numpy releases the GIL)
    pool = ThreadPoolExecutor(max_workers=1) if members and CHUNK_THREADS > 1 else None
    future = pool.submit(simulate_participants) if pool is not None else None
    member_group = None
    if members:
        sel = np.flatnonzero(mem.has_panel)
        m = sel.size
        ix = mem.index[sel]
        age = mem.age[sel]
        mz = mem.employability[sel]
        on_di = mem.on_di[sel]
        eff = mem.effect[sel]
        ent = mem.entry_rate[sel]
        ext = mem.exit_rate[sel]
        msp = dyn.draw_spells(m, p, rngs["spells_members"])
        # members' jobs do not depend on the arm: both worlds use the control fte
        msp = _same_fte(msp)
        mrand = rand_col[ix]
        mboost = np.stack([pop.takeup_if_control[ix] * eff, pop.takeup_if_ips[ix] * eff])
        mpaths = dyn.simulate_paths(
            rngs["paths_members"], n_months=T, origin=origin, rand_col=mrand,
            onset_col=np.where(on_di, -1, T + 1),
            retire_col=mrand + np.floor((p.retirement_age - age) * 12.0).astype(np.int64),
            di_exit_from=np.full(m, T + 1), active_from=mrand - np.floor((age - 16.0) * 12.0).astype(np.int64),
            h_in_no_di=ent * np.exp(mz), h_in_di_pre=0.25 * ent * np.exp(mz),
            h_in_di_post=0.25 * ent * np.exp(mz), h_out_no_di=ext, h_out_di=ext,
            boost=mboost, di_exit=(0.0, 0.0, 0.0), di_reentry=0.0,
            di_exit_mult=np.zeros((2, m)),
            p_emp0_di=0.1, p_emp0_no_di=float(np.mean(ent / (ent + ext))) if m else 0.5,
            onset_job_loss=0.0, spell_fte=msp.fte, p=p,
        )
        msit = np.where(mem.role[sel] == "partner", 2, 1).astype(np.int8)
        mprim, minv = _benefits(mem.wage_ft[sel], msit, p)
        member_group = Group(
            person_id=mem.person_id[sel], start_month=start[ix], rand_col=mrand,
            onset_col=np.where(on_di, -60, T + 1),
            retire_col=mrand + np.floor((p.retirement_age - age) * 12.0).astype(np.int64),
            wage_ft=mem.wage_ft[sel], benefit_primary=mprim, benefit_invalidity=minv,
            ub_amount=np.zeros(m), paths=mpaths, spells=msp, index=ix, region=pop.region[ix],
            role=mem.role[sel], baseline=mem.baseline[sel], benefit_rows=on_di,
        )
    if future is not None and pool is not None:
        paths = future.result()
        pool.shutdown()
    else:
        paths = simulate_participants()
    prim, inv = _benefits(pop.wage_ft, pop.situation, p)
    participants = Group(
        person_id=pop.person_id, start_month=start, rand_col=rand_col, onset_col=onset_col,
        retire_col=retire_col, wage_ft=pop.wage_ft, benefit_primary=prim,
        benefit_invalidity=inv, ub_amount=np.where(pop.ub_eligible, pop.ub_amount, 0.0),
        paths=paths, spells=sp, index=np.arange(n), region=pop.region,
        role=np.full(n, "index", dtype=object), baseline=np.ones(n, dtype=bool),
        benefit_rows=np.ones(n, dtype=bool),
    )
    return World(
        params=p, seed=seed, pop=pop, members=mem, index_lipro=index_lipro, arm=arm,
        n_treated=n_treated, participants=participants, member_group=member_group,
        origin=origin, n_quarters=n_q,
    )


#: Persons per chunk when aggregating months to quarters (bounds the temporaries). Small
#: enough that a chunk's spell tables (persons × 16 spells) stay in the CPU caches for the
#: gathers at the job held each month, and its temporaries are a few MB (measured: 4,096
#: is ~15% less CPU than 32,768 at 250,000 persons × 60 quarters); the output does not
#: depend on it.
CHUNK = 4_096


def subgroup(g: Group, a: int, b: int) -> Group:
    """Persons ``a:b`` of a group (views, no copies)."""
    sl = slice(a, b)
    paths = dataclasses.replace(
        g.paths, employed=g.paths.employed[:, :, sl], on_di=g.paths.on_di[:, :, sl],
        spell=g.paths.spell[:, :, sl], spell_at_rand=g.paths.spell_at_rand[sl],
    )
    sp = g.spells
    spells = dataclasses.replace(
        sp, **{f.name: (getattr(sp, f.name)[:, sl] if f.name == "fte" else getattr(sp, f.name)[sl])
               for f in dataclasses.fields(sp)}
    )
    vals = {f.name: getattr(g, f.name) for f in dataclasses.fields(g)}
    for name, v in vals.items():
        if isinstance(v, np.ndarray):
            vals[name] = v[sl]
    vals.update(paths=paths, spells=spells)
    return Group(**vals)


def chunks(m: int, size: int | None = None) -> list[tuple[int, int]]:
    """Person ranges of at most ``size`` (default :data:`CHUNK`) covering ``0:m``."""
    size = CHUNK if size is None else size
    return [(a, min(a + size, m)) for a in range(0, max(m, 1), size)] if m else []


_T = TypeVar("_T")

#: Chunks of persons built at once. The heavy steps (gathers, ufuncs, reductions on
#: arrays of a chunk) release the GIL, so two threads use two cores; each chunk's result
#: depends on its persons only and the results are kept in chunk order, so the output
#: is the same bit for bit with any number of threads.
CHUNK_THREADS = 2


def map_chunks(fn: Callable[[int, int], _T], m: int, size: int | None = None) -> list[_T]:
    """``[fn(a, b) for a, b in chunks(m, size)]``, up to :data:`CHUNK_THREADS` at once."""
    spans = chunks(m, size)
    threads = min(CHUNK_THREADS, len(spans), os.cpu_count() or 1)
    if threads <= 1:
        return [fn(a, b) for a, b in spans]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda ab: fn(*ab), spans))


def quarterly_chunked(
    g: Group, sel: np.ndarray, p: SyntheticParams, *, details: bool = True,
    only: frozenset[str] | set[str] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`quarterly` computed by chunks of persons (no ``_monthly`` in the result)."""
    def one(a: int, b: int) -> dict[str, np.ndarray]:
        q = quarterly(subgroup(g, a, b), sel[a:b], p, details=details, only=only)
        q.pop("_monthly")
        return q

    parts = map_chunks(one, g.m)
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([q.pop(k) for q in parts], axis=1) for k in list(parts[0])}


def _same_fte(s: dyn.SpellDraws) -> dyn.SpellDraws:
    return dataclasses.replace(s, fte=np.stack([s.fte[0], s.fte[0]]))


def _pick(a: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """World ``sel[i]`` of person i from an array (T, 2, m) → (T, m)."""
    if not sel.any():
        return a[:, 0, :]
    if sel.all():
        return a[:, 1, :]
    return np.where(sel.astype(bool)[None, :], a[:, 1, :], a[:, 0, :])


def _round2(a: np.ndarray) -> np.ndarray:
    """``np.round(a, 2)`` in place: numpy's own steps (× 100, rint, ÷ 100), no temporaries."""
    np.multiply(a, 100.0, out=a)
    np.rint(a, out=a)
    np.true_divide(a, 100.0, out=a)
    return a


_FTE_OUTCOMES = frozenset({"earnings", "days_worked", "fte", "di_benefit"})


def monthly(
    g: Group, sel: np.ndarray, p: SyntheticParams, *, need: frozenset[str] | None = None
) -> dict[str, np.ndarray]:
    """Monthly states of the world ``sel`` (0/1 per person), arrays (T, m).

    ``flat`` indexes the person × spell tables (``table.ravel()[flat]``) at the job
    held (or last held) in each month. ``need`` (quarterly outcome names) restricts
    the work to what those outcomes use; ``None`` computes everything.
    """
    def wanted(*names: str) -> bool:
        return need is None or any(n in need for n in names)

    m = g.m
    S = dyn.N_SPELLS
    T = g.paths.n_months
    emp = _pick(g.paths.employed, sel)
    di = _pick(g.paths.on_di, sel)
    spell_no = _pick(g.paths.spell, sel)
    # spell draws are re-used cyclically; spell numbers count jobs from 0 (never
    # negative), so with a power-of-two number of draws the remainder is a bit mask
    cur = ((spell_no & np.int16(S - 1)) if S & (S - 1) == 0 else (spell_no % np.int16(S))).astype(np.int32)
    rows = np.arange(m, dtype=np.int32)[None, :]
    flat = rows * S + cur
    out: dict[str, np.ndarray] = {"employed": emp, "on_di": di, "flat": flat}
    col = np.arange(T, dtype=np.int32)[:, None]
    if wanted(*_FTE_OUTCOMES):
        # jobs held by the randomization month are the same in both worlds
        new = spell_no > g.paths.spell_at_rand[None, :]
        world = np.where(sel.astype(bool)[:, None], g.spells.fte[1], g.spells.fte[0])
        table = np.concatenate([g.spells.fte[0], world], axis=1).ravel()  # (m, 2S)
        fte = table[rows * (2 * S) + cur + S * new]
        np.copyto(fte, 0.0, where=~emp)
        out["fte"] = fte
        del new
    del spell_no, cur
    if wanted("di_phase", "di_benefit"):
        inv = col >= (g.onset_col + 12)[None, :]  # invalidity after a year on DI
        out["invalidity"] = inv & di
    if wanted("di_benefit"):
        # in place, the same operations in the same order as
        # round((1 - max(0, fte - threshold)) * full_rate, 2), 0 off DI
        cut = np.subtract(out["fte"], p.authorised_work_threshold)
        np.maximum(0.0, cut, out=cut)  # 0 when not working
        np.subtract(1.0, cut, out=cut)
        full = np.where(inv, g.benefit_invalidity[None, :], g.benefit_primary[None, :])
        full *= cut
        np.copyto(full, 0.0, where=~di)
        out["benefit"] = _round2(full)
        del full, cut
    if wanted("unemployment_benefit", "sep_code"):
        retired = col >= g.retire_col[None, :]
        out["retired"] = retired
        out["ub"] = np.where((~emp) & (~di) & (~retired), g.ub_amount[None, :], 0.0)
    if wanted("authorised_work"):
        out["authorised"] = emp & di & g.spells.authorised.ravel()[flat]
    return out


def quarterly(
    g: Group, sel: np.ndarray, p: SyntheticParams, *, details: bool = True,
    only: frozenset[str] | set[str] | None = None,
) -> dict[str, np.ndarray]:
    """Quarterly LMD outcomes of the world ``sel`` per person, arrays (Q, m).

    ``employed`` and the job characteristics refer to the last month of the quarter
    (LMD codes the position on the last day); earnings and days are sums over the
    quarter; DI benefit and unemployment benefit are monthly means; DI flags are
    "any month". With ``details=False`` the categorical job characteristics and
    ``sep_code`` are skipped (fast path); ``only`` restricts the outcomes computed.
    """
    need = None if only is None else frozenset(only) | ({"sep_code"} if details else frozenset())
    return aggregate(g, monthly(g, sel, p, need=need), p, details=details, need=need)


def aggregate(
    g: Group, mo: dict[str, np.ndarray], p: SyntheticParams, *, details: bool = True,
    need: frozenset[str] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`quarterly` from the monthly states ``mo`` of :func:`monthly` (kept as ``_monthly``).

    ``need`` is the set of outcome names to compute (``None``: all).
    """
    T, m = mo["employed"].shape
    Q = T // 3

    def wanted(name: str) -> bool:
        return need is None or name in need

    def q3(a: np.ndarray) -> np.ndarray:
        return a.reshape(Q, 3, m)

    sp = g.spells
    emp_m = mo["employed"]
    emp = q3(emp_m)[:, 2]
    last = q3(mo["flat"])[:, 2]
    on_di = np.asarray(q3(mo["on_di"]).any(axis=1))

    def at_last(table: np.ndarray) -> np.ndarray:
        return table.ravel()[last]

    out: dict[str, np.ndarray] = {
        "employed": emp.astype(np.int8),
        "on_di": on_di.astype(np.int8),
        "work_on_di": (emp & on_di).astype(np.int8),
    }
    if wanted("earnings"):
        wage = mo["fte"] * g.wage_ft[None, :]
        wage *= sp.wage_factor.ravel()[mo["flat"]]
        out["earnings"] = _round2(q3(_round2(wage)).sum(axis=1))
        del wage
    if wanted("days_worked"):
        # round(days_per_month * (0.3 + 0.7 * fte)), in place (+ and * commute exactly)
        days = np.multiply(mo["fte"], 0.7)
        days += 0.3
        days *= p.days_per_month
        np.rint(days, out=days)  # np.round(x) is rint
        np.copyto(days, 0.0, where=~emp_m)
        out["days_worked"] = q3(days).sum(axis=1).astype(np.int16)
        del days
    if wanted("fte"):
        out["fte"] = q3(mo["fte"])[:, 2].copy()
    if wanted("self_employed"):
        out["self_employed"] = (emp & at_last(sp.self_employed)).astype(np.int8)
    if wanted("n_jobs"):
        out["n_jobs"] = np.where(emp, at_last(sp.n_jobs), 0).astype(np.int8)
    if wanted("temp_agency"):
        out["temp_agency"] = (emp & at_last(sp.temp_agency)).astype(np.int8)
    if wanted("permanent_contract"):
        out["permanent_contract"] = (emp & at_last(sp.permanent)).astype(np.int8)
    if wanted("di_benefit"):
        out["di_benefit"] = q3(mo["benefit"]).mean(axis=1)
    if wanted("authorised_work"):
        out["authorised_work"] = np.asarray(q3(mo["authorised"]).any(axis=1)).astype(np.int8)
    if wanted("unemployment_benefit"):
        out["unemployment_benefit"] = q3(mo["ub"]).mean(axis=1)
    if wanted("di_phase"):
        # DI phase of the quarter: the phase of its last month on DI (phases only go
        # from primary to invalidity, so "invalidity in any month" is that phase)
        inv_q = q3(mo["invalidity"]).any(axis=1)
        out["di_phase"] = np.where(on_di, np.where(inv_q, 2, 1), 0).astype(np.int8)
    if details:
        out.update(job_details(
            g.spells, emp, last, q3(mo["on_di"])[:, 2], q3(mo["retired"])[:, 2], q3(mo["ub"])[:, 2],
        ))
    out["_monthly"] = mo  # type: ignore[assignment]
    return out


def job_details(
    sp: dyn.SpellDraws, emp: np.ndarray, last: np.ndarray, di_last: np.ndarray,
    ret_last: np.ndarray, ub_last: np.ndarray,
) -> dict[str, np.ndarray]:
    """``nace``, ``worker_class`` and ``sep_code`` of each quarter, arrays (Q, m).

    From the states of the quarter's last month (LMD codes the position on the last
    day): employed ``emp``, spell-table index ``last`` (see :func:`monthly`), on DI,
    retired, and the unemployment benefit ``ub_last``. Elementwise per person and quarter.
    """
    def at_last(table: np.ndarray) -> np.ndarray:
        return table.ravel()[last]

    self_e = at_last(sp.self_employed)
    salaried = emp & ~self_e
    civil = at_last(sp.civil_servant)
    ub_pos = ub_last > 0
    return {
        "nace": np.where(emp, at_last(sp.nace), -1).astype(np.int8),
        "worker_class": np.where(salaried, at_last(sp.worker_class), -1).astype(np.int8),
        "sep_code": np.where(
            emp, np.where(self_e, 121, np.where(civil, 112, 111)),
            np.where(ret_last, 331, np.where(di_last, 311, np.where(ub_pos, 211, 321))),
        ).astype(np.int16),
    }


def redraw(w: World, rng: np.random.Generator) -> np.ndarray:
    """Return a new assignment drawn exactly as the design did (same counts per stratum)."""
    return draw_assignment(rng, w.pop.stratum_code, w.n_treated)


def quarter_labels(start_month: np.ndarray, n_q: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-person quarter codes (absolute) and the label lookup table."""
    q0 = start_month // 3
    lo, hi = int(q0.min()), int(q0.max()) + n_q
    labels = np.array([f"{q // 4}Q{q % 4 + 1}" for q in range(lo, hi)], dtype=object)
    return q0 - lo, labels


def month_labels(start_month: np.ndarray, n_m: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = int(start_month.min()), int(start_month.max()) + n_m
    labels = np.array([f"{mm // 12}-{mm % 12 + 1:02d}" for mm in range(lo, hi)], dtype=object)
    return start_month - lo, labels
