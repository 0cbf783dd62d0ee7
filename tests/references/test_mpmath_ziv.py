"""The references: right on points known independently, and checked against rigorous arb balls."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from gelu_audit.numerics.formats import BF16, FP16, FP32, FP64, round_mpf
from gelu_audit.numerics.formulas import ERF, FORMULAS, SIGMOID, TANH, Formula
from gelu_audit.references.mpmath_ziv import compute_references, reference_point
from tests.helpers import gelu_mpmath


def test_zero_and_specials() -> None:
    for formula in FORMULAS.values():
        assert math.copysign(1, reference_point(formula, FP32, -0.0).rounded) == -1
        assert reference_point(formula, FP32, 0.0).rounded == 0.0
        assert reference_point(formula, FP32, math.inf).rounded == math.inf
        minus_inf = reference_point(formula, FP32, -math.inf).rounded
        assert minus_inf == 0 and math.copysign(1, minus_inf) == -1
        assert math.isnan(reference_point(formula, FP32, math.nan).rounded)


@pytest.mark.parametrize("fmt", [FP16, BF16, FP32, FP64])
def test_large_x_rounds_to_x(fmt) -> None:
    for x in (64.0, 768.0, 1.5 * 2.0**60, fmt.largest_finite):
        if x > fmt.largest_finite:
            continue
        for formula in FORMULAS.values():
            assert reference_point(formula, fmt, x).rounded == x


def test_power_of_two_binade_is_the_one_below() -> None:
    """GELU(2^k) is 2^k minus a tiny amount: its ulp is that of the binade below."""
    point = reference_point(ERF, FP16, 32768.0)
    assert point.binade == 14 and point.rounded == 32768.0


def test_float32_tail_is_a_normal_number() -> None:
    """The brief's example: GELU(-5.6) in fp32 is a normal float where PyTorch returns 0."""
    x = float(np.float32(-5.6))
    point = reference_point(ERF, FP32, x)
    assert abs(point.rounded) >= FP32.smallest_normal
    assert point.rounded == pytest.approx(-6.0018507e-08, rel=1e-6)


def test_tiny_x_midpoints_are_decided_by_the_x_squared_term() -> None:
    # GELU(x) = x/2 + x²/√(2π) − …: x/2 is a midpoint here, the true value lies above it.
    assert reference_point(ERF, FP16, 2.0**-24).rounded == 2.0**-24
    below = reference_point(ERF, FP16, -(2.0**-24)).rounded
    assert below == 0 and math.copysign(1, below) == -1
    assert reference_point(ERF, FP64, 5e-324).rounded == 5e-324
    assert reference_point(SIGMOID, FP32, 2.0**-149).rounded == 2.0**-149


def test_minimum_of_gelu() -> None:
    """GELU's minimum is ≈ −0.16997 at x ≈ −0.75179 (a known value, found by mpmath here)."""
    with mpmath.workprec(100):  # GELU'(x) = Φ(x) + x·φ(x) vanishes at the minimum
        x_min = mpmath.findroot(lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x), -0.75)
    assert float(x_min) == pytest.approx(-0.75179, abs=1e-5)
    assert float(gelu_mpmath(ERF, x_min)) == pytest.approx(-0.16997, abs=1e-5)


def test_gelu_one_matches_the_closed_form() -> None:
    """GELU(1) = Φ(1) = (1 + erf(1/√2))/2: a value mpmath's ncdf computes another way."""
    with mpmath.workprec(200):
        expected = mpmath.ncdf(1)
    assert reference_point(ERF, FP64, 1.0).rounded == round_mpf(FP64, expected)


def _arb_rounding(formula: Formula, fmt, x: float) -> float | None:
    """RN_T(f(x)) from a rigorous arb ball, or None when the ball straddles a boundary."""
    from flint import arb, ctx

    old = ctx.prec
    ctx.prec = 300
    try:
        xa = arb(x)
        if formula is ERF:
            y = xa / 2 * (-xa / arb(2).sqrt()).erfc()
        else:  # written here independently of the Formula objects, from their exact decimals
            if formula is TANH:
                t = 2 * (2 / arb.pi()).sqrt() * (xa + arb("0.044715") * xa**3)
            else:
                t = arb("1.702") * xa
            y = xa / (1 + (-t).exp())
        mid_man, mid_exp = y.mid().man_exp()
        rad_man, rad_exp = y.rad().man_exp()
    finally:
        ctx.prec = old
    mid = mpmath.ldexp(mpmath.mpf(int(mid_man)), int(mid_exp))
    rad = mpmath.ldexp(mpmath.mpf(int(rad_man)), int(rad_exp))
    low = round_mpf(fmt, mpmath.fsub(mid, rad, exact=True))
    high = round_mpf(fmt, mpmath.fadd(mid, rad, exact=True))
    same = low == high and math.copysign(1, low) == math.copysign(1, high)
    return low if same else None


@pytest.mark.parametrize("fmt", [FP32, FP64, FP16])
@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_reference_matches_rigorous_arb_balls(formula: Formula, fmt) -> None:
    """A second, rigorous method (arb interval arithmetic) agrees on a spread of inputs."""
    pytest.importorskip("flint")
    rng = np.random.default_rng(7)
    xs = np.concatenate(
        [
            rng.uniform(-40, 12, 300),
            rng.uniform(-1, 1, 100) * np.ldexp(1.0, rng.integers(-60, 0, 100)),
        ]
    )
    xs = xs.astype(np.float32).astype(np.float64) if fmt is not FP64 else xs
    if fmt is FP16:
        xs = xs.astype(np.float16).astype(np.float64)
    checked = 0
    for x in xs.tolist():
        if x == 0:  # arb has no signed zero; ±0 are covered by test_zero_and_specials
            continue
        expected = _arb_rounding(formula, fmt, x)
        if expected is None:
            continue
        got = reference_point(formula, fmt, x).rounded
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected), x
        checked += 1
    assert checked >= 0.95 * np.count_nonzero(xs)  # nearly every ball decides the rounding


def test_exact_value_is_carried_below_float64_range() -> None:
    """GELU(-60000) ≈ -e^(-1.8e9): far below float64, but its binade and digits are kept."""
    refs = compute_references(ERF, FP16, np.array([-60000.0]))
    assert refs.rounded[0] == 0 and np.signbit(refs.rounded[0])
    with mpmath.workprec(80):
        expected = gelu_mpmath(ERF, -60000.0, 200)
        assert refs.binade[0] == int(mpmath.floor(mpmath.log(-expected, 2)))
    assert refs.exact_decimal(0).startswith("-")


def test_parallel_and_serial_references_agree() -> None:
    xs = np.linspace(-12, 6, 3001)
    serial = compute_references(TANH, FP32, xs, jobs=1, chunk_size=500)
    parallel = compute_references(TANH, FP32, xs, jobs=2, chunk_size=500)
    for name in ("binade", "mant_hi", "mant_lo", "rounded"):
        assert np.array_equal(getattr(serial, name), getattr(parallel, name))
