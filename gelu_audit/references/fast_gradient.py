"""The fast reference tier for GELU′: the gradient's references at nanoseconds a point.

The same strategy as :mod:`~gelu_audit.references.fast_tier` (regions decided in vectorized
float64, mpmath only where undecided), with the derivative's own facts
(:class:`~gelu_audit.numerics.formulas.Derivative`):

* ``trivial``: NaN; ±0 (f′ = ½ exactly); ±inf (1 and −0, the limits).
* ``tiny``: 0 < |x| < 2^(−p−3): f′(x) = ½ + 2c·x + O(x³), within a quarter of T's spacing of ½,
  so it rounds to ½; the value is just above ½ for x > 0, and just below it (one binade lower)
  for x < 0.
* ``saturated``: x ≥ 2, where f′(x) = 1 + δ with 0 < δ, computed without cancellation; when δ is
  below half the spacing above 1, RN_T = 1. From ``flat_from`` on, δ < 2^−1100.
* ``underflow``: x ≤ −2, where f′ < 0; when log2|f′| (in log space) is below half T's smallest
  subnormal, RN_T = −0. From −``flat_from`` down, |f′| < 2^−1100.
* ``fast``: f′ = a + b from its two terms in float64, with the error bounded by
  FAST_ERROR_ULPS · 2^−53 · amplification(x) · (|a| + |b|): the sum of the terms' magnitudes,
  not |f′|, because they cancel near the zero of GELU′ (x ≈ −0.75); where that bound is not
  within 2^−32 of |f′| the point goes to mpmath. Only terms that are normal float64 numbers
  are trusted.
* ``mpmath``: the rest, and every ``fast`` point of fp64 (float64 cannot decide roundings to
  float64).

``tests/references/test_fast_gradient.py`` measures the float64 terms against mpmath and checks
that this tier and mpmath give identical references on every region.
May import: numerics, references.mpmath_ziv, references.fast_tier, references.tiers.
"""

from __future__ import annotations

import math

import numpy as np

from gelu_audit.numerics.array_ops import NUMPY_OPS, Array, ArrayOps
from gelu_audit.numerics.exact_values import BINADE_FLOOR, ReferenceValues
from gelu_audit.numerics.formats import FloatFormat
from gelu_audit.numerics.formulas import Derivative, Function
from gelu_audit.references.fast_tier import (
    FAST_ERROR_ULPS,
    SATURATION_MARGIN,
    Fallback,
    TierCounts,
    _Block,
    _meets,
    decide_by_blocks,
    fast_references,
    one_rounding,
    tiny_bound,
)
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier

SMALLEST_TRUSTED_TERM = 2.0**-1000
"""Terms below this may be float64 subnormals, whose relative error is unbounded: not trusted."""


MANTISSA_ACCURACY = 2.0**-32
"""The fast region keeps a point only when its error bound is this small relative to f′: near
the zero of GELU′ the terms cancel, and those points go to mpmath rather than carry a mantissa
good to the terms' size only. The bound is conservative (the measured error is 30x smaller),
so a kept mantissa is good to about 2^−37: 2^−13 of an fp32 ULP."""


def fast_terms(derivative: Derivative, x: Array, ops: ArrayOps = NUMPY_OPS) -> tuple[Array, Array, Array]:
    """f′(x) = a + b in float64, and the bound on its absolute error (``x`` an array of ``ops``)."""
    x = ops.float64(x)
    with ops.errstate():
        a, b = derivative.float64_terms(x, ops)
        amp = derivative.amplification_bits_array(ops.abs(x), ops)
        radius = (ops.abs(a) + ops.abs(b)) * (FAST_ERROR_ULPS * ops.pow2(ops.to_int32(amp - 53)))
    return a, b, radius


def gradient_tiny_bound(fmt: FloatFormat) -> float:
    """The region ``tiny`` of f′ is 0 < |x| < this (2^(−p−3)), where RN_T(f′) is ½."""
    return math.ldexp(1.0, -fmt.precision - 3)


def _tiny(derivative: Derivative, x: np.ndarray) -> tuple:
    c2 = 2 * derivative.of.series_coefficient
    below = x < 0  # ½ − 2c|x|: the binade under ½
    return (
        np.where(below, -2, -1),
        np.where(below, 2.0, 1.0),
        np.where(below, 4 * c2 * x, 2 * c2 * x),
        0.5,
    )


