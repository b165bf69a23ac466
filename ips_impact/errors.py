"""Typed exceptions and warnings of :mod:`ips_impact`.

Every data problem raises a subclass of :class:`IpsImpactError`. Its message names
the table, the column, how many rows are affected, up to five example keys and the
fix, so that a user never has to read a traceback from inside pandas or numpy.

Example keys are shown only in errors raised while the data are being loaded (the
user's own input); they never reach a result, a table or a brief. Values that look
like national register numbers are never echoed: the row positions are shown instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "IpsImpactError",
    "DataContractError",
    "LinkageError",
    "DesignError",
    "EstimationError",
    "PlanError",
    "DisclosureError",
    "UsageError",
    "IpsImpactWarning",
    "DataWarning",
    "SmallSampleWarning",
    "EstimationWarning",
    "format_examples",
    "is_national_number",
    "mask_national_numbers",
]

_MAX_EXAMPLES = 5
# 11 digits, optionally written 85.07.30-033.61 / 850730 033 61; not inside a longer number
_NRN_TEXT = re.compile(r"(?<![\d])(\d{2}[.\- ]?\d{2}[.\- ]?\d{2}[.\- ]?\d{3}[.\- ]?\d{2})(?![\d])")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_national_number(digits: str) -> bool:
    """Tell whether 11 digits have the structure of a Belgian national register number.

    ``YYMMDD`` birth date (month 0–12, or +20 / +40 for bis numbers; day 0–31 and
    within the month; 0 when the date is unknown), a serial 001–998, and the check
    ``97 - (YYMMDDSSS mod 97)`` (born before 2000) or ``97 - (2YYMMDDSSS mod 97)``
    (born from 2000).
    """
    d = re.sub(r"[.\- ]", "", digits)
    if len(d) != 11 or not d.isdigit():
        return False
    month, day, serial = int(d[2:4]), int(d[4:6]), int(d[6:9])
    if month >= 40:
        month -= 40
    elif month >= 20:
        month -= 20
    if month > 12 or day > 31 or not 1 <= serial <= 998:
        return False
    if month and day > _DAYS[month - 1]:
        return False
    body, check = int(d[:9]), int(d[9:])
    return 97 - body % 97 == check or 97 - (2_000_000_000 + body) % 97 == check


def mask_national_numbers(text: str) -> str:
    """Replace every substring shaped like a national register number by ``«masked»``."""
    return _NRN_TEXT.sub(lambda m: "«masked»" if is_national_number(m.group(1)) else m.group(1), text)


def format_examples(values: Iterable[Any], *, limit: int = _MAX_EXAMPLES) -> str:
    """Render up to ``limit`` example values as ``'a', 'b', … (+N more)``."""
    vals = list(values)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in vals[:limit])
    more = len(vals) - limit
    return shown + (f", … (+{more} more)" if more > 0 else "")


class IpsImpactError(Exception):
    """Base class of every error raised by ``ips_impact``.

    Parameters
    ----------
    problem
        One sentence saying what is wrong.
    table, column
        Where the problem is (``None`` when it does not apply).
    n_rows
        How many rows are affected.
    examples
        Up to five example keys or values (more are counted, not shown).
    fix
        What the user should do.
    """

    def __init__(
        self,
        problem: str,
        *,
        table: str | None = None,
        column: str | Sequence[str] | None = None,
        n_rows: int | None = None,
        examples: Iterable[Any] | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.table = table
        self.column = column
        self.n_rows = n_rows
        ex = list(examples) if examples is not None else []
        self.examples = ex[:_MAX_EXAMPLES]
        self.fix = fix
        # nothing shaped like a national register number leaves the library in a message
        super().__init__(mask_national_numbers(self._render(ex)))

    def _render(self, examples: list[Any]) -> str:
        where = []
        if self.table is not None:
            where.append(f"table '{self.table}'")
        if self.column is not None:
            cols = [self.column] if isinstance(self.column, str) else list(self.column)
            where.append("column " + ", ".join(f"'{c}'" for c in cols))
        head = (", ".join(where) + ": ") if where else ""
        msg = head + self.problem
        if self.n_rows is not None:
            msg += f" ({self.n_rows} row{'s' if self.n_rows != 1 else ''})"
        if examples:
            msg += f". Examples: {format_examples(examples)}"
        if not msg.endswith("."):
            msg += "."
        if self.fix:
            msg += f" Fix: {self.fix}"
        return msg


class DataContractError(IpsImpactError, ValueError):
    """Input data break the data contract (missing column, bad values, duplicates…)."""


class LinkageError(IpsImpactError, ValueError):
    """Tables cannot be linked (no common persons, households in conflict…)."""


class DesignError(IpsImpactError, ValueError):
    """The randomization design cannot support the request (no contrast, one arm…)."""


class EstimationError(IpsImpactError, ValueError):
    """An estimator cannot be fitted as asked (bad option, no variation, too few clusters…)."""


class PlanError(IpsImpactError, ValueError):
    """An analysis plan is malformed or asks for something the study does not hold."""


class DisclosureError(IpsImpactError, ValueError):
    """Output would reveal a cell below the minimum publishable size or a person key."""


class UsageError(IpsImpactError, ValueError):
    """A command or function was called wrongly (bad option value, missing file…).

    The command line maps it to exit code 64 (``EX_USAGE``), before any work is done.
    """


class IpsImpactWarning(UserWarning):
    """Base class of the warnings of ``ips_impact`` (national-register-like values masked)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_national_numbers(a) if isinstance(a, str) else a for a in args))


class DataWarning(IpsImpactWarning):
    """Data were repaired or set aside (see the study's ledger)."""


class SmallSampleWarning(IpsImpactWarning):
    """A subgroup, cluster count or risk set is too small for reliable inference."""


class EstimationWarning(IpsImpactWarning):
    """An estimate was computed but deserves caution (weak instrument, non-convergence…)."""
