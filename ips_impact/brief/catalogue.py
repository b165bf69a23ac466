"""Per-language message catalogues (``catalogues/{nl,fr,en}.toml``) and text with numbers.

A catalogue message is text with ``{placeholders}``; :func:`compose` fills them with
:class:`Num` (a formatted number that remembers which result it comes from) or plain
text, giving a :class:`Text`: a tuple of segments a renderer lays out (HTML wraps each
number in ``<span class="num" data-ref=…>`` so a test can trace it to the Analysis).
"""

from __future__ import annotations

import dataclasses
import functools
import string
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

__all__ = ["Num", "Text", "Catalogue", "compose", "load_catalogue"]


@dataclasses.dataclass(frozen=True)
class Num:
    """A number as displayed, with where it comes from.

    ``ref`` is ``"<entry id>|<field>|<transform>"`` (e.g. ``"itt.work_on_di.k10|estimate|pp"``)
    or ``"study|<key>|count"``/``"const|…"`` for design facts and constants; ``value`` is the
    displayed value (rounded) and ``text`` its formatted form.
    """

    text: str
    value: float
    ref: str


Segment = str | Num


@dataclasses.dataclass(frozen=True)
class Text:
    """Running text: literal strings and :class:`Num` segments."""

    segments: tuple[Segment, ...]

    def plain(self) -> str:
        """Return the text a reader sees."""
        return "".join(s.text if isinstance(s, Num) else s for s in self.segments)

    def numbers(self) -> tuple[Num, ...]:
        """Return the numbers in the text, in order."""
        return tuple(s for s in self.segments if isinstance(s, Num))

    def __add__(self, other: Text | str) -> Text:
        o = other.segments if isinstance(other, Text) else (other,)
        return Text(self.segments + o)


class Catalogue:
    """The messages of one language; ``cat["text.after"]`` looks up a dotted key."""

    def __init__(self, lang: str, data: Mapping[str, Any]) -> None:
        self.lang = lang
        self._data = data

    def get(self, key: str, default: str | None = None) -> str:
        """Message ``key`` (dotted path); ``default`` when absent, else a KeyError naming it."""
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is not None:
                    return default
                raise KeyError(f"message {key!r} missing from the {self.lang} catalogue")
            node = node[part]
        if not isinstance(node, str):
            raise KeyError(f"message {key!r} of the {self.lang} catalogue is not a string")
        return node

    __getitem__ = get

    def has(self, key: str) -> bool:
        """Tell whether ``key`` is in the catalogue."""
        try:
            self.get(key)
        except KeyError:
            return False
        return True

    def keys(self) -> set[str]:
        """Every dotted key of the catalogue."""
        out: set[str] = set()

        def walk(node: Mapping[str, Any], prefix: str) -> None:
            for k, v in node.items():
                if isinstance(v, Mapping):
                    walk(v, f"{prefix}{k}.")
                else:
                    out.add(prefix + k)

        walk(self._data, "")
        return out


@functools.cache
def load_catalogue(lang: str) -> Catalogue:
    """Read ``catalogues/<lang>.toml`` shipped with the package."""
    text = resources.files("ips_impact.brief").joinpath("catalogues", f"{lang}.toml").read_text(
        encoding="utf-8")
    return Catalogue(lang, tomllib.loads(text))


def compose(message: str, **values: Num | Text | str) -> Text:
    """Fill ``{name}`` fields of ``message`` with numbers, texts or strings."""
    segments: list[Segment] = []
    for literal, field, _spec, _conv in string.Formatter().parse(message):
        if literal:
            segments.append(literal)
        if field is None:
            continue
        if field not in values:
            raise KeyError(f"message needs {{{field}}}: {message!r}")
        v = values[field]
        if isinstance(v, Text):
            segments.extend(v.segments)
        else:
            segments.append(v)
    return Text(tuple(segments))
