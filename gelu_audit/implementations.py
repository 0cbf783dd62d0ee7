"""The implementations under audit: a registry of built-ins, devices, and a guarded runner.

An implementation is a callable plus what it claims: the formula it approximates, the backend
that receives its input (a torch tensor or a NumPy array of the audited dtype), the dtypes and
devices it supports. Running one goes through :func:`run_implementation`, which feeds it the
exact bit patterns under audit and refuses outputs of the wrong type, shape, dtype or device,
so a broken kernel becomes a reported error rather than a crash or a wrong answer.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.formats import FORMATS, FloatFormat, patterns_to_values

ALL_DTYPES = tuple(FORMATS)


class ImplementationError(Exception):
    """The implementation raised, or returned something that is not a valid answer."""


class ImplementationUnavailable(Exception):
    """It cannot be set up here (no compiler, no kernel for this dtype): a skip, not a failure."""


@dataclass(frozen=True)
class Implementation:
    """One GELU implementation and what it claims."""

    name: str
    """Registry name, e.g. ``torch-gelu``."""
    backend: str
    """``torch`` (receives a tensor) or ``numpy`` (receives an ndarray)."""
    formula: str
    """The formula id it approximates: ``erf``, ``tanh`` or ``sigmoid``."""
    function: Callable[[Any], Any]
    """Maps an input tensor/array to an output of the same shape, dtype and device."""
    description: str
    """What it computes, precisely enough to reproduce."""
    dtypes: tuple[str, ...] = ALL_DTYPES
    """Format names it supports."""
    cpu_only: bool = False
    """True when the implementation only makes sense on the CPU (NumPy, oneDNN switches)."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Caveats for ``gelu-audit list``."""
    requires: Callable[[str, FloatFormat], str | None] | None = None
    """Quick check (milliseconds to a second) for what it needs on a device in a dtype: a
    package, a compiler, a kernel for that dtype. The reason it cannot run there, or None.
    Used by ``list`` and before any audit."""
    prepare: Callable[[str, FloatFormat], None] | None = None
    """Expensive one-time setup per device and dtype (compiling, building a session), run
    before the audit; raises :class:`ImplementationUnavailable` when it cannot be done."""
    timeout: float | None = None
    """Seconds one audited call may take (plugins); None: no limit."""
    torch_gelu_approximate: str | None = None
    """For ``F.gelu`` itself: its ``approximate`` argument. Enables the in-place and ``out=``
    code paths of ``gelu-audit paths``, which only the ATen op offers."""

    @property
    def takes_arrays(self) -> bool:
        """True when it receives a NumPy array (NumPy, JAX, ONNX Runtime), not a torch tensor."""
        return self.backend != "torch"


# --- devices ----------------------------------------------------------------------------------


def parse_device(text: str) -> str:
    """Normalise a device name: ``cpu``, ``cuda`` (= ``cuda:0``) or ``cuda:N``."""
    name = text.strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda":
        return "cuda:0"
    if name.startswith("cuda:") and name[5:].isdigit():
        return name
    raise UsageError(f"unknown device {text!r}: use cpu, cuda or cuda:N")


