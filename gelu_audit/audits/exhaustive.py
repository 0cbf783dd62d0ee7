"""Exhaustive fp32 audits: all 2^32 inputs streamed in chunks, over processes, in shards.

The input space is cut into stripes of :data:`STRIPE` consecutive bit patterns; shard K of N
takes the stripes whose number is K−1 modulo N, so every shard gets the same mix of cheap
regions (tiny, saturated, underflow) and expensive ones. Each stripe is cut into chunks; a
worker process computes the fast-tier references of a chunk once, runs every implementation on
it, and returns only mergeable accumulators (:mod:`gelu_audit.audits.stats`), so memory stays bounded
by the chunk size times the number of jobs, and results do not depend on how the work was cut.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import multiprocessing
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from gelu_audit.audits.known_blocks import KnownChunk, known_blocks_of
from gelu_audit.audits.policies import BUILTIN_POLICIES, Policy
from gelu_audit.audits.reference_store import ChunkStore, StoreTally
from gelu_audit.audits.stats import (
    AnswerBits,
    AuditBlock,
    CaseAccumulators,
    ErrorAccumulator,
    ReferenceBlock,
    against_label,
    case_accumulators,
    reference_blocks,
)
from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.implementations.gradient import backward_implementation
from gelu_audit.implementations.model import Implementation, ImplementationError
from gelu_audit.implementations.plugins import PluginOptions
from gelu_audit.implementations.registry import implementation_named
from gelu_audit.implementations.runner import run_implementation_bits
from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FORMATS, FP32, BlockInputs, FloatFormat, patterns_to_values
from gelu_audit.numerics.formulas import FUNCTIONS, Function, Pass
from gelu_audit.numerics.inputs import ValueRange
from gelu_audit.numerics.ulp import HISTOGRAM_EDGES
from gelu_audit.progress import SILENT, ProgressSink
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.fast_tier import BLOCK, TierCounts
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier

STRIPE = 1 << 20
"""Bit patterns per shard stripe (4,096 stripes in fp32)."""

DEFAULT_CHUNK = 1 << 20
"""Points per work item (a worker peaks at 365 MiB resident with torch loaded)."""


# --- shards and the tested space --------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """``--shard K/N``: the K-th of N deterministic slices (1-based)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"malformed shard {text!r}: expected K/N, e.g. 2/8") from None
    if not 1 <= index <= count:
        raise UsageError(f"malformed shard {text!r}: need 1 ≤ K ≤ N")
    if count > (1 << 32) // STRIPE:
        raise UsageError(f"at most {(1 << 32) // STRIPE} shards (one {STRIPE:,}-pattern stripe each)")
    return Shard(index, count)


def check_chunk_size(size: int, text: str) -> int:
    """A chunk size must be a power of two from BLOCK to STRIPE, so chunks never split a
    statistics block (the mean's exact sum is taken per block)."""
    if size < BLOCK or size > STRIPE or size & (size - 1):
        raise UsageError(
            f"--chunk-size must be a power of two from {BLOCK // 1024}K to {STRIPE >> 20}M, not {text!r}"
        )
    return size


def _pattern(fmt: FloatFormat, value: float) -> int:  # fp32 only, like the whole stream
    return int(np.array([value], np.float64).astype(np.float32).view(np.uint32)[0])


def _value(fmt: FloatFormat, pattern: int) -> float:
    return float(patterns_to_values(fmt, np.array([pattern], np.uint32))[0])


def _magnitude_patterns(fmt: FloatFormat, low: float, high: float) -> tuple[int, int]:
    """Patterns [a, b) of the non-negative values of fmt in [low, high] (0 ≤ low)."""
    a32 = np.float32(low)
    if float(a32) < low:
        a32 = np.nextafter(a32, np.float32(np.inf))
    b32 = np.float32(high) if math.isfinite(high) else np.float32(np.inf)
    if float(b32) > high:
        b32 = np.nextafter(b32, np.float32(0))
    a, b = _pattern(fmt, float(a32)), _pattern(fmt, float(b32))
    return a, b + 1


