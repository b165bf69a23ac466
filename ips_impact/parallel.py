"""Run many independent tasks — serially, on local processes or on a dask cluster.

One entry point, :func:`run_tasks`, serves the power studies (:func:`ips_impact.power.power`)
and any other embarrassingly parallel job (the validation runner): a list of tasks, a
picklable top-level function applied to each, the results in task order.

Guarantees
----------
* **Bit-identical results whatever the backend, worker count or chunking.** A task's
  result depends on the task alone: the function gets nothing else, every task runs
  with one BLAS thread (:func:`ips_impact._threads.single_blas_thread`, so no sum is
  split differently on another machine), and randomness comes from the task itself —
  use :func:`task_seed` to key a stream on (grid cell, replicate) rather than on the
  order in which tasks happen to run.
* **Checkpoints.** With ``checkpoint=DIR`` every finished chunk is written to DIR at
  once (atomically: a temporary file renamed); a later call with the same function and
  tasks loads what is there and runs only the rest, so an interrupted study resumes
  where it stopped — with any backend, worker count or chunk size.
* **Progress** on standard error with tqdm (``progress=True``).

Backends
--------
``"serial"``
    In this process, in task order.
``"processes"``
    A pool of ``n_workers`` local processes (``forkserver``: workers are forked from a
    server that imported ``ips_impact`` once, so starting them is cheap and no thread
    of the parent — a dask event loop, a BLAS pool — is copied mid-flight).
``"dask"``
    The current ``dask.distributed`` client (``distributed.get_client()``).
a ``distributed.Client`` or a scheduler address (``"tcp://host:8786"``)
    That cluster; an address is connected to and the connection closed afterwards.
``"auto"`` (default)
    ``"processes"`` on a machine with more than one core and more than one chunk of
    work, else ``"serial"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from ips_impact._threads import single_blas_thread
from ips_impact.errors import EstimationError

__all__ = ["run_tasks", "task_seed", "task_rng", "BACKENDS", "default_workers"]

#: Backend names accepted by :func:`run_tasks` (besides a Client or an address).
BACKENDS: tuple[str, ...] = ("auto", "serial", "processes", "dask")

_MANIFEST = "manifest.json"
#: Default chunks per worker (a dask cluster: per thread).
_CHUNKS_PER_WORKER = 8
_FORMAT = 1


def task_seed(root: int, *key: int) -> np.random.SeedSequence:
    r"""Seed sequence of one task, keyed on its position in the study.

    ``task_seed(root, g, r)`` is ``SeedSequence(root).spawn(g + 1)[g].spawn(r + 1)[r]``
    (the same ``spawn_key``), computed directly: replicate r of grid cell g draws the
    same numbers however the tasks are ordered, chunked or distributed, and streams of
    different keys are independent.

    Parameters
    ----------
    root
        The study's seed (a non-negative integer).
    *key
        Non-negative integers, e.g. (grid cell, replicate).
    """
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or root < 0:
        raise EstimationError(
            f"seed must be a non-negative integer; you passed {root!r}", fix="use e.g. seed=2018."
        )
    for k in key:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise EstimationError(
                f"a task key must be made of non-negative integers; got {key!r}",
                fix="key tasks on (grid cell, replicate) indices.",
            )
    return np.random.SeedSequence(int(root), spawn_key=tuple(int(k) for k in key))


def task_rng(root: int, *key: int) -> np.random.Generator:
    """``numpy.random.Generator(PCG64(task_seed(root, *key)))``."""
    return np.random.Generator(np.random.PCG64(task_seed(root, *key)))


def default_workers() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _run_chunk(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
    """Apply ``fn`` to each task with one BLAS thread (see the module docstring)."""
    with single_blas_thread():
        return [fn(t) for t in tasks]


def _fn_name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _check_fn(fn: Callable[..., Any]) -> None:
    if not callable(fn):
        raise EstimationError(f"fn must be callable; got {type(fn).__name__}",
                              fix="pass a top-level function of one argument (the task).")
    qual = getattr(fn, "__qualname__", "")
    if "<lambda>" in qual or "<locals>" in qual:
        raise EstimationError(
            f"fn {qual!r} cannot be sent to another process (a lambda or a nested function)",
            fix="define the task function at the top level of a module.",
        )


def _chunks(indices: Sequence[int], size: int) -> list[list[int]]:
    """Split indices into runs of consecutive ones, at most ``size`` long (no gap inside)."""
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][-1] == i - 1 and len(out[-1]) < size:
            out[-1].append(i)
        else:
            out.append([i])
    return out


class _Checkpoint:
    """A directory of finished chunks: ``chunk-START-STOP.pkl`` plus a manifest."""

    def __init__(
        self, path: str | os.PathLike[str], fn: Callable[..., Any], tasks: Sequence[Any]
    ) -> None:
        self.dir = Path(path)
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            blob = pickle.dumps(list(tasks), protocol=4)
        except Exception as exc:
            raise EstimationError(
                f"the tasks cannot be pickled ({type(exc).__name__}), "
                "so they cannot be checkpointed",
                fix="make each task plain data (numbers, strings, tuples, dataclasses).",
            ) from None
        manifest = {
            "format": _FORMAT,
            "function": _fn_name(fn),
            "n_tasks": len(tasks),
            "tasks_sha256": hashlib.sha256(blob).hexdigest(),
        }
        target = self.dir / _MANIFEST
        if target.exists():
            old = json.loads(target.read_text(encoding="utf-8"))
            if old != manifest:
                diff = sorted(k for k in manifest if old.get(k) != manifest[k])
                raise EstimationError(
                    f"checkpoint {self.dir} belongs to another study "
                    f"(its {', '.join(diff)} differ)",
                    table="checkpoint",
                    fix="pass a new checkpoint directory, or the same function and tasks "
                    "to resume.",
                )
        else:
            text = json.dumps(manifest, sort_keys=True, indent=2) + "\n"
            self._write_atomic(target, text.encode())

    @staticmethod
    def _write_atomic(target: Path, data: bytes) -> None:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def load(self) -> dict[int, Any]:
        done: dict[int, Any] = {}
        for f in sorted(self.dir.glob("chunk-*.pkl")):
            start, stop = (int(x) for x in f.stem.split("-")[1:3])
            results = pickle.loads(f.read_bytes())
            if len(results) != stop - start:  # pragma: no cover - only a hand-edited file
                raise EstimationError(f"checkpoint file {f.name} is damaged", table="checkpoint",
                                      fix="delete it; its tasks will be run again.")
            for i, r in zip(range(start, stop), results):
                done[i] = r
        return done

    def save(self, indices: list[int], results: list[Any]) -> None:
        name = f"chunk-{indices[0]:09d}-{indices[-1] + 1:09d}.pkl"
        self._write_atomic(self.dir / name, pickle.dumps(results, protocol=4))


def _resolve_backend(backend: Any, n_chunks: int, n_workers: int) -> tuple[str, Any]:
    """Return ("serial" | "processes" | "dask", client or address or None)."""
    if isinstance(backend, str):
        if backend == "auto":
            return ("processes" if n_workers > 1 and n_chunks > 1 else "serial"), None
        if backend in ("serial", "processes"):
            return backend, None
        if backend == "dask":
            try:
                from distributed import get_client
            except ImportError:  # pragma: no cover - dask is a dependency
                raise EstimationError("backend 'dask' needs dask.distributed",
                                      fix="pip install 'dask[distributed]'") from None
            try:
                return "dask", get_client()
            except ValueError:
                raise EstimationError(
                    "backend 'dask' found no running dask client",
                    fix="create distributed.Client(...) first, or pass the client or the "
                    "scheduler address as backend.",
                ) from None
        if "://" in backend or backend.count(":") == 1:
            return "dask", backend
        raise EstimationError(
            f"backend must be one of {', '.join(BACKENDS)}, a distributed.Client or a scheduler "
            f"address; you passed {backend!r}",
            fix="use backend='processes' (local cores) or e.g. backend='tcp://127.0.0.1:8786'.",
        )
    if type(backend).__name__ == "Client" and hasattr(backend, "submit"):
        return "dask", backend
    raise EstimationError(
        f"backend must be a name, a distributed.Client or an address; got {type(backend).__name__}",
        fix=f"use one of {', '.join(BACKENDS)}.",
    )


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Iterable[Any],
    *,
    backend: Any = "auto",
    n_workers: int | None = None,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = False,
    description: str = "tasks",
) -> list[Any]:
    """Apply ``fn`` to every task and return the results in task order.

    Parameters
    ----------
    fn
        A top-level function of one argument (picklable), deterministic given its task.
    tasks
        The tasks (picklable when another process or a checkpoint is involved).
    backend
        ``"auto"``, ``"serial"``, ``"processes"``, ``"dask"``, a ``distributed.Client``
        or a scheduler address; see the module docstring.
    n_workers
        Local processes (default: the cores of this machine). Ignored by dask, whose
        cluster has its own workers.
    chunk_size
        Tasks sent to a worker at once (and written to the checkpoint at once); default:
        about eight chunks per worker (per thread of a dask cluster, all its workers
        counted), at most 250 tasks: enough that a worker slowed down by other work on
        its machine leaves little for the others to wait for at the end. Results do not
        depend on it.
    checkpoint
        Directory where finished chunks are kept; an interrupted call resumes from it.
    progress
        Show a tqdm bar on standard error.
    description
        Label of the progress bar.

    Returns
    -------
    list
        ``[fn(t) for t in tasks]``, bit for bit.
    """
    _check_fn(fn)
    items = list(tasks)
    n = len(items)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int)
                                  or n_workers < 1):
        raise EstimationError(f"n_workers must be a positive integer; you passed {n_workers!r}",
                              fix="use e.g. n_workers=2, or None for every core.")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise EstimationError(f"chunk_size must be a positive integer; you passed {chunk_size!r}",
                              fix="use e.g. chunk_size=50, or None to let it be chosen.")
    workers = n_workers or default_workers()
    ckpt = _Checkpoint(checkpoint, fn, items) if checkpoint is not None else None
    done = ckpt.load() if ckpt is not None else {}
    todo = [i for i in range(n) if i not in done]
    size = chunk_size or max(1, min(250, math.ceil(len(todo) / (_CHUNKS_PER_WORKER * workers)) if todo else 1))
    chunks = _chunks(todo, size)
    kind, target = _resolve_backend(backend, len(chunks), workers)

    from tqdm.auto import tqdm

    bar = tqdm(total=n, initial=len(done), desc=description, unit="task", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def finish(idx: list[int], res: list[Any]) -> None:
        for i, r in zip(idx, res):
            done[i] = r
        if ckpt is not None:
            ckpt.save(idx, res)
        bar.update(len(idx))

    try:
        if not chunks:
            pass
        elif kind == "serial":
            for idx in chunks:
                finish(idx, _run_chunk(fn, [items[i] for i in idx]))
        elif kind == "processes":
            ctx = _process_context()
            with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx) as pool:
                futures = {
                    pool.submit(_run_chunk, fn, [items[i] for i in idx]): idx for idx in chunks
                }
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
        else:
            _run_dask(target, fn, items, todo, chunks if chunk_size is not None else None, finish)
    finally:
        bar.close()
    return [done[i] for i in range(n)]


def _process_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # the server imports the package once; each worker is a cheap fork of it
        ctx.set_forkserver_preload(["ips_impact"])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - Windows


def _run_dask(target: Any, fn: Callable[[Any], Any], items: list[Any], todo: list[int],
              chunks: list[list[int]] | None,
              finish: Callable[[list[int], list[Any]], None]) -> None:
    """Run the chunks on a dask cluster; ``chunks=None``: about eight per thread of the cluster.

    The chunk size is chosen from the cluster's own threads (all workers), not from the
    cores of this machine, so that a large cluster is used whole; it changes no result.
    """
    from distributed import Client
    from distributed import as_completed as dask_as_completed

    own = isinstance(target, str)
    client = Client(target) if own else target
    try:
        if chunks is None:
            threads = max(1, sum(client.nthreads().values()))
            chunks = _chunks(todo, max(1, min(250, math.ceil(len(todo) / (_CHUNKS_PER_WORKER * threads)))))
        futures = [
            client.submit(_run_chunk, fn, [items[i] for i in idx], pure=False) for idx in chunks
        ]
        where = {f.key: idx for f, idx in zip(futures, chunks)}
        for fut in dask_as_completed(futures):
            finish(where[fut.key], fut.result())
    finally:
        if own:
            client.close()