def torch_missing_reason() -> str | None:
    """Why PyTorch cannot be used here, or None when it can."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch is not installed (pip install torch)"
    return None


def device_unavailable_reason(device: str) -> str | None:
    """Why ``device`` cannot be used here, or None when it can."""
    if device == "cpu":
        return None
    reason = torch_missing_reason()
    if reason:
        return reason
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device here (torch.cuda.is_available() is False)"
    index = int(device.split(":")[1])
    if index >= torch.cuda.device_count():
        return f"{device} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
    return None


def resolve_devices(requested: list[str] | None) -> tuple[list[str], list[tuple[str, str]]]:
    """Devices to audit and the default ones skipped with why.

    Asked-for devices that are unavailable are an error (exit 2); from the default set
    (cpu and cuda) they are skipped with the reason.
    """
    if requested:
        devices = list(dict.fromkeys(parse_device(d) for d in requested))
        for device in devices:
            reason = device_unavailable_reason(device)
            if reason:
                raise EnvironmentUnavailableError(f"--device {device}: {reason}")
        return devices, []
    devices, skipped = ["cpu"], []
    reason = device_unavailable_reason("cuda:0")
    if reason:
        skipped.append(("cuda", reason))
    else:
        import torch

        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices, skipped


def unavailable_reason(impl: Implementation, device: str, fmt: FloatFormat) -> str | None:
    """Why ``impl`` cannot run on ``device`` in ``fmt``, or None when it can."""
    if fmt.name not in impl.dtypes:
        return f"does not support {fmt}"
    if device != "cpu" and (impl.cpu_only or impl.takes_arrays):
        return "CPU only"
    if impl.backend == "torch" and (reason := torch_missing_reason()):
        return reason
    return impl.requires(device, fmt) if impl.requires else None


_PREPARED: dict[tuple[str, str, str], str | None] = {}


def preparation_failure(impl: Implementation, device: str, fmt: FloatFormat) -> str | None:
    """Run ``impl``'s one-time setup for ``device`` and ``fmt`` (once per process): the reason it
    cannot run there, or None. Call after :func:`unavailable_reason` returned None."""
    if impl.prepare is None:
        return None
    key = (impl.name, device, fmt.name)
    if key not in _PREPARED:
        try:
            with implementation_warnings_silenced():
                impl.prepare(device, fmt)
            _PREPARED[key] = None
        except ImplementationUnavailable as reason:
            _PREPARED[key] = str(reason)
    return _PREPARED[key]


def skip_reason(impl: Implementation, device: str, fmt: FloatFormat) -> str | None:
    """Why ``impl`` will not be run on ``device`` in ``fmt``: unavailable, or its one-time
    setup failed; None when it is ready."""
    return unavailable_reason(impl, device, fmt) or preparation_failure(impl, device, fmt)


def first_line(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip()
    message = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {message}".rstrip(": ")


# --- running ----------------------------------------------------------------------------------


def _torch_dtype(fmt: FloatFormat) -> Any:
    import torch

    return getattr(torch, fmt.torch_dtype)


def _torch_bit_view(fmt: FloatFormat) -> Any:
    import torch

    return {16: torch.int16, 32: torch.int32, 64: torch.int64}[fmt.width]


def make_input(impl: Implementation, fmt: FloatFormat, device: str, patterns: np.ndarray) -> Any:
    """The exact bit patterns as the tensor/array the implementation receives."""
    signed = np.ascontiguousarray(patterns).view(f"int{fmt.width}")
    if impl.takes_arrays:
        return signed.view(fmt.numpy_dtype()).copy()
    import torch

    tensor = torch.from_numpy(signed.copy()).view(_torch_dtype(fmt))
    return tensor.to(device) if device != "cpu" else tensor


def output_values(impl: Implementation, fmt: FloatFormat, device: str, x: Any, out: Any) -> np.ndarray:
    """Check an output against its input and decode it exactly to float64."""
    if impl.takes_arrays:
        if not isinstance(out, np.ndarray):
            raise ImplementationError(f"returned {type(out).__name__}, expected a NumPy array")
        if out.shape != x.shape:
            raise ImplementationError(f"returned shape {out.shape}, expected {x.shape}")
        if out.dtype != x.dtype:
            raise ImplementationError(f"returned dtype {out.dtype}, expected {x.dtype}")
        return patterns_to_values(fmt, np.ascontiguousarray(out).view(fmt.uint_dtype))
    import torch

    if not isinstance(out, torch.Tensor):
        raise ImplementationError(f"returned {type(out).__name__}, expected a torch.Tensor")
    if tuple(out.shape) != tuple(x.shape):
        raise ImplementationError(f"returned shape {tuple(out.shape)}, expected {tuple(x.shape)}")
    if out.dtype != x.dtype:
        raise ImplementationError(f"returned dtype {out.dtype}, expected {x.dtype}")
    if out.device != x.device:
        raise ImplementationError(f"returned a tensor on {out.device}, expected {x.device}")
    bits = out.detach().contiguous().view(_torch_bit_view(fmt)).cpu().numpy()
    return patterns_to_values(fmt, bits.view(fmt.uint_dtype))


@contextmanager
def implementation_warnings_silenced() -> Iterator[None]:
    """Warnings raised while implementations run are theirs, not ours to print (the oneDNN
    flag switch warns on every call): they would bury the one document and its progress."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def with_timeout(function: Callable[[Any], Any], seconds: float | None) -> Callable[[Any], Any]:
    """``function`` run in a daemon thread and given up on after ``seconds`` (an
    ImplementationError). Python cannot stop a thread: a call that never returns is left
    running, and the daemon flag keeps it from holding the process open at exit."""
    if seconds is None:
        return function

    def guarded(x: Any) -> Any:
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["value"] = function(x)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = error

        worker = threading.Thread(target=call, name="gelu-audit-plugin", daemon=True)
        worker.start()
        worker.join(seconds)
        if worker.is_alive():
            raise ImplementationError(f"did not return within {seconds:g} s (--impl-timeout)")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return guarded


