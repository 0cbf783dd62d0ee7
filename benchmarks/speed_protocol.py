"""Does `gelu-audit speed` measure what torch.utils.benchmark measures, and does it reproduce?

1. At one size (default 16M fp32, 2 threads): F.gelu(x) and the copy baseline `out.copy_(x)`,
   timed by torch.utils.benchmark (each alone, blocked_autorange) and by gelu-audit's protocol
   (interleaved rounds), side by side in one run. Both times should agree within 10%.
2. Reproducibility: `run_speed` twice back to back over the given implementations; per case the
   relative difference between the two runs of the ratio to copy, of the implementation's time
   and of the copy's; the median over cases and the worst; whether each run's 95% interval
   holds the other's value.
3. The machine's own drift (`--drift SECONDS`, default 30): the copy and a compute-bound GELU
   into a preallocated output (`aten.gelu.out`, no allocation), alternating one-second windows;
   the spread of each one's per-window median and of their ratio. No protocol makes a ratio
   steadier than this.

    python benchmarks/speed_protocol.py                          # built-ins at 16M fp32
    python benchmarks/speed_protocol.py -i torch-gelu,numpy-erf --size 1M --drift 0

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

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
    parser.add_argument(
        "--drift", type=float, default=30.0, help="seconds of the drift measurement (0: none)"
    )
    args = parser.parse_args()

    import torch

    from gelu_audit.audits.speed import SpeedSettings, TimingProtocol, copy_drift, run_speed
    from gelu_audit.cli.options import parse_size

    torch.set_num_threads(args.threads)
    size = parse_size(args.size, "--size", "16M")
    gelu_alone, copy_alone = torch_benchmark(size, args.threads)
    protocol = TimingProtocol(target=0.02)  # as the command line samples
    settings = SpeedSettings(
        dtypes=("fp32",),
        implementations=("torch-gelu",),
        sizes=(size,),
        threads=args.threads,
        protocol=protocol,
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
    settings = SpeedSettings(
        dtypes=("fp32",),
        implementations=names,
        sizes=(size,),
        threads=args.threads,
        protocol=protocol,
    )
    start = time.perf_counter()
    first, second = run_speed(settings), run_speed(settings)
    seconds = time.perf_counter() - start
    differences: dict[str, list[float]] = {"ratio": [], "time": [], "copy": []}
    held = 0
    print(f"two back-to-back runs ({seconds:.0f} s): ratio to copy, run 1 | run 2 | difference; time; copy")
    for a, b in zip(first.cases, second.cases, strict=True):
        if a.ratio_to_copy is None or b.ratio_to_copy is None or a.timing is None or b.timing is None:
            continue
        assert a.copy is not None and b.copy is not None and a.ratio_interval is not None
        change = {
            "ratio": b.ratio_to_copy / a.ratio_to_copy - 1,
            "time": b.timing.median / a.timing.median - 1,
            "copy": b.copy.median / a.copy.median - 1,
        }
        for key, value in change.items():
            differences[key].append(abs(value))
        low, high = a.ratio_interval
        held += low <= b.ratio_to_copy <= high
        print(
            f"  {a.implementation:24} {a.ratio_to_copy:6.3f} | {b.ratio_to_copy:6.3f}"
            f" | {change['ratio']:+6.1%}"
            f"  [{low:.3f}, {high:.3f}]; time {change['time']:+6.1%}; copy {change['copy']:+6.1%}"
        )
    for key, values in differences.items():
        if values:
            print(f"  {key:5}: median |difference| {statistics.median(values):.1%}, worst {max(values):.1%}")
    print(f"  run 2 inside run 1's ratio interval: {held} of {len(differences['ratio'])}")
    for label, report in (("run 1", first), ("run 2", second)):
        for drift in copy_drift(report.cases):
            print(
                f"  {label}: the copy's median over {drift.cases} cases "
                f"{drift.fastest_s * 1e3:.2f}–{drift.slowest_s * 1e3:.2f} ms ({drift.spread:.1%} apart)"
            )
    if args.drift > 0:
        machine_drift(size, args.drift)


def machine_drift(size: int, seconds: float) -> None:
    """Per-window medians of the copy and of ``aten.gelu.out`` (compute-bound, no allocation)."""
    import torch

    x = torch.from_numpy(np.random.default_rng(0).uniform(-6, 6, size).astype(np.float32))
    copied, gelu_out = x.clone(), x.clone()
    kernels = {
        "copy": lambda: copied.copy_(x),
        "gelu.out": lambda: torch.ops.aten.gelu.out(x, out=gelu_out),
    }

    def window_median(function: Callable[[], object], length: float) -> float:
        times = []
        until = time.perf_counter() + length
        while time.perf_counter() < until:
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    for function in kernels.values():
        window_median(function, 0.5)
    medians: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(max(1, round(seconds / 2))):
        for name, function in kernels.items():
            medians[name].append(window_median(function, 1.0))
    ratios = [c / g for c, g in zip(medians["copy"], medians["gelu.out"], strict=True)]
    print(f"the machine's drift, {len(ratios)} pairs of one-second windows (per-call medians):")
    for name, values in (*medians.items(), ("copy ÷ gelu.out", ratios)):
        spread = max(values) / min(values) - 1
        variation = statistics.pstdev(values) / statistics.mean(values)
        print(f"  {name:15} spread {spread:6.1%}, coefficient of variation {variation:5.1%}")


if __name__ == "__main__":
    main()
