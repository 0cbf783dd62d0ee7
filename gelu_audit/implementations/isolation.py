"""Implementations run in a child process: ``--isolate`` for plugins, and builds made apart.

A user's native or CUDA kernel can segfault, abort, call ``os._exit`` or be killed for memory;
in the audit's own process that ends the audit and loses every other case. Isolated, the kernel
runs in a child process started once per implementation (``spawn``: clean, and safe for CUDA)
and kept for every call. The child rebuilds the implementation from how it was loaded and runs
the same guarded runner as the parent would; only the input and output bit patterns cross the
pipe. When the child dies, the parent reads how (the signal, or the exit status), reports it as
the case's error, and starts a fresh child for the next case. A call that outlives its timeout
is stopped for real: the child is killed, which a thread in the parent could never be.

One child hosts several implementations by name (its members): a plugin's forward and backward
passes, or every row whose costly build (``torch.compile``) is made apart while the audit
computes the rest (:mod:`~gelu_audit.implementations.apart`). The parent can ask a child to
prepare its members ahead and read the answer only when it needs it.

The cost is the child's start (importing torch and the plugin, once per child per process) and
the copies through the pipe; ``benchmarks/isolation_cost.py`` measures both.
May import: numerics, errors, implementations.model, .availability, .devices, .runner, .gradient."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from gelu_audit.implementations.availability import preparation_failure, unavailable_reason
from gelu_audit.implementations.devices import device_unavailable_reason
from gelu_audit.implementations.gradient import backward_implementation
from gelu_audit.implementations.model import (
    Implementation,
    ImplementationError,
    ImplementationUnavailable,
    first_line,
)
from gelu_audit.implementations.runner import TimedOut, guarded_bits
from gelu_audit.numerics.formats import FORMATS, FloatFormat

STARTUP_ALLOWANCE_S = 120.0
"""Seconds allowed on top of the call's own timeout: the child may be importing torch and the
plugin, and a repeated call runs twice."""

Loader = Callable[[], Implementation]
"""How a child process rebuilds the implementation (picklable: a module-level function or a
``functools.partial`` of one), without isolation of its own."""


Preparations = dict[tuple[str, str, str], "str | None"]
"""Per (member, format name, device): why its preparation failed there, or None when it is ready."""


def _child_main(connection: Connection, loaders: dict[str, Loader]) -> None:
    """The child: load each member on its first request, then answer requests until the pipe
    closes. A member that cannot be loaded answers every request with why."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    loaded: dict[str, Implementation | str] = {}

    def member(name: str) -> Implementation | str:
        if name not in loaded:
            try:
                loaded[name] = loaders[name]()
            except Exception as error:  # noqa: BLE001 - reported with every request
                loaded[name] = f"could not be loaded in its child process: {first_line(error)}"
        return loaded[name]

    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request[0] == "prepare":
            connection.send(("ok", {key: _prepared(member(key[0]), *key[1:]) for key in request[1]}))
            continue
        _, name, fmt_name, device, patterns, route, repeat = request
        impl = member(name)
        if isinstance(impl, str):
            connection.send(("error", impl))
            continue
        try:
            bits = guarded_bits(impl, FORMATS[fmt_name], device, patterns, route, repeat)
        except TimedOut as error:
            connection.send(("stuck", str(error)))  # its thread still runs: the parent kills us
        except ImplementationError as error:
            connection.send(("error", str(error)))
        else:
            connection.send(("ok", bits))


def _prepared(impl: Implementation | str, fmt_name: str, device: str) -> str | None:
    """In the child: ``impl``'s one-time setup for ``device`` and the format, done here; why it
    cannot run there, or None. The parent asks ahead, before it has checked the device and
    the implementation's requirements itself, so the child checks them before it builds."""
    if isinstance(impl, str):
        return impl
    fmt = FORMATS[fmt_name]
    reason = (
        device_unavailable_reason(device)
        or unavailable_reason(impl, device, fmt)
        or preparation_failure(impl, device, fmt)
    )
    return None if reason is None else reason.message


def _backward_of(loader: Loader) -> Implementation:
    """In the child: the implementation's backward pass (see implementations.gradient)."""
    impl = backward_implementation(loader())
    if impl is None:
        raise ImplementationError("has no backward")
    return impl


BACKWARD = " backward"
"""Appended to a member's name: the member's backward pass, hosted in the same child."""


def with_backward(name: str, loader: Loader) -> dict[str, Loader]:
    """The members that host an implementation: its forward pass and its backward pass."""
    return {name: loader, name + BACKWARD: partial(_backward_of, loader)}


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
        return f"crashed its process: killed by {name}{cause}; run in a child process, the audit goes on"
    return f"ended its process with exit status {exitcode}; run in a child process, the audit goes on"


