"""The guarded runner: feeds an implementation exact bit patterns and checks what comes back.

Running one goes through :func:`run_implementation`, which builds the tensor or array of the
audited dtype from the exact bit patterns under audit and refuses outputs of the wrong type,
shape, dtype or device, so a broken kernel becomes a reported error rather than a crash or a
wrong answer. Plugins run under a timeout; CUDA work is synchronised before the outputs are read.
May import: numerics, errors, implementations.model.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np

from gelu_audit.implementations.model import Implementation, ImplementationError, first_line, reportable
from gelu_audit.numerics.formats import FloatFormat, patterns_to_values

Route = Callable[[Implementation, Any], Any]
"""How an input reaches the implementation: ``route(impl, x)`` returns its answers for ``x``
(a layout, a size or an API of ``gelu-audit paths``). The default calls ``impl.function(x)``."""


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


RETURNED_INPUT = "returned its input or a view of it (a GELU returns a new tensor or array)"
WROTE_INPUT = "wrote into its input (a GELU leaves its input as it was)"
NONDETERMINISTIC = "gave different answers for the same input on two calls"


def input_unchanged(impl: Implementation, fmt: FloatFormat, x: Any, patterns: np.ndarray) -> bool:
    """Whether ``x`` still holds the exact bit patterns it was made from."""
    if impl.takes_arrays:
        now = np.ascontiguousarray(x).view(fmt.uint_dtype)
    else:
        now = x.detach().contiguous().view(_torch_bit_view(fmt)).cpu().numpy().view(fmt.uint_dtype)
    return bool(np.array_equal(now, np.ascontiguousarray(patterns).astype(fmt.uint_dtype, copy=False)))


def output_bits(impl: Implementation, fmt: FloatFormat, device: str, x: Any, out: Any) -> np.ndarray:
    """Check an output against its input; its exact bit patterns (unsigned, on the host)."""
    if impl.takes_arrays:
        if not isinstance(out, np.ndarray):
            raise ImplementationError(f"returned {type(out).__name__}, expected a NumPy array")
        if out.shape != x.shape:
            raise ImplementationError(f"returned shape {out.shape}, expected {x.shape}")
        if out.dtype != x.dtype:
            raise ImplementationError(f"returned dtype {out.dtype}, expected {x.dtype}")
        if np.may_share_memory(out, x):
            raise ImplementationError(RETURNED_INPUT)
        return np.ascontiguousarray(out).view(fmt.uint_dtype).copy()
    import torch

    if not isinstance(out, torch.Tensor):
        raise ImplementationError(f"returned {type(out).__name__}, expected a torch.Tensor")
    if tuple(out.shape) != tuple(x.shape):
        raise ImplementationError(f"returned shape {tuple(out.shape)}, expected {tuple(x.shape)}")
    if out.dtype != x.dtype:
        raise ImplementationError(f"returned dtype {out.dtype}, expected {x.dtype}")
    if out.device != x.device:
        raise ImplementationError(f"returned a tensor on {out.device}, expected {x.device}")
    if out.numel() and out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
        raise ImplementationError(RETURNED_INPUT)
    bits = out.detach().contiguous().view(_torch_bit_view(fmt)).cpu().numpy()
    return bits.view(fmt.uint_dtype)


@contextmanager
def implementation_warnings_silenced() -> Iterator[None]:
    """Warnings raised while implementations run are theirs, not ours to print (the oneDNN
    flag switch warns on every call): they would bury the one document and its progress."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class TimedOut(ImplementationError):
    """A call outlived its timeout; its thread may still be running."""


class _CallThread:
    """One long-lived daemon thread that makes the guarded calls, one at a time.

    A fresh thread per call cost 2.6 ms a call on the 2-core Xeon with one torch thread, where
    an ``F.gelu`` of 2^20 fp32 takes 0.44 ms (0.65 ms through this thread): torch and OpenMP
    set themselves up lazily for each OS thread that calls into them. The caller's torch
    thread count goes with each call and is set here when it differs (OpenMP keeps it per
    thread). Other per-thread state a kernel sets for itself (grad mode, a CUDA stream) stays
    set for the next call, as it would in a caller that called it in a loop.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="gelu-audit-plugin", daemon=True)
        self.thread.start()

    def usable(self) -> bool:
        """Alive, and in this process (a forked worker inherits the object, not the thread)."""
        return self.pid == os.getpid() and self.thread.is_alive()

    def abandon(self) -> None:
        """Stop serving once the call it is stuck in returns, if it ever does."""
        self.jobs.put(None)

    def _serve(self) -> None:
        _inside.active = True
        while (job := self.jobs.get()) is not None:
            function, x, threads, outcome, done = job
            try:
                if threads is not None:
                    import torch

                    if torch.get_num_threads() != threads:
                        torch.set_num_threads(threads)
                outcome["value"] = function(x)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = error
            done.set()
            del job, function, x, outcome  # nothing of the last call kept alive while idle


_Job = tuple[Callable[[Any], Any], Any, "int | None", dict[str, Any], threading.Event]
_caller: _CallThread | None = None
_inside = threading.local()
"""``active`` in the call thread: a kernel that calls a guarded function runs it directly."""


def _torch_threads() -> int | None:
    """The caller's torch thread count, if torch is loaded (nothing to pass on otherwise)."""
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


