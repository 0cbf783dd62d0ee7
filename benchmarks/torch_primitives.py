"""Would a torch backend make the fast reference tier faster on the CPU, and could it give the
same bits? Its float64 primitives, side by side with the NumPy/SciPy ones, and whether they
agree bit for bit.

Prints, for 2^20 float64 inputs in [-20, 20] (one thread each, the tier's worker setting):
milliseconds per call for each side, the ratio, and the share of results whose bits differ.
Then the fast tier itself on 1/256 of the fp32 space, split into its float64 evaluation and
the rest (region logic, rounding, residuals), to show which part a faster erf could shorten.
Last, the tier's own ``fast`` region for erf (``fast_tier.fast_region``, written once against
``numerics.array_ops`` from the primitives that agree) run by NumPy and by torch: whether the
two give the same decisions, mantissas and roundings, and how long each takes in 32K and 1M
blocks. And how many torch operations (on a GPU, roughly kernel launches) the torch tier's one call
makes for erf, tanh and erf′, at 64K points (a pass of the stream) and at 1M (a chunk): why the
stream gives that tier a whole chunk at once.

    python benchmarks/torch_primitives.py
    python benchmarks/torch_primitives.py --device cuda:0   # on a GPU (benchmarks/cuda_check.sh)

With ``--device cuda:…`` the torch side runs on the GPU: the same bit comparisons (2^24 points)
with the GPU's milliseconds, the erf ``fast`` region on the GPU against NumPy, and then the
whole fp32 space on the GPU: ``F.gelu`` alone over all 2^32 inputs (the floor an audit on the
GPU is measured against) and the erf ``fast`` region over all of them, timed, with how many
points it decided.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as special
import torch

from gelu_audit.audits.exhaustive import PatternSpace, Shard, tune_allocator
from gelu_audit.numerics.array_ops import NUMPY_OPS, TORCH_OPS, ArrayOps
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.references.fast_tier import fast_gelu, fast_references, fast_region


def best_ms(function: Callable[[], object], repeats: int = 7, device: str = "cpu") -> float:
    """Best wall time of ``function`` in ms; on a GPU, to the end of the work it queued."""

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    function()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        sync()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def device_from_arguments(description: str) -> str:
    """``--device`` from the command line (where the torch side runs), with one torch thread and
    the stream workers' allocator setting, as a worker computes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="where the torch side runs (cpu, cuda:0)")
    device: str = parser.parse_args().device
    torch.set_num_threads(1)
    tune_allocator()
    return device


def main() -> None:
    device = device_from_arguments(__doc__.splitlines()[0])
    on_gpu = device != "cpu"
    x = np.random.default_rng(1).uniform(-20.0, 20.0, 1 << (24 if on_gpu else 20))
    t = torch.from_numpy(x).to(device)
    pairs = {
        "erfcx": (lambda: special.erfcx(x), lambda: torch.special.erfcx(t)),
        "erf": (lambda: special.erf(x), lambda: torch.erf(t)),
        "erfc": (lambda: special.erfc(x), lambda: torch.erfc(t)),
        "log_ndtr": (lambda: special.log_ndtr(x), lambda: torch.special.log_ndtr(t)),
        "exp": (lambda: np.exp(x), lambda: torch.exp(t)),
        "log": (lambda: np.log(np.abs(x)), lambda: torch.log(t.abs())),
        "log2": (lambda: np.log2(np.abs(x)), lambda: torch.log2(t.abs())),
        "exp2": (lambda: np.exp2(x), lambda: torch.exp2(t)),
        "tanh": (lambda: np.tanh(x), lambda: torch.tanh(t)),
        "log1p": (lambda: np.log1p(np.abs(x)), lambda: torch.log1p(t.abs())),
        "x**3": (lambda: x**3, lambda: t**3),
        "x*x*x": (lambda: x * x * x, lambda: t * t * t),
        "frexp": (lambda: np.frexp(x)[0], lambda: torch.frexp(t)[0]),
        "rint": (lambda: np.rint(x), lambda: torch.round(t)),
        "add": (lambda: x + x, lambda: t + t),
    }
    where = torch.cuda.get_device_name(device) if on_gpu else "one thread"
    print(
        f"float64 primitives, {len(x):,} points, torch on {device} "
        f"({where}; {torch.__version__}, numpy {np.__version__})"
    )
    print(f"  {'primitive':<10} {'numpy/scipy':>12} {'torch':>9} {'torch/np':>9} {'results that differ':>22}")
    for name, (ours, theirs) in pairs.items():
        a, b = np.asarray(ours()), theirs().cpu().numpy()
        differ = int(np.count_nonzero((a != b) & ~(np.isnan(a) & np.isnan(b))))
        ms_np, ms_torch = best_ms(ours), best_ms(theirs, device=device)
        print(
            f"  {name:<10} {ms_np:10.2f} ms {ms_torch:6.2f} ms {ms_torch / ms_np:9.2f} "
            f"{differ:>11,} ({100 * differ / len(a):.2f}%)"
        )

    region_operations(device)
    space = PatternSpace(FP32, None, Shard(1, 256))
    if on_gpu:
        patterns = np.concatenate([np.arange(a, b, dtype=np.uint64) for a, b in space.items(1 << 20)])
        shared_primitives(patterns.astype(np.uint32).view(np.float32).astype(np.float64), device)
        whole_space(device)
        return
    patterns = np.concatenate([np.arange(a, b, dtype=np.uint64) for a, b in space.items(1 << 20)])
    values = patterns.astype(np.uint32).view(np.float32).astype(np.float64)
    whole = best_ms(lambda: fast_references(ERF, FP32, values), repeats=2)
    evaluation = best_ms(lambda: fast_gelu(ERF, values[np.abs(values) < 50]), repeats=2)
    print(f"\nthe fast tier on 1/256 of fp32 ({len(values):,} points, erf): {whole:.0f} ms")
    print(f"  of which the float64 evaluation, at most (every |x| < 50): {evaluation:.0f} ms")
    print(f"  the rest (regions, rounding to fp32, bookkeeping): {whole - evaluation:.0f} ms or more")
    shared_primitives(values)


