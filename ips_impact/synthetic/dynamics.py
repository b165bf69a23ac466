"""Month-by-month simulation of both potential worlds (control and IPS) at once.

Both worlds share every random draw (common random numbers): before randomization the
two paths are identical, and afterwards they differ only because IPS raises the
job-finding hazard of IPS starters (and of their household members). The loop runs
over months; every step is vectorised over persons and over the two arms.

A person's window starts at the first month of the quarter ``origin`` quarters before
the randomization quarter, so all arrays are aligned on event time: column ``t`` of a
person is month ``t`` of their window and quarter ``q = t // 3`` is event time
``k = q - origin``.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ips_impact.synthetic.params import SyntheticParams

__all__ = ["Paths", "SpellDraws", "simulate_paths", "draw_spells", "effect_shape", "N_SPELLS"]

#: Number of pre-drawn job spells per person; spell ``j`` re-uses draw ``j % N_SPELLS``.
N_SPELLS = 16

#: Threads for the months of a large group, and the smallest part worth a thread.
_PATH_THREADS = 2
_PATH_SPLIT_MIN = 65_536

NACE = np.array(list("GQNCIPOHMSFJ"), dtype=object)
_NACE_P = np.array([0.16, 0.18, 0.06, 0.10, 0.08, 0.06, 0.06, 0.06, 0.06, 0.08, 0.05, 0.05])
WORKER_CLASS = np.array(["blue_collar", "white_collar", "civil_servant", "other"], dtype=object)


@dataclass(frozen=True)
class SpellDraws:
    """Characteristics of the pre-drawn job spells, arrays (m, N_SPELLS).

    ``fte`` has an arm axis first (2, m, N_SPELLS): the same draw gives a lower
    part-time fraction in the IPS world.
    """

    fte: np.ndarray  # (2, m, S) float64
    self_employed: np.ndarray  # bool
    n_jobs: np.ndarray  # int8 (0 for self-employment)
    civil_servant: np.ndarray  # bool
    temp_agency: np.ndarray  # bool
    permanent: np.ndarray  # bool
    nace: np.ndarray  # int8 codes into NACE
    worker_class: np.ndarray  # int8 codes into WORKER_CLASS
    wage_factor: np.ndarray  # float64
    authorised: np.ndarray  # bool


@dataclass(frozen=True)
class Paths:
    """Monthly states of both worlds, arrays (T, 2, m) — time, arm, person."""

    employed: np.ndarray  # bool
    on_di: np.ndarray  # bool
    spell: np.ndarray  # int16: index into the spell draws of the current/last job
    n_months: int
    origin: int  # quarters simulated before the randomization quarter
    spell_at_rand: np.ndarray  # (m,) spells started by the randomization month


def effect_shape(s: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Time shape of the IPS boost, ``s`` = months since the randomization month.

    ``(1 - exp(-s / ramp)) * (floor + (1 - floor) * exp(-s / fade))`` for s ≥ 0, 0 before.
    """
    s = np.asarray(s, dtype=float)
    pos = np.maximum(s, 0.0)
    ramp = 1.0 - np.exp(-pos / max(p.effect_ramp_months, 1e-9))
    fade = p.effect_floor + (1.0 - p.effect_floor) * np.exp(-pos / max(p.effect_fade_months, 1e-9))
    return np.where(s >= 0, ramp * fade, 0.0)


