"""Implementations run in a child process: ``--isolate`` for plugins, and builds made apart.

A user's native or CUDA kernel can segfault, abort, call ``os._exit`` or be killed for memory;
in the audit's own process that ends the audit and loses every other case. Isolated, the kernel
runs in a child process (``spawn``: clean, and safe for CUDA), started once and kept for every
call. The child rebuilds the implementation from how it was loaded and runs
the same guarded runner as the parent would; only the input and output bit patterns cross the
pipe. When the child dies, the parent reads how (the signal, or the exit status), reports it as
the case's error, and starts a fresh child for the next case. A call that outlives its timeout
is stopped for real: the child is killed, which a thread in the parent could never be.

One child hosts several implementations by name (its members): each with its backward pass,
and, for the accuracy audit's helper, every built-in row whose costly build (``torch.compile``)
is made there while the audit computes the rest (:mod:`~gelu_audit.implementations.helper`).
The parent can ask a child to set its members up ahead and read each answer when it needs it.

The cost is the child's start (importing torch and the plugin, once per child per process) and
the copies through the pipe; ``benchmarks/isolation_cost.py`` measures both.
May import: numerics, errors, implementations.model, .availability, .devices, .runner, .gradient."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from gelu_audit.implementations.availability import skip_reason
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


SetupKey = tuple[str, str, str]
"""A member's one-time setup for one (format name, device)."""


