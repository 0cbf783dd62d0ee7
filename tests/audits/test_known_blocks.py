"""Known blocks: a prototype's statistics, carried over, must be the arithmetic's, block by
block, in every binade of every region."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from gelu_audit.audits import exhaustive, known_blocks
from gelu_audit.audits.exhaustive import ChunkTask, audit_chunk
from gelu_audit.audits.known_blocks import (
    SATURATED,
    TINY,
    UNDERFLOWED,
    KnownBlock,
    KnownRegion,
    known_region,
    tiny_bounds,
)
from gelu_audit.audits.policies import Policy, Tolerance
from gelu_audit.audits.stats import AnswerBits, ErrorAccumulator, ReferenceBlock, accumulate, reference_blocks
from gelu_audit.implementations.gradient import backward_implementation
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP16, FP32, FP64, BlockInputs, patterns_to_values, values_to_patterns
from gelu_audit.numerics.formulas import ERF, SIGMOID, TANH, Formula, Function
from gelu_audit.references.fast_gradient import fast_references_of

TINY_LOWEST = FP32.emin + 2


def _tiny_top(function: Function) -> int:
    """The highest binade of x in the tiny region (fp32: −29, GELU′ −28)."""
    bounds = tiny_bounds(function, FP32)
    assert bounds is not None
    return math.frexp(bounds[1])[1] - 2


def _patterns(binade: int, negative: bool, offset: int, length: int = 1 << 15) -> np.ndarray:
    """``length`` consecutive fp32 patterns from ``offset`` into the binade of 2^binade."""
    first = int(values_to_patterns(FP32, np.array([math.ldexp(-1.0 if negative else 1.0, binade)]))[0])
    return np.arange(first + offset, first + offset + length, dtype=np.uint64).astype(np.uint32)


def _known(formula: Function, patterns: np.ndarray, top: int) -> KnownBlock:
    """A fresh known block of the patterns (nothing cached in it)."""
    x = patterns_to_values(FP32, patterns)
    served = known_blocks.known_blocks(formula, FP32, x, patterns.astype(np.int64), top, shared=True)
    assert served is not None
    (known,), _ = served
    return known


def _block(formula: Function, patterns: np.ndarray, top: int) -> tuple[KnownBlock, ReferenceBlock]:
    x = patterns_to_values(FP32, patterns)
    index = patterns.astype(np.int64)
    served = known_blocks.known_blocks(formula, FP32, x, index, top, shared=True)
    assert served is not None
    (known,), tiers = served
    ref, computed = fast_references_of(formula, FP32, x)
    assert tiers.counts == computed.counts
    return known, ReferenceBlock.build(FP32, x, index, ref, top)


def _answers(known: KnownBlock, full: ReferenceBlock) -> dict[str, np.ndarray]:
    """RN_T(y), F.gelu's, and answers that differ at a few points (compared first, then the
    summary's share replaced) or at every point (the full arithmetic)."""
    rounded = full.ref.rounded
    worst = int(np.argmax(full.residual))
    nudged = rounded.copy()
    nudged[[0, worst]] = np.nextafter(rounded[[0, worst]].astype(np.float32), np.float32(np.inf))
    flushed = rounded.copy()
    flushed[[1, worst, -1]] = 0.0
    kernel = registry()["torch-gelu"]
    if not isinstance(known.function, Formula):
        kernel = backward_implementation(kernel)
    got = run_implementation(kernel, FP32, "cpu", values_to_patterns(FP32, known.x))
    return {"rounded": rounded, "torch-gelu": got, "nudged": nudged, "flushed": flushed, "zero": 0 * rounded}


def _same_as_the_arithmetic(formula: Function, patterns: np.ndarray, settings, answers: bool) -> bool:
    """Asserts that every state matches; returns whether the prototype served (not the
    computed fallback)."""
    served = []
    for tolerance, top in settings:
        known, full = _block(formula, patterns, top)
        like = ErrorAccumulator(formula.name, tolerance, top)
        served.append(known._carried(like) is not None)
        chosen = _answers(known, full) if answers else {"rounded": full.ref.rounded}
        for name, got in chosen.items():
            known = _known(formula, patterns, top)
            carried = accumulate([known], got, formula.name, tolerance, top)
            computed = ErrorAccumulator(formula.name, tolerance, top)
            computed.fold_block(full, got)
            where = (formula.name, hex(int(patterns[0])), tolerance, top, name)
            assert json.dumps(carried.to_state()) == json.dumps(computed.to_state()), where
    return all(served)


