import pytest

from tinyledger import Ledger


@pytest.fixture
def ledger() -> Ledger:
    book = Ledger("EUR")
    book.add_entry("coffee", -350)
    book.add_entry("salary", 250000)
    book.add_entry("coffee", -280)
    return book
