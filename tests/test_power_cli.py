"""``ips-impact power`` (ips_impact.power_cli)."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from ips_impact.cli import main
from ips_impact.power_cli import handler, register


def test_power_command_writes_the_curve_and_the_plot(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["--quiet", "power", "--sample-sizes", "120,VL=60+WAL=40+BXL=20", "--effect-scales", "0,1",
                 "--replicates", "3", "--backend", "serial", "--seed", "4", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Simulated power: itt (work_on_di at 6 q)" in text
    assert "Minimum detectable effect at 80% power" in text
    curve = pd.read_csv(out / "curve.csv")
    assert list(curve["sample"].unique()) == ["120", "VL 60 / WAL 40 / BXL 20"]
    assert (out / "mde.csv").exists() and (out / "power.png").stat().st_size > 1000
    assert len(pd.read_csv(out / "replicates.csv")) == 2 * 2 * 3


@pytest.mark.parametrize("argv", [
    ["--sample-sizes", "lots"],
    ["--effect-scales", "big"],
    ["--estimand", "family", "--family", "employed"],
    ["--sample-sizes", "VL=many"],
])
def test_a_malformed_option_exits_64(argv, capsys):
    assert main(["--quiet", "power", "--backend", "serial", *argv]) == 64
    assert "usage error" in capsys.readouterr().err


def test_a_refused_parameter_exits_2_without_a_traceback(capsys):
    assert main(["--quiet", "power", "--estimand", "late", "--backend", "serial"]) == 2
    err = capsys.readouterr().err
    assert "EstimationError" in err and "Traceback" not in err
    assert main(["--quiet", "power", "--takeup-rate", "1.5", "--backend", "serial"]) == 2


def test_register_adds_a_subparser_with_its_handler():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["power", "--replicates", "7"])
    assert args.func is handler and args.replicates == 7
