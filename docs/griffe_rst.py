"""Griffe extension: the reST roles of the numpydoc docstrings, rendered as Markdown.

The docstrings follow numpydoc, which writes math and cross-references in reST
(``:math:`\\tau```, ``.. math::``, ``:func:`itt```). mkdocstrings renders docstrings
as Markdown, so without this step a reader of the API reference would see the raw
roles. Only the markup changes, never the text, and the docstrings stay numpydoc for
``help()`` and IDEs:

* ``:math:`x``` → ``$x$`` and ``.. math:: x`` (one line or an indented block) →
  a ``$$ … $$`` block, rendered by ``pymdownx.arithmatex`` and MathJax;
* classes decorated with ``ips_impact.results.base.result_dataclass`` (a frozen,
  keyword-only ``dataclasses.dataclass``) get the ``__init__`` the dataclass makes, so
  their documented fields are checked against a signature as for ``@dataclass``
  (griffe's own dataclass support recognises only the ``dataclass`` decorator itself);
* ``text::`` before an indented block (a reST literal block) → ``text:`` and a fenced
  code block, and a ``>>>`` doctest block outside ``Examples`` → a fenced ``pycon``
  block (Markdown would read ``>>>`` as a block quote);
* reST simple tables (``=== ===`` borders) → Markdown pipe tables;
* ``:func:`~a.b.c```, ``:class:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``,
  ``:exc:`` → a cross-reference to the object, resolved in the docstring's scope.
  It is *optional*: a target that is not rendered in the reference (a private
  helper) is shown as code instead of failing the strict build — the check that
  every public name is rendered is ``tests/test_docs.py``, not the link.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|mod|data|exc|obj):`(~?)([^`<>]+?)`")
_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _MATH_DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m["indent"]
        body = [m["first"].strip()] if m["first"].strip() else []
        i += 1
        # the directive's content: every following line indented deeper (blank lines inside allowed)
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            if lines[i].strip() or body:
                body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        trailing_blank = bool(out) and out[-1].strip() == ""
        if out and not trailing_blank:
            out.append("")
        out.extend([f"{indent}$$", *(f"{indent}{b}" for b in body if b), f"{indent}$$", ""])
        if i < len(lines) and not lines[i].strip():
            i += 1  # the blank line that ended the directive is already written
    return "\n".join(out)


def _roles(text: str, obj: griffe.Object) -> str:
    def repl(m: re.Match[str]) -> str:
        kind, tilde, target = m.groups()
        target = target.strip().rstrip("()")
        shown = target.rsplit(".", 1)[-1] if tilde else target
        shown += "()" if kind in ("func", "meth") else ""
        try:
            identifier = obj.resolve(target) if "." not in target else target
        except Exception:  # noqa: BLE001 - an unresolved name stays the name as written
            identifier = target
        return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

    return _ROLE.sub(repl, text)


def _is_header(lines: list[str], i: int) -> bool:
    """A numpydoc section header: a title line underlined with dashes."""
    return (
        i + 1 < len(lines)
        and bool(lines[i].strip())
        and len(lines[i + 1].strip()) >= 3
        and set(lines[i + 1].strip()) == {"-"}
    )


def _fence(block: list[str], pad: str, lang: str) -> list[str]:
    cut = min(_indent(b) for b in block if b.strip())
    body = [pad + b[cut:] if b.strip() else "" for b in block]
    return ["", f"{pad}```{lang}", *body, f"{pad}```", ""]


def _code_blocks(text: str) -> str:
    """reST literal blocks (``text::`` + indented block) and doctest blocks → fenced code.

    Indented code alone would not do: inside a list item Markdown needs it indented past
    the item's text, and a ``>>>`` line is a Markdown block quote. Doctest blocks of an
    ``Examples`` section are left to griffe, which renders them itself.
    """
    lines = text.split("\n")
    out: list[str] = []
    in_examples = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_header(lines, i):
            in_examples = line.strip() in ("Examples", "Example")
        if (
            line.rstrip().endswith("::")
            and i + 2 < len(lines)
            and not lines[i + 1].strip()
            and _indent(lines[i + 2]) > _indent(line)
        ):
            stripped = line.rstrip()[:-2]
            keep_colon = stripped.strip() and not stripped.endswith(" ")
            out.append(stripped + ":" if keep_colon else stripped.rstrip())
            # inside a list item the code belongs to the item: indent it like the item's text
            bullet = line.lstrip()[:2] in ("* ", "- ")
            pad = " " * (_indent(line) + (2 if bullet else 0))
            j, block = i + 2, []
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > _indent(line)):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            out.extend(_fence(block, pad, "python"))
            i = j
            continue
        if not in_examples and line.lstrip().startswith(">>>"):
            j, block = i, []
            while j < len(lines) and lines[j].strip():
                block.append(lines[j])
                j += 1
            out.extend(_fence(block, " " * _indent(line), "pycon"))
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


_BORDER = re.compile(r"^[ \t]*=+(?:[ \t]+=+)+[ \t]*$")


def _simple_tables(text: str) -> str:
    """reST simple tables (``===== =====`` borders, one header row) → Markdown pipe tables."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not (_BORDER.match(lines[i]) and i + 2 < len(lines) and _BORDER.match(lines[i + 2])):
            out.append(lines[i])
            i += 1
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[i])]
        j = i + 3
        while j < len(lines) and not _BORDER.match(lines[j]):
            j += 1

        def cells(row: str, spans: list[tuple[int, int]] = spans) -> str:
            # a column runs from its border's start to the next border's start
            bounds = [a for a, _ in spans[1:]] + [max(len(row), spans[-1][1])]
            parts = [row[a:b].strip() for (a, _), b in zip(spans, bounds)]
            return "| " + " | ".join(parts) + " |"

        out.append(cells(lines[i + 1]))
        out.append("|" + "---|" * len(spans))
        out.extend(cells(row) for row in lines[i + 3 : j] if row.strip())
        i = j + 1
    return "\n".join(out)


