"""The kernel alone, binade by binade: where over the fp32 space an implementation is slow.

An exhaustive audit's floor is the kernel alone over the 2^32 inputs (exhaustive_fp32.py), and
that floor is not uniform: a kernel whose intermediates go subnormal there (x² below 2^−126 in
a polynomial, say) pays the CPU's microcode assists on those inputs and nowhere else. This
times each implementation's eager call on one 1M-input chunk of every binade of fp32, both
signs, one thread, side by side in one run (best of --repeat), and prints:
  - each implementation's median time per chunk, and the binades at 3x that median or more;
  - the time over the whole fp32 space estimated from these chunks (their mean times the 4096
    chunks of the space; NaN and inf, the last exponent field, are left out).

    python benchmarks/kernel_by_binade.py -i torch-gelu,torch-gelu-aten
    python benchmarks/kernel_by_binade.py -i torch-gelu-aten --step 1 --repeat 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gelu_audit.environment import cpu_model
from gelu_audit.implementations.registry import registry

CHUNK = 1 << 20
"""Inputs per timed call: an eighth of an fp32 binade (2^23 patterns)."""


def chunk(exponent_field: int, negative: bool) -> np.ndarray:
    """The first 1M fp32 patterns of the binade with this exponent field (0: the subnormals),
    as float32 values."""
    first = (int(negative) << 31) | (exponent_field << 23)
    return np.arange(first, first + CHUNK, dtype=np.uint64).astype(np.uint32).view(np.float32)


def best_of(function, x, repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds, after one untimed call."""
    function(x)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(x)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-i", "--impl", default="torch-gelu,torch-gelu-aten")
    parser.add_argument("--step", type=int, default=1, help="time every step-th exponent field")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    names = args.impl.split(",")
    implementations = [registry()[name] for name in names]
    fields = [*range(0, 255, args.step)]
    times = {name: {} for name in names}
    for field in fields:  # side by side: each binade's chunk for every implementation in turn
        for negative in (False, True):
            x = torch.from_numpy(chunk(field, negative))
            for name, implementation in zip(names, implementations):
                times[name][(field, negative)] = best_of(implementation.function, x, args.repeat)

    print(f"one thread, 1M fp32 inputs per chunk, best of {args.repeat}; cpu: {cpu_model()}")
    for name in names:
        per_chunk = times[name]
        median = float(np.median(list(per_chunk.values())))
        whole = (
            float(np.mean(list(per_chunk.values()))) * (1 << 32) / CHUNK
        )  # the timed chunks, a uniform sample
        print(
            f"\n{name}: median {median * 1e3:.2f} ms a chunk; the fp32 space about {whole:.1f} s (one thread)"
        )
        slow = sorted(key for key, seconds in per_chunk.items() if seconds >= 3 * median)
        for field, negative in slow:
            binade = "subnormal" if field == 0 else f"2^{field - 127}"
            sign, seconds = "-" if negative else "+", per_chunk[(field, negative)]
            print(f"  {sign}{binade:>10}: {seconds * 1e3:7.2f} ms ({seconds / median:.0f}x)")
        if not slow:
            print("  no binade at 3x the median or more")


if __name__ == "__main__":
    main()
