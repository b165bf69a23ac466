"""The validation runner (issue 17): bands, determinism across backends, parity collection.

The reduced run in ``test_reduced_validation_is_inside_its_bands`` is the CI version
of ``docs/validation.md``: 200 replications per study, so the band of a 95% coverage
check is 95% ± 4.6 points (3 Monte Carlo SE) and that of a 5% size check 5% ± 4.6
points — wide, but a conservative 99% or an anti-conservative 88% interval fails it.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import pytest

from ips_impact.validation import STUDIES, Check, ValidationReport, replicate_seed, run_validation, summarise
from ips_impact.validation.parity import collect_parity


def test_summarise_computes_rates_bands_bias_and_se_ratio():
    rng = np.random.default_rng(0)
    n = 400
    est = rng.normal(1.0, 0.5, n)
    se = np.full(n, 0.5)
    hit = np.abs(est - 1.0) <= 1.959963984540054 * se
    rec = pd.DataFrame({"check": "a", "hit": hit, "estimate": est, "std_error": se, "truth": 1.0})
    rec = pd.concat([rec, pd.DataFrame({"check": "b", "hit": [True] * 10 + [False] * 190,
                                        "estimate": np.nan, "std_error": np.nan, "truth": np.nan})])
    checks = [Check("a", "s", "e", "q", "coverage", 0.95), Check("b", "s", "e", "q", "rejection", 0.05)]
    t = summarise(rec, checks).set_index("check")
    assert t.loc["a", "rate"] == pytest.approx(hit.mean())
    assert t.loc["a", "mc_se"] == pytest.approx(math.sqrt(hit.mean() * (1 - hit.mean()) / n))
    half = 3 * math.sqrt(0.95 * 0.05 / n)
    assert t.loc["a", "band_low"] == pytest.approx(0.95 - half)
    assert t.loc["a", "band_high"] == pytest.approx(0.95 + half)
    assert t.loc["a", "bias"] == pytest.approx(est.mean() - 1.0)
    assert t.loc["a", "rmse"] == pytest.approx(np.sqrt(((est - 1.0) ** 2).mean()))
    assert t.loc["a", "se_sd_ratio"] == pytest.approx(0.5 / est.std(ddof=1))
    assert t.loc["b", "rate"] == pytest.approx(0.05)
    assert bool(t.loc["b", "inside"]) is True
    assert math.isnan(t.loc["b", "bias"])
    # a rate far from nominal is outside its band
    rec2 = rec.assign(hit=np.where(rec["check"] == "b", True, rec["hit"]))
    assert bool(summarise(rec2, checks).set_index("check").loc["b", "inside"]) is False


def test_replicate_seeds_depend_on_study_and_replicate_only():
    assert replicate_seed(1, "effects", 3) == replicate_seed(1, "effects", 3)
    seeds = {replicate_seed(1, s, r) for s in STUDIES for r in range(50)}
    assert len(seeds) == 50 * len(STUDIES)
    assert replicate_seed(2, "effects", 3) != replicate_seed(1, "effects", 3)


def test_unknown_study_and_bad_replications_are_typed_errors():
    from ips_impact.errors import EstimationError

    with pytest.raises(EstimationError, match="unknown validation study"):
        run_validation(studies=["nope"], replications=2, parity=False)
    with pytest.raises(EstimationError, match="replications"):
        run_validation(replications=1, parity=False)


def test_same_report_whatever_the_backend_and_chunking():
    kw = dict(replications=4, studies=["null"], truth_n=2_000, parity=False, seed=7)
    serial = run_validation(backend="serial", chunk_size=4, **kw)
    procs = run_validation(backend="processes", n_workers=2, chunk_size=1, **kw)
    pd.testing.assert_frame_equal(serial.table, procs.table)
    assert serial.truths == procs.truths


def test_dask_cluster_gives_the_same_report():
    distributed = pytest.importorskip("distributed")
    kw = dict(replications=2, studies=["households"], truth_n=2_000, parity=False, seed=3)
    serial = run_validation(backend="serial", **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dask = run_validation(backend=client, chunk_size=1, **kw)
    pd.testing.assert_frame_equal(serial.table, dask.table)


def test_parity_collection_records_errors_tolerances_and_failures(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import pytest

        def pytest_collection_modifyitems(config, items):
            for item in items:
                item.add_marker(pytest.mark.parity)
    """))
    (tmp_path / "test_fake_reference.py").write_text(textwrap.dedent("""
        import numpy as np
        import pytest
        from numpy.testing import assert_allclose

        def test_close_matches_r():
            assert 1.0 + 1e-9 == pytest.approx(1.0, rel=1e-8)
            assert_allclose([2.0, 4.0 * (1 + 2e-10)], [2.0, 4.0], rtol=1e-9)

        def test_far_matches_r():
            assert 1.1 == pytest.approx(1.0, rel=1e-8)
    """))
    p = collect_parity(tmp_path).set_index("test")
    close = p.loc["test_fake_reference.py::test_close_matches_r"]
    assert bool(close["met"]) is True
    assert close["comparisons"] == 3
    assert close["max_rel_error"] == pytest.approx(1e-9, rel=1e-3)
    assert close["tolerance"] == pytest.approx(1e-8)
    far = p.loc["test_fake_reference.py::test_far_matches_r"]
    assert bool(far["met"]) is False
    assert far["max_rel_error"] == pytest.approx(0.1, rel=1e-6)


def test_report_page_and_figure_are_deterministic(tmp_path):
    rec = pd.DataFrame({"check": ["itt.none.default"] * 3 + ["size.itt.model"] * 3,
                        "hit": [True, True, False, False, False, True],
                        "estimate": [0.1, 0.12, 0.2, 0.5, 0.4, 0.01], "std_error": [0.03, 0.03, 0.03] + [np.nan] * 3,
                        "truth": [0.1] * 3 + [np.nan] * 3})
    checks = [c for c in STUDIES["effects"][1] if c.id == "itt.none.default"] + [
        c for c in STUDIES["null"][1] if c.id == "size.itt.model"]
    table = summarise(rec, checks)
    parity = pd.DataFrame({"test": ["t.py::test_matches_r"], "reference": ["x_reference.json"],
                           "tolerance": [1e-8], "max_rel_error": [1e-13], "comparisons": [3], "met": [True]})
    rep = ValidationReport(table=table, parity=parity, replications=3, seed=1, truth_n=10)
    a = rep.write(tmp_path / "a" / "validation.md", command="python -m ips_impact.validation --replications 3")
    b = rep.write(tmp_path / "b" / "validation.md", command="python -m ips_impact.validation --replications 3")
    assert a.read_bytes() == b.read_bytes()
    svg_a = (tmp_path / "a" / "validation_coverage.svg").read_bytes()
    assert svg_a == (tmp_path / "b" / "validation_coverage.svg").read_bytes()
    text = a.read_text()
    assert "python -m ips_impact.validation --replications 3" in text
    assert "| `itt.none.default` |" in text and "| `size.itt.model` |" in text
    assert "![Coverage and size per check](validation_coverage.svg)" in text
    assert "1 of 1" in text  # the parity table's count of tests met


@pytest.mark.slow
def test_reduced_validation_is_inside_its_bands():
    rep = run_validation(replications=200, backend="processes", n_workers=2, truth_n=50_000, parity=False)
    t = rep.table
    assert (t["replications"] == 200).all()
    bad = rep.failures()
    assert bad.empty, bad[["check", "rate", "band_low", "band_high"]].to_string()
