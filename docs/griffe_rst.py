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
* ``text::`` before an indented block (a reST literal block) → ``text:``, the
  indented block being a Markdown code block already;
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


def _literal_blocks(text: str) -> str:
    # reST "text::" + blank line + indented block is a code block shown after "text:"; the
    # indented block already is a Markdown code block, so only the marker changes
    lines = text.split("\n")
    for i, line in enumerate(lines[:-2]):
        nxt = lines[i + 2]
        if (
            line.rstrip().endswith("::")
            and not lines[i + 1].strip()
            and _indent(nxt) > _indent(line)
        ):
            stripped = line.rstrip()[:-2]
            lines[i] = stripped.rstrip() if stripped.endswith(" ") else stripped + ":"
    return "\n".join(lines)


def rst_to_markdown(text: str, obj: griffe.Object) -> str:
    """Rewrite the reST roles and math directives of one docstring (see the module)."""
    text = _literal_blocks(_math_blocks(text))
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
