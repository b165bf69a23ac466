"""Binary GLM of a discrete-time hazard with person-clustered sandwich variance.

The bread is the expected (Fisher) information, as in R ``sandwich`` for ``glm``;
statsmodels' cluster covariance uses the observed Hessian, which differs for the
non-canonical complementary log-log link, so the sandwich is assembled here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["HazardGLM", "hazard_glm", "LINKS"]

LINKS = ("cloglog", "logit")


@dataclass(frozen=True)
class HazardGLM:
    """Coefficients, CR1 clustered covariance and fit diagnostics."""

    params: np.ndarray
    vcov: np.ndarray
    converged: bool
    n_iter: int
    n_clusters: int
    messages: tuple[str, ...]


def _mu_and_deriv(eta: np.ndarray, link: str) -> tuple[np.ndarray, np.ndarray]:
    if link == "cloglog":
        e = np.exp(np.clip(eta, -700, 30))
        mu = -np.expm1(-e)
        return mu, e * np.exp(-e)
    mu = 1 / (1 + np.exp(-eta))
    return mu, mu * (1 - mu)


def hazard_glm(y: np.ndarray, x: np.ndarray, groups: np.ndarray, link: str,
               *, max_iter: int = 100, tol: float = 1e-12) -> HazardGLM:
    r"""Fit :math:`g(P(y=1)) = x^\top\beta` by IRLS; variance clustered by ``groups``.

    .. math:: \hat V = \frac{G}{G-1}\frac{n-1}{n-p}\, B^{-1}\Big(\sum_g s_g s_g^\top\Big) B^{-1},
              \quad B = \sum_i x_i x_i^\top \frac{\mu_i'^2}{\mu_i(1-\mu_i)}

    (= ``sandwich::vcovCL(type = "HC1")``), with :math:`s_g` the summed scores of cluster g.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n, p = x.shape
    # start from the logit/cloglog of a shrunk y (the usual glm start)
    mu0 = (y + 0.5) / 2
    eta = np.log(-np.log1p(-mu0)) if link == "cloglog" else np.log(mu0 / (1 - mu0))
    beta = np.linalg.lstsq(x, eta, rcond=None)[0]
    dev_old = np.inf
    converged = False
    msgs: list[str] = []
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it`, the iteration count, is returned after the loop
        eta = x @ beta
        mu, dmu = _mu_and_deriv(eta, link)
        mu = np.clip(mu, 1e-300, 1 - 1e-16)
        var = mu * (1 - mu)
        w = dmu**2 / var
        z = eta + (y - mu) / np.where(dmu > 0, dmu, 1e-300)
        xw = x * w[:, None]
        beta_new = np.linalg.solve(xw.T @ x, xw.T @ z)
        eta = x @ beta_new
        mu, _ = _mu_and_deriv(eta, link)
        mu = np.clip(mu, 1e-300, 1 - 1e-16)
        dev = -2 * np.sum(y * np.log(mu) + (1 - y) * np.log1p(-mu))
        beta = beta_new
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            converged = True
            break
        dev_old = dev
    if not converged:
        msgs.append(f"IRLS did not converge in {max_iter} iterations")
        warnings.warn(msgs[-1], RuntimeWarning, stacklevel=2)
    eta = x @ beta
    mu, dmu = _mu_and_deriv(eta, link)
    var = mu * (1 - mu)
    bread = np.linalg.inv((x * (dmu**2 / var)[:, None]).T @ x)
    score = x * ((y - mu) * dmu / var)[:, None]
    _, g = np.unique(groups, return_inverse=True)
    g = g.ravel()
    ng = int(g.max()) + 1
    sg = np.zeros((ng, p))
    np.add.at(sg, g, score)
    meat = sg.T @ sg
    adj = ng / (ng - 1) * (n - 1) / (n - p) if ng > 1 and n > p else np.nan
    vcov = adj * bread @ meat @ bread
    return HazardGLM(beta, vcov, converged, it, ng, tuple(msgs))
