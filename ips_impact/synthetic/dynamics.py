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

from dataclasses import dataclass

import numpy as np

from ips_impact.synthetic.params import SyntheticParams

__all__ = ["Paths", "SpellDraws", "simulate_paths", "draw_spells", "effect_shape", "N_SPELLS"]

#: Number of pre-drawn job spells per person; spell ``j`` re-uses draw ``j % N_SPELLS``.
N_SPELLS = 16

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
    for t in range(T):
        if t % block == 0:
            u_block = rng.random((min(block, T - t), 2, m))
        u_emp = u_block[t % block, 0]
        u_di = u_block[t % block, 1]
        if t == 0:
            di0 = onset_col <= 0
            e0 = (u_emp < np.where(di0, p_emp0_di, p_emp0_no_di)) & (active_from <= 0)
            emp = np.stack([e0, e0])
            di = np.stack([di0, di0])
            spell = np.zeros((2, m), dtype=np.int16)
            spell_at_rand = np.zeros(m, dtype=np.int16)
            fte_now = np.stack([spell_fte[0, :, 0], spell_fte[0, :, 0]])
        else:
            retired = (t >= retire_col) | (t < active_from)
            onset = t == onset_col
            # DI onset (before randomization): the job usually ends
            lose = onset & (u_di < onset_job_loss)
            di = di | onset
            emp = emp & ~lose
            # DI exit after randomization, more likely when working above half time
            s_idx = np.clip(t - rand_col, -T, T) + T
            decay = decay_tab[s_idx]
            rate = np.where(
                emp,
                np.where(fte_now > 0.5, di_exit[2], di_exit[1]) * (1.0 + di_exit_mult * decay),
                di_exit[0],
            )
            leave = di & (t >= di_exit_from) & (u_di < rate)
            # relapse: a person who left DI after randomization and is out of work
            # returns to DI (incapacity recognised again)
            back = (~di) & (~emp) & (t >= di_exit_from) & (t > onset_col) & (u_di < di_reentry)
            di = ((di & ~leave) | back) & ~retired
            # job loss / job finding with one common uniform per person and month
            s = t - rand_col
            shape = shape_tab[s_idx]
            base = np.where(di, np.where(s >= 0, h_in_di_post, h_in_di_pre), h_in_no_di)
            h_in = np.minimum(base * (1.0 + boost * shape), 0.95)
            h_out = np.where(di, h_out_di, h_out_no_di)
            stay = emp & ~(u_emp < h_out)
            enter = (~emp) & (u_emp < h_in)
            emp = (stay | enter) & ~retired
            spell = spell + enter.astype(np.int16)
            # part-time fraction of the new jobs (jobs started by the randomization
            # month are the same in both worlds; later ones use their world's draw)
            ai, ii = np.nonzero(enter)
            if ai.size:
                j = spell[ai, ii].astype(np.int64) % S
                post = t > rand_col[ii]
                fte_now[ai, ii] = np.where(post, spell_fte[ai, ii, j], spell_fte[0, ii, j])
        # jobs held by the randomization month are the same in both worlds
        spell_at_rand = np.where(t <= rand_col, spell[0], spell_at_rand)
        emp_rec[t] = emp
        di_rec[t] = di
        sp_rec[t] = spell
    return Paths(
        employed=emp_rec, on_di=di_rec, spell=sp_rec, n_months=T, origin=origin,
        spell_at_rand=spell_at_rand,
    )

