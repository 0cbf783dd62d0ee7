"""Exhaustive fp32 streaming: results independent of chunking, jobs and shards; merge; errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gelu_audit.audits.exhaustive import PatternSpace, Shard, parse_shard, stream
from gelu_audit.audits.stats import ErrorAccumulator, InputValues, accumulate, reference_blocks
from gelu_audit.errors import UsageError
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP32, patterns_to_values
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import parse_range
from gelu_audit.references.fast_tier import fast_references
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


def test_compare_first_gives_the_statistics_of_the_full_arithmetic() -> None:
    """A block whose answers are all RN_T(y) takes the block's shared summary instead of the
    arithmetic; both paths must give the same state, bit for bit, whatever the mix of blocks."""
    starts = (0x00000000, 0x20000000, 0x3F800000, 0x43000000, 0x7F800000, 0x80400000, 0xBF800000, 0xC3000000)
    patterns = np.concatenate([np.arange(s, s + (1 << 15), dtype=np.uint64) for s in starts]).astype(
        np.uint32
    )
    x = patterns_to_values(FP32, patterns)
    ref, _ = fast_references(ERF, FP32, x)
    index = patterns.astype(np.int64)
    shared = reference_blocks(FP32, x, index, ref, 5)
    paths = set()
    for name in ("torch-gelu", "numpy-erf", "torch-gelu-aten"):
        got = run_implementation(registry()[name], FP32, "cpu", patterns)
        compared = accumulate(shared, got, "exact", 2.0, 5)
        full = ErrorAccumulator("exact", 2.0, 5)
        for k, block in enumerate(reference_blocks(FP32, x, index, ref, 5)):
            part = got[k << 15 : (k + 1) << 15]
            paths.add(block.correctly_rounded(part))
            full.fold_block(block, part)
        assert json.dumps(compared.to_state()) == json.dumps(full.to_state()), name  # NaN == NaN
    assert paths == {True, False}  # both paths were taken