def _child_main(connection: Connection, loaders: dict[str, Loader]) -> None:
    """The child: load each member on its first request, then answer requests until the pipe
    closes. A member that cannot be loaded answers every request with why.

    Setups asked ahead are done one at a time, in the order asked, each answered as it is done
    (``("set up", key, failure)``); a call (``("run", …)``, answered ``("ran", kind, payload)``)
    that arrives meanwhile is served before the next setup, so the parent's first call need not
    wait for every dtype's build."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    loaded: dict[str, Implementation | str] = {}
    setups: deque[SetupKey] = deque()

    def member(name: str) -> Implementation | str:
        if name not in loaded:
            try:
                loaded[name] = loaders[name]()
            except BaseException as error:  # noqa: BLE001 - reported with every request (SIGINT ignored here)
                loaded[name] = f"could not be loaded in its child process: {first_line(error)}"
        return loaded[name]

    while True:
        if setups and not connection.poll(0):
            key = setups.popleft()
            connection.send(("set up", key, _setup_in_child(member(key[0]), *key[1:])))
            continue
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request[0] == "set up":
            setups.extend(request[1])
            continue
        _, name, fmt_name, device, patterns, route, repeat = request
        impl = member(name)
        if isinstance(impl, str):
            connection.send(("ran", "error", impl))
            continue
        try:
            bits = guarded_bits(impl, FORMATS[fmt_name], device, patterns, route, repeat)
        except TimedOut as error:
            connection.send(("ran", "stuck", str(error)))  # its thread still runs: the parent kills us
        except ImplementationError as error:
            connection.send(("ran", "error", str(error)))
        except KeyboardInterrupt as error:  # the kernel's own (SIGINT is ignored here): its error
            connection.send(("ran", "error", f"raised {first_line(error)}"))
        else:
            connection.send(("ran", "ok", bits))


def _setup_in_child(impl: Implementation | str, fmt_name: str, device: str) -> str | None:
    """In the child: ``impl``'s one-time setup for ``device`` and the format, done here; why it
    cannot run there, or None. The parent asks ahead, before it has checked the device and
    the implementation's requirements itself, so the child checks them before it builds. An
    unexpected error is the answer too, rather than the child's end."""
    if isinstance(impl, str):
        return impl
    fmt = FORMATS[fmt_name]
    try:
        reason = device_unavailable_reason(device) or skip_reason(impl, device, fmt)
    except BaseException as error:  # noqa: BLE001 - a setup that fails in any way cannot run
        return f"its setup failed in its child process: {first_line(error)}"
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
        return "stopped answering"
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
    restarted after a death. The parent has at most one call in flight; the answers to setups
    asked ahead arrive, tagged, before and around it."""

    def __init__(self, loaders: dict[str, Loader]) -> None:
        self.loaders = loaders
        self._process: Any = None
        self._connection: Connection | None = None
        self._awaited: list[SetupKey] = []
        """Setups asked for and not yet answered, in the order the child does them."""
        self._setups: dict[SetupKey, str | None] = {}
        """Answered setups: why each failed, or None when it is ready in the child."""

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
        """Stop the child (killed: it may be stuck in a kernel). Setups still awaited are
        forgotten: asked again, of a fresh child, when they are needed."""
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
        self._process = self._connection = None
        self._awaited = []

    def _death(self) -> ImplementationError:
        process = self._process
        if process is not None:
            process.join(10)
        error = ImplementationError(death_message(None if process is None else process.exitcode))
        self.close()
        return error

    def _send(self, message: tuple[Any, ...]) -> bool:
        """Send ``message`` to the child, started if need be: False when the child is gone.
        Interrupted half-way (a large input, a child busy building), the child is stopped, so
        that no half-message is left on the pipe. Raises OSError when no child can be started."""
        connection = self._started()
        try:
            connection.send(message)
        except (BrokenPipeError, ConnectionResetError):
            return False
        except BaseException:
            self.close()
            raise
        return True

    def set_up_ahead(self, keys: list[SetupKey]) -> None:
        """Start the child now and have it do each (member, format name, device) setup in turn,
        while this process goes on; :meth:`setup_failure` reads each answer when it is needed.
        Raises OSError when no child can be started."""
        alone = not self._awaited and len(keys) == 1
        if self._send(("set up", keys)):
            self._awaited += keys
            return
        death = self._death()
        if alone:  # else the child died at an earlier setup: each is asked again when needed
            self._setups[keys[0]] = f"its setup {death}"

    def _receive(self, limit: float | None = None) -> tuple[Any, ...] | None:
        """The child's next message (None after ``limit`` seconds); a setup's answer is filed.
        Raises EOFError when the child is gone. On any other failure (an interrupt, a damaged
        message) the child is stopped, so that no answer is left on the pipe, or read and not
        filed."""
        assert self._connection is not None
        try:
            if not self._connection.poll(limit):
                return None
            message = self._connection.recv()
            if message[0] == "set up":
                _, key, failure = message
                answered = self._awaited.pop(0)
                assert answered == key, f"setup answers out of order: {key} for {answered}"
                self._setups[key] = failure
        except (EOFError, ConnectionResetError):
            raise EOFError from None
        except BaseException:
            self.close()
            raise
        return message

    def setup_failure(self, member: str, fmt: FloatFormat, device: str) -> str | None:
        """Why ``member``'s one-time setup for ``device`` and ``fmt`` failed in the child, or
        None when it is ready there (waiting for the child, if it is still building)."""
        key = (member, fmt.name, device)
        while key not in self._setups:
            if key not in self._awaited:
                try:
                    self.set_up_ahead([key])
                except (OSError, RuntimeError) as error:  # no fresh child after a death
                    self._setups[key] = _not_started(error)
                continue
            try:
                self._receive()
            except EOFError:
                building = self._awaited[0]  # the child does its setups in order, one at a time
                self._setups[building] = f"its setup {self._death()}"
        return self._setups[key]

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
        """``member``'s checked answers' bit patterns, computed in the child.

        Setups asked ahead may still be pending: the child serves the call between two of them.
        If it dies before it answered any setup during this call, a setup may have been what
        died, so the call is made once more, alone, in a fresh child."""
        request = ("run", member, fmt.name, device, np.ascontiguousarray(patterns), route, repeat)
        try:
            sent = self._send(request)
        except (OSError, RuntimeError) as error:
            raise ImplementationError(_not_started(error)) from None
        setups_pending = bool(self._awaited)  # after the start: a fresh child has none
        if not sent:
            death = self._death()
            if setups_pending:
                return self.run(member, timeout, fmt, device, patterns, route, repeat)
            raise death
        limit = None if timeout is None else (2 if repeat else 1) * timeout + STARTUP_ALLOWANCE_S
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            try:
                message = self._receive(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except EOFError:
                death = self._death()
                if setups_pending:
                    return self.run(member, timeout, fmt, device, patterns, route, repeat)
                raise death from None
            if message is None:  # stuck where its own timeout cannot reach (holding the GIL)
                self.close()
                raise ImplementationError(f"did not return within {limit:g} s; its child process was killed")
            if message[0] == "ran":
                break
            setups_pending = False  # a setup answered: the child serves the call next, so a death is its
        _, kind, payload = message
        if kind == "ok":
            return np.asarray(payload)
        if kind == "stuck":
            self.close()
        raise ImplementationError(payload)


@dataclass(frozen=True)
class InChild:
    """An implementation's :class:`~.model.Isolation`: member ``member`` of ``child``; its
    backward pass is hosted by ``backward_child`` when given (``--isolate``: a process of its
    own, as a CUDA error in one pass must not fail the other), else by ``child``."""

    child: ChildProcess
    member: str
    timeout: float | None
    backward_child: ChildProcess | None = None

    def run(
        self, fmt: FloatFormat, device: str, patterns: np.ndarray, route: Any, repeat: bool
    ) -> np.ndarray:
        return self.child.run(self.member, self.timeout, fmt, device, patterns, route, repeat)

    def for_backward(self) -> InChild:
        """The backward pass (a member of :func:`with_backward`)."""
        return InChild(self.backward_child or self.child, self.member + BACKWARD, self.timeout)

    def prepare(self, device: str, fmt: FloatFormat) -> None:
        """The member's one-time setup, done in the child: an
        :attr:`~.model.Implementation.prepare` that waits for the child's answer."""
        if (failure := self.child.setup_failure(self.member, fmt, device)) is not None:
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
    """``impl`` to be run in the child process for ``key``, which rebuilds it with ``loader``
    (its backward pass in a second child)."""
    members = with_backward(impl.name, loader)
    child, backward_child = child_process(key, members), child_process(("backward", key), members)
    return replace(impl, isolation=InChild(child, impl.name, impl.timeout, backward_child))


def _not_started(error: BaseException) -> str:
    """What a setup or a call says when no child process could be started for it."""
    return f"its child process could not be started: {first_line(error)}"
