"""A/B of the exhaustive stream's per-chunk work between two checkouts, in one session.

Runs the same 16 chunks of 2^20 fp32 patterns (spread over the whole space) twice through
``audit_chunk`` of the gelu_audit package found at CHECKOUT, one torch thread, and prints the
seconds per stage. Run it once per checkout, alternating, to compare code rather than machine
states (a whole exhaustive run varies by several percent from day to day):

    git worktree add /tmp/old <commit>
    python benchmarks/stream_stage_ab.py /tmp/old ; python benchmarks/stream_stage_ab.py .
    python benchmarks/stream_stage_ab.py /tmp/old torch-gelu,torch-gelu-aten   # several kernels
    python benchmarks/stream_stage_ab.py /tmp/old torch-gelu --core

``--core``: 16 chunks of the core instead (eight in [1, 2), eight in [−2, −1): computed, not
carried over as known blocks), best of three rounds per stage.

``--space``: every 64th chunk of the whole fp32 space instead (64 chunks), two rounds, each
stage's seconds split between the chunks that are known throughout (carried over from
prototypes: the tiny region, both tails) and the others, in ms a chunk and scaled to the whole
space (CPU seconds): where a kernel's time goes across the space, not only in its core. Each chunk's
``audit_chunk, whole`` is its call from start to end: the stages and what no stage counts.

``--profile``: one more round under cProfile, then the 30 functions with the most time of their
own: where a kernel's stage goes (the statistics' passes, the policies, the error arithmetic).
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    core = "--core" in sys.argv
    space = "--space" in sys.argv
    profile = "--profile" in sys.argv
    arguments = [a for a in sys.argv[1:] if a not in ("--core", "--space", "--profile")]
    sys.path.insert(0, arguments[0] if arguments else ".")
    import torch

    import gelu_audit

    try:
        from gelu_audit.audits.exhaustive import ChunkTask, audit_chunk, tune_allocator
    except ImportError:  # a checkout from before the regrouping into packages
        from gelu_audit.exhaustive import ChunkTask, audit_chunk, tune_allocator  # type: ignore[no-redef,import-not-found]

    names = arguments[1].split(",") if len(arguments) > 1 else ["torch-gelu"]
    cases = tuple((name, "cpu") for name in names)
    torch.set_num_threads(1)
    tune_allocator()
    import scipy.special  # noqa: F401 - before the clock, as the stream's workers do (older checkouts: at import)

    def stage_seconds(starts: range | list[int], kinds: dict[int, str] | None = None) -> dict[str, float]:
        """Seconds per stage over one round of the chunks of 2^20 patterns from ``starts``
        (with ``kinds``, per stage and kind of chunk: "stage, kind")."""
        totals: dict[str, float] = {}
        for start in starts:
            task = ChunkTask("fp32", start, start + (1 << 20), ("erf",), cases, 2.0, 5)
            began = time.perf_counter()
            for stage, seconds in audit_chunk(task).seconds.items():
                key = stage if kinds is None else f"{stage}, {kinds[start]}"
                totals[key] = totals.get(key, 0.0) + seconds
            whole = "audit_chunk, whole" if kinds is None else f"audit_chunk, whole, {kinds[start]}"
            totals[whole] = totals.get(whole, 0.0) + time.perf_counter() - began  # the stages and the rest
        return totals

    if space:
        starts = [k << 20 for k in range(37, 4096, 64)]
        kinds = {start: _kind(start) for start in starts}
        rounds = [stage_seconds(starts, kinds) for _ in range(2)]
        print(gelu_audit.__file__, "every 64th chunk,", sum(k == "known" for k in kinds.values()), "known")
        for key in sorted(rounds[0]):
            seconds = [r[key] for r in rounds]
            chunks = sum(1 for kind in kinds.values() if key.endswith(kind))
            print(
                f"  {key:32s} ms a chunk {', '.join(f'{1000 * s / chunks:7.2f}' for s in seconds)}"
                f"   whole space (CPU s) {', '.join(f'{64 * s:6.1f}' for s in seconds)}"
            )
    elif core:
        starts = [0x3F800000 + k * (1 << 20) for k in range(8)] + [
            0xBF800000 + k * (1 << 20) for k in range(8)
        ]
        rounds = [stage_seconds(starts) for _ in range(3)]
        best = {stage: min(r[stage] for r in rounds) for stage in rounds[0]}
        print(
            gelu_audit.__file__,
            "core, best of 3:",
            {stage: round(seconds, 3) for stage, seconds in best.items()},
        )
    else:
        starts = list(range(0, 1 << 32, 1 << 28))
        rounds = [stage_seconds(starts) for _ in range(2)]
        totals = {stage: sum(r[stage] for r in rounds) for stage in rounds[0]}
        print(gelu_audit.__file__, {stage: round(seconds, 2) for stage, seconds in totals.items()})
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(stage_seconds, starts)  # (--space: every 64th chunk)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def _kind(start: int) -> str:
    """Whether the erf references of the 2^20 fp32 patterns from ``start`` are known
    throughout (carried over from prototypes) or computed."""
    import numpy as np

    from gelu_audit.audits.known_blocks import known_blocks
    from gelu_audit.numerics.formats import FP32, patterns_to_values
    from gelu_audit.numerics.formulas import ERF

    patterns = np.arange(start, start + (1 << 20), dtype=np.int64)
    x = patterns_to_values(FP32, patterns.astype(np.uint32))
    return "known" if known_blocks(ERF, FP32, x, patterns, 5, True, consecutive=True) else "computed"


if __name__ == "__main__":
    main()
