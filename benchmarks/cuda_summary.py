"""One page from the outputs of `benchmarks/cuda_check.sh OUTDIR`: what ran, on which device,
and the figures docs/ needs (accuracy on CUDA next to the CPU, CPU-vs-CUDA bits, speed against
copy and against the device's theoretical bandwidth, code paths).

    python benchmarks/cuda_summary.py OUTDIR > OUTDIR/summary.md
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any


def load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def ulp(value: Any) -> str:
    number = float(value)
    return f"{number:.3f}" if number < 100 else f"{number:,.0f}" if number < 1e7 else f"{number:.3e}"


def steps(out: Path) -> list[str]:
    lines = ["| step | exit | seconds |", "|---|---:|---:|"]
    with open(out / "steps.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            lines.append(f"| {row['step']} | {row['exit']} | {float(row['seconds']):.1f} |")
    return lines


def device(out: Path) -> list[str]:
    env = load(out, "environment") or {}
    torch = env.get("torch", {})
    return [
        f"- GPU: {env.get('nvidia_smi') or ', '.join(torch.get('cuda_devices', [])) or 'none'}",
        f"- CPU: {env.get('cpu')} ({env.get('cpu_count')} cores); "
        f"torch {env.get('libraries', {}).get('torch')}, CUDA {torch.get('cuda_version')}; "
        f"Python {env.get('python')}",
    ]


def accuracy(document: dict[str, Any] | None, title: str) -> list[str]:
    if document is None:
        return [f"### {title}", "", "(no report)"]
    lines = [
        f"### {title}",
        "",
        "| implementation | dtype | device | max ULP | at x | CR | non-finite | specials |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for case in sorted(document["results"], key=lambda c: (c["dtype"], c["implementation"], c["device"])):
        if case.get("pass") == "backward":
            case = {**case, "implementation": f"{case['implementation']} (gradient)"}
        if case["status"] != "ok":
            lines.append(
                f"| {case['implementation']} | {case['dtype']} | {case['device']} | error: {case['error']} |"
            )
            continue
        exact = case["exact"]
        worst = exact["worst"][0]["x"] if exact["worst"] else "—"
        specials = f"{sum(s['ok'] for s in case['specials'])}/{len(case['specials'])}"
        lines.append(
            f"| {case['implementation']} | {case['dtype']} | {case['device']} | {ulp(exact['max_ulp'])} "
            f"| {worst} | {100 * float(exact['correctly_rounded']):.2f}% | {case['nonfinite_count']} "
            f"| {specials} |"
        )
    lines += [
        f"- skipped: {s['implementation']} {s['device']} {s['dtype']}: {s['reason']}"
        for s in document["skipped"]
    ]
    streams = document.get("streams", {})
    tier = document["settings"].get("reference_tier", "scipy")
    for dtype, timing in streams.items():
        references = timing.get("cpu_seconds", {}).get("reference")
        lines.append(
            f"- {dtype} exhaustive: {float(timing['wall_seconds']):.1f} s wall, {timing['jobs']} jobs, "
            f"reference tier {tier}"
            + (f" ({float(references):.1f} CPU-s of references)" if references is not None else "")
        )
    return lines


def bits(document: dict[str, Any] | None) -> list[str]:
    if document is None:
        return ["(no comparison)"]
    lines = [
        "| implementation | dtype | inputs | differing | farthest apart | example (x: cpu, cuda, RN) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in document["comparisons"]:
        if "error" in row:
            lines.append(f"| {row['implementation']} | {row['dtype']} | error: {row['error']} | | | |")
            continue
        e = row["example"]
        shown = (
            "—"
            if e is None
            else f"{e['x']}: {e['cpu']}, {e['cuda']}, {e['correctly_rounded']} ({e['closer']})"
        )
        lines.append(
            f"| {row['implementation']} | {row['dtype']} | {row['inputs']:,} | {row['differing']:,} "
            f"| {row['max_ordinal_distance']} | {shown} |"
        )
    return lines


def speed(document: dict[str, Any] | None) -> list[str]:
    if document is None:
        return ["(no report)"]
    lines = [
        "| implementation | dtype | size | median | GB/s | ratio to copy | ratio to peak | noise |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in document["cases"]:
        if c["status"] != "ok":
            lines.append(
                f"| {c['implementation']} | {c['dtype']} | {c['size']:,} | {c['status']}: {c['reason']} |"
            )
            continue
        peak = c.get("ratio_to_peak")
        lines.append(
            f"| {c['implementation']} | {c['dtype']} | {c['size']:,} "
            f"| {float(c['timing']['median']) * 1e6:.1f} µs "
            f"| {float(c['bandwidth_gbs']):.0f} | {float(c['ratio_to_copy']):.3f} "
            f"| {'—' if peak is None else f'{float(peak):.3f}'} | {100 * float(c['timing']['noise']):.1f}% |"
        )
    cuda = document.get("environment", {}).get("cuda", {})
    lines += [
        f"- {name}: {info.get('name')}, peak {info.get('peak_bandwidth_gbs')} GB/s"
        for name, info in cuda.items()
    ]
    return lines


def paths(document: dict[str, Any] | None) -> list[str]:
    if document is None:
        return ["(no report)"]
    differ = [r for r in document["results"] if r["status"] != "agree"]
    lines = [
        f"{document['summary']['comparisons']} comparisons, "
        f"{len(differ)} not bit-identical to the contiguous call"
    ]
    lines += [
        f"- {r['implementation']} {r['device']} {r['dtype']} {r['path']}: {r['status']}"
        f" ({r['differing']:,} inputs)"
        for r in differ[:40]
    ]
    return lines


def main() -> None:
    out = Path(sys.argv[1])
    page = ["# gelu-audit CUDA check", "", *device(out), "", "## Steps", "", *steps(out), ""]
    page += ["## Accuracy", "", *accuracy(load(out, "accuracy-fp16-bf16"), "fp16, bf16 (exhaustive)"), ""]
    page += [*accuracy(load(out, "accuracy-fp32-fp64"), "fp32, fp64 (sampled)"), ""]
    page += [*accuracy(load(out, "exhaustive-fp32"), "fp32, exhaustive"), ""]
    scipy_tier = load(out, "exhaustive-fp32-scipy-tier")
    page += [*accuracy(scipy_tier, "fp32, exhaustive, references on the CPU (SciPy tier)"), ""]
    page += [*accuracy(load(out, "gradient-fp16-bf16"), "the gradient: fp16, bf16 (exhaustive)"), ""]
    page += [*accuracy(load(out, "gradient-exhaustive-fp32"), "the gradient: fp32, exhaustive"), ""]
    page += [
        "## CPU and CUDA: the same bits?",
        "",
        *bits(load(out, "bits")),
        "",
        *bits(load(out, "bits-compiled")),
        "",
    ]
    for name, title in (
        ("direct", "F.gelu without the tool"),
        ("primitives", "float64 primitives on the GPU"),
        ("exhaustive-split", "Where the exhaustive audit's time goes"),
    ):
        printed = out / f"{name}.out"  # the benchmark's own text, as printed
        if printed.is_file():
            page += [f"## {title}", "", "```", printed.read_text().rstrip(), "```", ""]
    page += ["## Speed", "", *speed(load(out, "speed")), "", *speed(load(out, "speed-compiled")), ""]
    page += ["## Code paths", "", *paths(load(out, "paths")), ""]
    print("\n".join(page))


if __name__ == "__main__":
    main()
