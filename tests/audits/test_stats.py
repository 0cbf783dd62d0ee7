"""The accumulator's statistics: folding in one accumulator equals folding apart and merging."""

from __future__ import annotations

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