def rst_to_markdown(text: str, obj: griffe.Object) -> str:
    """Rewrite the reST roles and math directives of one docstring (see the module)."""
    text = _simple_tables(_code_blocks(_math_blocks(text)))
    text = _INLINE_MATH.sub(lambda m: f"${m[1].strip()}$", text)
    return _roles(text, obj)


def _is_result_dataclass(cls: griffe.Object) -> bool:
    decorators = getattr(cls, "decorators", ())
    return any(str(d.value).split(".")[-1] == "result_dataclass" for d in decorators)


def _fields(cls: griffe.Class) -> list[griffe.Parameter]:
    """The fields of ``cls``, then those of its result-dataclass bases.

    All are keyword-only, so the order is the reader's: the class's own fields (outcome,
    estimate…) first, the common ones (spec, warnings, ledger…) last — dataclasses
    itself puts the bases first.
    """
    params: dict[str, griffe.Parameter] = {}
    try:
        bases = [c for c in cls.mro() if _is_result_dataclass(c)]  # nearest base first
    except ValueError:
        bases = []
    for klass in [cls, *bases]:
        for member in klass.members.values():
            if member.is_alias or not member.is_attribute or member.annotation is None:
                continue
            if "property" in member.labels or "instance-attribute" not in member.labels:
                continue  # properties and ClassVars are not fields
            # no assignment in the class body: a required field
            default: str | griffe.Expr | None = None
            if "class-attribute" in member.labels:
                default = "None" if member.value is None else member.value
                if "field(" in str(default):
                    default = "..."  # a default_factory: a fresh value per instance
            params.setdefault(
                member.name,
                griffe.Parameter(
                    member.name,
                    annotation=member.annotation,
                    kind=griffe.ParameterKind.keyword_only,
                    default=default,
                    docstring=member.docstring,
                ),
            )  # a field redefined by a subclass keeps the subclass's definition
    return list(params.values())


def _add_result_dataclass_init(cls: griffe.Class) -> None:
    if "__init__" in cls.members or not _is_result_dataclass(cls):
        return
    cls.labels.add("dataclass")
    init = griffe.Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        returns="None",
        parameters=griffe.Parameters(
            griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword), *_fields(cls)
        ),
    )
    cls.set_member("__init__", init)


class RstRoles(griffe.Extension):
    """Markdown for the reST of every docstring, and ``__init__`` for result dataclasses."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:  # noqa: ARG002 - griffe's hook signature
        seen: set[str] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.path in seen:
                continue
            seen.add(obj.path)
            if obj.is_class:
                _add_result_dataclass_init(obj)  # type: ignore[arg-type]
            if obj.docstring is not None:
                obj.docstring.value = rst_to_markdown(obj.docstring.value, obj)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
