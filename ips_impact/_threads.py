"""BLAS threading chosen by the library, not by an environment variable.

OpenBLAS starts as many threads as there are cores. On the small and medium matrices
of a trial (1,200 persons, a few dozen regressors) waking and synchronising those
threads costs more than the arithmetic: measured on 2 cores, ``itt`` took 13.8 ms with
the default threads and 4.7 ms with one, the stacked CR2 fit 876 vs 137 ms. So the hot
entry points (the fits of :mod:`ips_impact.inference.covariance`, the randomization
engine, ``itt_by_period``) run with **one BLAS thread** when the problem is small and
keep the user's setting when it is large enough for threads to pay.

* :func:`single_blas_thread` — a context manager that caps BLAS at one thread. It is
  re-entrant and safe across Python threads (a reference count: the first to enter
  sets the cap, the last to leave restores the setting), so nested hot paths and the
  threads of a dask worker do not undo one another's cap. It holds in any Python
  thread: threadpoolctl (3.8) lets only the first thread that set a limit change
  OpenBLAS and ignores the others, so the cap takes that control for itself.
* :func:`hot_path` — a decorator: ``@hot_path(size)`` with ``size(*args, **kwargs)``
  the number of matrix elements the call works on; below :data:`LARGE_PROBLEM` the
  call runs under :func:`single_blas_thread`, above it under the caller's setting.

By default every hot path runs on **one BLAS thread, whatever its size**; calls of at
least :data:`LARGE_PROBLEM` elements keep the caller's threads only after
:func:`allow_threads_on_large_problems` (an explicit choice, never the machine's load).
Why not threads by default on large problems: measured on 2 cores, ``itt_by_period`` at
250,000 persons took 1.06 s on one thread and 8.9–16.6 s with two while another job
used the cores (load 3), and on an idle machine 0.43 s with one and 0.45 s with two
(43% more CPU): OpenBLAS threads that wait for a busy core cost far more than
they save, and researchers' machines are shared. And threads change the last bits
(OpenBLAS splits a threaded QR and the long products differently, ~1e-15 relative on
the joint covariance of ``itt_by_period`` at 250,000 persons), so results would depend
on the number of cores; an earlier rule that switched threads on while the load average
was low made them depend on what else the machine was doing. One thread gives the same
bits on every run and every machine with the same BLAS. The cores are used by
processes instead: the parallel runner of :mod:`ips_impact.parallel` (power studies,
the validation report).

Measured by ``benchmarks/bench_threads.py`` (20 rounds of fresh default, one-thread and
A/A children, calls interleaved in random order, 2 cores, idle): default / one thread
1.01 [0.99, 1.04] (itt), 1.00 [0.98, 1.04] (stacked CR2), 0.98 [0.95, 1.01]
(itt_by_period), 1.00 [0.97, 1.04] (randomization engine), 95% intervals that all reach
1.0; with the cap turned off in the default child (``--positive-control``) itt is 1.43
[1.16, 2.12], the stacked CR2 fit 1.55 [1.05, 2.18]. Both kinds execute the same
instructions within 0.2% (callgrind). Entering and leaving the cap costs 10–12 µs.

The cap only ever lowers the thread count, so a caller that asked for one thread
(a parallel worker of :mod:`ips_impact.parallel`) is never overridden by a hot path.
One BLAS thread also makes results independent of the number of cores: the parallel
runner uses it in every task, which is part of what makes its results bit-identical
whatever the backend.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "LARGE_PROBLEM", "single_blas_thread", "hot_path", "blas_threads", "allow_threads_on_large_problems",
    "design_size", "fitted_size", "study_size",
]

#: Matrix elements (rows × columns of the design) from which BLAS threads may pay on an
#: idle machine: 250,000 persons × 20 regressors. Smaller calls always run single-threaded;
#: larger ones too unless :func:`allow_threads_on_large_problems` was called.
LARGE_PROBLEM = 5_000_000

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Any, int]] = []
_controller: Any = None


def _libs() -> list[Any]:
    """BLAS controllers of the loaded libraries (scanned once: the scan takes ~4 ms)."""
    global _controller
    if _controller is None:
        # numpy and scipy each ship an OpenBLAS; load both before the scan
        import scipy.linalg  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return [lib for lib in _controller.lib_controllers if lib.user_api == "blas"]


def _set_threads(lib: Any, n: int) -> None:
    """Set one BLAS library's thread count from whichever Python thread we are in.

    threadpoolctl 3.8 lets only a "controlling thread" (the first one to set a limit,
    while it lives) change the process-wide OpenBLAS pool and silently ignores the
    others: a cap entered in a dask worker's task thread, or any thread but the one
    that first set a limit, did nothing, and that thread's fits ran on every core. The
    cap here is already shared across Python threads (the reference count below), so
    this thread takes control for the call. Older threadpoolctl has no such rule.
    """
    clear = getattr(type(lib), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(n)


def blas_threads() -> int:
    """Return the largest BLAS thread count in force (1 inside :func:`single_blas_thread`)."""
    return max((int(lib.num_threads) for lib in _libs()), default=1)


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread; restore the previous setting on leaving."""
    global _depth
    with _lock:
        if _depth == 0:
            libs = _libs()
            _saved[:] = [(lib, int(lib.num_threads)) for lib in libs]
            for lib in libs:
                _set_threads(lib, 1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, n in _saved:
                    _set_threads(lib, n)
                _saved.clear()


_large_threads = False


def allow_threads_on_large_problems(enabled: bool = True) -> None:
    """Let hot paths of at least :data:`LARGE_PROBLEM` elements keep the caller's BLAS threads.

    Off by default (one BLAS thread everywhere: the same bits on every run and machine,
    and no threads waiting for busy cores). Turn it on for a large extract on a machine
    of your own; results may then differ in the last bits from one-thread runs.
    """
    global _large_threads
    _large_threads = bool(enabled)


def hot_path(size: Callable[..., float]) -> Callable[[F], F]:
    """Decorate a hot entry point so that it picks its BLAS threading by problem size.

    Parameters
    ----------
    size
        Called with the decorated function's arguments; returns the number of matrix
        elements the call works on (e.g. rows × columns of the design). A size that
        cannot be computed counts as small.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                work = float(size(*args, **kwargs))
            except Exception:  # a bad argument is the function's to report, not ours
                work = 0.0
            if work >= LARGE_PROBLEM and _large_threads:  # an explicit choice, never the load
                return fn(*args, **kwargs)
            with single_blas_thread():
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


# sizes of the hot entry points (rows × columns of the matrices they work on)
def design_size(self: Any, X: Any, *args: Any, **kwargs: Any) -> float:
    """Size of ``OLSDesign(X, ...)``: rows × columns of X."""
    shape = getattr(X, "shape", None) or (len(X), len(X[0]))
    return float(shape[0]) * float(shape[1] if len(shape) > 1 else 1)


def fitted_size(self: Any, *args: Any, **kwargs: Any) -> float:
    """Size of ``OLSDesign.fit``: the design's rows × columns."""
    return float(self.n) * float(self.p)


def study_size(study: Any, *args: Any, **kwargs: Any) -> float:
    """Size of an estimator or randomization call on a study: persons × 20 regressors."""
    # Study.n_persons, not len(Study.persons): the latter copies the persons table
    # (25 ms at 250,000 persons) on every call
    n = getattr(study, "n_persons", None)
    return 20.0 * float(n if isinstance(n, (int, np.integer)) else len(study.persons))
