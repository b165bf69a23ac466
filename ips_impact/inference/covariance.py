"""Ordinary least squares with heteroskedasticity- and cluster-robust covariances.

One registry of covariance types (:data:`COV_TYPES`) serves every estimator of the
package. The numbers reproduce R ``estimatr::lm_robust`` (``se_type`` ``"HC0"`` …
``"HC3"``, ``"stata"``, ``"CR0"``, ``"CR2"``) and ``sandwich::vcovCL`` to
floating-point accuracy; ``tests/reference/r/regression.R`` produces the reference
numbers.

For the coefficient vector :math:`\\hat\\beta = (X'X)^{-1}X'y` with residuals
:math:`e = y - X\\hat\\beta`, every covariance has the sandwich form

.. math::

    \\hat V = c \\, M \\Big(\\sum_g X_g' A_g e_g e_g' A_g X_g\\Big) M,
    \\qquad M = (X'X)^{-1},

where ``g`` runs over clusters (single observations for the HC types), and

====== ======================================== ============================ ==================
type   :math:`A_g`                              :math:`c`                    degrees of freedom
====== ======================================== ============================ ==================
HC0    :math:`I`                                1                            N − K
HC1    :math:`I`                                N / (N − K)                  N − K
HC2    :math:`(1 - h_{ii})^{-1/2}`              1                            N − K
HC3    :math:`(1 - h_{ii})^{-1}`                1                            N − K
CR0    :math:`I`                                1                            G − 1
CR1    :math:`I`                                G/(G−1) · (N−1)/(N−K)        G − 1
CR2    :math:`(I - H_{gg})^{-1/2}`              1                            Satterthwaite
====== ======================================== ============================ ==================

with :math:`h_{ii}` the leverage of observation ``i``, :math:`H_{gg} = X_g M X_g'` the
diagonal block of the hat matrix for cluster ``g`` (its inverse square root is the
Moore–Penrose one: eigenvalues of :math:`I - H_{gg}` below 1e-12 get weight zero, as
in estimatr), N the number of observations, K the rank of X and G the number of
clusters. CR1 is Stata's (and estimatr's ``"stata"``) small-sample correction. The
CR2 degrees of freedom are those of Bell and McCaffrey (2002) under a working model
of independent homoskedastic errors, computed as in estimatr and clubSandwich: for a
coefficient :math:`\\beta_j` let :math:`B = D - W M W'` (G × G) with
:math:`D = \\mathrm{diag}(\\lVert A_g X_g M e_j \\rVert^2)` and rows
:math:`w_g' = (X_g' A_g X_g M e_j)'`; then :math:`\\nu_j = (\\mathrm{tr} B)^2 /
\\lVert B \\rVert_F^2`. The traces are formed from K × K products so that no G × G or
N × N matrix is ever built.

Weights are not supported (no estimator of the package needs them); a weighted fit
would have to follow estimatr's CR2 weighting and is left out rather than half done.

Numerics: columns are scaled to unit length and factorised by a column-pivoted QR
decomposition; a column whose pivot falls below 1e-7 (relative) makes the fit refuse
with :class:`~ips_impact.errors.EstimationError` naming the collinear columns. The
cluster blocks of CR2 are processed in batches of equal cluster size: clusters no
larger than K by the eigen-decomposition of :math:`I - Q_gQ_g'` (:math:`Q_g` the rows
of the orthonormal factor that belong to cluster ``g``), larger ones through the thin
singular value decomposition :math:`Q_g = U_gS_gV_g'`: :math:`(I - Q_gQ_g')^{-1/2} = I +
U_g(\\,(1-S_g^2)^{-1/2} - 1)U_g'`, which costs :math:`O(n_g K^2)` per cluster instead
of :math:`O(n_g^3)`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.linalg.lapack
from scipy import stats

from ips_impact._threads import design_size, fitted_size, hot_path
from ips_impact.errors import EstimationError, SmallSampleWarning

__all__ = [
    "CovType",
    "CovTypeInfo",
    "COV_TYPES",
    "check_cov_type",
    "resolve_cov_type",
    "OLSDesign",
    "OLSFit",
    "ols",
    "joint_covariance",
    "MIN_CLUSTERS_WARN",
]

CovType = Literal["HC0", "HC1", "HC2", "HC3", "CR0", "CR1", "CR2"]

#: Below this many clusters a cluster-robust variance draws a SmallSampleWarning.
MIN_CLUSTERS_WARN = 20

# Relative pivot below which a column counts as a linear combination of the others
# (the tolerance of R's lm()).
_RANK_TOL = 1e-7
# Numbers per block of clusters when the CR2 df of several coefficients are computed at once.
_DF_BLOCK = 4_000_000
# Eigenvalues of I - H_gg below this get a zero inverse square root (estimatr's rule).
_CR2_EIG_TOL = 1e-12


@dataclass(frozen=True)
class CovTypeInfo:
    """One entry of the covariance registry.

    Attributes
    ----------
    name
        The string users pass as ``cov_type``.
    clustered
        Whether the type needs cluster codes.
    description
        One line for messages and documentation.
    """

    name: str
    clustered: bool
    description: str


#: The one registry of covariance types, in the order shown to users.
COV_TYPES: Mapping[str, CovTypeInfo] = MappingProxyType(
    {
        "HC0": CovTypeInfo("HC0", False, "White heteroskedasticity-robust, no correction"),
        "HC1": CovTypeInfo("HC1", False, "HC0 × N/(N−K) (Stata 'robust', estimatr 'stata')"),
        "HC2": CovTypeInfo("HC2", False, "residuals scaled by (1 − leverage)^(-1/2)"),
        "HC3": CovTypeInfo("HC3", False, "residuals scaled by (1 − leverage)^(-1)"),
        "CR0": CovTypeInfo("CR0", True, "cluster-robust, no correction, df = G − 1"),
        "CR1": CovTypeInfo(
            "CR1", True, "CR0 × G/(G−1)·(N−1)/(N−K), df = G − 1 (Stata, estimatr 'stata')"
        ),
        "CR2": CovTypeInfo(
            "CR2", True, "Bell–McCaffrey bias-reduced, Satterthwaite df (estimatr, clubSandwich)"
        ),
    }
)

_ALIAS_HINT = {
    "stata": "estimatr's 'stata' is called 'HC1' here without clusters and 'CR1' with clusters",
    "classical": "homoskedastic standard errors are not offered; 'HC2' is the design-based default",
    "hc2": "cov_type is case-sensitive: write 'HC2'",
}


def check_cov_type(
    cov_type: object,
    *,
    allowed: Sequence[str] | None = None,
    argument: str = "cov_type",
) -> str:
    """Return ``cov_type`` if it is a registered (and allowed) covariance type.

    Parameters
    ----------
    cov_type
        The value passed by the user.
    allowed
        Subset of :data:`COV_TYPES` the calling estimator accepts (default: all).
    argument
        Name of the argument, for the message.

    Raises
    ------
    EstimationError
        Unknown or not allowed here; the message lists the allowed values.
    """
    names = tuple(allowed) if allowed is not None else tuple(COV_TYPES)
    if isinstance(cov_type, str) and cov_type in names:
        return cov_type
    hint = _ALIAS_HINT.get(str(cov_type).lower()) if isinstance(cov_type, str) else None
    if isinstance(cov_type, str) and cov_type.upper() in names and hint is None:
        hint = f"cov_type is case-sensitive: write {cov_type.upper()!r}"
    raise EstimationError(
        f"{argument} must be one of {', '.join(repr(n) for n in names)}; you passed {cov_type!r}",
        fix=hint or f"pass one of {', '.join(names)}",
    )


def resolve_cov_type(cov_type: str | None, *, clustered: bool) -> str:
    """Default and check a covariance type against whether clusters are in play.

    ``None`` becomes ``"CR2"`` with clusters and ``"HC2"`` without (the design-based
    defaults of estimatr). A CR type without clusters, or an HC type with clusters,
    raises :class:`EstimationError` (an HC type would silently ignore the clustering).
    """
    if cov_type is None:
        return "CR2" if clustered else "HC2"
    name = check_cov_type(cov_type)
    if COV_TYPES[name].clustered and not clustered:
        raise EstimationError(
            f"cov_type {name!r} is cluster-robust but no cluster was given",
            fix="pass cluster=<column of persons> (e.g. 'household_id'), or use 'HC2'",
        )
    if not COV_TYPES[name].clustered and clustered:
        raise EstimationError(
            f"cov_type {name!r} ignores clusters, but the estimate is clustered",
            fix="use cov_type='CR2' (recommended) or 'CR1', or drop cluster=",
        )
    return name


def _as_2d_float(a: Any, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise EstimationError(f"{what} must be a vector or a matrix; it has {arr.ndim} dimensions")
    return arr


class OLSDesign:
    """A regressor matrix factorised once, ready to fit one or many outcomes.

    Everything that depends only on X, the clusters and the covariance type (the QR
    factor, the leverages, the CR2 adjustment blocks :math:`A_g X_g`, the CR2 degrees
    of freedom) is computed here once, so that fitting several outcomes on the same
    design (one per event time, or one per permutation) costs matrix products only.

    Parameters
    ----------
    X
        Regressors, shape (N, K), float, no missing values. Include the intercept.
    names
        Column names (default ``x0``, ``x1`` …); used in messages and tables.
    cov_type
        A key of :data:`COV_TYPES`.
    clusters
        Cluster labels, length N (any hashable values, no missing); required for
        CR types, refused for HC types.
    min_clusters_warn
        Fewer clusters than this draws a :class:`SmallSampleWarning`.

    Raises
    ------
    EstimationError
        Bad shapes, non-finite values, fewer observations than columns, collinear
        columns (named), a CR type without clusters or with fewer than 2 clusters,
        an observation with leverage one under HC2/HC3.
    """

    @hot_path(design_size)
    def __init__(
        self,
        X: Any,
        names: Sequence[str] | None = None,
        *,
        cov_type: str = "HC2",
        clusters: Any = None,
        min_clusters_warn: int = MIN_CLUSTERS_WARN,
    ) -> None:
        cov_type = check_cov_type(cov_type)
        X = _as_2d_float(X, "X")
        n, p = X.shape
        names = tuple(str(c) for c in names) if names is not None else tuple(f"x{j}" for j in range(p))
        if len(names) != p:
            raise EstimationError(f"X has {p} columns but {len(names)} names were given")
        if not np.isfinite(X).all():
            bad = np.flatnonzero(~np.isfinite(X).all(axis=0))
            raise EstimationError(
                "the regressors hold missing or infinite values",
                column=[names[j] for j in bad],
                n_rows=int((~np.isfinite(X).all(axis=1)).sum()),
                fix="drop or impute the missing values before fitting",
            )
        if n <= p:
            raise EstimationError(
                f"{n} observations are not enough for {p} regressors",
                fix="use fewer covariates or strata",
            )
        info = COV_TYPES[cov_type]
        self.cov_type = cov_type
        self.names = names
        self.n = n
        self.p = p
        self._X = X

        # --- QR on unit-length columns with pivoting (scale-free rank check)
        norms = np.sqrt(np.einsum("ij,ij->j", X, X))
        zero = norms == 0
        if zero.any():
            raise EstimationError(
                "regressor(s) are zero in every observation",
                column=[names[j] for j in np.flatnonzero(zero)],
                fix="remove the column (an empty stratum or category?)",
            )
        Xs = X / norms
        Q, R, piv = scipy.linalg.qr(Xs, mode="economic", pivoting=True)
        diag = np.abs(np.diag(R))
        rank = int((diag > _RANK_TOL * diag[0]).sum())
        if rank < p:
            self._raise_collinear(R, piv, rank)
        # R^{-1} in the scaled, pivoted basis; M = (X'X)^{-1} in the original one.
        # LAPACK trtri directly: a few microseconds, where solve_triangular takes 40 us
        # (and 20 ms when OpenBLAS threads contend on a busy machine)
        Rinv, trtri_info = scipy.linalg.lapack.dtrtri(R, lower=0)
        if trtri_info != 0:  # pragma: no cover - excluded by the rank check above
            raise EstimationError("the regressor matrix is singular", fix="remove collinear columns")
        # columns of Xs[:, piv] = Q R  =>  X = Q R P' D  =>  beta = D^{-1} P R^{-1} Q'y
        T = np.empty_like(Rinv)
        T[piv, :] = Rinv  # P R^{-1}
        T /= norms[:, None]  # D^{-1} P R^{-1}, so that beta = T Q'y and M = T T'
        self._T = T
        self._Q = Q
        self.rank = rank
        self.xtx_inv = T @ T.T

        # --- clusters
        if info.clustered:
            if clusters is None:
                raise EstimationError(
                    f"cov_type {cov_type!r} needs cluster codes but none were given",
                    fix="pass clusters, or use an HC type",
                )
            codes, uniques = pd.factorize(np.asarray(clusters), use_na_sentinel=True)
            if len(codes) != n:
                raise EstimationError(f"clusters has {len(codes)} values but X has {n} rows")
            if (codes < 0).any():
                raise EstimationError(
                    "cluster labels are missing", n_rows=int((codes < 0).sum()),
                    fix="drop the rows without a cluster, or fill the labels",
                )
            G = len(uniques)
            if G < 2:
                raise EstimationError(
                    f"cluster-robust covariance needs at least 2 clusters; there is {G}",
                    fix="cluster at a coarser-grained level, or use an HC type",
                )
            if G < min_clusters_warn:
                warnings.warn(
                    f"only {G} clusters: cluster-robust standard errors are unreliable with "
                    f"fewer than {min_clusters_warn} clusters"
                    + ("" if cov_type == "CR2" else "; prefer cov_type='CR2', whose Satterthwaite df adapt"),
                    SmallSampleWarning,
                    stacklevel=2,
                )
            self.cluster_labels = uniques
        else:
            if clusters is not None:
                raise EstimationError(
                    f"cov_type {cov_type!r} ignores clusters, but clusters were given",
                    fix="use cov_type='CR2' or 'CR1', or do not pass clusters",
                )
            codes = np.arange(n)
            G = n
            self.cluster_labels = None
        self.n_clusters = G if info.clustered else None
        self._codes = codes
        # rows sorted by cluster; group sums by reduceat over contiguous blocks
        order = np.argsort(codes, kind="stable")
        sizes = np.bincount(codes, minlength=G)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self._order, self._sizes, self._starts = order, sizes, starts
        self._G = G

        # --- adjusted regressors A_g X_g (rows in original order)
        if cov_type in ("HC2", "HC3"):
            h = np.einsum("ij,ij->i", Q, Q)
            one = h > 1.0 - 1e-10
            if one.any():
                raise EstimationError(
                    f"{int(one.sum())} observation(s) have leverage one (they alone determine a "
                    f"coefficient, e.g. the only treated person of a stratum), so {cov_type} is "
                    "undefined",
                    n_rows=int(one.sum()),
                    fix="merge small strata, drop covariates, or use cov_type='HC1'",
                )
            self.leverage = h
            scale = 1.0 / np.sqrt(1.0 - h) if cov_type == "HC2" else 1.0 / (1.0 - h)
            self._AX = X * scale[:, None]
        elif cov_type == "CR2":
            self.leverage = np.einsum("ij,ij->i", Q, Q)
            self._AX = self._cr2_blocks()
        else:
            self.leverage = None
            self._AX = X

        if cov_type == "HC1":
            self._scale = n / (n - rank)
        elif cov_type == "CR1":
            self._scale = G / (G - 1) * (n - 1) / (n - rank)
        else:
            self._scale = 1.0
        self._df_cache: dict[int, float] = {}

    # ------------------------------------------------------------------ helpers
    def _raise_collinear(self, R: np.ndarray, piv: np.ndarray, rank: int) -> None:
        names = self.names
        dropped = piv[rank:]
        # express each dropped column through the kept ones to name its partners
        coef = scipy.linalg.solve_triangular(R[:rank, :rank], R[:rank, rank:])
        partners: list[str] = []
        for j in range(coef.shape[1]):
            used = piv[:rank][np.abs(coef[:, j]) > 1e-6]
            partners.extend(names[u] for u in used if names[u] not in partners)
        raise EstimationError(
            "regressors are collinear: "
            + ", ".join(repr(names[d]) for d in dropped)
            + (" is" if len(dropped) == 1 else " are")
            + " a linear combination of "
            + (", ".join(repr(s) for s in partners[:8]) or "the other columns")
            + (" …" if len(partners) > 8 else ""),
            column=[names[d] for d in dropped],
            fix="remove the redundant covariate (or a category that coincides with a stratum)",
        )

    def _group_sum(self, A: np.ndarray) -> np.ndarray:
        """Sum the rows of ``A`` (N × m) within clusters → (G × m), clusters in code order."""
        if self.n_clusters is None:
            return A
        return np.add.reduceat(A[self._order], self._starts, axis=0)

    def _cr2_blocks(self) -> np.ndarray:
        """Rows of blockdiag(A_g) X with A_g = (I − H_gg)^{-1/2}, batched by cluster size."""
        X, Q = self._X, self._Q
        AX = np.empty_like(X)
        for s in np.unique(self._sizes):
            gs = np.flatnonzero(self._sizes == s)
            rows = self._order[self._starts[gs][:, None] + np.arange(s)]  # (n_s, s)
            Qb = Q[rows]  # (n_s, s, K)
            Xb = X[rows]
            if s <= Qb.shape[2]:
                # small clusters: eigen-decompose the s x s block I - Q_g Q_g' (estimatr's way)
                H = Qb @ Qb.transpose(0, 2, 1)
                ev, V = np.linalg.eigh(np.eye(s) - H)
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = np.where(ev > _CR2_EIG_TOL, 1.0 / np.sqrt(np.where(ev > 0, ev, 1.0)), 0.0)
                AXb = V @ (f[:, :, None] * (V.transpose(0, 2, 1) @ Xb))
            else:
                # large clusters: only the K non-unit eigenvalues matter (thin SVD of Q_g)
                U, S, _ = np.linalg.svd(Qb, full_matrices=False)
                ev = 1.0 - S**2  # the non-unit eigenvalues of I - Q_g Q_g'
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = np.where(ev > _CR2_EIG_TOL, 1.0 / np.sqrt(np.where(ev > 0, ev, 1.0)), 0.0)
                UtX = U.transpose(0, 2, 1) @ Xb
                AXb = Xb + U @ ((f - 1.0)[:, :, None] * UtX)
            AX[rows] = AXb
        return AX

    # ------------------------------------------------------------------ fitting
    def coef(self, Y: Any) -> np.ndarray:
        """Least-squares coefficients, (K,) for a vector y, (K, m) for a matrix."""
        Yv = np.asarray(Y, dtype=np.float64)
        return self._T @ (self._Q.T @ Yv)

    def scores(self, resid: np.ndarray, j: int | None = None) -> np.ndarray:
        """Per-cluster contributions to the coefficient(s).

        Returns :math:`s_g = M X_g' A_g e_g` (G × K) for a residual vector, or for
        coefficient ``j`` only the (G × m) matrix :math:`e_j' M X_g'A_g e_{g,\\cdot}`
        for a residual matrix (one column per outcome). Then
        :math:`\\hat V = c \\sum_g s_g s_g'`, and the covariance of coefficient j
        across outcomes fitted on this design is :math:`c\\, S'S`.
        """
        if j is None:
            U = self._group_sum(self._AX * resid[:, None])
            return U @ self.xtx_inv
        psi = self._AX @ self.xtx_inv[:, j]
        E = resid if resid.ndim == 2 else resid[:, None]
        return self._group_sum(psi[:, None] * E)

    @property
    def scale(self) -> float:
        """The finite-sample factor c of the registry (1 but for HC1 and CR1)."""
        return self._scale

    def df(self, j: int) -> float:
        """Degrees of freedom for coefficient ``j`` (N − K, G − 1 or Satterthwaite)."""
        if self.cov_type in ("HC0", "HC1", "HC2", "HC3"):
            return float(self.n - self.rank)
        if self.cov_type in ("CR0", "CR1"):
            return float(self._G - 1)
        if j not in self._df_cache:
            self._df_cache[j] = self._satterthwaite(j)
        return self._df_cache[j]

    def _satterthwaite_many(self, js: Sequence[int]) -> np.ndarray:
        r"""Bell–McCaffrey Satterthwaite df of several coefficients in one pass.

        For coefficient j, :math:`\nu_j = (\operatorname{tr} B_j)^2 / \lVert B_j \rVert_F^2`
        with :math:`B_j` the G × G matrix of the CR2 variance of :math:`\hat\beta_j`;
        with :math:`d_{gj} = \lVert A_g X_g M e_j \rVert^2`, :math:`q_{gj} = w_{gj}'Mw_{gj}`
        and :math:`S_j = \sum_g w_{gj}w_{gj}'`: :math:`\operatorname{tr} B_j = \sum_g (d_{gj}
        - q_{gj})` and :math:`\lVert B_j\rVert_F^2 = \sum_g d_{gj}^2 - 2\sum_g d_{gj}q_{gj}
        + \operatorname{tr}(MS_jMS_j)`. The cluster rows are :math:`w_{gj} = X_g'A_g(X_g M
        e_j)`: one product :math:`XC` (C the J wanted columns of M), then one batched product
        per cluster size, :math:`O(NKJ)` in all, so the df of the one reported coefficient
        cost a K-th of those of every coefficient. Clusters are taken in blocks of at most a
        few million numbers.
        """
        M = self.xtx_inv
        C = M[:, list(js)]  # (K, J): the columns M e_j
        J, K = C.shape[1], self.p
        d = self._group_sum((self._AX @ C) ** 2)  # (G, J): ||A_g X_g M e_j||^2
        XC = self._X @ C  # (N, J)
        q = np.empty_like(d)
        S = np.zeros((J, K, K))
        block = max(1, _DF_BLOCK // (K * max(K, J)))
        for size in np.unique(self._sizes):
            gs_all = np.flatnonzero(self._sizes == size)
            for b0 in range(0, gs_all.size, block):
                gs = gs_all[b0:b0 + block]
                rows = self._order[self._starts[gs][:, None] + np.arange(size)]
                W = self._AX[rows].transpose(0, 2, 1) @ XC[rows]  # (g, K, J)
                q[gs] = np.einsum("gkj,gkj->gj", W, M @ W)
                Wt = W.transpose(2, 0, 1)  # (J, g, K)
                S += Wt.transpose(0, 2, 1) @ Wt
        MS = M @ S
        trB = d.sum(axis=0) - q.sum(axis=0)
        frob2 = (d**2).sum(axis=0) - 2.0 * (d * q).sum(axis=0) + np.einsum("jab,jba->j", MS, MS)
        return trB**2 / frob2

    def _satterthwaite(self, j: int) -> float:
        """Satterthwaite df of coefficient ``j`` (see :meth:`_satterthwaite_many`)."""
        return float(self._satterthwaite_many([j])[0])

    @hot_path(fitted_size)
    def fit(self, y: Any, *, df_for: Sequence[int] | None = None) -> OLSFit:
        """Fit one outcome vector.

        Parameters
        ----------
        y
            Outcome, length N, finite.
        df_for
            Coefficients for which CR2 Satterthwaite df are computed (default: all);
            the others get NaN df (and NaN p-values / intervals). Other types always
            get their df.
        """
        yv = np.asarray(y, dtype=np.float64)
        if yv.ndim != 1 or len(yv) != self.n:
            raise EstimationError(f"y must be a vector of length {self.n}; it has shape {yv.shape}")
        if not np.isfinite(yv).all():
            raise EstimationError(
                "the outcome holds missing or infinite values",
                n_rows=int((~np.isfinite(yv)).sum()),
                fix="drop the rows with a missing outcome before fitting",
            )
        beta = self.coef(yv)
        resid = yv - self._X @ beta
        U = self._group_sum(self._AX * resid[:, None])
        V = self._scale * (self.xtx_inv @ (U.T @ U) @ self.xtx_inv)
        V = (V + V.T) / 2.0
        wanted = range(self.p) if df_for is None else df_for
        if self.cov_type == "CR2":
            # the Satterthwaite df of every wanted coefficient in one batched pass
            todo = sorted({int(j) for j in wanted} - set(self._df_cache))
            if todo:
                self._df_cache.update(zip(todo, self._satterthwaite_many(todo).tolist()))
        df = np.full(self.p, np.nan)
        for j in wanted:
            df[j] = self.df(int(j))
        return OLSFit(
            names=self.names,
            coef=beta,
            vcov=V,
            df=df,
            cov_type=self.cov_type,
            nobs=self.n,
            rank=self.rank,
            n_clusters=self.n_clusters,
            resid=resid,
        )


@dataclass(frozen=True)
class OLSFit:
    """A fitted linear model with its robust covariance (frozen).

    Attributes
    ----------
    names
        Coefficient names.
    coef, vcov, df
        Estimates (K,), covariance (K, K) and per-coefficient degrees of freedom (K,).
    cov_type, nobs, rank, n_clusters
        As registered; ``n_clusters`` is ``None`` for HC types.
    resid
        Residuals (N,).
    """

    names: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    df: np.ndarray
    cov_type: str
    nobs: int
    rank: int
    n_clusters: int | None
    resid: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        for a in (self.coef, self.vcov, self.df, self.resid):
            a.setflags(write=False)

    def index(self, name: str) -> int:
        """Position of coefficient ``name`` (EstimationError listing the names if absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise EstimationError(
                f"no coefficient named {name!r}; the coefficients are {', '.join(self.names)}"
            ) from None

    @property
    def std_error(self) -> np.ndarray:
        """Standard errors, square roots of the diagonal of ``vcov`` (rounding below 0 clipped to 0)."""
        # a coefficient whose residuals vanish (a constant outcome in one stratum) can
        # get a variance of -1e-16 from rounding
        return np.sqrt(np.clip(np.diag(self.vcov), 0.0, None))

    @property
    def statistic(self) -> np.ndarray:
        """The t statistics ``coef / std_error``; NaN where the standard error is 0."""
        # a zero standard error (no residual variation behind a coefficient) leaves the
        # t statistic undefined, not infinite: report NaN rather than certainty
        se = self.std_error
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(se > 0, self.coef / np.where(se > 0, se, 1.0), np.nan)

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-values of the t statistics with the registry's df."""
        return 2.0 * stats.t.sf(np.abs(self.statistic), self.df)

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        """(K, 2) confidence limits from the t distribution with the registry's df."""
        q = stats.t.ppf(0.5 + level / 2.0, self.df)
        se = self.std_error
        return np.column_stack([self.coef - q * se, self.coef + q * se])

    def table(self, level: float = 0.95) -> pd.DataFrame:
        """Coefficient table indexed by name (estimate, std_error, statistic, p_value, conf_low, conf_high, df)."""
        ci = self.conf_int(level)
        return pd.DataFrame(
            {
                "estimate": self.coef,
                "std_error": self.std_error,
                "statistic": self.statistic,
                "p_value": self.p_value,
                "conf_low": ci[:, 0],
                "conf_high": ci[:, 1],
                "df": self.df,
            },
            index=pd.Index(self.names, name="term"),
        )


def ols(
    X: Any,
    y: Any,
    *,
    names: Sequence[str] | None = None,
    cov_type: str = "HC2",
    clusters: Any = None,
    df_for: Sequence[int] | None = None,
    min_clusters_warn: int = MIN_CLUSTERS_WARN,
) -> OLSFit:
    """Least squares of ``y`` on ``X`` with a robust covariance from :data:`COV_TYPES`.

    Estimand: the population projection coefficient
    :math:`\\beta = E[X'X]^{-1}E[X'y]`, estimated by :math:`(X'X)^{-1}X'y`; see the
    module docstring for the covariance formulas. Equivalent to
    ``estimatr::lm_robust(y ~ X - 1, se_type=…, clusters=…)`` (``"HC1"`` / ``"CR1"``
    are estimatr's ``"stata"``).

    Parameters
    ----------
    X, y
        Regressors (N × K, with the intercept) and outcome (N), finite.
    names
        Coefficient names.
    cov_type
        A key of :data:`COV_TYPES`.
    clusters
        Cluster labels (length N) for the CR types.
    df_for
        Coefficients whose CR2 df are computed (default all).

    Returns
    -------
    OLSFit
    """
    design = OLSDesign(X, names, cov_type=cov_type, clusters=clusters, min_clusters_warn=min_clusters_warn)
    return design.fit(y, df_for=df_for)


def joint_covariance(
    scores: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    scales: Sequence[float],
) -> np.ndarray:
    """Covariance of several estimates from their per-cluster scores.

    Estimate ``a`` has per-cluster scores :math:`s_{ga}` (from :meth:`OLSDesign.scores`
    for one coefficient, one column per estimate of that design) with cluster labels
    ``labels[a]`` and finite-sample factor ``scales[a]``. Clusters are matched by label
    across estimates (a cluster absent from a fit contributes zero), and

    .. math:: \\hat C_{ab} = \\sqrt{c_a c_b}\\, \\sum_g s_{ga} s_{gb},

    the stacked ("seemingly unrelated") cluster-robust covariance, which reduces to
    each fit's own variance on the diagonal.

    Parameters
    ----------
    scores
        One array per fit, (G_a,) or (G_a, m_a).
    labels
        Cluster labels of the rows of each score array.
    scales
        Finite-sample factor of each fit.

    Returns
    -------
    numpy.ndarray
        (m, m) with m the total number of score columns.
    """
    labs = [np.asarray(lab) for lab in labels]
    if len(labs) == 1 and (labs[0].size < 2 or bool((labs[0][1:] > labs[0][:-1]).all())):
        # one fit whose labels are already sorted and distinct (itt_by_period when the
        # same persons are observed at every k): the matching below would be the
        # identity, so skip the sort of N labels; the product is the same to the bit
        s2 = scores[0][:, None] if scores[0].ndim == 1 else scores[0]
        S1 = s2 * np.sqrt(scales[0])
        C1 = S1.T @ S1
        return (C1 + C1.T) / 2.0
    all_labels, inverse = np.unique(np.concatenate(labs), return_inverse=True)
    cols = []
    start = 0
    for s, lab, c in zip(scores, labs, scales):
        s2 = s[:, None] if s.ndim == 1 else s
        pos = inverse[start:start + lab.size]
        start += lab.size
        full = np.zeros((all_labels.size, s2.shape[1]))
        full[pos] = s2 * np.sqrt(c)
        cols.append(full)
    S = np.hstack(cols)
    C = S.T @ S
    return (C + C.T) / 2.0
