"""Code-path coverage: the same PyTorch GELU on the same inputs, reached through different
layouts, sizes and APIs, compared bit for bit.

On the CPU, PyTorch picks a kernel by the tensor in hand: contiguous fp32/bf16 goes to
oneDNN, a strided view to ATen's TensorIterator loop; ATen's loop runs a vector body and a
scalar tail, so small or odd sizes go through different instructions; the in-place and
``out=`` variants are separate dispatcher entries. Users expect all of them to agree; when
they do not, a model's output depends on how a tensor happened to be laid out. This module
runs each path, and reports the inputs where a path's bits differ from the contiguous call,
with both answers and which one is nearer the correctly rounded GELU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from gelu_audit.errors import UsageError
from gelu_audit.implementations.availability import skip_reason
from gelu_audit.implementations.devices import resolve_devices
from gelu_audit.implementations.model import Implementation, ImplementationError, SkipKind, SkipReason
from gelu_audit.implementations.plugins import PluginOptions
from gelu_audit.implementations.registry import select_implementations
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FORMATS, FloatFormat, ordinals
from gelu_audit.numerics.formulas import Function
from gelu_audit.numerics.inputs import InputSet, default_inputs
from gelu_audit.progress import SILENT, ProgressSink
from gelu_audit.references.mpmath_ziv import reference_point

TRANSPOSE_ROWS = 64
"""Rows of the 2-D view whose transpose makes the non-contiguous (column-major) input."""


@dataclass(frozen=True)
class CodePath:
    """One way of reaching an implementation: runs it on ``x`` (a contiguous 1-D tensor) and
    returns its answers as a tensor in the order of ``x``."""

    name: str
    description: str
    run: Callable[[Implementation, Any], Any]
    only_torch_gelu: bool = False
    """True for the in-place and ``out=`` paths, which only the ATen op itself offers."""


def _contiguous(impl: Implementation, x: Any) -> Any:
    return impl.function(x)


def _strided(impl: Implementation, x: Any) -> Any:
    import torch

    buffer = torch.zeros(2 * x.numel(), dtype=x.dtype, device=x.device)
    buffer[::2] = x
    return impl.function(buffer[::2])


def _transposed(impl: Implementation, x: Any) -> Any:
    import torch

    n = x.numel()
    padded = torch.zeros(-(-n // TRANSPOSE_ROWS) * TRANSPOSE_ROWS, dtype=x.dtype, device=x.device)
    padded[:n] = x
    column_major = padded.view(TRANSPOSE_ROWS, -1).t()
    return impl.function(column_major).t().reshape(-1)[:n]


def _offset(impl: Implementation, x: Any) -> Any:
    import torch

    buffer = torch.zeros(x.numel() + 1, dtype=x.dtype, device=x.device)
    buffer[1:] = x
    return impl.function(buffer[1:])


def _pieces(size: int, impl: Implementation, x: Any) -> Any:
    import torch

    return torch.cat([impl.function(piece.clone()) for piece in torch.split(x, size)])


def _in_pieces(size: int) -> Callable[[Implementation, Any], Any]:
    """Calls of ``size`` elements (a partial, not a closure: it crosses to an --isolate child)."""
    return partial(_pieces, size)


def _in_place(impl: Implementation, x: Any) -> Any:
    import torch

    y = x.clone()
    torch.ops.aten.gelu_(y, approximate=impl.torch_gelu_approximate)
    return y


def _out(impl: Implementation, x: Any) -> Any:
    import torch

    y = torch.empty_like(x)
    torch.ops.aten.gelu.out(x, approximate=impl.torch_gelu_approximate, out=y)
    return y


BASELINE = CodePath(
    "contiguous", "f(x) on a contiguous 1-D tensor: the call every other path is compared with", _contiguous
)

PATHS: tuple[CodePath, ...] = (
    CodePath("strided", "f(buf[::2]): every other element of a buffer (stride 2)", _strided),
    CodePath("transposed", f"f(x.view({TRANSPOSE_ROWS}, -1).t()): a column-major 2-D view", _transposed),
    CodePath("offset", "f(buf[1:]): contiguous, but starting one element into its buffer", _offset),
    CodePath("size-1", "one call per element: scalar code only", _in_pieces(1)),
    CodePath("size-7", "calls of 7 elements: shorter than any vector, all scalar tail", _in_pieces(7)),
    CodePath("size-67", "calls of 67 elements: vector bodies plus a 3-element tail", _in_pieces(67)),
    CodePath("in-place", "torch.ops.aten.gelu_(y): the in-place op", _in_place, only_torch_gelu=True),
    CodePath("out", "torch.ops.aten.gelu.out(x, out=y): the out= op", _out, only_torch_gelu=True),
)

PATH_NAMES = tuple(p.name for p in PATHS)


def applicable(path: CodePath, impl: Implementation) -> bool:
    return impl.torch_gelu_approximate is not None if path.only_torch_gelu else True


# --- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    """One input where a path's answer differs from the contiguous call's."""

    x: float
    contiguous: float
    path: float
    ordinal_distance: int
    """How many representable values apart the two answers are."""
    reference: float
    """The correctly rounded GELU (claimed formula) at x."""
    closer: str
    """``contiguous``, ``path`` or ``tie``: which answer is nearer the reference."""


@dataclass(frozen=True)
class PathResult:
    implementation: str
    device: str
    dtype: str
    path: str
    status: str
    """``agree``, ``differ`` or ``error`` (the path raised or returned an invalid output)."""
    points: int = 0
    differing: int = 0
    max_ordinal_distance: int = 0
    examples: tuple[Disagreement, ...] = ()
    error: str | None = None
    seconds: float = 0.0


def _ordinals(fmt: FloatFormat, values: np.ndarray) -> np.ndarray:
    return ordinals(fmt, values).astype(np.int64)


def _same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal as bit patterns, with every NaN equal to every other (payloads are not audited)."""
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) & (np.signbit(a) == np.signbit(b))
    return same | both_nan