def region_operations(device: str) -> None:
    """Torch operations in one call of the torch tier (``fast_references_of``) on core points,
    counted with a dispatch mode: on a GPU each is roughly a kernel launch (views launch none, a
    few ops launch more), whatever the array's length."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from gelu_audit.numerics.formulas import FUNCTIONS
    from gelu_audit.references.fast_gradient import fast_references_of
    from gelu_audit.references.tiers import ReferenceTier, TierBackend

    class Counting(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.count += 1
            return func(*args, **(kwargs or {}))

    tier = ReferenceTier(TierBackend.TORCH, device)
    start = int(np.array([1.3], np.float32).view(np.uint32)[0])
    print(f"\ntorch operations per call of the torch tier on {device} (core points from x = 1.3):")
    for name in ("erf", "tanh", "erf-grad"):
        counts = []
        for size in (1 << 16, 1 << 20):
            x = np.arange(start, start + size, dtype=np.uint32).view(np.float32).astype(np.float64)
            with Counting() as counting:
                fast_references_of(FUNCTIONS[name], FP32, x, tier=tier)
            counts.append(counting.count)
        print(f"  {name:<9} {counts[0]:5} at 64K points, {counts[1]:5} at 1M")


def shared_primitives(values: np.ndarray, device: str = "cpu") -> None:
    """The tier's erf ``fast`` region, by NumPy and by torch."""
    x = values[(np.abs(values) < 8) & (values != 0)]
    t = torch.from_numpy(x).to(device)
    ours = fast_region(ERF, FP32, x, NUMPY_OPS)
    theirs = fast_region(ERF, FP32, t, TORCH_OPS)
    differ = [
        int(np.count_nonzero(ours[k] != theirs[k].cpu().numpy()))
        for k in (0, 2, 4)  # the decided mask, the mantissas, RN_T
    ]
    print(f"\nthe tier's erf fast region, {len(x):,} points of it (|x| < 8):")
    print(f"  decisions, mantissas, roundings that differ, NumPy vs torch: {', '.join(map(str, differ))}")

    def in_blocks(ops: ArrayOps, data: Any, block: int) -> Callable[[], object]:
        return lambda: [fast_region(ERF, FP32, data[i : i + block], ops) for i in range(0, len(data), block)]

    for block in (1 << 15, 1 << 20) if device == "cpu" else (1 << 20, 1 << 23):
        ms_np = best_ms(in_blocks(NUMPY_OPS, x, block), 3)
        ms_torch = best_ms(in_blocks(TORCH_OPS, t, block), 3, device)
        print(
            f"  blocks of {block:>9,}: NumPy {ms_np:6.1f} ms, torch {ms_torch:6.1f} ms "
            f"({ms_torch / ms_np:.2f}x)"
        )


def whole_space(device: str, chunk_bits: int = 26, space: int = 1 << 32) -> None:
    """All 2^32 fp32 inputs on the GPU, made there from their bit patterns chunk by chunk:
    F.gelu alone (the floor), then the tier's erf ``fast`` region (value, bound, Ziv's test),
    with how many points it decided. Nothing but the counts comes back to the host."""
    chunk = 1 << chunk_bits
    bits = torch.arange(chunk, dtype=torch.int64, device=device)

    def inputs(start: int) -> torch.Tensor:
        return (bits + start).to(torch.int32).view(torch.float32)  # wraps past 2^31: two's complement

    def gelu_alone() -> None:
        for start in range(0, space, chunk):
            torch.nn.functional.gelu(inputs(start))

    decided = torch.zeros((), dtype=torch.int64, device=device)

    def whole_region() -> None:
        decided.zero_()
        for start in range(0, space, chunk):
            done, *_ = fast_region(ERF, FP32, inputs(start).to(torch.float64), TORCH_OPS)
            decided.add_(done.sum())

    gelu_ms = best_ms(gelu_alone, 2, device)
    fast_ms = best_ms(whole_region, 2, device)
    print(f"\nall 2^32 fp32 inputs on {device}, made there in chunks of 2^{chunk_bits}:")
    print(f"  F.gelu alone (fp32): {gelu_ms:.1f} ms")
    print(
        f"  the tier's erf fast region in float64 (value, bound, Ziv's test): {fast_ms:.1f} ms, "
        f"{int(decided):,} points decided ({100 * int(decided) / space:.2f}%)"
    )


if __name__ == "__main__":
    main()
