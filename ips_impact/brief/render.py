"""Lay a :class:`~ips_impact.brief.content.Brief` out as HTML, Markdown, PDF or Word.

* HTML: one self-contained file (inline CSS, figures as inline SVG); every number is a
  ``<span class="num" data-ref="…">`` naming the result it comes from.
* PDF: the same content typeset by Typst (the ``typst`` wheel bundles the compiler and
  its fonts, so nothing but the package registry is needed); figures as SVG.
* Markdown: figures as SVG files beside the ``.md`` (``<name>_figures/``).
* Word: python-docx, figures as PNG.

Templates (``templates/brief.html.j2``, ``brief.typ.j2``, ``brief.md.j2``) hold layout
only; every word comes from the language's catalogue and every number from a result.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from ips_impact.brief.catalogue import Num, Text
from ips_impact.brief.content import Brief

__all__ = ["to_html", "to_markdown", "to_typst", "to_pdf", "to_docx", "FORMATS"]

FORMATS = ("html", "pdf", "md", "docx")


def _env() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("ips_impact.brief").joinpath("templates", name).read_text(
            encoding="utf-8"))
    env = jinja2.Environment(loader=loader, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["html"] = _text_html
    env.filters["md"] = _text_md
    env.filters["typ"] = _text_typ
    env.filters["esc"] = html.escape
    env.filters["typstr"] = _typstr
    return env


def _text_html(t: Text | str) -> str:
    if isinstance(t, str):
        return html.escape(t)
    out = []
    for s in t.segments:
        if isinstance(s, Num):
            ref, text = html.escape(s.ref), html.escape(s.text)
            out.append(f'<span class="num" data-ref="{ref}">{text}</span>')
        else:
            out.append(html.escape(s))
    return "".join(out)


def _md_escape(s: str) -> str:
    for ch in ("\\", "*", "_", "[", "]", "<", ">", "#", "`"):
        s = s.replace(ch, "\\" + ch)
    return s


def _text_md(t: Text | str) -> str:
    return _md_escape(t if isinstance(t, str) else t.plain())


def _typstr(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _text_typ(t: Text | str) -> str:
    """Return a Typst string literal in markup (``#"…"``): no markup can misfire."""
    return "#" + _typstr(t if isinstance(t, str) else t.plain())


def to_html(brief: Brief) -> str:
    """Render the brief as one self-contained HTML document."""
    return _env().get_template("brief.html.j2").render(b=brief)


def to_markdown(brief: Brief, figure_dir: str | None = None) -> tuple[str, dict[str, str]]:
    """Markdown text and the SVG figures it links to (``{relative path: svg}``)."""
    figs = {}
    for s in brief.sections:
        if s.figure is not None:
            figs[f"{figure_dir or 'figures'}/{s.figure.key}.svg"] = s.figure.svg
    text = _env().get_template("brief.md.j2").render(b=brief, figure_dir=figure_dir or "figures")
    return text, figs


def to_typst(brief: Brief) -> str:
    """Typst source of the brief (figures inline as SVG bytes)."""
    return _env().get_template("brief.typ.j2").render(b=brief)


def to_pdf(brief: Brief) -> bytes:
    """PDF bytes typeset by Typst with its bundled fonts (no system font is read)."""
    import datetime as _dt

    import typst

    src = to_typst(brief).encode("utf-8")
    # a fixed timestamp keeps the PDF bytes identical from run to run
    stamp = int(_dt.datetime(2000, 1, 1, tzinfo=_dt.UTC).timestamp())
    return typst.compile(src, ignore_system_fonts=True, timestamp=stamp)


def to_docx(brief: Brief, path: str | Path) -> Path:
    """Write the brief as a Word document (figures as PNG)."""
    import io

    import docx
    from docx.shared import Cm, Pt, RGBColor

    d = docx.Document()
    core = d.core_properties
    core.title, core.author, core.language = brief.title, "ips_impact", brief.lang
    d.add_heading(brief.title, level=0)
    d.add_paragraph(brief.subtitle).runs[0].italic = True
    for s in brief.sections:
        d.add_heading(s.title, level=1)
        for p in s.paragraphs:
            para = d.add_paragraph(p.plain())
            if s.boxed:
                para.paragraph_format.left_indent = Cm(0.5)
        for it in s.items:
            para = d.add_paragraph(style="List Bullet")
            if it.badge:
                run = para.add_run(it.badge.upper() + "  ")
                run.bold = True
                run.font.color.rgb = RGBColor(0x1B, 0x6C, 0xA8)
                run.font.size = Pt(8)
            para.add_run(it.text.plain())
        if s.figure is not None:
            d.add_picture(io.BytesIO(s.figure.png), width=Cm(16))
            cap = d.add_paragraph(s.figure.caption.plain())
            cap.runs[0].italic = True
            cap.runs[0].font.size = Pt(9)
    for t in brief.footer:
        para = d.add_paragraph(t.plain())
        para.runs[0].font.size = Pt(8)
    out = Path(path)
    d.save(str(out))
    return out


def write(brief: Brief, path: str | Path, fmt: str) -> dict[str, Any]:
    """Write ``brief`` to ``path`` in ``fmt``; return what was written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        p.write_text(to_html(brief), encoding="utf-8")
        files = [p]
    elif fmt == "pdf":
        p.write_bytes(to_pdf(brief))
        files = [p]
    elif fmt == "md":
        fig_dir = f"{p.stem}_figures"
        text, figs = to_markdown(brief, fig_dir)
        p.write_text(text, encoding="utf-8")
        files = [p]
        for rel, svg in figs.items():
            f = p.parent / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(svg, encoding="utf-8")
            files.append(f)
    elif fmt == "docx":
        files = [to_docx(brief, p)]
    else:  # pragma: no cover - checked by the caller
        raise ValueError(fmt)
    return {"path": p, "files": files}
