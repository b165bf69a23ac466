"""Benchmark: briefs in three languages × HTML and PDF from a saved Analysis (issue 14 target: < 15 s).

The Analysis (default plan on the 1,200-person synthetic trial, 200 randomization draws)
is fitted and saved first (not timed); the timed part is what ``ips-impact brief DIR
--lang nl,fr,en --format html,pdf`` does: load the analysis, build each language's
content (figures included) and lay it out as HTML and PDF, with the disclosure check of
every file.

Run: .venv/bin/python benchmarks/bench_brief.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path

import ips_impact as ii
from ips_impact.brief import _write_many

TARGET_S = 15.0


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_brief_"))
    trial = ii.synthetic.generate(n_persons=1200, seed=2018)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = ii.run_plan(trial.study(), ii.AnalysisPlan.default(), n_permutations=200,
                               seed=1, progress=False)
    analysis.save(tmp / "analysis")
    times = []
    for rep in range(3):
        t0 = time.perf_counter()
        loaded = ii.load_analysis(tmp / "analysis")
        written = _write_many(loaded, langs=("nl", "fr", "en"), formats=("html", "pdf"),
                              out=tmp / f"briefs{rep}")
        times.append(time.perf_counter() - t0)
        assert len(written) == 6
    best, med = min(times), statistics.median(times)
    verdict = "PASS" if med < TARGET_S else "FAIL"
    print(f"3 languages x (HTML + PDF) from a saved Analysis: median {med:.2f} s, best {best:.2f} s "
          f"(target < {TARGET_S:.0f} s) {verdict}")


if __name__ == "__main__":
    main()
