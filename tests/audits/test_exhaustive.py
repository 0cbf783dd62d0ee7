"""Exhaustive fp32 streaming: results independent of chunking, jobs and shards; merge; errors."""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from gelu_audit.audits import exhaustive, fused, stats
from gelu_audit.audits.exhaustive import ChunkTask, PatternSpace, Shard, audit_chunk, parse_shard, stream
from gelu_audit.audits.stats import (
    ErrorAccumulator,
    InputValues,
    ReferenceBlock,
    accumulate,
    block_slices,
    reference_blocks,
)
from gelu_audit.errors import UsageError
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FP32, patterns_to_values
from gelu_audit.numerics.formulas import ERF, TANH, Formula, Pass
from gelu_audit.numerics.inputs import parse_range
from gelu_audit.references.fast_tier import fast_references
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier, TierBackend
from tests.helpers import assert_usage_error, run_cli

CASES = (("torch-gelu", "cpu"), ("numpy-tanh", "cpu"))


def states(outcome) -> dict:
    return {key: case.to_state() for key, case in outcome.accumulators.items()}


def test_pattern_space_of_a_range() -> None:
    space = PatternSpace(FP32, parse_range("-1:2"))
    values = [
        float(patterns_to_values(FP32, np.array([p], np.uint32))[0])
        for a, b in space.intervals()
        for p in (a, b - 1)
    ]
    assert sorted(values) == [-1.0, -0.0, 0.0, 2.0]
    assert space.count() == sum(b - a for a, b in space.intervals())
    assert space.lowest_above(-np.inf) == -1.0 and space.highest_below(np.inf) == 2.0
    assert space.lowest_above(1.0) == float(np.nextafter(np.float32(1), np.float32(2)))
    whole = PatternSpace(FP32)
    assert whole.count() == 1 << 32
    assert sum(PatternSpace(FP32, None, Shard(k, 5)).count() for k in range(1, 6)) == 1 << 32


def test_chunk_size_and_jobs_do_not_change_results() -> None:
    space = PatternSpace(FP32, parse_range("-6:-5.5"))
    args = (FP32, space, ("erf", "tanh"), CASES, 2.0, 5)
    small = stream(*args, jobs=1, chunk_size=1 << 15)
    large = stream(*args, jobs=1, chunk_size=1 << 20)
    parallel = stream(*args, jobs=2, chunk_size=1 << 17)
    assert states(small) == states(large) == states(parallel)
    assert small.tiers["erf"].counts == parallel.tiers["erf"].counts


@pytest.mark.slow
@pytest.mark.parametrize("pass_", list(Pass), ids=str)
def test_the_torch_tier_streams_the_scipy_tiers_numbers(pass_: Pass) -> None:
    """Every accumulator state and region count of a stream, bit for bit, with the references'
    region ``fast`` run by torch on the CPU (in this process, and in the stream's worker
    processes): where the negative tail underflows, where the positive one saturates, and in
    the core, with kernels claiming erf and tanh."""
    cases = (("torch-gelu", "cpu"), ("torch-gelu-tanh", "cpu"))
    functions = ("erf", "tanh") if pass_ is Pass.FORWARD else ("erf-grad", "tanh-grad")
    seen: dict[str, int] = {}
    for text, jobs in (("-15:-14.4", 1), ("5.9:6.1", 1), ("0.5:0.52", 2)):
        args = (FP32, PatternSpace(FP32, parse_range(text)), functions, cases, 2.0, 5)
        scipy = stream(*args, jobs=jobs, pass_=pass_)
        torch_tier = stream(*args, jobs=jobs, pass_=pass_, tier=ReferenceTier(TierBackend.TORCH, "cpu"))
        assert states(scipy) == states(torch_tier), text
        assert scipy.tiers == torch_tier.tiers, text
        assert not scipy.errors and not torch_tier.errors
        for region, count in scipy.tiers[functions[0]].counts.items():
            seen[region] = seen.get(region, 0) + count
    assert all(seen[region] > 0 for region in ("saturated", "underflow", "fast")), seen


