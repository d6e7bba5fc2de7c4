"""tinyledger: a tiny double-entry ledger in whole cents."""

from tinyledger.ledger import Ledger, LedgerError
from tinyledger.money import format_amount, parse_amount

__all__ = ["Ledger", "LedgerError", "format_amount", "parse_amount"]
__version__ = "0.3.0"
