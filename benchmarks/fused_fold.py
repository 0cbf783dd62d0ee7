"""Would fused per-point arithmetic bring the exhaustive fp32 comparison near its floor? The
error arithmetic of a dense core block in NumPy passes, against the same arithmetic fused into
one loop by torch.compile (Inductor's C++ on the CPU, or its Triton kernels on a GPU).

In the core most answers differ from RN_T(y) (a quarter to all of a 1M chunk for F.gelu through
oneDNN on the Xeon, findings §11), so ``ErrorAccumulator.fold_block`` does its arithmetic on
most points: about 100 NumPy passes over a 32K block, none of them dominant. This measures, on
``torch-gelu``'s answers over 2^20 core inputs (|x| in [1, 2)), one thread:

1. ``fold_block`` itself, block by block (what the audit runs), in ns a point: with the compiled
   loop (``audits/_fold.c``, where the install built it) and with NumPy alone, alternating, and
   whether both give the same state;
2. a subset of its per-point work written once in NumPy: the ULP error (the scaled form of
   ``numerics.ulp.ulp_errors`` for blocks in range), the histogram bin, the sketch bin, the
   absolute and relative errors, and the reductions that do not depend on order (the largest
   error, its first position, the count over the tolerance, the histogram's counts);
3. the same subset as torch operations, eager and compiled;
4. ``fold_block``'s cost per call whatever the block's size (a 256-point block).

It checks that the subset gives the same bits in all three, and prints ns a point for each.
The subset leaves out the sums (NumPy's pairwise order is part of the report's numbers: a fused
sum must keep that order or be exact), the policies' ratios, ordinal distances and the worst
inputs' selection. So the compiled figure is what fusion would make of this share of the fold.

    python benchmarks/fused_fold.py
    python benchmarks/fused_fold.py --device cuda:0
"""

from __future__ import annotations

import numpy as np
import torch
from torch_primitives import best_ms, device_from_arguments

from gelu_audit.audits import fused
from gelu_audit.audits.stats import SKETCH_SHIFT, ErrorAccumulator, reference_blocks
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.ulp import HISTOGRAM_EDGES
from gelu_audit.references.fast_tier import fast_references

TOLERANCE = 2.0
UNIT = 2.0 ** (FP32.precision - 1)


def subset_numpy(got: np.ndarray, hi: np.ndarray, lo: np.ndarray, scale: np.ndarray, y: np.ndarray) -> tuple:
    """The subset in NumPy: per point, then reduced. ``scale`` is 2^−quantum per point."""
    err = np.abs((got * scale - hi * UNIT) - lo * UNIT)
    bits = err.view(np.int64)
    powers = ((bits >> 52) & 0x7FF) - 1022 + ((bits & ((1 << 52) - 1)) != 0)
    hist = np.clip(powers, 0, len(HISTOGRAM_EDGES) - 1) + 1 + ~(err <= HISTOGRAM_EDGES[-1])
    hist = np.where(err == 0, 0, hist)
    sketch = (err.astype(np.float32).view(np.uint32) >> SKETCH_SHIFT).astype(np.int64)
    abs_err = np.abs(got - y)
    rel_err = abs_err / np.abs(y)
    return (
        float(err.max()),
        int(np.argmax(err)),
        int(np.count_nonzero(err > TOLERANCE)),
        np.bincount(hist, minlength=len(HISTOGRAM_EDGES) + 2),
        int(sketch.max()),
        float(abs_err.max()),
        float(rel_err.max()),
    )


def subset_torch(
    got: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor, scale: torch.Tensor, y: torch.Tensor
) -> tuple:
    """The same subset as torch operations (compiled, one fused loop and a few reductions)."""
    err = torch.abs((got * scale - hi * UNIT) - lo * UNIT)
    bits = err.view(torch.int64)
    powers = ((bits >> 52) & 0x7FF) - 1022 + ((bits & ((1 << 52) - 1)) != 0).to(torch.int64)
    over_last = (~(err <= HISTOGRAM_EDGES[-1])).to(torch.int64)
    hist = torch.clamp(powers, 0, len(HISTOGRAM_EDGES) - 1) + 1 + over_last
    hist = torch.where(err == 0, 0, hist)
    sketch = (err.to(torch.float32).view(torch.int32) >> SKETCH_SHIFT).to(torch.int64)
    abs_err = torch.abs(got - y)
    rel_err = abs_err / torch.abs(y)
    counts = torch.zeros(len(HISTOGRAM_EDGES) + 2, dtype=torch.int64, device=got.device)
    counts = counts.scatter_add(0, hist, torch.ones_like(hist))
    return (
        err.max(),
        torch.argmax(err),
        torch.count_nonzero(err > TOLERANCE),
        counts,
        sketch.max(),
        abs_err.max(),
        rel_err.max(),
    )


