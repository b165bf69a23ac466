"""The OLS / covariance engine: brute-force formulas, the registry, typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from test_itt_simulation import single_threaded_blas

from ips_impact.errors import EstimationError, SmallSampleWarning
from ips_impact.inference.covariance import (
    COV_TYPES,
    OLSDesign,
    check_cov_type,
    joint_covariance,
    ols,
    resolve_cov_type,
)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small regressions: OpenBLAS threads only contend on a shared machine."""
    with single_threaded_blas():
        yield


def _data(n=90, k=4, seed=0, sizes=None):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    y = X @ rng.normal(size=k) + rng.normal(size=n) * (1 + np.abs(X[:, 1]))
    if sizes is None:
        sizes = rng.integers(1, 9, size=n)
    cl = np.repeat(np.arange(len(sizes)), sizes)[:n]
    rng.shuffle(cl)  # clusters need not be contiguous
    return X, y, cl


def _brute(X, y, cl, cov_type):
    """N × N textbook formulas (hat matrix, explicit (I − H_gg)^(-1/2), G × G Satterthwaite)."""
    n, k = X.shape
    M = np.linalg.inv(X.T @ X)
    b = M @ X.T @ y
    e = y - X @ b
    H = X @ M @ X.T
    h = np.diag(H)
    if cov_type.startswith("HC"):
        w = {"HC0": 1, "HC1": 1, "HC2": 1 / (1 - h), "HC3": 1 / (1 - h) ** 2}[cov_type] * e**2
        V = M @ (X.T * w) @ X @ M
        if cov_type == "HC1":
            V *= n / (n - k)
        return b, V, np.full(k, n - k)
    labels = np.unique(cl)
    G = labels.size
    meat = np.zeros((k, k))
    A = {}
    for g in labels:
        i = cl == g
        if cov_type == "CR2":
            Ag = np.real(scipy.linalg.fractional_matrix_power(np.eye(i.sum()) - H[np.ix_(i, i)], -0.5))
        else:
            Ag = np.eye(i.sum())
        A[g] = Ag
        u = X[i].T @ Ag @ e[i]
        meat += np.outer(u, u)
    V = M @ meat @ M
    if cov_type == "CR1":
        V *= G / (G - 1) * (n - 1) / (n - k)
    if cov_type != "CR2":
        return b, V, np.full(k, G - 1)
    # Bell–McCaffrey: G_g = (I − H)_{·,g} A_g X_g M e_j ; df = tr(B)^2 / tr(B^2), B = G'G
    df = np.empty(k)
    IH = np.eye(n) - H
    for j in range(k):
        cols = []
        for g in labels:
            i = cl == g
            cols.append(IH[:, i] @ A[g] @ X[i] @ M[:, j])
        Gm = np.column_stack(cols)
        B = Gm.T @ Gm
        df[j] = np.trace(B) ** 2 / np.sum(B * B)
    return b, V, df


