"""Small trials with a known event process for the survival tests (no R, no network)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import ips_impact.study as study_mod


def make_trial(
    n: int = 400,
    *,
    seed: int = 0,
    hazard: float = 0.08,
    hr: float = 1.5,
    n_periods: int = 24,
    dropout: float = 0.02,
    n_strata: int = 3,
    frequency: str = "Q",
    spells: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assignment and panel frames: ``employed`` switches on at a geometric time
    (hazard ``hazard``, times ``hr`` in the IPS arm), with random loss to follow-up.
    With ``spells``, employment also ends at 10% a period (then it is a state)."""
    rng = np.random.default_rng(seed)
    stratum = np.array([f"S{i % n_strata}" for i in range(n)])
    arm = np.zeros(n, dtype=int)
    for s in np.unique(stratum):
        idx = np.flatnonzero(stratum == s)
        arm[rng.permutation(idx)[: idx.size // 2]] = 1
    h = np.where(arm == 1, 1 - (1 - hazard) ** hr, hazard)
    ids = [f"p{i:05d}" for i in range(n)]
    if frequency == "Q":
        rand = pd.Period("2018Q1", "Q") + rng.integers(0, 6, n)
    else:
        rand = 100 + rng.integers(0, 6, n)
    assignment = pd.DataFrame({
        "person_id": ids, "arm": arm, "stratum": stratum,
        "randomization_period": rand,
        "age": rng.normal(40, 10, n).round(1), "female": rng.integers(0, 2, n),
        "site": [f"site{i % 7}" for i in range(n)],
    })
    rows = []
    last = np.minimum(rng.geometric(dropout, n), n_periods)  # last observed k
    for i in range(n):
        emp = 0
        for k in range(0, last[i] + 1):
            if k >= 1:
                if emp == 0 and rng.random() < h[i]:
                    emp = 1
                elif spells and emp == 1 and rng.random() < 0.10:
                    emp = 0
            rows.append((ids[i], rand[i] + k, emp, int(emp == 0 and rng.random() < 0.03)))
    panel = pd.DataFrame(rows, columns=["person_id", "period", "employed", "left_di_other"])
    return assignment, panel


def make_study(**kwargs):
    a, p = make_trial(**kwargs)
    return study_mod.Study.from_frames(a, p)
