"""No number typed by hand: catalogues and templates hold no literal number outside a
reference to a result (a ``{placeholder}`` or a ``{{ jinja expression }}``)."""

from __future__ import annotations

import re
import string
import tomllib
from importlib import resources

import pytest

BRIEF = resources.files("ips_impact.brief")


def _strings(node, path=""):
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _strings(v, f"{path}{k}.")
        else:
            yield f"{path}{k}", v


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_catalogue_messages_hold_no_literal_number(lang) -> None:
    data = tomllib.loads(BRIEF.joinpath("catalogues", f"{lang}.toml").read_text(encoding="utf-8"))
    bad = []
    for key, msg in _strings(data):
        literal = "".join(lit for lit, *_ in string.Formatter().parse(msg))
        if re.search(r"\d", literal):
            bad.append(key)
    assert not bad, f"{lang}: literal numbers in {bad}"


def _strip_typst_calls(text: str) -> str:
    """Drop ``#name(…)`` calls (balanced parentheses): their arguments are layout."""
    out, i = [], 0
    for m in re.finditer(r"#[a-z.]+\(", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def _template_text(name: str) -> str:
    text = BRIEF.joinpath("templates", name).read_text(encoding="utf-8")
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "", text, flags=re.S)  # references to the brief
    if name.endswith(".html.j2"):
        text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
        text = re.sub(r"<[^>]+>", "", text)  # markup and its attributes are layout
    if name.endswith(".typ.j2"):
        # Typst code (set/show rules, function calls with sizes and colours) is layout;
        # what remains is the text of the page
        text = "\n".join(ln for ln in text.splitlines()
                         if not ln.startswith(("#set", "#show", "#let")))
        text = _strip_typst_calls(text)
    if name.endswith(".md.j2"):
        text = re.sub(r"^#+ |^- |^> ", "", text, flags=re.M)
    return text


@pytest.mark.parametrize("name", ["brief.html.j2", "brief.typ.j2", "brief.md.j2"])
def test_templates_hold_no_literal_number(name) -> None:
    text = _template_text(name)
    assert not re.search(r"\d", text), re.findall(r".{0,20}\d.{0,20}", text)[:5]


def test_lint_catches_a_planted_number() -> None:
    msg = "After 30 months, {est} more"
    literal = "".join(lit for lit, *_ in string.Formatter().parse(msg))
    assert re.search(r"\d", literal)