def run_implementation(
    impl: Implementation, fmt: FloatFormat, device: str, patterns: np.ndarray
) -> np.ndarray:
    """Run ``impl`` on the given bit patterns; its outputs as exact float64 values.

    Raises ImplementationError when it raises or returns an invalid output.
    """
    x = make_input(impl, fmt, device, patterns)
    try:
        with implementation_warnings_silenced():
            out = with_timeout(impl.function, impl.timeout)(x)
    except ImplementationError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of user code is reported
        raise ImplementationError(f"raised {first_line(error)}") from error
    if impl.backend == "torch" and device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
    return output_values(impl, fmt, device, x, out)


# --- built-in implementations -----------------------------------------------------------------

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _torch_gelu(x: Any) -> Any:
    import torch.nn.functional as F

    return F.gelu(x)


def _torch_gelu_aten(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    with torch.backends.mkldnn.flags(enabled=False):
        return F.gelu(x)


def _torch_gelu_tanh(x: Any) -> Any:
    import torch.nn.functional as F

    return F.gelu(x, approximate="tanh")


def _torch_gelu_tanh_aten(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    with torch.backends.mkldnn.flags(enabled=False):
        return F.gelu(x, approximate="tanh")


def _torch_quick_gelu(x: Any) -> Any:
    import torch

    return x * torch.sigmoid(1.702 * x)


def _torch_erf_composite(x: Any) -> Any:
    import torch

    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _torch_tanh_pow(x: Any) -> Any:
    import torch

    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))
    return 0.5 * x * (1.0 + torch.tanh(inner))


FAST_TANH_CONSTANT = 0.7978845608
"""√(2/π) truncated to 10 decimals, as model code often writes it (√(2/π) = 0.79788456080286…)."""


def _torch_tanh_fast(x: Any) -> Any:
    import torch

    return 0.5 * x * (1.0 + torch.tanh(FAST_TANH_CONSTANT * x * (1.0 + 0.044715 * x * x)))


