"""Benchmark: default BLAS threads vs one thread (issue 15).

Run: ``nice python benchmarks/bench_threads.py [--rounds N]`` (default 5 rounds, ~4 min)

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

How the ratio is measured, against the noise of a shared 2-core virtual machine:

* **Interleaved calls.** A round starts three children (default, one thread, and a second
  one-thread child for an A/A comparison); each builds the study and warms every case up,
  then the parent asks them in turn to time one call. The order of the three in each
  repetition is a seeded random permutation, so no kind keeps a position (a fixed order
  showed the third child 1–3% faster than the first).
* **Randomised layout.** Two processes that run the same instructions can differ by a few
  per cent for where their stack and heap happen to fall (Mytkowicz et al., "Producing
  wrong data without doing anything obviously wrong!", ASPLOS 2009; the size of the
  environment alone moves the stack). Each child therefore gets an environment padding
  of seeded random length, and every round starts fresh children: the layout varies
  between rounds instead of biasing all of them the same way.
* **The figure and its interval.** The figure of a case is the median of the paired
  ratios default / one thread over all rounds; its 95% interval comes from a two-stage
  bootstrap (rounds, then calls within a round: a child's layout is shared by its calls).
  The A/A ratio (one thread / one thread) is printed with its interval the same way: it
  equals 1 by construction, so its interval shows the size of the noise.
* **The verdict** (``_report.figure_ci``). Both kinds run their hot paths on one BLAS
  thread, so the true ratio is 1 on small problems and a point estimate against 1.0 is a
  coin flip. The verdict is a test: PASS when the interval reaches 1.0 (no evidence that
  the default is slower) and is at most ±5% wide (narrow enough to have found a cost of
  5%; the issue measured 3–9×); FAIL when the whole interval lies above 1.0;
  INCONCLUSIVE when it is wider (run more rounds). At least 3 rounds are needed.

CPU time (user + sys, all threads of the child) is printed beside wall time: OpenBLAS
threads that spin show there first. In the default child each case is also timed
against the same call under an outer one-thread limit held across the whole call (both
in one process): a hot path that left a BLAS call uncapped would make that ratio exceed
1. ``benchmarks/bench_threads_instructions.py`` counts the instructions of the same calls
with callgrind, which no load disturbs.

Also printed: the cost of entering and leaving the one-thread cap (the threadpoolctl
controller is scanned once per process, then cached), and the stacked CR2 fit with the
Satterthwaite df of the arm only (what is reported) against the df of all 38 coefficients
(before issue 15).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, figure_ci, summary  # noqa: E402

CASES = ("itt", "stacked CR2", "itt_by_period", "RI engine")
#: Interleaved calls per case (per ``--rounds``), at least 5 each
REPEATS = {"itt": 11, "stacked CR2": 5, "itt_by_period": 5, "RI engine": 5}
KINDS = ("default", "single", "single2")
#: Half-width of the 95% interval under which a verdict is given (a cost of 5% is found)
RESOLUTION = 0.05
#: Most characters of environment padding a child gets (seeded random length)
PAD = 4096
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
    the first call and with one thread in the second. The outer limit uses a controller
    scanned once (``threadpool_limits`` would rescan the libraries, ~4 ms, every time).
    """
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()

    def capped() -> None:
        with controller.limit(limits=1, user_api="blas"):
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


def _bootstrap_median(rounds: list[list[float]], n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the pooled median by a two-stage bootstrap.

    Rounds are drawn with replacement, then the calls of each drawn round: the calls of
    one round share their children's memory layout, so they are not independent draws.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    arrs = [np.asarray(r, dtype=float) for r in rounds]
    meds = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, len(arrs), len(arrs))
        meds[b] = np.median(np.concatenate([arrs[i][rng.integers(0, arrs[i].size, arrs[i].size)]
                                            for i in picked]))
    lo, hi = np.quantile(meds, [0.025, 0.975])
    return float(lo), float(hi)


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


