"""Amounts in whole cents: parsing, formatting, rounding."""

from __future__ import annotations


def _clean(text: str) -> str:
    """Strip spaces, thousands separators and a leading plus sign."""
    text = text.strip().replace(",", "").replace(" ", "")
    return text[1:] if text.startswith("+") else text


def parse_amount(text: str) -> int:
    """Parse ``"12.34"`` or ``"-3.5"`` into whole cents.

    Raises ValueError for more than two decimals.
    """
    text = _clean(text)
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    if len(frac) > 2:
        raise ValueError(f"too many decimals in {text!r}")
    return sign * (int(whole or "0") * 100 + int(frac.ljust(2, "0")))


def format_amount(cents: int) -> str:
    """Format whole cents as ``"-3.50"``."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def round_half_even(cents: int, step: int) -> int:
    """Round ``cents`` to a multiple of ``step``, ties to the even multiple."""
    quotient, rest = divmod(cents, step)
    if rest * 2 > step or (rest * 2 == step and quotient % 2 == 1):
        quotient += 1
    return quotient * step


def clamp(cents: int, low: int, high: int) -> int:
    """Keep ``cents`` between ``low`` and ``high``."""
    if cents < low:
        return low
    return min(cents, high)


def negate(cents):
    return -cents