def draw_spells(m: int, p: SyntheticParams, rng: np.random.Generator) -> SpellDraws:
    """Pre-draw N_SPELLS job spells per person (independent of the panel length)."""
    shape = (m, N_SPELLS)
    z = rng.standard_normal(shape)
    u = rng.random((7,) + shape)

    def fte_of(mean: float) -> np.ndarray:
        raw = np.clip(mean + p.fte_sd * z, p.fte_min, 1.0)
        return np.clip(np.round(raw * 20.0) / 20.0, p.fte_min, 1.0)

    fte = np.stack([fte_of(p.fte_mean), fte_of(p.fte_mean + p.ips_fte_shift)])
    self_emp = u[0] < p.self_employed_share
    temp = (~self_emp) & (u[1] < p.temp_agency_share)
    civil = (~self_emp) & (~temp) & (u[2] < p.civil_servant_share)
    perm = np.where(temp, u[3] < p.permanent_share_temp, u[3] < p.permanent_share) & ~self_emp
    cum = np.cumsum(_NACE_P / _NACE_P.sum())
    nace = np.searchsorted(cum, u[4], side="right").clip(0, NACE.size - 1).astype(np.int8)
    nace = np.where(temp, np.int8(2), nace)  # temp agencies are NACE N (78.2)
    nace = np.where(civil, np.int8(6), nace)  # civil servants in public administration (O)
    # blue collar more common in manufacturing, construction, transport, hospitality
    blue_p = np.isin(nace, [3, 10, 7, 4]) * 0.45 + 0.30
    wc = np.where(u[5] < blue_p, 0, 1)
    wc = np.where(u[5] > 0.97, 3, wc)
    wc = np.where(civil, 2, wc).astype(np.int8)
    n_jobs = np.where(self_emp, 0, 1 + (u[6] < p.second_job_share)).astype(np.int8)
    wage_factor = np.exp(p.job_wage_sd_log * rng.standard_normal(shape))
    authorised = rng.random(shape) < p.authorised_share
    return SpellDraws(
        fte=fte, self_employed=self_emp, n_jobs=n_jobs, civil_servant=civil,
        temp_agency=temp, permanent=perm, nace=nace, worker_class=wc,
        wage_factor=wage_factor, authorised=authorised,
    )