def _torch_gelu_clip10(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    return torch.clamp(F.gelu(x), -10.0, 10.0)


def _numpy_erf(x: np.ndarray) -> np.ndarray:
    wide = x.astype(np.float64)
    erf = np.frompyfunc(math.erf, 1, 1)
    y = 0.5 * wide * (1.0 + erf(wide / math.sqrt(2.0)).astype(np.float64))
    return y.astype(x.dtype)


def _constant(value: float, like: np.ndarray) -> np.ndarray:
    # A 0-d array of the input's dtype: Python scalars would promote bfloat16 to float32.
    return np.asarray(value, dtype=like.dtype)


def _numpy_tanh(x: np.ndarray) -> np.ndarray:
    c = lambda v: _constant(v, x)  # noqa: E731
    inner = c(_SQRT_2_OVER_PI) * (x + c(0.044715) * x * x * x)
    return c(0.5) * x * (c(1.0) + np.tanh(inner))


def _numpy_sigmoid(x: np.ndarray) -> np.ndarray:
    c = lambda v: _constant(v, x)  # noqa: E731
    with np.errstate(over="ignore"):
        return x * (c(1.0) / (c(1.0) + np.exp(-(c(1.702) * x))))


_ONEDNN_NOTE = (
    "CPU: contiguous fp32/bf16 tensors go to oneDNN; fp16, fp64 and non-contiguous ones to ATen"
)


def builtin_implementations() -> list[Implementation]:
    """The built-in implementations, in report order."""
    return [
        Implementation(
            "torch-gelu", "torch", "erf", _torch_gelu,
            "torch.nn.functional.gelu(x)", notes=(_ONEDNN_NOTE,), torch_gelu_approximate="none",
        ),
        Implementation(
            "torch-gelu-aten", "torch", "erf", _torch_gelu_aten,
            "F.gelu(x) under torch.backends.mkldnn.flags(enabled=False): ATen's own CPU kernel",
            cpu_only=True,
        ),
        Implementation(
            "torch-gelu-tanh", "torch", "tanh", _torch_gelu_tanh,
            'torch.nn.functional.gelu(x, approximate="tanh")', notes=(_ONEDNN_NOTE,),
            torch_gelu_approximate="tanh",
        ),
        Implementation(
            "torch-gelu-tanh-aten", "torch", "tanh", _torch_gelu_tanh_aten,
            'F.gelu(x, approximate="tanh") with oneDNN disabled: ATen\'s own CPU kernel',
            cpu_only=True,
        ),
        Implementation(
            "torch-quick-gelu", "torch", "sigmoid", _torch_quick_gelu,
            "x * torch.sigmoid(1.702 * x), op by op in the dtype",
        ),
        Implementation(
            "torch-erf-composite", "torch", "erf", _torch_erf_composite,
            "0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))), op by op in the dtype",
        ),
        Implementation(
            "torch-tanh-pow", "torch", "tanh", _torch_tanh_pow,
            "0.5*x*(1+torch.tanh(√(2/π)*(x+0.044715*torch.pow(x, 3.0)))), op by op in the dtype",
        ),
        Implementation(
            "torch-tanh-fast", "torch", "tanh", _torch_tanh_fast,
            "0.5*x*(1+torch.tanh(0.7978845608*x*(1+0.044715*x*x))), op by op in the dtype "
            "(truncated √(2/π), factored cubic)",
        ),
        Implementation(
            "torch-gelu-clip10", "torch", "erf", _torch_gelu_clip10,
            "torch.clamp(F.gelu(x), -10, 10): GELU with its output clipped to [-10, 10]",
        ),
        Implementation(
            "numpy-erf", "numpy", "erf", _numpy_erf,
            "0.5*x*(1+math.erf(x/√2)) in float64, rounded once to the dtype",
        ),
        Implementation(
            "numpy-tanh", "numpy", "tanh", _numpy_tanh,
            "0.5*x*(1+np.tanh(√(2/π)*(x+0.044715*x*x*x))), op by op in the dtype "
            "(bf16 through ml_dtypes)",
        ),
        Implementation(
            "numpy-sigmoid", "numpy", "sigmoid", _numpy_sigmoid,
            "x*(1/(1+np.exp(-(1.702*x)))), op by op in the dtype (bf16 through ml_dtypes)",
        ),
    ]  # fmt: skip


def all_implementations(plugin_options: Any = None) -> list[Implementation]:
    """The built-ins, the compiled builds, the other frameworks' GELUs and the installed
    plugins (entry points), in report order."""
    from gelu_audit.compiled import compiled_implementations
    from gelu_audit.frameworks import framework_implementations
    from gelu_audit.plugins import entry_point_implementations

    known = builtin_implementations() + compiled_implementations() + framework_implementations()
    names = {impl.name for impl in known}
    return known + [impl for impl in entry_point_implementations(plugin_options) if impl.name not in names]


def registry(plugin_options: Any = None) -> dict[str, Implementation]:
    """Every implementation known by name."""
    return {impl.name: impl for impl in all_implementations(plugin_options)}


def implementation_named(name: str, plugin_options: Any = None,
                         known: dict[str, Implementation] | None = None) -> Implementation:  # fmt: skip
    """A registered implementation (from ``known``, else the registry), or one loaded from
    ``package.module:function``."""
    from gelu_audit.plugins import PluginOptions, is_import_string, load_import_string

    if is_import_string(name):
        return load_import_string(name, plugin_options or PluginOptions())
    known = registry(plugin_options) if known is None else known
    if name not in known:
        raise UsageError(f"unknown implementation {name!r}; `gelu-audit list` shows the names, "
                         "and MODULE:FUNCTION audits your own")  # fmt: skip
    return known[name]


def select_implementations(names: list[str] | None, plugin_options: Any = None) -> list[Implementation]:
    """The implementations asked for by name or import string (all known ones when none are)."""
    if not names:
        return all_implementations(plugin_options)
    known = registry(plugin_options)  # built once, not once per name
    return [implementation_named(name, plugin_options, known) for name in dict.fromkeys(names)]
