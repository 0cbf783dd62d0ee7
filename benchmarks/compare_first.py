"""Does comparing first still pay where the compiled loop folds? A shared block's statistics for an
answer that differs from RN_T(y) at a few points can be had two ways (docs/methodology.md,
"Compare first, then compute"): the block's summary (RN_T(y)'s statistics) with those points'
share replaced, or the whole block folded. This times both, side by side in one process, one
thread, on 2^18 fp32 core inputs (|x| in [1.125, 1.25)), for answers that are RN_T(y) but one
step up at a given share of the points, with the summaries already made (a second kernel's
case). It prints ns a point for each path and share, and what the summaries themselves cost
(the first kernel's share of them).

Replacing is ``ErrorAccumulator.add_block``'s path for stored and known blocks (at up to a
quarter of a block here); the whole block is what a computed block gets
(``ReferenceBlock.worth_replacing``), with the compiled loop (``audits/_fold.c``) or in NumPy
alone (``GELU_AUDIT_FUSED_FOLD=0``): both fold a whole block for less than replacing even a
handful of its points.

    python benchmarks/compare_first.py
    GELU_AUDIT_FUSED_FOLD=0 python benchmarks/compare_first.py
"""

from __future__ import annotations

import time
from unittest import mock

import numpy as np

from gelu_audit.audits import fused
from gelu_audit.audits import stats as st
from gelu_audit.audits.exhaustive import tune_allocator
from gelu_audit.audits.policies import BUILTIN_POLICIES
from gelu_audit.numerics.formats import FP32, patterns_to_values
from gelu_audit.numerics.formulas import ERF
from gelu_audit.references.fast_gradient import fast_references_of

SHARES = (0.0, 0.0001, 0.001, 0.01, 0.05, 0.1, 0.25)
"""Shares of the points where the answer is one step above RN_T(y)."""


def main() -> None:
    tune_allocator()
    n = 1 << 18
    patterns = np.arange(0x3F900000, 0x3F900000 + n, dtype=np.int64)
    x = patterns_to_values(FP32, patterns.astype(np.uint32))
    ref, _ = fast_references_of(ERF, FP32, x)
    rng = np.random.default_rng(1)
    print(f"compiled loop: {'yes' if fused.library() is not None else 'no (NumPy folds)'}")
    print(f"{'share':>8} {'summary, replaced':>18} {'whole block':>12}   (ns a point, best of 2)")
    for share in SHARES:
        got = ref.rounded.copy()
        pick = rng.random(n) < share
        got[pick] = np.nextafter(got[pick].astype(np.float32), np.float32(np.inf)).astype(np.float64)
        best: dict[str, float] = {}
        for path in ("replaced", "whole", "replaced", "whole"):
            blocks = st.reference_blocks(FP32, x, patterns, ref, 5, True)
            for block in blocks:
                block.summary(st.ErrorAccumulator("exact", 2.0, 5))  # made, as a first kernel leaves them
            began = time.perf_counter()
            _fold(blocks, got, replacing=path == "replaced")
            best[path] = min(best.get(path, np.inf), (time.perf_counter() - began) / n * 1e9)
        print(f"{share:8.4f} {best['replaced']:18.1f} {best['whole']:12.1f}")
    blocks = st.reference_blocks(FP32, x, patterns, ref, 5, True)
    began = time.perf_counter()
    for block in blocks:
        block.summary(st.ErrorAccumulator("exact", 2.0, 5))
    print(
        f"the summaries themselves (RN_T(y) folded): {(time.perf_counter() - began) / n * 1e9:.1f} ns a point"
    )


def _fold(blocks: list[st.ReferenceBlock], got: np.ndarray, replacing: bool) -> None:
    """``got`` folded into a fresh accumulator through ``accumulate`` (``add_block``), computed
    blocks deciding as they do (the whole block where anything differs) or, with ``replacing``,
    as stored and known blocks do (the summary with the differing share replaced, up to a
    quarter of a block here)."""
    if not replacing:
        st.accumulate(blocks, got, "exact", 2.0, 5, BUILTIN_POLICIES)
        return
    with mock.patch.object(
        st.ReferenceBlock, "worth_replacing", lambda self, like, differing: 4 * differing <= len(self.x)
    ):
        st.accumulate(blocks, got, "exact", 2.0, 5, BUILTIN_POLICIES)


if __name__ == "__main__":
    main()
