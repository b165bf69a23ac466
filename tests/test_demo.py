"""The demo pipeline (make demo): runs, is deterministic, and shows no person key."""

from __future__ import annotations

import pandas as pd

from ips_impact.demo import run_demo


def test_demo_is_deterministic_and_key_free(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    messages: list[str] = []
    assert run_demo(out=a, seed=7, n_permutations=200, progress=messages.append) == 0
    assert run_demo(out=b, seed=7, n_permutations=200, progress=lambda m: None) == 0
    assert any("randomization inference" in m for m in messages)  # progress on long work
    for name in ("report.md", "results.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for fig in ("consort.png", "effect_over_time.png", "time_to_first_job.png", "regional_effects.png"):
        assert (a / fig).stat().st_size > 5_000
    report = (a / "report.md").read_text()
    assert "per 100 participants" in report and "true effect (sample)" in report
    tidy = pd.read_csv(a / "results.csv")
    assert {"outcome", "term", "estimate", "std_error", "ri_p_value", "adj_p_value"} <= set(tidy.columns)
    assert tidy.loc[tidy.estimand == "itt", "ri_p_value"].between(0, 1).all()
    # no key of a person or household in any output (the input tables in data/ hold them by design)
    assignment = pd.read_parquet(a / "data" / "assignment.parquet")
    households = pd.read_parquet(a / "data" / "households.parquet")
    keys = set(assignment.person_id) | set(households.person_id) | set(households.household_id)
    for name in ("report.md", "results.csv"):
        text = (a / name).read_text()
        assert not [k for k in keys if k in text], name
    # policy briefs in the three languages, byte-identical for the same seed, passing the
    # output checker (no small cell, no key, nothing shaped like a national register number)
    import ips_impact as ii

    for lang in ("nl", "fr", "en"):
        for fmt in ("html", "pdf"):
            name = f"briefs/brief_{lang}.{fmt}"
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
            assert ii.disclosure.check(a / name).passed, name
        text = (a / f"briefs/brief_{lang}.html").read_text()
        assert not [k for k in keys if k in text], lang