def test_passes_over_a_chunk_give_the_whole_chunk_s_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk that is not known throughout is compared in passes of ``PASS`` inputs, cut at
    global multiples of it: the exact sums, tallies and worst inputs must be those of the whole
    chunk at once, for a chunk that starts mid-block and crosses a binade (8), with ATen's
    kernel (whose answers depend on how its input is cut, so it must still run on the whole
    chunk) and a kernel claiming tanh."""
    start = int(np.array([7.99], np.float32).view(np.uint32)[0]) + 12345
    task = ChunkTask(
        "fp32",
        start,
        start + 300_000,
        ("erf", "tanh"),
        (("torch-gelu-aten", "cpu"), ("numpy-tanh", "cpu")),
        2.0,
        5,
    )
    assert start % exhaustive.PASS and task.stop - task.start > 4 * exhaustive.PASS  # the premises
    passes = audit_chunk(task)
    monkeypatch.setattr(exhaustive, "PASS", 1 << 20)
    whole = audit_chunk(task)
    assert {k: c.to_state() for k, c in passes.accumulators.items()} == {
        k: c.to_state() for k, c in whole.accumulators.items()
    }
    assert passes.tiers == whole.tiers and passes.points == whole.points == 300_000


def test_a_torch_tier_takes_a_chunk_s_passes_that_are_not_known_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The torch tier computes a chunk's references in one call per formula over every pass
    that is not known (on a GPU each of its operations is a launch: once a chunk, not once a
    64K pass), with the SciPy tier's states and region counts pass by pass: in the core, and in
    a chunk that starts mid-block and whose last passes are known (erf saturates from 64, tanh
    from 32, so its passes there are known throughout)."""
    calls: list[str] = []
    tiers: set[ReferenceTier] = set()
    counted = exhaustive.fast_references_of

    def counting(function, *args, **kwargs):  # a pass-through spy
        calls.append(function.name)
        tiers.add(kwargs["tier"])
        return counted(function, *args, **kwargs)

    monkeypatch.setattr(exhaustive, "fast_references_of", counting)
    pass_ = exhaustive.PASS
    sixty_four = int(np.array([64.0], np.float32).view(np.uint32)[0])
    core = int(np.array([1.3], np.float32).view(np.uint32)[0]) + 777
    cases = (("torch-gelu", "cpu"), ("numpy-tanh", "cpu"))
    chunks = {  # (start, stop): the passes not known, per formula
        (sixty_four - 3 * pass_ - 12345, sixty_four + 2 * pass_): {"erf": 4},  # of 6; tanh's all known
        (core, core + 3 * pass_ + 999): {"erf": 4, "tanh": 4},  # cut at 38,545, 104,081 and 169,617
    }
    torch_cpu = ReferenceTier(TierBackend.TORCH, "cpu")
    for (start, stop), unknown in chunks.items():
        task = ChunkTask("fp32", start, stop, ("erf", "tanh"), cases, 2.0, 5)
        calls.clear()
        tiers.clear()
        scipy = audit_chunk(task)
        assert sorted(calls) == sorted(f for f, passes in unknown.items() for _ in range(passes)), calls
        assert tiers == {SCIPY_TIER}
        calls.clear()
        tiers.clear()
        torch_tier = audit_chunk(replace(task, tier=torch_cpu))
        assert sorted(calls) == sorted(unknown) and tiers == {torch_cpu}, calls  # once for the chunk
        assert {k: c.to_state() for k, c in scipy.accumulators.items()} == {
            k: c.to_state() for k, c in torch_tier.accumulators.items()
        }
        assert scipy.tiers == torch_tier.tiers and list(scipy.tiers) == list(
            torch_tier.tiers
        )  # the JSON's order
        assert not scipy.errors and not torch_tier.errors


def test_streamed_statistics_equal_the_in_memory_ones() -> None:
    """The same inputs through the stream (pattern space) and as one in-memory array."""
    space = PatternSpace(FP32, parse_range("-5.6:-5.4"))
    outcome = stream(FP32, space, ("erf",), (("torch-gelu", "cpu"),), 2.0, 5)
    streamed = outcome.accumulators[("torch-gelu", "cpu")].exact.finish(FP32, space)
    ((a, b),) = space.intervals()
    patterns = np.arange(a, b, dtype=np.uint32)
    x = patterns_to_values(FP32, patterns)
    ref, _ = fast_references(ERF, FP32, x)
    got = run_implementation(registry()["torch-gelu"], FP32, "cpu", patterns)
    blocks = reference_blocks(FP32, x, patterns.astype(np.int64), ref, 5)
    in_memory = accumulate(blocks, got, "exact", 2.0, 5).finish(FP32, InputValues(x))
    assert streamed == in_memory
    assert streamed.accurate_domain.failure_below is not None  # F.gelu flushes to 0 here


