"""Rendered briefs: PDF pages exist and are not blank, every format passes the disclosure
checker, the checker finds what is planted, and the HTML is self-contained."""

from __future__ import annotations

import re

import brief_helpers
import numpy as np
import pytest

from ips_impact import disclosure
from ips_impact.brief import brief
from ips_impact.brief.content import build
from ips_impact.brief.render import to_html
from ips_impact.errors import DisclosureError, PlanError

analysis = brief_helpers.analysis  # the fitted default plan (module fixture)

@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_pdf_pages_render_and_are_not_blank(analysis, tmp_path, lang) -> None:
    import pypdfium2 as pdfium

    out = brief(analysis, lang=lang, format="pdf", path=tmp_path / f"b_{lang}.pdf")
    doc = pdfium.PdfDocument(str(out.path))
    try:
        assert 2 <= len(doc) <= 6
        for i in range(len(doc)):
            img = np.asarray(doc[i].render(scale=0.5).to_pil().convert("L"), dtype=float)
            ink = (img < 200).mean()
            assert ink > 0.01, f"page {i + 1} of the {lang} PDF is blank"
        text = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    title = {"nl": "Individuele Plaatsing", "fr": "Soutien individuel", "en": "Individual Placement"}
    assert title[lang] in text


@pytest.mark.parametrize("fmt", ["html", "pdf", "md", "docx"])
@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_every_brief_of_the_synthetic_trial_passes_the_checker(analysis, tmp_path, lang, fmt) -> None:
    out = brief(analysis, lang=lang, format=fmt, path=tmp_path / f"b.{fmt}")
    rep = disclosure.check(out.path)
    assert rep.passed, str(rep)
    assert (tmp_path / "b.disclosure.json").exists()


def test_checker_finds_a_planted_small_cell_and_key(analysis, tmp_path) -> None:
    html = to_html(build(analysis, "en"))
    assert disclosure.check(html).passed
    planted = html.replace("</footer>", "<p>Brussels, IPS arm: n = 7</p></footer>")
    assert disclosure.check(planted).kinds() == {"small_cell"}
    planted = html.replace("</footer>", "<p>example: P24RE66YAIH</p></footer>")
    assert disclosure.check(planted).kinds() == {"key"}
    body = 850101123
    planted = html.replace("</footer>", f"<p>{body}{97 - body % 97:02d}</p></footer>")
    assert disclosure.check(planted).kinds() == {"national_register_number"}


def test_html_is_self_contained(analysis, tmp_path) -> None:
    text = brief(analysis, lang="en", format="html", path=tmp_path / "b.html").path.read_text(
        encoding="utf-8")
    assert text.count("<svg") == 4  # effect over time, first job, regions, participants (CONSORT)
    assert not re.search(r'(?:src|href)="(?!data:|#)', text)
    assert "<?xml" not in text


def test_markdown_writes_its_figures(analysis, tmp_path) -> None:
    out = brief(analysis, lang="nl", format="md", path=tmp_path / "b.md")
    assert sorted(p.name for p in out.files[1:]) == ["over_time.svg", "participants.svg", "regions.svg",
                                                     "survival.svg"]
    assert "(b_figures/over_time.svg)" in out.path.read_text(encoding="utf-8")


def test_same_analysis_same_bytes(analysis, tmp_path) -> None:
    for fmt in ("html", "pdf"):
        a = brief(analysis, lang="fr", format=fmt, path=tmp_path / f"a.{fmt}").path.read_bytes()
        b = brief(analysis, lang="fr", format=fmt, path=tmp_path / f"b.{fmt}").path.read_bytes()
        assert a == b, fmt


def test_bad_options_are_refused(analysis, tmp_path) -> None:
    with pytest.raises(PlanError, match="language"):
        brief(analysis, lang="de", path=tmp_path / "x.html")
    with pytest.raises(PlanError, match="format"):
        brief(analysis, format="rtf", path=tmp_path / "x.rtf")
    with pytest.raises(DisclosureError, match="positive integer"):
        brief(analysis, path=tmp_path / "x.html", policy={"min_persons": 0})