def disagreements(
    fmt: FloatFormat, formula: Function, x: np.ndarray, base: np.ndarray, got: np.ndarray, top: int
) -> tuple[int, int, tuple[Disagreement, ...]]:
    """Count the inputs where ``got`` differs from ``base``; the ``top`` farthest apart."""
    differ = np.flatnonzero(~_same_bits(base, got))
    if differ.size == 0:
        return 0, 0, ()
    finite = np.isfinite(base[differ]) & np.isfinite(got[differ])
    distance = np.full(differ.size, np.iinfo(np.int64).max, dtype=np.int64)
    distance[finite] = np.abs(_ordinals(fmt, base[differ][finite]) - _ordinals(fmt, got[differ][finite]))
    order = np.lexsort((differ, -distance))[:top]
    examples = []
    for i in order:
        index = differ[i]
        reference = reference_point(formula, fmt, float(x[index])).rounded
        gap_base = _gap(base[index], reference)
        gap_got = _gap(got[index], reference)
        closer = "tie" if gap_base == gap_got else ("contiguous" if gap_base < gap_got else "path")
        examples.append(
            Disagreement(
                float(x[index]), float(base[index]), float(got[index]), int(distance[i]), reference, closer
            )
        )
    return int(differ.size), int(distance.max()), tuple(examples)


def _gap(value: float, reference: float) -> float:
    if math.isnan(value) or math.isnan(reference):
        return 0.0 if math.isnan(value) == math.isnan(reference) else math.inf
    if value == reference:
        return 0.0
    return abs(value - reference) if math.isfinite(value - reference) else math.inf


def run_path(
    path: CodePath, impl: Implementation, fmt: FloatFormat, device: str, patterns: np.ndarray
) -> np.ndarray:
    """The path's answers, through the audit's own runner (checks, timeout, CUDA sync)."""
    return run_implementation(impl, fmt, device, patterns, route=path.run)


def compare_paths(
    impl: Implementation, device: str, inputs: InputSet, paths: tuple[CodePath, ...], top: int = 5
) -> list[PathResult]:
    """Every applicable path of one implementation against its contiguous call."""
    fmt = inputs.fmt
    base_info: dict[str, Any] = {"implementation": impl.name, "device": device, "dtype": fmt.name}
    try:
        base = run_path(BASELINE, impl, fmt, device, inputs.patterns)
    except ImplementationError as error:
        return [PathResult(**base_info, path=BASELINE.name, status="error", error=str(error))]
    results = []
    for path in paths:
        if not applicable(path, impl):
            continue
        start = time.perf_counter()
        try:
            got = run_path(path, impl, fmt, device, inputs.patterns)
        except ImplementationError as error:
            results.append(PathResult(**base_info, path=path.name, status="error", error=str(error)))
            continue
        count, farthest, examples = disagreements(fmt, impl.formula, inputs.values, base, got, top)
        results.append(
            PathResult(
                **base_info,
                path=path.name,
                status="differ" if count else "agree",
                points=len(inputs),
                differing=count,
                max_ordinal_distance=farthest,
                examples=examples,
                seconds=time.perf_counter() - start,
            )
        )
    return results


