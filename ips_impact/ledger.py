"""The drop ledger: every row set aside, repaired or assumed, with its reason.

Nothing is dropped silently. Each entry counts rows (never lists keys), and when the
rows belong to randomized persons it counts them per arm, so that differential
attrition is visible at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Ledger", "LedgerEntry", "LEDGER_COLUMNS"]

LEDGER_COLUMNS = ("table", "reason", "column", "n_rows", "n_persons", "n_treated", "n_control", "action")


@dataclass(frozen=True)
class LedgerEntry:
    """One kind of problem in one table."""

    table: str
    reason: str
    n_rows: int
    column: str | None = None
    n_persons: int | None = None
    n_treated: int | None = None
    n_control: int | None = None
    action: str = "dropped"


class Ledger:
    """An append-only record, frozen once the study is built."""

    def __init__(self, entries: tuple[LedgerEntry, ...] = ()) -> None:
        self._entries: list[LedgerEntry] = list(entries)
        self._frozen = False

    def add(
        self,
        table: str,
        reason: str,
        n_rows: int,
        *,
        column: str | None = None,
        n_persons: int | None = None,
        n_treated: int | None = None,
        n_control: int | None = None,
        action: str = "dropped",
    ) -> None:
        """Record ``n_rows`` rows of ``table`` set aside for ``reason`` (nothing when ``n_rows`` is 0).

        Raises ``RuntimeError`` once the ledger is frozen.
        """
        if self._frozen:
            raise RuntimeError("the ledger of a built study cannot change")
        if n_rows <= 0:
            return
        self._entries.append(LedgerEntry(table, reason, int(n_rows), column,
                                         None if n_persons is None else int(n_persons),
                                         None if n_treated is None else int(n_treated),
                                         None if n_control is None else int(n_control), action))

    def freeze(self) -> Ledger:
        """Freeze the ledger (no more entries) and return it."""
        self._frozen = True
        return self

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        """The entries in the order they were added."""
        return tuple(self._entries)

    def to_frame(self) -> pd.DataFrame:
        """One row per entry: table, reason, column, n_rows, n_persons, n_treated, n_control, action."""
        rows = [e.__dict__ for e in self._entries]
        frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
        for c in ("n_rows", "n_persons", "n_treated", "n_control"):
            frame[c] = frame[c].astype("Int64")
        return frame

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        if not self._entries:
            return "Ledger(empty: nothing dropped or repaired)"
        return "Ledger\n" + self.to_frame().to_string(index=False)

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, na_rep="")
