"""Number formatting shared by the writers."""

from __future__ import annotations

__all__ = ["format_number"]


def format_number(value: float, decimals: int = 6) -> str:
    """Shortest fixed-point text of ``value`` at ``decimals`` places (``12.5``, ``0``, ``3``).

    Rounding to 6 decimals removes the float noise of relative-to-absolute conversions
    (``123.45000000000002``) while keeping every input written with up to 6 decimals exact.
    """
    text = f"{float(value):.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
