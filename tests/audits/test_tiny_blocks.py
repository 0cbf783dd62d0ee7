"""Tiny blocks: a prototype's statistics, scaled, must be the arithmetic's, block by block."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gelu_audit.audits import exhaustive, tiny_blocks
from gelu_audit.audits.exhaustive import ChunkTask, audit_chunk
from gelu_audit.audits.stats import ErrorAccumulator, ReferenceBlock, accumulate
from gelu_audit.audits.tiny_blocks import PROTOTYPE_BINADE, TOP_BINADE, TinyBlock, tiny_range
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP32, FP64, patterns_to_values, values_to_patterns
from gelu_audit.numerics.formulas import ERF, SIGMOID, TANH, Formula
from gelu_audit.references.fast_tier import fast_references

LOWEST = FP32.emin + 2


def _patterns(binade: int, negative: bool, offset: int, length: int = 1 << 15) -> np.ndarray:
    """``length`` consecutive fp32 patterns from ``offset`` into the binade of 2^binade."""
    first = int(values_to_patterns(FP32, np.array([math.ldexp(-1.0 if negative else 1.0, binade)]))[0])
    return np.arange(first + offset, first + offset + length, dtype=np.uint64).astype(np.uint32)


def _block(formula: Formula, patterns: np.ndarray, top: int) -> tuple[TinyBlock, ReferenceBlock]:
    x = patterns_to_values(FP32, patterns)
    index = patterns.astype(np.int64)
    served = tiny_blocks.tiny_blocks(formula, FP32, x, index, top, shared=True)
    assert served is not None
    (tiny,), tiers = served
    ref, computed = fast_references(formula, FP32, x)
    assert tiers.counts == computed.counts
    return tiny, ReferenceBlock.build(FP32, x, index, ref, top)


def _answers(tiny: TinyBlock, full: ReferenceBlock) -> dict[str, np.ndarray]:
    """RN_T(y), F.gelu's, and answers that differ at a few points (compared first, then the
    summary's share replaced) or at every point (the full arithmetic)."""
    rounded = full.ref.rounded
    worst = int(np.argmax(full.residual))
    nudged = rounded.copy()
    nudged[[0, worst]] = np.nextafter(rounded[[0, worst]].astype(np.float32), np.float32(np.inf))
    flushed = rounded.copy()
    flushed[[1, worst, -1]] = 0.0
    patterns = values_to_patterns(FP32, tiny.x)
    got = run_implementation(registry()["torch-gelu"], FP32, "cpu", patterns)
    return {"rounded": rounded, "torch-gelu": got, "nudged": nudged, "flushed": flushed, "zero": 0 * rounded}


def _same_as_the_arithmetic(formula: Formula, patterns: np.ndarray, settings, answers: bool) -> bool:
    """Whether every state matches; returns whether the scaling served (not the fallback)."""
    served = []
    for tolerance, top in settings:
        tiny, full = _block(formula, patterns, top)
        like = ErrorAccumulator(formula.name, tolerance, top)
        served.append(tiny._scaled(like) is not None)
        chosen = _answers(tiny, full) if answers else {"rounded": full.ref.rounded}
        for name, got in chosen.items():
            tiny, _ = _block(formula, patterns, top)  # a fresh block: nothing cached
            scaled = accumulate([tiny], got, formula.name, tolerance, top)
            computed = ErrorAccumulator(formula.name, tolerance, top)
            computed.fold_block(full, got)
            where = (formula.name, hex(int(patterns[0])), tolerance, top, name)
            assert json.dumps(scaled.to_state()) == json.dumps(computed.to_state()), where
    return all(served)