def as_plain(values: tuple) -> tuple:
    """Results as Python numbers and NumPy arrays, for comparison."""
    plain = []
    for value in values:
        if isinstance(value, torch.Tensor):
            value = value.cpu().numpy() if value.dim() else value.item()
        plain.append(value.tolist() if isinstance(value, np.ndarray) else value)
    return tuple(plain)


def main() -> None:
    device = device_from_arguments(__doc__.splitlines()[0])
    start = int(np.array([1.0], np.float32).view(np.uint32)[0])
    patterns = np.concatenate(
        [np.arange(start + k * (1 << 23) // 8, start + k * (1 << 23) // 8 + (1 << 17)) for k in range(8)]
    ).astype(np.uint32)
    x = patterns.view(np.float32).astype(np.float64)
    ref, _ = fast_references(ERF, FP32, x)
    got = run_implementation(registry()["torch-gelu"], FP32, "cpu", patterns)
    blocks = reference_blocks(FP32, x, patterns.astype(np.int64), ref, 5)
    differ = np.count_nonzero(got.view(np.int64) != ref.rounded.view(np.int64))
    share = 100 * differ / len(x)
    print(f"torch-gelu over {len(x):,} core inputs (|x| in [1, 2)): {share:.0f}% differ from RN_T(y)")

    def fold() -> ErrorAccumulator:
        accumulator, position = ErrorAccumulator("exact", TOLERANCE, 5), 0
        for block in blocks:
            accumulator.fold_block(block, got[position : position + len(block.x)])
            position += len(block.x)
        return accumulator

    compiled_loop = fused.library

    def numpy_only() -> ErrorAccumulator:
        fused.library = lambda: None  # type: ignore[assignment]
        try:
            return fold()
        finally:
            fused.library = compiled_loop

    small = reference_blocks(FP32, x[:256], patterns[:256].astype(np.int64), ref.take(slice(0, 256)), 5)[0]

    def fold_small() -> None:
        for _ in range(100):
            ErrorAccumulator("exact", TOLERANCE, 5).fold_block(small, got[:256])

    n = len(x)
    quantum = ref.binade.astype(np.int64) - (FP32.precision - 1)
    scale = ((1023 - quantum) << 52).view(np.float64)
    y = ref.approximate()
    arrays = (got, ref.mant_hi, ref.mant_lo, scale, y)
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)
    compiled = torch.compile(subset_torch, fullgraph=True, dynamic=False)
    expected = as_plain(subset_numpy(*arrays))
    for name, result in (("eager", subset_torch(*tensors)), ("compiled", compiled(*tensors))):
        print(
            f"  the subset in torch ({name}, {device}) gives NumPy's results: {as_plain(result) == expected}"
        )
    if compiled_loop() is None:
        print("  the compiled loop is not built here: fold_block runs NumPy's passes")
    else:
        same = str(fold().to_state()) == str(numpy_only().to_state())
        print(f"  fold_block with the compiled loop gives NumPy's state: {same}")
        for _ in range(2):  # alternating
            loop_ms, numpy_ms = best_ms(fold, 3), best_ms(numpy_only, 3)
            print(
                f"  fold_block, block by block: compiled loop {1e6 * loop_ms / len(x):.1f}, "
                f"NumPy {1e6 * numpy_ms / len(x):.1f} ns a point ({numpy_ms / loop_ms:.2f}x)"
            )
    milliseconds = {
        "fold_block, block by block (NumPy)": best_ms(numpy_only, 3),
        "the subset, NumPy, 32K blocks": best_ms(
            lambda: [subset_numpy(*(a[k : k + 32768] for a in arrays)) for k in range(0, n, 32768)], 5
        ),
        f"the subset, torch eager on {device}, 1M at once": best_ms(
            lambda: subset_torch(*tensors), 5, device
        ),
        f"the subset, torch.compile on {device}, 1M at once": best_ms(lambda: compiled(*tensors), 5, device),
    }
    for label, ms in milliseconds.items():
        print(f"  {label:<48} {1e6 * ms / n:8.1f} ns a point")
    fixed = best_ms(fold_small, 5) / 1e3 / 100
    print(
        f"  fold_block's fixed cost, a 256-point block: {1e6 * fixed:.0f} µs a call "
        f"({1e9 * fixed / 32768:.1f} ns a point of a 32K block)"
    )


if __name__ == "__main__":
    main()
