"""The arrays-in numerical core of the careers estimators on small hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from ips_impact.estimators._survival.multistate import aalen_johansen, occupation_by_assignment
from ips_impact.estimators._survival.recurrent import (
    counting_process_rows,
    mcf_by_assignment,
    mean_cumulative,
)


def test_counting_process_rows_by_hand():
    # person 0: starts at k = 2 and 4, followed to 5; person 1: start at 3 = end of follow-up;
    # person 2: followed at k = 0 only (no row)
    dn = np.zeros((3, 6), dtype=np.int8)
    dn[0, [2, 4]] = 1
    dn[1, 3] = 1
    rows = counting_process_rows(dn, np.array([5, 3, 0]))
    got = list(zip(rows["person"], rows["start"], rows["stop"], rows["event"]))
    assert got == [(0, 0, 2, 1), (0, 2, 4, 1), (0, 4, 5, 0), (1, 0, 3, 1)]


def test_mcf_by_hand_with_censoring():
    dn = np.zeros((3, 4))
    dn[0, 1] = dn[0, 2] = dn[1, 2] = 1
    follow = np.array([3, 2, 1])
    m = mean_cumulative(dn, follow)
    # k=1: 1 start / 3 followed; k=2: 2 / 2; k=3: 0 / 1
    np.testing.assert_allclose(m.mcf, [0, 1 / 3, 1 / 3 + 1, 1 / 3 + 1])
    assert m.at_risk.tolist() == [0, 3, 2, 1]
    # Lawless–Nadeau at k = 1: sum_i ((dN_i - 1/3) / 3)^2 over the 3 followed
    assert m.std_error[1] == pytest.approx(np.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 9))
    diff = mcf_by_assignment(dn, follow, np.array([[1, 0, 0], [0, 1, 1]]), 2)
    # [1, 0, 0]: treated mu(2) = 1 + 1, control 0 + 1/1; [0, 1, 1]: the reverse
    np.testing.assert_allclose(diff, [1.0, -1.0])


def test_aalen_johansen_by_hand():
    # 4 persons, 2 states; person 3 censored after k = 1
    code = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, -1]])
    aj = aalen_johansen(code, 2)
    np.testing.assert_allclose(aj.probability[0], [0.5, 0.5])
    np.testing.assert_allclose(aj.probability[1], [0.5, 0.5])  # no censoring yet: shares
    # k=2: of those in 0 at k=1 (persons 0, 3) only person 0 is followed, and moves 0 -> 1;
    # person 0: 0 -> 1; from state 1 (persons 1, 2): 1 -> 1 and 1 -> 0
    h = np.array([[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(aj.probability[2], aj.probability[1] @ h)
    assert aj.at_risk.tolist() == [4, 4, 3]
    np.testing.assert_allclose(aj.probability.sum(axis=1), 1.0)
    occ = occupation_by_assignment(code, 2, np.array([[1, 1, 0, 0]]), 2)
    np.testing.assert_allclose(occ["treated"][0], aalen_johansen(code[:2], 2).probability[2])
    np.testing.assert_allclose(occ["control"][0], aalen_johansen(code[2:], 2).probability[2])


def test_aalen_johansen_keeps_mass_when_a_state_empties_by_censoring():
    # everyone in state 1 is censored at k = 1: its mass stays put (no one at risk to move)
    code = np.array([[0, 0, 0], [1, 1, -1], [0, 1, 1]])
    aj = aalen_johansen(code, 2)
    np.testing.assert_allclose(aj.probability.sum(axis=1), 1.0)
    assert np.isfinite(aj.std_error).all()