def _saturated(derivative: Derivative, fmt: FloatFormat, x: np.ndarray) -> tuple:
    """1 + δ rounds to 1 when δ < 2^−p (half the spacing above 1, exactly: no tie is possible)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        delta = derivative.excess(x)
    done = (delta >= 0) & (delta * (1 + SATURATION_MARGIN) < math.ldexp(1.0, -fmt.precision))
    return done, 0, 1.0, delta[done], 1.0


def _underflow(derivative: Derivative, fmt: FloatFormat, x: np.ndarray) -> tuple:
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        log2y = derivative.log2_magnitude(x)
    limit = fmt.emin - fmt.precision  # log2 of half the smallest subnormal
    done = np.isfinite(log2y) & (log2y + 1e-6 + np.abs(log2y) * SATURATION_MARGIN < limit)
    ly = log2y[done]
    b = np.floor(ly).astype(np.int64)
    return done, b, -np.exp2(ly - b), 0.0, -0.0


def _fast(derivative: Derivative, fmt: FloatFormat, x: Array, ops: ArrayOps = NUMPY_OPS) -> tuple:
    a, b, radius = fast_terms(derivative, x, ops)
    y = a + b
    radius = radius + ops.abs(y) * 2.0**-52
    decided, binade, hi, rounded = one_rounding(fmt, y, radius, ops)
    with ops.errstate():
        done = (
            decided
            & ((y - radius) * (y + radius) > 0)
            & (ops.abs(a) + ops.abs(b) >= SMALLEST_TRUSTED_TERM)
            & (ops.isfinite(a) & ops.isfinite(b))
            & (radius <= ops.abs(y) * MANTISSA_ACCURACY)
        )
    return done, binade, hi, 0.0, rounded


def _fill_block(derivative: Derivative, fmt: FloatFormat, x: np.ndarray, out: _Block) -> None:
    flat = derivative.flat_from
    lowest, highest = x.min(), x.max()  # NaN if any NaN
    meets = _meets(lowest, highest)  # a region no input can be in is not searched for
    if np.isnan(lowest):
        out.assign(np.flatnonzero(np.isnan(x)), "trivial", 0, np.nan, 0.0, np.nan)
    if meets(0.0, 0.0):
        out.assign(np.flatnonzero(x == 0), "trivial", -1, 1.0, 0.0, 0.5)
    if meets(np.inf, np.inf):
        out.assign(np.flatnonzero(x == np.inf), "trivial", 0, 1.0, 0.0, 1.0)
    if meets(-np.inf, -np.inf):
        out.assign(np.flatnonzero(x == -np.inf), "trivial", BINADE_FLOOR, -1.0, 0.0, -0.0)
    if meets(flat, np.inf):
        out.assign(np.flatnonzero((x >= flat) & (x < np.inf)), "saturated", 0, 1.0, 0.0, 1.0)
    if meets(-np.inf, -flat):
        out.assign(np.flatnonzero((x <= -flat) & (x > -np.inf)), "underflow", BINADE_FLOOR, -1.0, 0.0, -0.0)

    bound = gradient_tiny_bound(fmt)
    if meets(-bound, bound):
        ax = np.abs(x)
        tiny = np.flatnonzero((ax > 0) & (ax < bound))
        out.assign(tiny, "tiny", *_tiny(derivative, x[tiny]))
    nowhere = np.zeros(0, np.int64)
    for name, index, region in (
        ("saturated", np.flatnonzero((x >= 2.0) & (x < flat)) if meets(2.0, flat) else nowhere, _saturated),
        (
            "underflow",
            np.flatnonzero((x <= -2.0) & (x > -flat)) if meets(-flat, -2.0) else nowhere,
            _underflow,
        ),
    ):
        if index.size:
            done, *values = region(derivative, fmt, x[index])
            out.assign(index[done], name, *values)


def fast_gradient_references(
    derivative: Derivative,
    fmt: FloatFormat,
    values: np.ndarray,
    fallback: Fallback | None = None,
    tier: ReferenceTier = SCIPY_TIER,
) -> tuple[ReferenceValues, TierCounts]:
    """References of f′ for float64 inputs of ``fmt`` by region, mpmath only where undecided
    (the same contract as :func:`~gelu_audit.references.fast_tier.fast_references`)."""
    return decide_by_blocks(
        lambda x, block: _fill_block(derivative, fmt, x, block),
        lambda x, ops: _fast(derivative, fmt, x, ops),
        derivative,
        fmt,
        values,
        fallback,
        tier,
    )


def fast_references_of(
    function: Function,
    fmt: FloatFormat,
    values: np.ndarray,
    fallback: Fallback | None = None,
    tier: ReferenceTier = SCIPY_TIER,
) -> tuple[ReferenceValues, TierCounts]:
    """The fast tier of a formula (forward) or of its derivative (backward), its region
    ``fast`` run by ``tier``."""
    if isinstance(function, Derivative):
        return fast_gradient_references(function, fmt, values, fallback, tier)
    return fast_references(function, fmt, values, fallback, tier)


def tiny_bound_of(function: Function, fmt: FloatFormat) -> float:
    """Where the fast tier's region ``tiny`` ends, for a formula (forward) or its derivative."""
    return gradient_tiny_bound(fmt) if isinstance(function, Derivative) else tiny_bound(fmt)
