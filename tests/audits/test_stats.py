"""The accumulator's statistics: folding in one accumulator equals folding apart and merging."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gelu_audit.audits.stats import ErrorAccumulator, ReferenceBlock
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.references.fast_tier import fast_references


def _twin_blocks(top: int) -> tuple[ReferenceBlock, ReferenceBlock, np.ndarray]:
    """Two blocks of the same inputs under different indices (so every error, ratio and worst
    input ties between them), and an answer one fp32 step off RN_T(y) at every 7th point (and
    flushed to +0 at one, for the worst outside the flush)."""
    x = np.linspace(-3.0, 3.0, 4096).astype(np.float32).astype(np.float64)
    ref, _ = fast_references(ERF, FP32, x)
    got = ref.rounded.astype(np.float32)
    got[::7] = np.nextafter(got[::7], np.float32(np.inf))
    got[100] = 0.0
    index = np.arange(len(x), dtype=np.int64)
    first = ReferenceBlock.build(FP32, x, index + 1_000_000, ref, top)
    second = ReferenceBlock.build(FP32, x, index + 2_000_000, ref, top)
    return first, second, got.astype(np.float64)


@pytest.mark.parametrize("top", [1, 5])
@pytest.mark.parametrize("order", ["by index", "reversed"])
def test_blocks_folded_into_one_accumulator_equal_them_folded_apart_and_merged(order: str, top: int) -> None:
    """Each block builds only the candidates the accumulator would keep (a policy's worst input,
    the worst inputs above the last kept, the worst outside the flush): with every one of them
    tied between the blocks, the state must still be that of the blocks folded apart and merged,
    the ties going to the smaller index, whichever block comes first. With one worst input kept,
    the tie is at the last kept error itself."""
    first, second, got = _twin_blocks(top)
    blocks = [first, second] if order == "by index" else [second, first]
    together = ErrorAccumulator("exact", 2.0, top)
    for block in blocks:
        together.fold_block(block, got)
    merged = ErrorAccumulator("exact", 2.0, top)
    for block in blocks:
        apart = ErrorAccumulator("exact", 2.0, top)
        apart.fold_block(block, got)
        merged.merge(apart)
    assert together.to_state() == merged.to_state()
    worst = [(-(c.error or 0.0), c.index) for c in together.worst]
    assert worst == sorted(worst) and together.worst[0].index < 2_000_000  # ties: the smaller index
    assert top == 1 or len({c.error for c in together.worst}) < top  # the premise: ties
    assert together.worst_outside_flush[0].index < 2_000_000
    assert all(t.worst is not None and t.worst.index < 2_000_000 for t in together.tallies.values())


def _with_float_bits(value: object) -> object:
    """A state with every float as its IEEE bits, so that NaNs of another sign or payload differ."""
    if isinstance(value, float | np.floating):
        return struct.pack("<d", float(value)).hex()
    if isinstance(value, np.ndarray):
        return _with_float_bits(value.tolist())
    if isinstance(value, dict):
        return {key: _with_float_bits(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_with_float_bits(item) for item in value]
    return value


def _nan_input_case(nan_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fp32 inputs where y is a NaN (quiet and signalling NaNs of both signs), with their indices,
    and ``F.gelu``'s answers, which pass each NaN's payload through; unless ``nan_only``, next to
    ±inf and some ordinary x."""
    import torch

    nans = [
        np.arange(0x7F800001, 0x7F800001 + 3000),  # signalling NaNs
        np.arange(0x7FC00000 - 500, 0x7FC00000 + 500),  # signalling into quiet
        np.arange(0xFF800001, 0xFF800001 + 700),  # negative NaNs
    ]
    others = [np.array([0x7F800000, 0xFF800000]), np.arange(0x3F800000, 0x3F800000 + 500)]  # ±inf, x from 1
    patterns = np.concatenate(nans if nan_only else [*nans, *others]).astype(np.uint32)
    x = torch.from_numpy(patterns.view(np.int32).copy()).view(torch.float32)
    got = torch.nn.functional.gelu(x).numpy().astype(np.float64)
    return patterns.view(np.float32).astype(np.float64), patterns.astype(np.int64), got


@pytest.mark.parametrize("nan_only", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_a_nan_answer_where_y_is_nan_is_not_a_difference_and_changes_no_statistic(
    shared: bool, nan_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ReferenceBlock.differs`` leaves out a NaN answer where RN_T(y) is a NaN, whatever its
    sign and payload, so such a block folds as RN_T(y) (its summary, where the block is shared).
    The statistics must be those of the comparison bit for bit, which folds every such point,
    float for float in their bits: for the kernel's own NaNs, NaNs of the other sign, and with a
    NaN also at a finite y (a non-finite mismatch, which must still count). The one trace of the
    NaN's bits: a policy's worst input while its largest ratio is 0, which no report shows
    (``PolicyTally.finish``), holds RN_T(y)'s NaN where the summary served."""
    from dataclasses import replace

    from gelu_audit.audits.policies import BUILTIN_POLICIES
    from gelu_audit.audits.stats import accumulate, differing_mask, reference_blocks

    x, index, got = _nan_input_case(nan_only)
    ref, _ = fast_references(ERF, FP32, x)
    nan = np.isnan(ref.rounded)
    assert nan.sum() == 4700 and np.isnan(got[nan]).all()
    assert np.count_nonzero(differing_mask(got, ref.rounded)) > 3000  # payloads differ from RN_T(y)'s
    mismatched = got.copy()
    mismatched[-7] = np.nan
    for answers in (got, -got, mismatched):  # (-got: every NaN of the other sign)

        def state(answers: np.ndarray) -> object:
            blocks = reference_blocks(FP32, x, index, ref, 5, shared)
            accumulator = accumulate(blocks, answers, "exact", 2.0, 5, BUILTIN_POLICIES)
            for tally in accumulator.tallies.values():
                if tally.max_ratio == 0 and tally.worst is not None:  # not reported: its answer aside
                    tally.worst = replace(tally.worst, got=0.0)
            return _with_float_bits(accumulator.to_state())

        now = state(answers)
        with monkeypatch.context() as patched:
            patched.setattr(
                ReferenceBlock, "differs", lambda self, got: differing_mask(got, self.ref.rounded)
            )
            bitwise = state(answers)
        assert now == bitwise
    whole = ReferenceBlock.build(FP32, x, index, ref, 5)  # the premise: the NaNs are left out
    assert not whole.differs(got)[nan].any()
