"""Benchmark: default BLAS threads vs one thread (issue 15).

Run: ``nice python benchmarks/bench_threads.py [--rounds N]``

Each case is timed in fresh child processes of two kinds: *default* (``OPENBLAS_NUM_THREADS``
removed from the environment, so OpenBLAS starts one thread per core) and *one thread*
(``OPENBLAS_NUM_THREADS=1``, the baseline a user would otherwise have to know about). The
library chooses its own threading on its hot paths (``ips_impact._threads``), so the ratio
default / one thread must be at most 1.0 for

1. ``itt`` (1,200 persons, 8 covariates, ANCOVA, HC2);
2. stacked ``itt`` over k = 1..12 (14,400 rows, 38 coefficients, CR2 by person,
   Satterthwaite df of the arm);
3. ``itt_by_period`` over 36 event times;
4. the randomization engine: ``randomization_inference`` of an ``itt_by_period`` result
   (20 event times) with 2,000 draws.

Against noise (2 cores shared with other jobs) the two kinds run **interleaved, call by
call**: three children are started (default, one thread, and a second one-thread child),
each builds the study and warms every case up, then the parent asks them in turn to time
one call, in ABBA order (default first in even repetitions, one thread first in odd ones),
so the calls compared ran within a fraction of a second of each other, under nearly the
same load. The figure of a case is the **median over at least 5 repetitions (9–31) of the
paired ratio** default / one thread. The second one-thread child gives the A/A ratio (one
thread / one thread): how far the same code drifts by noise alone; a ratio inside that
band is not a measured cost. CPU time (user + sys, all threads of the child) is printed
beside wall time: OpenBLAS threads that spin show there first. In the default child each
case is also timed against the same call under an outer one-thread limit (both variants
in one process): a hot path that left a BLAS call uncapped would make that ratio exceed 1.
``--rounds N`` repeats everything with fresh children and pools the pairs.

Also printed: the cost of entering and leaving the one-thread cap (the threadpoolctl
controller is scanned once per process, then cached), and the stacked CR2 fit with the
Satterthwaite df of the arm only (what is reported) against the df of all 38 coefficients
(before issue 15).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402

CASES = ("itt", "stacked CR2", "itt_by_period", "RI engine")
#: Interleaved calls per case (per ``--rounds``), at least 5 each
REPEATS = {"itt": 31, "stacked CR2": 11, "itt_by_period": 11, "RI engine": 9}
COVS = ("age", "female", "education", "diagnosis", "di_phase", "di_months", "household_type",
        "pre_employment_share")


def _q(xs: list[float], q: float) -> float:
    return float(statistics.quantiles(xs, n=4)[0 if q < 0.5 else 2])


def _timed(fn) -> tuple[float, float]:
    c, t = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def _best(fn, repeat: int) -> tuple[float, float]:
    """Fastest wall and CPU seconds of ``repeat`` calls after one warm-up call.

    The fastest call is the one the other jobs of the machine disturbed least.
    """
    fn()
    runs = [_timed(fn) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _interleaved(fn, repeat: int) -> float:
    """Median over call pairs of (library's own threading) / (whole call under one thread).

    Both calls of a pair run back to back in this process, so they see the same load;
    a hot path that left a BLAS call uncapped would run it with the default threads in
    the first call and with one thread in the second.
    """
    from threadpoolctl import threadpool_limits

    def capped() -> None:
        with threadpool_limits(limits=1, user_api="blas"):
            fn()

    fn()
    capped()
    ratios = []
    for i in range(repeat):
        if i % 2 == 0:
            a, b = _timed(fn)[0], _timed(capped)[0]
        else:
            b, a = _timed(capped)[0], _timed(fn)[0]
        ratios.append(a / b)
    return statistics.median(ratios)


def _cases(study):
    import ips_impact as ii

    dyn = ii.itt_by_period(study, "work_on_di", periods=range(1, 21))
    return {
        "itt": lambda: ii.itt(study, "work_on_di", horizon=6, covariates=COVS),
        "stacked CR2": lambda: ii.itt(study, "work_on_di", window=(1, 12), aggregate="stack",
                                      covariates=COVS),
        "itt_by_period": lambda: ii.itt_by_period(study, "work_on_di", periods=range(-15, 21),
                                                  covariates=COVS),
        "RI engine": lambda: ii.randomization_inference(study, dyn, n_permutations=2000, seed=0),
    }


def child(extras: bool) -> None:
    """Serve timing requests: read a case name per line, run it once, print wall and CPU."""
    import warnings

    import ips_impact as ii
    from ips_impact import _threads

    warnings.simplefilter("ignore")
    study = ii.synthetic.generate(n_persons=1200, seed=0, tables=("assignment", "panel")).study()
    cases = _cases(study)
    for fn in cases.values():  # warm-up
        fn()
    hello: dict[str, object] = {"_threads": _threads.blas_threads()}
    if extras:
        hello.update(_extras(study))
        if _threads.blas_threads() > 1:
            hello.update({f"{name} interleaved": _interleaved(fn, 2 * REPEATS[name] + 1)
                          for name, fn in cases.items()})
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            break
        print(json.dumps(_timed(cases[name])), flush=True)


def _extras(study) -> dict[str, float]:
    """Cap overhead and the stacked CR2 fit with the df of the arm vs of every coefficient."""
    from ips_impact._threads import single_blas_thread
    from ips_impact.estimators._options import resolve_adjustment
    from ips_impact.estimators.itt import _prepare, _spec
    from ips_impact.inference.covariance import OLSDesign

    n = 2000
    with single_blas_thread():
        pass
    t = time.perf_counter()
    for _ in range(n):
        with single_blas_thread():
            pass
    cap = (time.perf_counter() - t) / n
    spec = _spec(horizon=None, window=(1, 12), aggregate="stack", covariates=COVS, adjustment=None,
                 strata=True, cov_type=None, cluster=None, level=0.95, subset=None)
    spec["adjustment"], spec["adjustment_reason"] = resolve_adjustment(None, study.design, strata=True)
    prep = _prepare(study, "work_on_di", spec)
    X, y, j = prep.design.X, prep.Y[:, 0], prep.design.arm_index

    def fit(df_for):  # a fresh design each time: the df are cached on the design
        return lambda: OLSDesign(X, cov_type="CR2", clusters=prep.clusters).fit(y, df_for=df_for)

    arm_only, _ = _best(fit((j,)), 7)
    every, _ = _best(fit(None), 7)
    return {"cap_s": cap, "cr2_arm_df_s": arm_only, "cr2_all_df_s": every, "cr2_p": float(X.shape[1])}


class _Child:
    """A child process of one kind that times one call per request."""

    def __init__(self, mode: str, extras: bool) -> None:
        env = dict(os.environ)
        env.pop("OPENBLAS_NUM_THREADS", None)
        if mode != "default":
            env["OPENBLAS_NUM_THREADS"] = "1"
        cmd = [sys.executable, __file__, "--child"] + (["--extras"] if extras else [])
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.mode = mode

    def hello(self) -> dict:
        return json.loads(self._read())

    def time(self, name: str) -> tuple[float, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        wall, cpu = json.loads(self._read())
        return wall, cpu

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.mode} child died (exit code {self.proc.wait()})")
        return line

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole comparison (fresh children)")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--extras", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(args.extras)
        return
    med = statistics.median
    load0 = os.getloadavg()
    pairs: dict[str, list[tuple[tuple[float, float], ...]]] = {name: [] for name in CASES}
    info: dict[str, dict] = {}
    for _ in range(max(1, args.rounds)):
        # started one after the other: the children's setup does not overlap the timings
        kids = {}
        for mode in ("default", "single", "single2"):
            kids[mode] = _Child(mode, extras=(mode != "single" and not info.get(mode)))
            got = kids[mode].hello()
            info.setdefault(mode, got)
        for name in CASES:
            for i in range(REPEATS[name]):
                # ABBA: default first in even repetitions, one thread first in odd ones
                order = ("default", "single", "single2") if i % 2 == 0 else ("single", "default", "single2")
                t = {mode: kids[mode].time(name) for mode in order}
                pairs[name].append((t["default"], t["single"], t["single2"]))
        for kid in kids.values():
            kid.close()
    load1 = os.getloadavg()
    print(f"load average (1, 5, 15 min) {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} before, "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} after, on {os.cpu_count()} cores")
    print(f"BLAS threads outside the hot paths: default {info['default']['_threads']}, "
          f"one thread {info['single']['_threads']}")
    for name in CASES:
        p = pairs[name]
        wall = [d[0] / s[0] for d, s, _ in p]
        cpu = [d[1] / s[1] for d, s, _ in p]
        aa = [s2[0] / s[0] for _, s, s2 in p]
        print(f"{name}: default {med(d[0] for d, _, _ in p) * 1e3:.1f} ms wall / "
              f"{med(d[1] for d, _, _ in p) * 1e3:.1f} ms CPU, one thread {med(s[0] for _, s, _ in p) * 1e3:.1f} "
              f"ms wall / {med(s[1] for _, s, _ in p) * 1e3:.1f} ms CPU (medians of {len(p)} interleaved calls); "
              f"CPU ratio {med(cpu):.2f}; A/A noise (one thread / one thread) median {med(aa):.2f}, "
              f"quartiles {_q(aa, 0.25):.2f}–{_q(aa, 0.75):.2f}")
        key = f"{name} interleaved"
        if key in info["default"]:
            print(f"{name}: in the default child, own threading / whole call under an outer one-thread "
                  f"limit: {info['default'][key]:.2f} (median of call pairs)")
        figure(f"{name}: ratio default / one thread (median of {len(p)})", med(wall), "x", at_most=1.0)
    ex = info["single2"]  # the extras measured in a one-thread child
    figure("entering + leaving the one-thread cap", ex["cap_s"] * 1e6, "µs")
    figure(f"stacked CR2 fit, df of the arm only ({int(ex['cr2_p'])} coefficients)", ex["cr2_arm_df_s"], "s")
    figure("stacked CR2 fit, df of every coefficient (as itt did before)", ex["cr2_all_df_s"], "s")
    figure("stacked CR2 fit: arm-only df / every df", ex["cr2_arm_df_s"] / ex["cr2_all_df_s"], "x", at_most=1.0)
    summary()


if __name__ == "__main__":
    main()