def simulate_paths(
    rng: np.random.Generator,
    *,
    n_months: int,
    origin: int,
    rand_col: np.ndarray,
    onset_col: np.ndarray,
    retire_col: np.ndarray,
    di_exit_from: np.ndarray,
    active_from: np.ndarray,
    h_in_no_di: np.ndarray,
    h_in_di_pre: np.ndarray,
    h_in_di_post: np.ndarray,
    h_out_no_di: np.ndarray,
    h_out_di: np.ndarray,
    boost: np.ndarray,
    di_exit: tuple[float, float, float],
    di_reentry: float,
    di_exit_mult: np.ndarray,
    p_emp0_di: float,
    p_emp0_no_di: float,
    onset_job_loss: float,
    spell_fte: np.ndarray,
    p: SyntheticParams,
) -> Paths:
    """Simulate employment and DI month by month for both arms.

    Parameters
    ----------
    rng
        Generator of this group of persons (two uniforms per person and month, drawn
        in time order, so a longer window does not change earlier months).
    n_months, origin
        Window length in months; quarters before the randomization quarter.
    rand_col
        Column of the randomization month (month 0 of the IPS effect).
    onset_col
        Column of the DI onset (≤ 0: on DI from the start; ≥ n_months: never).
    retire_col
        Column at which the person reaches the pension age (work and DI stop).
    di_exit_from
        First column at which DI can end (after randomization for participants).
    active_from
        First column at which the person can work (age 16 for children).
    h_in_no_di, h_in_di_pre, h_in_di_post
        Monthly job-finding hazards off DI, on DI before randomization, on DI after.
    h_out_no_di, h_out_di
        Monthly job-loss hazards off / on DI.
    boost
        (2, m) amplitude of the IPS boost of the job-finding hazard in each world
        (0 for persons who would not start IPS in that arm).
    di_exit
        Monthly DI exit probabilities: not working, working ≤ half time, above half.
    di_exit_mult
        (2, m) extra multiplier of the DI exit rates while working in each world (IPS
        starters leave DI for work more often: benefits counselling); the rate is
        multiplied by ``1 + di_exit_mult * exp(-s / ips_di_exit_fade_months)``.
    di_reentry
        Monthly probability that a former DI recipient out of work returns to DI.
    p_emp0_di, p_emp0_no_di
        Employment probability in the first month, on / off DI.
    onset_job_loss
        Probability that the job ends at DI onset.
    spell_fte
        (2, m, S) part-time fraction of each pre-drawn spell in each world.
    """
    m = rand_col.size
    T = n_months
    emp_rec = np.empty((T, 2, m), dtype=bool)
    di_rec = np.empty((T, 2, m), dtype=bool)
    sp_rec = np.empty((T, 2, m), dtype=np.int16)
    S = spell_fte.shape[2]
    # time profiles tabulated once by months since randomization (offset T), so the
    # monthly step is a lookup instead of an exp() per person
    since = np.arange(-T, T + 1)
    shape_tab = effect_shape(since, p)
    decay_tab = np.exp(-np.maximum(since, 0) / max(p.ips_di_exit_fade_months, 1e-9))
    # the two uniforms of each month, drawn in blocks of months: rng.random((B, 2, m))
    # yields the numbers of B × (random(m), random(m)) in the same order, bit for bit
    block = max(1, min(T, (1 << 21) // max(2 * m, 1)))
    u_block = [np.empty((0, 2, m))]

    def _months(
        sl: slice, rand_col: np.ndarray,
        onset_col: np.ndarray, retire_col: np.ndarray, di_exit_from: np.ndarray,
        active_from: np.ndarray, h_in_no_di: np.ndarray, h_in_di_pre: np.ndarray,
        h_in_di_post: np.ndarray, h_out_no_di: np.ndarray, h_out_di: np.ndarray,
        boost: np.ndarray, di_exit_mult: np.ndarray, spell_fte: np.ndarray,
    ) -> Generator[None, None, np.ndarray]:
        m = rand_col.size
        # Up to the first month in which someone's two worlds can differ, they are the
        # same world: the IPS boost is 0 up to the randomization month (shape 0), DI can
        # end only from di_exit_from on, and jobs found by the randomization month take
        # the control draw. Those months are simulated once (arrays (1, m)) and recorded
        # for both worlds.
        last_shared = int(min(rand_col.min(), di_exit_from.min() - 1)) if m else 0
        if not (shape_tab[: T + 1] == 0.0).all():  # a boost before randomization: none shared
            last_shared = 0
        split = max(last_shared + 1, 1)
        w_boost, w_mult = boost[:1], di_exit_mult[:1]
        # the months in which someone can be retired or too young to work, start DI,
        # leave DI, be before randomization
        first_retired = int(retire_col.min()) if m else T
        last_inactive = int(active_from.max()) if m else 0
        onset_months = np.zeros(T + 1, dtype=bool)
        onset_months[onset_col[(onset_col >= 0) & (onset_col < T)]] = True
        first_exit = int(di_exit_from.min()) if m else T
        last_rand = int(rand_col.max()) if m else -1
        for t in range(T):
            if t % block == 0:
                yield
            u_emp = u_block[0][t % block, 0, sl]
            u_di = u_block[0][t % block, 1, sl]
            if t == 0:
                di0 = onset_col <= 0
                e0 = (u_emp < np.where(di0, p_emp0_di, p_emp0_no_di)) & (active_from <= 0)
                emp = e0[None]
                di = di0[None]
                spell = np.zeros((1, m), dtype=np.int16)
                spell_at_rand = np.zeros(m, dtype=np.int16)
                fte_now = spell_fte[0, :, 0][None].copy()
            else:
                # what no one can do this month is not computed (its result is known):
                # retire or be too young, start DI, leave DI; and the boost is 0 while
                # the worlds are one
                inactive = t >= first_retired or t < last_inactive
                active = ~((t >= retire_col) | (t < active_from)) if inactive else None
                if onset_months[t]:
                    onset = t == onset_col
                    # DI onset (before randomization): the job usually ends
                    lose = onset & (u_di < onset_job_loss)
                    di = di | onset
                    emp = emp & ~lose
                s = t - rand_col
                s_idx = np.minimum(np.maximum(s, -T), T) + T  # np.clip(s, -T, T) + T
                if t >= first_exit:
                    # DI exit after randomization, more likely when working above half time
                    decay = decay_tab[s_idx]
                    rate = np.where(
                        emp,
                        np.where(fte_now > 0.5, di_exit[2], di_exit[1]) * (1.0 + w_mult * decay),
                        di_exit[0],
                    )
                    leave = di & (t >= di_exit_from) & (u_di < rate)
                    # relapse: a person who left DI after randomization and is out of work
                    # returns to DI (incapacity recognised again)
                    back = (~di) & (~emp) & (t >= di_exit_from) & (t > onset_col) & (u_di < di_reentry)
                    di = (di & ~leave) | back
                if active is not None:
                    di = di & active
                # job loss / job finding with one common uniform per person and month
                base = np.where(di, np.where(s >= 0, h_in_di_post, h_in_di_pre), h_in_no_di)
                if t < split:
                    h_in = np.minimum(base, 0.95)  # base * (1 + boost * 0), exactly
                else:
                    shape = shape_tab[s_idx]
                    h_in = np.minimum(base * (1.0 + w_boost * shape), 0.95)
                h_out = np.where(di, h_out_di, h_out_no_di)
                stay = emp & ~(u_emp < h_out)
                enter = (~emp) & (u_emp < h_in)
                emp = stay | enter
                if active is not None:
                    emp = emp & active
                spell = spell + enter.astype(np.int16)
                # part-time fraction of the new jobs (jobs started by the randomization
                # month are the same in both worlds; later ones use their world's draw)
                ai, ii = np.nonzero(enter)
                if ai.size:
                    j = spell[ai, ii].astype(np.int64) % S
                    post = t > rand_col[ii]
                    fte_now[ai, ii] = np.where(post, spell_fte[ai, ii, j], spell_fte[0, ii, j])
            # jobs held by the randomization month are the same in both worlds
            if t <= last_rand:
                spell_at_rand = np.where(t <= rand_col, spell[0], spell_at_rand)
            emp_rec[t, :, sl] = emp
            di_rec[t, :, sl] = di
            sp_rec[t, :, sl] = spell
            if t + 1 == split:  # from the next month on the worlds can differ: one state each
                emp = np.concatenate([emp, emp])
                di = np.concatenate([di, di])
                spell = np.concatenate([spell, spell])
                fte_now = np.concatenate([fte_now, fte_now])
                w_boost, w_mult = boost, di_exit_mult
        return spell_at_rand

    def run(sl: slice) -> Generator[None, None, np.ndarray]:
        """Simulate months 0..T-1 of the persons ``sl`` into the records.

        A person's path depends only on their inputs and uniforms, so the persons can
        be simulated in parts. Pauses before each block of months (until its uniforms
        are drawn into ``u_block``); returns their ``spell_at_rand``.
        """
        return _months(sl, rand_col[sl], onset_col[sl], retire_col[sl], di_exit_from[sl],
                       active_from[sl], h_in_no_di[sl], h_in_di_pre[sl], h_in_di_post[sl],
                       h_out_no_di[sl], h_out_di[sl], boost[:, sl], di_exit_mult[:, sl],
                       spell_fte[:, sl])

    threads = max(1, min(_PATH_THREADS, m // _PATH_SPLIT_MIN))
    # large groups: the persons in parts on threads (numpy releases the GIL), each
    # block of months once its uniforms are drawn (the same numbers, in the same order)
    bounds = np.linspace(0, m, threads + 1).astype(np.int64)
    parts = [run(slice(int(a), int(b))) for a, b in zip(bounds[:-1], bounds[1:])]
    done: dict[int, np.ndarray] = {}

    def advance(i: int) -> None:
        try:
            next(parts[i])
        except StopIteration as stop:
            done[i] = stop.value

    for i in range(threads):
        advance(i)  # up to the first block
    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
    try:
        for t0 in range(0, T, block):
            u_block[0] = rng.random((min(block, T - t0), 2, m))
            if pool is None:
                advance(0)
            else:
                list(pool.map(advance, range(threads)))
    finally:
        if pool is not None:
            pool.shutdown()
    for i in range(threads):
        if i not in done:  # T = 0 or a part still waits after the last block
            advance(i)
    spell_at_rand = np.concatenate([done[i] for i in range(threads)])
    return Paths(
        employed=emp_rec, on_di=di_rec, spell=sp_rec, n_months=T, origin=origin,
        spell_at_rand=spell_at_rand,
    )