@pytest.mark.parametrize("cov_type", list(COV_TYPES))
@pytest.mark.parametrize("sizes", [None, [30, 30, 30], [1] * 90, [2, 40, 3] + [5] * 9])
def test_engine_equals_textbook_formulas(cov_type, sizes):
    """Covers both CR2 paths: clusters smaller (eigh) and larger (thin SVD) than K."""
    X, y, cl = _data(sizes=sizes)
    clustered = COV_TYPES[cov_type].clustered
    with pytest.warns(SmallSampleWarning) if clustered and len(np.unique(cl)) < 20 else _no_warning():
        f = ols(X, y, cov_type=cov_type, clusters=cl if clustered else None)
    b, V, df = _brute(X, y, cl, cov_type)
    np.testing.assert_allclose(f.coef, b, rtol=1e-10)
    np.testing.assert_allclose(f.vcov, V, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(f.df, df, rtol=1e-8)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_cr2_with_singletons_is_hc2():
    X, y, _ = _data()
    a = ols(X, y, cov_type="HC2")
    b = ols(X, y, cov_type="CR2", clusters=np.arange(len(y)))
    np.testing.assert_allclose(a.vcov, b.vcov, rtol=1e-10)


def test_scale_invariance_and_table():
    X, y, _ = _data()
    Xs = X * np.array([1.0, 1e6, 1e-4, 3.0])
    a, b = ols(X, y), ols(Xs, y, names=["c", "a", "b", "d"])
    np.testing.assert_allclose(b.coef * [1.0, 1e6, 1e-4, 3.0], a.coef, rtol=1e-9)
    np.testing.assert_allclose(b.statistic, a.statistic, rtol=1e-9)
    t = b.table()
    assert list(t.index) == ["c", "a", "b", "d"]
    assert list(t.columns) == ["estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high", "df"]
    assert b.index("b") == 2
    with pytest.raises(EstimationError, match="no coefficient named 'z'"):
        b.index("z")
    with pytest.raises(ValueError):
        b.coef[0] = 1.0  # frozen arrays


def test_registry_and_option_checks():
    assert tuple(COV_TYPES) == ("HC0", "HC1", "HC2", "HC3", "CR0", "CR1", "CR2")
    with pytest.raises(EstimationError, match="cov_type must be one of 'HC0', 'HC1', 'HC2', 'HC3', 'CR0', 'CR1', 'CR2'; you passed 'HC4'"):
        check_cov_type("HC4")
    with pytest.raises(EstimationError, match="case-sensitive"):
        check_cov_type("cr2")
    with pytest.raises(EstimationError, match="must be one of 'CR1', 'CR0'"):
        check_cov_type("HC2", allowed=("CR1", "CR0"))
    assert resolve_cov_type(None, clustered=True) == "CR2"
    assert resolve_cov_type(None, clustered=False) == "HC2"
    with pytest.raises(EstimationError, match="no cluster was given"):
        resolve_cov_type("CR1", clustered=False)
    with pytest.raises(EstimationError, match="ignores clusters"):
        resolve_cov_type("HC3", clustered=True)


def test_engine_errors():
    X, y, cl = _data()
    with pytest.raises(EstimationError, match="needs cluster codes"):
        OLSDesign(X, cov_type="CR2")
    with pytest.raises(EstimationError, match="ignores clusters"):
        OLSDesign(X, cov_type="HC2", clusters=cl)
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        OLSDesign(X, cov_type="CR2", clusters=np.zeros(len(y)))
    with pytest.raises(EstimationError, match="cluster labels are missing"):
        OLSDesign(X, cov_type="CR1", clusters=np.where(np.arange(len(y)) < 3, np.nan, cl))
    with pytest.warns(SmallSampleWarning, match="only 5 clusters"):
        OLSDesign(X, cov_type="CR1", clusters=np.arange(len(y)) % 5)
    Xc = np.column_stack([X, X[:, 1] + 2 * X[:, 2]])
    with pytest.raises(EstimationError, match="regressors are collinear") as info:
        OLSDesign(Xc)
    msg = str(info.value)
    assert all(f"'{c}'" in msg for c in ("x1", "x2", "x4")) and "'x3'" not in msg
    with pytest.raises(EstimationError, match="zero in every observation"):
        OLSDesign(np.column_stack([X, np.zeros(len(y))]))
    with pytest.raises(EstimationError, match="missing or infinite"):
        OLSDesign(np.where(np.arange(len(y))[:, None] == 0, np.nan, X))
    with pytest.raises(EstimationError, match="not enough"):
        OLSDesign(X[:4])
    with pytest.raises(EstimationError, match="names were given"):
        OLSDesign(X, ["a"])
    d = OLSDesign(X)
    with pytest.raises(EstimationError, match="missing or infinite"):
        d.fit(np.where(np.arange(len(y)) == 0, np.nan, y))
    with pytest.raises(EstimationError, match="vector of length"):
        d.fit(y[:5])
    # a dummy for a single observation gives it leverage one: HC2/HC3 undefined
    lone = np.zeros(len(y))
    lone[0] = 1
    with pytest.raises(EstimationError, match="leverage one"):
        OLSDesign(np.column_stack([X, lone]), cov_type="HC2")
    OLSDesign(np.column_stack([X, lone]), cov_type="HC1")  # defined


def test_joint_covariance_aligns_clusters_by_label():
    X, y, cl = _data(n=120, sizes=[4] * 30)
    d = OLSDesign(X, cov_type="CR0", clusters=cl)
    e = d.fit(y).resid
    S = d.scores(e[:, None], 1)
    lab = np.asarray(d.cluster_labels)
    full = joint_covariance([S], [lab], [1.0])
    perm = np.random.default_rng(3).permutation(lab.size)
    both = joint_covariance([S, S[perm]], [lab, lab[perm]], [1.0, 1.0])
    np.testing.assert_allclose(both, np.full((2, 2), full[0, 0]), rtol=1e-12)
    assert full[0, 0] == pytest.approx(d.fit(y).vcov[1, 1], rel=1e-12)
