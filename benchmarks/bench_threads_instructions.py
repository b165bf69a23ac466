"""Instructions executed by the hot paths with default BLAS threads and with one (issue 15).

Run: ``python benchmarks/bench_threads_instructions.py [--cases itt,"RI engine"] [--calls 3]``
(needs ``valgrind``; about 3 minutes a case on 2 cores).

``benchmarks/bench_threads.py`` compares wall times of a default child (OpenBLAS started
with one thread per core) and a one-thread child (``OPENBLAS_NUM_THREADS=1``); on an idle
machine their ratios are within the difference between two processes running the same
code (its A/A column). This benchmark counts what the two execute instead: each case of
``bench_threads.py`` runs ``--calls`` times under valgrind's callgrind, instrumentation on
only around the calls (``callgrind_control -i on/off``, after a warm-up call), once in
each kind of process. Instruction counts do not depend on the load or on where a process
runs, so the ratio default / one thread shows whether the default process does more
work. Printed as information (no target): equal work is a ratio of 1 up to the few
instructions OpenBLAS's threaded build spends deciding not to use its threads.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402

CASES = ("itt", "stacked CR2", "itt_by_period", "RI engine")


def child(name: str, calls: int) -> None:
    """Under callgrind: build the study, warm the case up, count ``calls`` calls of it."""
    import warnings

    from bench_threads import _cases

    import ips_impact as ii

    warnings.simplefilter("ignore")
    study = ii.synthetic.generate(n_persons=1200, seed=0, tables=("assignment", "panel")).study()
    fn = _cases(study)[name]
    fn()  # warm-up: first-call costs are not the hot path's
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    for _ in range(calls):
        fn()
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)


def count(name: str, calls: int, one_thread: bool) -> int:
    """Instructions of ``calls`` calls of case ``name`` in a default or a one-thread process."""
    env = dict(os.environ)
    env.pop("OPENBLAS_NUM_THREADS", None)
    if one_thread:
        env["OPENBLAS_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={d}/cg.out",
             sys.executable, __file__, "--child", name, "--calls", str(calls)],
            env=env, capture_output=True, text=True, check=True,
        )
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise RuntimeError(f"callgrind printed no count for {name!r}:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", default="itt,itt_by_period,RI engine",
                    help=f"comma-separated, among {', '.join(CASES)}")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.calls)
        return
    import shutil

    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:  # an optional benchmark: say what it needs instead of a traceback in `make bench`
        print(f"skipped: {' and '.join(missing)} not found on PATH (Debian: apt-get install valgrind)")
        return
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if name not in CASES:
            raise SystemExit(f"unknown case {name!r}; choose among {', '.join(CASES)}")
        default, one = count(name, args.calls, False), count(name, args.calls, True)
        print(f"{name}: {args.calls} calls, {default:,} instructions with default threads, "
              f"{one:,} with one thread: ratio {default / one:.4f}", flush=True)
        figure(f"  {name}: instructions default / one thread", default / one, "x")
    summary()


if __name__ == "__main__":
    main()
