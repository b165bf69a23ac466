"""Every number in a brief is the corresponding result of the Analysis, rounded as displayed.

The rendered HTML is parsed back: each number sits in a ``<span class="num" data-ref=…>``
naming its result and field; the text is read back with Babel in the brief's language
and compared with the result read here directly from the Analysis. No other digit may
appear in the brief's text (outside the provenance footer).
"""

from __future__ import annotations

import html as htmlmod
import math
import re

import brief_helpers
import pytest

from ips_impact.brief import brief
from ips_impact.brief.fmt import Formatter

analysis = brief_helpers.analysis  # the fitted default plan (module fixture)

SCALE = {"pp": (100, 1), "pct": (100, 1), "eur": (1, 0), "eur100_10": (100, -1), "p": (1, 3),
         "months": (1, 0), "months1": (1, 1), "int": (1, 0), "num2": (1, 2), "lo100": (100, 0),
         "hi100": (100, 0)}
SPAN = re.compile(r'<span class="num" data-ref="([^"]+)">([^<]*)</span>')


def _source_value(analysis, ref: str) -> float:
    """The unrounded number behind ``ref``, read from the Analysis (not from the brief)."""
    parts = ref.split("|")
    src, field = parts[0], parts[1]
    mpp = {"Q": 3.0, "M": 1.0}[analysis.study_info["frequency"]]
    if src == "const":
        return {"level": 95.0, "per": 100.0, "example_k": 6.0, "example_months": 18.0}[field]
    if src == "policy":
        return {"rounding": 5.0, "min_persons": 10.0}[field]
    if src == "study":
        return float(analysis.study_info[field])
    if src == "provenance":
        return float(analysis.provenance[field])
    if src == "study" or field in ("n_persons", "n_treated", "n_control"):
        return float(analysis.study_info[field])
    m = re.fullmatch(r"(.+)\[(.+)\]", src)
    results = analysis.results()
    if m:
        eff = results[m.group(1)].effects
        return float(eff.loc[eff["subgroup"] == m.group(2), field].iloc[0])
    r = results[src]
    if field == "horizon":
        return float(r.horizon) * mpp
    if field == "pretest_p":
        return float(r.pretest["p_value"])
    if field == "tau":
        return r.tau * mpp
    if field.startswith("rmst_difference"):
        row = r.statistics[r.statistics["term"] == "rmst_difference"].iloc[0]
        # a first job sooner: the brief states the (positive) months gained and their interval
        return {"rmst_difference": abs(row["estimate"]) * mpp,
                "rmst_difference_ci_low": -row["conf_high"] * mpp,
                "rmst_difference_ci_high": -row["conf_low"] * mpp}[field]
    return float(getattr(r, field))


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_every_number_is_a_result_rounded_as_displayed(analysis, tmp_path, lang) -> None:
    out = brief(analysis, lang=lang, format="html", path=tmp_path / f"b_{lang}.html")
    text = out.path.read_text(encoding="utf-8")
    fmt = Formatter(lang)
    spans = SPAN.findall(text)
    assert len(spans) > 40
    refs = {r.split("|")[0] for r, _ in spans}
    # the three primary estimands, the benefit, spillover, region, survival and dynamic numbers
    assert {"itt.work_on_di.k6", "itt.work_on_di.k10", "itt.di_benefit.k6", "itt.di_benefit.k10",
            "spillover.partner.employed.k10", "time_to_event.employed.tau20",
            "itt_by_period.work_on_di.k-8_20", "heterogeneity.work_on_di.by_region.k10[BXL]"} <= refs
    for ref, shown in spans:
        shown = htmlmod.unescape(shown)
        parts = ref.split("|")
        transform = parts[-2] if parts[-1] == "abs" else parts[-1]
        value = _source_value(analysis, ref)
        if parts[-1] == "abs":
            value = abs(value)
        got = fmt.parse(shown)
        if transform == "count":
            assert got % 5 == 0 and abs(got - value) <= 2.5, (ref, shown, value)
            continue
        scale, digits = SCALE[transform]
        if transform == "p" and value < 0.001:
            assert shown.startswith("<"), (ref, shown)
            continue
        if transform == "lo100":
            assert got == math.floor(abs(round(value * 100, 1))), (ref, shown, value)
            continue
        if transform == "hi100":
            assert got == math.ceil(abs(round(value * 100, 1))), (ref, shown, value)
            continue
        tol = 0.5 * 10 ** (-digits) + 1e-9
        assert abs(got - value * scale) <= tol, (ref, shown, value)


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_no_number_outside_a_result_reference(analysis, tmp_path, lang) -> None:
    text = brief(analysis, lang=lang, format="html", path=tmp_path / "b.html").path.read_text(
        encoding="utf-8")
    body = text[text.index("<body>"):text.index("<footer>")]
    body = re.sub(r"<svg.*?</svg>", "", body, flags=re.S)
    body = SPAN.sub("", body)
    body = htmlmod.unescape(re.sub(r'<[^>]+>', " ", body))
    # digits that are names, not numbers: plan entry ids (deviations) and SE types (HC2, CR2)
    body = re.sub(r"\b[a-z_]+(?:\.[a-z_0-9]+)+\b", "", body)
    body = re.sub(r"\b(?:HC[0-3]|CR[12])\b", "", body)
    assert not re.findall(r"\d", body), re.findall(r".{20}\d.{20}", body)[:5]


