"""Golden tests of the locale formatting of briefs (nl-BE, fr-BE, en)."""

from __future__ import annotations

import pytest

from ips_impact.brief.catalogue import load_catalogue
from ips_impact.brief.fmt import Formatter

NNBSP, NBSP, MINUS = "\u202f", "\u00a0", "\u2212"


@pytest.mark.parametrize(("lang", "pp", "count", "money", "neg", "p"), [
    ("nl", "7,5", "1.185", f"€{NBSP}110", f"{MINUS}€{NBSP}1.160", "0,088"),
    ("fr", "7,5", f"1{NNBSP}185", f"110{NBSP}€", f"{MINUS}1{NNBSP}160{NBSP}€", "0,088"),
    ("en", "7.5", "1,185", "€110", f"{MINUS}€1,160", "0.088"),
])
def test_separators(lang, pp, count, money, neg, p) -> None:
    f = Formatter(lang)
    assert f.number(0.075 * 100, 1) == pp
    assert f.count(1185) == count
    assert f.money(110.4) == money
    assert f.money(-1160) == neg
    assert f.p_value(0.0876) == p
    assert f.p_value(0.00004) == "< " + ("0,001" if lang != "en" else "0.001")
    assert f.number(4, 1, sign=True) == ("+4,0" if lang != "en" else "+4.0")
    for text in (pp, count, money, neg):
        assert f.parse(text) == pytest.approx(float(text.replace(MINUS, "-").strip("€ " + NBSP)
                                                   .replace(NBSP, "").replace(NNBSP, "")
                                                   .replace("€", "").replace(".", "")
                                                   .replace(",", ".")) if lang != "en" else
                                              float(text.replace(MINUS, "-").replace("€", "")
                                                    .replace(",", "")))


@pytest.mark.parametrize(("lang", "unit"), [
    ("nl", "7,5 procentpunt"), ("fr", "7,5 points de pourcentage"), ("en", "7.5 percentage points")])
def test_percentage_points_in_words(lang, unit) -> None:
    f, cat = Formatter(lang), load_catalogue(lang)
    assert f"{f.number(7.5, 1)} {cat['text.pp']}" == unit


def test_rounding_is_half_even_on_the_shown_digits() -> None:
    assert Formatter.rounded(0.0745 * 100, 1) == 7.4  # 7.449999… in binary
    assert Formatter.rounded(2.25, 1) == 2.2
    assert Formatter.rounded(10046.3, -1) == 10050.0
    assert Formatter("en").money(Formatter.rounded(-10046.3, -1)) == f"{MINUS}€10,050"


def test_catalogues_have_the_same_keys() -> None:
    keys = {lang: load_catalogue(lang).keys() for lang in ("nl", "fr", "en")}
    assert keys["nl"] == keys["en"] == keys["fr"]
