"""The speed audit: a careful timing protocol, and every figure set against a plain copy.

Pure computation: no printing. One harness serves CPU and CUDA; only the clock differs
(``perf_counter`` vs CUDA events, with the L2 cache flushed outside the timed region on CUDA).
Implementation and copy samples are taken interleaved, so each pair sees the same machine
state, and the per-pair ratio impl/copy is the figure that survives a noisy machine: it is
what ``--baseline`` compares, with a bootstrap interval to tell a regression from noise.

Interleaving has a cost: each side runs right after the other, and on the 2-core Xeon a 16M
copy timed right after ``F.gelu`` took 6.9 ms where it takes 3.8 ms alone; 40 ms of untimed
copies before it still left it 5–9% slow, 200 ms about 1% (the thread pool and the core take a
while to settle after the other kernel, longer after a pause). So samples come in rounds: each
side is re-warmed for ``rewarm_s`` (100 ms, at least one call), then timed for
``round_samples`` (5) samples back to back, each a block of calls lasting ``min_sample_s``
(20 ms) at least. The copy then measures within 1–3% of torch.utils.benchmark's time alone
(benchmarks/speed_protocol.py). A case is sampled until the 95% interval of its median ratio is
within ``target`` (±2% from the command line) or a time cap is reached; the interval is reported
with the figure. What no protocol removes is the machine's own drift: the copy is memory-bound
and a GELU mostly is not, so their ratio moves with the memory bandwidth; ``copy_drift`` says
by how much during a run.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gelu_audit.errors import UsageError
from gelu_audit.implementations.availability import skip_reason
from gelu_audit.implementations.devices import resolve_devices
from gelu_audit.implementations.model import Implementation, ImplementationError, first_line, reportable
from gelu_audit.implementations.plugins import PluginOptions
from gelu_audit.implementations.registry import select_implementations
from gelu_audit.implementations.runner import implementation_warnings_silenced, make_input, run_implementation
from gelu_audit.numerics.formats import FORMATS, FloatFormat, values_to_patterns
from gelu_audit.progress import SILENT, ProgressSink

DEFAULT_SIZES = (1 << 10, 1 << 16, 1 << 20, 1 << 24)
"""From launch-bound (1K) to memory-bound (16M elements)."""

UNSTABLE_NOISE = 0.10
"""IQR/median above this flags a measurement as unstable."""

TOO_SLOW_S = 0.5
"""A first call slower than this is not timed (e.g. a Python-level loop at 16M elements)."""


def parse_share(text: str, option: str, most: float) -> float:
    """``10%`` or ``0.1`` → 0.1, between 0 and ``most``; a UsageError naming ``option``. A bare
    number of 1 or more is refused: ``10`` is far more likely meant as 10% than as 1000%."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"malformed {option} {text!r}: use e.g. 10%") from None
    if not raw.endswith("%") and value >= 1:  # `--max-slowdown 10` meant 1000%, not 10%
        raise UsageError(f"{option} {text!r}: a number without % is a fraction (0.1 is 10%); write {raw}%")
    if not 0 <= value <= most:
        raise UsageError(f"{option} must be between 0% and {most:.0%}, not {text!r}")
    return value


def parse_slowdown(text: str) -> float:
    """``--max-slowdown``: ``10%`` or ``0.1`` → 0.1, at most 1000%."""
    return parse_share(text, "--max-slowdown", 10)


# --- statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingStats:
    """Summary of per-call times (seconds) from many samples."""

    median: float
    iqr: float
    minimum: float
    p20: float
    p80: float
    samples: int
    loops: int
    """Calls per sample (calibrated so a sample is well above the clock's resolution)."""
    noise: float
    """IQR / median."""
    unstable: bool


