"""The torch tier: the SciPy tier's references bit for bit on the CPU, its own float64 bound
held against mpmath on every device it runs on, and Ziv's test decided alike."""

from __future__ import annotations

import numpy as np
import pytest

from gelu_audit.numerics.formats import BF16, FP16, FP32, FP64, patterns_to_values, values_to_patterns
from gelu_audit.numerics.formulas import FORMULAS, FUNCTIONS, Derivative, Function
from gelu_audit.references.fast_gradient import MANTISSA_ACCURACY, fast_references_of, fast_terms
from gelu_audit.references.fast_tier import REGIONS, fast_bound, fast_gelu, one_rounding
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier, TierBackend, parse_tier
from tests.references.test_fast_gradient import _fp32_inputs, check_terms_within_bound
from tests.references.test_fast_tier import _edge_values, check_within_bound, fp32_probe_inputs

torch = pytest.importorskip("torch")

TORCH_CPU = ReferenceTier(TierBackend.TORCH, "cpu")
TORCH_CUDA = pytest.param(
    ReferenceTier(TierBackend.TORCH, "cuda:0"),
    marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ],
    id="torch:cuda:0",
)
TORCH_TIERS = [pytest.param(TORCH_CPU, id="torch:cpu"), TORCH_CUDA]


def every_region(function: Function) -> np.ndarray:
    """2^18 random fp32 patterns (every binade, both signs, NaNs), the core densely, each
    format's edges of the regions, and the inputs the bound tests probe."""
    rng = np.random.default_rng(11)
    patterns = rng.integers(0, 1 << 32, 1 << 18, dtype=np.uint64).astype(np.uint32)
    formula = FORMULAS[function.name.removesuffix("-grad")]
    values = np.concatenate(
        [
            patterns_to_values(FP32, patterns),
            rng.uniform(-16, 16, 1 << 16),
            _edge_values(FP32),
            fp32_probe_inputs(),
            _fp32_inputs(formula),
        ]
    )
    with np.errstate(over="ignore"):
        return values.astype(np.float32).astype(np.float64)


def assert_same_bits(expected, got, label: str) -> None:
    for name in ("binade", "mant_hi", "mant_lo", "rounded"):
        a, b = np.asarray(getattr(expected, name)), np.asarray(getattr(got, name))
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8)), (label, name)


@pytest.mark.parametrize("fmt", [FP16, BF16, FP32], ids=str)
@pytest.mark.parametrize("function", list(FUNCTIONS.values()), ids=str)
def test_the_torch_tier_gives_the_scipy_tiers_references_bit_for_bit(function: Function, fmt) -> None:
    """On the CPU the region ``fast`` computes the same primitives in both libraries: every
    reference array is identical, the sign of zero and NaN's bits included, and so is each
    region's count (every region before mpmath occurs; what mpmath decides, it decides for
    both)."""
    x = every_region(function)
    if fmt is not FP32:  # the format's own values: the inputs converted to T
        x = patterns_to_values(fmt, values_to_patterns(fmt, x))
    scipy_refs, scipy_counts = fast_references_of(function, fmt, x)
    torch_refs, torch_counts = fast_references_of(function, fmt, x, tier=TORCH_CPU)
    assert_same_bits(scipy_refs, torch_refs, f"{function} {fmt}")
    assert scipy_counts == torch_counts
    assert scipy_counts.counts["fast"] > len(x) // 10
    if fmt is FP32:
        assert all(scipy_counts.counts[region] > 0 for region in REGIONS[:-1]), scipy_counts.counts


@pytest.mark.parametrize("tier", TORCH_TIERS)
@pytest.mark.parametrize("function", list(FUNCTIONS.values()), ids=str)
def test_the_torch_tier_gives_the_scipy_tiers_roundings_on_any_device(function: Function, tier) -> None:
    """What holds on a GPU too, where erfcx, exp and log2 are the device's: RN_T (with the sign
    of zero) and the binades are the SciPy tier's at every point, and each mantissa is within
    twice a tier's guaranteed accuracy of the SciPy tier's (the formula's bound at x; 2^−32 for
    GELU′, whose tier keeps no point less accurate); a point may change region (fast or
    mpmath). On the CPU the difference is 0 (the bit-for-bit test above)."""
    x = every_region(function)
    expected, _ = fast_references_of(function, FP32, x)
    got, counts = fast_references_of(function, FP32, x, tier=tier)
    assert np.array_equal(expected.rounded.view(np.int64), got.rounded.view(np.int64))
    assert np.array_equal(expected.binade, got.binade)
    if isinstance(function, Derivative):
        relative = np.full(len(x), 2 * MANTISSA_ACCURACY)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            relative = 2 * (fast_bound(function, x) + 2.0**-52)
    kept = np.isfinite(expected.mant_hi) & (expected.binade > -(1 << 40))
    mantissa, other = expected.mant_hi + expected.mant_lo, got.mant_hi + got.mant_lo
    with np.errstate(invalid="ignore"):  # ±inf's mantissas (not kept)
        assert np.all((np.abs(mantissa - other) <= relative * np.abs(mantissa))[kept])
    assert counts.counts["fast"] > len(x) // 10


