from tinyledger import Ledger
from tinyledger.rates_gen import rate_for
from tinyledger.report import legacy_account_name, summarize


def test_balance(ledger: Ledger) -> None:
    assert ledger.balance() == 249370


def test_summarize(ledger: Ledger) -> None:
    assert summarize(ledger, limit=1000) == {"coffee": -630, "salary": 1000}


def test_rate_for() -> None:
    assert rate_for("USD") == 920_000


def test_legacy_account_name() -> None:
    assert legacy_account_name(101) == "bank-1"
