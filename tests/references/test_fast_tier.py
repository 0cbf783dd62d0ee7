"""The fast reference tier: its error bound measured against mpmath, its roundings bit for bit
against the mpmath tables, the fall-back on near-ties, and exact rounding from float64."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from gelu_audit.numerics.formats import (
    BF16,
    FP16,
    FP32,
    FP64,
    all_patterns,
    patterns_to_values,
    round_mpf,
    values_to_patterns,
)
from gelu_audit.numerics.formulas import ERF, FUNCTIONS, Formula, Function
from gelu_audit.numerics.formulas import FORMULAS as ALL_FORMULAS
from gelu_audit.numerics.inputs import stratified_inputs
from gelu_audit.references import fast_tier
from gelu_audit.references.cache import exhaustive_table
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.fast_tier import (
    FAST_ERROR_ULPS,
    LOG_FLOOR,
    binades,
    fast_bound,
    fast_gelu,
    fast_references,
    one_rounding,
    round_to_format,
    spacing_at,
)
from gelu_audit.references.mpmath_ziv import compute_references
from tests.helpers import gelu_mpmath

FORMULAS = tuple(ALL_FORMULAS.values())


def fp32_probe_inputs() -> np.ndarray:
    """Every binade of both signs, the negative tail down to fp32 underflow, tiny |x|."""
    rng = np.random.default_rng(7)
    sample = stratified_inputs(FP32, 1500, seed=3).values
    tail = -rng.uniform(2.0, 14.5, 300)
    tiny = np.ldexp(rng.uniform(-2, 2, 100), rng.integers(-60, -20, 100))
    x = np.concatenate([sample, tail, tiny]).astype(np.float32).astype(np.float64)
    return x[np.isfinite(x) & (x != 0)]


@pytest.mark.parametrize("formula", FORMULAS, ids=str)
def test_float64_evaluation_stays_within_its_stated_bound(formula: Formula) -> None:
    """The bound the Ziv test relies on is measured, not assumed."""
    x = fp32_probe_inputs()
    check_within_bound(formula, x, fast_gelu(formula, x), fast_bound(formula, x))


def check_within_bound(formula: Formula, x: np.ndarray, y: np.ndarray, bounds: np.ndarray) -> None:
    """Each float64 value ``y`` within its relative ``bounds`` of the exact f(x) (mpmath, 160
    bits), wherever the fast region would use it; the worst share of the bound is printed."""
    usable = np.isfinite(y) & (y != 0) & (np.abs(y) > 1e-290)  # where the fast region is used
    worst = 0.0
    for xi, yi, bound in zip(x[usable], y[usable], bounds[usable]):
        exact = gelu_mpmath(formula, float(xi), 160)
        relative = float(abs((mpmath.mpf(float(yi)) - exact) / exact))
        assert relative <= bound, (formula, xi, relative, bound)
        worst = max(worst, relative / (bound / FAST_ERROR_ULPS))
    assert worst > 0  # the comparison saw real rounding errors
    print(f"{formula}: worst error {worst:.2f} of the {FAST_ERROR_ULPS:g} amplified ulps allowed")


@pytest.mark.parametrize("fmt", [FP16, BF16], ids=str)
@pytest.mark.parametrize("formula", FORMULAS, ids=str)
def test_fast_tier_matches_the_mpmath_tables_bit_for_bit(formula: Formula, fmt, session_cache) -> None:
    """All 65,536 inputs: the same RN_T(y), sign of zero included, and the same binade."""
    table, _ = exhaustive_table(formula, fmt, session_cache, jobs=2)
    x = patterns_to_values(fmt, all_patterns(fmt))
    fast, counts = fast_references(formula, fmt, x)
    same = (fast.rounded == table.rounded) | (np.isnan(fast.rounded) & np.isnan(table.rounded))
    assert same.all() and (np.signbit(fast.rounded) == np.signbit(table.rounded)).all()
    deep = (fast.binade <= LOG_FLOOR) & (table.binade <= LOG_FLOOR)  # both below 2^(−2^30)
    assert ((fast.binade == table.binade) | deep).all()
    close = ~deep & np.isfinite(table.mant_hi) & (table.mant_hi != 0)
    value_fast = fast.mant_hi[close] + fast.mant_lo[close]
    value_table = table.mant_hi[close] + table.mant_lo[close]
    assert np.max(np.abs(value_fast - value_table) / np.abs(value_table)) < 2.0**-20
    assert counts.counts["fast"] > 0 and counts.counts["tiny"] > 0


@pytest.mark.parametrize("formula", FORMULAS, ids=str)
def test_fp32_sample_matches_mpmath(formula: Formula) -> None:
    x = stratified_inputs(FP32, 2000, seed=11).values
    fast, _ = fast_references(formula, FP32, x)
    slow = compute_references(formula, FP32, x)
    assert np.array_equal(fast.rounded, slow.rounded, equal_nan=True)
    assert np.array_equal(np.signbit(fast.rounded), np.signbit(slow.rounded))
    deep = (fast.binade <= LOG_FLOOR) & (slow.binade <= LOG_FLOOR)  # both below 2^(−2^30)
    assert ((fast.binade == slow.binade) | deep).all()


def test_fp64_uses_the_fast_tier_only_where_it_decides() -> None:
    x = stratified_inputs(FP64, 600, seed=5).values
    fast, counts = fast_references(ERF, FP64, x)
    slow = compute_references(ERF, FP64, x)
    assert np.array_equal(fast.rounded, slow.rounded, equal_nan=True)
    assert counts.counts["fast"] == 0  # float64 cannot decide roundings to float64
    assert counts.counts["mpmath"] > 0 and counts.counts["saturated"] + counts.counts["tiny"] > 0


def test_near_ties_fall_back_to_mpmath() -> None:
    """Inputs whose exact value lies within the fast bound of an fp32 rounding boundary."""
    patterns = np.arange(0xC0B00000, 0xC0B00000 + (1 << 21), dtype=np.uint32)  # x in [-5.5, -6.3)
    x = patterns_to_values(FP32, patterns)
    y = fast_gelu(ERF, x)
    spacing = np.ldexp(1.0, np.frexp(y)[1] - 24)  # fp32 spacing in y's binade
    units = y / spacing
    distance = np.abs(units - np.floor(units) - 0.5) * spacing  # to the nearest midpoint
    near = np.flatnonzero(distance < np.abs(y) * fast_bound(ERF, x))
    assert near.size >= 3  # the fast tier cannot decide these: they are the constructed near-ties
    ref, counts = fast_references(ERF, FP32, x[near])
    assert counts.counts["mpmath"] == near.size
    for xi, rounded in zip(x[near], ref.rounded):
        exact = gelu_mpmath(ERF, float(xi), 200)
        assert rounded == round_mpf(FP32, exact)


def test_tiny_midpoints_round_toward_plus_infinity() -> None:
    """x/2 of an odd fp32 subnormal is a midpoint; GELU(x) lies just above it."""
    x = np.array([1.0, 3.0, 5.0, -1.0, -3.0]) * FP32.smallest_subnormal
    fast, counts = fast_references(ERF, FP32, x)
    assert counts.counts["tiny"] == len(x)
    for xi, rounded in zip(x, fast.rounded):
        expected = round_mpf(FP32, gelu_mpmath(ERF, float(xi), 400))
        assert rounded == expected and math.copysign(1, rounded) == math.copysign(1, expected)
    # Rounding the float64 value x/2 (ties to even) would be wrong for 1 and 5 subnormals:
    # 0.5 → 0 and 2.5 → 2, where GELU(x) rounds to 1 and 3.
    assert round_to_format(FP32, 0.5 * x[[0, 2]]).tolist() == [0.0, 2 * FP32.smallest_subnormal]
    assert fast.rounded[[0, 2]].tolist() == [x[0], 3 * FP32.smallest_subnormal]
    assert fast.rounded[3] == 0.0 and math.copysign(1, fast.rounded[3]) < 0  # −0, not +0


@pytest.mark.parametrize("fmt", [FP16, BF16, FP32], ids=str)
def test_round_to_format_is_one_correct_rounding(fmt) -> None:
    """Including bf16 ties that a float32 detour would double-round."""
    rng = np.random.default_rng(1)
    v = np.ldexp(rng.uniform(1, 2, 400), rng.integers(fmt.emin - fmt.precision, fmt.emax + 1, 400))
    v *= np.where(rng.random(400) < 0.5, -1, 1)
    midpoint_plus = np.array([1 + 2.0**-8 + 2.0**-30, 1 + 2.0**-8])  # bf16: just above a tie, a tie
    v = np.concatenate([v, midpoint_plus, [fmt.largest_finite * 1.0001, 1e300]])
    got = round_to_format(fmt, v)
    with mpmath.workprec(200):
        expected = [round_mpf(fmt, mpmath.mpf(float(value))) for value in v]
    assert np.array_equal(got, np.array(expected))


def _edge_values(fmt) -> np.ndarray:
    """Values of either sign where a rounding decision can go wrong: powers of two and the
    numbers beside them, T's midpoints and the numbers beside them, T's subnormals and
    float64's, the overflow threshold, zeros, infinities and NaN, plus random values over
    every binade from far below T's subnormals to far above its range."""
    rng = np.random.default_rng(7)
    k = np.arange(fmt.emin - fmt.precision - 3, fmt.emax + 3)
    powers = np.ldexp(1.0, k)
    spacing = np.ldexp(1.0, np.maximum(k, fmt.emin) - (fmt.precision - 1))
    midpoints = powers + spacing * rng.integers(0, 1 << (fmt.precision - 1), len(k)) + spacing / 2
    overflow = fmt.largest_finite + np.ldexp(1.0, fmt.emax - fmt.precision)  # RN_T: +inf from here
    special = [0.0, np.inf, np.nan, 5e-324, 2.0**-1022, overflow, fmt.largest_finite, 1e300]
    base = np.concatenate([powers, midpoints, special])
    near = np.concatenate([base, np.nextafter(base, 0), np.nextafter(base, np.inf)])
    spread = np.ldexp(
        rng.uniform(1, 2, 4000), rng.integers(fmt.emin - fmt.precision - 40, fmt.emax + 40, 4000)
    )
    values = np.concatenate([near, spread])
    return np.concatenate([values, -values])


