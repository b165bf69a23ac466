"""Tests of ips_impact.inference.permutation: re-drawing the design exactly."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from ips_impact.errors import DesignError
from ips_impact.inference.permutation import (
    assignment_matrix,
    draw_assignments,
    draw_cluster_assignments,
    enumerate_assignments,
    enumerate_cluster_assignments,
    expand_assignments,
    iter_assignments,
    n_assignments,
    n_cluster_assignments,
)


def _design(sizes, treated, seed=1):
    """Persons shuffled across strata (strata not contiguous), arm as observed."""
    rng = np.random.default_rng(seed)
    stratum = np.repeat(np.array([f"s{i}" for i in range(len(sizes))]), sizes)
    arm = np.concatenate([np.r_[np.ones(m), np.zeros(n - m)] for n, m in zip(sizes, treated)])
    order = rng.permutation(stratum.size)
    return arm[order].astype(np.int8), stratum[order]


def _brute_force(arm, stratum):
    """Every 0/1 vector with the observed number treated per stratum (2^n loop)."""
    n = arm.size
    labels = np.unique(stratum)
    target = {s: arm[stratum == s].sum() for s in labels}
    out = []
    for bits in itertools.product((0, 1), repeat=n):
        z = np.array(bits)
        if all(z[stratum == s].sum() == target[s] for s in labels):
            out.append(z)
    return np.array(out, dtype=np.int8)


def _as_set(rows):
    return {tuple(r) for r in np.asarray(rows).tolist()}


def test_counts_per_stratum_are_preserved_in_every_draw():
    arm, stratum = _design([30, 17, 5, 1, 4], [15, 9, 2, 0, 4])
    draws = draw_assignments(arm, stratum, 3000, seed=7)
    assert draws.shape == (3000, arm.size)
    assert draws.dtype == np.int8
    for s in np.unique(stratum):
        cols = stratum == s
        np.testing.assert_array_equal(draws[:, cols].sum(axis=1), arm[cols].sum())
    assert set(np.unique(draws)) <= {0, 1}


def test_marginal_probability_equals_stratum_share():
    arm, stratum = _design([40, 20], [10, 15])
    b = 20_000
    draws = draw_assignments(arm, stratum, b, seed=3)
    p = np.where(stratum == "s0", 10 / 40, 15 / 20)
    freq = draws.mean(axis=0)
    se = np.sqrt(p * (1 - p) / b)
    # 60 persons, 4.5 SE: family-wise false alarm ~ 60 * 7e-6.
    assert np.all(np.abs(freq - p) < 4.5 * se)


def test_draws_are_uniform_over_all_assignments():
    # 2 strata: C(5,2) * C(4,1) = 40 distinct assignments, each with probability 1/40.
    arm, stratum = _design([5, 4], [2, 1])
    b = 40_000
    draws = draw_assignments(arm, stratum, b, seed=11)
    keys = draws.astype(np.int64) @ (2 ** np.arange(arm.size))
    _, counts = np.unique(keys, return_counts=True)
    assert counts.size == 40
    chi2 = stats.chisquare(counts)
    assert chi2.pvalue > 1e-3


def test_pairwise_joint_inclusion_matches_hypergeometric():
    # P(i and j treated) = m(m-1) / (n(n-1)) within a stratum; independent across strata.
    arm, stratum = _design([8, 6], [3, 3])
    b = 60_000
    draws = draw_assignments(arm, stratum, b, seed=5).astype(float)
    joint = draws.T @ draws / b
    m = np.where(stratum == "s0", 3, 3)
    n = np.where(stratum == "s0", 8, 6)
    same = stratum[:, None] == stratum[None, :]
    p_i = m / n
    expected = np.where(same, (m * (m - 1) / (n * (n - 1)))[:, None], np.outer(p_i, p_i))
    np.fill_diagonal(expected, p_i)
    se = np.sqrt(expected * (1 - expected) / b)
    assert np.all(np.abs(joint - expected) < 5 * se)


def test_same_seed_same_draws_and_chunking_does_not_matter():
    arm, stratum = _design([50, 30], [25, 10])
    a = draw_assignments(arm, stratum, 1000, seed=42)
    b = draw_assignments(arm, stratum, 1000, seed=42, chunk_size=37)
    c = np.concatenate(list(iter_assignments(arm, stratum, 1000, 42, chunk_size=256)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    # A prefix of a longer request is the shorter request.
    np.testing.assert_array_equal(draw_assignments(arm, stratum, 300, seed=42), a[:300])
    assert not np.array_equal(a, draw_assignments(arm, stratum, 1000, seed=43))


def test_chunks_have_bounded_size():
    arm, stratum = _design([10], [5])
    sizes = [c.shape[0] for c in iter_assignments(arm, stratum, 1000, 0, chunk_size=300)]
    assert sizes == [300, 300, 300, 100]


def test_n_assignments_is_product_of_binomials():
    arm, stratum = _design([30, 17, 5], [15, 9, 2])
    assert n_assignments(arm, stratum) == math.comb(30, 15) * math.comb(17, 9) * math.comb(5, 2)
    # Large designs: exact Python int, no overflow.
    arm, stratum = _design([680, 400, 120], [340, 200, 60])
    big = n_assignments(arm, stratum)
    assert isinstance(big, int)
    assert big == math.comb(680, 340) * math.comb(400, 200) * math.comb(120, 60)
    assert n_assignments(np.array([1, 0, 1, 0])) == 6


@pytest.mark.parametrize(
    "sizes,treated",
    [([6], [3]), ([4, 3], [2, 1]), ([3, 2, 4], [1, 2, 0]), ([5, 4], [2, 2])],
)
def test_enumeration_equals_brute_force(sizes, treated):
    arm, stratum = _design(sizes, treated, seed=sum(sizes))
    enum = enumerate_assignments(arm, stratum)
    brute = _brute_force(arm, stratum)
    assert enum.shape[0] == n_assignments(arm, stratum) == brute.shape[0]
    assert len(_as_set(enum)) == enum.shape[0]  # each once
    assert _as_set(enum) == _as_set(brute)
    assert tuple(arm.tolist()) in _as_set(enum)


def test_enumeration_refuses_too_many():
    arm, stratum = _design([40], [20])
    with pytest.raises(DesignError, match="distinct assignments"):
        enumerate_assignments(arm, stratum, max_assignments=1000)


def test_assignment_matrix_switches_to_exact_enumeration():
    arm, stratum = _design([6, 4], [3, 2])  # 20 * 6 = 120 assignments
    exact = assignment_matrix(arm, stratum, 120, seed=0)
    assert exact.exact and exact.n_draws == 120 and exact.n_distinct == 120
    mc = assignment_matrix(arm, stratum, 119, seed=0)
    assert not mc.exact and mc.n_draws == 119
    np.testing.assert_array_equal(mc.draws, draw_assignments(arm, stratum, 119, 0))


def test_cluster_draws_keep_households_together():
    # 12 households of sizes 1-3, 2 strata, whole households assigned.
    rng = np.random.default_rng(0)
    hh_size = np.array([1, 2, 3, 1, 2, 1, 3, 2, 1, 1, 2, 2])
    hh_stratum = np.array([0] * 6 + [1] * 6)
    hh_arm = np.array([1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1])
    cluster = np.repeat(np.arange(12), hh_size)
    order = rng.permutation(cluster.size)
    cluster, arm, stratum = cluster[order], hh_arm[cluster][order], hh_stratum[cluster][order]
    draws = draw_cluster_assignments(arm, stratum, cluster, 2000, seed=1)
    for g in range(12):
        cols = draws[:, cluster == g]
        assert np.all(cols == cols[:, :1])
    # Treated households per stratum preserved.
    for s in (0, 1):
        hh = np.flatnonzero(hh_stratum == s)
        first = np.array([np.flatnonzero(cluster == g)[0] for g in hh])
        np.testing.assert_array_equal(draws[:, first].sum(axis=1), hh_arm[hh].sum())
    assert n_cluster_assignments(arm, stratum, cluster) == math.comb(6, 3) * math.comb(6, 3)
    enum = enumerate_cluster_assignments(arm, stratum, cluster)
    assert enum.shape[0] == 400 and len(_as_set(enum)) == 400
    assert tuple(arm.tolist()) in _as_set(enum)


def test_cluster_draws_refuse_mixed_households():
    arm = np.array([1, 0, 1, 0])
    with pytest.raises(DesignError, match="different arms"):
        draw_cluster_assignments(arm, None, np.array([0, 0, 1, 1]), 10, seed=0)
    with pytest.raises(DesignError, match="more than one stratum"):
        draw_cluster_assignments(np.array([1, 1, 0, 0]), np.array([0, 1, 0, 0]),
                                 np.array([0, 0, 1, 1]), 10, seed=0)


def test_members_follow_their_index_person():
    arm, stratum = _design([10, 8], [5, 4])
    draws = draw_assignments(arm, stratum, 50, seed=2)
    row_person = np.array([0, 0, 3, 17, 3])
    expanded = expand_assignments(draws, row_person)
    np.testing.assert_array_equal(expanded, draws[:, row_person])
    with pytest.raises(DesignError, match="positions"):
        expand_assignments(draws, np.array([18]))


@pytest.mark.parametrize(
    "arm,stratum,match",
    [
        (np.array([0, 1, 2]), None, "0 \\(control\\) or 1"),
        (np.array([0, 1, 1]), np.array([0, 1]), "stratum has 2 values"),
        (np.zeros((2, 2)), None, "one-dimensional"),
    ],
)
def test_bad_inputs_raise_design_error(arm, stratum, match):
    with pytest.raises(DesignError, match=match):
        draw_assignments(arm, stratum, 10, seed=0)


def test_bad_n_permutations_and_seed():
    with pytest.raises(DesignError, match="positive integer"):
        draw_assignments(np.array([0, 1]), None, 0, seed=0)
    for seed in (-1, 1.5, "0"):
        with pytest.raises(DesignError, match="seed must be a non-negative integer"):
            draw_assignments(np.array([0, 1]), None, 5, seed=seed)


def test_degenerate_strata_all_or_none_treated():
    arm = np.array([1, 1, 0, 0, 1, 0], dtype=np.int8)
    stratum = np.array([0, 0, 1, 1, 2, 2])
    draws = draw_assignments(arm, stratum, 100, seed=0)
    np.testing.assert_array_equal(draws[:, :4], np.tile([1, 1, 0, 0], (100, 1)))
    assert n_assignments(arm, stratum) == 2
    assert _as_set(enumerate_assignments(arm, stratum)) == {(1, 1, 0, 0, 1, 0), (1, 1, 0, 0, 0, 1)}


def _mixed_design():
    """301 persons in 5 strata, shuffled, unequal shares, one stratum all treated."""
    rng = np.random.default_rng(11)
    stratum = rng.integers(0, 5, 301)
    arm = np.zeros(301, dtype=int)
    for s in range(5):
        idx = np.flatnonzero(stratum == s)
        arm[rng.choice(idx, size=idx.size // 3 + s % 2, replace=False)] = 1
    arm[stratum == 4] = 1
    return arm, stratum


def test_draws_are_frozen():
    # digest of the draws before the stratum-ordered rewrite of the chunk filler: the
    # draws (hence every randomization p-value) must never move
    import hashlib

    arm, stratum = _mixed_design()
    A = draw_assignments(arm, stratum, 3001, 2026, chunk_size=1000)
    assert hashlib.sha256(A.tobytes()).hexdigest() == (
        "8352bccf6b0690ed66e342cfac56598653a187c440846665657597806bb66b5f")


def test_exact_ties_treat_exactly_m_by_stable_order():
    # uniforms on a grid of 7 values: ties at the threshold in most rows. The rule is
    # "the m smallest u of the stratum, ties broken by position": a stable sort per row
    from ips_impact.inference.permutation import _blocks, _check_arm_stratum, _fill_chunk, _Layout

    arm, stratum = _mixed_design()
    a8, codes = _check_arm_stratum(arm, stratum)
    blocks = _blocks(a8, codes)
    u = np.round(np.random.default_rng(5).random((400, arm.size)) * 6) / 6
    got = _fill_chunk(u, _Layout.of(blocks, arm.size))
    want = np.zeros_like(got)
    for pos, m in blocks:
        first = np.argsort(u[:, pos], axis=1, kind="stable")[:, :m]
        np.put_along_axis(want, pos[first], 1, axis=1)
    np.testing.assert_array_equal(got, want)
    for pos, m in blocks:
        assert (got[:, pos].sum(axis=1) == m).all()
