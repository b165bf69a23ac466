"""Statistical disclosure control for every output meant for publication.

A :class:`DisclosurePolicy` (defaults, or a TOML file) states what may be published:

* at least ``min_persons`` (default 10) persons behind any count, cell, mean,
  subgroup estimate or risk-set step;
* published counts rounded to a multiple of ``rounding`` (default 5);
* a zero is disclosive when it sits beside a small cell of the same table (it
  tells the reader where the few persons are): ``zeros_disclosive``;
* no minima or maxima of person-level values (``allow_extremes = false``);
* differencing: when a published total is the sum of published parts, one
  suppressed part could be recovered by subtraction, so a second part is
  suppressed too (secondary suppression);
* a regression is published only with at least ``min_residual_df`` (default 10)
  residual degrees of freedom.

Each output gets a :class:`DisclosureRecord` (passed, or suppressed and why) that an
output checker can read (:meth:`DisclosureRecord.to_dict`). :func:`check` scans a
rendered output (HTML, Markdown, text, PDF, Word) for small counts and for anything
shaped like a person/household key or a Belgian national register number; the
matched text is never echoed (only its kind and position).

>>> from ips_impact import disclosure
>>> disclosure.DisclosurePolicy().round_count(1183)
1185
>>> disclosure.check("Flanders: n = 7 persons").passed
False
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ips_impact.errors import DisclosureError

__all__ = [
    "DisclosurePolicy",
    "DisclosureRecord",
    "CheckReport",
    "Finding",
    "check",
    "looks_like_national_number",
]


@dataclasses.dataclass(frozen=True)
class DisclosurePolicy:
    """What may be published (see the module docstring for each rule)."""

    min_persons: int = 10
    rounding: int = 5
    zeros_disclosive: bool = True
    allow_extremes: bool = False
    differencing: bool = True
    min_residual_df: int = 10

    def __post_init__(self) -> None:
        for name in ("min_persons", "rounding", "min_residual_df"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DisclosureError(
                    f"disclosure policy: '{name}' must be a positive integer; you passed {value!r}",
                    fix=f"set {name} = 10 (or another positive integer) in the policy file",
                )

    @classmethod
    def from_toml(cls, path: str | Path) -> DisclosurePolicy:
        """Read a policy from a TOML file (a ``[disclosure]`` table or top-level keys)."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise DisclosureError(f"disclosure policy file {p} could not be read: {exc}",
                                  fix="pass a readable TOML file") from None
        return cls.from_mapping(data.get("disclosure", data))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DisclosurePolicy:
        """Policy from a mapping; unknown keys are refused with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DisclosureError(
                f"disclosure policy: unknown setting(s) {unknown}",
                fix=f"use only {sorted(known)}",
            )
        return cls(**dict(data))

    @classmethod
    def coerce(
        cls, policy: DisclosurePolicy | str | Path | Mapping[str, Any] | None
    ) -> DisclosurePolicy:
        """Make a policy from ``None`` (defaults), a policy, a mapping or a TOML path."""
        if policy is None:
            return cls()
        if isinstance(policy, DisclosurePolicy):
            return policy
        if isinstance(policy, Mapping):
            return cls.from_mapping(policy)
        return cls.from_toml(policy)

    # --- rules ---------------------------------------------------------------------

    def round_count(self, n: float) -> int:
        """``n`` rounded to the nearest multiple of ``rounding`` (halves away from zero)."""
        r = self.rounding
        return int((int(n) + r // 2) // r * r) if n >= 0 else -self.round_count(-n)

    def count_ok(self, n: float | None) -> bool:
        """Say whether ``n`` persons may be shown (``n >= min_persons``)."""
        return n is not None and n == n and n >= self.min_persons

    def estimate_ok(self, n: float | None, df: float | None = None) -> bool:
        """Say whether an estimate on ``n`` persons with ``df`` residual df may be shown."""
        if not self.count_ok(n):
            return False
        return df is None or df != df or df >= self.min_residual_df

    def suppress_cells(
        self, counts: Mapping[str, float], *, total_published: bool = True
    ) -> dict[str, str]:
        """Cells of one table to suppress, with the reason for each.

        Primary suppression: ``0 < n < min_persons``. A zero beside a small cell is
        suppressed when ``zeros_disclosive``. Differencing: when the parts add up to a
        published total and exactly one part is suppressed, the smallest other part
        is suppressed too.
        """
        out: dict[str, str] = {}
        small = {k for k, n in counts.items() if 0 < n < self.min_persons}
        for k in small:
            out[k] = f"fewer than {self.min_persons} persons"
        if self.zeros_disclosive and small:
            for k, n in counts.items():
                if n == 0:
                    out[k] = "zero beside a small cell"
        if self.differencing and total_published and len(out) == 1 and len(counts) > 1:
            rest = sorted((n, k) for k, n in counts.items() if k not in out)
            out[rest[0][1]] = "recoverable by subtraction from the published total"
        return out


@dataclasses.dataclass(frozen=True)
class DisclosureRecord:
    """What disclosure control did to one output: ``passed`` or ``suppressed`` and why."""

    output: str
    policy: DisclosurePolicy
    suppressed: tuple[tuple[str, str], ...] = ()
    rounded: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``"suppressed"`` when anything was withheld, else ``"passed"``."""
        return "suppressed" if self.suppressed else "passed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record for the output checker."""
        return {
            "output": self.output,
            "status": self.status,
            "policy": dataclasses.asdict(self.policy),
            "suppressed": [{"item": i, "reason": r} for i, r in self.suppressed],
            "rounded": list(self.rounded),
        }