@pytest.mark.parametrize("fmt", [FP16, BF16, FP32], ids=str)
def test_one_rounding_decides_as_rounding_both_ends_does(fmt) -> None:
    """The fast regions' Ziv test against its definition: round y − r and y + r to T each, and
    decide where they agree, sign included, and lie in one binade."""
    y = _edge_values(fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        radii = [
            np.abs(y) * relative
            for relative in (0.0, 2.0**-60, 2.0**-40, 2.0**-24, 0.5, 1.0, 3.0, np.inf, np.nan)
        ]
        # radii that reach a rounding boundary from y exactly, or one float64 step short or past
        # it: the nearest midpoint of T, the binade's bottom and top, the overflow threshold
        ay, spacing = np.abs(y), spacing_at(fmt, y)
        midpoint = np.floor(ay / spacing) * spacing + spacing / 2
        bottom = np.ldexp(1.0, binades(ay))
        overflow = fmt.largest_finite + np.ldexp(1.0, fmt.emax - fmt.precision)
        for target in (midpoint, bottom, 2 * bottom, np.full_like(y, overflow)):
            distance = np.abs(target - ay)
            radii += [distance, np.nextafter(distance, 0), np.nextafter(distance, np.inf)]
    radii.append(np.full_like(y, fmt.smallest_subnormal / 3))
    decided = []
    for r in radii:
        with np.errstate(invalid="ignore", over="ignore"):
            low, high = y - r, y + r
            r_low, r_high = round_to_format(fmt, low), round_to_format(fmt, high)
            expected = (
                np.isfinite(y)
                & (y != 0)
                & (r_low == r_high)
                & (np.signbit(r_low) == np.signbit(r_high))
                & (binades(low) == binades(high))
            )
        done, binade, hi, rounded = one_rounding(fmt, y, r)
        assert np.array_equal(done, expected), (y[done != expected][:5], r[done != expected][:5])
        mantissa, exponent = np.frexp(y[done])
        assert np.array_equal(binade[done], exponent - 1)
        assert np.array_equal(hi[done].view(np.int64), (2 * mantissa).view(np.int64))
        assert np.array_equal(rounded[done].view(np.int64), r_low[done].view(np.int64))
        decided.append(int(np.count_nonzero(done)))
    assert min(decided[:4]) > 0 and max(decided) < len(y) and 0 in decided  # both outcomes, often


@pytest.mark.parametrize("fmt", [FP16, BF16, FP32], ids=str)
def test_the_compiled_ziv_test_is_numpy_s_bit_for_bit(fmt, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_ziv.c``'s one pass against NumPy's passes, at every point (decided or not): the
    decisions, binades, mantissas and roundings, sign of zero and NaN bits included, on the edge
    values and on random doubles of every binade (subnormal, normal, inf, NaN patterns), with
    radii of every size, exact distances to the rounding boundaries among them."""
    if fast_tier._ziv_library() is None:
        pytest.skip("the compiled Ziv test is not built here (no C compiler at install)")
    rng = np.random.default_rng(11)
    y = np.concatenate([_edge_values(fmt), rng.integers(0, 2**64, 20000, dtype=np.uint64).view(np.float64)])
    with np.errstate(invalid="ignore", over="ignore"):
        ay, spacing = np.abs(y), spacing_at(fmt, y)
        boundary = np.floor(ay / spacing) * spacing + spacing / 2
        radii = [
            np.abs(y) * relative for relative in (0.0, 2.0**-60, 2.0**-30, 2.0**-24, 0.5, 3.0, np.inf, np.nan)
        ]
        radii += [np.abs(boundary - ay), np.nextafter(np.abs(boundary - ay), np.inf), rng.random(len(y)) * ay]
    compared = 0
    for r in radii:
        compiled = one_rounding(fmt, y, r)
        with monkeypatch.context() as patch:
            patch.setattr(fast_tier, "_ziv_library", lambda: None)
            numpy = one_rounding(fmt, y, r)
        assert np.array_equal(compiled[0], numpy[0])
        assert np.array_equal(compiled[1], numpy[1])
        for mine, theirs in zip(compiled[2:], numpy[2:]):
            assert np.array_equal(mine.view(np.int64), theirs.view(np.int64))
        compared += int(np.count_nonzero(compiled[0]))
    assert compared > 0


@pytest.mark.parametrize("formula", FORMULAS, ids=str)
def test_vector_and_scalar_amplification_agree_on_fp32_inputs(formula: Formula) -> None:
    """The fast tier's bound uses a vectorized twin of the mpmath path's amplification."""
    ax = np.abs(fp32_probe_inputs())
    scalar = [formula.amplification_bits(float(v)) for v in ax.tolist()]
    assert formula.amplification_bits_array(ax).tolist() == scalar


@pytest.mark.parametrize("function", list(FUNCTIONS.values()), ids=str)
def test_any_subset_of_a_block_gets_the_same_values_bit_for_bit(function: Function) -> None:
    """The reference store recomputes the differing points of a block alone: the tier must
    give them exactly what the whole block got (mantissas and the sign of a zero included),
    whichever whole-block shortcut either call takes."""
    rng = np.random.default_rng(3)
    for center in (0x447A0000, 0x40000000, 0x33800000, 0x00004010, 0xC1600000):  # 1000, 2, tiny, ...
        patterns = np.arange(center - (1 << 14), center + (1 << 14), dtype=np.uint64).astype(np.uint32)
        x = patterns_to_values(FP32, patterns)
        whole, _ = fast_references_of(function, FP32, x)
        for subset in (np.flatnonzero(x >= x[len(x) // 2]), np.sort(rng.choice(len(x), 300, replace=False))):
            part, _ = fast_references_of(function, FP32, x[subset])
            for name in ("binade", "mant_hi", "mant_lo", "rounded"):
                expected, got = getattr(whole, name)[subset], getattr(part, name)
                assert np.array_equal(expected.view(np.int64), got.view(np.int64)), (hex(center), name)


@pytest.mark.parametrize("formula", FORMULAS, ids=str)
def test_the_tails_are_residue_free_from_the_stated_bounds(formula: Formula) -> None:
    """``saturated_from`` and ``underflowed_below``, which the known regions rest on: from the
    first on, the fast tier's reference is x itself with a low part of +0; from the second
    down, −0 with its binade below −2000. Checked on every 256th fp32 input of the bound's
    binade and 2,000 inputs of the binades beyond. Each bound is as low as a power of two can
    be: at half of it there is still a residue."""
    rng = np.random.default_rng(5)

    def inputs(bound: float) -> np.ndarray:
        start = int(values_to_patterns(FP32, np.array([bound]))[0])
        first = patterns_to_values(FP32, np.arange(start, start + (1 << 23), 256, dtype=np.uint32))
        exponents = rng.integers(int(math.log2(abs(bound))) + 1, 128, 2000)
        beyond = np.copysign(np.ldexp(rng.uniform(1, 2, 2000), exponents), bound)
        x = np.concatenate([first, beyond.astype(np.float32).astype(np.float64)])
        return x[np.isfinite(x)]

    above = inputs(formula.saturated_from)
    ref, _ = fast_references(formula, FP32, above)
    assert np.array_equal(ref.rounded, above) and not ref.mant_lo.any() and not np.signbit(ref.mant_lo).any()
    assert fast_references(formula, FP32, np.array([formula.saturated_from / 2]))[0].mant_lo[0] != 0

    below = inputs(formula.underflowed_below)
    ref, _ = fast_references(formula, FP32, below)
    assert not ref.rounded.any() and np.signbit(ref.rounded).all() and ref.binade.max() < -2000
    assert fast_references(formula, FP32, np.array([formula.underflowed_below / 2]))[0].binade[0] >= -2000
