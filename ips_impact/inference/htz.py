r"""Hotelling's T² joint test with the HTZ degrees of freedom, beside the CR2 covariance.

:func:`htz_test` uses the CR2 working model of an
:class:`~ips_impact.inference.covariance.OLSDesign` (Pustejovsky & Tipton 2018); it
equals ``clubSandwich::Wald_test(test = "HTZ")``. It lives with the covariance code
(not with an estimator) because it is a property of the covariance estimator.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ips_impact.errors import EstimationError
from ips_impact.inference.covariance import OLSDesign

__all__ = ["htz_test"]

#: Eigenvalues of the working-model covariance below this get a zero inverse square
#: root (clubSandwich's matrix_power tolerance, 1e-12).
_HTZ_EIG_TOL = 1e-12


def _cluster_summer(design: OLSDesign) -> Any:
    """Return a function summing the rows of an (N × …) array within the clusters."""
    codes = design._codes  # noqa: SLF001 - cluster codes of the factorised design
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return lambda A: np.add.reduceat(A[order], starts, axis=0)


def htz_test(
    design: OLSDesign, C: np.ndarray, beta: np.ndarray, vcov: np.ndarray
) -> dict[str, float]:
    r"""Hotelling's T² test with the HTZ degrees of freedom (Pustejovsky & Tipton 2018).

    Tests :math:`H_0: C\beta = 0` (``C`` is q × K, full row rank) with the CR2 covariance
    :math:`\hat V` of a fitted :class:`~ips_impact.inference.covariance.OLSDesign`, as
    ``clubSandwich::Wald_test(lm(...), constraints = C, vcov = "CR2", test = "HTZ")``
    computes it for an unweighted ``lm`` (working model: independent homoskedastic
    errors, :math:`\Phi = I`).

    With :math:`M = (X'X)^{-1}`, :math:`A_j` the CR2 adjustment of cluster ``j`` and
    :math:`L L' = M`, the contribution of cluster ``j`` to :math:`C\hat V C'` is
    :math:`C M X_j'A_j e_j`, linear in the errors through

    .. math:: G_j = C M X_j' A_j \;(q \times n_j), \qquad
              H_j = C M X_j' A_j X_j L \;(q \times K),

    so that under the working model
    :math:`P_{st}[j, l] = \operatorname{Cov}(\cdot) = \mathbb 1[j = l]\, g_{sj}'g_{tj}
    - h_{sj}'h_{tl}` (rows s, t of :math:`G_j`, :math:`H_l`), and
    :math:`\Omega = E[C\hat VC'] = \sum_j P[j, j]`. With
    :math:`B_{st}[j, l] = (\Omega^{-1/2} P[j, l]\, \Omega^{-1/2})_{st}` (the inverse
    square root drops eigenvalues below 1e-12, as clubSandwich's ``matrix_power``),

    .. math:: \mathrm{Var}_{st} = \sum_{j,l} B_{st}[j,l]B_{ts}[j,l]
              + \sum_{j,l} B_{ss}[j,l]B_{tt}[j,l], \qquad
              \nu = \frac{q(q+1)}{\sum_{s,t}\mathrm{Var}_{st}},

    and with :math:`Q = (C\hat\beta)'(C\hat VC')^{-1}C\hat\beta`,

    .. math:: \delta = \max\Big(\frac{\nu - q + 1}{\nu}, 0\Big), \qquad
              F = \delta\,\frac{Q}{q} \sim F(q,\ \nu - q + 1).

    With q = 1 this is the squared Satterthwaite t test of the contrast. The double
    sums over cluster pairs are formed from K × K products (no G × G array):
    :math:`\sum_{j,l} (h_{aj}'h_{bl})(h_{cj}'h_{dl}) = \mathrm{tr}(K_{bd}K_{ca})` with
    :math:`K_{bd} = \sum_l h_{bl}h_{dl}'`.

    Parameters
    ----------
    design
        The factorised design of the fit; its ``cov_type`` must be ``"CR2"``.
    C
        Constraint matrix, q × K (K coefficients of the design).
    beta, vcov
        Fitted coefficients (K) and their CR2 covariance (K × K).

    Returns
    -------
    dict
        ``statistic`` (F = δQ/q), ``chi2`` (Q), ``df_num`` (q), ``df_denom``
        (ν − q + 1), ``delta`` (δ), ``nu`` (ν), ``p_value`` (NaN when ν − q + 1 ≤ 0).

    Raises
    ------
    EstimationError
        The design is not CR2, or ``C`` has the wrong shape.

    References
    ----------
    Pustejovsky, J. E. and Tipton, E. (2018). Small-sample methods for cluster-robust
    variance estimation and hypothesis testing in fixed effects models. *Journal of
    Business & Economic Statistics* 36(4), 672–683.
    """
    if design.cov_type != "CR2":
        raise EstimationError(
            f"the HTZ test needs a CR2 fit; this design has cov_type={design.cov_type!r}",
            fix="fit with cov_type='CR2', or use joint_test='naive-F' or 'chi-square'",
        )
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    q, K = C.shape
    if K != design.p:
        raise EstimationError(f"C has {K} columns but the design has {design.p} coefficients",
                              fix="give one column per coefficient of the fit")
    X = design._X  # noqa: SLF001 - the regressors of the factorised design
    AX = design._AX  # noqa: SLF001 - rows A_j X_j (CR2 adjustment applied)
    T = design._T  # noqa: SLF001 - M = T T' (from the pivoted QR; no Cholesky of M)
    M = design.xtx_inv
    CM = C @ M
    psi = AX @ CM.T  # (N, q): row i of cluster j is column i of G_j
    csum = _cluster_summer(design)
    GG = csum(psi[:, :, None] * psi[:, None, :])  # (J, q, q): G_j G_j'
    Z = np.stack([csum(psi[:, [a]] * X) for a in range(q)], axis=1)  # (J, q, K)
    H = Z @ T  # (J, q, K): H_j = C M X_j'A_j X_j L with L = T
    omega = GG.sum(axis=0) - np.einsum("jak,jbk->ab", H, H)
    omega = (omega + omega.T) / 2.0
    ev, vec = np.linalg.eigh(omega)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(ev > _HTZ_EIG_TOL, 1.0 / np.sqrt(np.where(ev > 0, ev, 1.0)), 0.0)
    on = (vec * f) @ vec.T  # Omega^{-1/2}
    alpha = np.einsum("ab,jbc,cd->jad", on, GG, on)  # normalised g_sj'g_tj
    Ht = np.einsum("ab,jbk->jak", on, H)  # normalised h_sj
    beta_ = np.einsum("jak,jbk->jab", Ht, Ht)  # h_sj'h_tj
    J = Ht.shape[0]
    Hf = Ht.reshape(J, q * K)
    # K_bd = sum_l h_bl h_dl', all (b, d) at once as one BLAS product
    Kmat = (Hf.T @ Hf).reshape(q, K, q, K).transpose(0, 2, 1, 3)

    def ps(a: int, b: int, c: int, d: int) -> float:
        # sum_{j,l} B_ab[j,l] B_cd[j,l] with B_ab[j,l] = 1[j=l] alpha_ab,j - h_aj'h_bl
        return float(
            (alpha[:, a, b] * alpha[:, c, d]).sum()
            - (alpha[:, a, b] * beta_[:, c, d]).sum()
            - (alpha[:, c, d] * beta_[:, a, b]).sum()
            + np.einsum("kl,lk->", Kmat[b, d], Kmat[c, a])
        )

    total = 0.0
    for s_ in range(q):
        for t_ in range(q):
            total += ps(s_, t_, t_, s_) + ps(s_, s_, t_, t_)
    nu = q * (q + 1) / total
    cb = C @ np.asarray(beta, dtype=np.float64)
    Q = float(cb @ np.linalg.solve(C @ np.asarray(vcov, dtype=np.float64) @ C.T, cb))
    delta = max((nu - q + 1.0) / nu, 0.0)
    df2 = nu - q + 1.0
    F = delta * Q / q
    p = float(stats.f.sf(F, q, df2)) if df2 > 0 else math.nan
    return {"statistic": F, "chi2": Q, "df_num": q, "df_denom": float(df2), "delta": float(delta),
            "nu": float(nu), "p_value": p}
