"""Reference throughput (mpmath vs the fast tier) and the wall time of an exhaustive fp32 audit.

Prints, from one run on this machine:
  1. pure mpmath references per second (fp32 stratified sample, Ziv loop as used for tables);
  2. fast-tier references per second with the mpmath fall-back, on the same sample and on a
     whole shard of the fp32 space (regions in their real proportions); then the tiers side by
     side, alternating: the SciPy tier, the torch tier on the CPU (one thread, as a worker runs)
     and, with --device cuda:N, on that GPU, over that shard and over the core, in arrays of 1M
     and 64K, with whether each gives the SciPy tier's references bit for bit;
  3. the wall time of `--exhaustive` for the given implementations (all 2^32 inputs, or 1/N of
     them with --fraction N and the total extrapolated: the stream's fixed cost, measured on a
     few thousand inputs, once, the rest times N), with CPU seconds per stage and the peak
     resident memory of the largest worker. The extrapolation counts N times what each worker
     computes once whatever the fraction: the known regions' prototypes, one per region, sign,
     answer and place in a binade (of each 32K block and each 1M chunk; about 3 ms each). A
     fraction that is a multiple of 8 samples one place in each binade (132 prototypes for
     `torch-gelu` at 16); any other samples all eight (1,056 at 17), which put the first
     kernel's stage at 177 CPU-s where the whole space takes 55-76 (2026-11-30). Take a power
     of two, and the whole space for figures to publish;
  4. with --pass both: the same for the gradient (GELU′ references, backward kernels), and the
     two passes' times side by side;
  5. the floor: the first implementation alone (its eager call, torch threads = --jobs) over the
     same inputs, and the audit's wall time as a multiple of it; each further implementation
     alone, and its stage's CPU seconds per job as a multiple of that; each implementation's
     call as the audit makes it, and what of its stage is left for the statistics;
  6. with --store: the same audit writing a --reference-store, then each implementation again
     (and --then, e.g. a kernel not seen before) reading it, with the store's size on disk;
  7. issue 16's targets against this run's figures: met, or by how much not (one kernel's wall
     where -i names one, each further kernel's where it names several, the audit against the
     first kernel alone), with the peak memory.

    python benchmarks/exhaustive_fp32.py                      # full 2^32 run of torch-gelu
    python benchmarks/exhaustive_fp32.py --fraction 16 -i torch-gelu,torch-gelu-aten
    python benchmarks/exhaustive_fp32.py --fraction 16 --pass both -i torch-gelu,torch-gelu-aten
    python benchmarks/exhaustive_fp32.py --fraction 16 --store -i torch-gelu --then torch-gelu-aten
    python benchmarks/exhaustive_fp32.py --device cuda:0 -j 16     # kernels on a GPU (cuda_check.sh)
    python benchmarks/exhaustive_fp32.py --fraction 16 --reference-tier torch   # references by torch

With --device, the implementations run there (the statistics stay on the CPU; the references
too unless --reference-tier says otherwise, e.g. torch:cuda:0), and the floor is the kernel on
inputs already there. For the forward pass it also prints, per
implementation, the CPU seconds of the call as the audit makes it (input made and sent, checks,
bits back; one thread, as a worker), against its stage's: what is left is the statistics.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gelu_audit.audits.exhaustive import PatternSpace, Shard, StreamOutcome, stream, tune_allocator
from gelu_audit.implementations.gradient import backward_implementation
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation_bits
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.formulas import ERF, Function, Pass, exact_function_for
from gelu_audit.numerics.inputs import parse_range, stratified_inputs
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.mpmath_ziv import compute_references
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier, parse_tier


def reference_rates(function: Function, device: str = "cpu") -> None:
    """mpmath and fast-tier references per second for ``function`` (one process); the torch
    tier beside the SciPy tier on the CPU and on ``device``."""
    sample = stratified_inputs(FP32, 2000, seed=1).values
    start = time.perf_counter()
    compute_references(function, FP32, sample)
    mpmath_rate = len(sample) / (time.perf_counter() - start)
    fast_references_of(function, FP32, sample[:10])
    start = time.perf_counter()
    _, counts = fast_references_of(function, FP32, sample)
    fast_sample_rate = len(sample) / (time.perf_counter() - start)
    patterns = np.concatenate(list(shard_chunks(256)))
    x = patterns.view(np.float32).astype(np.float64)
    start = time.perf_counter()
    scipy_refs, shard_counts = fast_references_of(function, FP32, x)
    fast_space_rate = len(x) / (time.perf_counter() - start)
    print(f"reference throughput ({function}, one process)")
    print(f"  mpmath, fp32 stratified sample    {mpmath_rate:>14,.0f} points/s")
    print(f"  fast tier, same sample            {fast_sample_rate:>14,.0f} points/s   {counts.counts}")
    print(f"  fast tier, 1/256 of the fp32 space {fast_space_rate:>13,.0f} points/s   {shard_counts.counts}")
    print(f"  ratio fast/mpmath on the space    {fast_space_rate / mpmath_rate:>14,.0f}x")
    tiers = [SCIPY_TIER, parse_tier("torch:cpu")] + (
        [parse_tier(f"torch:{device}")] if device != "cpu" else []
    )
    tier_rates(function, x, scipy_refs, tiers)


def tier_rates(function: Function, space: np.ndarray, expected, tiers: list[ReferenceTier]) -> None:
    """The tiers side by side, alternating, best of three, one torch thread (as in a worker):
    points per second over the 1/256 of the space above (the real mix of regions; only the
    region ``fast`` moves to torch) and over 2^22 points of the core (|x| in [0.5, 4), both
    signs: all ``fast``), in arrays of 1M and of 64K (what the stream hands the tier per pass);
    and whether each tier's references over the space are the SciPy tier's bit for bit."""
    import torch

    core = np.concatenate(
        [
            np.arange(a, a + (1 << 20), dtype=np.uint32)
            for a in (0x3F000000, 0x40000000, 0xBF000000, 0xC0000000)
        ]
    )
    inputs = {"1/256 of the space": space, "core": core.view(np.float32).astype(np.float64)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    best: dict[tuple[str, str, int], float] = {}
    same: dict[str, bool] = {}
    try:
        for tier in tiers:
            fast_references_of(function, FP32, space[:1000], tier=tier)  # a device's start, untimed
        for _ in range(3):
            for label, x in inputs.items():
                for size in (1 << 20, 1 << 16):
                    for tier in tiers:
                        start = time.perf_counter()
                        parts = [
                            fast_references_of(function, FP32, x[i : i + size], tier=tier)[0]
                            for i in range(0, len(x), size)
                        ]
                        seconds = time.perf_counter() - start
                        key = (tier.spec, label, size)
                        best[key] = min(best.get(key, math.inf), seconds)
                        if label != "core" and size == 1 << 20:
                            same[tier.spec] = all(
                                np.array_equal(
                                    np.concatenate([getattr(p, name) for p in parts]).view(np.uint8),
                                    np.ascontiguousarray(getattr(expected, name)).view(np.uint8),
                                )
                                for name in ("binade", "mant_hi", "mant_lo", "rounded")
                            )
    finally:
        torch.set_num_threads(threads)
    print("  the tiers side by side (Mpoints/s, best of 3, one thread; x: against scipy):")
    print(
        f"  {'tier':<14} {'space, 1M':>16} {'space, 64K':>16} {'core, 1M':>16} {'core, 64K':>16}"
        "   bits as scipy"
    )
    for tier in tiers:
        cells = []
        for label, x in inputs.items():
            for size in (1 << 20, 1 << 16):
                rate = len(x) / best[(tier.spec, label, size)]
                ratio = best[(SCIPY_TIER.spec, label, size)] / best[(tier.spec, label, size)]
                cells.append(f"{rate / 1e6:8.1f} ({ratio:4.2f}x)")
        print(f"  {tier.spec:<14} {' '.join(f'{c:>16}' for c in cells)}   {same[tier.spec]}")


def shard_space(fraction: int) -> PatternSpace:
    """1/``fraction`` of the fp32 space (all of it for 1), as the audits below take it."""
    return PatternSpace(FP32, None, Shard(1, fraction) if fraction > 1 else None)


def shard_chunks(fraction: int) -> Iterator[np.ndarray]:
    """That shard's bit patterns (uint32) in the stream's chunks of 2^20."""
    for a, b in shard_space(fraction).items(1 << 20):
        yield np.arange(a, b, dtype=np.uint64).astype(np.uint32)


def kernel_alone(name: str, fraction: int, jobs: int, device: str = "cpu") -> float:
    """Wall seconds of the eager call alone over the same patterns as the audit, chunk by chunk
    (1M fp32 tensors already on ``device``, torch threads = jobs): the floor an audit is
    measured against."""
    import torch

    implementation = registry()[name]
    torch.set_num_threads(jobs)
    total = 0.0
    for patterns in shard_chunks(fraction):
        x = torch.from_numpy(patterns.view(np.float32)).to(device)
        _synchronize(device)
        start = time.perf_counter()
        implementation.function(x)
        _synchronize(device)
        total += time.perf_counter() - start
    return total * fraction


def call_as_audited(name: str, fraction: int, device: str = "cpu") -> float:
    """Wall seconds, one torch thread (as each worker runs), of the call as an audit makes it
    (``run_implementation_bits``: the input made from the patterns and sent to ``device``, the
    call, the checks on input and output, the bits back), over the same chunks: the part of an
    implementation's stage that is not statistics."""
    import torch

    implementation = registry()[name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    total = 0.0
    try:
        for patterns in shard_chunks(fraction):
            start = time.perf_counter()
            run_implementation_bits(implementation, FP32, device, patterns)
            total += time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return total * fraction


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def timed_stream(
    names: tuple[str, ...],
    pass_: Pass,
    space: PatternSpace,
    jobs: int,
    store: Path | None = None,
    device: str = "cpu",
    tier: ReferenceTier = SCIPY_TIER,
) -> tuple[StreamOutcome, float]:
    """An exhaustive stream of ``names`` in ``pass_`` over ``space`` (references for the exact
    GELU or GELU′ and each implementation's own formula), and its wall seconds."""
    impls = registry()
    audited = [impls[n] if pass_ is Pass.FORWARD else backward_implementation(impls[n]) for n in names]
    functions = {exact_function_for(i.formula).name for i in audited if i} | {
        i.formula.name for i in audited if i
    }
    start = time.perf_counter()
    outcome = stream(
        FP32,
        space,
        tuple(sorted(functions)),
        tuple((n, device) for n in names),
        2.0,
        5,
        jobs=jobs,
        pass_=pass_,
        store=store,
        tier=tier,
    )
    return outcome, time.perf_counter() - start


def fixed_cost(names: tuple[str, ...], pass_: Pass, jobs: int, device: str = "cpu") -> float:
    """Wall seconds of a stream of ``names`` over a few thousand inputs: what any stream pays
    once (the worker processes' start, torch's import in each, the first chunk's set-up),
    whatever its size. Scaling a 1/N run's whole wall time by N would multiply it by N."""
    return timed_stream(names, pass_, PatternSpace(FP32, parse_range("1:1.001"), None), jobs, device=device)[
        1
    ]


def audit(
    names: tuple[str, ...],
    pass_: Pass,
    fraction: int,
    jobs: int,
    store: Path | None = None,
    label: str = "",
    fixed: float = 0.0,
    device: str = "cpu",
    tier: ReferenceTier = SCIPY_TIER,
) -> dict[str, float]:
    """One exhaustive stream of ``names`` in ``pass_``; prints it; CPU seconds per stage.
    ``fixed``: the stream's fixed cost (:func:`fixed_cost`), counted once when scaling."""
    space = shard_space(fraction)
    outcome, wall = timed_stream(names, pass_, space, jobs, store, device, tier)
    scale = fraction
    if scale > 1 and scale % 8:
        print(
            f"  (1/{scale} samples every place in a binade: each worker's prototypes, computed once"
            f" whatever the fraction, are counted {scale} times; a multiple of 8 is closer)"
        )
    share = "all" if scale == 1 else f"1/{scale}"
    print(
        f"\nexhaustive fp32 {pass_} on {device}, {len(outcome.inputs):,} points ({share}), {jobs} jobs, "
        f"reference tier {tier}{label}"
    )
    whole = (wall - fixed) * scale + fixed  # the fixed cost once, the rest scaled
    print(
        f"  wall time                  {wall:8.1f} s"
        + (
            f"   (x{scale}: {wall * scale:.0f} s; {whole:.0f} s with the stream's {fixed:.1f} s "
            "fixed cost counted once)"
            if scale > 1
            else ""
        )
    )
    for stage, seconds in outcome.seconds.items():
        print(
            f"  CPU {stage:<22} {seconds:8.1f} s"
            + (f"   (x{scale}: {seconds * scale:.0f} s)" if scale > 1 else "")
        )
    for function, tiers in outcome.tiers.items():
        print(f"  regions {function:<8} {tiers.counts}")
    print(
        f"  peak RSS of the largest worker (VmHWM): {outcome.peak_rss_mib:.0f} MiB "
        f"(this script's own process also held the 1/256 slices above)"
    )
    if store is not None:
        print(f"  reference store: {outcome.store.to_json()}")
    for (name, _device), case in outcome.accumulators.items():
        exact = case.exact
        stats = exact.finish(FP32, space)
        print(
            f"  {name}: max {stats.max_ulp:.6g} ULP at x = {stats.worst[0].x!r}, correctly rounded "
            f"{100 * stats.correctly_rounded:.4f}%, non-finite {exact.nonfinite_count:,}, "
            f"domain {stats.accurate_domain.lo!r}..{stats.accurate_domain.hi!r}"
        )
    peak = outcome.peak_rss_mib or 0.0
    return {"wall": whole, **{k: v * scale for k, v in outcome.seconds.items()}, PEAK: peak}


PEAK = "peak MiB"
"""The key of the largest worker's peak resident memory in :func:`audit`'s figures."""

TARGETS = {"one kernel, wall": 60.0, "each further kernel, wall": 15.0, "audit / kernel alone": 3.0}
"""Issue 16's targets on 2 cores (seconds, and a ratio)."""


def print_targets(names: tuple[str, ...], seconds: dict[str, float], floor: float, jobs: int) -> None:
    """This run's figures against issue 16's targets: met, or by how much not. A further
    kernel's wall is its stage's CPU seconds over the jobs (its share of a stream that keeps
    every job busy); one kernel's is the stream's wall where it was the only kernel."""
    figures: dict[str, float | None] = {
        "one kernel, wall": seconds["wall"] if len(names) == 1 else None,
        "each further kernel, wall": max((seconds[name] / jobs for name in names[1:]), default=None),
        "audit / kernel alone": seconds["wall"] / floor,
    }
    print(f"\ntargets (issue 16, {jobs} jobs; the largest worker peaked at {seconds[PEAK]:.0f} MiB)")
    for label, target in TARGETS.items():
        figure = figures[label]
        if figure is None:
            verdict = "not measured by this run (one kernel: -i with one; further: -i with several)"
        elif figure <= target:
            verdict = f"{figure:.1f}: met (target {target:g})"
        else:
            over = f"{figure - target:.1f} over the {target:g} asked ({figure / target:.1f}x)"
            verdict = f"{figure:.1f}: not met, {over}"
        print(f"  {label:<27} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-i", "--impl", default="torch-gelu", help="comma-separated implementations")
    parser.add_argument("--fraction", type=int, default=1, help="audit shard 1/N and extrapolate")
    parser.add_argument("-j", "--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--pass", dest="passes", choices=("forward", "backward", "both"), default="forward")
    parser.add_argument("--store", action="store_true", help="also time --reference-store: write, then read")
    parser.add_argument("--then", default="", help="with --store: implementations audited from the store")
    parser.add_argument("--device", default="cpu", help="where the implementations run (cpu, cuda:0)")
    parser.add_argument(
        "--reference-tier", default="scipy", help="the audits' fast tier: scipy, torch, torch:cuda:0"
    )
    args = parser.parse_args()
    tier = parse_tier(args.reference_tier)
    device = args.device
    passes = tuple(Pass) if args.passes == "both" else (Pass(args.passes),)

    tune_allocator()
    for pass_ in passes:
        reference_rates(ERF if pass_ is Pass.FORWARD else ERF.derivative, device)
    names = tuple(args.impl.split(","))
    fixed = {
        pass_: fixed_cost(names, pass_, args.jobs, device) if args.fraction > 1 else 0.0 for pass_ in passes
    }
    seconds = {
        pass_: audit(names, pass_, args.fraction, args.jobs, fixed=fixed[pass_], device=device, tier=tier)
        for pass_ in passes
    }
    if len(passes) == 2:
        print("\nside by side (CPU seconds for all 2^32 inputs; wall for the whole stream)")
        print(f"  {'stage':<24} {'forward':>10} {'backward':>10}")
        for stage in [
            k for k in dict.fromkeys([*seconds[Pass.FORWARD], *seconds[Pass.BACKWARD]]) if k != PEAK
        ]:
            forward, backward = seconds[Pass.FORWARD].get(stage), seconds[Pass.BACKWARD].get(stage)
            print(f"  {stage:<24} {forward or 0:10.1f} {backward or 0:10.1f}")
    floors = {name: kernel_alone(name, args.fraction, args.jobs, device) for name in names}
    floor = floors[names[0]]
    wall = seconds[passes[0]]["wall"]
    print(f"\nfloor: {names[0]} alone over the same inputs on {device} ({args.jobs} threads): {floor:.2f} s")
    print(f"  the audit of {', '.join(names)} took {wall:.0f} s: {wall / floor:.1f}x the kernel alone")
    if passes[0] is Pass.FORWARD:
        for name in names:
            called, spent = call_as_audited(name, args.fraction, device), seconds[passes[0]][name]
            print(
                f"  {name}: the call as the audit makes it, one thread, {called:.1f} s of its stage's "
                f"{spent:.1f} CPU-s; the statistics and the rest {spent - called:.1f} CPU-s"
            )
    for name in names[1:]:  # a further kernel's stage against its own call (CPU-s over wall: 2 threads)
        spent = seconds[passes[0]][name]
        print(
            f"  {name} alone: {floors[name]:.1f} s; its stage {spent:.0f} CPU-s, "
            f"{spent / args.jobs / floors[name]:.1f}x the kernel alone per thread"
        )
    print_targets(names, seconds[passes[0]], floor, args.jobs)
    if args.store:
        with tempfile.TemporaryDirectory(prefix="gelu-audit-store-") as folder:
            store = Path(folder)
            written = audit(
                names,
                passes[0],
                args.fraction,
                args.jobs,
                store,
                ", writing a reference store",
                fixed[passes[0]],
                tier=tier,
            )
            size = sum(f.stat().st_size for f in store.rglob("*.npz")) * args.fraction
            later = tuple(args.then.split(",")) if args.then else names
            read = audit(
                later,
                passes[0],
                args.fraction,
                args.jobs,
                store,
                ", reading the reference store",
                fixed[passes[0]],
                tier=tier,
            )
            print("\nreference store, side by side (wall for all 2^32 inputs)")
            print(f"  no store                 {wall:8.0f} s   ({', '.join(names)})")
            print(f"  writing the store        {written['wall']:8.0f} s   ({', '.join(names)})")
            print(f"  reading the store        {read['wall']:8.0f} s   ({', '.join(later)})")
            print(
                f"  on disk                  {size / 2**20:8.0f} MiB for all 2^32 inputs "
                f"(this run x{args.fraction})"
            )
            if not args.then:
                print(f"  read / no store          {read['wall'] / wall:8.2f}")
            print(f"  read / kernel alone      {read['wall'] / floor:8.1f}")


if __name__ == "__main__":
    main()