@dataclass(frozen=True)
class PatternSpace:
    """The inputs an exhaustive fp32 run tests: a value range, one shard of the stripes."""

    fmt: FloatFormat
    value_range: ValueRange | None = None
    shard: Shard | None = None

    def intervals(self) -> list[tuple[int, int]]:
        """Pattern intervals [a, b) of the range (every pattern, NaNs too, without one)."""
        if self.value_range is None:
            return [(0, 1 << 32)]
        lo, hi = self.value_range.lo, self.value_range.hi
        out = []
        if hi >= 0:
            out.append(_magnitude_patterns(self.fmt, max(lo, 0.0), hi))
        if lo <= 0:
            a, b = _magnitude_patterns(self.fmt, max(-hi, 0.0), -lo)
            out.append((a | 0x80000000, b | 0x80000000))
        return [(a, b) for a, b in out if a < b]

    def items(self, chunk_size: int) -> Iterator[tuple[int, int]]:
        """The work items [a, b), in pattern order, cut at chunk boundaries."""
        stripes = range(0, 1 << 32, STRIPE)
        if self.shard is not None:
            stripes = range((self.shard.index - 1) * STRIPE, 1 << 32, self.shard.count * STRIPE)
        intervals = self.intervals()
        for s in stripes:
            for a, b in intervals:
                lo, hi = max(a, s), min(b, s + STRIPE)
                for c in range(lo - lo % chunk_size, hi, chunk_size):
                    if max(lo, c) < min(hi, c + chunk_size):
                        yield max(lo, c), min(hi, c + chunk_size)

    def count(self) -> int:
        return sum(b - a for a, b in self.items(STRIPE))

    @cached_property
    def _finite_value_intervals(self) -> list[tuple[float, float]]:
        """The tested finite values as sorted, merged [lowest, highest] intervals."""
        spans: list[tuple[float, float]] = []
        for a, b in self.items(STRIPE):
            for sign in (0, 0x80000000):
                lo, hi = max(a, sign), min(b, sign + 0x7F800000)  # finite patterns of this sign
                if lo < hi:
                    v1, v2 = _value(self.fmt, lo), _value(self.fmt, hi - 1)
                    spans.append((min(v1, v2), max(v1, v2)))
        spans.sort()
        merged: list[tuple[float, float]] = []
        for low, high in spans:
            if merged and float(np.nextafter(np.float32(merged[-1][1]), np.float32(np.inf))) >= low:
                merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
            else:
                merged.append((low, high))
        return merged

    def lowest_above(self, bound: float) -> float | None:
        for lo, hi in self._finite_value_intervals:
            if hi > bound:
                if lo > bound:
                    return lo
                return float(np.nextafter(np.float32(bound), np.float32(np.inf)))
        return None

    def highest_below(self, bound: float) -> float | None:
        for lo, hi in reversed(self._finite_value_intervals):
            if lo < bound:
                if hi < bound:
                    return hi
                return float(np.nextafter(np.float32(bound), np.float32(-np.inf)))
        return None


@dataclass(frozen=True)
class StreamedInputs:
    """The description of an exhaustive fp32 input set (the same interface as InputSet)."""

    fmt: FloatFormat
    space: PatternSpace
    points: int
    chunk_size: int

    method = "exhaustive"
    is_exhaustive = True
    value_range = property(lambda self: self.space.value_range)

    def __len__(self) -> int:
        return self.points

    def describe(self) -> str:
        where = f" in [{self.space.value_range}]" if self.space.value_range else ""
        shard = (
            f", shard {self.space.shard} (merge the shards for the whole space)" if self.space.shard else ""
        )
        return f"{self.fmt}: exhaustive, {self.points:,} bit patterns{where}{shard}"

    def to_json(self) -> dict[str, object]:
        r = self.space.value_range
        return {
            "dtype": self.fmt.name,
            "method": "exhaustive",
            "count": self.points,
            "requested_samples": None,
            "seed": None,
            "range": [r.lo, r.hi] if r else None,
            "shard": str(self.space.shard) if self.space.shard else None,
            "chunk_size": self.chunk_size,
            "description": self.describe(),
        }


