"""Exact parsing of user-supplied parameter values, by whitelist.

Raw text never reaches eval, exec or sympify: a value is an integer, a decimal
or a fraction matched by a regular expression and turned into a SymPy Rational.
Lists are comma-separated; matrices are rows separated by ';'.
"""
from __future__ import annotations

import re

import sympy as sp

# Bounds keep hostile input from turning into huge computations.
MAX_TEXT = 4000
MAX_DIGITS = 40
MAX_ITEMS = 200

_NUMBER = re.compile(r"^([+-]?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d{1,3}))?$|^([+-]?)\.(\d+)$")
_FRACTION = re.compile(r"^([+-]?\d+)/(\d+)$")


class ParameterError(ValueError):
    """A user-supplied value that cannot be used; `name` is the parameter."""

    def __init__(self, name: str, message: str):
        super().__init__(f"parameter '{name}': {message}")
        self.name = name
        self.message = message


def parse_number(text: str, name: str) -> sp.Rational:
    """An integer, decimal (1.5, 2e-3) or fraction (1/4), read exactly."""
    raw = text.strip()
    if not raw:
        raise ParameterError(name, "empty value; expected a number such as 2, 0.25 or 1/4")
    if len(raw) > MAX_DIGITS:
        raise ParameterError(name, f"'{_clip(raw)}' is too long (at most {MAX_DIGITS} characters)")
    fraction = _FRACTION.match(raw)
    if fraction:
        numerator, denominator = int(fraction.group(1)), int(fraction.group(2))
        if denominator == 0:
            raise ParameterError(name, f"'{raw}' divides by zero")
        return sp.Rational(numerator, denominator)
    number = _NUMBER.match(raw)
    if not number:
        raise ParameterError(name, f"'{_clip(raw)}' is not a number; expected an integer, a decimal or a fraction such as 1/4")
    if number.group(6) is not None:  # ".5" form
        sign, whole, decimals, exponent = number.group(5), "0", number.group(6), None
    else:
        sign, whole, decimals, exponent = number.group(1), number.group(2), number.group(3) or "", number.group(4)
    value = sp.Rational(int(whole + decimals), 10 ** len(decimals))
    if exponent is not None:
        value *= sp.Rational(10) ** int(exponent)
    return -value if sign == "-" else value


def parse_int(text: str, name: str, minimum: int | None = None) -> int:
    value = parse_number(text, name)
    if not value.is_integer:
        raise ParameterError(name, f"'{text.strip()}' is not an integer")
    if minimum is not None and value < minimum:
        raise ParameterError(name, f"must be an integer >= {minimum}, got {value}")
    return int(value)


def parse_list(text: str, name: str) -> list[sp.Rational]:
    """Comma-separated numbers; brackets around the list are allowed."""
    raw = text.strip()
    if len(raw) > MAX_TEXT:
        raise ParameterError(name, f"value is too long (at most {MAX_TEXT} characters)")
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    items = [item for item in raw.split(",")]
    if len(items) > MAX_ITEMS:
        raise ParameterError(name, f"too many entries (at most {MAX_ITEMS})")
    if any(not item.strip() for item in items):
        raise ParameterError(name, f"'{_clip(text)}' has an empty entry; expected comma-separated numbers")
    return [parse_number(item, name) for item in items]


def parse_matrix(text: str, name: str) -> list[list[sp.Rational]]:
    """Rows separated by ';', entries by ','; every row the same length."""
    raw = text.strip()
    if len(raw) > MAX_TEXT:
        raise ParameterError(name, f"value is too long (at most {MAX_TEXT} characters)")
    rows = [parse_list(row, name) for row in raw.split(";")]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ParameterError(name, f"rows have different lengths {sorted(widths)}; every row needs the same number of entries")
    return rows


def check_probabilities(values: list[sp.Rational], name: str) -> None:
    """Entries >= 0 that sum to 1 (exact, since every value is read exactly)."""
    for index, value in enumerate(values):
        if value < 0:
            raise ParameterError(name, f"entry {index} is negative ({value}); probabilities must be >= 0")
    total = sum(values, sp.Integer(0))
    if total == 1:
        return
    # Decimals such as 0.3333333333333 may miss 1 by rounding; the contract allows 1e-12.
    all_decimal = all(_is_decimal(value) for value in values)
    if not (all_decimal and abs(total - 1) <= sp.Rational(1, 10**12)):
        raise ParameterError(name, f"entries sum to {total}, not 1")


def _is_decimal(value: sp.Rational) -> bool:
    denominator = int(value.q)
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def format_value(value) -> str:
    """The text form of an exact value, re-readable by parse_number."""
    return str(sp.nsimplify(value)) if not isinstance(value, (int, sp.Rational)) else str(value)


def _clip(text: str, width: int = 40) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[:width] + "..."
