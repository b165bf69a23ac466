"""`ips-impact run`, `diff` and `plan`: exit codes and messages, never a traceback."""

from __future__ import annotations

from pathlib import Path

import ips_impact as ii
from ips_impact.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "synthetic_data"

PLAN = """
schema = 1
name = "cli"
seed = 5
n_permutations = 49

[families.primary]
method = "holm"

[[estimands]]
estimator = "itt"
outcomes = ["work_on_di", "di_benefit"]
horizon = 6
covariates = ["age"]
tag = "primary"
family = "primary"

[[estimands]]
estimator = "itt"
outcome = "employed"
horizon = 6
tag = "secondary"
"""


def test_plan_default_prints_the_shipped_plan(capsys, tmp_path):
    assert main(["--quiet", "plan", "--default"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# The registered analysis") and "[[estimands]]" in out
    (tmp_path / "plan.toml").write_text(out, encoding="utf-8")
    assert ii.AnalysisPlan.from_toml(tmp_path / "plan.toml") == ii.AnalysisPlan.default()


def test_plan_check(capsys, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text(PLAN, encoding="utf-8")
    assert main(["--quiet", "plan", "--check", str(f)]) == 0
    assert "itt.work_on_di.k6" in capsys.readouterr().out
    f.write_text(PLAN.replace('tag = "secondary"', 'tag = "secondary"\nhorizn = 3'), encoding="utf-8")
    assert main(["--quiet", "plan", "--check", str(f)]) == 2
    err = capsys.readouterr().err
    assert "PlanError" in err and "p.toml, line" in err and "horizn" in err and "Traceback" not in err
    assert main(["--quiet", "plan"]) == 64
    assert "--default" in capsys.readouterr().err


def test_run_then_diff(capsys, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(out_a), "--plan", str(plan)]) == 0
    printed = capsys.readouterr().out
    assert "Analysis: cli" in printed and "3 of 3 estimands filled" in printed
    a = ii.load_analysis(out_a)
    assert a.provenance["input_kind"] == "files"
    assert set(a.provenance["inputs"]) >= {"assignment", "panel"}
    assert a.provenance["n_permutations"] == 49
    # the same run again: identical, diff exits 0
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(out_b), "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["--quiet", "diff", str(out_a), str(out_b)]) == 0
    assert "No estimand differs" in capsys.readouterr().out
    # another seed: the randomization p-values move, diff exits 1 and says which
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(out_b), "--plan", str(plan), "--seed", "6"]) == 0
    capsys.readouterr()
    assert main(["--quiet", "diff", str(out_b), str(out_a)]) == 1
    out = capsys.readouterr().out
    assert "ri_p_value" in out and "seed" in out
    assert main(["--quiet", "diff", str(out_b), str(out_a), "--rtol", "1", "--atol", "1"]) == 0


def test_run_usage_and_data_errors(capsys, tmp_path):
    assert main(["--quiet", "run", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 64
    assert "not a folder" in capsys.readouterr().err
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(tmp_path / "o"), "--plan",
                 str(tmp_path / "absent.toml")]) == 64
    assert "--plan" in capsys.readouterr().err
    assert main(["--quiet", "diff", str(tmp_path), str(tmp_path)]) == 64
    assert "not a saved analysis" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(PLAN.replace('method = "holm"', 'method = "fdr"'), encoding="utf-8")
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(tmp_path / "o"), "--plan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml, line 8" in err and "families.primary.method" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_run_strict_fails_on_deviations(capsys, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace('outcome = "employed"', 'outcome = "not_there"'), encoding="utf-8")
    args = ["--quiet", "run", str(SAMPLE), "--out", str(tmp_path / "o"), "--plan", str(plan),
            "--n-permutations", "0"]
    assert main(args) == 0
    assert "itt.not_there.k6" in capsys.readouterr().out
    assert main([*args, "--strict"]) == 2
    assert "not filled" in capsys.readouterr().err


def test_run_with_the_duckdb_engine_saves_the_same_analysis(capsys, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    out_a, out_b = tmp_path / "pandas", tmp_path / "duckdb"
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(out_a), "--plan", str(plan),
                 "--n-permutations", "9"]) == 0
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(out_b), "--plan", str(plan),
                 "--n-permutations", "9", "--engine", "duckdb", "--duckdb-memory-limit", "1GB"]) == 0
    capsys.readouterr()
    pd_a, pd_b = ii.load_analysis(out_a).tidy(), ii.load_analysis(out_b).tidy()
    import pandas as pd

    pd.testing.assert_frame_equal(pd_a, pd_b, check_exact=True)
    # a DuckDB setting without the DuckDB engine is a usage error, before any reading
    assert main(["--quiet", "run", str(SAMPLE), "--out", str(tmp_path / "o"), "--plan", str(plan),
                 "--duckdb-memory-limit", "1GB"]) == 64
    err = capsys.readouterr().err
    assert "--duckdb-memory-limit applies to --engine duckdb only" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
