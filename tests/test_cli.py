"""The command line as a user meets it: messages, not tracebacks."""

from __future__ import annotations

from conftest import make_frames

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
