"""The demo pipeline behind ``ips-impact demo`` / ``make demo``.

simulate (synthetic trial with known truth) → write the tables → load and validate
them as a user would → analyse → write a report (Markdown + figures + tidy results).
It grows as capabilities land.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["run_demo"]


def run_demo(*, out: Path, seed: int = 2018, n_permutations: int = 2000,
             progress: Callable[[str], None] = print) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ips_impact.study import load_study
    from ips_impact.synthetic import generate

    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    progress(f"simulating the calibrated synthetic trial (seed {seed})")
    trial = generate(n_persons=1200, seed=seed)
    trial.write(data_dir)
    progress(f"reading and validating {data_dir}")
    study = load_study(data_dir)
    report: list[str] = ["# ips_impact demo report", "",
                         "Synthetic IPS trial calibrated to the Belgian pilot (known truth).", "",
                         "## Study", "", "```", repr(study), "```", "",
                         "## Linkage", "", "```", repr(study.linkage_report()), "```", "",
                         "## CONSORT flow", "", study.consort().to_frame().to_markdown(index=False), "",
                         "![CONSORT](consort.png)", "",
                         "## Ledger (rows set aside, repaired or assumed)", "",
                         study.ledger.to_frame().to_markdown(index=False), ""]
    ax = study.consort().plot()
    ax.figure.savefig(out / "consort.png", dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    (out / "report.md").write_text("\n".join(report), encoding="utf-8")
    progress(f"report written to {out / 'report.md'}")
    print("\n".join(report))
    return 0
