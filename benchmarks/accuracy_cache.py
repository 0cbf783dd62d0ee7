"""Wall time of a cold and a warm exhaustive fp16 audit of every built-in, side by side.

Cold: an empty reference cache, so the three fp16 tables (erf, tanh, sigmoid) are computed in
mpmath. Warm: the same command again, tables read from the cache. The warm run should be
bounded by import time, which is measured too (`gelu-audit list --remeasure` imports torch the
same way; a plain `list` may answer from the kept facts without it).

    python benchmarks/accuracy_cache.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gelu_audit", *args],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dtype", default="fp16")
    options = parser.parse_args()
    audit = ["accuracy", "--dtype", options.dtype, "--no-progress"]
    cold, warm, imports = [], [], []
    for _ in range(options.repeat):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "GELU_AUDIT_CACHE_DIR": cache}
            cold.append(timed(audit, env))
            warm.append(timed(audit, env))
            imports.append(timed(["list", "--remeasure"], env))
    print(
        f"exhaustive {options.dtype} audit of all built-ins, {os.cpu_count()} CPUs, "
        f"{options.repeat} repeats (median, min–max):"
    )
    for label, values in (
        ("cold (empty cache)", cold),
        ("warm (cached tables)", warm),
        ("import + list (floor)", imports),
    ):
        print(f"  {label:22s} {statistics.median(values):6.2f} s   ({min(values):.2f}–{max(values):.2f})")
    print(f"  cold / warm            {statistics.median(cold) / statistics.median(warm):6.1f}x")


if __name__ == "__main__":
    main()