class ChildProcess:
    """A child process hosting implementations by name (its members): started on first use,
    restarted after a death. Requests and answers cross one pipe in order."""

    def __init__(self, loaders: dict[str, Loader]) -> None:
        self.loaders = loaders
        self._process: Any = None
        self._connection: Connection | None = None
        self._asked_ahead: list[tuple[str, str, str]] | None = None
        """Preparations asked for whose answer is still on the pipe."""
        self._prepared: Preparations = {}

    def _started(self) -> Connection:
        if self._process is None or not self._process.is_alive() or self._connection is None:
            self.close()
            context = multiprocessing.get_context("spawn")
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_child_main, args=(child_end, self.loaders), name="gelu-audit-child", daemon=True
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
        self._asked_ahead = None

    def _death(self) -> ImplementationError:
        process = self._process
        if process is not None:
            process.join(10)
        error = ImplementationError(death_message(None if process is None else process.exitcode))
        self.close()
        return error

    def prepare_ahead(self, keys: list[tuple[str, str, str]]) -> None:
        """Start the child now and have it prepare each (member, format name, device), while
        this process goes on; :meth:`preparation_failure` reads the answer when it is needed."""
        self._collect()
        connection = self._started()
        try:
            connection.send(("prepare", keys))
        except (BrokenPipeError, ConnectionResetError):
            death = str(self._death())
            self._prepared.update(dict.fromkeys(keys, death))
            return
        self._asked_ahead = keys

    def _collect(self) -> None:
        """Read the answer to the preparations asked ahead, if it is still on the pipe (it
        comes before any later answer)."""
        keys, self._asked_ahead = self._asked_ahead, None
        if keys is None or self._connection is None:
            return
        try:
            _, prepared = self._connection.recv()
        except (EOFError, ConnectionResetError):
            death = f"its preparation {self._death()}"
            # whose preparation it was is known for one key alone; the others are asked again
            prepared = {keys[0]: death} if len(keys) == 1 else {}
        self._prepared.update(prepared)

    def preparation_failure(self, member: str, fmt: FloatFormat, device: str) -> str | None:
        """Why ``member``'s one-time setup for ``device`` and ``fmt`` failed in the child, or
        None when it is ready there (waiting for the child, if it is still preparing)."""
        key = (member, fmt.name, device)
        self._collect()
        if key not in self._prepared:
            self.prepare_ahead([key])
            self._collect()
        return self._prepared[key]

    def run(
        self,
        member: str,
        timeout: float | None,
        fmt: FloatFormat,
        device: str,
        patterns: np.ndarray,
        route: Any,
        repeat: bool,
    ) -> np.ndarray:
        """``member``'s checked answers' bit patterns, computed in the child."""
        self._collect()
        connection = self._started()
        try:
            connection.send(("run", member, fmt.name, device, np.ascontiguousarray(patterns), route, repeat))
        except (BrokenPipeError, ConnectionResetError):
            raise self._death() from None
        limit = None if timeout is None else (2 if repeat else 1) * timeout + STARTUP_ALLOWANCE_S
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


@dataclass(frozen=True)
class InChild:
    """An implementation's :class:`~.model.Isolation`: member ``member`` of ``child``."""

    child: ChildProcess
    member: str
    timeout: float | None

    def run(
        self, fmt: FloatFormat, device: str, patterns: np.ndarray, route: Any, repeat: bool
    ) -> np.ndarray:
        return self.child.run(self.member, self.timeout, fmt, device, patterns, route, repeat)

    def for_backward(self) -> InChild:
        """The backward pass, hosted by the same child (see :func:`with_backward`)."""
        return InChild(self.child, self.member + BACKWARD, self.timeout)

    def prepare(self, device: str, fmt: FloatFormat) -> None:
        """The member's one-time setup, done in the child (an :attr:`~.model.Implementation.prepare`)."""
        if (failure := self.child.preparation_failure(self.member, fmt, device)) is not None:
            raise ImplementationUnavailable(failure)


_CHILDREN: dict[Hashable, ChildProcess] = {}
"""One child per key and process, however many times its implementations are loaded (the
audit's selection, an exhaustive stream and the special values each load a plugin)."""


def child_process(key: Hashable, loaders: dict[str, Loader]) -> ChildProcess:
    """The child process kept for ``key`` in this process, made with ``loaders`` the first time."""
    if key not in _CHILDREN:
        _CHILDREN[key] = ChildProcess(loaders)
    return _CHILDREN[key]


def isolated(impl: Implementation, loader: Loader, key: Hashable) -> Implementation:
    """``impl`` to be run in the child process for ``key``, which rebuilds it with ``loader``."""
    child = child_process(key, with_backward(impl.name, loader))
    return replace(impl, isolation=InChild(child, impl.name, impl.timeout))