def _binades(function: Function) -> list[tuple[int, bool]]:
    """(binade, negative) of every whole binade in each region, for ``function``."""
    if isinstance(function, Formula):  # x ≥ 2^saturated saturated; x ≤ −2^deepest underflowed
        saturated, deepest = (
            int(math.log2(function.saturated_from)),
            int(math.log2(-function.underflowed_below)),
        )
    else:  # |x| ≥ 2^flat: GELU′ is flat
        saturated = deepest = math.ceil(math.log2(function.flat_from))
    return (
        [(b, s) for b in range(TINY_LOWEST, _tiny_top(function) + 1) for s in (False, True)]
        + [(b, False) for b in range(saturated, FP32.emax + 1)]
        + [(b, True) for b in range(deepest, FP32.emax + 1)]
    )


FUNCTIONS = [ERF, TANH, SIGMOID, ERF.derivative, TANH.derivative, SIGMOID.derivative]


@pytest.mark.slow
@pytest.mark.parametrize("formula", FUNCTIONS, ids=[f.name for f in FUNCTIONS])
def test_prototypes_carried_over_give_the_arithmetic_s_statistics_in_every_binade(formula: Function) -> None:
    """Every binade of the three regions, a different block position in each (the
    prototypes' own binades and the ends included), for each formula and its derivative:
    RN_T(y)'s statistics, carried over, are the arithmetic's, JSON character for character, at
    two tolerances and two ``top``s."""
    for binade, negative in _binades(formula):
        offset = ((binade * 37 + negative * 101) % 256) << 15
        patterns = _patterns(binade, negative, offset)
        assert _same_as_the_arithmetic(formula, patterns, [(2.0, 1), (0.3, 5)], answers=False)


@pytest.mark.slow
@pytest.mark.parametrize("formula", FUNCTIONS, ids=[f.name for f in FUNCTIONS])
def test_a_constant_answer_carries_over_where_rn_is_constant(formula: Function) -> None:
    """Where RN_T(y) is one constant and every residual 0 (the underflowed tail: −0; GELU′'s
    flat tails: 1 and −0), a block answered with one other constant (+0, what backward kernels
    return where GELU′ underflows; 1 where it is −0) gets a prototype's statistics for that
    answer, with its wrong zeros; they must be the arithmetic's (every 12th binade of the tails
    and the last). Constants whose errors are not 0 (1 in the underflowed tail, the next float
    above RN) are computed instead."""
    tails = [(b, s) for b, s in _binades(formula) if b > 0]
    for binade, negative in [bs for i, bs in enumerate(tails) if i % 12 == 0 or i == len(tails) - 1]:
        patterns = _patterns(binade, negative, ((binade * 53 + negative * 7) % 256) << 15)
        for tolerance, top in ((2.0, 1), (0.3, 5)):
            known, full = _block(formula, patterns, top)
            rounded = full.ref.rounded
            constant = known.region.constant
            assert constant == bool(np.all(rounded.view(np.int64) == rounded[:1].view(np.int64)))
            for answer in (0.0, 1.0, float(np.nextafter(np.float32(rounded[0]), np.float32(2)))):
                got = np.full(len(rounded), answer)
                if np.array_equal(got.view(np.int64), rounded.view(np.int64)):
                    continue
                like = ErrorAccumulator(formula.name, tolerance, top)
                served = known.answer_summary(like, got) is not None
                errors = ErrorAccumulator(formula.name, tolerance, top)
                errors.fold_block(full, got)
                assert served == (constant and errors.max_ulp == 0)  # where every error is 0
                known = _known(formula, patterns, top)
                carried = accumulate([known], got, formula.name, tolerance, top)
                assert (known._full is None) == served  # served: no reference computed
                where = (formula.name, hex(int(patterns[0])), tolerance, top, answer)
                assert json.dumps(carried.to_state()) == json.dumps(errors.to_state()), where


