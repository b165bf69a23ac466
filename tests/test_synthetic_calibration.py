"""Calibration of the synthetic trial's defaults to the Belgian IPS pilot (issue 3).

Large samples, so marked slow (still part of ``make test``). Targets are from
shared/DOMAIN.md; each tolerance is written beside its target. The tolerances allow
for the sampling variation of a 40,000-person sample (a standard error of about
0.3 pp for an effect on an employment rate) and for the calibration error of the
defaults (tuned on a 100,000-person sample, within ≈ 0.3 pp of each target), never more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ips_impact.synthetic import SyntheticTrial, generate, population_truth

pytestmark = pytest.mark.slow

N_LARGE = 40_000


@pytest.fixture(scope="module")
def large() -> SyntheticTrial:
    return generate(n_persons=N_LARGE, seed=20180203, tables=("assignment", "panel"))


@pytest.fixture(scope="module")
def households() -> SyntheticTrial:
    return generate(n_persons=8_000, seed=20180204)


def _truth(tr: SyntheticTrial, outcome: str, k: int, group: str = "all",
           population: str = "participants") -> pd.Series:
    T = tr.truth
    row = T[(T.population == population) & (T.outcome == outcome) & (T.k == k) & (T.group == group)]
    assert len(row) == 1
    return row.iloc[0]


def test_control_working_on_di_at_18_months_and_regional_order(large: SyntheticTrial) -> None:
    assert _truth(large, "work_on_di", 6)["control_mean"] == pytest.approx(0.29, abs=0.015)
    vl, wal, bxl = (_truth(large, "work_on_di", 6, g)["control_mean"] for g in ("VL", "WAL", "BXL"))
    assert vl > wal > bxl
    assert vl == pytest.approx(0.32, abs=0.025)
    assert wal == pytest.approx(0.265, abs=0.025)
    assert bxl == pytest.approx(0.225, abs=0.03)  # smallest region: 10% of the sample


def test_effect_path_on_working_on_di(large: SyntheticTrial) -> None:
    assert _truth(large, "work_on_di", 6)["ate"] == pytest.approx(0.095, abs=0.012)
    assert _truth(large, "work_on_di", 10)["ate"] == pytest.approx(0.075, abs=0.012)
    assert _truth(large, "work_on_di", 20)["ate"] == pytest.approx(0.045, abs=0.012)
    # ramps up from zero (at most two months of IPS in the randomization quarter),
    # then fades slowly
    path = [_truth(large, "work_on_di", k)["ate"] for k in range(-1, 21)][1:]
    assert _truth(large, "work_on_di", -1)["ate"] == 0
    assert path[0] < 0.03
    assert path[0] < path[1] < path[2] < path[4]
    assert max(path) == pytest.approx(0.10, abs=0.02)
    assert path[6] > path[10] > path[20] > 0.02


def test_di_benefit_level_and_effect(large: SyntheticTrial) -> None:
    row = _truth(large, "di_benefit", 10)
    assert row["control_mean"] == pytest.approx(1160, abs=35)  # EUR a month
    assert row["ate"] == pytest.approx(-110, abs=20)


def test_part_time_work_and_more_of_it_in_ips(large: SyntheticTrial) -> None:
    fte = large.potential_outcomes("fte")
    emp = large.potential_outcomes("employed")
    at = fte.k.to_numpy() == 6
    f0 = fte.y0.to_numpy()[at][emp.y0.to_numpy()[at] == 1].mean()
    f1 = fte.y1.to_numpy()[at][emp.y1.to_numpy()[at] == 1].mean()
    assert 0.40 <= f0 <= 0.50
    assert 0.40 <= f1 <= 0.50
    assert f0 - f1 >= 0.02  # more part-time work among those at work in the IPS arm


def test_job_spells_end_at_about_5_percent_a_month(large: SyntheticTrial) -> None:
    w = large._world
    paths = w.participants.paths
    start = 3 * w.origin  # months after the randomization quarter starts
    for arm in (0, 1):
        emp = paths.employed[start:, arm, :]
        di = paths.on_di[start:, arm, :]
        now, nxt = emp[:-1], emp[1:]
        rate_on_di = (now & ~nxt & di[:-1]).sum() / (now & di[:-1]).sum()
        rate_all = (now & ~nxt).sum() / now.sum()
        assert rate_on_di == pytest.approx(0.05, abs=0.005)
        assert 0.04 <= rate_all <= 0.06


def test_partners_gain_from_ips(households: SyntheticTrial) -> None:
    for outcome in ("employed", "earnings"):
        po = households.potential_outcomes(outcome, population="partners")
        win = po[po.k.between(4, 12)]
        d = (win.y1 - win.y0).groupby(win.person_id).mean()
        se = d.std(ddof=1) / np.sqrt(len(d))
        assert d.mean() > 4 * se, outcome  # a real, non-zero spillover
        T = households.truth
        rows = T[(T.population == "partners") & (T.outcome == outcome) & T.k.between(4, 12) & (T.group == "all")]
        np.testing.assert_allclose(rows["ate"].mean(), d.mean(), rtol=1e-9)
    # members (partners and working-age children) too, and none before randomization
    T = households.truth
    pre = T[(T.population == "members") & (T.k < 0)]
    assert (pre["ate"] == 0).all()


def test_population_truth_agrees_with_a_large_sample(large: SyntheticTrial) -> None:
    pt = population_truth(outcome="work_on_di", k=6, n=100_000, seed=77)
    po = large.potential_outcomes("work_on_di")
    d = (po.y1 - po.y0)[po.k == 6]
    se_sample = d.std(ddof=1) / np.sqrt(len(d))
    row = _truth(large, "work_on_di", 6)
    assert abs(pt.ate - row["ate"]) < 4 * np.hypot(pt.std_error, se_sample)
    assert pt.std_error < 0.003