def with_timeout(function: Callable[[Any], Any], seconds: float | None) -> Callable[[Any], Any]:
    """``function`` run in a daemon thread and given up on after ``seconds`` (an
    ImplementationError). Python cannot stop a thread: a call that never returns is left
    running, the thread is abandoned to it (the next call gets a new one), and the daemon flag
    keeps it from holding the process open at exit."""
    if seconds is None:
        return function

    def guarded(x: Any) -> Any:
        global _caller
        if getattr(_inside, "active", False):  # called by a kernel: its own timeout covers it
            return function(x)
        if _caller is None or not _caller.usable():
            _caller = _CallThread()
        outcome: dict[str, Any] = {}
        done = threading.Event()
        _caller.jobs.put((function, x, _torch_threads(), outcome, done))
        try:
            if not done.wait(seconds):
                raise TimedOut(f"did not return within {seconds:g} s (--impl-timeout)")
        except BaseException:  # a timeout, or Ctrl-C while waiting: that thread may still be busy
            _caller.abandon()
            _caller = None
            raise
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return guarded


def direct_call(impl: Implementation, x: Any) -> Any:
    """The plain call: ``impl.function(x)``."""
    return impl.function(x)


def _differences(fmt: FloatFormat, patterns: np.ndarray, first: np.ndarray, second: np.ndarray) -> str:
    differ = np.flatnonzero(first != second)
    x = float(patterns_to_values(fmt, np.ascontiguousarray(patterns[differ[:1]]).astype(fmt.uint_dtype))[0])
    return f"{differ.size:,} of {first.size:,} differ, first at x = {x!r}"


def guarded_bits(
    impl: Implementation,
    fmt: FloatFormat,
    device: str,
    patterns: np.ndarray,
    route: Route = direct_call,
    repeat: bool = False,
) -> np.ndarray:
    """The checked answers' bit patterns, in this process (see :func:`run_implementation`)."""
    x = make_input(impl, fmt, device, patterns)
    guarded = replace(impl, function=with_timeout(impl.function, impl.timeout))
    answers = []
    for _ in range(2 if repeat else 1):
        try:
            with implementation_warnings_silenced():
                out = route(guarded, x)
                if impl.backend == "torch" and device.startswith("cuda"):
                    import torch

                    torch.cuda.synchronize(device)
        except ImplementationError:
            raise
        except BaseException as error:  # any failure of user code is reported, sys.exit included
            if not reportable(error):
                raise
            raise ImplementationError(f"raised {first_line(error)}") from error
        answers.append(output_bits(impl, fmt, device, x, out))
        if not input_unchanged(impl, fmt, x, patterns):
            raise ImplementationError(WROTE_INPUT)
    if repeat and not np.array_equal(answers[0], answers[1]):
        detail = _differences(fmt, patterns, answers[0], answers[1])
        raise ImplementationError(f"{NONDETERMINISTIC}: {detail}")
    return answers[0]


def run_implementation(
    impl: Implementation,
    fmt: FloatFormat,
    device: str,
    patterns: np.ndarray,
    route: Route = direct_call,
    repeat: bool = False,
) -> np.ndarray:
    """Run ``impl`` on the given bit patterns (through ``route``); its outputs as exact float64.

    Raises ImplementationError when it raises, runs past its timeout, returns an invalid output
    (wrong type, shape, dtype or device, or its own input), or writes into its input. The
    timeout applies to each call of the kernel, however many calls the route makes. CUDA work
    is synchronised inside the guard, so an asynchronous failure is this case's error. With
    ``repeat`` it is called twice on the same input, and different answers are an error: a GELU
    is a function. An implementation with an :attr:`~Implementation.isolation` runs in its
    child process, where a crash is this case's error, not the end of the audit.
    """
    return patterns_to_values(fmt, run_implementation_bits(impl, fmt, device, patterns, route, repeat))


def run_implementation_bits(
    impl: Implementation,
    fmt: FloatFormat,
    device: str,
    patterns: np.ndarray,
    route: Route = direct_call,
    repeat: bool = False,
) -> np.ndarray:
    """:func:`run_implementation`'s answers as their unsigned bit patterns, not yet decoded:
    the exhaustive stream keeps fp32 answers as float32 (a view of these bits), where decoding
    to float64 and narrowing back cost two passes over every chunk."""
    if impl.isolation is not None:
        return impl.isolation.run(fmt, device, patterns, route, repeat)
    return guarded_bits(impl, fmt, device, patterns, route, repeat)
