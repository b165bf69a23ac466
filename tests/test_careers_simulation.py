"""Coverage of the careers estimators against the exact truth of the synthetic trial.

Design (as tests/test_itt_simulation.py)
----------------------------------------
* A pool of 6,000 synthetic participants with both potential careers
  (:func:`ips_impact.synthetic.truth.career_potentials`: states from employed / on_di /
  sep_code in each world, job starts); the truth is the pool's
  :math:`p_{1s}(\\tau) - p_{0s}(\\tau)` per state and :math:`\\mu_1(\\tau) - \\mu_0(\\tau)`
  (mean job starts in quarters 1..tau), exact (no Monte-Carlo error), tau = 12.
* Each replication draws 1,200 persons from the pool with replacement (the pool is the
  super-population), randomizes completely within strata (half of each stratum
  treated), reveals the assigned world, and censors 30% of the persons at a uniform
  quarter in 4..20 independently of everything (administrative end of follow-up with
  rolling enrolment), so that Aalen–Johansen and the MCF correct for censoring.
  Antithetic pairs (z and 1 - z on the same persons and censoring).
* 300 samples x 2 = 600 replications; coverage of the 95% intervals must be in
  93.5–96.5% (Monte-Carlo sd of a 95% rate with 600 replications: 0.9 points).

The replications call the numerical core that :func:`state_occupation` and
:func:`recurrent_spells` run after their data step; ``test_replication_equals_estimators``
checks on one replication that the estimators on a real Study give the same numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ips_impact.errors import EstimationWarning
from ips_impact.estimators._survival.multistate import aalen_johansen
from ips_impact.estimators._survival.recurrent import mean_cumulative
from ips_impact.estimators.careers import DEFAULT_STATES, recurrent_spells, state_occupation
from ips_impact.study import Study
from ips_impact.synthetic import generate
from ips_impact.synthetic.truth import CAREER_STATES, career_potentials

N_POOL, N, N_SAMPLES, SEED, TAU = 6_000, 1_200, 300, 20_261_201, 12


@pytest.fixture(scope="module")
def pool():
    trial = generate(n_persons=N_POOL, seed=SEED, tables=("assignment", "panel"))
    cp = career_potentials(trial._world)
    s_codes, s_labels = pd.factorize(trial.assignment["stratum"], sort=True)
    truth_p = np.array(
        [
            (cp["state1"][:, TAU] == s).mean() - (cp["state0"][:, TAU] == s).mean()
            for s in range(len(CAREER_STATES))
        ]
    )
    truth_mu = float(
        cp["starts1"][:, 1 : TAU + 1].sum(axis=1).mean()
        - cp["starts0"][:, 1 : TAU + 1].sum(axis=1).mean()
    )
    return {
        "cp": cp,
        "strata": s_codes,
        "n_strata": len(s_labels),
        "truth_p": truth_p,
        "truth_mu": truth_mu,
        "assignment": trial.assignment,
    }


def _draw(pool, rng):
    idx = rng.integers(0, N_POOL, N)
    s = pool["strata"][idx]
    u = rng.random(N)
    order = np.lexsort((u, s))
    sizes = np.bincount(s, minlength=pool["n_strata"])
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(N) - np.repeat(starts, sizes)
    z = (rank < (sizes // 2)[s]).astype(np.int8)
    follow = np.where(rng.random(N) < 0.3, rng.integers(4, 21, N), 20)
    return idx, z, follow


def _reveal(pool, idx, z, follow):
    cp = pool["cp"]
    code = np.where(z[:, None] == 1, cp["state1"][idx], cp["state0"][idx])[:, :21].copy()
    dn = np.where(z[:, None] == 1, cp["starts1"][idx], cp["starts0"][idx])[:, :21].copy()
    cols = np.arange(code.shape[1])
    code[cols[None, :] > follow[:, None]] = -1
    return code, dn


def _fit(code, dn, z, follow):
    """(estimate, se) of the state-occupation differences at TAU (5,) and the MCF difference."""
    aj = {a: aalen_johansen(code[z == a][:, : TAU + 1], len(CAREER_STATES)) for a in (0, 1)}
    mc = {
        a: mean_cumulative(dn[z == a][:, : TAU + 1], np.minimum(follow[z == a], TAU))
        for a in (0, 1)
    }
    d = aj[1].probability[TAU] - aj[0].probability[TAU]
    se = np.sqrt(aj[1].std_error[TAU] ** 2 + aj[0].std_error[TAU] ** 2)
    dm = mc[1].mcf[TAU] - mc[0].mcf[TAU]
    sem = np.hypot(mc[1].std_error[TAU], mc[0].std_error[TAU])
    return d, se, dm, sem


def test_truth_states_follow_the_estimator_rule():
    assert CAREER_STATES == DEFAULT_STATES


@pytest.mark.slow
def test_coverage_state_occupation_and_mcf(pool):
    rng = np.random.Generator(np.random.PCG64(SEED))
    S = len(CAREER_STATES)
    est, se = np.empty((N_SAMPLES, 2, S)), np.empty((N_SAMPLES, 2, S))
    estm, sem = np.empty((N_SAMPLES, 2)), np.empty((N_SAMPLES, 2))
    for r in range(N_SAMPLES):
        idx, z, follow = _draw(pool, rng)
        for a, zz in enumerate((z, 1 - z)):
            code, dn = _reveal(pool, idx, zz, follow)
            est[r, a], se[r, a], estm[r, a], sem[r, a] = _fit(code, dn, zz, follow)
    cover = (np.abs(est - pool["truth_p"]) <= 1.959964 * se).mean(axis=(0, 1))
    cover_m = (np.abs(estm - pool["truth_mu"]) <= 1.959964 * sem).mean()
    bias = (est.mean(axis=(0, 1)) - pool["truth_p"]) / se.mean(axis=(0, 1))
    print("\nstate        truth   coverage  bias/SE  mean SE  sd(est)")
    for s, name in enumerate(CAREER_STATES):
        print(
            f"{name:11s} {pool['truth_p'][s]:7.4f} {cover[s]:8.4f} {bias[s]:8.3f} "
            f"{se[..., s].mean():8.4f} {est[..., s].std():8.4f}"
        )
    print(
        f"mcf         {pool['truth_mu']:7.4f} {cover_m:8.4f} "
        f"{(estm.mean() - pool['truth_mu']) / sem.mean():8.3f} {sem.mean():8.4f} {estm.std():8.4f}"
    )
    for s, name in enumerate(CAREER_STATES):
        assert 0.935 <= cover[s] <= 0.965, (name, cover[s])
    assert 0.935 <= cover_m <= 0.965, cover_m


def test_replication_equals_estimators(pool):
    """The simulation's fast path is state_occupation() / recurrent_spells() on a Study."""
    rng = np.random.Generator(np.random.PCG64(7))
    idx, z, follow = _draw(pool, rng)
    code, dn = _reveal(pool, idx, z, follow)
    d, se, dm, sem = _fit(code, dn, z, follow)
    ids = [f"r{i:05d}" for i in range(N)]
    a = pd.DataFrame(
        {
            "person_id": ids,
            "arm": z.astype(int),
            "randomization_period": 0,
            "stratum": pool["assignment"]["stratum"].to_numpy()[idx],
        }
    )
    pi, kk = np.nonzero(code >= 0)
    s = code[pi, kk]
    # a panel that reproduces each state by the default rule (sep_code 211 = job-seeker, 321 inactive)
    panel = pd.DataFrame(
        {
            "person_id": np.asarray(ids)[pi],
            "period": kk,
            "employed": np.isin(s, (0, 1)).astype(float),
            "on_di": np.isin(s, (1, 2)).astype(float),
            "sep_code": np.select(
                [np.isin(s, (0, 1)), s == 2, s == 3], [111, 311, 211], default=321
            ),
        }
    )
    st = Study.from_frames(a, panel, frequency="int")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        so = state_occupation(st, tau=TAU)
    t = so.tidy().set_index("outcome")
    np.testing.assert_allclose(t.loc[list(CAREER_STATES), "estimate"], d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(t.loc[list(CAREER_STATES), "std_error"], se, rtol=0, atol=1e-12)
    # job starts of the revealed employment path
    rc = recurrent_spells(st, tau=TAU)
    row = rc.tidy().set_index("term").loc["mcf_difference"]
    assert row["estimate"] == pytest.approx(dm, abs=1e-12)
    assert row["std_error"] == pytest.approx(sem, abs=1e-12)


def test_truth_careers_are_the_revealed_careers():
    """The potential careers of the truth, in the assigned world, are what careers() reads
    from the generated panel (same states, same job starts)."""
    from ips_impact.estimators.careers import career_states, job_starts
    from ips_impact.synthetic.truth import mcf_table, state_occupation_table

    trial = generate(n_persons=300, seed=8)
    study = trial.study()
    cp = career_potentials(trial)
    arm = study.design.arm
    assert (trial.assignment["person_id"].to_numpy() == study.persons["person_id"].to_numpy()).all()
    revealed = np.where(arm[:, None] == 1, cp["state1"], cp["state0"])
    np.testing.assert_array_equal(career_states(study).code, revealed)
    starts = np.where(arm[:, None] == 1, cp["starts1"], cp["starts0"])
    np.testing.assert_array_equal(job_starts(study).dn, starts)
    so = state_occupation_table(trial).query("group == 'all'")
    assert np.allclose(so.groupby("k")["p_control"].sum(), 1.0)
    m = mcf_table(trial).query("group == 'all' and k == 20")
    assert m["mcf_control"].iloc[0] == pytest.approx(cp["starts0"].sum(axis=1).mean())
