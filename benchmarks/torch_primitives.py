"""Would a torch backend make the fast reference tier faster on the CPU? Its float64 primitives,
side by side with the NumPy/SciPy ones the tier uses, and whether they agree bit for bit.

Prints, for 2^20 float64 inputs in [-20, 20] (one thread each, the tier's worker setting):
milliseconds per call for each side, the ratio, and the share of results whose bits differ.
Then the fast tier itself on 1/256 of the fp32 space, split into its float64 evaluation and
the rest (region logic, rounding, residuals), to show which part a faster erf could shorten.

    python benchmarks/torch_primitives.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.special as special
import torch

from gelu_audit.audits.exhaustive import PatternSpace, Shard, tune_allocator
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.references.fast_tier import fast_gelu, fast_references


def best_ms(function: Callable[[], object], repeats: int = 7) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main() -> None:
    torch.set_num_threads(1)
    tune_allocator()
    x = np.random.default_rng(1).uniform(-20.0, 20.0, 1 << 20)
    t = torch.from_numpy(x)
    pairs = {
        "erfcx": (lambda: special.erfcx(x), lambda: torch.special.erfcx(t)),
        "erf": (lambda: special.erf(x), lambda: torch.erf(t)),
        "erfc": (lambda: special.erfc(x), lambda: torch.erfc(t)),
        "log_ndtr": (lambda: special.log_ndtr(x), lambda: torch.special.log_ndtr(t)),
        "exp": (lambda: np.exp(x), lambda: torch.exp(t)),
        "log1p": (lambda: np.log1p(np.abs(x)), lambda: torch.log1p(t.abs())),
        "frexp": (lambda: np.frexp(x)[0], lambda: torch.frexp(t)[0]),
        "rint": (lambda: np.rint(x), lambda: torch.round(t)),
        "add": (lambda: x + x, lambda: t + t),
    }
    print(f"float64 primitives, 2^20 points, one thread ({torch.__version__}, numpy {np.__version__})")
    print(f"  {'primitive':<10} {'numpy/scipy':>12} {'torch':>9} {'torch/np':>9} {'bits differ':>12}")
    for name, (ours, theirs) in pairs.items():
        a, b = np.asarray(ours()), theirs().numpy()  # type: ignore[union-attr]
        differ = np.mean((a != b) & ~(np.isnan(a) & np.isnan(b)))
        ms_np, ms_torch = best_ms(ours), best_ms(theirs)
        print(
            f"  {name:<10} {ms_np:10.2f} ms {ms_torch:6.2f} ms {ms_torch / ms_np:9.2f} {100 * differ:11.2f}%"
        )

    space = PatternSpace(FP32, None, Shard(1, 256))
    patterns = np.concatenate([np.arange(a, b, dtype=np.uint64) for a, b in space.items(1 << 20)])
    values = patterns.astype(np.uint32).view(np.float32).astype(np.float64)
    whole = best_ms(lambda: fast_references(ERF, FP32, values), repeats=2)
    evaluation = best_ms(lambda: fast_gelu(ERF, values[np.abs(values) < 50]), repeats=2)
    print(f"\nthe fast tier on 1/256 of fp32 ({len(values):,} points, erf): {whole:.0f} ms")
    print(f"  of which the float64 evaluation, at most (every |x| < 50): {evaluation:.0f} ms")
    print(f"  the rest (regions, rounding to fp32, bookkeeping): {whole - evaluation:.0f} ms or more")


if __name__ == "__main__":
    main()
