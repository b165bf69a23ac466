"""Numbers, percentages, money and p-values in the reader's language (Babel).

One :class:`Formatter` per language: ``nl`` → nl-BE, ``fr`` → fr-BE, ``en`` → English.
Every number of a brief goes through it, so a brief in Dutch reads "7,5 procentpunt",
in French "7,5 points de pourcentage" (with fr-BE's narrow no-break space as thousands
mark: "1 183") and in English "7.5 percentage points"; money is "€ 110" (nl-BE),
"110 €" (fr-BE), "€110" (en).

The rounding rule is in one place: :meth:`Formatter.rounded` gives the value a reader
sees, so a test can parse the rendered text back (:meth:`Formatter.parse`) and compare.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

from babel import Locale
from babel.numbers import format_currency, format_decimal, parse_decimal

__all__ = ["Formatter", "LOCALES", "LANGS"]

#: Brief language → Babel locale.
LOCALES: dict[str, str] = {"nl": "nl_BE", "fr": "fr_BE", "en": "en"}
LANGS: tuple[str, ...] = tuple(LOCALES)

MINUS = "\u2212"  # a real minus sign reads better than a hyphen in running text


class Formatter:
    """Locale-aware formatting of the numbers of a brief.

    Parameters
    ----------
    lang
        ``"nl"``, ``"fr"`` or ``"en"``.
    """

    def __init__(self, lang: str) -> None:
        if lang not in LOCALES:
            from ips_impact.errors import PlanError

            raise PlanError(f"unknown brief language {lang!r}", fix=f"use one of {list(LANGS)}")
        self.lang = lang
        self.locale = Locale.parse(LOCALES[lang])
        money = self.locale.currency_formats["standard"].pattern.split(";")[0]
        self._money_pattern = money.replace(".00", "")

    # --- rounding (what the reader sees) -------------------------------------------------
    @staticmethod
    def rounded(x: float, digits: int) -> float:
        """``x`` rounded half-even to ``digits`` decimals, as displayed."""
        if x is None or not math.isfinite(float(x)):
            return math.nan
        q = Decimal(1).scaleb(-digits)
        if digits < 0:  # to tens, hundreds…: quantize in units of 10**-digits
            d = Decimal(repr(float(x))) / q
            return float(d.quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * q)
        return float(Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_EVEN))

    # --- basic ----------------------------------------------------------------------------
    def number(self, x: float, digits: int = 1, *, sign: bool = False) -> str:
        """``x`` with ``digits`` decimals and the locale's marks (``7,5`` / ``7.5``)."""
        v = self.rounded(x, digits)
        if not math.isfinite(v):
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        text = format_decimal(abs(v), format=pattern, locale=self.locale)
        if v < 0:
            return MINUS + text
        return ("+" + text) if (sign and v > 0) else text

    def count(self, n: float) -> str:
        """Format a count with the locale's thousands mark (``1.185``, ``1 185``, ``1,185``)."""
        return self.number(n, 0)

    def money(self, x: float, digits: int = 0) -> str:
        """Euros in the locale's pattern, whole euros by default (``€ 110``, ``110 €``)."""
        v = self.rounded(x, digits)
        if not math.isfinite(v):
            return "—"
        pattern = self._money_pattern if digits == 0 else self._money_pattern.replace(
            "#,##0", "#,##0." + "0" * digits)
        text = format_currency(abs(v), "EUR", format=pattern, locale=self.locale,
                               currency_digits=False)
        return (MINUS + text) if v < 0 else text

    def p_value(self, p: float) -> str:
        """``0,088`` / ``< 0,001``: three decimals, never ``0,000``."""
        if p is None or not math.isfinite(float(p)):
            return "—"
        if float(p) < 0.001:
            return "< " + self.number(0.001, 3)
        return self.number(p, 3)

    # --- parsing back (tests) ----------------------------------------------------------
    def parse(self, text: str) -> float:
        """Read a number formatted by this formatter back (sign, marks, currency)."""
        t = text.strip().replace(MINUS, "-").replace("€", "").replace("<", "")
        t = t.replace("\u00a0", "").replace("\u202f", " ").strip()
        neg = t.startswith("-")
        t = t.lstrip("+-").strip()
        group = self.locale.number_symbols["latn"]["group"]
        if group in ("\u202f", "\u00a0"):
            t = t.replace(" ", "")
        v = float(parse_decimal(t, locale=self.locale, strict=False))
        return -v if neg else v