def summarize(per_call: list[float] | np.ndarray, loops: int) -> TimingStats:
    """Robust statistics of per-call times."""
    values = np.asarray(per_call, dtype=np.float64)
    q20, q25, q50, q75, q80 = np.percentile(values, [20, 25, 50, 75, 80])
    noise = float((q75 - q25) / q50) if q50 > 0 else math.inf
    return TimingStats(
        float(q50),
        float(q75 - q25),
        float(values.min()),
        float(q20),
        float(q80),
        len(values),
        loops,
        noise,
        noise > UNSTABLE_NOISE,
    )


# --- clocks -----------------------------------------------------------------------------------


class CpuClock:
    """Wall time with perf_counter."""

    def prepare(self) -> None:
        """Nothing to flush on the CPU between samples (the inputs are re-used deliberately)."""

    def time(self, function: Callable[[], Any], loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            function()
        return time.perf_counter() - start


class CudaClock:
    """CUDA events around the loop; L2 flushed by writing a buffer larger than it beforehand."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.device = device
        l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 64 << 20)
        self.flush_buffer = torch.empty(max(2 * l2, 64 << 20), dtype=torch.uint8, device=device)

    def prepare(self) -> None:
        self.flush_buffer.zero_()
        self.torch.cuda.synchronize(self.device)

    def time(self, function: Callable[[], Any], loops: int) -> float:
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(loops):
            function()
        end.record()
        torch.cuda.synchronize(self.device)
        return start.elapsed_time(end) / 1000.0


def make_clock(device: str) -> CpuClock | CudaClock:
    return CpuClock() if device == "cpu" else CudaClock(device)


# --- the protocol -----------------------------------------------------------------------------


class BaselineMetric(enum.Enum):
    """What a speed case is measured by: what ``--target`` narrows the interval of, and what a
    baseline is compared by, sample for sample."""

    RATIO = "ratio"
    """Implementation time ÷ copy time: steady across machines of different speeds, but it
    carries the copy's own drift (on the 2-core VM the copy moved 3.6-5% between back-to-back
    runs where the implementations' times moved 0.9-2.4%, docs/speed.md)."""
    TIME = "time"
    """Seconds per call: the tighter comparison on the same machine, meaningless across
    machines."""

    @property
    def samples_key(self) -> str:
        """The case field holding the per-sample values."""
        return "ratios" if self is BaselineMetric.RATIO else "times"

    def samples(self, case: SpeedCase) -> tuple[float, ...]:
        """The case's per-sample values of this metric."""
        values: tuple[float, ...] = getattr(case, self.samples_key)
        return values

    @property
    def compared(self) -> str:
        """What the allowance applies to, for the report's last line."""
        return "copy-normalised median" if self is BaselineMetric.RATIO else "median time per call"

    @property
    def relative_to(self) -> str:
        """How a change is described: ``+12% relative to copy`` or ``+12% in time per call``."""
        return "relative to copy" if self is BaselineMetric.RATIO else "in time per call"


@dataclass(frozen=True)
class TimingProtocol:
    """How long to warm up, how long a sample should last, how many samples."""

    warmup_s: float = 0.1
    min_sample_s: float = 0.02
    samples: int = 25
    """Samples per side at least (exactly, without a ``target``)."""
    rewarm_s: float = 0.1
    """Untimed calls of a function for this long (one at least) right before each round of its
    timed samples, so the timed blocks do not follow the other side's kernel."""
    round_samples: int = 5
    """Samples of one side taken back to back before the other side's round: the later ones in
    a round follow their own kind only, and a longer re-warm costs no more per sample."""
    target: float | None = None
    """Keep sampling until the 95% interval of the median of ``target_by`` is within ±target
    of it…"""
    target_by: BaselineMetric = BaselineMetric.RATIO
    """…the ratio to copy, or the time per call (``--compare-by time``: the interval of what is
    compared is the one that must be narrow)…"""
    time_cap_s: float = 10.0
    """…or a case has been sampled this long…"""
    max_samples: int = 400
    """…or this many samples were taken."""

    def __post_init__(self) -> None:
        if self.samples < 1 or self.round_samples < 1:
            raise ValueError("a timing protocol takes at least one sample, in rounds of one at least")


def calibrate_loops(clock: CpuClock | CudaClock, function: Callable[[], Any], min_sample_s: float) -> int:
    """Double the loop count until one sample lasts at least ``min_sample_s``."""
    loops = 1
    while True:
        clock.prepare()
        if clock.time(function, loops) >= min_sample_s or loops >= 1 << 20:
            return loops
        loops *= 2


def time_pair(
    clock: CpuClock | CudaClock,
    subject: Callable[[], Any],
    baseline: Callable[[], Any],
    protocol: TimingProtocol,
) -> tuple[TimingStats, TimingStats, np.ndarray, np.ndarray]:
    """Time ``subject`` and ``baseline`` (the copy) with interleaved samples.

    Returns both summaries, the per-sample ratios subject/baseline and the subject's per-sample
    times (seconds per call), in the order taken.
    """
    subject()
    baseline()  # untimed first calls: allocation, lazy initialisation, compilation
    deadline = time.perf_counter() + protocol.warmup_s
    while time.perf_counter() < deadline:
        subject()
        baseline()
    loops_s = calibrate_loops(clock, subject, protocol.min_sample_s)
    loops_b = calibrate_loops(clock, baseline, protocol.min_sample_s)
    times_s: list[float] = []
    times_b: list[float] = []
    started = time.perf_counter()
    enabled = gc.isenabled()
    gc.disable()  # NOTE: a collection inside a sample would be charged to the kernel
    try:
        while count := _next_round(protocol, times_s, times_b, time.perf_counter() - started):
            for function, loops, times in ((subject, loops_s, times_s), (baseline, loops_b, times_b)):
                _rewarm(function, protocol.rewarm_s)
                for _ in range(count):
                    clock.prepare()
                    times.append(clock.time(function, loops) / loops)
    finally:
        if enabled:
            gc.enable()
    ratios = np.asarray(times_s) / np.asarray(times_b)
    return summarize(times_s, loops_s), summarize(times_b, loops_b), ratios, np.asarray(times_s)


def _rewarm(function: Callable[[], Any], seconds: float) -> None:
    """Call ``function`` once, then again until ``seconds`` have passed."""
    until = time.perf_counter() + seconds
    function()
    while time.perf_counter() < until:
        function()


def _next_round(protocol: TimingProtocol, times_s: list[float], times_b: list[float], elapsed: float) -> int:
    """How many samples of each side the next round takes; 0 when sampling is done.

    The minimum (``samples``) is taken exactly; past it, rounds go on only while a ``target``
    is not met and neither cap is reached (the interval of ``target_by`` is checked after every
    round).
    """
    taken = len(times_s)
    if taken < protocol.samples:
        return min(protocol.round_samples, protocol.samples - taken)
    if protocol.target is None or taken >= protocol.max_samples or elapsed >= protocol.time_cap_s:
        return 0
    values = (
        np.asarray(times_s) / np.asarray(times_b) if protocol.target_by is BaselineMetric.RATIO else times_s
    )
    low, high = median_interval(np.asarray(values))
    if (high - low) / 2 <= protocol.target * float(np.median(values)):
        return 0
    return min(protocol.round_samples, protocol.max_samples - taken)


def median_interval(values: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median (deterministic): the same bootstrap
    ``--baseline`` uses for a change."""
    medians = resampled_medians(values, np.random.default_rng(seed), resamples)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def resampled_medians(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The medians of ``resamples`` bootstrap resamples of ``values`` (with replacement)."""
    return np.median(rng.choice(values, (resamples, len(values))), axis=1)


# --- the audit --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedCase:
    """One implementation × device × dtype × size, against a copy of the same size."""

    implementation: str
    device: str
    dtype: str
    size: int
    status: str
    """``ok``, ``error`` or ``skipped`` (too slow to time)."""
    reason: str | None = None
    timing: TimingStats | None = None
    copy: TimingStats | None = None
    ratios: tuple[float, ...] = ()
    """Per-sample implementation time / copy time (what a baseline compares by default)."""
    times: tuple[float, ...] = ()
    """Per-sample implementation time per call, in seconds (``--compare-by time``)."""
    elements_per_s: float | None = None
    bandwidth_gbs: float | None = None
    """Bytes read + written (2 × size × itemsize) ÷ median time, in GB/s."""
    copy_bandwidth_gbs: float | None = None
    ratio_to_copy: float | None = None
    """Copy time ÷ implementation time, the median over interleaved pairs (1.0 = as fast as a
    copy into a preallocated output; the implementation allocates its own output, as in real
    use)."""
    ratio_interval: tuple[float, float] | None = None
    """95% bootstrap interval of ``ratio_to_copy``."""
    time_interval: tuple[float, float] | None = None
    """95% bootstrap interval of the median time per call (``timing.median``), in seconds."""
    ratio_to_peak: float | None = None
    """Implementation bandwidth ÷ the device's theoretical bandwidth (CUDA only)."""


@dataclass(frozen=True)
class SpeedSettings:
    dtypes: tuple[str, ...] = ("fp32",)
    implementations: tuple[str, ...] = ()
    devices: tuple[str, ...] = ("cpu",)
    sizes: tuple[int, ...] = DEFAULT_SIZES
    threads: int | None = None
    protocol: TimingProtocol = field(default_factory=TimingProtocol)
    plugin_options: PluginOptions = PluginOptions()


@dataclass(frozen=True)
class SpeedReport:
    settings: SpeedSettings
    cases: list[SpeedCase]
    skipped: list[tuple[str, str, str, str]]
    """(implementation, device, dtype, reason) not timed at all."""
    environment: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class CopyDrift:
    """How far the same copy's median moved between the cases of one run (same device, dtype
    and size): the machine's own drift, which no ratio to copy can be steadier than.

    On the 2-core Xeon VM the copy's one-second medians moved 18% over a quiet minute while a
    compute-bound GELU's moved 11% (benchmarks/speed_protocol.py); the ratio between them is
    only as reproducible as that.
    """

    device: str
    dtype: str
    size: int
    cases: int
    fastest_s: float
    slowest_s: float

    @property
    def spread(self) -> float:
        """slowest / fastest − 1 (0 for a copy too fast for the clock)."""
        return self.slowest_s / self.fastest_s - 1 if self.fastest_s > 0 else 0.0


def copy_drift(cases: list[SpeedCase]) -> list[CopyDrift]:
    """The copy's spread per device × dtype × size, where two or more cases timed it."""
    groups: dict[tuple[str, str, int], list[float]] = {}
    for case in cases:
        if case.status == "ok" and case.copy is not None:
            groups.setdefault((case.device, case.dtype, case.size), []).append(case.copy.median)
    return [
        CopyDrift(device, dtype, size, len(medians), min(medians), max(medians))
        for (device, dtype, size), medians in groups.items()
        if len(medians) > 1
    ]


def peak_bandwidth_gbs(device: str) -> float | None:
    """Theoretical DRAM bandwidth of a CUDA device from its properties, when exposed."""
    if device == "cpu":
        return None
    import torch

    props = torch.cuda.get_device_properties(device)
    return ddr_bandwidth_gbs(
        getattr(props, "memory_clock_rate", None), getattr(props, "memory_bus_width", None)
    )


def ddr_bandwidth_gbs(memory_clock_khz: float | None, bus_width_bits: int | None) -> float | None:
    """Bytes per second a double-data-rate memory moves at its clock and bus width, in GB/s;
    None when the device does not say (recent PyTorch builds may not expose them)."""
    if not memory_clock_khz or not bus_width_bits:
        return None
    return 2 * memory_clock_khz * 1e3 * bus_width_bits / 8 / 1e9


def speed_environment(
    devices: list[str], threads: int | None, peaks: dict[str, float | None]
) -> dict[str, Any]:
    """What the timings depend on: threads, denormal flushing, CUDA device and clocks."""
    import torch

    from gelu_audit.environment import collect_environment

    env = collect_environment()
    tiny = torch.tensor([1e-40], dtype=torch.float32)
    env["timing"] = {
        "torch_threads": torch.get_num_threads(),
        "threads_requested": threads,
        "flushes_denormals": bool((tiny * 1.0).item() == 0.0),
        "clock": {d: ("perf_counter" if d == "cpu" else "cuda events, L2 flushed") for d in devices},
    }
    cuda = {}
    for device in devices:
        if device.startswith("cuda"):
            props = torch.cuda.get_device_properties(device)
            cuda[device] = {
                "name": props.name,
                "memory_gb": props.total_memory / 1e9,
                "sm_count": props.multi_processor_count,
                "peak_bandwidth_gbs": peaks[device],
                "driver": torch.version.cuda,
            }
    env["cuda"] = cuda
    return env


def copy_function(impl: Implementation, x: Any) -> Callable[[], Any]:
    """A plain copy of the same size, dtype and device into a preallocated output: the same
    copy, torch's ``out.copy_(x)`` with the run's threads, for every row of a device.

    One copy for all rows, so their ratios compare: NumPy's ``np.copyto`` is single-threaded,
    and against it ONNX Runtime's two-thread kernel came out 1.2× "faster than a copy". For an
    implementation that takes NumPy arrays the copy runs on a torch view of the same buffer
    (as integers of the same width: the bytes are what moves).

    Preallocated on purpose: an allocating copy of a few MB pays mmap/munmap page faults on
    every call and measured 50–350% IQR/median here. The GELU under audit allocates its output
    as its callers' code does, so that cost stays in its time and in its ratio to copy.
    """
    import torch

    source = torch.from_numpy(x.view(f"int{8 * x.dtype.itemsize}")) if impl.takes_arrays else x
    out = source.clone()
    return lambda: out.copy_(source)


def timed_call(impl: Implementation, x: Any, answer: Any) -> Callable[[], Any]:
    """What is timed: the implementation's ``speed_call`` on ``x`` when it has one, after
    checking that it gives the audited call's ``answer`` bit for bit (else the figure would
    time something the audit did not check); otherwise the audited call itself."""
    if impl.speed_call is None:
        return lambda: impl.function(x)
    try:
        call = impl.speed_call(x)
        timed_answer = np.asarray(call())
    except BaseException as error:  # a failing kernel is the case's error, not ours
        if not reportable(error):
            raise
        raise ImplementationError(f"its speed call failed: {first_line(error)}") from error
    try:
        expected = np.asarray(answer)
        unsigned = f"uint{8 * expected.dtype.itemsize}"
        same = timed_answer.dtype == expected.dtype and np.array_equal(
            timed_answer.view(unsigned), expected.view(unsigned)
        )
    except (TypeError, ValueError, RuntimeError) as error:  # no bits to compare (a dtype without a width)
        raise ImplementationError(
            f"its speed call's answers cannot be checked: {first_line(error)}"
        ) from error
    if not same:
        raise ImplementationError("its speed call's answers differ from the audited call's")
    return call


def speed_patterns(fmt: FloatFormat, size: int) -> np.ndarray:
    """The timed inputs: ``size`` values uniform in [−6, 6) (seed 0) as ``fmt``'s bit patterns,
    the same for every implementation and device, so that their times compare."""
    return values_to_patterns(fmt, np.random.default_rng(0).uniform(-6, 6, size))


def time_case(
    impl: Implementation,
    fmt: FloatFormat,
    device: str,
    size: int,
    protocol: TimingProtocol,
    peak: float | None,
    patterns: np.ndarray | None = None,
) -> SpeedCase:
    """Time one case and its copy; errors and too-slow implementations become statuses.

    ``patterns``: :func:`speed_patterns` made once for every case of this dtype and size (at
    256M elements making them takes seconds, as long as the timing itself); None makes them."""
    base: dict[str, Any] = {"implementation": impl.name, "device": device, "dtype": fmt.name, "size": size}
    if patterns is None:
        try:
            patterns = speed_patterns(fmt, size)
        except (MemoryError, ValueError) as error:  # the machine cannot hold this size: say so, go on
            return SpeedCase(**base, status="error", reason=f"cannot allocate {size:,} elements ({error})")
    try:
        run_implementation(impl, fmt, device, patterns[: min(size, 1024)])  # validates outputs
    except ImplementationError as error:
        return SpeedCase(**base, status="error", reason=str(error))
    x = make_input(impl, fmt, device, patterns)
    clock = make_clock(device)
    with implementation_warnings_silenced():
        try:
            start = time.perf_counter()
            answer = impl.function(x)
            if time.perf_counter() - start > TOO_SLOW_S:
                return SpeedCase(**base, status="skipped", reason=f"first call took over {TOO_SLOW_S} s")
            timed = timed_call(impl, x, answer)
            del answer  # not held through the timing (16M answers are 64 MB)
            timing, copy, ratios, times = time_pair(clock, timed, copy_function(impl, x), protocol)
        except ImplementationError as error:
            return SpeedCase(**base, status="error", reason=str(error))
        except BaseException as error:  # the kernel failed at this size, after passing at 1K
            if not reportable(error):
                raise
            return SpeedCase(**base, status="error", reason=f"raised {first_line(error)} while timed")
    moved = 2 * size * fmt.width // 8
    bandwidth = moved / timing.median / 1e9
    copy_bandwidth = moved / copy.median / 1e9
    return SpeedCase(
        **base,
        status="ok",
        timing=timing,
        copy=copy,
        ratios=tuple(float(r) for r in ratios),
        times=tuple(float(t) for t in times),
        elements_per_s=size / timing.median,
        bandwidth_gbs=bandwidth,
        copy_bandwidth_gbs=copy_bandwidth,
        ratio_to_copy=1 / float(np.median(ratios)),
        ratio_interval=_inverted(median_interval(ratios)),
        time_interval=median_interval(times),
        ratio_to_peak=bandwidth / peak if peak else None,
    )


def _inverted(interval: tuple[float, float]) -> tuple[float, float]:
    """An interval of time ratios impl/copy as one of speed ratios copy/impl."""
    low, high = interval
    return 1 / high, 1 / low


def run_speed(settings: SpeedSettings, progress: ProgressSink = SILENT) -> SpeedReport:
    """Time every selected implementation × device × dtype × size."""
    start = time.perf_counter()
    implementations = select_implementations(list(settings.implementations), settings.plugin_options)
    devices, _ = resolve_devices(list(settings.devices))
    if settings.threads is not None:
        if settings.threads < 1:
            raise UsageError("--threads must be at least 1")
        import torch

        torch.set_num_threads(settings.threads)
    peaks = {device: peak_bandwidth_gbs(device) for device in devices}
    environment = speed_environment(devices, settings.threads, peaks)
    plan: list[tuple[Implementation, FloatFormat, str, int]] = []
    skipped: list[tuple[str, str, str, str]] = []
    for fmt in (FORMATS[d] for d in settings.dtypes):
        for impl in implementations:
            for device in devices:
                reason = skip_reason(impl, device, fmt)
                if reason:
                    skipped.append((impl.name, device, fmt.name, str(reason)))
                else:
                    plan.extend((impl, fmt, device, size) for size in settings.sizes)
    cases = []
    # One dtype's inputs at a time, every size of it (the plan goes dtype, implementation,
    # device, size): the largest is held while smaller sizes are timed, which adds nothing to
    # the peak, reached while the largest is timed.
    inputs: dict[tuple[str, int], np.ndarray] = {}
    with progress.task("timing", len(plan)) as advance:
        for impl, fmt, device, size in plan:
            key = (fmt.name, size)
            if key not in inputs:
                if any(name != fmt.name for name, _ in inputs):
                    inputs.clear()
                with contextlib.suppress(MemoryError, ValueError):  # time_case tries again and says so
                    inputs[key] = speed_patterns(fmt, size)
            cases.append(
                time_case(impl, fmt, device, size, settings.protocol, peaks[device], inputs.get(key))
            )
            advance(1)
    return SpeedReport(settings, cases, skipped, environment, time.perf_counter() - start)


# --- comparing with a baseline ----------------------------------------------------------------


@dataclass(frozen=True)
class BaselineChange:
    """One case against the same case in a baseline report."""

    implementation: str
    device: str
    dtype: str
    size: int
    change: float
    """median(new) / median(old) − 1 of the compared samples (ratios to copy, or times): +0.25
    is 25% slower."""
    ci_low: float
    ci_high: float
    """95% bootstrap interval of ``change``."""
    verdict: str
    """``regression``, ``improvement``, ``unchanged`` or ``inconclusive``."""
    metric: BaselineMetric = BaselineMetric.RATIO
    """What was compared: per-sample ratios to copy, or times per call."""
    copy_change: float | None = None
    """The copy's median time now ÷ in the baseline − 1: the same operation on the same bytes,
    so its change is the machine's between the two runs (None: the baseline has no copy)."""
    untimed: str | None = None
    """Why a case the baseline timed was not timed now (a first call over the limit): a
    regression too large to time, its change and interval infinite."""


BASELINE_COMPARED_NOTHING = (
    "no case of this run was compared with the baseline (none was timed, or none is in it: cases "
    "match by implementation, device, dtype and size)"
)
"""Why a run with ``--baseline`` fails when the baseline and the run share no timed case."""


def bootstrap_change(
    old: np.ndarray, new: np.ndarray, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Change of the median ratio, with a 95% percentile-bootstrap interval (deterministic)."""
    rng = np.random.default_rng(seed)
    old_medians = resampled_medians(old, rng, resamples)
    new_medians = resampled_medians(new, rng, resamples)
    changes = new_medians / old_medians - 1
    low, high = np.percentile(changes, [2.5, 97.5])
    return float(np.median(new) / np.median(old) - 1), float(low), float(high)


def classify(change_low: float, change_high: float, max_slowdown: float) -> str:
    """Regression only when the whole interval lies beyond the allowed slowdown; improvement
    only when it lies beyond the same allowance the other way; unchanged when it lies below
    the allowance (no regression possible); otherwise inconclusive.

    The improvement's allowance, because an interval is taken within one run and the machine
    drifts between runs: two back-to-back runs of the same code on the 2-core VM gave 6 (by
    time) and 7 (by ratio) of 17 cases intervals wholly below 0, at 2-6% (docs/speed.md).
    ``--max-slowdown 0`` calls any certain change what it is."""
    if change_low > max_slowdown:
        return "regression"
    if change_high < -max_slowdown:
        return "improvement"
    if change_high <= max_slowdown:
        return "unchanged"
    return "inconclusive"


CaseKey = tuple[str, str, str, int]
"""(implementation, device, dtype, size): what a speed case is matched by."""


def saved_case_key(case: dict[str, Any]) -> CaseKey:
    """The key of a speed case as a saved report holds it."""
    return case["implementation"], case["device"], case["dtype"], case["size"]


def check_baseline(
    cases: list[dict[str, Any]], metric: BaselineMetric = BaselineMetric.RATIO, name: str = "the baseline"
) -> None:
    """A baseline report's cases carry what ``--baseline`` compares: a KeyError, TypeError or
    ValueError says which is missing or malformed (the caller names the file); a report saved
    before per-sample times were kept cannot be compared by time (a UsageError naming ``name``)."""
    for case in cases:
        if not isinstance(case, dict):
            raise TypeError(f"a case is a {type(case).__name__}, not an object")
        int(saved_case_key(case)[3])
        [float(r) for r in case.get(metric.samples_key) or ()]
        copy = case.get("copy")
        if copy is not None:
            if not isinstance(copy, dict):
                raise TypeError(f"a case's copy is a {type(copy).__name__}, not an object")
            if copy.get("median") is not None:
                float(copy["median"])
        if metric is BaselineMetric.TIME and case.get("status") == "ok" and not case.get("times"):
            raise UsageError(
                f"{name} holds no per-sample times (saved by an earlier gelu-audit): "
                "compare it --compare-by ratio, or save it again"
            )


def compare_with_baseline(
    cases: list[SpeedCase],
    baseline: list[dict[str, Any]],
    max_slowdown: float,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> list[BaselineChange]:
    """Compare matching cases (same implementation, device, dtype, size) by ``metric``."""
    timed = [
        ((c.implementation, c.device, c.dtype, c.size), metric.samples(c), c.copy.median if c.copy else None)
        for c in cases
        if c.status == "ok"
    ]
    untimed = [
        BaselineChange(
            c.implementation,
            c.device,
            c.dtype,
            c.size,
            math.inf,
            math.inf,
            math.inf,
            "regression",
            metric,
            untimed=c.reason,
        )
        for c in untimed_since(cases, baseline)
    ]
    return compare_samples(timed, baseline, max_slowdown, metric) + untimed


def untimed_since(cases: list[SpeedCase], baseline: list[dict[str, Any]]) -> list[SpeedCase]:
    """The cases the baseline timed that were skipped now: a first call over the limit (0.5 s),
    a slowdown too large to time, which no interval compares (failed cases fail the run anyway)."""
    timed_before = {saved_case_key(c) for c in baseline if c.get("status") == "ok"}
    return [
        c
        for c in cases
        if c.status == "skipped" and (c.implementation, c.device, c.dtype, c.size) in timed_before
    ]


def compare_samples(
    timed: list[tuple[CaseKey, tuple[float, ...], float | None]],
    baseline: list[dict[str, Any]],
    max_slowdown: float,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> list[BaselineChange]:
    """Each newly timed case (its key, per-sample values of ``metric`` and the copy's median
    time) against the baseline report's cases of the same key; cases the baseline lacks are
    left out."""
    key_of = metric.samples_key
    old_by_key = {saved_case_key(c): c for c in baseline if c.get("status") == "ok" and c.get(key_of)}
    results = []
    for key, samples, copy_median in timed:
        old = old_by_key.get(key)
        if old is None or not samples:
            continue
        change, low, high = bootstrap_change(np.asarray(old[key_of], float), np.asarray(samples))
        old_copy = _positive((old.get("copy") or {}).get("median"))
        new_copy = _positive(copy_median)
        copy_change = new_copy / old_copy - 1 if new_copy and old_copy else None
        verdict = classify(low, high, max_slowdown)
        results.append(BaselineChange(*key, change, low, high, verdict, metric, copy_change))
    return results


def _positive(value: Any) -> float | None:
    """A copy's median time as a positive finite number, else None (absent, 0, "inf", "nan")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def copy_change_notes(changes: list[BaselineChange]) -> list[str]:
    """Compared by time, one sentence per device × dtype × size whose copy moved noticeably
    between the baseline and now (the median over its cases): information, since a change of
    the kernels' times of that size may be the machine's. (Ratios to copy divide it out, at the
    price of the copy's own noise.)"""
    moved: dict[tuple[str, str, int], list[float]] = {}
    for c in changes:
        if c.metric is BaselineMetric.TIME and c.copy_change is not None:
            moved.setdefault((c.device, c.dtype, c.size), []).append(c.copy_change)
    notes = []
    for (device, dtype, size), values in moved.items():
        change = float(np.median(values))
        if abs(change) > COPY_CHANGE_NOTED:
            notes.append(
                f"the copy itself ({device} {dtype}, {size:,} elements) ran {abs(change):.0%} "
                f"{'slower' if change > 0 else 'faster'} than in the baseline: compared by time, a change "
                "of that size may be the machine's, not the kernel's"
            )
    return notes


COPY_CHANGE_NOTED = 0.05
"""Compared by time, a copy that moved more than this between the runs is pointed out, as a
copy that moved more than this within a run is: on the 2-core VM the copy's median moved
3.6–5% between back-to-back runs of the same code, 10–12% at worst (docs/speed.md)."""
