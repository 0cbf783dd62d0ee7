"""What ``--isolate`` costs: the same plugin audited in-process and in a child, side by side.

The plugin is PyTorch's own ``F.gelu`` loaded through the import-string route
(``-i torch.nn.functional:gelu``), so the kernel's time is small and what is measured is the
isolation: the child's start (spawn, importing torch and the plugin) and the copies of input
and output bit patterns through the pipe. Runs alternate (in-process, isolated) so both see
the same machine load; the median of each is printed with their difference and ratio.

    python benchmarks/isolation_cost.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PLUGIN = ["-i", "torch.nn.functional:gelu", "--no-progress", "-f", "json"]
WORKLOADS = {
    "fp16, all 65,536 inputs": (["accuracy", "-d", "fp16", *PLUGIN], 1 << 16),
    "fp32, 64K sampled": (["accuracy", "-d", "fp32", "--samples", "65536", *PLUGIN], 1 << 16),
    "fp32 exhaustive in [1, 4], 1 job": (
        ["accuracy", "-d", "fp32", "--exhaustive", "--range", "1:4", "-j", "1", *PLUGIN],
        (1 << 24) + 1,
    ),
}


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "gelu_audit", *args], capture_output=True, check=False)
    if result.returncode not in (0, 1):
        raise SystemExit(f"gelu-audit {' '.join(args)} failed: {result.stderr.decode()[-500:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print(f"{'workload':36} {'in-process':>11} {'isolated':>10} {'cost':>8} {'ratio':>6}")
    costs = {}
    for label, (args, points) in WORKLOADS.items():
        plain, isolated = [], []
        for _ in range(options.repeat):
            plain.append(timed(args))
            isolated.append(timed([*args, "--isolate"]))
        a, b = statistics.median(plain), statistics.median(isolated)
        costs[label] = (b - a, points)
        print(f"{label:36} {a:10.2f}s {b:9.2f}s {b - a:7.2f}s {b / a:6.2f}", flush=True)
    (start, few), (streamed, many) = (
        costs["fp16, all 65,536 inputs"],
        costs["fp32 exhaustive in [1, 4], 1 job"],
    )
    per_point = (streamed - start) / (many - few)
    print(
        f"fixed cost (the child's start) ≈ {start:.2f} s; per point ≈ {1e9 * per_point:.0f} ns; "
        f"all 2^32 fp32 inputs ≈ {start + per_point * 2**32:.0f} s more, on one job"
    )


if __name__ == "__main__":
    main()