@pytest.mark.parametrize(
    ("function", "binade", "negative"),
    [
        *(
            (ERF, b, s)
            for b, s in (
                (TINY_LOWEST, False),
                (-100, True),
                (-90, False),
                (-70, True),
                (-56, False),
                (-55, True),
                (-40, False),
                (-29, True),
            )
        ),
        *(
            (ERF, b, s)
            for b, s in ((10, False), (40, False), (127, False), (16, True), (40, True), (127, True))
        ),
        *(
            (ERF.derivative, b, s)
            for b, s in (
                (-100, True),
                (-56, False),
                (-40, True),
                (-28, False),
                (6, False),
                (127, False),
                (6, True),
            )
        ),
    ],
    ids=str,
)
def test_answers_that_differ_take_the_ordinary_path_with_the_same_numbers(
    function: Function, binade: int, negative: bool
) -> None:
    """F.gelu's answers (or its backward's), answers one ulp off at the first and the worst
    point, flushed at three points, and zero everywhere. A tolerance of 0 has every tiny
    residual above it: there the block is computed instead (the exact tails still serve, their
    residuals are all 0)."""
    patterns = _patterns(binade, negative, (7 if negative else 200) << 15)
    assert _same_as_the_arithmetic(function, patterns, [(2.0, 1), (0.3, 5)], answers=True)
    tiny = binade < 0
    assert _same_as_the_arithmetic(function, patterns, [(0.0, 3)], answers=True) == (not tiny)
    if (
        tiny and function is ERF
    ):  # 1e-15: above the prototype's residuals (about 1e-20), below those from −73 up
        assert _same_as_the_arithmetic(ERF, patterns, [(1e-15, 2)], answers=True) == (binade < -73)


def test_a_block_cut_short_gets_its_own_prototype() -> None:
    """A chunk that starts or ends mid-block: the short block's prototype has its positions."""
    for offset, length in ((1000, (1 << 15) - 1000), (0, 12345), ((255 << 15) + 5, 100)):
        for binade, negative in ((-80, False), (50, False), (50, True)):
            patterns = _patterns(binade, negative, offset, length)
            assert _same_as_the_arithmetic(TANH, patterns, [(2.0, 5)], answers=True)


def test_only_chunks_wholly_in_one_region_are_known() -> None:
    def region(values: list[float], formula: Formula = ERF):
        x = np.array(values)
        return known_region(formula, FP32, float(x.min()), float(x.max())) if len(x) else None

    low, high = 2.0**TINY_LOWEST, 2.0**-28  # fp32's tiny region: the fast tier's, |x| < 2^(−p−4)
    below = float(np.nextafter(np.float32(high), np.float32(0)))
    assert region([low, below]) is TINY and region([-below, -low]) is TINY
    assert region([2.0**-40, 2.0**-39]) is TINY and region([below, 1e-3]) is None
    assert region([low, high]) is None and region([low / 2, low]) is None and region([-low, low]) is None
    assert region([0.0, low]) is None and region([float("nan"), low]) is None
    assert region([64.0, 3e38]) is SATURATED and region([63.9, 1e4]) is None and region([1e4, np.inf]) is None
    assert region([32.0, 3e38], TANH) is SATURATED and region([31.9, 64.0], TANH) is None
    assert region([512.0, 1e3], SIGMOID) is SATURATED and region([511.9, 1e3], SIGMOID) is None
    assert region([-3e38, -64.0]) is UNDERFLOWED and region([-3e38, -63.9]) is None
    assert region([-3e38, -32.0], TANH) is UNDERFLOWED and region([-np.inf, -1e5]) is None
    assert region([-3e38, -1024.0], SIGMOID) is UNDERFLOWED and region([-3e38, -1023.9], SIGMOID) is None
    assert known_region(ERF, FP64, 1e4, 1e5) is None and known_region(ERF.derivative, FP64, 1e4, 1e5) is None
    gradient = {r.name: r for r in known_blocks.GRADIENT_REGIONS}
    assert known_region(ERF.derivative, FP32, 40.0, 1e5) is gradient["saturated"]
    assert known_region(ERF.derivative, FP32, 39.9, 1e5) is None
    assert known_region(SIGMOID.derivative, FP32, 400.0, 1e5) is None  # flat from 500
    assert known_region(ERF.derivative, FP32, -1e5, -40.0) is gradient["underflow"]
    assert known_region(ERF.derivative, FP32, -1e5, -39.9) is None
    assert known_region(ERF.derivative, FP32, low, 2 * below) is gradient["tiny"]  # GELU′'s: 2^(−p−3)
    assert known_region(ERF.derivative, FP32, low, 2 * high) is None
    assert known_region(ERF, FP16, 1e-20, 1e-19) is None  # not fp16's tiny region: no such values
    x = np.array([1e4])
    assert known_blocks.known_blocks(ERF, FP32, x[:0], x[:0].astype(np.int64), 5, False) is None


