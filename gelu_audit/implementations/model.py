"""The data model of an implementation under audit: what it is, what it claims, how it fails.

An implementation is a callable plus what it claims: the formula it approximates, the backend
that receives its input (a torch tensor or a NumPy array of the audited dtype), the dtypes and
devices it supports. Everything else in this package builds on these types: devices, the
guarded runner, the built-ins, compiled builds, other frameworks, plugins and the registry.
May import: numerics, errors.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gelu_audit.numerics.formats import FORMATS, FloatFormat
from gelu_audit.numerics.formulas import Function

ALL_DTYPES = tuple(FORMATS)


class ImplementationError(Exception):
    """The implementation raised, or returned something that is not a valid answer."""


class Isolation(Protocol):
    """Runs an implementation somewhere its crash cannot end the audit: a child process
    (``--isolate``, or the accuracy audit's helper). ``run`` returns the checked answers' bit
    patterns, like the in-process runner, and raises ImplementationError for a crash as for any
    other failure."""

    def run(
        self, fmt: FloatFormat, device: str, patterns: np.ndarray, route: Any, repeat: bool
    ) -> np.ndarray: ...

    def for_backward(self) -> Isolation:
        """The same isolation for the implementation's backward pass."""
        ...


class ImplementationUnavailable(Exception):
    """It cannot be set up here (no compiler, no kernel for this dtype): a skip, not a failure."""


@dataclass(frozen=True)
class Implementation:
    """One GELU implementation and what it claims."""

    name: str
    """Registry name, e.g. ``torch-gelu``."""
    backend: str
    """``torch`` (receives a tensor) or ``numpy`` (receives an ndarray)."""
    formula: Function
    """The formula it approximates (erf, tanh or sigmoid); for a backward pass, its derivative
    (:mod:`~gelu_audit.implementations.gradient`)."""
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
    helper_may_build: Callable[[], bool] | None = None
    """Whether the accuracy audit's helper process may build this built-in and make its CPU
    calls, while the audit computes the rest (:mod:`~gelu_audit.implementations.helper`): True
    when its ``prepare`` is costly and the helper, a fresh process, would build exactly what this
    one would. Asked when an audit starts; None: never. Plugins are never handed over."""
    timeout: float | None = None
    """Seconds one audited call may take (plugins); None: no limit."""
    backward: Callable[[Any], Any] | None = None
    """Its gradient kernel, x ↦ GELU′(x) (grad_output = 1), when it declares one; else torch
    implementations are differentiated through autograd and the others have no backward."""
    speed_call: Callable[[Any], Callable[[], Any]] | None = None
    """For ``gelu-audit speed``: given the input ``function`` takes, a call of the kernel on
    that input already in the framework's own form (a JAX array), which waits for the
    answer. None: ``function`` itself is timed. Frameworks whose arrays are not NumPy's
    would otherwise be timed with their conversions."""
    isolation: Isolation | None = field(default=None, compare=False)
    """Where it runs when not in this process (``--isolate``, the accuracy audit's helper);
    None: in this process."""
    aten_twin: str | None = None
    """The built-in that makes the same call with oneDNN off: ``gelu-audit list`` compares the
    two to say which CPU kernel this one takes here (:mod:`~gelu_audit.implementations.cpu_paths`)."""
    torch_gelu_approximate: str | None = None
    """For ``F.gelu`` itself: its ``approximate`` argument. Enables the in-place and ``out=``
    code paths of ``gelu-audit paths``, which only the ATen op offers."""

    @property
    def takes_arrays(self) -> bool:
        """True when it receives a NumPy array (NumPy, JAX, ONNX Runtime), not a torch tensor."""
        return self.backend != "torch"


class SkipKind(enum.Enum):
    """Why an implementation is not run somewhere: what code branches on (never the message)."""

    DTYPE_UNSUPPORTED = "dtype-unsupported"
    """It does not claim this dtype."""
    CPU_ONLY = "cpu-only"
    """It runs on the CPU only (NumPy, other frameworks, oneDNN switches) and a GPU was asked."""
    DEVICE_UNAVAILABLE = "device-unavailable"
    """The device does not exist here (no CUDA, no such index)."""
    PACKAGE_MISSING = "package-missing"
    """PyTorch is not installed."""
    REQUIREMENT = "requirement"
    """Its own quick check failed: a package, a compiler, a kernel for this dtype, a plugin."""
    SETUP_FAILED = "setup-failed"
    """Its one-time setup (a compile, a session) failed here."""
    NOT_TORCH = "not-torch"
    """``gelu-audit paths`` checks PyTorch layouts: this one is not a PyTorch implementation."""
    NOT_DIFFERENTIABLE = "not-differentiable"
    """A backward audit was asked for and it has no backward (NumPy, ONNX Runtime)."""


@dataclass(frozen=True)
class SkipReason:
    """Why an implementation is not run on a device in a dtype: a kind and a message for people."""

    kind: SkipKind
    message: str

    def __str__(self) -> str:
        return self.message


def reportable(error: BaseException) -> bool:
    """Whether an exception raised by user code (a kernel, a plugin's import or load) is that
    code's failure, to report as its case's error while the audit goes on: anything but
    KeyboardInterrupt, which is Ctrl-C or SIGTERM, the run's own stop. ``sys.exit`` in a kernel
    (SystemExit) and classes derived from BaseException itself are included: left to rise, the
    first ended a whole audit with exit code 0 and no report."""
    return not isinstance(error, KeyboardInterrupt)


def first_line(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip()
    message = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {message}".rstrip(": ")
