"""``--isolate``: a plugin runs in a child process of its own, so its crash is its case's error.

A user's native or CUDA kernel can segfault, abort, call ``os._exit`` or be killed for memory;
in the audit's own process that ends the audit and loses every other case. Isolated, the kernel
runs in a child process started once per implementation (``spawn``: clean, and safe for CUDA)
and kept for every call. The child rebuilds the implementation from how it was loaded and runs
the same guarded runner as the parent would; only the input and output bit patterns cross the
pipe. When the child dies, the parent reads how (the signal, or the exit status), reports it as
the case's error, and starts a fresh child for the next case. A call that outlives its timeout
is stopped for real: the child is killed, which a thread in the parent could never be.

The cost is the child's start (importing torch and the plugin, once per implementation per
process) and the copies through the pipe; ``benchmarks/isolation_cost.py`` measures both.
May import: numerics, errors, implementations.model, .runner, .gradient.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Hashable
from dataclasses import replace
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from gelu_audit.implementations.gradient import backward_implementation
from gelu_audit.implementations.model import Implementation, ImplementationError, first_line
from gelu_audit.implementations.runner import TimedOut, guarded_bits
from gelu_audit.numerics.formats import FORMATS, FloatFormat

STARTUP_ALLOWANCE_S = 120.0
"""Seconds allowed on top of the call's own timeout: the child may be importing torch and the
plugin, and a repeated call runs twice."""

Loader = Callable[[], Implementation]
"""How a child process rebuilds the implementation (picklable: a module-level function or a
``functools.partial`` of one), without isolation of its own."""


def _child_main(connection: Connection, loader: Loader) -> None:
    """The child: load the implementation, then answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    impl: Implementation | None = None
    load_error = ""
    try:
        impl = loader()
    except Exception as error:  # noqa: BLE001 - reported with every request
        load_error = f"could not be loaded in its child process (--isolate): {first_line(error)}"
    while True:
        try:
            fmt_name, device, patterns, route, repeat = connection.recv()
        except (EOFError, OSError):
            return
        if impl is None:
            connection.send(("error", load_error))
            continue
        try:
            bits = guarded_bits(impl, FORMATS[fmt_name], device, patterns, route, repeat)
        except TimedOut as error:
            connection.send(("stuck", str(error)))  # its thread still runs: the parent kills us
        except ImplementationError as error:
            connection.send(("error", str(error)))
        else:
            connection.send(("ok", bits))


def _backward_of(loader: Loader) -> Implementation:
    """In the child: the implementation's backward pass (see implementations.gradient)."""
    impl = backward_implementation(loader())
    if impl is None:
        raise ImplementationError("has no backward")
    return impl


def death_message(exitcode: int | None) -> str:
    """How a child process ended, in words: the signal that killed it, or its exit status."""
    if exitcode is None:
        return "stopped answering (--isolate)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        cause = " (out of memory, or killed)" if -exitcode == signal.SIGKILL else ""
        return f"crashed its process: killed by {name}{cause}; run in a child by --isolate, the audit goes on"
    return f"ended its process with exit status {exitcode}; run in a child by --isolate, the audit goes on"


class ChildProcess:
    """One implementation's child process: started on first use, restarted after a death."""

    def __init__(self, loader: Loader, timeout: float | None) -> None:
        self.loader = loader
        self.timeout = timeout
        self._process: Any = None
        self._connection: Connection | None = None

    def for_backward(self) -> ChildProcess:
        """The child for this implementation's backward pass (a process of its own)."""
        key = ("backward", self.loader)
        if key not in _CHILDREN:
            _CHILDREN[key] = ChildProcess(partial(_backward_of, self.loader), self.timeout)
        return _CHILDREN[key]

    def _started(self) -> Connection:
        if self._process is None or not self._process.is_alive() or self._connection is None:
            self.close()
            context = multiprocessing.get_context("spawn")
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_child_main, args=(child_end, self.loader), name="gelu-audit-isolated", daemon=True
            )
            process.start()
            child_end.close()
            self._process, self._connection = process, parent_end
        return self._connection

    def close(self) -> None:
        """Stop the child (killed: it may be stuck in a kernel)."""
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
        self._process = self._connection = None

    def _death(self) -> ImplementationError:
        process = self._process
        if process is not None:
            process.join(10)
        error = ImplementationError(death_message(None if process is None else process.exitcode))
        self.close()
        return error

    def run(
        self, fmt: FloatFormat, device: str, patterns: np.ndarray, route: Any, repeat: bool
    ) -> np.ndarray:
        """The checked answers' bit patterns, computed in the child."""
        connection = self._started()
        try:
            connection.send((fmt.name, device, np.ascontiguousarray(patterns), route, repeat))
        except (BrokenPipeError, ConnectionResetError):
            raise self._death() from None
        limit = None if self.timeout is None else (2 if repeat else 1) * self.timeout + STARTUP_ALLOWANCE_S
        if not connection.poll(limit):  # stuck where its own timeout cannot reach (holding the GIL)
            self.close()
            raise ImplementationError(f"did not return within {limit:g} s; its child process was killed")
        try:
            kind, payload = connection.recv()
        except (EOFError, ConnectionResetError):
            raise self._death() from None
        if kind == "ok":
            return np.asarray(payload)
        if kind == "stuck":
            self.close()
        raise ImplementationError(payload)


_CHILDREN: dict[Hashable, ChildProcess] = {}
"""One child per plugin and process, however many times the plugin is loaded (the audit's
selection, an exhaustive stream and the special values each load it)."""


def isolated(impl: Implementation, loader: Loader, key: Hashable) -> Implementation:
    """``impl`` to be run in the child process for ``key``, which rebuilds it with ``loader``."""
    if key not in _CHILDREN:
        _CHILDREN[key] = ChildProcess(loader, impl.timeout)
    return replace(impl, isolation=_CHILDREN[key])