def test_a_chunk_of_the_stream_gives_the_same_results_with_and_without_known_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """audit_chunk over four blocks of each region, forward and backward, one implementation and
    two (shared blocks)."""
    starts = [_patterns(-60, False, 0, 1)[0], _patterns(-60, True, 64 << 15, 1)[0]]
    starts += [_patterns(20, False, 96 << 15, 1)[0], _patterns(30, True, 0, 1)[0]]
    one, two = ("torch-gelu", "cpu"), ("torch-gelu-tanh", "cpu")
    for pattern, pass_, cases in itertools.product(starts, ("forward", "backward"), ((one,), (one, two))):
        formulas = ("erf", "tanh") if pass_ == "forward" else ("erf-grad", "tanh-grad")
        task = ChunkTask("fp32", int(pattern), int(pattern) + (1 << 17), formulas, cases, 2.0, 5, pass_=pass_)
        carried = audit_chunk(task)
        with monkeypatch.context() as patch:
            patch.setattr(exhaustive, "known_blocks_of", lambda *args, **kwargs: None)
            computed = audit_chunk(task)
        assert not carried.errors
        assert {k: v.to_state() for k, v in carried.accumulators.items()} == {
            k: v.to_state() for k, v in computed.accumulators.items()
        }, (hex(int(pattern)), pass_, cases)
        assert {k: v.counts for k, v in carried.tiers.items()} == {
            k: v.counts for k, v in computed.tiers.items()
        }


def test_inputs_that_are_not_consecutive_patterns_are_not_known() -> None:
    """A prototype is found by a block's first pattern and length, which names its inputs only
    when they are consecutive patterns (as every chunk of the stream is)."""
    patterns = _patterns(-80, False, 0, 300)
    x, index = patterns_to_values(FP32, patterns), patterns.astype(np.int64)
    assert known_blocks.known_blocks(ERF, FP32, x[:100], index[:100], 5, False) is not None
    assert known_blocks.known_blocks(ERF, FP32, x[::3], index[::3], 5, False) is None
    assert known_blocks.known_blocks(ERF, FP32, x[:100], index[:100] + 1, 5, False) is None


def test_a_range_of_patterns_is_judged_by_its_ends_as_by_all_its_inputs() -> None:
    """``consecutive``: a range of patterns judged from its two ends is judged as from every
    input's value, next to zeros, infinities, NaN patterns, the sign bit, and the edges of each
    region of each formula and derivative."""
    specials = [0x0, 0x7F800000, 0x7FC00000, 0x80000000, 0xFF800000, 0xFFFFFFC0]
    edges = [
        int(_patterns(b, negative, 0, 1)[0]) for b in (-29, -28, 5, 6, 9, 10) for negative in (False, True)
    ]
    for function in (ERF, TANH, SIGMOID, ERF.derivative, TANH.derivative):
        for edge, (before, length) in itertools.product(
            specials + edges, ((0, 64), (64, 64), (32, 64), (1, 1))
        ):
            first = max(edge - before, 0)
            patterns = np.arange(first, min(first + length, 1 << 32), dtype=np.uint64).astype(np.uint32)
            x, index = patterns_to_values(FP32, patterns), patterns.astype(np.int64)
            judged = known_blocks.known_blocks(function, FP32, x, index, 5, False, consecutive=True)
            scanned = known_blocks.known_blocks(function, FP32, x, index, 5, False)
            assert (judged is None) == (scanned is None), (function, hex(first), length)
            if judged is not None and scanned is not None:
                assert judged[1].counts == scanned[1].counts
    assert (
        known_blocks.known_blocks(ERF, FP32, *_range(0x7F7FFFC0, 64), 5, False, consecutive=True) is not None
    )
    ends = np.array(
        [0x7F7FFFF0, 0x80000010]
    )  # the ends of a range across +inf, the positive NaNs and the sign bit
    first, last = patterns_to_values(FP32, ends.astype(np.uint32))
    assert known_blocks._range_extremes(FP32, first, last, int(ends[0]), int(ends[1])) is None


