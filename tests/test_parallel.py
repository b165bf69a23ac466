"""The parallel runner (ips_impact.parallel): same results whatever the backend, resumable."""

from __future__ import annotations

import numpy as np
import pytest

from ips_impact import _threads
from ips_impact.errors import EstimationError
from ips_impact.parallel import _chunks, run_tasks, task_rng, task_seed

_FAIL_AT: int | None = None


def simulate(task: tuple[int, int, int]) -> dict[str, float]:
    """A small Monte-Carlo replicate with BLAS work in it (a least-squares fit)."""
    root, g, r = task
    if _FAIL_AT is not None and g * 100 + r == _FAIL_AT:
        raise RuntimeError("interrupted")
    rng = task_rng(root, g, r)
    n = 200 + 50 * g
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 6))])
    y = X @ np.linspace(0.1, 0.7, 7) + rng.normal(size=n)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    return {"g": g, "r": r, "beta1": float(beta[1]), "ssr": float(((y - X @ beta) ** 2).sum()),
            "threads": _threads.blas_threads()}


def tasks(root: int = 11, cells: int = 3, reps: int = 14) -> list[tuple[int, int, int]]:
    return [(root, g, r) for g in range(cells) for r in range(reps)]


def blob(results: list) -> str:
    # repr of a float round-trips exactly, so equal text means equal bits (a pickle is
    # no test: its memo records which objects happen to be shared)
    return repr(results)


@pytest.fixture(scope="module")
def reference() -> list:
    return run_tasks(simulate, tasks(), backend="serial")


def test_task_seed_is_the_spawned_stream_and_keys_are_independent():
    root = 2018
    assert task_seed(root, 2, 5).spawn_key == np.random.SeedSequence(root).spawn(3)[2].spawn(6)[5].spawn_key
    a = np.random.Generator(np.random.PCG64(np.random.SeedSequence(root).spawn(3)[2].spawn(6)[5]))
    assert np.array_equal(task_rng(root, 2, 5).random(8), a.random(8))
    assert not np.array_equal(task_rng(root, 2, 5).random(8), task_rng(root, 5, 2).random(8))
    with pytest.raises(EstimationError, match="non-negative"):
        task_seed(-1, 0)
    with pytest.raises(EstimationError, match="task key"):
        task_seed(1, 0, -3)


def test_serial_results_are_in_task_order_with_one_blas_thread(reference):
    assert [(d["g"], d["r"]) for d in reference] == [(g, r) for _, g, r in tasks()]
    assert {d["threads"] for d in reference} == {1}
    # the cap is lifted afterwards: the caller's setting is back
    assert _threads.blas_threads() >= 1


@pytest.mark.parametrize("chunk_size", [1, 5, 100])
def test_chunking_does_not_change_results(reference, chunk_size):
    assert blob(run_tasks(simulate, tasks(), backend="serial", chunk_size=chunk_size)) == blob(reference)


def test_two_processes_are_bit_identical_to_serial(reference):
    got = run_tasks(simulate, tasks(), backend="processes", n_workers=2, chunk_size=4, progress=True)
    assert blob(got) == blob(reference)


