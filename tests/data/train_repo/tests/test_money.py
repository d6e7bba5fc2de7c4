import pytest

from tinyledger import money


@pytest.mark.parametrize(
    ("text", "cents"), [("12.34", 1234), ("-3.5", -350), ("+1,000", 100000), ("0.07", 7)]
)
def test_parse_amount(text: str, cents: int) -> None:
    assert money.parse_amount(text) == cents


def test_parse_amount_rejects_three_decimals() -> None:
    with pytest.raises(ValueError):
        money.parse_amount("1.234")


def test_format_amount() -> None:
    assert money.format_amount(-350) == "-3.50"


def test_clamp() -> None:
    assert money.clamp(5, 0, 3) == 3
    assert money.clamp(-5, 0, 3) == 0


def test_round_half_even_exists() -> None:
    # only checks that the name is there: round_half_even itself is never run
    assert callable(money.round_half_even)
