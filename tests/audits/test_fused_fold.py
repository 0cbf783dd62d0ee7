"""The compiled fp32 fold (``audits/_fold.c``) against the NumPy fold: the same statistics."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator

import numpy as np
import pytest

from gelu_audit.audits import fused
from gelu_audit.audits.known_blocks import known_blocks
from gelu_audit.audits.policies import BUILTIN_POLICIES, Policy, mixed_policy
from gelu_audit.audits.stats import SKETCH_BINS, SKETCH_SHIFT, ErrorAccumulator, accumulate, reference_blocks
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import BF16, FP16, FP32, FloatFormat, patterns_to_values, values_to_patterns
from gelu_audit.numerics.formulas import ERF, SIGMOID, TANH, Function
from gelu_audit.numerics.ulp import HISTOGRAM_LABELS, ulp_errors
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.fast_tier import BLOCK, fast_references
from gelu_audit.references.mpmath_ziv import compute_references

needs_the_loop = pytest.mark.skipif(
    fused.library() is None, reason="the compiled fold is not built here (no C compiler at install)"
)


def test_the_loop_is_built_where_the_install_had_a_c_compiler() -> None:
    """pyproject.toml builds the loop as an optional extension: where a compiler is at hand,
    an install without it is a broken build, not a machine without one."""
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler here: the NumPy fold serves")
    assert fused.library() is not None


def _patterns(start: float, count: int, offset: int = 0) -> np.ndarray:
    """``count`` consecutive fp32 patterns from ``start``'s, moved ``offset`` patterns."""
    first = int(np.float32(start).view(np.uint32)) + offset
    return np.arange(first, first + count).astype(np.uint32)


