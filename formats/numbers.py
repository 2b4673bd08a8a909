"""Number parsing and formatting shared by the text formats."""

from __future__ import annotations

import math
import re

from detection_debugger.formats.errors import FormatError

__all__ = ["format_number", "parse_column", "parse_decimal"]

# A plain ASCII decimal: what label files hold. Python's float() also takes "1_000", Unicode
# digits ("٣") and surrounding whitespace, which no label writer means as a number.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def parse_decimal(text: str) -> float:
    """``float(text)`` for a plain ASCII decimal or ``nan``/``inf`` (which the caller
    refuses); raises ``ValueError`` for anything else."""
    if _DECIMAL.fullmatch(text) or _NOT_FINITE.fullmatch(text):
        return float(text)
    raise ValueError(text)


def parse_column(text: str, path: str, line: int, column: int, name: str) -> float:
    """A finite number from one column of a label file, or a :class:`FormatError` naming
    the file, line, column and what is wrong."""
    try:
        value = parse_decimal(text)
    except ValueError:
        raise FormatError(
            path, f"column {column} ({name}) is not a number: {text!r}", line=line
        ) from None
    if not math.isfinite(value):
        raise FormatError(path, f"column {column} ({name}) is not finite: {text!r}", line=line)
    return value


def format_number(value: float, decimals: int = 6) -> str:
    """Shortest fixed-point text of ``value`` at ``decimals`` places (``12.5``, ``0``, ``3``).

    Rounding to 6 decimals removes the float noise of relative-to-absolute conversions
    (``123.45000000000002``) while keeping every input written with up to 6 decimals exact.
    """
    text = f"{float(value):.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
