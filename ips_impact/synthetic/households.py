"""Households of the participants: partners and children, roster with validity dates.

Partners and working-age children have their own LMD panel (they are simulated like
participants, with their own hazards); younger children appear only in the roster.
A small share of partners join *after* randomization (``valid_from`` later than the
index person's randomization date): they are not in the baseline roster that
spillover estimands use, and IPS has no effect on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ips_impact.synthetic.params import SyntheticParams
from ips_impact.synthetic.population import HOUSEHOLD, Population, pseudonyms

__all__ = ["Members", "draw_households", "roster_frame"]


@dataclass(frozen=True)
class Members:
    """Household members (all children and partners), one entry per member."""

    person_id: np.ndarray
    index: np.ndarray  # position of the index person in the Population arrays
    role: np.ndarray  # object: "partner" / "child"
    lipro: np.ndarray  # object LIPRO code
    age: np.ndarray  # age at the index person's randomization
    has_panel: np.ndarray  # bool: own LMD panel
    baseline: np.ndarray  # bool: in the roster at randomization
    valid_from: np.ndarray  # datetime64[D]
    valid_to: np.ndarray  # datetime64[D], NaT = open
    employability: np.ndarray
    wage_ft: np.ndarray
    on_di: np.ndarray  # bool: on DI over the whole window
    effect: np.ndarray  # spillover boost amplitude if the index person starts IPS
    entry_rate: np.ndarray
    exit_rate: np.ndarray


def draw_households(
    pop: Population, p: SyntheticParams, rng: np.random.Generator, rng_ids: np.random.Generator,
    *, members: bool = True,
) -> tuple[Population, Members, np.ndarray]:
    """Draw household members; return the population with household ids and DI situation.

    ``members=False`` draws the household ids and DI situations only (the members are
    then empty): the members' attributes and keys are the last draws of their streams,
    so everything else is the same as with ``members=True``.
    """
    n = pop.n
    hh = pop.household_type
    t_single, t_couple, t_cc, t_one = (HOUSEHOLD.index(h) for h in HOUSEHOLD)
    has_partner = (hh == t_couple) | (hh == t_cc)
    has_children = (hh == t_cc) | (hh == t_one)
    married = rng.random(n) < p.married_share
    # 1 + Poisson(mean) children, capped at 4, by inversion of one uniform per person
    # (numpy's Poisson sampler uses a variable number of draws, which would shift the
    # stream for everything drawn after it when the mean changes)
    lam = p.children_extra_mean
    k = np.arange(3)
    cdf = np.cumsum(np.exp(-lam) * lam**k / np.array([1.0, 1.0, 2.0]))
    extra = np.searchsorted(cdf, rng.random(n), side="right")
    n_child = np.where(has_children, 1 + extra, 0)
    late = (~has_partner) & (rng.random(n) < p.late_partner_share)
    leave = has_partner & (rng.random(n) < p.partner_leave_share)
    # DI invalidity situation: dependants (children or a partner without income),
    # single, or cohabitant (partner with income)
    partner_earns = rng.random(n) < 0.6
    situation = np.where(
        has_children | (has_partner & ~partner_earns), 0, np.where(has_partner, 2, 1)
    ).astype(np.int8)

    if not members:
        index_lipro = _index_lipro(hh, married, t_single, t_one, t_cc)
        return (dataclasses.replace(pop, household_id=pseudonyms(rng_ids, n, "H"), situation=situation),
                _no_members(), index_lipro)

    # every attribute is drawn for every participant (partners) or for four child
    # slots per participant, then selected: the draws do not depend on how many
    # partners and children there are, so composition parameters shift nothing else
    a_age = rng.standard_normal(n)
    a_late_from = rng.integers(90, 730, size=n)
    a_from = rng.integers(180, 3650, size=n)
    a_to = rng.integers(180, 1460, size=n)
    a_z = rng.standard_normal(n)
    a_wage = rng.standard_normal(n)
    a_di = rng.random(n)
    c_u_age = rng.random((n, 4))
    c_u_z = rng.standard_normal((n, 4))
    c_u_wage = rng.standard_normal((n, 4))

    rdate = pop.randomization_date
    # --- partners (baseline and late)
    pi = np.flatnonzero(has_partner | late)
    n_p = pi.size
    p_age = np.clip(pop.age[pi] + 4.0 * a_age[pi], 19.0, 80.0)
    p_late = late[pi]
    p_from = np.where(p_late, rdate[pi] + a_late_from[pi], rdate[pi] - a_from[pi]).astype("datetime64[D]")
    p_to = np.where(leave[pi], rdate[pi] + a_to[pi], np.datetime64("NaT")).astype("datetime64[D]")
    lipro_couple = np.where(
        married[pi],
        np.where(hh[pi] == t_cc, "MAR+", "MAR0"),
        np.where(hh[pi] == t_cc, "UNM+", "UNM0"),
    )
    # a partner who moves in later cohabits (marriage would come later still)
    lipro_couple = np.where(p_late, np.where(hh[pi] == t_one, "UNM+", "UNM0"), lipro_couple)
    p_z = 0.6 * a_z[pi] - 0.02 * np.maximum(p_age - 45.0, 0.0)
    p_wage = 3000.0 * np.exp(0.3 * a_wage[pi])
    p_di = a_di[pi] < p.partner_di_share
    # --- children (slot j of participant i for j < n_child[i])
    slot = np.arange(4)[None, :] < n_child[:, None]
    ci = np.nonzero(slot)[0]
    n_c = ci.size
    max_age = np.clip(pop.age[ci] - 18.0, 0.5, 30.0)
    c_age = c_u_age[slot] * max_age
    c_from = (rdate[ci] - (c_age * 365.25).astype(np.int64)).astype("datetime64[D]")
    c_lipro = np.where(
        hh[ci] == t_one, "C1PA", np.where(married[ci], "CMAR", "CUNM")
    )
    c_z = 0.5 * c_u_z[slot]
    c_wage = 2400.0 * np.exp(0.2 * c_u_wage[slot])
    c_panel = c_age >= p.child_panel_min_age

    # household keys before member keys: their number is fixed (one per participant),
    # so changing the household composition never changes them
    hid = pseudonyms(rng_ids, n, "H")
    drawn = Members(
        person_id=pseudonyms(rng_ids, n_p + n_c, "P"),
        index=np.concatenate([pi, ci]),
        role=np.concatenate([np.full(n_p, "partner", dtype=object), np.full(n_c, "child", dtype=object)]),
        lipro=np.concatenate([lipro_couple, c_lipro]).astype(object),
        age=np.concatenate([p_age, c_age]),
        has_panel=np.concatenate([np.ones(n_p, dtype=bool), c_panel]),
        baseline=np.concatenate([~p_late, np.ones(n_c, dtype=bool)]),
        valid_from=np.concatenate([p_from, c_from]),
        valid_to=np.concatenate([p_to, np.full(n_c, np.datetime64("NaT"), dtype="datetime64[D]")]),
        employability=np.concatenate([p_z, c_z]),
        wage_ft=np.concatenate([p_wage, c_wage]),
        on_di=np.concatenate([p_di, np.zeros(n_c, dtype=bool)]),
        effect=np.concatenate([np.where(p_late, 0.0, p.partner_effect), np.full(n_c, p.child_effect)]),
        entry_rate=np.concatenate([np.full(n_p, p.partner_entry_rate), np.full(n_c, p.child_entry_rate)]),
        exit_rate=np.concatenate([np.full(n_p, p.partner_exit_rate), np.full(n_c, p.child_exit_rate)]),
    )
    # the pseudonyms of members must not collide with those of participants
    clash = pd.Index(pop.person_id).get_indexer(drawn.person_id) >= 0
    if clash.any():  # astronomically rare; re-draw deterministically
        new = pseudonyms(rng_ids, int(clash.sum()) + n, "P")
        taken = pd.Index(np.concatenate([pop.person_id, drawn.person_id]))
        new = new[taken.get_indexer(new) < 0][: clash.sum()]
        pid = drawn.person_id.copy()
        pid[clash] = new
        drawn = dataclasses.replace(drawn, person_id=pid)
    index_lipro = _index_lipro(hh, married, t_single, t_one, t_cc)
    pop = dataclasses.replace(pop, household_id=hid, situation=situation)
    return pop, drawn, index_lipro


def _index_lipro(hh: np.ndarray, married: np.ndarray, t_single: int, t_one: int, t_cc: int) -> np.ndarray:
    """LIPRO code of each participant (the index person of the roster)."""
    return np.where(
        hh == t_single, "SING",
        np.where(hh == t_one, "H1PA", np.where(married, np.where(hh == t_cc, "MAR+", "MAR0"),
                                               np.where(hh == t_cc, "UNM+", "UNM0"))),
    ).astype(object)


def _no_members() -> Members:
    """Members of a sample drawn without them (every array empty)."""
    day = np.empty(0, dtype="datetime64[D]")
    obj, num, flag = np.empty(0, dtype=object), np.empty(0), np.empty(0, dtype=bool)
    return Members(
        person_id=obj, index=np.empty(0, dtype=np.int64), role=obj, lipro=obj, age=num,
        has_panel=flag, baseline=flag, valid_from=day, valid_to=day, employability=num,
        wage_ft=num, on_di=flag, effect=num, entry_rate=num, exit_rate=num,
    )


def roster_frame(pop: Population, members: Members, index_lipro: np.ndarray) -> pd.DataFrame:
    """Household roster: household_id, person_id, role, lipro, valid_from, valid_to."""
    n = pop.n
    idx_from = (pop.randomization_date - 365 * 3).astype("datetime64[D]")
    # the index person's row starts at the earliest member's arrival or 3 years before
    frame = pd.DataFrame(
        {
            "household_id": np.concatenate([pop.household_id, pop.household_id[members.index]]),
            "person_id": np.concatenate([pop.person_id, members.person_id]),
            "role": np.concatenate([np.full(n, "index", dtype=object), members.role]),
            "lipro": np.concatenate([index_lipro, members.lipro]),
            "valid_from": np.concatenate([idx_from, members.valid_from]).astype("datetime64[ns]"),
            "valid_to": np.concatenate(
                [np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"), members.valid_to]
            ).astype("datetime64[ns]"),
        }
    )
    key = np.concatenate([np.arange(n), members.index])
    role_rank = np.concatenate([np.zeros(n, dtype=np.int64),
                                np.where(members.role == "partner", 1, 2)])
    order = np.lexsort((np.arange(key.size), role_rank, key))
    return frame.iloc[order].reset_index(drop=True)
