"""The gradient's fast tier: the same references as mpmath, and its float64 bound holds."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from gelu_audit.numerics.exact_values import BINADE_FLOOR
from gelu_audit.numerics.formats import FORMATS
from gelu_audit.numerics.formulas import FORMULAS, Formula
from gelu_audit.references.fast_gradient import (
    MANTISSA_ACCURACY,
    SMALLEST_TRUSTED_TERM,
    fast_gradient_references,
    fast_terms,
)
from gelu_audit.references.fast_tier import FAST_ERROR_ULPS
from gelu_audit.references.mpmath_ziv import compute_references

FP32 = FORMATS["fp32"]


def _fp32_inputs(formula: Formula, seed: int = 3) -> np.ndarray:
    """Every region: random bit patterns (all binades, both signs), the core, both tails
    around the saturation and underflow cuts, around the zero of GELU′, and tiny values."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 1 << 32, 6000, dtype=np.uint64).astype(np.uint32)
    flat = formula.derivative.flat_from
    values = np.concatenate(
        [
            patterns.view(np.float32)[np.isfinite(patterns.view(np.float32))].astype(np.float64),
            rng.uniform(-16, 16, 3000),
            rng.uniform(2, 12, 1500),
            rng.uniform(-20, -2, 1500),
            rng.uniform(-flat - 2, -flat + 2, 200),
            rng.uniform(flat - 2, flat + 2, 200),
            -0.7518 + rng.uniform(-1e-3, 1e-3, 2000),
            rng.uniform(-1, 1, 500) * np.ldexp(1.0, rng.integers(-149, -20, 500)),
            [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0, -2.0],
        ]
    )
    return values.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_the_tier_gives_mpmaths_references(formula: Formula) -> None:
    """Rounded values (with the sign of zero) and binades identical; mantissas to the tier's
    accuracy (2^−32 relative; 2^−20 for values far below every format, kept in log space)."""
    x = _fp32_inputs(formula)
    fast, counts = fast_gradient_references(formula.derivative, FP32, x)
    slow = compute_references(formula.derivative, FP32, x, jobs=2)
    same = (fast.rounded == slow.rounded) | (np.isnan(fast.rounded) & np.isnan(slow.rounded))
    assert same.all(), x[~same][:5]
    assert (np.signbit(fast.rounded) == np.signbit(slow.rounded)).all()
    assert (fast.binade == slow.binade).all(), x[fast.binade != slow.binade][:5]
    kept = (fast.binade > BINADE_FLOOR) & np.isfinite(slow.mant_hi)
    mantissa_fast, mantissa_slow = fast.mant_hi + fast.mant_lo, slow.mant_hi + slow.mant_lo
    accuracy = np.where(fast.rounded == 0, 2.0**-20, MANTISSA_ACCURACY)
    error = np.abs(mantissa_fast - mantissa_slow)
    assert np.all((error <= accuracy * np.abs(mantissa_slow))[kept])
    regions = counts.counts
    for region in ("trivial", "tiny", "saturated", "underflow", "fast", "mpmath"):
        assert regions[region] > 0, regions
    away = x[~(np.abs(x + 0.752) < 0.01)]  # the zero of GELU′ is mpmath's by design
    _, counts = fast_gradient_references(formula.derivative, FP32, away)
    assert counts.counts["mpmath"] < 0.01 * len(away), counts.counts


@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_the_float64_terms_stay_within_the_assumed_bound(formula: Formula) -> None:
    """|a + b − f′| ≤ FAST_ERROR_ULPS·2^(amp−53)·(|a| + |b|) wherever the tier trusts the
    terms; the worst ratio measured is printed for docs/methodology.md."""
    x = _fp32_inputs(formula, seed=5)
    x = x[np.isfinite(x) & (np.abs(x) < formula.derivative.flat_from) & (x != 0)]
    a, b, radius = fast_terms(formula.derivative, x)
    check_terms_within_bound(formula, x, a, b, radius)


def check_terms_within_bound(
    formula: Formula, x: np.ndarray, a: np.ndarray, b: np.ndarray, radius: np.ndarray
) -> None:
    """|a + b − f′(x)| ≤ radius (mpmath, 200 bits) wherever the tier trusts the terms."""
    trusted = (np.abs(a) + np.abs(b) >= SMALLEST_TRUSTED_TERM) & np.isfinite(a) & np.isfinite(b)
    worst = 0.0
    for xi, ai, bi, ri in zip(
        x[trusted].tolist(), a[trusted].tolist(), b[trusted].tolist(), radius[trusted].tolist()
    ):
        with mpmath.workprec(200):
            exact = sum(formula.derivative.mpmath_terms(mpmath.mpf(xi)))
            error = abs(mpmath.mpf(ai) + mpmath.mpf(bi) - exact)
        assert error <= ri, (xi, float(error), ri)
        worst = max(worst, float(error / ri) * FAST_ERROR_ULPS)
    print(f"{formula}′: worst error {worst:.2f} of the assumed {FAST_ERROR_ULPS:g} scaled ulps")
    assert worst > 0 and math.isfinite(worst)
