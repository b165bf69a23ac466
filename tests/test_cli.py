"""The command line as a user meets it: messages, not tracebacks."""

from __future__ import annotations

import argparse

import pytest
from conftest import make_frames

from ips_impact import __version__, cli
from ips_impact.cli import main


def _write(folder, frames):
    for name, f in frames.items():
        f.to_csv(folder / f"{name}.csv", index=False)


def test_validate_prints_linkage_report(tmp_path, capsys):
    _write(tmp_path, make_frames(n=20, periods=6))
    assert main(["--quiet", "validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Study: 20 randomized" in out
    assert "Differential linkage (Fisher's exact test" in out
    assert "CONSORT flow" in out


def test_validate_malformed_input_gives_a_message(tmp_path, capsys):
    f = make_frames(n=20, periods=6)
    f["panel"].loc[3, "earnings"] = -10
    _write(tmp_path, f)
    assert main(["--quiet", "validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "DataContractError" in err and "column 'earnings'" in err and "Fix:" in err
    assert "Traceback" not in err


def test_validate_with_column_map(tmp_path, capsys):
    f = make_frames(n=20, periods=6)
    f["panel"] = f["panel"].rename(columns={"earnings": "gross_wage"})
    _write(tmp_path, f)
    (tmp_path / "map.toml").write_text('[panel]\ngross_wage = "earnings"\n')
    assert main(["--quiet", "validate", str(tmp_path), "--column-map", str(tmp_path / "map.toml")]) == 0


# ---------------------------------------------------------------- convention and exit codes


def _all_subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def test_every_option_of_every_command_has_help_text():
    parser = cli.build_parser()
    commands = dict(_all_subparsers(parser))
    assert {"demo", "simulate", "validate"} <= set(commands)
    for name, sub in [("ips-impact", parser), *commands.items()]:
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name}: option {action.option_strings or action.dest} has no help"
        text = sub.format_help()
        assert "%(default)" not in text
    assert "(default: 1200)" in commands["simulate"].format_help()


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ips-impact {__version__}"


def test_quiet_in_any_position(tmp_path, capsys):
    _write(tmp_path, make_frames(n=20, periods=6))
    for argv in (["--quiet", "validate", str(tmp_path)], ["validate", str(tmp_path), "--quiet"],
                 ["validate", "-q", str(tmp_path)]):
        assert main(argv) == 0, argv
        assert capsys.readouterr().err == "", argv
    assert main(["validate", str(tmp_path)]) == 0
    assert "reading and validating" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["validate"],                                         # missing argument
    ["nonsense"],                                         # unknown command
    ["validate", "/no/such/folder"],                      # missing path
    ["simulate", "--out", "x", "--n-persons", "0"],       # bad number
    ["simulate", "--out", "x", "--n-persons", "ten"],     # not a number
    ["demo", "--n-permutations", "0"],                    # refused before 8 s of work
    ["validate", ".", "--bogus-option"],
])
def test_usage_errors_exit_64_without_traceback(argv, capsys):
    assert main(argv) == 64
    err = capsys.readouterr().err
    assert "ips-impact: error:" in err and "Traceback" not in err


def test_missing_column_map_file_is_a_usage_error(tmp_path, capsys):
    _write(tmp_path, make_frames(n=20, periods=6))
    assert main(["validate", str(tmp_path), "--column-map", str(tmp_path / "absent.toml")]) == 64
    err = capsys.readouterr().err
    assert "absent.toml" in err and "Traceback" not in err


def test_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["--quiet", "simulate", "--out", str(target), "--n-persons", "30"]) == 64
    assert main(["--quiet", "demo", "--out", str(target)]) == 64
    assert "is an existing file" in capsys.readouterr().err


def test_simulate_too_few_persons_refused_up_front(tmp_path, capsys):
    from ips_impact.commands.simulate import MIN_PERSONS

    assert main(["--quiet", "simulate", "--out", str(tmp_path / "t"), "--n-persons", str(MIN_PERSONS - 1)]) == 64
    assert not (tmp_path / "t").exists()  # no work done
    assert f"--n-persons {MIN_PERSONS} or more" in capsys.readouterr().err


def test_internal_error_exits_1_without_traceback_unless_asked(monkeypatch, capsys):
    import ips_impact.commands.validate as cmd

    def boom(args):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(cmd, "run", boom)
    assert main(["validate", "."]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err
    assert main(["validate", ".", "--traceback"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_data_error_exits_2(tmp_path, capsys):
    f = make_frames(n=20, periods=6)
    del f["assignment"]["arm"]
    _write(tmp_path, f)
    assert main(["--quiet", "validate", str(tmp_path)]) == 2
    assert "DataContractError" in capsys.readouterr().err


def test_validate_strict_fails_on_a_warning(tmp_path, capsys):
    f = make_frames(n=20, periods=12)
    f["panel"] = f["panel"][f["panel"]["person_id"] != "P0003A"]  # one person unlinked: a warning
    _write(tmp_path, f)
    assert main(["-q", "validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "warning: DataWarning: not every randomized person links" in out
    assert "Ledger" in out and "Linkage of randomized persons" in out
    assert main(["-q", "validate", str(tmp_path), "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err


def test_validate_with_the_duckdb_engine_prints_the_same_reports(tmp_path, capsys):
    frames = make_frames(n=20, periods=6)
    for name, f in frames.items():
        f.to_parquet(tmp_path / f"{name}.parquet", index=False)
    assert main(["--quiet", "validate", str(tmp_path)]) == 0
    by_pandas = capsys.readouterr().out
    assert main(["--quiet", "validate", str(tmp_path), "--engine", "duckdb",
                 "--duckdb-temp-directory", str(tmp_path / "spill")]) == 0
    assert capsys.readouterr().out == by_pandas
    assert main(["--quiet", "validate", str(tmp_path), "--engine", "polars"]) == 64
    assert "invalid choice" in capsys.readouterr().err
