"""Re-drawing the random assignment exactly as the design did.

The trial used complete randomization within strata: in stratum :math:`s` with
:math:`n_s` persons, exactly :math:`m_s` were assigned to IPS, every one of the
:math:`\\binom{n_s}{m_s}` subsets being equally likely, independently across strata.
The functions here reproduce that design:

* :func:`draw_assignments` — Monte Carlo draws, vectorised across draws;
* :func:`iter_assignments` — the same draws in chunks (bounded memory);
* :func:`n_assignments` — :math:`\\prod_s \\binom{n_s}{m_s}`, the number of distinct
  assignments;
* :func:`enumerate_assignments` — every distinct assignment (exact inference);
* :func:`draw_cluster_assignments` / :func:`enumerate_cluster_assignments` — the same
  for cluster (household) randomization, persons following their cluster;
* :func:`expand_assignments` — rows that are not randomized themselves (household
  members, person-period rows) follow the person whose assignment is re-drawn;
* :func:`assignment_matrix` — exact enumeration when the number of distinct
  assignments does not exceed the number of draws asked for, Monte Carlo otherwise.

All functions are pure: arrays in, arrays out. Randomness comes only from
``numpy.random.Generator(numpy.random.PCG64(seed))``.

Determinism and chunking
------------------------
Draw :math:`b` is computed from the uniform variates ``u[b, :]`` of
``rng.random((B, n))`` (one float64 per person, consumed row after row), so draw
:math:`b` depends only on ``seed`` and :math:`b`: the draws do not change with the
chunk size, and the first :math:`B'` of :math:`B` draws are the :math:`B'` draws of a
smaller request.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ips_impact.errors import DesignError

__all__ = [
    "AssignmentMatrix",
    "assignment_matrix",
    "draw_assignments",
    "draw_cluster_assignments",
    "enumerate_assignments",
    "enumerate_cluster_assignments",
    "expand_assignments",
    "iter_assignments",
    "n_assignments",
    "n_cluster_assignments",
]

#: Default number of draws per chunk: 2,048 x 1,200 persons x 8 bytes ~ 20 MB of uniforms.
DEFAULT_CHUNK = 2048
#: Refuse to enumerate more assignments than this (memory: n_assignments x n bytes).
MAX_ENUMERATION = 2_000_000


# --------------------------------------------------------------------------- inputs
def _check_arm_stratum(arm: np.ndarray, stratum: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``arm`` (0/1) and ``stratum`` (any labels) and return int codes."""
    arm = np.asarray(arm)
    if arm.ndim != 1:
        raise DesignError(
            f"arm must be one-dimensional, got shape {arm.shape}",
            column="arm",
            fix="pass one assignment per randomized person",
        )
    if arm.size == 0:
        raise DesignError("no randomized persons", column="arm", n_rows=0,
                          fix="pass at least one person per arm")
    bad = ~np.isin(arm, (0, 1))
    if bad.any():
        raise DesignError(
            "arm must be 0 (control) or 1 (IPS)",
            column="arm",
            n_rows=int(bad.sum()),
            examples=np.flatnonzero(bad)[:5].tolist(),
            fix="recode the assignment to 0/1 (examples are row positions)",
        )
    if stratum is None:
        codes = np.zeros(arm.size, dtype=np.int64)
    else:
        stratum = np.asarray(stratum)
        if stratum.shape != arm.shape:
            raise DesignError(
                f"stratum has {stratum.size} values and arm has {arm.size}",
                column="stratum",
                fix="pass one stratum per randomized person, in the order of arm",
            )
        _, codes = np.unique(stratum, return_inverse=True)
        codes = codes.astype(np.int64)
    return arm.astype(np.int8), codes