def test_local_cluster_is_bit_identical_to_serial(reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        got = run_tasks(simulate, tasks(), backend=client, chunk_size=3)
        by_address = run_tasks(simulate, tasks(), backend=cluster.scheduler_address, chunk_size=7)
        current = run_tasks(simulate, tasks(), backend="dask")
    assert blob(got) == blob(reference)
    assert blob(by_address) == blob(reference)
    assert blob(current) == blob(reference)


def test_an_interrupted_study_resumes_from_its_checkpoint(reference, tmp_path):
    ckpt = tmp_path / "ckpt"
    globals()["_FAIL_AT"] = 103  # task (g=1, r=3): the 18th of 42
    try:
        with pytest.raises(RuntimeError, match="interrupted"):
            run_tasks(simulate, tasks(), backend="serial", chunk_size=5, checkpoint=ckpt)
    finally:
        globals()["_FAIL_AT"] = None
    saved = sorted(p.name for p in ckpt.glob("chunk-*.pkl"))
    assert saved == ["chunk-000000000-000000005.pkl", "chunk-000000005-000000010.pkl",
                     "chunk-000000010-000000015.pkl"]
    # resume with another backend and chunk size: only the rest is run, same results
    resumed = run_tasks(simulate, tasks(), backend="processes", n_workers=2, chunk_size=8, checkpoint=ckpt)
    assert blob(resumed) == blob(reference)
    # a third call finds everything done and computes nothing
    globals()["_FAIL_AT"] = 0
    try:
        again = run_tasks(simulate, tasks(), backend="serial", checkpoint=ckpt)
    finally:
        globals()["_FAIL_AT"] = None
    assert blob(again) == blob(reference)


def test_a_checkpoint_of_another_study_is_refused(tmp_path):
    run_tasks(simulate, tasks(reps=2), backend="serial", checkpoint=tmp_path)
    with pytest.raises(EstimationError, match="another study.*tasks_sha256"):
        run_tasks(simulate, tasks(root=12, reps=2), backend="serial", checkpoint=tmp_path)


def test_bad_arguments_are_refused_with_the_fix():
    with pytest.raises(EstimationError, match="lambda"):
        run_tasks(lambda t: t, [1, 2])
    with pytest.raises(EstimationError, match="backend must be one of"):
        run_tasks(simulate, tasks(reps=1), backend="threads")
    with pytest.raises(EstimationError, match="n_workers"):
        run_tasks(simulate, tasks(reps=1), n_workers=0)
    with pytest.raises(EstimationError, match="chunk_size"):
        run_tasks(simulate, tasks(reps=1), chunk_size=0)
    assert run_tasks(simulate, []) == []


def test_chunks_never_span_a_gap():
    assert _chunks([0, 1, 2, 5, 6, 9], 2) == [[0, 1], [2], [5, 6], [9]]


def test_single_blas_thread_is_reentrant_and_restores():
    before = _threads.blas_threads()
    with _threads.single_blas_thread():
        with _threads.single_blas_thread():
            assert _threads.blas_threads() == 1
        assert _threads.blas_threads() == 1
    assert _threads.blas_threads() == before


def test_the_cap_holds_in_every_python_thread():
    # threadpoolctl 3.8 lets only its "controlling thread" (the first to set a limit)
    # change OpenBLAS and silently ignores the others; the cap must still hold in a
    # worker thread (a dask task, a ThreadPoolExecutor) after the main thread used it
    import threading

    libs = _threads._libs()
    before = [int(lib.num_threads) for lib in libs]
    try:
        for lib in libs:  # as in a process started with the default threads
            _threads._set_threads(lib, 2)
        assert _threads.blas_threads() == 2
        with _threads.single_blas_thread():  # the main thread takes control first
            assert _threads.blas_threads() == 1
        seen: list[int] = []

        def task() -> None:
            with _threads.single_blas_thread():
                seen.append(_threads.blas_threads())
            seen.append(_threads.blas_threads())

        for _ in range(2):
            t = threading.Thread(target=task)
            t.start()
            t.join()
        assert seen == [1, 2, 1, 2]
        with _threads.single_blas_thread():  # and back in the main thread
            assert _threads.blas_threads() == 1
        assert _threads.blas_threads() == 2
    finally:
        for lib, n in zip(libs, before):
            _threads._set_threads(lib, n)


def test_hot_path_caps_every_size_unless_asked_and_never_looks_at_the_load(monkeypatch):
    """One BLAS thread by default at any size; large problems keep threads only when allowed."""
    import contextlib
    import os

    capped = []
    real_cap = _threads.single_blas_thread

    @contextlib.contextmanager
    def recording_cap():
        capped.append(True)
        with real_cap():
            yield

    monkeypatch.setattr(_threads, "single_blas_thread", recording_cap)
    seen = []

    @_threads.hot_path(lambda n: n)
    def work(n):
        seen.append(bool(capped) and capped.pop())

    for load in (0.0, 64.0):  # the machine's load changes nothing
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        work(10)
        work(_threads.LARGE_PROBLEM)
        _threads.allow_threads_on_large_problems(True)
        try:
            work(10)
            work(_threads.LARGE_PROBLEM)
        finally:
            _threads.allow_threads_on_large_problems(False)
    assert seen == [True, True, True, False] * 2


def test_the_hot_entry_points_choose_their_threads():
    from ips_impact.estimators.dynamic import itt_by_period
    from ips_impact.estimators.itt import itt
    from ips_impact.inference.covariance import OLSDesign
    from ips_impact.inference.randomization import (
        linear_statistics,
        randomization_ci,
        randomization_inference,
        randomization_pretest,
    )

    for fn in (OLSDesign.__init__, OLSDesign.fit, itt, itt_by_period, linear_statistics,
               randomization_inference, randomization_ci, randomization_pretest):
        assert getattr(fn, "__wrapped__", None) is not None, fn.__qualname__


def test_dask_chunks_follow_the_clusters_threads(reference, monkeypatch):
    # about eight chunks per thread of the cluster (all workers), not per local core
    distributed = pytest.importorskip("distributed")
    import ips_impact.parallel as parallel

    sizes: list[int] = []
    real = parallel._chunks

    def spy(indices, size):
        sizes.append(size)
        return real(indices, size)

    monkeypatch.setattr(parallel, "_chunks", spy)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        got = run_tasks(simulate, tasks(), backend=client, n_workers=1)
    assert blob(got) == blob(reference)
    assert sizes[-1] == 3  # 42 tasks / (8 chunks × 2 threads), rounded up; 1 local worker would give 6