@pytest.mark.parametrize(
    "args, message",
    [
        (["-d", "fp64", "--exhaustive"], "cannot cover fp64"),
        (["-d", "fp32", "--shard", "1/2", "-f", "json"], "add --exhaustive"),
        (["-d", "fp16,fp32", "--exhaustive", "--shard", "1/2", "-f", "json"], "--dtype fp32 alone"),
        (["-d", "fp32", "--exhaustive", "--shard", "1/2"], "add --format json"),
        (["-d", "fp32", "--exhaustive", "--shard", "3/2", "-f", "json"], "need 1 ≤ K ≤ N"),
        (["-d", "fp32", "--exhaustive", "--chunk-size", "1000"], "--chunk-size must be a power of two"),
    ],
)
def test_exhaustive_usage_errors(args: list[str], message: str) -> None:
    assert_usage_error(run_cli("accuracy", *args), message)


def test_parse_shard() -> None:
    assert parse_shard("2/8") == Shard(2, 8)
    for bad in ("2", "a/b", "0/3", "1/99999"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def blocks_from(
    starts: Sequence[int], formula: Formula = ERF
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ReferenceValues]:
    """Whole 32K blocks of fp32 patterns from each start: patterns, x, index, references."""
    patterns = np.concatenate([np.arange(s, s + (1 << 15), dtype=np.uint64) for s in starts]).astype(
        np.uint32
    )
    x = patterns_to_values(FP32, patterns)
    ref, _ = fast_references(formula, FP32, x)
    return patterns, x, patterns.astype(np.int64), ref


def replace_in_computed_blocks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Have computed blocks replace a differing share of up to a quarter into their summary, as
    stored and known blocks do (left to themselves they fold a block that differs whole,
    which is faster): the replacement's arithmetic, tested on blocks whose full arithmetic is
    at hand. Returns the list each call of ``replaced`` appends to (True: it served)."""
    outcomes: list[bool] = []
    replaced = ErrorAccumulator.replaced

    def spy(self, *args):  # the real method, counted
        part = replaced(self, *args)
        outcomes.append(part is not None)
        return part

    monkeypatch.setattr(ErrorAccumulator, "replaced", spy)
    monkeypatch.setattr(
        ReferenceBlock, "worth_replacing", lambda self, like, differing: 4 * differing <= len(self.x)
    )
    return outcomes


@pytest.mark.parametrize("tolerance", [2.0, 0.3])  # 0.3: correctly rounded points fail too
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("replacing", [False, True])
def test_compare_first_gives_the_statistics_of_the_full_arithmetic(
    tolerance: float, compiled: bool, replacing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block answered with RN_T(y) throughout takes the block's shared summary; one that
    differs anywhere is folded whole (faster, with the compiled loop or without). Stored and
    known blocks replace the differing points' share of their summary instead, or fold where
    that cannot be exact: ``replacing`` has computed blocks do the same, at up to a quarter
    of a block. Every path must give the state the full arithmetic gives, in JSON, character
    for character, whatever the mix of blocks, with the compiled loop and in NumPy."""
    if not compiled:
        monkeypatch.setattr(fused, "library", lambda: None)
    elif fused.library() is None:
        pytest.skip("the compiled fold is not built here (no C compiler at install)")
    outcomes = replace_in_computed_blocks(monkeypatch) if replacing else []
    starts = (
        0x00000000,  # subnormals: flushed by F.gelu
        0x20000000,  # tiny
        0x3F800000,  # [1, 1.004]
        0x43000000,  # saturated
        0x7F7F8000,  # the top of the range: oneDNN overflows to inf
        0x7F800000,  # inf and NaNs
        0x80400000,  # negative subnormals
        0xBF800000,  # [-1.004, -1]
        0xC0200000,  # [-2.5, -2.49]
        0xC3000000,  # underflowed tail
    )
    patterns, x, index, ref = blocks_from(starts)
    like = ErrorAccumulator("exact", tolerance, 5)
    shared = reference_blocks(FP32, x, index, ref, 5)
    for block in shared:
        block.summary(like)  # as a second implementation finds them
    whole = 0
    for name in ("torch-gelu", "numpy-erf", "torch-gelu-aten", "torch-erf-composite"):
        got = run_implementation(registry()[name], FP32, "cpu", patterns)
        compared = accumulate(shared, got, "exact", tolerance, 5)
        full = ErrorAccumulator("exact", tolerance, 5)
        for k, block in enumerate(reference_blocks(FP32, x, index, ref, 5)):
            part = got[k << 15 : (k + 1) << 15]
            whole += not block.differs(part).any()
            full.fold_block(block, part)
        assert json.dumps(compared.to_state()) == json.dumps(full.to_state()), name  # NaN == NaN
    if replacing:
        assert whole and True in outcomes and False in outcomes  # all three paths were taken
    else:
        assert whole and not outcomes  # RN_T(y)'s summary where it serves, else the whole block


def _one_ulp_up(values: np.ndarray) -> np.ndarray:
    as32 = values.astype(np.float32)
    return np.nextafter(as32, np.float32(np.inf)).astype(np.float64)


@pytest.mark.parametrize("tolerance", [2.0, 0.3])
def test_replacing_a_few_points_of_a_summary_is_exact(
    tolerance: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers that differ from RN_T(y) at a few chosen points: where the summary keeps its
    worst inputs (the largest residual), its policies' worst (the first point), a zero whose
    sign flips (the same error, a different answer), results flushed to zero, and errors that
    break the tolerance policies. The blocks replace those points' share of their summary (as
    stored and known blocks do), and the replacement must serve for most of them."""
    outcomes = replace_in_computed_blocks(monkeypatch)
    starts = (0x3F800000, 0xC2000000, 0xC3000000, 0x00000000)
    _, x, index, ref = blocks_from(starts)
    like = ErrorAccumulator("exact", tolerance, 5)
    for k in range(len(starts)):
        part = slice(k << 15, (k + 1) << 15)
        rounded = ref.rounded[part]
        worst = int(np.argmax(reference_blocks(FP32, x[part], index[part], ref.take(part), 5)[0].residual))
        nudged = rounded.copy()
        nudged[worst] = _one_ulp_up(rounded[worst : worst + 1])[0]
        flipped = rounded.copy()
        flipped[0] = -rounded[0] if rounded[0] == 0 else _one_ulp_up(rounded[:1])[0]
        both = nudged.copy()
        both[0] = flipped[0]
        flushed = rounded.copy()  # three non-zero results flushed to zero (the tail has none)
        nonzero = np.flatnonzero(rounded != 0)
        flushed[nonzero[[0, len(nonzero) // 2, -1]] if nonzero.size else []] = 0.0
        far = rounded.copy()  # 1% off at two points: every tolerance policy breaks there
        far[[5, worst]] = (rounded[[5, worst]] * 1.01).astype(np.float32)
        for got in (nudged, flipped, both, flushed, far):
            (block,) = reference_blocks(FP32, x[part], index[part], ref.take(part), 5)
            block.summary(like)
            compared = accumulate([block], got, "exact", tolerance, 5)
            full = ErrorAccumulator("exact", tolerance, 5)
            full.fold_block(reference_blocks(FP32, x[part], index[part], ref.take(part), 5)[0], got)
            assert json.dumps(compared.to_state()) == json.dumps(full.to_state()), hex(starts[k])
    assert outcomes.count(True) > len(outcomes) // 2


def _block_start(value: float) -> int:
    """The first pattern of the 32K block that holds the fp32 ``value``."""
    return int(np.array([value], np.float32).view(np.uint32)[0]) & ~((1 << 15) - 1)


@pytest.mark.parametrize("formula", [ERF, TANH])
def test_exact_blocks_skip_the_arithmetic_with_the_same_numbers(
    formula: Formula, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block whose residuals are all exactly 0 (``ReferenceBlock.exact``: the saturated and
    underflowed tails) skips the per-point arithmetic where the answer is RN_T(y). Over a
    sweep of the whole space and the blocks where exactness begins (the saturated x near 38,
    the underflow near -42 for erf, nearer 0 for tanh), the block's arrays and every
    accumulator state must be those of the arithmetic, for RN_T(y) and for F.gelu's answers,
    alone and shared (then also compared first: summaries, and replaced points as stored and
    known blocks replace them), at two tolerances and two ``top``s."""
    edges = [37.0, 38.0, 39.0, 40.0, -26.0, -27.0, -28.0, -41.0, -41.5, -41.7, -42.0, -43.0]
    starts = sorted({k << 27 for k in range(32)} | {_block_start(v) for v in edges})
    patterns, x, index, ref = blocks_from(starts, formula)
    got = run_implementation(registry()["torch-gelu"], FP32, "cpu", patterns)
    answers = (ref.rounded, got)  # RN_T(y), F.gelu
    settings = [(2.0, 1), (0.3, 5)]  # tolerance, top
    outcomes = replace_in_computed_blocks(monkeypatch)

    def fold_all(shared: bool) -> tuple[list[bool], list[str]]:
        found = []
        for answer, (tolerance, top) in itertools.product(answers, settings):
            blocks = reference_blocks(FP32, x, index, ref, top, shared)
            total = ErrorAccumulator(formula.name, tolerance, top)
            for block, part in zip(blocks, block_slices(index), strict=True):
                one = ErrorAccumulator(formula.name, tolerance, top)
                one.fold_block(block, answer[part])
                total.merge(one)
                found.append(json.dumps(one.to_state()))
            found.append(json.dumps(total.to_state()))
            if shared:  # compare first: summaries, replaced points (sub-blocks may be exact)
                compared = accumulate(blocks, answer, formula.name, tolerance, top)
                found.append(json.dumps(compared.to_state()))
        names = ("finite", "residual", "abs_residual", "rel_residual", "normal", "sketch", "histogram")
        arrays = [
            repr([getattr(b, name).dtype.str + getattr(b, name).tobytes().hex() for name in names])
            for b in blocks
        ]
        return [b.exact for b in blocks], arrays + found

    for shared in (False, True):
        exact, skipping = fold_all(shared)
        assert any(exact) and not all(exact)
        with monkeypatch.context() as patch:
            patch.setattr(stats, "_exact_block", lambda *args: False)
            never, arithmetic = fold_all(shared)
        assert not any(never)
        assert len(skipping) == len(arithmetic)
        for mine, theirs in zip(skipping, arithmetic, strict=True):
            assert mine == theirs
    assert True in outcomes  # points were replaced


def test_block_slices_cut_at_global_multiples_of_the_block() -> None:
    """Consecutive indices take an arithmetic shortcut; it must cut where the general rule does."""

    def general(index: np.ndarray) -> list[slice]:
        cuts = [0, *(np.flatnonzero(np.diff(index // (1 << 15))) + 1).tolist(), len(index)]
        return [slice(a, b) for a, b in itertools.pairwise(cuts) if b > a]

    for start in (0, 1, 32767, 32768, 12345678, (1 << 32) - 5000):
        for n in (1, 10, 32768, 32769, 100000, 1 << 20):
            index = np.arange(start, min(start + n, 1 << 32), dtype=np.int64)
            assert block_slices(index) == general(index), (start, n)
    sparse = np.sort(np.random.default_rng(0).choice(1 << 22, 5000, replace=False)).astype(np.int64)
    assert block_slices(sparse) == general(sparse)


def test_answers_kept_as_float32_widen_to_the_decoded_values() -> None:
    """A chunk keeps its fp32 answers as a float32 view of their bits and widens them pass by
    pass: the float64 values must be those the chunk used when it decoded every answer to
    float64 and narrowed it back, bit for bit, for every class of pattern (zeros, subnormals,
    normals, the largest, infinities, quiet and signalling NaNs), and widening a signalling NaN
    must not warn (an implementation may pass one through)."""
    edges = [0, 0x80000000, 1, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF, 0x7F800000, 0xFF800000]
    edges += [0x7FC00000, 0x7F800001, 0xFFBFFFFF, 0x7FFFFFFF]  # quiet, signalling, signalling, quiet
    rng = np.random.default_rng(0)
    patterns = np.concatenate([np.array(edges), rng.integers(0, 2**32, 100_000)]).astype(np.uint32)
    kept = exhaustive._as_float32(FP32, patterns)
    assert np.shares_memory(kept, patterns)  # a view: no pass over the chunk
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        widened = exhaustive._widened(kept)
        with np.errstate(invalid="ignore"):
            before = patterns_to_values(FP32, patterns).astype(np.float32).astype(np.float64)
    assert np.array_equal(widened.view(np.uint64), before.view(np.uint64))