def _blocks(arm: np.ndarray, codes: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Per stratum: the positions of its members and how many of them were treated."""
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return [(pos, int(arm[pos].sum())) for pos in np.split(order, bounds)]


# ------------------------------------------------------------------------- counting
def n_assignments(arm: np.ndarray, stratum: np.ndarray | None = None) -> int:
    """Return the number of distinct assignments the design could have produced.

    .. math:: N = \\prod_s \\binom{n_s}{m_s}

    with :math:`n_s` persons and :math:`m_s` treated in stratum :math:`s`.

    Parameters
    ----------
    arm : array of 0/1, shape (n,)
        Observed assignment.
    stratum : array, shape (n,), optional
        Randomization block of each person (any labels); one block when ``None``.

    Returns
    -------
    int
        Exact Python integer (no overflow).
    """
    arm, codes = _check_arm_stratum(arm, stratum)
    return math.prod(math.comb(pos.size, m) for pos, m in _blocks(arm, codes))


# -------------------------------------------------------------------- Monte Carlo
@dataclass(frozen=True)
class _Layout:
    """The persons in stratum order, once per design: each stratum a contiguous span.

    ``order`` lists the positions stratum by stratum (each stratum's positions in the
    order of :func:`_blocks`), ``inverse`` puts them back, ``spans`` holds
    ``(start, stop, m_s)`` of every stratum in ``order``.
    """

    order: np.ndarray
    inverse: np.ndarray
    spans: tuple[tuple[int, int, int], ...]

    @classmethod
    def of(cls, blocks: list[tuple[np.ndarray, int]], n: int) -> _Layout:
        order = np.concatenate([pos for pos, _ in blocks])  # _check_arm_stratum: n >= 1
        inverse = np.empty(n, dtype=np.intp)
        inverse[order] = np.arange(n)
        ends = np.cumsum([pos.size for pos, _ in blocks])
        starts = np.r_[0, ends[:-1]]
        return cls(order, inverse, tuple((int(a), int(e), m) for a, e, (_, m) in zip(starts, ends, blocks)))


def _fill_chunk(u: np.ndarray, layout: _Layout) -> np.ndarray:
    """Turn uniforms ``u`` (b, n) into assignments.

    In each stratum, treat the m_s persons with the smallest ``u`` — a uniformly random
    m_s-subset of the stratum.
    """
    # one gather into stratum order, then every stratum is a slice (no fancy indexing
    # per stratum), and one gather back: 85 -> 40 ms for 2,048 draws of 1,200 persons in
    # 12 strata, the same draws
    uo = np.take(u, layout.order, axis=1)
    out = np.zeros(u.shape, dtype=np.int8)
    for a, e, m in layout.spans:
        if m == 0:
            continue
        if m == e - a:
            out[:, a:e] = 1
            continue
        ub = uo[:, a:e]
        # m-th smallest value per row by selection (O(n_s)), not a full sort.
        kth = np.partition(ub, m - 1, axis=1)[:, m - 1 : m]
        z = out[:, a:e].view(np.bool_)
        np.less_equal(ub, kth, out=z)
        # Every row holds at least its m smallest; exact float64 ties (probability
        # ~ n_s^2 / 2^54 per row) would treat too many. One count over the block finds
        # them; those rows are repaired with a stable sort so counts are always exact.
        if np.count_nonzero(z) != m * z.shape[0]:
            wrong = np.flatnonzero(np.count_nonzero(z, axis=1) != m)
            ranks = np.argsort(np.argsort(ub[wrong], axis=1, kind="stable"), axis=1)
            z[wrong] = ranks < m
    return np.take(out, layout.inverse, axis=1)


def iter_assignments(
    arm: np.ndarray,
    stratum: np.ndarray | None,
    n_permutations: int,
    seed: int,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> Iterator[np.ndarray]:
    """Yield re-drawn assignments in chunks of at most ``chunk_size`` draws.

    Same draws as :func:`draw_assignments` (whatever ``chunk_size``), without holding
    them all in memory.

    Yields
    ------
    numpy.ndarray of int8, shape (b, n), b <= chunk_size
    """
    arm, codes = _check_arm_stratum(arm, stratum)
    n_permutations = _check_positive(n_permutations, "n_permutations")
    chunk_size = _check_positive(chunk_size, "chunk_size")
    seed = _check_seed(seed)
    layout = _Layout.of(_blocks(arm, codes), arm.size)
    rng = np.random.Generator(np.random.PCG64(seed))
    done = 0
    while done < n_permutations:
        b = min(chunk_size, n_permutations - done)
        yield _fill_chunk(rng.random((b, arm.size)), layout)
        done += b


def draw_assignments(
    arm: np.ndarray,
    stratum: np.ndarray | None,
    n_permutations: int,
    seed: int,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Re-draw the assignment ``n_permutations`` times, as the design did.

    Complete randomization within strata: in each stratum :math:`s` exactly
    :math:`m_s` (the observed number) of the :math:`n_s` persons are treated, each
    :math:`m_s`-subset with probability :math:`1/\\binom{n_s}{m_s}`, independently
    across strata and draws. The observed assignment may be drawn again (sampling with
    replacement from the set of assignments).

    Parameters
    ----------
    arm : array of 0/1, shape (n,)
        Observed assignment.
    stratum : array, shape (n,) or None
        Randomization block of each person; one block when ``None``.
    n_permutations : int
        Number of draws B.
    seed : int
        Seed of ``numpy.random.Generator(numpy.random.PCG64(seed))``.
    chunk_size : int
        Draws computed at a time (bounds the float64 scratch memory to
        ``chunk_size * n * 8`` bytes); does not change the result.

    Returns
    -------
    numpy.ndarray of int8, shape (B, n)
        Row b is draw b; columns in the order of ``arm``.
    """
    chunks = list(iter_assignments(arm, stratum, n_permutations, seed, chunk_size=chunk_size))
    return np.concatenate(chunks, axis=0)


def _check_positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DesignError(
            f"{name} must be a positive integer, got {value!r}",
            fix=f"pass {name}=10_000 (or any integer >= 1)",
        )
    return int(value)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DesignError(
            f"seed must be a non-negative integer, got {seed!r}",
            fix="pass e.g. seed=0 (the same seed gives the same draws)",
        )
    return int(seed)


# --------------------------------------------------------------------- enumeration
def enumerate_assignments(
    arm: np.ndarray,
    stratum: np.ndarray | None = None,
    *,
    max_assignments: int = MAX_ENUMERATION,
) -> np.ndarray:
    """Every distinct assignment the design could have produced, each once.

    The set is the Cartesian product over strata of the :math:`\\binom{n_s}{m_s}`
    subsets of treated persons; it has :func:`n_assignments` rows and contains the
    observed assignment.

    Parameters
    ----------
    arm, stratum
        As in :func:`draw_assignments`.
    max_assignments : int
        Refuse (``DesignError``) when there are more distinct assignments than this.

    Returns
    -------
    numpy.ndarray of int8, shape (N, n)
        Rows in a fixed (lexicographic by stratum) order.
    """
    arm, codes = _check_arm_stratum(arm, stratum)
    blocks = _blocks(arm, codes)
    total = math.prod(math.comb(pos.size, m) for pos, m in blocks)
    if total > max_assignments:
        raise DesignError(
            f"the design has {total} distinct assignments, more than "
            f"max_assignments={max_assignments} can enumerate",
            column="arm",
            n_rows=arm.size,
            fix="use Monte Carlo draws (draw_assignments) instead of enumeration",
        )
    out = np.zeros((total, arm.size), dtype=np.int8)
    # Per stratum, all m_s-subsets as a (C_s, n_s) 0/1 matrix; then combine strata
    # with a mixed-radix index so that row r picks subset (r // stride_s) % C_s.
    stride = 1
    for pos, m in reversed(blocks):
        subsets = np.zeros((math.comb(pos.size, m), pos.size), dtype=np.int8)
        if m > 0:
            combos = np.array(list(itertools.combinations(range(pos.size), m)), dtype=np.int64)
            subsets[np.arange(len(combos))[:, None], combos] = 1
        pick = (np.arange(total) // stride) % len(subsets)
        out[:, pos] = subsets[pick]
        stride *= len(subsets)
    return out


# ------------------------------------------------------------- cluster randomization
def _check_clusters(
    arm: np.ndarray, codes: np.ndarray, cluster: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collapse persons to clusters: (cluster arm, cluster stratum, person->cluster)."""
    cluster = np.asarray(cluster)
    if cluster.shape != arm.shape:
        raise DesignError(
            f"cluster has {cluster.size} values and arm has {arm.size}",
            column="household_id",
            fix="pass one cluster code per randomized person, in the order of arm",
        )
    _, person_cluster = np.unique(cluster, return_inverse=True)
    n_cl = int(person_cluster.max()) + 1
    # One representative value per cluster; any person disagreeing with it reveals a
    # cluster that is mixed across arms or strata.
    c_arm = np.empty(n_cl, dtype=np.int8)
    c_arm[person_cluster] = arm
    c_str = np.empty(n_cl, dtype=np.int64)
    c_str[person_cluster] = codes
    mixed_arm = np.unique(person_cluster[c_arm[person_cluster] != arm])
    if mixed_arm.size:
        raise DesignError(
            "members of one cluster were assigned to different arms, so the cluster "
            "cannot be the unit of randomization",
            column=("household_id", "arm"),
            n_rows=int(np.isin(person_cluster, mixed_arm).sum()),
            fix="re-draw persons (draw_assignments) and let non-randomized members "
            "follow their index person (expand_assignments)",
        )
    split = np.unique(person_cluster[c_str[person_cluster] != codes])
    if split.size:
        raise DesignError(
            "a cluster spans more than one stratum",
            column=("household_id", "stratum"),
            n_rows=int(np.isin(person_cluster, split).sum()),
            fix="check the stratum of the members of these clusters",
        )
    return c_arm, c_str, person_cluster


def n_cluster_assignments(arm: np.ndarray, stratum: np.ndarray | None, cluster: np.ndarray) -> int:
    """Return the number of distinct assignments under cluster randomization within strata.

    It is :math:`\\prod_s \\binom{G_s}{g_s}` with :math:`G_s` clusters, :math:`g_s` treated.
    """
    arm, codes = _check_arm_stratum(arm, stratum)
    c_arm, c_str, _ = _check_clusters(arm, codes, cluster)
    return n_assignments(c_arm, c_str)


def draw_cluster_assignments(
    arm: np.ndarray,
    stratum: np.ndarray | None,
    cluster: np.ndarray,
    n_permutations: int,
    seed: int,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Re-draw a cluster-randomized assignment.

    Clusters are completely randomized within strata (same number of treated clusters per
    stratum as observed) and every person takes the arm of their cluster.

    Parameters
    ----------
    arm, stratum
        Person-level assignment and stratum (constant within a cluster).
    cluster : array, shape (n,)
        Cluster (household) of each person.
    n_permutations, seed, chunk_size
        As in :func:`draw_assignments` (applied to clusters).

    Returns
    -------
    numpy.ndarray of int8, shape (B, n)
    """
    arm, codes = _check_arm_stratum(arm, stratum)
    c_arm, c_str, person_cluster = _check_clusters(arm, codes, cluster)
    draws = draw_assignments(c_arm, c_str, n_permutations, seed, chunk_size=chunk_size)
    return draws[:, person_cluster]


def enumerate_cluster_assignments(
    arm: np.ndarray,
    stratum: np.ndarray | None,
    cluster: np.ndarray,
    *,
    max_assignments: int = MAX_ENUMERATION,
) -> np.ndarray:
    """Every distinct cluster-randomized assignment (persons follow their cluster)."""
    arm, codes = _check_arm_stratum(arm, stratum)
    c_arm, c_str, person_cluster = _check_clusters(arm, codes, cluster)
    return enumerate_assignments(c_arm, c_str, max_assignments=max_assignments)[:, person_cluster]


def expand_assignments(assignments: np.ndarray, row_person: np.ndarray) -> np.ndarray:
    """Return the assignments of rows that follow a randomized person.

    Row :math:`r` (a household member, or a person-period row of a stacked panel)
    takes the re-drawn arm of person ``row_person[r]``:
    :math:`Z^{(b)}_r = Z^{(b)}_{\\text{row\\_person}[r]}`.

    Parameters
    ----------
    assignments : array, shape (B, n_persons)
    row_person : int array, shape (n_rows,)
        Position (0..n_persons-1) of the person each row follows.

    Returns
    -------
    numpy.ndarray, shape (B, n_rows)
    """
    assignments = np.asarray(assignments)
    row_person = np.asarray(row_person)
    if row_person.size and (
        not np.issubdtype(row_person.dtype, np.integer)
        or row_person.min() < 0
        or row_person.max() >= assignments.shape[1]
    ):
        raise DesignError(
            f"row_person must hold positions 0..{assignments.shape[1] - 1} of randomized persons",
            column="index_person_id",
            fix="map every row to the position of its index person in study.persons",
        )
    return assignments[:, row_person]


# ------------------------------------------------------------------ exact or MC
@dataclass(frozen=True)
class AssignmentMatrix:
    """Re-drawn assignments shared by every statistic of a randomization test.

    Attributes
    ----------
    draws : numpy.ndarray of int8, shape (B, n)
        One assignment per row.
    exact : bool
        ``True``: ``draws`` holds every distinct assignment once (the observed one
        included), p-values are exact proportions. ``False``: Monte Carlo draws.
    n_distinct : int
        Number of distinct assignments of the design.
    seed : int
        Seed used for Monte Carlo draws.
    """

    draws: np.ndarray
    exact: bool
    n_distinct: int
    seed: int

    @property
    def n_draws(self) -> int:
        """Number of rows of ``draws``."""
        return int(self.draws.shape[0])


def assignment_matrix(
    arm: np.ndarray,
    stratum: np.ndarray | None,
    n_permutations: int,
    seed: int,
    *,
    cluster: np.ndarray | None = None,
) -> AssignmentMatrix:
    """Draw the assignments once for a design.

    Every distinct assignment when there are at most ``n_permutations`` of them (exact
    test), else ``n_permutations`` Monte Carlo draws. ``cluster`` switches to cluster
    randomization.
    """
    n_permutations = _check_positive(n_permutations, "n_permutations")
    if cluster is None:
        total = n_assignments(arm, stratum)
    else:
        total = n_cluster_assignments(arm, stratum, cluster)
    if total <= n_permutations:
        if cluster is None:
            draws = enumerate_assignments(arm, stratum, max_assignments=total)
        else:
            draws = enumerate_cluster_assignments(arm, stratum, cluster, max_assignments=total)
        return AssignmentMatrix(draws=draws, exact=True, n_distinct=total, seed=seed)
    if cluster is None:
        draws = draw_assignments(arm, stratum, n_permutations, seed)
    else:
        draws = draw_cluster_assignments(arm, stratum, cluster, n_permutations, seed)
    return AssignmentMatrix(draws=draws, exact=False, n_distinct=total, seed=seed)