def _answers(patterns: np.ndarray, rounded: np.ndarray, name: str) -> Iterator[tuple[str, np.ndarray]]:
    """A real kernel's answers, and the same garbled: off by one and by many steps, zeros of
    both signs, a NaN and an infinity in some blocks (which the loop must leave to NumPy); and
    one step up everywhere (from 40 up every error is then exactly 1: the largest error ties in
    every tile of the loop, and its first position must be the block's first)."""
    got = run_implementation(registry()[name], FP32, "cpu", patterns)
    yield name, got
    yield f"{name}, one step up", np.nextafter(got.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    garbled = got.astype(np.float32)
    garbled[3::13] = np.nextafter(garbled[3::13], np.float32(np.inf))
    garbled[5::29] = garbled[5::29] * np.float32(1.5)
    yield f"{name}, off", garbled.astype(np.float64)
    broken = garbled.copy()
    broken[7] = 0.0
    broken[BLOCK + 9] = -0.0
    broken[2 * BLOCK + 11] = np.nan
    broken[2 * BLOCK + 12] = np.inf
    yield f"{name}, zeros and NaN in three blocks", broken.astype(np.float64)
    yield "RN_T(y)", rounded


# The core, where answers differ from RN_T(y) at many points; x from -2 down, below benchdnn's
# cutoff for an absolute error (about -1.56 for erf); from -4 down, where |y| falls through
# benchdnn's switch at 1e-5; a range that starts mid-block and crosses from x whose y is
# subnormal in fp32 to x whose y is normal; subnormal x (y subnormal too), and blocks of subnormal
# then normal x below 0 (the boundary is a block's: the loop counts the subnormal inputs and
# results, and leaves them out of the failures over normal numbers); x from 40 up, where every
# residual is exactly 0 (exact blocks, folded by the loop where an answer differs).
RANGES = [
    (1.0, 4 * BLOCK, 0),
    (-0.75, 4 * BLOCK, 0),
    (-2.0, 4 * BLOCK, 0),
    (-4.0, 4 * BLOCK, 0),
    (2.0**-125, 3 * BLOCK, -BLOCK // 2 * 3),
    (2.0**-140, 3 * BLOCK, 0),
    (-(2.0**-126), 3 * BLOCK, -BLOCK // 2 * 3),
    (40.0, 3 * BLOCK, 0),
]


def _state(
    x: np.ndarray,
    index: np.ndarray,
    ref: ReferenceValues,
    got: np.ndarray,
    against: str,
    tolerance: float,
    top: int,
    shared: bool,
    policies: tuple[Policy, ...],
) -> str:
    """The accumulator's whole state over the blocks, as JSON (NaN answers compare equal). The
    first block is folded apart, and the rest into its state read back, as a shard file's."""
    blocks = reference_blocks(FP32, x, index, ref, top, shared)
    first = accumulate(blocks[:1], got[: len(blocks[0].x)], against, tolerance, top, policies)
    restored = ErrorAccumulator.from_state(first.to_state())
    rest = got[len(blocks[0].x) :]
    state = accumulate(blocks[1:], rest, against, tolerance, top, policies, into=restored).to_state()
    return json.dumps(state, sort_keys=True, default=lambda value: np.asarray(value).tolist())


@needs_the_loop
@pytest.mark.parametrize("start, count, offset", RANGES)
def test_the_compiled_fold_gives_the_numpy_fold_s_statistics(
    start: float, count: int, offset: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statistic of every case, state for state: the loop's blocks and NumPy's, for
    kernels of both formulas, garbled answers, one and five worst inputs, tolerances of 0,
    −0, 2 and 1e9 ULP and one below 0, blocks shared or not, two rtol/atol policies beside
    the built-in ones (one that allows no error at all), and a state read back midway. The
    loop must have taken blocks (the test is not vacuous) and left the broken ones to NumPy."""
    patterns = _patterns(start, count, offset)
    x = patterns.view(np.float32).astype(np.float64)
    index = patterns.astype(np.int64)
    policies = (*BUILTIN_POLICIES, mixed_policy(1e-6, 1e-7), mixed_policy(0.0, 0.0))
    taken, declined = 0, 0
    original = fused.fold_fp32_block

    def counted(*args: object, **kwargs: object) -> fused.FusedFold | None:
        nonlocal taken, declined
        folded = original(*args, **kwargs)  # type: ignore[arg-type]
        taken, declined = taken + (folded is not None), declined + (folded is None)
        return folded

    for formula, against, kernel in ((ERF, "exact", "torch-gelu"), (TANH, "tanh", "torch-gelu-tanh")):
        ref, _ = fast_references(formula, FP32, x)
        for label, got in _answers(patterns, ref.rounded, kernel):
            settings = ((5, 2.0, False), (1, 0.0, True), (5, 1e9, True), (1, -1.0, False), (5, -0.0, False))
            for top, tolerance, shared in settings:
                case = (x, index, ref, got, against, tolerance, top, shared, policies)
                monkeypatch.setattr(fused, "fold_fp32_block", counted)
                compiled = _state(*case)
                monkeypatch.setattr(fused, "library", lambda: None)
                numpy = _state(*case)
                monkeypatch.undo()
                assert compiled == numpy, (label, against, top, tolerance, shared)
    assert taken > 0 and declined > 0


@needs_the_loop
def test_a_block_the_loop_declines_is_left_untouched() -> None:
    """A block with a value the loop does not cover (here one NaN answer) returns None and
    leaves the counts it was handed as they were, wherever the value is: the loop goes tile by
    tile (2,048 points), so one in a later tile is found after earlier tiles were counted, and
    their counts are taken back. A rule whose allowance is −0 (NumPy's ratios −inf) is not the
    loop's at all."""
    assert not fused.covers(FP32, [mixed_policy(-0.0, -0.0).rules["fp32"]])
    assert fused.covers(FP32, [mixed_policy(0.0, 0.0).rules["fp32"]])
    x = _patterns(1.0, 9000).view(np.float32).astype(np.float64)
    ref, _ = fast_references(ERF, FP32, x)
    block = reference_blocks(FP32, x, np.arange(len(x)), ref, 5)[0]
    sketch = np.zeros(SKETCH_BINS + 1, np.int64)
    histogram = np.zeros(len(HISTOGRAM_LABELS) + 1, np.int64)
    rules = [rule for _, rule in ErrorAccumulator("exact", 2.0, 5).rules(FP32)]
    arrays = block.fused_arrays()
    for bad in (0, 700, 2048, 5000, len(x) - 1):  # the first tile, a later one, the last point
        got = ref.rounded.copy()
        got[bad] = np.nan
        assert fused.fold_fp32_block(arrays, got, 2.0, 5, rules, sketch, SKETCH_SHIFT, histogram) is None
        assert not sketch.any() and not histogram.any(), bad
    got = ref.rounded.copy()
    folded = fused.fold_fp32_block(arrays, got, 2.0, 5, rules, sketch, SKETCH_SHIFT, histogram)
    assert folded is not None and sketch.sum() == histogram.sum() == len(x)
    counted = sketch.copy(), histogram.copy()
    got[6000] = -np.inf  # declined with counts already there: they stay as they were
    assert fused.fold_fp32_block(arrays, got, 2.0, 5, rules, sketch, SKETCH_SHIFT, histogram) is None
    assert np.array_equal(sketch, counted[0]) and np.array_equal(histogram, counted[1])
    with pytest.raises(ValueError, match="one answer for each of the block's 9000 points"):  # one too many
        fused.fold_fp32_block(arrays, np.append(got, 1.0), 2.0, 5, rules, sketch, SKETCH_SHIFT, histogram)
    with pytest.raises(ValueError, match="writable"):
        sketch.flags.writeable = False
        fused.fold_fp32_block(arrays, got, 2.0, 5, rules, sketch, SKETCH_SHIFT, histogram)


@needs_the_loop
@pytest.mark.parametrize("start", [1.0, 40.0])
def test_the_loop_s_threshold_of_the_worst_inputs_is_numpy_s_partition(start: float) -> None:
    """The top-th largest error counting repeats, as ``np.partition`` gives it, for tops the
    loop keeps (1, 2, 5, 41 and ``TOP_HELD``); none above that, for a top of 0, or for fewer
    points than top. From 40 up an answer one step off has the error 1 exactly at every point
    (every largest error a repeat); in the core, a kernel's errors are nearly all distinct.
    The count of errors above the tolerance (2) too; the main test's profiles cover other tolerances."""
    rules = [rule for _, rule in ErrorAccumulator("exact", 2.0, 5).rules(FP32)]
    for count in (3 * 2048 + 5, 40):
        patterns = _patterns(start, count)
        x = patterns.view(np.float32).astype(np.float64)
        ref, _ = fast_references(ERF, FP32, x)
        block = reference_blocks(FP32, x, patterns.astype(np.int64), ref, 5)[0]
        kernel = run_implementation(registry()["torch-gelu"], FP32, "cpu", patterns)
        step_up = np.nextafter(kernel.astype(np.float32), np.float32(np.inf)).astype(np.float64)
        for label, got in (("kernel", kernel), ("one step up", step_up), ("RN_T(y)", ref.rounded)):
            for top in (0, 1, 2, 5, 41, fused.TOP_HELD, fused.TOP_HELD + 1):
                sketch = np.zeros(SKETCH_BINS + 1, np.int64)
                histogram = np.zeros(len(HISTOGRAM_LABELS) + 1, np.int64)
                folded = fused.fold_fp32_block(
                    block.fused_arrays(), got, 2.0, top, rules, sketch, SKETCH_SHIFT, histogram
                )
                assert folded is not None
                errors = folded.errors
                assert folded.over == np.count_nonzero(errors > 2.0), label
                if 0 < top <= fused.TOP_HELD and count >= top:
                    assert folded.top_threshold == np.partition(errors, count - top)[count - top], (
                        label,
                        top,
                    )
                else:
                    assert folded.top_threshold is None, (label, top, count)


@needs_the_loop
def test_a_library_built_from_another_source_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library says which calling convention it was built with, and fused.py calls only
    the one it was written for: a library built from another version of ``_fold.c`` (an
    editable install not rebuilt) is not loaded, and NumPy folds."""
    monkeypatch.setattr(fused, "_ABI_VERSION", fused._ABI_VERSION + 1)
    fused.library.cache_clear()
    try:
        assert fused.library() is None
        assert not fused.covers(FP32, [])
    finally:
        fused.library.cache_clear()


@needs_the_loop
@pytest.mark.parametrize(
    ("function", "binade", "negative", "offset"),
    [
        (ERF, -29, False, (5 << 15) + 3),
        (ERF, -40, True, (5 << 15) + 3),
        (ERF, -35, True, 0),  # from x = −2^−35, whose x/2 is −2^−36: f(x) is a binade lower
        (TANH, -40, False, (5 << 15) + 3),
        (SIGMOID, -33, True, (5 << 15) + 3),
        (ERF.derivative, -28, True, (5 << 15) + 3),
        (TANH.derivative, -45, False, (5 << 15) + 3),
    ],
    ids=str,
)
def test_the_compiled_float64_errors_of_a_tiny_span_are_numpy_s(
    function: Function, binade: int, negative: bool, offset: int
) -> None:
    """A known tiny span's statistics against y as float64 (``KnownBlock._float64_errors``),
    from the library (which makes the region's references itself, in tiles) and from NumPy's
    passes over the fast tier's references a block at a time, are the same: the largest
    absolute and relative errors, and every policy's breaks, largest ratio and its first
    position. Over a span that is not a whole number of blocks or tiles, with the built-in
    policies, policies halfway between the span's smallest and largest errors (they break at
    part of it), and one that allows no error (inf at every point with an error, so the first
    largest is the first such point)."""
    first = int(np.float32(math.ldexp(-1.0 if negative else 1.0, binade)).view(np.uint32)) + offset
    patterns = np.arange(first, first + 3 * BLOCK + 777).astype(np.uint32)
    x = patterns.view(np.float32).astype(np.float64)
    served = known_blocks(function, FP32, x, patterns.astype(np.int64), 5, shared=False, consecutive=True)
    assert served is not None
    chunk, _ = served
    span = chunk.whole
    assert span is not None
    ref, _ = fast_references_of(function, FP32, x)
    approx = ref.approximate()
    abs_errors = np.abs(ref.rounded - approx)
    assert abs_errors.any()  # above 2^−55: y as float64 is not RN_T(y)
    rules = [rule for policy in BUILTIN_POLICIES for rule in policy.rules.values()]
    rel_errors = abs_errors / np.abs(approx)
    for errors in (rel_errors, abs_errors):
        middle = float((errors.min() + errors.max()) / 2)
        rules += [mixed_policy(middle, 0.0).rules["fp32"], mixed_policy(0.0, middle).rules["fp32"]]
    rules += [mixed_policy(0.0, 0.0).rules["fp32"]]
    rules = [rule for rule in rules if not rule.rounded_reference]
    compiled = fused.tiny_float64_errors(FP32, function, x, rules)
    assert compiled is not None
    assert compiled == span._float64_errors_in_numpy(rules)
    assert 0 < compiled.rule_breaks[-2] < len(x) and compiled.rule_breaks[-1] == np.count_nonzero(abs_errors)
    assert compiled.rule_first_max[-1] == int(np.flatnonzero(abs_errors)[0])


@needs_the_loop
def test_float64_errors_the_library_does_not_cover_are_left_to_numpy() -> None:
    """Where a y as float64 is below T's smallest normal, or an x is NaN, or an x/2 is not a
    normal double, the library declines (None) and NumPy's passes decide; one such point past
    the first tile is enough."""
    rules = [mixed_policy(1e-6, 1e-7).rules["fp32"]]
    x = np.full(3000, 2.0**-40)
    assert fused.tiny_float64_errors(FP32, ERF, x, rules) is not None
    assert fused.tiny_float64_errors(FP16, ERF, x, rules) is None  # y below fp16's smallest normal
    for odd in (np.nan, 1e-310):
        given = x.copy()
        given[2500] = odd
        assert fused.tiny_float64_errors(FP32, ERF, given, rules) is None, odd


@needs_the_loop
@pytest.mark.parametrize("fmt", [FP32, BF16, FP16], ids=lambda f: f.name)
def test_the_compiled_residuals_are_numpy_s_or_declined(fmt: FloatFormat) -> None:
    """RN_T(y)'s ULP errors (a block's residuals) from the library are ``ulp_errors``' bit for
    bit, in every binade of the format (positive and negative inputs, erf and tanh); a block
    with a zero, subnormal-binade or non-finite reference is declined (None) and left to NumPy,
    and taken where it has none."""
    rng = np.random.default_rng(7)
    patterns = rng.integers(0, 1 << fmt.width, 1 << 14, dtype=np.uint64).astype(fmt.uint_dtype)
    x = patterns_to_values(fmt, patterns)
    taken = 0
    for formula in (ERF, TANH):
        ref, _ = fast_references(formula, fmt, x)
        assert fused.rounded_residuals(fmt, ref) is None  # zeros, NaN, ∞ and tiny y among them
        for block in np.array_split(np.argsort(np.abs(x), kind="stable"), 64):
            part = ref.take(block)
            compiled = fused.rounded_residuals(fmt, part)
            if compiled is None:
                continue
            taken += 1
            with np.errstate(invalid="ignore", over="ignore"):
                expected = ulp_errors(fmt, part.rounded, part)
            assert np.array_equal(compiled.view(np.int64), expected.view(np.int64)), (formula.name, block[0])
    assert taken >= 40
    # mpmath's references carry y's double-double (hi not RN_T(y), lo not 0), which the fast
    # tier's regions seldom do: both terms of the residual then count
    core = patterns_to_values(fmt, values_to_patterns(fmt, rng.uniform(-3.0, 3.0, 1500)))
    exact = compute_references(ERF, fmt, core[core != 0])
    assert np.count_nonzero(exact.mant_lo) > 1000
    compiled = fused.rounded_residuals(fmt, exact)
    assert compiled is not None
    expected = ulp_errors(fmt, exact.rounded, exact)
    assert np.array_equal(compiled.view(np.int64), expected.view(np.int64))