def test_headline_wording_and_primary_marks(analysis, tmp_path) -> None:
    text = brief(analysis, lang="en", format="md", path=tmp_path / "b.md").path.read_text(
        encoding="utf-8")
    head = text.split("## Key findings", 1)[1].split("##", 1)[0]
    items = [ln for ln in head.splitlines() if ln.startswith("- ")]
    assert 2 <= len(items) <= 4 and all("**PRIMARY**" in ln for ln in items)
    # working while on DI, never "employment", and the family's adjusted p-value
    assert "work while on disability insurance" in items[0]
    assert "Adjusted p-value within the family" in items[0]
    assert "EUR per month" not in head and "€" in head
    # a headline whose adjusted p-value is 0.05 or more says so in words
    prim = [e for e in analysis.entries if e.tag == "primary"][:len(items)]
    for ln, e in zip(items, prim):
        assert ("could be due to chance" in ln) == (e.result.adj_p_value >= 0.05), (e.id, ln)


def test_small_region_is_suppressed_and_recorded(analysis, tmp_path) -> None:
    out = brief(analysis, lang="en", format="md", path=tmp_path / "b.md",
                policy={"min_persons": 150})
    text = out.path.read_text(encoding="utf-8")
    assert "Brussels: too few participants to publish an estimate" in text
    sup = dict(out.record.suppressed)
    assert "heterogeneity.work_on_di.by_region.k10[BXL]" in sup
    # differencing: with BXL withheld, the smallest other region goes too (total - VL - WAL)
    assert sup.get("heterogeneity.work_on_di.by_region.k10[WAL]") == \
        "recoverable by subtraction from the published total"
    assert out.record.status == "suppressed"
    assert (tmp_path / "b.disclosure.json").exists()


def test_deviations_from_the_plan_are_caveats(analysis, tmp_path) -> None:
    import dataclasses

    entries = tuple(dataclasses.replace(e, result=None, reason="outcome 'fte' absent from the panel")
                    if e.id == "itt.fte.k10" else e for e in analysis.entries)
    deviated = dataclasses.replace(analysis, entries=entries)
    words = {"nl": "Afwijking van het analyseplan", "fr": "Écart par rapport au plan d’analyse",
             "en": "Deviation from the analysis plan"}
    for lang, word in words.items():
        text = brief(deviated, lang=lang, format="md", path=tmp_path / f"d_{lang}.md").path.read_text(
            encoding="utf-8")
        line = next(ln for ln in text.splitlines() if word in ln)
        assert "itt.fte.k10" in line.replace("\\", "") and "absent from the panel" in line
    text = brief(analysis, lang="en", format="md", path=tmp_path / "ok.md").path.read_text(
        encoding="utf-8")
    assert "no deviation was recorded" in text