# --- the work of one chunk --------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    fmt: str
    start: int
    stop: int
    formulas: tuple[str, ...]
    """Formula names (a task crosses to a spawned process by pickling)."""
    cases: tuple[tuple[str, str], ...]
    """(implementation name, device) pairs."""
    tolerance: float
    top: int
    plugin_options: PluginOptions = PluginOptions()
    repeat: bool = False
    """Call each implementation twice on this chunk: different answers are its error."""
    pass_: str = "forward"
    """``backward``: the cases are the implementations' gradient kernels."""
    policies: tuple[Policy, ...] = BUILTIN_POLICIES
    store: str | None = None
    """``--reference-store``: the directory of stored references (None: no store)."""
    tier: ReferenceTier = SCIPY_TIER
    """Where the fast tier's region ``fast`` runs (``--reference-tier``)."""


REPEAT_EVERY = 64
"""The first chunk of a stream, and every 64th after it, is run twice (a kernel that gives
different answers for the same input is an error): 1.6% more kernel time, not 100%."""


@dataclass
class ChunkResult:
    points: int
    accumulators: dict[tuple[str, str], CaseAccumulators]
    errors: dict[tuple[str, str], str]
    tiers: dict[str, TierCounts]
    seconds: dict[str, float] = field(default_factory=dict)
    """Where the time went: ``reference`` and each implementation's name."""
    peak_rss_mib: float | None = None
    """The worker's resident-memory high-water mark so far (Linux), for the report."""
    store: StoreTally = field(default_factory=StoreTally)


