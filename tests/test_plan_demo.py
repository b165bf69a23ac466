"""make demo: the registered plan runs on the committed sample and its Analysis is saved beside the report."""

from __future__ import annotations

from pathlib import Path

import ips_impact as ii
from ips_impact.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "synthetic_data"


def test_demo_on_the_committed_sample_saves_the_analysis(tmp_path):
    messages: list[str] = []
    assert run_demo(out=tmp_path, n_permutations=99, progress=messages.append, data=SAMPLE) == 0
    assert not (tmp_path / "data").exists()  # the sample is read where it is, not copied
    assert any("registered analysis plan" in m for m in messages)
    analysis = ii.load_analysis(tmp_path / "analysis")
    assert analysis.plan == ii.AnalysisPlan.default()
    assert analysis.provenance["input_kind"] == "files"
    assert analysis.provenance["n_permutations"] == 99
    assert len(analysis.deviations()) == 0
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## The registered analysis (default plan)" in report
    assert "itt.work_on_di.k6" in report and "true effect (sample)" in report
