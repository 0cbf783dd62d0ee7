"""GELU′ references (the gradient audit): checked against rigorous arb balls of derivatives
written here independently, in other algebraic forms, on fp16, fp32 and fp64 inputs spread
over the line, packed around the zero of GELU′ (x ≈ −0.75) and in both tails."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest

from gelu_audit.numerics.formats import FORMATS, FloatFormat, round_mpf
from gelu_audit.numerics.formulas import ERF, FORMULAS, TANH, Derivative, Formula
from gelu_audit.references.mpmath_ziv import reference_point

FP16, FP32, FP64 = FORMATS["fp16"], FORMATS["fp32"], FORMATS["fp64"]


def _arb_derivative(formula: Formula, x: float, precision: int = 400):
    """f′(x) as an arb ball: erf as Φ + xφ; tanh as ½(1 + tanh u) + ½x·sech²(u)·u′; sigmoid
    as (1 + e^(−t) + t·e^(−t)) / (1 + e^(−t))² (the code sums σ-forms; these are not)."""
    from flint import arb, ctx

    old = ctx.prec
    ctx.prec = precision
    try:
        xa = arb(x)
        if formula is ERF:
            y = (-xa / arb(2).sqrt()).erfc() / 2 + xa * (-(xa * xa) / 2).exp() / (2 * arb.pi()).sqrt()
        elif formula is TANH:
            c, a = (2 / arb.pi()).sqrt(), arb("0.044715")
            u = c * (xa + a * xa**3)
            y = (1 + u.tanh()) / 2 + xa / 2 * (1 / u.cosh()) ** 2 * c * (1 + 3 * a * xa * xa)
        else:
            t = arb("1.702") * xa
            e = (-t).exp()
            y = (1 + e + t * e) / (1 + e) ** 2
        return y
    finally:
        ctx.prec = old


def _arb_rounding(formula: Formula, fmt: FloatFormat, x: float) -> float | None:
    """RN_T(f′(x)) from the ball, or None when even a 16,000-bit ball straddles a rounding
    boundary (the tanh form ½(1 + tanh u) cancels to e^(2u) in the negative tail)."""
    for precision in (400, 4000, 16000):
        y = _arb_derivative(formula, x, precision)
        mid_man, mid_exp = y.mid().man_exp()
        rad_man, rad_exp = y.rad().man_exp()
        mid = mpmath.ldexp(mpmath.mpf(int(mid_man)), int(mid_exp))
        rad = mpmath.ldexp(mpmath.mpf(int(rad_man)), int(rad_exp))
        low = round_mpf(fmt, mpmath.fsub(mid, rad, exact=True))
        high = round_mpf(fmt, mpmath.fadd(mid, rad, exact=True))
        if low == high and math.copysign(1, low) == math.copysign(1, high):
            return low
    return None


def _zero_of_derivative(derivative: Derivative) -> float:
    with mpmath.workdps(30):
        return float(mpmath.findroot(lambda x: sum(derivative.mpmath_terms(x)), -0.75))


def _in_format(fmt: FloatFormat, xs: np.ndarray) -> np.ndarray:
    return xs.astype(fmt.numpy_dtype()).astype(np.float64) if fmt is not FP64 else xs


def _neighbours(fmt: FloatFormat, x: float, count: int) -> np.ndarray:
    """The ``count`` representable values of fmt on each side of x."""
    dtype = fmt.numpy_dtype() if fmt is not FP64 else np.float64
    centre = np.array([x]).astype(dtype)
    out = [centre.copy()]
    low, high = centre.copy(), centre.copy()
    for _ in range(count):
        low, high = (
            np.nextafter(low, centre.dtype.type(-np.inf)),
            np.nextafter(high, centre.dtype.type(np.inf)),
        )
        out += [low, high]
    return np.concatenate(out).astype(np.float64)


def _inputs(formula: Formula, fmt: FloatFormat) -> np.ndarray:
    rng = np.random.default_rng(11)
    flat = formula.derivative.flat_from
    spread = np.concatenate(
        [
            rng.uniform(-12, 12, 200),
            rng.uniform(-1, 1, 60) * np.ldexp(1.0, rng.integers(-60, 0, 60)),
            rng.uniform(-flat - 5, -flat + 8, 30),  # the tails, both sides of the flat cut
            rng.uniform(flat - 8, flat + 5, 30),
        ]
    )
    if fmt is FP16:
        spread = spread[np.abs(spread) < 60000]
    near_zero = _neighbours(fmt, _zero_of_derivative(formula.derivative), 40)
    return np.concatenate([_in_format(fmt, spread), near_zero])


@pytest.mark.parametrize("fmt", [FP16, FP32, FP64], ids=str)
@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_derivative_matches_rigorous_arb_balls(formula: Formula, fmt: FloatFormat) -> None:
    pytest.importorskip("flint")
    xs = _inputs(formula, fmt)
    checked = 0
    signs = set()
    for x in xs.tolist():
        if x == 0:
            continue
        expected = _arb_rounding(formula, fmt, x)
        if expected is None:
            continue
        got = reference_point(formula.derivative, fmt, x).rounded
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected), (x, got, expected)
        signs.add(math.copysign(1, got))
        checked += 1
    assert checked >= 0.95 * np.count_nonzero(xs)
    assert signs == {1.0, -1.0}  # both sides of the zero were reached


@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_the_zero_of_the_derivative_is_between_two_neighbours_of_opposite_sign(formula: Formula) -> None:
    """Around the zero, the fp64 references change sign exactly once, between neighbours, and
    the values there are tiny but not zero (the relative condition number is unbounded)."""
    xs = _neighbours(FP64, _zero_of_derivative(formula.derivative), 3)
    xs.sort()
    values = [reference_point(formula.derivative, FP64, x).rounded for x in xs.tolist()]
    assert all(v != 0 for v in values)
    assert sum(1 for a, b in itertools.pairwise(values) if (a > 0) != (b > 0)) == 1
    assert max(abs(v) for v in values) < 1e-14


@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_limits_value_at_zero_and_the_flat_tails(formula: Formula) -> None:
    derivative = formula.derivative
    for fmt in (FP16, FP32, FP64):

        def at(x: float, fmt: FloatFormat = fmt) -> float:
            return reference_point(derivative, fmt, x).rounded

        assert at(0.0) == at(-0.0) == 0.5
        assert at(math.inf) == 1.0 and at(1e300 if fmt is FP64 else 1e4) == 1.0
        low = at(-math.inf)
        assert low == 0 and math.copysign(1, low) < 0  # GELU′(−∞) = −0: approached from below
        assert math.isnan(at(math.nan))
    # The cut is sound: at ±flat_from, f′ is within 2^−1100 of its limit (arb, not our code).
    pytest.importorskip("flint")
    from flint import arb, ctx

    flat = derivative.flat_from
    above, below = _arb_derivative(formula, flat, 16000), _arb_derivative(formula, -flat, 16000)
    old, ctx.prec = ctx.prec, 16000
    try:
        assert 0 < above - 1 < arb(2) ** -1100 and -(arb(2) ** -1100) < below < 0
    finally:
        ctx.prec = old


def test_tiny_negative_inputs_round_to_one_half_from_the_binade_below() -> None:
    """f′(x) = 1/2 + 2x/√(2π) + …: just below 1/2 for tiny x < 0 (binade −2), rounds to 1/2."""
    for x in (-1e-30, -(2.0**-1074), -(2.0**-149)):
        point = reference_point(ERF.derivative, FP64, x)
        assert point.rounded == 0.5 and point.binade == -2
