"""Scale-out check: N shard runs of `gelu-audit accuracy --exhaustive`, merged, against one run.

Runs every shard as its own process, one after another, as a scheduler's array jobs would (each
pays its own start-up), times them, merges the shard reports with `gelu-audit merge`, runs the
same audit unsharded, and checks that the merged results equal the single run's. Also times one
shard of the whole fp32 space, the unit of work a 64-job array hands each job.

    python benchmarks/shard_merge.py                      # 64 shards over [0.25, 64]
    python benchmarks/shard_merge.py --shards 16 --range 1:16 -i torch-gelu,numpy-erf

Prints figures; asserts nothing but the equality (a difference is printed and exits 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gelu_audit", *args], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"gelu-audit {' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--range", default="0.25:64", help="the inputs (default: 64 stripes of 2^20)")
    parser.add_argument("-i", "--impl", default="torch-gelu")
    parser.add_argument("--jobs", default="1", help="--jobs of each shard run")
    args = parser.parse_args()
    common = ["accuracy", "-d", "fp32", "--exhaustive", "-i", args.impl, "--max-ulp", "4", "-f", "json"]
    common += ["--no-progress", "--range", args.range]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        walls = [
            run(*common, "-j", args.jobs, "--shard", f"{k}/{args.shards}", "-o", str(work / f"s{k}.json"))
            for k in range(1, args.shards + 1)
        ]
        shards = [str(work / f"s{k}.json") for k in range(1, args.shards + 1)]
        merge_wall = run("merge", *shards, "-f", "json", "-o", str(work / "merged.json"))
        whole_wall = run(*common, "-j", "2", "-o", str(work / "whole.json"))
        merged = json.loads((work / "merged.json").read_text())
        whole = json.loads((work / "whole.json").read_text())
        differences = []
        for a, b in zip(whole["results"], merged["results"], strict=True):
            a.pop("seconds"), b.pop("seconds")
            if a != b:
                differences.append(a["implementation"])
        points = whole["inputs"]["fp32"]["count"]
        full_shard = run(
            "accuracy", "-d", "fp32", "--exhaustive", "-i", args.impl, "-j", "2", "--no-progress",
            "--shard", f"1/{args.shards}", "-f", "json", "-o", str(work / "full-shard.json"),
        )  # fmt: skip
        full_points = json.loads((work / "full-shard.json").read_text())["inputs"]["fp32"]["count"]
    verdict = "yes" if not differences else "NO: " + ", ".join(differences)
    walls_text = f"median {statistics.median(walls):.2f} s, max {max(walls):.2f} s, sum {sum(walls):.1f} s"
    print(
        f"{args.shards} shards of fp32 [{args.range}] ({points:,} inputs), {args.impl}, --jobs {args.jobs}:"
    )
    print(f"  shard wall: {walls_text}")
    print(f"  merge of {args.shards} reports: {merge_wall:.2f} s")
    print(f"  the same audit unsharded (--jobs 2): {whole_wall:.2f} s")
    print(f"  merged results equal the single run's: {verdict}")
    print(f"one shard of all fp32 (1/{args.shards}, {full_points:,} inputs, --jobs 2): {full_shard:.1f} s")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