def peak_rss_mib() -> float | None:
    """VmHWM of this process (getrusage's maxrss would include the pre-exec fork's copy)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


_IMPLEMENTATIONS: dict[tuple[str, PluginOptions, str], Implementation] = {}


def _implementation(name: str, options: PluginOptions, pass_: str) -> Implementation:
    """Looked up (or imported) once per worker process, not once per chunk; for the backward
    pass, its gradient kernel (the stream only carries differentiable ones)."""
    key = (name, options, pass_)
    if key not in _IMPLEMENTATIONS:
        impl = implementation_named(name, options)
        if Pass(pass_) is Pass.BACKWARD:
            gradient = backward_implementation(impl)
            if gradient is None:
                raise ValueError(f"{name} has no backward")  # never streamed: run_audit skips it
            impl = gradient
        _IMPLEMENTATIONS[key] = impl
    return _IMPLEMENTATIONS[key]


def _against(
    function: Function, tolerance: float, top: int, policies: tuple[Policy, ...]
) -> ErrorAccumulator:
    """An empty accumulator with the settings the statistics against ``function`` use (the
    reference store keys its summaries by them)."""
    return ErrorAccumulator(against_label(function), tolerance, top, policies=policies)


PASS = 1 << 16
"""A chunk that is not known throughout is compared this many inputs at a time (two blocks):
the arrays of a block then stay in the core's cache from its references to its comparisons,
which made the core about 8% faster per input than a whole 1M chunk at once (fp32, one
kernel, 2026-11-29; 128K and 32K passes were 6% and 5% faster).
The kernels still run on the whole chunk: a kernel's answers may depend on how its input is
cut (ATen's vector body and scalar tail differ). Known chunks are carried over whole."""


def audit_chunk(task: ChunkTask) -> ChunkResult:
    """References, every implementation, and their accumulators for one chunk of patterns."""
    fmt = FORMATS[task.fmt]
    patterns = np.arange(task.stop - task.start, dtype=np.uint32) + np.uint32(task.start)  # stop ≤ 2^32
    inputs = BlockInputs(fmt, patterns=patterns)  # values and indices made where needed
    start = time.perf_counter()
    store = ChunkStore(Path(task.store), fmt, task.start, task.stop, task.tier) if task.store else None
    # known blocks, carried over from prototypes: faster than computed or read from a store,
    # except with a tolerance under 1/2 ULP, where tiny blocks fall back to the arithmetic (the
    # store then serves them better)
    carry = store is None or task.tolerance >= HISTOGRAM_EDGES[0]
    shared = store is not None or len(task.cases) > 1  # the summaries will be needed

    def known_of(part: BlockInputs) -> dict[str, tuple[KnownChunk, TierCounts] | None]:
        return {
            f: known_blocks_of(FUNCTIONS[f], fmt, part, task.top, shared, consecutive=True) if carry else None
            for f in task.formulas
        }

    known = known_of(inputs)
    seconds = {"reference": time.perf_counter() - start}
    accumulators: dict[tuple[str, str], CaseAccumulators] = {}
    errors: dict[tuple[str, str], str] = {}
    if store is not None or all(k is not None for k in known.values()):  # the chunk at once
        start = time.perf_counter()
        blocks, tiers, computed = _blocks(task, fmt, store, shared, inputs, known)
        seconds["reference"] += time.perf_counter() - start
        for case in task.cases:  # one answer at a time, dropped once folded in
            start = time.perf_counter()
            bits = _answer(task, fmt, case, patterns, errors)
            if bits is None:
                continue
            _fold_case(accumulators, case, blocks, AnswerBits(fmt, bits), task)
            seconds[case[0]] = seconds.get(case[0], 0.0) + time.perf_counter() - start
        if store is not None and computed:
            start = time.perf_counter()
            for formula, written in computed.items():
                like = _against(FUNCTIONS[formula], task.tolerance, task.top, task.policies)
                store.save(formula, like, written, tiers[formula])
            seconds["reference store"] = time.perf_counter() - start
        tally = store.tally if store else StoreTally()
        return ChunkResult(len(inputs), accumulators, errors, tiers, seconds, peak_rss_mib(), tally)

    # every answer first, as float32 (fp32's values, exactly, in half the memory)
    answers: dict[tuple[str, str], np.ndarray] = {}
    for case in task.cases:
        start = time.perf_counter()
        bits = _answer(task, fmt, case, patterns, errors)
        if bits is None:
            continue
        answers[case] = _as_float32(fmt, bits)
        seconds[case[0]] = seconds.get(case[0], 0.0) + time.perf_counter() - start
    # passes cut where blocks are (global multiples of PASS, itself a multiple of BLOCK)
    cuts = [0, *range(-task.start % PASS or PASS, len(inputs), PASS), len(inputs)]
    passes = list(itertools.starmap(slice, itertools.pairwise(cuts)))
    tiers = {}
    # a tier that decides once per array gets every pass that is not known at once (so it needs
    # them all known first); the SciPy tier, pass by pass, judges each pass when it comes to it
    known_passes: list[dict[str, tuple[KnownChunk, TierCounts] | None] | None] = [None] * len(passes)
    at_once: dict[str, tuple[ReferenceValues, dict[int, slice], TierCounts]] = {}
    if not task.tier.decides_by_block:
        start = time.perf_counter()
        judged = [known_of(inputs.cut(cut)) for cut in passes]
        at_once = _references_at_once(task, fmt, inputs.x, passes, judged)
        known_passes = list(judged)
        del judged  # each pass's entry is dropped after its pass (below): no other reference
        seconds["reference"] += time.perf_counter() - start
    for number, cut in enumerate(passes):
        start = time.perf_counter()
        here = inputs.cut(cut)
        known_here = known_passes[number]
        known_passes[number] = None  # not kept past its pass: its blocks may fill in references
        computed_here = {
            f: ref.take(parts[number]) for f, (ref, parts, _) in at_once.items() if number in parts
        }
        blocks, tiers_here, _ = _blocks(
            task,
            fmt,
            None,
            shared,
            here,
            known_of(here) if known_here is None else known_here,
            computed_here,
        )
        seconds["reference"] += time.perf_counter() - start
        for formula, counts in tiers_here.items():
            tiers[formula] = tiers[formula] + counts if formula in tiers else counts
        for case, got in answers.items():
            start = time.perf_counter()
            _fold_case(accumulators, case, blocks, _widened(got[cut]), task)
            seconds[case[0]] += time.perf_counter() - start
    for formula, (_, _, counts) in at_once.items():  # the chunk's counts, once
        tiers[formula] = tiers[formula] + counts
    return ChunkResult(len(inputs), accumulators, errors, tiers, seconds, peak_rss_mib(), StoreTally())


def _as_float32(fmt: FloatFormat, bits: np.ndarray) -> np.ndarray:
    """Answers' bit patterns as float32 values, exactly (every format the stream audits fits):
    for fp32 a view, no pass over the chunk. (A signalling NaN stays one here; widening it to
    float64 per pass quiets it, as decoding did.)"""
    if fmt is FP32:
        return bits.view(np.float32)
    return patterns_to_values(fmt, bits).astype(np.float32)


def _widened(answers: np.ndarray) -> np.ndarray:
    """float32 answers as float64 for a pass; a signalling NaN among them (kept by
    :func:`_as_float32`) is quieted without a warning, as decoding does."""
    with np.errstate(invalid="ignore"):
        return answers.astype(np.float64)


def _answer(
    task: ChunkTask,
    fmt: FloatFormat,
    case: tuple[str, str],
    patterns: np.ndarray,
    errors: dict[tuple[str, str], str],
) -> np.ndarray | None:
    """One case's answers on the chunk as their bit patterns; None, with its error noted in
    ``errors``, where the implementation failed (the audit goes on without it)."""
    impl = _implementation(case[0], task.plugin_options, task.pass_)
    try:
        return run_implementation_bits(impl, fmt, case[1], patterns, repeat=task.repeat)
    except ImplementationError as error:
        errors[case] = str(error)
        return None


def _fold_case(
    accumulators: dict[tuple[str, str], CaseAccumulators],
    case: tuple[str, str],
    blocks: Mapping[str, Sequence[AuditBlock]],
    got: np.ndarray | AnswerBits,
    task: ChunkTask,
) -> None:
    """Fold one case's answers on these blocks into its accumulators (the chunk's earlier passes'
    ones, if any)."""
    formula = _implementation(case[0], task.plugin_options, task.pass_).formula
    accumulators[case] = case_accumulators(
        blocks, got, formula, task.tolerance, task.top, task.policies, accumulators.get(case)
    )


def _references_at_once(
    task: ChunkTask,
    fmt: FloatFormat,
    x: np.ndarray,
    passes: list[slice],
    known_passes: list[dict[str, tuple[KnownChunk, TierCounts] | None]],
) -> dict[str, tuple[ReferenceValues, dict[int, slice], TierCounts]]:
    """For a tier that decides once per array (torch): each formula's references for every pass
    of the chunk that is not known, in one call, with where each pass's points lie in them and
    the region counts of them all.

    One call per chunk instead of one per 64K pass: the region ``fast`` is about 125-150
    dispatched torch operations whatever the array's length (counted for erf, tanh and erf′ by
    benchmarks/torch_primitives.py), each roughly a kernel launch on a GPU, so a 1M chunk in 64K
    passes would cost 16 times the launches and transfers. The chunk's references are held
    until its passes are done: 32 bytes a point per formula. Each point's reference does not
    depend on which others are computed with it (tested: the stream gives the SciPy tier's
    states)."""
    at_once = {}
    for formula in task.formulas:
        unknown = [number for number, known in enumerate(known_passes) if known[formula] is None]
        if not unknown:
            continue
        parts, offset = {}, 0
        for number in unknown:
            length = passes[number].stop - passes[number].start
            parts[number] = slice(offset, offset + length)
            offset += length
        points = np.concatenate([x[passes[number]] for number in unknown])
        ref, counts = fast_references_of(FUNCTIONS[formula], fmt, points, tier=task.tier)
        at_once[formula] = (ref, parts, counts)
    return at_once


def _blocks(
    task: ChunkTask,
    fmt: FloatFormat,
    store: ChunkStore | None,
    shared: bool,
    inputs: BlockInputs,
    known: dict[str, tuple[KnownChunk, TierCounts] | None],
    computed_before: Mapping[str, ReferenceValues] | None = None,
) -> tuple[dict[str, Sequence[AuditBlock]], dict[str, TierCounts], dict[str, list[ReferenceBlock]]]:
    """Each formula's blocks for these inputs (known, stored, computed before for the whole
    chunk (:func:`_references_at_once`; their region counts are the chunk's, zero here),
    or computed by the fast tier; ``shared``: several answers will be compared with them), its
    region counts, and the blocks computed here (for the store)."""
    blocks: dict[str, Sequence[AuditBlock]] = {}
    tiers: dict[str, TierCounts] = {}
    computed: dict[str, list[ReferenceBlock]] = {}
    for formula in task.formulas:
        carried = known[formula]
        if carried is not None:
            blocks[formula], tiers[formula] = carried
            continue
        if computed_before and formula in computed_before:
            blocks[formula] = reference_blocks(
                fmt, inputs.x, inputs.index, computed_before[formula], task.top, shared
            )
            tiers[formula] = TierCounts.zero()  # the caller counts the chunk's once
            continue
        stored = None
        if store is not None:  # (the settings only a store needs: not built for every pass)
            like = _against(FUNCTIONS[formula], task.tolerance, task.top, task.policies)
            assert inputs.patterns is not None  # (the stream's chunks are given by their patterns)
            stored = store.load(formula, like, inputs.x, inputs.patterns)
        if stored is not None:
            blocks[formula], tiers[formula] = stored.blocks, stored.regions
            continue
        ref, tiers[formula] = fast_references_of(FUNCTIONS[formula], fmt, inputs.x, tier=task.tier)
        blocks[formula] = computed[formula] = reference_blocks(
            fmt, inputs.x, inputs.index, ref, task.top, shared
        )
    return blocks, tiers, computed


# --- the run ----------------------------------------------------------------------------------


def tune_allocator() -> None:
    """Keep freed numpy temporaries in malloc's heap instead of returning them to the system.

    The fast tier makes dozens of 256 KiB temporaries per block; with glibc's defaults each is
    handed back and faulted in again, which made the reference tier 3x slower (measured: 52 s
    instead of 169 s of CPU for the fp32 erf reference). Linux/glibc only; a no-op elsewhere.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 1 << 30)


def load_float64_functions() -> None:
    """Import SciPy's special functions, which the fast tier's float64 forms use, before the
    clock starts (0.2 s): not in the first chunk's reference time. (The tier imports them
    where it uses them, so ``gelu-audit list`` does not pay for them.)"""
    import scipy.special  # noqa: F401


def _worker_setup(threads: int) -> None:
    """Runs in each worker: Ctrl-C and SIGTERM are the parent's to handle (it kills the workers
    and says how far the run got); one torch thread per process.

    A SIGTERM sent to the whole process group (a CI runner cancelling, ``timeout``) would
    otherwise end the workers at once, and the parent could see a broken pool ("a worker
    process died", exit 2) before its own handler ran, or wait on a pool that no longer
    answers, instead of stopping cleanly with exit 143."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune_allocator()
    load_float64_functions()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


@dataclass
class StreamOutcome:
    """What an exhaustive stream produced for all its cases."""

    inputs: StreamedInputs
    accumulators: dict[tuple[str, str], CaseAccumulators]
    errors: dict[tuple[str, str], str]
    tiers: dict[str, TierCounts]
    seconds: dict[str, float]
    """CPU seconds summed over workers: ``reference`` and per implementation."""
    wall_seconds: float
    peak_rss_mib: float | None = None
    """The largest worker's resident-memory high-water mark (the parent's with --jobs 1)."""
    store: StoreTally = field(default_factory=StoreTally)
    """What the chunks read from and wrote to ``--reference-store``."""


def _workers(pool: ProcessPoolExecutor) -> list[multiprocessing.Process]:
    """The pool's worker processes (none once it has cleared them)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's workers (they ignore SIGTERM), and close this process's copy of the
    pipe they send results on.

    A worker killed while sending a result leaves half a message in the pipe. The pool's
    reading thread, which has read its length, then waits for the rest, and ``shutdown`` waits
    for that thread: a stop that never ends (seen once in CI: SIGTERM, 2 jobs, the thread in a
    217 KB ``read``). The killed workers' ends of the pipe close with them; with this process's
    closed too, the read ends (EOF), and the pool finishes as broken."""
    for process in _workers(pool):
        process.kill()
    results = getattr(pool, "_result_queue", None)
    writer = getattr(results, "_writer", None)
    if writer is not None:
        writer.close()


WATCH_S = 5.0
"""How often a stream waiting for results checks that its workers are alive."""


def wait_watching(
    pool: ProcessPoolExecutor, pending: set[Future[ChunkResult]]
) -> tuple[set[Future[ChunkResult]], set[Future[ChunkResult]]]:
    """``wait(pending, FIRST_COMPLETED)``, looking every :data:`WATCH_S` for a worker that died.

    A worker that dies on its own (out of memory, a kernel's crash) while sending a result
    leaves half a message, as one killed does (:func:`kill_workers`): the pool's reading thread
    waits for the rest and never reports the pool broken, so the results would be waited for
    forever. A dead worker whose death has not failed the futures within a look is handled as
    a stop: the other workers are killed and the pipe closed, and the futures fail with
    ``BrokenProcessPool``, which the stream reports in one line."""
    while True:
        finished, rest = wait(pending, timeout=WATCH_S, return_when=FIRST_COMPLETED)
        if finished:
            return finished, rest
        if any(process.exitcode is not None for process in _workers(pool)):
            kill_workers(pool)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a stream, with how far it got."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(
            f"interrupted after {done:,} of {total:,} points "
            f"({100 * done / max(total, 1):.1f}%); nothing written"
        )


