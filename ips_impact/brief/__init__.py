"""Policy briefs (NL/FR/EN; HTML, PDF, Markdown, Word) from a fitted ``Analysis``.

>>> import ips_impact as ii                                            # doctest: +SKIP
>>> ii.brief(analysis, lang="fr", format="pdf", path="brief_fr.pdf")   # doctest: +SKIP

Every number comes from a result of the analysis (no number is typed by hand), every
word from the language's catalogue (``catalogues/<lang>.toml``), and the disclosure
policy (:mod:`ips_impact.disclosure`) is applied before anything is laid out; the
written file is then scanned by :func:`ips_impact.disclosure.check`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ips_impact.brief.content import Brief, build
from ips_impact.brief.fmt import LANGS
from ips_impact.brief.render import FORMATS, write
from ips_impact.disclosure import DisclosurePolicy, DisclosureRecord, check
from ips_impact.errors import DisclosureError, PlanError

__all__ = ["brief", "BriefOutput", "build", "Brief", "LANGS", "FORMATS"]


@dataclasses.dataclass(frozen=True)
class BriefOutput:
    """What :func:`brief` wrote: the file(s), the disclosure record and the checker's verdict."""

    path: Path
    files: tuple[Path, ...]
    lang: str
    format: str
    record: DisclosureRecord

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (for the output checker's log)."""
        return {"path": str(self.path), "files": [str(f) for f in self.files], "lang": self.lang,
                "format": self.format, "disclosure": self.record.to_dict()}


def brief(
    analysis: Any,
    *,
    lang: str = "nl",
    format: str = "html",  # noqa: A002 - the public name of the option
    path: str | Path,
    policy: DisclosurePolicy | str | Path | Mapping[str, Any] | None = None,
) -> BriefOutput:
    """Write the policy brief of ``analysis``.

    Parameters
    ----------
    analysis
        A fitted ``Analysis`` (from ``ii.run_plan`` or ``ii.load_analysis``).
    lang
        ``"nl"`` (nl-BE), ``"fr"`` (fr-BE) or ``"en"``.
    format
        ``"html"`` (self-contained, figures as inline SVG), ``"pdf"`` (Typst),
        ``"md"`` (figures as SVG files beside it) or ``"docx"``.
    path
        File to write.
    policy
        Disclosure policy: ``None`` (defaults: 10 persons, counts rounded to 5), a
        :class:`~ips_impact.disclosure.DisclosurePolicy`, a mapping or a TOML file.

    Returns
    -------
    BriefOutput
        The files written and the disclosure record; the record is also written beside
        the brief as ``<name>.disclosure.json``.

    Raises
    ------
    DisclosureError
        When the rendered brief fails :func:`ips_impact.disclosure.check` (then the file
        is removed: nothing disclosive is left on disk).
    """
    if lang not in LANGS:
        raise PlanError(f"unknown brief language {lang!r}", fix=f"use one of {list(LANGS)}")
    if format not in FORMATS:
        raise PlanError(f"unknown brief format {format!r}", fix=f"use one of {list(FORMATS)}")
    pol = DisclosurePolicy.coerce(policy)
    return _write_checked(build(analysis, lang, pol), path, format, pol)


def _write_checked(content: Brief, path: str | Path, format: str,  # noqa: A002
                   pol: DisclosurePolicy) -> BriefOutput:
    out = write(content, path, format)
    report = check(out["path"], policy=pol)
    if not report.passed:
        for f in out["files"]:
            Path(f).unlink(missing_ok=True)
        raise DisclosureError(str(report), fix="tighten the analysis or the policy; "
                              "the brief was not kept")
    p = Path(out["path"])
    record = dataclasses.replace(content.record, output=str(p.name))
    p.with_suffix(".disclosure.json").write_text(
        json.dumps(record.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return BriefOutput(p, tuple(Path(f) for f in out["files"]), content.lang, format, record)


def _write_many(analysis: Any, *, langs: Sequence[str], formats: Sequence[str], out: str | Path,
                policy: DisclosurePolicy | str | Path | Mapping[str, Any] | None = None
                ) -> list[BriefOutput]:
    """Write ``out/brief_<lang>.<format>`` for every language and format.

    The content of each language is built once and laid out in every format (the
    figures are drawn once per language).
    """
    pol = DisclosurePolicy.coerce(policy)
    written = []
    for lang in langs:
        if lang not in LANGS:
            raise PlanError(f"unknown brief language {lang!r}", fix=f"use one of {list(LANGS)}")
        content = build(analysis, lang, pol)
        for fmt in formats:
            if fmt not in FORMATS:
                raise PlanError(f"unknown brief format {fmt!r}", fix=f"use one of {list(FORMATS)}")
            written.append(_write_checked(content, Path(out) / f"brief_{lang}.{fmt}", fmt, pol))
    return written
