"""``ips-impact brief DIR --lang --format --out`` on a saved Analysis."""

from __future__ import annotations

import brief_helpers
import pytest

from ips_impact import disclosure
from ips_impact.cli import main

analysis = brief_helpers.analysis  # the fitted default plan (module fixture)

@pytest.fixture(scope="module")
def saved(analysis, tmp_path_factory):
    d = tmp_path_factory.mktemp("analysis")
    analysis.save(d)
    return d


def test_brief_command_writes_every_language_and_format(saved, tmp_path, capsys) -> None:
    rc = main(["brief", str(saved), "--lang", "nl,en", "--format", "html,md", "--out", str(tmp_path)])
    assert rc == 0
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["brief_en.disclosure.json", "brief_en.html", "brief_en.md",
                     "brief_nl.disclosure.json", "brief_nl.html", "brief_nl.md"]
    assert disclosure.check(tmp_path / "brief_nl.html").passed
    assert str(tmp_path / "brief_en.html") in capsys.readouterr().out


def test_brief_command_usage_errors(saved, tmp_path, capsys) -> None:
    assert main(["brief", str(saved), "--lang", "de"]) == 64
    assert "unknown language" in capsys.readouterr().err
    assert main(["brief", str(saved), "--format", "rtf"]) == 64
    assert main(["brief", str(tmp_path / "missing")]) == 64


def test_brief_command_bad_policy_is_a_data_error(saved, tmp_path, capsys) -> None:
    pol = tmp_path / "policy.toml"
    pol.write_text("min_persons = 0\n", encoding="utf-8")
    assert main(["brief", str(saved), "--policy", str(pol), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "DisclosureError" in err and "Traceback" not in err


def test_loaded_analysis_gives_the_same_brief_as_the_live_one(analysis, saved, tmp_path) -> None:
    import ips_impact as ii

    loaded = ii.load_analysis(saved)
    for lang in ("nl", "fr", "en"):
        live = ii.brief(analysis, lang=lang, format="html", path=tmp_path / f"live_{lang}.html")
        back = ii.brief(loaded, lang=lang, format="html", path=tmp_path / f"back_{lang}.html")
        assert live.path.read_bytes() == back.path.read_bytes(), lang
