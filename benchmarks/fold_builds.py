"""The compiled fold alone, and builds of it side by side: ns a point of ``fold_fp32_block``.

The exhaustive stream spends most of a further kernel's time on computed chunks in
``audits/_fold.c``'s ``fold_fp32_block`` (findings §11, docs/speed.md). This times that call
alone, through ``fused.fold_fp32_block`` (its Python wrapper included), over 2^21 fp32 core
inputs (|x| in [1, 2), both signs, in 64 blocks of 32K) answered by one implementation, one
thread. Given builds of variants of ``_fold.c`` (shared libraries with the same calling
convention), it times each of them in turn, round after round in one process, and keeps each
one's best: on a shared VM whose speed moves by a third between minutes, only figures taken
alternately in one process compare code rather than machine states. It first checks that every
build gives the first one's outputs bit for bit (every per-point array, reduction, sketch and
histogram count); a build that does not is marked, and its time says what leaving that work out
would save, not what a correct build would cost.

    python benchmarks/fold_builds.py                               # the installed build
    python benchmarks/fold_builds.py --impl torch-gelu             # another kernel's answers
    gcc -O3 -fPIC -shared -ffp-contract=off -fno-fast-math -o /tmp/a.so gelu_audit/audits/_fold.c
    python benchmarks/fold_builds.py /tmp/a.so /tmp/b.so --rounds 25   # builds, alternated
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gelu_audit.audits import fused
from gelu_audit.audits.stats import SKETCH_SHIFT, ErrorAccumulator, reference_blocks
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.references.fast_tier import fast_references

TOLERANCE, TOP = 2.0, 5


def core_patterns() -> np.ndarray:
    """2^21 fp32 patterns: eight runs of 2^17 spread over [1, 2), and their negatives."""
    one = int(np.array([1.0], np.float32).view(np.uint32)[0])
    step = (1 << 23) // 8
    positive = np.concatenate([np.arange(one + k * step, one + k * step + (1 << 17)) for k in range(8)])
    patterns = positive.astype(np.uint32)
    return np.concatenate([patterns, patterns | np.uint32(1 << 31)])


def fold_all(pairs: list[tuple[fused.BlockArrays, np.ndarray]], rules: list[Any]) -> list[Any]:
    """Every block folded once into fresh counts; what each call returned, and the counts."""
    sketch = np.zeros((0x7FFFFFFF >> SKETCH_SHIFT) + 1, np.int64)
    histogram = np.zeros(14, np.int64)
    outputs: list[Any] = []
    for arrays, got in pairs:
        folded = fused.fold_fp32_block(arrays, got, TOLERANCE, TOP, rules, sketch, SKETCH_SHIFT, histogram)
        if folded is None:
            raise SystemExit("a core block was declined: not the block this benchmark means to time")
        arrays_out = (folded.errors, folded.distances, folded.residual_at, folded.errors_at)
        scalars = {k: v for k, v in vars(folded).items() if not isinstance(v, np.ndarray)}
        outputs.append(([a.tobytes() for a in arrays_out], scalars))
    return [outputs, sketch.tobytes(), histogram.tobytes()]


def use(library: ctypes.CDLL) -> Callable[[], ctypes.CDLL | None]:
    """``fused.library``'s stand-in that hands over one build."""
    return lambda: library


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("builds", nargs="*", help="shared libraries built from variants of _fold.c")
    parser.add_argument("--impl", default="torch-gelu-aten", help="whose answers are folded")
    parser.add_argument("--rounds", type=int, default=15, help="rounds; each build's best is kept")
    args = parser.parse_args()

    installed = fused.library()
    builds: dict[str, ctypes.CDLL] = {}
    for path in args.builds:
        library = ctypes.CDLL(os.path.abspath(path))
        library.fold_abi_version.restype = ctypes.c_int64
        if library.fold_abi_version() != fused._ABI_VERSION:  # its outputs would be read wrongly
            raise SystemExit(f"{path}: built from a _fold.c of another calling convention")
        builds[path] = fused.declared(library)
    if not builds:
        if installed is None:
            raise SystemExit("no compiled fold here (not built, or GELU_AUDIT_FUSED_FOLD=0)")
        builds["installed"] = installed

    import torch

    torch.set_num_threads(1)
    patterns = core_patterns()
    x = patterns.view(np.float32).astype(np.float64)
    ref, _ = fast_references(ERF, FP32, x)
    got = run_implementation(registry()[args.impl], FP32, "cpu", patterns)
    blocks = reference_blocks(FP32, x, patterns.astype(np.int64), ref, TOP)
    rules = [rule for _, rule in ErrorAccumulator("exact", TOLERANCE, TOP).rules(FP32)]
    pairs, position = [], 0
    for block in blocks:
        n = len(block.x)
        pairs.append((block.fused_arrays(), np.ascontiguousarray(got[position : position + n])))
        position += n
    differ = np.count_nonzero(got.view(np.int64) != ref.rounded.view(np.int64)) / len(x)
    print(f"{args.impl}: {len(x):,} core inputs in {len(pairs)} blocks, {differ:.0%} differ from RN_T(y)")

    first = None
    for name, library in builds.items():
        fused.library = use(library)  # type: ignore[assignment]
        outputs = fold_all(pairs, rules)
        first = outputs if first is None else first
        same = "the first build's outputs" if outputs == first else "DIFFERENT outputs (work left out?)"
        print(f"  {name}: {same}")
    best = dict.fromkeys(builds, float("inf"))
    for _ in range(args.rounds):
        for name, library in builds.items():
            fused.library = use(library)  # type: ignore[assignment]
            sketch = np.zeros((0x7FFFFFFF >> SKETCH_SHIFT) + 1, np.int64)
            histogram = np.zeros(14, np.int64)
            start = time.perf_counter()
            for arrays, answers in pairs:
                fused.fold_fp32_block(arrays, answers, TOLERANCE, TOP, rules, sketch, SKETCH_SHIFT, histogram)
            best[name] = min(best[name], time.perf_counter() - start)
    print(
        f"best of {args.rounds} rounds, alternated, one thread (ns a point, the wrapper's Python included):"
    )
    for name, seconds in best.items():
        print(f"  {name}: {seconds / len(x) * 1e9:.2f}")


if __name__ == "__main__":
    main()