def test_fp64_has_no_fast_region_on_either_tier() -> None:
    x = np.array([0.5, -3.0, 1e-30])
    for tier in (SCIPY_TIER, TORCH_CPU):
        _, counts = fast_references_of(FUNCTIONS["erf"], FP64, x, tier=tier)
        assert counts.counts["fast"] == 0 and counts.counts["mpmath"] == 2


@pytest.mark.parametrize("tier", TORCH_TIERS)
@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_the_torch_tiers_float64_values_stay_within_the_bound(formula, tier: ReferenceTier) -> None:
    """The bound the Ziv test relies on, measured against mpmath on the tier's device: on a
    GPU erfcx, exp and log2 are the device's own."""
    x = fp32_probe_inputs()
    y, bound = tier.run(lambda v, ops: (fast_gelu(formula, v, ops), fast_bound(formula, v, ops)), x)
    check_within_bound(formula, x, y, bound)


@pytest.mark.parametrize("tier", TORCH_TIERS)
@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=str)
def test_the_torch_tiers_derivative_terms_stay_within_the_bound(formula, tier: ReferenceTier) -> None:
    x = _fp32_inputs(formula, seed=5)
    x = x[np.isfinite(x) & (np.abs(x) < formula.derivative.flat_from) & (x != 0)]
    a, b, radius = tier.run(lambda v, ops: fast_terms(formula.derivative, v, ops), x)
    check_terms_within_bound(formula, x, a, b, radius)


@pytest.mark.parametrize("tier", TORCH_TIERS)
@pytest.mark.parametrize("fmt", [FP16, BF16, FP32], ids=str)
def test_ziv_test_decides_alike_on_the_torch_tier(fmt, tier: ReferenceTier) -> None:
    """``one_rounding`` at the edges where a decision can go wrong (powers of two, midpoints,
    subnormals, the overflow threshold, zeros, infinities, NaN), with radii of every size: the
    same decisions, binades, mantissas and roundings as NumPy's."""
    y = _edge_values(fmt)
    for relative in (0.0, 2.0**-60, 2.0**-24, 0.5, np.inf, np.nan):
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.abs(y) * relative
        expected = one_rounding(fmt, y, r)
        got = tier.run(lambda yy, rr, ops: one_rounding(fmt, yy, rr, ops), y, r)
        done = expected[0]
        assert np.array_equal(done, got[0]), relative
        for want, have in zip(expected[1:], got[1:]):
            assert np.array_equal(np.asarray(want)[done], np.asarray(have)[done]), relative
        assert 0 < np.count_nonzero(done) < len(y) or relative in (np.inf, np.nan)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("scipy", "scipy"),
        ("torch", "torch:cpu"),
        ("Torch:CPU", "torch:cpu"),
        ("torch:cuda", "torch:cuda:0"),
        ("torch:cuda:3", "torch:cuda:3"),
    ],
)
def test_parse_tier(text: str, spec: str) -> None:
    assert parse_tier(text).spec == spec
    assert parse_tier(spec) == parse_tier(text)


@pytest.mark.parametrize("text", ["", "numpy", "scipy:cpu", "torch:gpu", "torch:cuda:x", "auto"])
def test_parse_tier_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="use scipy, torch"):
        parse_tier(text)


@pytest.mark.parametrize("tier", TORCH_TIERS)
def test_powers_of_two_and_scalings_are_numpys(tier: ReferenceTier) -> None:
    """``pow2`` and ``ldexp`` from torch as NumPy's ldexp gives them, for every exponent from
    below float64's subnormals to past its range (a float64 subnormal y makes Ziv's test scale
    by 2^−1050 in fp16), and for scalings whose result is subnormal (rounded once)."""
    exponents = np.arange(-1100, 1030)
    values = np.random.default_rng(2).uniform(1, 2, len(exponents)) * np.ldexp(1.0, -(exponents % 60))
    with np.errstate(over="ignore"):
        expected_powers = np.ldexp(1.0, exponents)
        shifts = -(exponents % 1040)  # from 0 down to 2^−1039: subnormal products included
        expected_scaled = np.ldexp(values, shifts)
    powers = tier.run(lambda e, ops: ops.pow2(ops.to_int64(e)), exponents.astype(np.float64))
    scaled = tier.run(lambda v, e, ops: ops.ldexp(v, ops.to_int64(e)), values, shifts.astype(np.float64))
    assert np.array_equal(powers, expected_powers)
    assert np.array_equal(scaled.view(np.int64), expected_scaled.view(np.int64))