def _range(first: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    patterns = np.arange(first, first + length, dtype=np.uint64).astype(np.uint32)
    return patterns_to_values(FP32, patterns), patterns.astype(np.int64)


def _halfway_policies(rel_residual: np.ndarray, abs_residual: np.ndarray) -> tuple[Policy, ...]:
    """A relative and an absolute policy, each halfway between the smallest and largest
    nonzero error given, so that they break at some points and not at others; 0 and 0, which
    break at every point with an error; one against RN_T(y), which never breaks."""
    relative, absolute = (float(np.ptp(r[r > 0]) / 2 + r[r > 0].min()) for r in (rel_residual, abs_residual))
    rules = {
        "relative": Tolerance(relative, 0.0),
        "absolute": Tolerance(0.0, absolute),
        "none": Tolerance(0.0, 0.0),
        "rounded": Tolerance(0.0, 0.0, rounded_reference=True),
    }
    return tuple(Policy(name, "test", "tiny", {"fp32": rule}) for name, rule in rules.items())


@pytest.mark.parametrize(
    ("function", "binade", "negative"),
    [(ERF, -40, True), (TANH, -29, False), (SIGMOID, -45, False), (ERF.derivative, -30, True)],
    ids=str,
)
def test_tiny_blocks_compute_their_errors_against_y_where_float64_no_longer_rounds_it_away(
    function: Function, binade: int, negative: bool
) -> None:
    """Above 2^−55, y as float64 is not RN_T(y): the absolute and relative errors and the
    policies' ratios are computed per block, the ULP statistics carried. The policies: a
    relative and an absolute one, each halfway between the block's smallest and largest
    error, so that they break at some points and not at others; 0 and 0, which break at every
    point with an error; one against RN_T(y), which never breaks. Their counts, ratios and
    worst inputs must be the arithmetic's, for RN_T(y), F.gelu's answers and answers a few
    points off."""
    patterns = _patterns(binade, negative, 77 << 15)
    known, full = _block(function, patterns, 3)
    policies = _halfway_policies(full.rel_residual, full.abs_residual)
    like = ErrorAccumulator(function.name, 2.0, 3, policies=policies)
    assert known._carried(like) is not None  # served, not computed
    for name, got in _answers(known, full).items():
        carried = accumulate([_known(function, patterns, 3)], got, function.name, 2.0, 3, policies)
        computed = like.empty_like()
        computed.fold_block(full, got)
        assert json.dumps(carried.to_state()) == json.dumps(computed.to_state()), name
    rounded = like.empty_like()
    rounded.fold_block(full, full.ref.rounded)
    breaks = {name: tally.finite_breaks for name, tally in rounded.tallies.items()}
    assert 0 < breaks["relative"] < len(patterns) and 0 < breaks["absolute"] < len(patterns), breaks
    assert breaks["none"] == np.count_nonzero(full.abs_residual) > 0 and breaks["rounded"] == 0, breaks


@pytest.mark.parametrize(
    ("function", "binade", "negative"),
    [
        (ERF, -100, False),
        (ERF, -40, True),
        (TANH, 50, False),
        (ERF, 50, True),
        (ERF.derivative, -30, False),
        (ERF.derivative, 60, True),
        (SIGMOID.derivative, 60, False),
    ],
    ids=str,
)
def test_a_whole_chunk_carried_at_once_equals_its_blocks_folded_one_by_one(
    function: Function, binade: int, negative: bool
) -> None:
    """A chunk answered with RN_T(y) throughout, or with one constant whose errors are all 0
    where RN_T(y) is a constant, is carried over at once (``KnownChunk.whole_summary``). Its
    statistics must be the arithmetic's block by block (eight blocks, from mid-binade, the
    tiny region below and above 2^−55, both tails, forward and backward). An answer one ulp
    off at a single point is not known at once: each block is asked, with the same result.
    The same answers as the format's bit patterns (``AnswerBits``, as the stream hands them
    over) give the same statistics, the same way."""
    patterns = _patterns(binade, negative, 3 << 15, 1 << 18)
    x, index = patterns_to_values(FP32, patterns), patterns.astype(np.int64)
    ref, _ = fast_references_of(function, FP32, x)
    computed_blocks = reference_blocks(FP32, x, index, ref, 5)
    rounded = ref.rounded
    nudged = rounded.copy()
    nudged[77777] = np.nextafter(np.float32(rounded[77777]), np.float32(np.inf))
    constant = known_region(function, FP32, float(x.min()), float(x.max())).constant
    zero_errors = constant and not rounded.any()  # +0 where RN_T(y) is −0: a wrong zero, no error
    answers = {
        "rounded": (rounded, True),
        "rounded, as float32": (rounded.astype(np.float32), True),
        "+0": (np.zeros(len(x)), zero_errors),
        "nudged": (nudged, False),
    }
    for (name, (got, whole)), as_bits in itertools.product(answers.items(), (False, True)):
        given = AnswerBits(FP32, values_to_patterns(FP32, got)) if as_bits else got
        served = known_blocks.known_blocks(function, FP32, x, index, 5, shared=True)
        assert served is not None
        chunk, _ = served
        like = ErrorAccumulator(function.name, 2.0, 5)
        assert (chunk.whole_summary(like, given) is not None) == whole, (name, as_bits)
        carried = accumulate(chunk, given, function.name, 2.0, 5)
        computed = accumulate(computed_blocks, got, function.name, 2.0, 5)
        assert json.dumps(carried.to_state()) == json.dumps(computed.to_state()), (name, as_bits)


@pytest.mark.parametrize("start", [2.0**-100, -(2.0**-100), 2.0**70, -(2.0**70)], ids=str)
def test_inputs_across_a_binade_boundary_are_carried_block_by_block(start: float) -> None:
    """Consecutive patterns that cross a binade boundary at a block boundary: each block is in
    one binade and carried, the chunk as a whole is not (one scaling cannot carry both), and
    the statistics are the arithmetic's, for RN_T(y) and for +0. A float32 answer is taken as
    its float64 values."""
    first = int(values_to_patterns(FP32, np.array([start]))[0]) - 64
    patterns = np.arange(first, first + 128, dtype=np.uint64).astype(np.uint32)
    x, index = patterns_to_values(FP32, patterns), patterns.astype(np.int64)
    ref, _ = fast_references_of(ERF, FP32, x)
    served = known_blocks.known_blocks(ERF, FP32, x, index, 5, shared=True)
    assert served is not None
    chunk, _ = served
    assert len(chunk) == 2 and chunk.whole is None
    for got in (ref.rounded, np.zeros(len(x)), ref.rounded.astype(np.float32)):
        carried = accumulate(chunk, got, ERF.name, 2.0, 5)
        computed = accumulate(reference_blocks(FP32, x, index, ref, 5), got, ERF.name, 2.0, 5)
        assert json.dumps(carried.to_state()) == json.dumps(computed.to_state())


@pytest.mark.parametrize(
    ("function", "binade", "negative"),
    [(ERF, -40, True), (TANH, -29, False), (ERF.derivative, -30, False)],
    ids=str,
)
def test_a_whole_chunk_above_2_to_the_minus_55_breaks_policies_as_its_blocks_do(
    function: Function, binade: int, negative: bool
) -> None:
    """A whole chunk's errors against y as float64 are computed a slice at a time and merged
    (``_float64_errors``): each policy's breaks add up over the slices, and its worst input is
    the first of the largest ratios over the whole chunk. With policies that break at part of
    the chunk, at every point with an error (equal ratios, inf, in every slice), and never, the
    carried statistics must be the arithmetic's block by block."""
    patterns = _patterns(binade, negative, 3 << 15, 1 << 18)
    x, index = patterns_to_values(FP32, patterns), patterns.astype(np.int64)
    ref, _ = fast_references_of(function, FP32, x)
    computed_blocks = reference_blocks(FP32, x, index, ref, 5)
    residuals = [
        np.concatenate([getattr(b, name) for b in computed_blocks])
        for name in ("rel_residual", "abs_residual")
    ]
    policies = _halfway_policies(*residuals)
    chunk, _ = known_blocks.known_blocks(function, FP32, x, index, 5, shared=False)
    like = ErrorAccumulator(function.name, 2.0, 5, policies=policies)
    assert chunk.whole_summary(like, ref.rounded) is not None
    carried = accumulate(chunk, ref.rounded, function.name, 2.0, 5, policies)
    computed = accumulate(computed_blocks, ref.rounded, function.name, 2.0, 5, policies)
    assert json.dumps(carried.to_state()) == json.dumps(computed.to_state())
    breaks = {name: tally.finite_breaks for name, tally in computed.tallies.items()}
    assert 0 < breaks["relative"] < len(x) and 0 < breaks["absolute"] < len(x), breaks
    assert breaks["none"] == np.count_nonzero(residuals[1]) > 0 and breaks["rounded"] == 0, breaks


@pytest.mark.parametrize("region", [TINY, SATURATED], ids=lambda r: r.name)
def test_rn_s_patterns_from_the_inputs_patterns_are_rn_s_own(region: KnownRegion) -> None:
    """Where RN_T(y) is not a constant, a chunk given by its patterns gets RN_T(y)'s patterns
    in integer arithmetic (``KnownRegion.rounded_patterns``): in every binade of the region,
    both signs and both ends of each binade, they are the patterns of ``rounded(x)``."""
    assert region.rounded_patterns is not None
    binades = [b for b, _ in _binades(ERF) if known_region(ERF, FP32, *_binade_range(b)) is region]
    assert len(binades) > 50
    for binade, negative in itertools.product(set(binades), (False, True)):
        for offset in (0, (1 << 23) - 64):
            patterns = _patterns(binade, negative, offset, 64)
            x = patterns_to_values(FP32, patterns)
            if known_region(ERF, FP32, float(x.min()), float(x.max())) is not region:
                continue
            expected = values_to_patterns(FP32, region.rounded(x))
            assert np.array_equal(region.rounded_patterns(FP32, patterns), expected), (binade, negative)


def _binade_range(binade: int) -> tuple[float, float]:
    return math.ldexp(1.0, binade), math.ldexp(1.0, binade + 1) * (1 - 2.0**-24)


@pytest.mark.parametrize(
    ("function", "binade", "negative"),
    [
        (ERF, -100, False),
        (ERF, -40, True),
        (ERF, 50, False),
        (ERF, 50, True),
        (ERF.derivative, -100, True),
        (ERF.derivative, -40, False),
        (ERF.derivative, 60, True),
    ],
    ids=str,
)
def test_a_chunk_given_by_its_patterns_is_decoded_only_where_needed(
    function: Function, binade: int, negative: bool
) -> None:
    """A stream's chunk is given by its patterns (``BlockInputs``). Known throughout and
    answered with RN_T(y), its statistics are the same as from its values and indices, and it
    decodes its values only where a tiny chunk computes its errors against y as float64 (above
    2^−55), never its indices, and its patterns say so (the summary carried is RN_T(y)'s, not a
    constant answer's); an answer that differs decodes them and gives the same statistics
    too."""
    patterns = _patterns(binade, negative, 3 << 15, 1 << 17)
    x, index = patterns_to_values(FP32, patterns), patterns.astype(np.int64)
    ref, _ = fast_references_of(function, FP32, x)
    nudged = ref.rounded.copy()
    nudged[777] = np.nextafter(np.float32(nudged[777]), np.float32(np.inf))
    for got, whole in ((ref.rounded, True), (nudged, False)):
        inputs = BlockInputs(FP32, patterns=patterns)
        served = known_blocks.known_blocks_of(function, FP32, inputs, 5, shared=True, consecutive=True)
        assert served is not None
        chunk, _ = served
        answers = AnswerBits(FP32, values_to_patterns(FP32, got))
        given = accumulate(chunk, answers, function.name, 2.0, 5)
        arrays, _ = known_blocks.known_blocks(function, FP32, x, index, 5, shared=True, consecutive=True)
        assert json.dumps(given.to_state()) == json.dumps(
            accumulate(arrays, got, function.name, 2.0, 5).to_state()
        )
        computes_float64 = TINY.holds(function, FP32, float(x.min()), float(x.max())) and binade > -56
        if whole:
            assert (inputs._x is not None) == computes_float64 and inputs._index is None
            assert chunk.whole is not None and [answer for _, answer in chunk.whole._summaries] == [None]
