"""Benchmark: population-scale linkage (issue 15, item 1).

Targets (2 cores):

* ``load_study`` on 250,000 persons × 60 quarters (15 M panel rows) from parquet:
  ≤ 10 s and ≤ 4 GB peak RSS; then ``itt_by_period`` over 24 periods ≤ 1 s.
* 1,000,000 persons × 60 quarters (60 M rows), linkage through DuckDB and
  ``itt_by_period`` over 24 periods: ≤ 16 GB peak RSS (time reported).

The synthetic trial is generated once (``ii.synthetic.generate``, assignment and
panel, 24 quarters before and 35 after randomization) and written to parquet under
``/tmp/ips_impact_bench_scale``; the 1 M trial is four 250 k draws with disjoint
person ids. Each measurement runs in a fresh process so the peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which counts Arrow's buffers, unlike
tracemalloc) is that of the load alone.

Run: ``nice python benchmarks/bench_scale.py [--size 250000|1000000|both] [--engine pandas|duckdb]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(os.environ.get("IPS_BENCH_DIR", "/tmp/ips_impact_bench_scale"))
CHUNK = 250_000


def _params():
    from ips_impact.synthetic import SyntheticParams

    return replace(SyntheticParams(), pre_quarters=24, post_quarters=35)


def build(n_persons: int) -> Path:
    """Write the synthetic trial of ``n_persons`` (chunks of 250 k) once; return its folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ips_impact.synthetic import generate

    out = ROOT / f"n{n_persons}"
    if (out / "panel.parquet").exists() and (out / "assignment.parquet").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    first = ROOT / f"n{CHUNK}"  # the 250 k trial is the first draw of the larger ones: reused, not redrawn
    for c in range(max(1, n_persons // CHUNK)):
        n = min(CHUNK, n_persons)
        reuse = c == 0 and n_persons > CHUNK and all((first / f"{t}.parquet").exists() for t in ("assignment", "panel"))
        trial = None if reuse else generate(n_persons=n, seed=2018 + c, params=_params(),
                                            tables=("assignment", "panel"))
        for name in ("assignment", "panel"):
            df = pq.read_table(first / f"{name}.parquet").to_pandas() if trial is None else getattr(trial, name)
            if c:  # disjoint keys across chunks: the prefix letter changes
                df = df.assign(person_id=df["person_id"].str.replace("P", "Q" if c == 1 else "RST"[c - 2], n=1))
                if "household_id" in df:
                    df["household_id"] = df["household_id"] + f"_{c}"
            table = pa.Table.from_pandas(df, preserve_index=False)
            if name not in writers:
                writers[name] = pq.ParquetWriter(out / f".{name}.parquet.tmp", table.schema, compression="zstd")
            writers[name].write_table(table, row_group_size=1_000_000)
        del trial
    for name, w in writers.items():
        w.close()
        os.replace(out / f".{name}.parquet.tmp", out / f"{name}.parquet")
    return out


def measure(path: str, engine: str) -> dict:
    """Time load_study and itt_by_period in this process; report peak RSS."""
    import ips_impact as ii

    def cpu() -> float:  # CPU seconds of this process: less sensitive to other jobs than wall time
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    kwargs = {} if engine == "default" else {"engine": engine}
    study = ii.load_study(path, **kwargs)
    t_load, c_load = time.perf_counter() - t0, cpu() - c0
    rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    t0, c0 = time.perf_counter(), cpu()
    ii.itt_by_period(study, "employed", periods=range(1, 25))
    t_itt, c_itt = time.perf_counter() - t0, cpu() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"n_persons": study.n_persons, "rows": len(study._panel), "load_s": t_load, "load_cpu_s": c_load,
            "itt_by_period_s": t_itt, "itt_cpu_s": c_itt, "peak_gb_load": rss_load, "peak_gb": rss}


def _flag(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="250000", choices=["250000", "1000000", "both"])
    ap.add_argument("--engine", default="default", choices=["default", "pandas", "duckdb"])
    ap.add_argument("--child", default=None)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.engine)))
        return
    sizes = [250_000, 1_000_000] if args.size == "both" else [int(args.size)]
    import inspect

    import ips_impact as ii

    has_engine = "engine" in inspect.signature(ii.load_study).parameters
    for n in sizes:
        if n > 250_000 and not has_engine:
            # the pandas path needs ~0.45 KB per panel row (> 24 GB here): not run on a shared machine
            print(f"{n:,} persons × 60 quarters through DuckDB: load_study(engine='duckdb') is not "
                  "implemented yet (target ≤ 16 GB peak) FAIL")
            continue
        t0 = time.perf_counter()
        path = build(n)
        print(f"synthetic trial {n:,} persons × 60 quarters ready in {path} ({time.perf_counter() - t0:.0f} s)")
        engine = args.engine if n == 250_000 or args.engine != "default" else "duckdb"
        res = subprocess.run([sys.executable, __file__, "--child", str(path), "--engine", engine],
                             capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"  engine={engine}: {r['n_persons']:,} persons, {r['rows']:,} panel rows")
        if n == 250_000:
            print(f"  load_study: {r['load_s']:.1f} s wall, {r['load_cpu_s']:.1f} s CPU (target ≤ 10 s) "
                  f"{_flag(r['load_s'] <= 10)}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            print(f"  peak RSS after load_study: {r['peak_gb_load']:.2f} GB (target ≤ 4 GB) "
                  f"{_flag(r['peak_gb_load'] <= 4)}")
            print(f"  itt_by_period, 24 periods: {r['itt_by_period_s']:.2f} s wall, {r['itt_cpu_s']:.2f} s CPU "
                  "(target ≤ 1 s) "
                  f"{_flag(r['itt_by_period_s'] <= 1)}")
        else:
            print(f"  load_study: {r['load_s']:.1f} s wall, {r['load_cpu_s']:.1f} s CPU (target: reported); "
                  f"itt_by_period, 24 periods: {r['itt_by_period_s']:.2f} s wall, {r['itt_cpu_s']:.2f} s CPU "
                  f"(target: reported); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            print(f"  peak RSS after load_study: {r['peak_gb_load']:.2f} GB")
            print(f"  peak RSS, linkage + itt_by_period: {r['peak_gb']:.2f} GB (target ≤ 16 GB) "
                  f"{_flag(r['peak_gb'] <= 16)}")


if __name__ == "__main__":
    main()