class RecordBuilder:
    """Collects suppressions while an output is assembled; :meth:`record` freezes them."""

    def __init__(self, output: str, policy: DisclosurePolicy) -> None:
        self.output = output
        self.policy = policy
        self._suppressed: list[tuple[str, str]] = []
        self._rounded: list[str] = []

    def estimate(self, item: str, n: float | None, df: float | None = None) -> bool:
        ok = self.policy.estimate_ok(n, df)
        if not ok:
            why = (f"fewer than {self.policy.min_persons} persons"
                   if not self.policy.count_ok(n)
                   else f"fewer than {self.policy.min_residual_df} residual degrees of freedom")
            self._suppressed.append((item, why))
        return ok

    def count(self, item: str, n: float) -> int | None:
        if not self.policy.count_ok(n):
            self._suppressed.append((item, f"fewer than {self.policy.min_persons} persons"))
            return None
        self._rounded.append(item)
        return self.policy.round_count(n)

    def suppress(self, item: str, reason: str) -> None:
        self._suppressed.append((item, reason))

    def record(self) -> DisclosureRecord:
        """Freeze what was collected into a :class:`DisclosureRecord`."""
        return DisclosureRecord(self.output, self.policy, tuple(self._suppressed),
                                tuple(self._rounded))


# --- the output checker -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem in a rendered output; the offending text itself is not kept."""

    kind: str  # "national_register_number" | "key" | "small_cell"
    line: int
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind} ({self.detail})"


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """Result of :func:`check`: ``passed`` and the findings (kind and line only)."""

    source: str
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        """No finding."""
        return not self.findings

    def kinds(self) -> set[str]:
        """Return the kinds of finding present."""
        return {f.kind for f in self.findings}

    def __str__(self) -> str:
        if self.passed:
            return f"disclosure check of {self.source}: passed"
        lines = [f"disclosure check of {self.source}: {len(self.findings)} finding(s)"]
        lines += [f"  {f}" for f in self.findings]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`~ips_impact.errors.DisclosureError` when anything was found."""
        if not self.passed:
            raise DisclosureError(str(self),
                                  fix="suppress or aggregate the flagged cells before publishing")


_NRN = re.compile(r"(?<![\w.])(\d{2}[.\- ]?\d{2}[.\- ]?\d{2}[.\- ]?\d{3}[.\- ]?\d{2})(?![\w])")
# pseudonymised keys: one capital then 7+ capitals/digits, with at least two digits and
# two letters (P24RE66YAIH, HDBNKQ7U225) — ordinary words and codes like HC2, CR2 do not qualify
_KEY = re.compile(r"\b[A-Z][A-Z0-9]{7,}\b")
# counts written out: "n = 7", "N=7", "(n 7)", "7 persons/personen/personnes/participants"
_N_EQ = re.compile(r"\b[nN]\s*[=:]\s*(\d[\d\u00a0\u202f .,]*)")
_N_WORD = re.compile(
    r"\b(\d{1,3})\s+(?:persons?|people|personen|persones?|personnes?|participants?|deelnemers?|"
    r"members?|leden|membres?|households?|huishoudens?|ménages?|at risk|à risque|at risico)\b",
    re.IGNORECASE,
)
_RATE = re.compile(r"[^.;:\d]{0,24}?\b(?:sur|op|in every|out of|per|of every|pour)\s+\d", re.I)
# a person-level extreme written out: "max = 2,604", "minimum: 960" (not "minimum detectable")
_EXTREME = re.compile(r"\b(?:min|max|minimum|maximum|minimal|maximal|maximaal|minimaal)\b"
                      r"\s*[=:]?\s*[\u2212-]?[€]?\s?\d", re.I)
_PER_BEFORE = re.compile(r"\b(?:every|per|pour|op|sur|chaque|elke)\s*$", re.I)
_TAG = re.compile(r"<[^>]+>")


def looks_like_national_number(text: str) -> bool:
    """Say whether ``text`` (11 digits, separators allowed) passes the mod-97 check."""
    digits = re.sub(r"[.\- ]", "", text)
    if not re.fullmatch(r"\d{11}", digits):
        return False
    body, check_digits = int(digits[:9]), int(digits[9:])
    return 97 - body % 97 == check_digits or 97 - (2_000_000_000 + body) % 97 == check_digits


def _as_int(text: str) -> int | None:
    """Leading count of ``text``, reading thousands marks of any locale (1,183 / 1.183 / 1 183)."""
    m = re.match(r"\d+(?:[\u00a0\u202f .,]\d{3})*(?![\d,.]\d)", text)
    return int(re.sub(r"\D", "", m.group(0))) if m else None


_SUFFIXES = {".html", ".htm", ".md", ".txt", ".pdf", ".docx", ".tex", ".csv", ".json", ".svg",
             ".typ"}


def _read_output(path_or_text: str | Path) -> tuple[str, str]:
    """Read a rendered output; return its text and a name for it."""
    if isinstance(path_or_text, Path) or (
        isinstance(path_or_text, str) and "\n" not in path_or_text and len(path_or_text) < 4096
        and Path(path_or_text).suffix.lower() in _SUFFIXES
        and Path(path_or_text).exists()
    ):
        p = Path(path_or_text)
        suffix = p.suffix.lower()
        if suffix == ".pdf":
            import pypdfium2 as pdfium

            doc = pdfium.PdfDocument(str(p))
            try:
                text = "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
            finally:
                doc.close()
        elif suffix == ".docx":
            import docx

            d = docx.Document(str(p))
            parts = [para.text for para in d.paragraphs]
            for table in d.tables:
                for row in table.rows:
                    parts.append(" | ".join(cell.text for cell in row.cells))
            text = "\n".join(parts)
        else:
            text = p.read_text(encoding="utf-8")
        return text, str(p)
    return str(path_or_text), "text"


def check(
    path_or_text: str | Path,
    *,
    policy: DisclosurePolicy | str | Path | Mapping[str, Any] | None = None,
    keys: Iterable[str] = (),
) -> CheckReport:
    """Scan a rendered output for disclosure risks.

    Parameters
    ----------
    path_or_text
        A file (``.html``, ``.md``, ``.txt``, ``.pdf``, ``.docx``, ``.tex``, ``.svg`` …) or
        the rendered text itself.
    policy
        The policy whose ``min_persons`` defines a small cell (default 10).
    keys
        Known person/household keys to look for verbatim (e.g. the study's keys).

    Returns
    -------
    CheckReport
        One :class:`Finding` per problem: ``national_register_number`` (11 digits with a
        valid mod-97 check), ``key`` (a token shaped like a pseudonymised key, or one of
        ``keys``), ``small_cell`` (a count ``0 < n < min_persons`` written as ``n = …`` or
        "… persons"), ``extreme`` (a minimum or maximum written out, unless the policy
        allows extremes). The offending text is never copied into the report.
    """
    pol = DisclosurePolicy.coerce(policy)
    text, source = _read_output(path_or_text)
    if "<" in text and ">" in text:
        # drop embedded base64 images and markup; keep the text a reader sees
        text = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "", text)
        text = re.sub(r"<(style|script)[^>]*>.*?</\1>", "", text, flags=re.S | re.I)
        text = _TAG.sub(" ", text)
        text = text.replace("&nbsp;", " ").replace("&#8239;", " ").replace("&amp;", "&")
    known = {k for k in keys if k}
    findings: list[Finding] = []
    for i, line in enumerate(text.splitlines(), start=1):
        for m in _NRN.finditer(line):
            if looks_like_national_number(m.group(1)):
                findings.append(Finding("national_register_number", i,
                                        "11 digits with a valid mod-97 check"))
        for m in _KEY.finditer(line):
            tok = m.group(0)
            n_dig = sum(c.isdigit() for c in tok)
            if n_dig >= 2 and len(tok) - n_dig >= 2:
                findings.append(Finding("key", i,
                                        f"{len(tok)} capitals and digits, shaped like a key"))
        for k in known:
            if k in line:
                findings.append(Finding("key", i, "a known person or household key"))
        for m in _N_EQ.finditer(line):
            n = _as_int(m.group(1))
            if n is not None and 0 < n < pol.min_persons:
                findings.append(Finding("small_cell", i, f"count below {pol.min_persons} (n = …)"))
        for m in _N_WORD.finditer(line):
            n = int(m.group(1))
            # "7 personnes de plus sur 100" is a rate per 100 people, not a cell
            if _RATE.match(line, m.end()) or _PER_BEFORE.search(line[:m.start()]):
                continue
            if 0 < n < pol.min_persons:
                findings.append(Finding("small_cell", i, f"below {pol.min_persons} (persons)"))
        if not pol.allow_extremes:
            for _m in _EXTREME.finditer(line):
                findings.append(Finding("extreme", i, "a minimum or maximum of persons' values"))
    return CheckReport(source, tuple(findings))


def check_counts(counts: Mapping[str, float] | Sequence[tuple[str, float]],
                 policy: DisclosurePolicy | None = None) -> dict[str, str]:
    """Cells of one table to suppress (see :meth:`DisclosurePolicy.suppress_cells`)."""
    pol = policy or DisclosurePolicy()
    return pol.suppress_cells(dict(counts))
