"""Does `gelu-audit speed` measure what torch.utils.benchmark measures, and does it reproduce?

1. At one size (default 16M fp32, 2 threads): F.gelu(x) and the copy baseline `out.copy_(x)`,
   timed by torch.utils.benchmark (each alone, blocked_autorange) and by gelu-audit's protocol
   (interleaved pairs), side by side in one run. Both times should agree within 10%.
2. Reproducibility: `run_speed` twice back to back over the given implementations; per case the
   relative difference of the ratio to copy between the two runs, the median over cases and the
   worst, and whether each run's 95% interval holds the other's value.

    python benchmarks/speed_protocol.py                          # built-ins at 16M fp32
    python benchmarks/speed_protocol.py -i torch-gelu,numpy-erf --size 1M

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def torch_benchmark(size: int, threads: int) -> tuple[float, float]:
    """Median seconds per call of F.gelu and of the copy, each timed alone."""
    import torch
    import torch.nn.functional as F
    import torch.utils.benchmark as benchmark

    x = torch.from_numpy(np.random.default_rng(0).uniform(-6, 6, size).astype(np.float32))
    out = x.clone()
    medians = []
    for statement in ("F.gelu(x)", "out.copy_(x)"):
        timer = benchmark.Timer(statement, globals={"F": F, "x": x, "out": out}, num_threads=threads)
        medians.append(timer.blocked_autorange(min_run_time=2.0).median)
    return medians[0], medians[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--impl", default="", help="implementations (default: every built-in)")
    parser.add_argument("--size", default="16M")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from gelu_audit.audits.speed import SpeedSettings, run_speed
    from gelu_audit.cli.options import parse_size

    torch.set_num_threads(args.threads)
    size = parse_size(args.size, "--size", "16M")
    gelu_alone, copy_alone = torch_benchmark(size, args.threads)
    settings = SpeedSettings(
        dtypes=("fp32",), implementations=("torch-gelu",), sizes=(size,), threads=args.threads
    )
    case = run_speed(settings).cases[0]
    assert case.timing is not None and case.copy is not None and case.ratio_to_copy is not None
    print(f"fp32, {size:,} elements, {args.threads} threads, torch {torch.__version__}:")
    for label, alone, audited in (
        ("F.gelu", gelu_alone, case.timing.median),
        ("copy_", copy_alone, case.copy.median),
    ):
        print(
            f"  {label:7} torch.utils.benchmark {alone * 1e3:7.2f} ms | gelu-audit {audited * 1e3:7.2f} ms"
            f" | {audited / alone - 1:+.1%}"
        )
    print(
        f"  ratio to copy: torch.utils.benchmark {copy_alone / gelu_alone:.3f}"
        f" | gelu-audit {case.ratio_to_copy:.3f}"
    )

    names = tuple(n for n in args.impl.split(",") if n)
    settings = SpeedSettings(dtypes=("fp32",), implementations=names, sizes=(size,), threads=args.threads)
    start = time.perf_counter()
    first, second = run_speed(settings), run_speed(settings)
    seconds = time.perf_counter() - start
    differences, held = [], 0
    print(f"two back-to-back runs ({seconds:.0f} s): ratio to copy, run 1 | run 2 | difference")
    for a, b in zip(first.cases, second.cases, strict=True):
        if a.ratio_to_copy is None or b.ratio_to_copy is None:
            continue
        difference = b.ratio_to_copy / a.ratio_to_copy - 1
        differences.append(abs(difference))
        interval = getattr(a, "ratio_interval", None)
        inside = interval is not None and interval[0] <= b.ratio_to_copy <= interval[1]
        held += inside
        where = "" if interval is None else f"  run 1 interval [{interval[0]:.3f}, {interval[1]:.3f}]"
        print(
            f"  {a.implementation:24} {a.ratio_to_copy:6.3f} | {b.ratio_to_copy:6.3f}"
            f" | {difference:+6.1%}{where}"
        )
    if differences:
        spread = f"median |difference| {statistics.median(differences):.1%}, worst {max(differences):.1%}"
        print(f"  {spread}; run 2 inside run 1's interval: {held} of {len(differences)}")


if __name__ == "__main__":
    main()