def _fold(outcome: StreamOutcome, result: ChunkResult) -> None:
    """Merge a chunk's result into the stream's outcome: a case that failed in any chunk keeps
    its first error and no statistics."""
    for key, case in result.accumulators.items():
        if key in outcome.errors:
            continue
        if key not in outcome.accumulators:
            outcome.accumulators[key] = case
        else:
            outcome.accumulators[key].merge(case)
    for key, error in result.errors.items():
        outcome.errors.setdefault(key, error)
        outcome.accumulators.pop(key, None)
    for formula, counts in result.tiers.items():
        outcome.tiers[formula] = outcome.tiers.get(formula, TierCounts.zero()) + counts
    for name, s in result.seconds.items():
        outcome.seconds[name] = outcome.seconds.get(name, 0.0) + s
    outcome.store.add(result.store)
    if result.peak_rss_mib is not None:
        outcome.peak_rss_mib = max(outcome.peak_rss_mib or 0.0, result.peak_rss_mib)


def stream(
    fmt: FloatFormat,
    space: PatternSpace,
    formulas: tuple[str, ...],
    cases: tuple[tuple[str, str], ...],
    tolerance: float,
    top: int,
    jobs: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressSink = SILENT,
    plugin_options: PluginOptions = PluginOptions(),
    pass_: Pass = Pass.FORWARD,
    policies: tuple[Policy, ...] = BUILTIN_POLICIES,
    store: Path | None = None,
    tier: ReferenceTier = SCIPY_TIER,
) -> StreamOutcome:
    """Audit every case over the whole space; ``jobs`` worker processes (1: in this process)."""
    if fmt.width != 32:
        raise ValueError(f"streaming covers fp32's 2^32 patterns, not {fmt}")
    total = space.count()
    inputs = StreamedInputs(fmt, space, total, chunk_size)
    outcome = StreamOutcome(inputs, {}, {}, {}, {}, 0.0)
    tasks = (
        ChunkTask(
            fmt.name,
            a,
            b,
            formulas,
            cases,
            tolerance,
            top,
            plugin_options,
            i % REPEAT_EVERY == 0,
            pass_.value,
            policies,
            None if store is None else str(store),
            tier,
        )
        for i, (a, b) in enumerate(space.items(chunk_size))
    )
    started = time.perf_counter()
    done = 0
    with progress.task(
        f"exhaustive {fmt} ({total:,} points, {jobs} job{'s' if jobs > 1 else ''})", total
    ) as advance:

        def take(result: ChunkResult) -> None:
            nonlocal done
            _fold(outcome, result)
            done += result.points
            advance(result.points)

        if jobs <= 1:
            tune_allocator()
            load_float64_functions()
            try:
                for task in tasks:
                    take(audit_chunk(task))
            except KeyboardInterrupt:
                raise Interrupted(done, total) from None
        else:
            # spawn, not fork: the parent has run torch, whose thread pools do not survive a fork.
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_setup, initargs=(1,))
            pending: set[Future[ChunkResult]] = set()
            try:
                for task in tasks:
                    pending.add(pool.submit(audit_chunk, task))
                    if len(pending) >= 2 * jobs:  # bounded memory: a few chunks in flight
                        finished, pending = wait_watching(pool, pending)
                        for future in finished:
                            take(future.result())
                while pending:
                    finished, pending = wait_watching(pool, pending)
                    for future in finished:
                        take(future.result())
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the command line makes it one)
                kill_workers(pool)
                pool.shutdown(wait=True, cancel_futures=True)  # joins the pool's thread: a quiet exit
                raise Interrupted(done, total) from None
            except BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                raise EnvironmentUnavailableError(
                    f"a worker process died after {done:,} of {total:,} points "
                    "(killed, out of memory, or crashed by a kernel: fewer --jobs or a smaller "
                    "--chunk-size need less memory, and --isolate runs plugins in processes of their own)"
                ) from None
            pool.shutdown()
    outcome.wall_seconds = time.perf_counter() - started
    return outcome
