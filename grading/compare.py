"""Numeric comparison of expressions at sample points, and naming how two values differ.

Two expressions agree when they agree at several random points of their free
symbols (the ring size N at integers >= 2, where the closed forms hold; other
symbols at random reals), evaluated by mpmath to 30 digits. Nothing is ever
substituted exactly: `evalf(subs=...)` keeps 9**N at N = 10**12 a float operation.
"""
from __future__ import annotations

import math
import random
from fractions import Fraction

import mpmath
import sympy as sp

from .limits import TimeLimit

EXACT = 1e-9     # relative agreement of exact forms
NUMERIC = 1e-3   # relative agreement of numeric answers (the contract's)
ABSOLUTE = 1e-12  # agreement near zero
RING_SIZES = (2, 3, 4, 5, 6, 7, 9, 12)


def sample_points(symbols, count: int = 5, seed: int = 31230) -> list[dict]:
    """`count` points; integer symbols take distinct integers >= 2, others random reals."""
    symbols = sorted(set(symbols), key=str)
    if not symbols:
        return [{}]
    rng = random.Random(seed)
    sizes = list(RING_SIZES)
    rng.shuffle(sizes)
    points = []
    for index in range(count):
        point = {}
        for symbol in symbols:
            if symbol.is_integer:
                point[symbol] = sp.Integer(sizes[index % len(sizes)] + len(sizes) * (index // len(sizes)))
            elif symbol.is_positive or symbol.is_nonnegative:
                point[symbol] = sp.Float(round(rng.uniform(0.3, 3.0), 6), 30)
            else:
                point[symbol] = sp.Float(round(rng.uniform(-2.0, 2.0), 6), 30)
        points.append(point)
    return points


def evaluate(expr, point: dict):
    """The value of `expr` at `point` as an mpmath complex, or None (symbols left, not finite)."""
    try:
        expr = expr if isinstance(expr, sp.Basic) else sp.Integer(expr) if isinstance(expr, int) else sp.Float(expr)
        value = expr.evalf(30, subs=point) if point else expr.evalf(30)
        if not value.is_number:
            return None
        with mpmath.workdps(30):
            number = mpmath.mpmathify(value._to_mpmath(110))
    except TimeLimit:
        raise
    except Exception:  # noqa: BLE001 - any failure to evaluate means "no value here"
        return None
    if not (mpmath.isfinite(number.real) and mpmath.isfinite(number.imag)):
        return None
    return mpmath.mpc(number)


def values_at(expr, points: list[dict]):
    """Values at every point, or None when any point has no value."""
    result = []
    for point in points:
        value = evaluate(expr, point)
        if value is None:
            return None
        result.append(value)
    return result


def close(a, b, rel: float) -> bool:
    difference = abs(a - b)
    return bool(difference <= rel * max(abs(a), abs(b)) or difference <= ABSOLUTE)


def agree(a_values, b_values, rel: float) -> bool:
    if a_values is None or b_values is None or len(a_values) != len(b_values):
        return False
    return all(close(a, b, rel) for a, b in zip(a_values, b_values))


def is_real(values) -> bool:
    return all(abs(v.imag) <= ABSOLUTE * max(1, abs(v)) for v in values)


def to_float(value) -> float:
    return float(mpmath.re(value))


# ------------------------------------------------------------- describing numbers

def simple_fraction(value: float, limit: int = 12, rel: float = 1e-6) -> Fraction | None:
    """p/q with |p|, q <= limit close to value, or None."""
    if not math.isfinite(value) or value == 0:
        return None
    fraction = Fraction(value).limit_denominator(limit)
    if abs(fraction.numerator) > limit or fraction == 0:
        return None
    return fraction if abs(float(fraction) - value) <= rel * abs(value) else None


def fraction_text(fraction: Fraction) -> str:
    return str(fraction.numerator) if fraction.denominator == 1 else f"{fraction.numerator}/{fraction.denominator}"


def constant_ratio(a_values, b_values, rel: float = 1e-6):
    """a / b when it is the same at every point, else None."""
    if a_values is None or b_values is None:
        return None
    ratios = []
    for a, b in zip(a_values, b_values):
        if abs(b) <= ABSOLUTE:
            return None
        ratios.append(a / b)
    first = ratios[0]
    if all(close(r, first, rel) for r in ratios):
        return first
    return None


def _scale_text(magnitude: float, what: str = "", limit: int = 12) -> str | None:
    """'an extra factor of 2' for 2, 'a missing factor of 3' for 1/3; None for other ratios."""
    fraction = simple_fraction(magnitude, limit)
    if fraction is None or fraction == 1:
        return None
    if fraction.denominator == 1:
        return f"an extra factor of {fraction.numerator}{what}"
    if fraction.numerator == 1:
        return f"a missing factor of {fraction.denominator}{what}"
    return None  # 2/3 of the expected value says nothing about the mistake


def describe_factor(a_values, b_values, points: list[dict], named: dict[str, float]) -> str | None:
    """How a = factor * b, when the factor is simple: a small fraction, a named parameter value
    (N = 5), or a power of a free symbol (N, N^2). None when there is no simple factor."""
    ratio = constant_ratio(a_values, b_values)
    if ratio is not None:
        if not is_real([ratio]):
            return None
        value = to_float(ratio)
        sign = " and the sign is wrong" if value < 0 else ""
        hints, named_text = [], None
        for name, number in named.items():
            if abs(number) in (0, 1) or not math.isfinite(number):
                continue
            if close(abs(value), abs(number), 1e-6):
                hints.append(f"{name} = {short_number(number)}")
                named_text = named_text or f"an extra factor of {name} (= {short_number(number)})"
            elif close(abs(value), 1 / abs(number), 1e-6):
                hints.append(f"1/{name}, {name} = {short_number(number)}")
                named_text = named_text or f"a missing factor of {name} (= {short_number(number)})"
        # Two plain numbers always have some ratio: without free symbols only the usual slips
        # (2, 3, 4 and their inverses) say anything about the mistake.
        constant = not any(points)
        text = _scale_text(abs(value))
        if text is not None and constant and not hints and _scale_text(abs(value), limit=4) is None:
            text = None
        if text is None:
            return None if named_text is None else named_text + sign
        return text + (f" ({'; '.join(hints)})" if hints else "") + sign
    if a_values is None or b_values is None or len(points) < 2:
        return None
    for symbol in sorted({s for point in points for s in point}, key=str):
        for power in (1, -1, 2, -2):
            scaled = []
            for a, b, point in zip(a_values, b_values, points):
                base = mpmath.mpf(float(point[symbol]))
                if abs(b) <= ABSOLUTE or base == 0:
                    break
                scaled.append(a / (b * base ** power))
            else:
                first = scaled[0]
                if not (all(close(s, first, 1e-6) for s in scaled) and is_real([first])):
                    continue
                coefficient = to_float(first)
                sign = " and the sign is wrong" if coefficient < 0 else ""
                shown = str(symbol) if abs(power) == 1 else f"{symbol}^{abs(power)}"
                kind = "an extra" if power > 0 else "a missing"
                text = f"{kind} factor of {shown}"
                if abs(coefficient) != 1:
                    scale = _scale_text(abs(coefficient))
                    if scale is None:
                        continue
                    text += ", and " + scale
                return text + sign
    return None


def short_number(value) -> str:
    number = to_float(value) if not isinstance(value, (int, float)) else float(value)
    if not math.isfinite(number):
        return str(number)
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.6g}"