def child(extras: bool, pin: int | None, uncapped: bool) -> None:
    """Serve timing requests: read a case name per line, run it once, print wall and CPU."""
    import warnings

    import ips_impact as ii
    from ips_impact import _threads

    warnings.simplefilter("ignore")
    _threads.blas_threads()  # OpenBLAS has started its threads (one per core in the default kind)
    if uncapped:  # the positive control: every hot path keeps the process's threads
        _threads.LARGE_PROBLEM = 0
        _threads.allow_threads_on_large_problems(True)
    if pin is not None:
        # this (main) thread only: the BLAS threads already started keep every core
        os.sched_setaffinity(0, {pin})
    study = ii.synthetic.generate(n_persons=1200, seed=0, tables=("assignment", "panel")).study()
    cases = _cases(study)
    for fn in cases.values():  # warm-up
        fn()
    hello: dict[str, object] = {"_threads": _threads.blas_threads()}
    if extras:
        hello.update(_extras(study))
        if _threads.blas_threads() > 1:
            hello.update({f"{name} interleaved": _interleaved(fn, 4 * REPEATS[name] + 1)
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

    def __init__(self, mode: str, extras: bool, pad: int, pin: int | None, steady_malloc: bool,
                 uncapped: bool = False) -> None:
        env = dict(os.environ)
        env.pop("OPENBLAS_NUM_THREADS", None)
        if mode != "default":
            env["OPENBLAS_NUM_THREADS"] = "1"
        # a seeded random amount of environment moves the child's stack (layout noise
        # becomes variance between rounds instead of a bias of one kind of child)
        env["IPS_BENCH_LAYOUT_PAD"] = "x" * pad
        if steady_malloc:  # the same in every kind: no fresh pages for each large array
            env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 30)
            env["MALLOC_TRIM_THRESHOLD_"] = str(1 << 32)
        cmd = ([sys.executable, __file__, "--child"] + (["--extras"] if extras else [])
               + ([] if pin is None else ["--pin", str(pin)]) + (["--uncapped"] if uncapped else []))
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
    ap.add_argument("--rounds", type=int, default=20,
                    help="rounds of fresh children (at least 3 for a verdict; default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the orders and layout paddings")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--extras", action="store_true")
    ap.add_argument("--pin", type=int, default=None,
                    help="run each child's main thread on this CPU (its BLAS threads keep every core)")
    ap.add_argument("--fresh-pages", dest="steady_malloc", action="store_false",
                    help="let glibc return freed memory to the system (its default) instead of keeping "
                         "it in every child (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)")
    ap.add_argument("--positive-control", action="store_true",
                    help="turn the library's cap off in the default child (every hot path keeps the "
                         "default threads): shows that the verdict can fail")
    ap.add_argument("--uncapped", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.extras, args.pin, args.uncapped)
        return
    med = statistics.median
    rng = random.Random(args.seed)
    load0 = os.getloadavg()
    n_rounds = max(1, args.rounds)
    # pairs[name][round] = list of (default, single, single2) (wall, cpu) triples
    pairs: dict[str, list[list[tuple[tuple[float, float], ...]]]] = {name: [] for name in CASES}
    info: dict[str, dict] = {}
    t_start = time.perf_counter()
    for r in range(n_rounds):
        # the children set up side by side; no timing starts before all three are ready.
        # The first round measures the extras, one child after the other
        kids = {}
        for mode in KINDS:
            kids[mode] = _Child(mode, extras=(r == 0 and mode != "single"), pad=rng.randrange(PAD),
                                pin=args.pin, steady_malloc=args.steady_malloc,
                                uncapped=args.positive_control and mode == "default")
            if r == 0:
                info[mode] = kids[mode].hello()
        if r > 0:
            for mode in KINDS:
                kids[mode].hello()
        for name in CASES:
            this: list[tuple[tuple[float, float], ...]] = []
            for _ in range(REPEATS[name]):
                order = list(KINDS)
                rng.shuffle(order)  # no kind keeps a position
                t = {mode: kids[mode].time(name) for mode in order}
                this.append((t["default"], t["single"], t["single2"]))
            pairs[name].append(this)
        for kid in kids.values():
            kid.close()
        print(f"round {r + 1} of {n_rounds} done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr,
              flush=True)
    load1 = os.getloadavg()
    print(f"load average (1, 5, 15 min) {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} before, "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} after, on {os.cpu_count()} cores; "
          f"{n_rounds} rounds of fresh children, seed {args.seed}"
          + ("; POSITIVE CONTROL: the default child runs without the library's cap" if args.positive_control
             else ""))
    print(f"BLAS threads outside the hot paths: default {info['default']['_threads']}, "
          f"one thread {info['single']['_threads']}")
    for name in CASES:
        rounds = pairs[name]
        p = [x for rnd in rounds for x in rnd]
        wall_r = [[d[0] / s[0] for d, s, _ in rnd] for rnd in rounds]
        aa_r = [[s2[0] / s[0] for _, s, s2 in rnd] for rnd in rounds]
        wall = [x for rnd in wall_r for x in rnd]
        aa = [x for rnd in aa_r for x in rnd]
        cpu = [d[1] / s[1] for d, s, _ in p]
        per_round = ", ".join(f"{med(x):.2f}" for x in wall_r)
        print(f"{name}: default {med(d[0] for d, _, _ in p) * 1e3:.1f} ms wall / "
              f"{med(d[1] for d, _, _ in p) * 1e3:.1f} ms CPU, one thread {med(s[0] for _, s, _ in p) * 1e3:.1f} "
              f"ms wall / {med(s[1] for _, s, _ in p) * 1e3:.1f} ms CPU (medians of {len(p)} interleaved calls); "
              f"CPU ratio {med(cpu):.2f}; ratio by round {per_round}")
        key = f"{name} interleaved"
        if key in info["default"]:
            print(f"{name}: in the default child, own threading / whole call under an outer one-thread "
                  f"limit: {info['default'][key]:.2f} (median of call pairs)")
        aa_lo, aa_hi = _bootstrap_median(aa_r, seed=args.seed + 1)
        print(f"{name}: A/A (one thread / one thread, 1 by construction) {med(aa):.2f} "
              f"[{aa_lo:.2f}, {aa_hi:.2f}]" + ("" if aa_lo <= 1.0 <= aa_hi else
                                               "  -- excludes 1: the noise is larger than the interval says"))
        title = f"{name}: ratio default / one thread ({len(p)} calls)"
        if n_rounds < 3:
            figure(title + ", no verdict under 3 rounds", med(wall), "x")
        else:
            lo, hi = _bootstrap_median(wall_r, seed=args.seed)
            figure_ci(title, med(wall), lo, hi, "x", at_most=1.0, resolution=RESOLUTION)
    ex = info["single2"]  # the extras measured in a one-thread child
    figure("entering + leaving the one-thread cap", ex["cap_s"] * 1e6, "µs")
    figure(f"stacked CR2 fit, df of the arm only ({int(ex['cr2_p'])} coefficients)", ex["cr2_arm_df_s"], "s")
    figure("stacked CR2 fit, df of every coefficient (as itt did before)", ex["cr2_all_df_s"], "s")
    figure("stacked CR2 fit: arm-only df / every df", ex["cr2_arm_df_s"] / ex["cr2_all_df_s"], "x", at_most=1.0)
    summary()


if __name__ == "__main__":
    main()
