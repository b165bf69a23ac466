r"""The protocol by which an estimator hands its randomization problem to inference.

Randomization inference re-draws the assignment :math:`z_b` as the design did and
recomputes a statistic :math:`T(z_b)` per tidy row of a result. ``inference/`` never
imports an estimator: each estimator module *registers*, next to its own code, a
builder

.. code-block:: python

    register_randomization("itt", builder)      # at import time of estimators/itt.py

    def builder(study, result) -> RandomizationProblem: ...

which turns a fitted result back into arrays (:class:`RandomizationProblem`). The
public functions of :mod:`ips_impact.inference.randomization` look the builder up by
``result.spec["estimator"]`` (every estimator writes that key) — one registry, one
lookup. An estimator without a builder gets :class:`RandomizationNotAvailableError`.

A problem is either

* **linear**: one or more :class:`~ips_impact.inference.ri_engine.LinearProblem`
  whose coefficients, concatenated, are the tidy rows (the engine computes every draw
  of every result with one matrix product); optionally ``finalize`` maps those raw
  statistics to the tidy rows (e.g. a Wald form of several coefficients, or the
  reduced form of a LATE), or
* **general**: ``statistic(draws) -> (B, m)`` computes the m tidy-row statistics for
  a block of assignments (B, n_persons) directly (survival statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ips_impact.errors import EstimationError
from ips_impact.inference.ri_engine import LinearProblem

__all__ = [
    "RandomizationProblem",
    "RandomizationNotAvailableError",
    "register_randomization",
    "randomization_problem_of",
    "estimator_of",
    "registered_estimators",
    "Interval",
]

#: How a randomization confidence interval is obtained for a problem's rows:
#: ``"constant_effect"`` — invert the test of :math:`Y_i(1) = Y_i(0) + \tau` (the
#: statistic is shifted one-for-one by τ; checked numerically per row);
#: ``"anderson_rubin"`` — the first linear problem has two outcomes (y, d) and the row
#: is the ratio of their coefficients (a LATE): invert the test of
#: :math:`Y_i(d) = Y_i(0) + \tau d` on the reduced form of :math:`y - \tau d`;
#: ``"none"`` — no interval (NaN).
Interval = Literal["constant_effect", "anderson_rubin", "none"]


class RandomizationNotAvailableError(EstimationError):
    """Randomization inference is not (yet) implemented for this kind of result."""


@dataclass(frozen=True, eq=False)
class RandomizationProblem:
    """What randomization inference needs from one fitted result.

    Parameters
    ----------
    linear
        Linear problems (arrays only). Their statistics, concatenated in order, are
        the tidy rows — or the input of ``finalize``.
    statistic
        Instead of ``linear``: a function ``draws (B, n_persons) int8 -> (B, m)``
        returning the m tidy-row statistics under each assignment (NaN: not available
        for that row). It is also called on the observed assignment.
    finalize
        ``(observed (m0,), draws (B, m0)) -> (observed (m,), draws (B, m))`` applied to
        the raw linear statistics before p-values (Wald form of a joint test, choice of
        the reduced-form column…). Not applied when inverting tests for intervals.
    reproduces
        True when the observed statistics are the tidy ``estimate`` column (checked to
        1e-7: an estimator and its problem that disagree is a bug). False for
        statistics that are not the estimate (log-rank chi-square, a LATE's reduced
        form): then ``finalize`` or the builder does its own check.
    interval
        How :func:`~ips_impact.inference.randomization.randomization_ci` inverts the
        test (see :data:`Interval`).
    """

    linear: tuple[LinearProblem, ...] = ()
    statistic: Callable[[np.ndarray], np.ndarray] | None = None
    finalize: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    reproduces: bool = True
    interval: Interval = "constant_effect"

    def __post_init__(self) -> None:
        lin = (self.linear,) if isinstance(self.linear, LinearProblem) else tuple(self.linear)
        if any(not isinstance(p, LinearProblem) for p in lin):
            raise EstimationError("RandomizationProblem.linear takes LinearProblem objects",
                                  fix="build each statistic as a LinearProblem, or pass statistic=")
        if bool(lin) == (self.statistic is not None):
            raise EstimationError("a RandomizationProblem is either linear or a statistic function",
                                  fix="pass exactly one of linear= and statistic=")
        if self.interval not in ("constant_effect", "anderson_rubin", "none"):
            raise EstimationError(f"unknown interval kind {self.interval!r}",
                                  fix="use 'constant_effect', 'anderson_rubin' or 'none'")
        if self.interval == "anderson_rubin" and (not lin or lin[0].n_outcomes != 2):
            raise EstimationError(
                "an Anderson-Rubin interval needs one linear problem with outcomes (y, d)")
        object.__setattr__(self, "linear", lin)

    @property
    def is_linear(self) -> bool:
        """Whether the statistics are coefficients of linear problems."""
        return bool(self.linear)


Builder = Callable[[Any, Any], "RandomizationProblem | LinearProblem | Sequence[LinearProblem]"]

_REGISTRY: dict[str, Builder] = {}


def register_randomization(estimator: str, builder: Builder | None = None) -> Any:
    """Register the randomization-problem builder of ``estimator`` (``spec["estimator"]``).

    Usable as a call, ``register_randomization("did", _problem)``, or as a decorator,
    ``@register_randomization("did")``. Registering a name twice replaces the builder
    (a module reloaded in a session).
    """
    if not isinstance(estimator, str) or not estimator:
        raise EstimationError(f"estimator must be a non-empty string; you passed {estimator!r}")

    def deco(fn: Builder) -> Builder:
        _REGISTRY[estimator] = fn
        return fn

    return deco if builder is None else deco(builder)


def registered_estimators() -> tuple[str, ...]:
    """Estimators whose results randomization inference accepts, sorted."""
    return tuple(sorted(_REGISTRY))


def estimator_of(result: Any) -> str:
    """``result.spec["estimator"]``, refusing results that carry none."""
    spec = getattr(result, "spec", None) or {}
    est = spec.get("estimator") if hasattr(spec, "get") else None
    if not isinstance(est, str):
        raise RandomizationNotAvailableError(
            f"a {type(result).__name__} without spec['estimator'] cannot be re-randomized",
            fix="pass results returned by the estimators of ips_impact",
        )
    return est


def randomization_problem_of(study: Any, result: Any) -> RandomizationProblem:
    """Build the randomization problem of ``result`` with its estimator's builder."""
    est = estimator_of(result)
    builder = _REGISTRY.get(est)
    if builder is None:
        raise RandomizationNotAvailableError(
            f"RI for {est} not available yet",
            fix="use the model-based p-value of this result; randomization inference "
            f"supports results of: {', '.join(registered_estimators())}",
        )
    prob = builder(study, result)
    if not isinstance(prob, RandomizationProblem):
        lin = (prob,) if isinstance(prob, LinearProblem) else tuple(prob)
        prob = RandomizationProblem(linear=lin)
    if prob.is_linear and prob.finalize is None:
        n_stat = sum(p.n_statistics for p in prob.linear)
        if n_stat != result.n_rows:
            raise EstimationError(
                f"the randomization problem of {est} has {n_stat} statistic(s) for "
                f"{result.n_rows} tidy row(s)",
                fix="report this as a bug of the estimator's randomization builder",
            )
    return prob
