"""How much of F.gelu's time at 16M elements is allocating its output?

Times, side by side in one run (median of 15 calls after a warm-up): F.gelu(x) allocating a
fresh output, the same op writing into a preallocated tensor (out=), and a plain copy_ into
preallocated memory. Explains docs/speed.md's 16M figures, where ONNX Runtime (whose arena
reuses its output) is 4x faster than F.gelu.

    python benchmarks/gelu_allocation.py [--elements 16777216]
"""

from __future__ import annotations

import argparse
import time


def median_ms(function, calls: int = 15) -> float:
    function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[calls // 2] * 1e3


def main() -> None:
    import torch
    import torch.nn.functional as F

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=16 * 1024 * 1024)
    n = parser.parse_args().elements
    x = torch.randn(n)
    y = torch.empty_like(x)
    allocating = median_ms(lambda: F.gelu(x))
    preallocated = median_ms(lambda: torch.ops.aten.gelu.out(x, out=y))
    copy = median_ms(lambda: y.copy_(x))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n:,} fp32 elements")
    print(f"F.gelu(x), allocating its output : {allocating:8.2f} ms")
    print(f"gelu into a preallocated output  : {preallocated:8.2f} ms")
    print(f"copy_ into preallocated memory   : {copy:8.2f} ms")
    print(f"allocation share of F.gelu       : {1 - preallocated / allocating:8.1%}")
    print(f"preallocated gelu / copy         : {copy / preallocated:8.3f} of copy speed")


if __name__ == "__main__":
    main()