@pytest.mark.parametrize("formula", [ERF, TANH, SIGMOID])
def test_scaled_prototypes_give_the_arithmetic_s_statistics_in_every_binade(formula: Formula) -> None:
    """Every binade of the range, both signs, a different block position in each (the
    prototype's own binade and both ends included): RN_T(y)'s statistics, scaled, are the
    arithmetic's, JSON character for character, at two tolerances and two ``top``s."""
    for binade in range(LOWEST, TOP_BINADE + 1):
        for negative in (False, True):
            offset = ((binade * 37 + negative * 101) % 256) << 15
            patterns = _patterns(binade, negative, offset)
            assert _same_as_the_arithmetic(formula, patterns, [(2.0, 1), (0.3, 5)], answers=False)


@pytest.mark.parametrize("binade", [LOWEST, -100, PROTOTYPE_BINADE, -70, TOP_BINADE])
def test_answers_that_differ_take_the_ordinary_path_with_the_same_numbers(binade: int) -> None:
    """F.gelu's answers, answers one ulp off at the first and the worst point, flushed at three
    points, and zero everywhere; and a tolerance of 0, where the scaling does not serve (every
    residual is above it) and the block is computed instead. A tolerance of 1e-15 lies above
    the prototype's residuals (about 1e-20) and below those from binade −73 up (about 1e-10 at
    the top): the scaled residuals must be checked against it, not only the prototype's."""
    for negative in (False, True):
        patterns = _patterns(binade, negative, (7 if negative else 200) << 15)
        assert _same_as_the_arithmetic(ERF, patterns, [(2.0, 1), (0.3, 5)], answers=True)
        assert not _same_as_the_arithmetic(ERF, patterns, [(0.0, 3)], answers=True)
        served = _same_as_the_arithmetic(ERF, patterns, [(1e-15, 2)], answers=True)
        assert served == (binade < -73)


def test_a_block_cut_short_gets_its_own_prototype() -> None:
    """A chunk that starts or ends mid-block: the short block's prototype has its positions."""
    for offset, length in ((1000, (1 << 15) - 1000), (0, 12345), ((255 << 15) + 5, 100)):
        patterns = _patterns(-80, False, offset, length)
        assert _same_as_the_arithmetic(TANH, patterns, [(2.0, 5)], answers=True)


def test_only_chunks_wholly_in_the_range_are_served() -> None:
    low, high = tiny_range(ERF, FP32) or (0.0, 0.0)
    assert (low, high) == (2.0**LOWEST, 2.0**-55)
    assert tiny_range(ERF.derivative, FP32) is None and tiny_range(ERF, FP64) is None

    def served(values: list[float]) -> bool:
        x = np.array(values)
        index = values_to_patterns(FP32, x).astype(np.int64)
        return tiny_blocks.tiny_blocks(ERF, FP32, x, index, 5, False) is not None

    assert served([low, high * (1 - 2**-24)]) and served([-low, -high * (1 - 2**-24)])
    assert not served([low, high]) and not served([low / 2, low]) and not served([-low, low])
    assert not served([0.0, low]) and not served([float("nan"), low]) and not served([])


def test_a_chunk_of_the_stream_gives_the_same_results_with_and_without_tiny_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """audit_chunk over four blocks of each sign, one implementation and two (shared blocks)."""
    for pattern in (_patterns(-60, False, 0, 1)[0], _patterns(-60, True, 64 << 15, 1)[0]):
        for cases in ((("torch-gelu", "cpu"),), (("torch-gelu", "cpu"), ("numpy-tanh", "cpu"))):
            task = ChunkTask("fp32", int(pattern), int(pattern) + (1 << 17), ("erf", "tanh"), cases, 2.0, 5)
            scaled = audit_chunk(task)
            with monkeypatch.context() as patch:
                patch.setattr(exhaustive, "tiny_blocks", lambda *args: None)
                computed = audit_chunk(task)
            assert {k: v.to_state() for k, v in scaled.accumulators.items()} == {
                k: v.to_state() for k, v in computed.accumulators.items()
            }
            assert {k: v.counts for k, v in scaled.tiers.items()} == {
                k: v.counts for k, v in computed.tiers.items()
            }