def path_candidates(
    implementations: list[Implementation], device: str, fmt: FloatFormat
) -> tuple[list[Implementation], list[tuple[str, SkipReason]]]:
    """The torch implementations that can run here, and the others with why not."""
    chosen, skipped = [], []
    for impl in implementations:
        reason = (
            SkipReason(SkipKind.NOT_TORCH, "not a PyTorch implementation")
            if impl.backend != "torch"
            else None
        )
        reason = reason or skip_reason(impl, device, fmt)
        if reason:
            skipped.append((impl.name, reason))
        else:
            chosen.append(impl)
    return chosen, skipped


# --- the whole check --------------------------------------------------------------------------


@dataclass(frozen=True)
class PathsSettings:
    dtypes: tuple[str, ...] = ("fp16", "bf16", "fp32", "fp64")
    implementations: tuple[str, ...] = ()
    """Names; empty means every PyTorch implementation."""
    devices: tuple[str, ...] = ("cpu",)
    paths: tuple[str, ...] = ()
    """Names; empty means every path."""
    samples: int | None = None
    seed: int = 0
    top: int = 5
    plugin_options: PluginOptions = PluginOptions()


@dataclass(frozen=True)
class PathsReport:
    settings: PathsSettings
    inputs: dict[str, InputSet]
    results: list[PathResult]
    skipped: list[tuple[str, str, str, str]]
    """(implementation, device, dtype, reason)."""
    seconds: float
    offered: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per implementation compared: the paths it offers (in-place and out= are F.gelu's only)."""

    @property
    def passed(self) -> bool:
        """Every path agrees bit for bit with the contiguous call, and none failed."""
        return all(r.status == "agree" for r in self.results)


def select_paths(names: tuple[str, ...]) -> tuple[CodePath, ...]:
    known = {p.name: p for p in PATHS}
    for name in names:
        if name not in known:
            raise UsageError(f"unknown code path {name!r}; choose from: {', '.join(PATH_NAMES)}")
    return tuple(known[n] for n in dict.fromkeys(names)) if names else PATHS


def run_paths(settings: PathsSettings, progress: ProgressSink = SILENT) -> PathsReport:
    """Compare every path of every selected torch implementation, per dtype and device."""
    start = time.perf_counter()
    implementations = select_implementations(list(settings.implementations), settings.plugin_options)
    paths = select_paths(settings.paths)
    devices, _ = resolve_devices(list(settings.devices))
    results: list[PathResult] = []
    skipped: list[tuple[str, str, str, str]] = []
    inputs_by_dtype: dict[str, InputSet] = {}
    offered: dict[str, tuple[str, ...]] = {}
    for fmt in (FORMATS[d] for d in settings.dtypes):
        inputs = default_inputs(fmt, settings.samples, settings.seed, None)
        inputs_by_dtype[fmt.name] = inputs
        for device in devices:
            chosen, left_out = path_candidates(implementations, device, fmt)
            # Rows of other frameworks are left out silently unless they were asked for.
            skipped += [
                (name, device, fmt.name, str(reason))
                for name, reason in left_out
                if settings.implementations or reason.kind is not SkipKind.NOT_TORCH
            ]
            with progress.task(f"code paths {fmt} {device}", len(chosen)) as advance:
                for impl in chosen:
                    offered[impl.name] = tuple(p.name for p in paths if applicable(p, impl))
                    results += compare_paths(impl, device, inputs, paths, settings.top)
                    advance(1)
    if not results:
        why = (
            "; ".join(sorted({f"{name}: {reason}" for name, _, _, reason in skipped})) or "no implementation"
        )
        raise UsageError(f"nothing to compare ({why})")
    return PathsReport(settings, inputs_by_dtype, results, skipped, time.perf_counter() - start, offered)


FAR_APART = 2**62
"""Ordinal distances this large mean one answer is non-finite (or NaN) and the other is not."""
