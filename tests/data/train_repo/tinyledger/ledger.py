"""The ledger: labelled entries in one currency."""

from __future__ import annotations

from dataclasses import dataclass, field


class LedgerError(Exception):
    """A ledger operation that cannot be done."""


@dataclass
class Ledger:
    """Entries in one currency, in the order they were added."""

    currency: str
    entries: list[tuple[str, int]] = field(default_factory=list)

    def add_entry(self, label: str, cents: int) -> None:
        """Add an entry; the label must not be empty."""
        if not label:
            raise LedgerError("an entry needs a label")
        self.entries.append((label, cents))

    def balance(self) -> int:
        """The sum of all entries, in cents."""
        total = 0
        for _label, cents in self.entries:
            total += cents
        return total

    def __len__(self) -> int:
        return len(self.entries)

    def labels(self) -> list[str]:
        """The distinct labels, sorted."""
        seen = {label for label, _cents in self.entries}
        return sorted(seen)
