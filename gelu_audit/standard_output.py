"""Standard output carries exactly one document: what kernels and plugins print goes to stderr.

A plugin that prints at import or in its kernel (a debug line, a library's banner), native code
that writes to file descriptor 1, or a worker process started by the audit would otherwise put
its lines in front of the JSON a CI job parses. While a command of the command line runs,
:func:`reserved_for_the_document` points ``sys.stdout`` and descriptor 1 at stderr, keeping the
real standard output aside for the document alone (:func:`document_stream`); child processes
inherit the redirection. The Python API (``check``, ``run_audit``) touches none of this: there
the caller's streams are the caller's.

May import: nothing of gelu_audit (foundation).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import sys
from collections.abc import Iterator
from typing import TextIO

_document: TextIO | None = None
"""The real standard output while reserved; None otherwise (then it is ``sys.stdout``)."""
_reserved = False


def document_stream() -> TextIO | None:
    """Where the one document goes: the reserved standard output, else ``sys.stdout`` (None when
    the process was started with its standard output closed)."""
    return _document if _reserved else sys.stdout


def document_is_terminal() -> bool:
    """Whether the document goes to a terminal (colour, the terminal's width)."""
    stream = document_stream()
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):  # a closed or detached stream
        return False


def document_columns() -> int | None:
    """The width of the terminal the document goes to, if it goes to one (asked of its own
    descriptor: descriptor 1 may be stderr while reserved)."""
    stream = document_stream()
    if not document_is_terminal() or stream is None:
        return None
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


def _point_descriptor_1_away() -> None:
    """Descriptor 1 to stderr, or, where the process has no stderr (``2>&-``), to the null
    device: what kernels print is dropped rather than written into the document."""
    try:
        os.dup2(sys.stderr.fileno(), 1)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
        finally:
            os.close(null)


def _flush_native_stdio() -> None:
    """Flush C's stdio buffers (a kernel's ``printf``), so that they land where they were
    written for, before descriptor 1 is pointed back at the real standard output."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def reserved_for_the_document() -> Iterator[None]:
    """Everything printed inside goes to stderr; :func:`document_stream` is the real stdout.

    At the descriptor level too where ``sys.stdout`` is descriptor 1 (a real process, not a test
    runner's captured stream), so that native writes and child processes follow."""
    global _document, _reserved
    original = sys.stdout
    saved_fd: int | None = None
    document: TextIO | None = original
    try:
        descriptor = original.fileno() if original is not None else None
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        descriptor = None
    try:
        if descriptor == 1:
            original.flush()
            saved_fd = os.dup(1)
            _point_descriptor_1_away()
            document = open(  # noqa: SIM115 - closed in the finally below
                saved_fd,
                "w",
                encoding=original.encoding,
                errors=original.errors,
                closefd=False,
            )
    except (OSError, ValueError, io.UnsupportedOperation):
        if saved_fd is not None:  # put descriptor 1 back as it was: nothing redirected
            with contextlib.suppress(OSError):
                os.dup2(saved_fd, 1)
            os.close(saved_fd)
            saved_fd = None
        document = original
    _document, _reserved = document, True
    sink = open(os.devnull, "w") if sys.stderr is None else None  # noqa: SIM115 - closed below
    sys.stdout = sys.stderr if sink is None else sink
    try:
        yield
    finally:
        _flush_native_stdio()
        for stream in (sys.stderr, original, sys.__stdout__):  # what a kernel wrote through a kept
            with contextlib.suppress(OSError, ValueError, AttributeError):  # stream: out while 1 is stderr
                if stream is not None:
                    stream.flush()
        sys.stdout = original
        if sink is not None:
            sink.close()
        _document, _reserved = None, False
        if saved_fd is not None:
            with contextlib.suppress(OSError, ValueError):
                if document is not None:
                    document.close()  # flushes; the descriptor (closefd=False) is closed here
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


_DESCRIPTOR_1 = re.compile(r"/(?:proc/(?:self|thread-self|\d+)|dev)/fd/1")


def names_standard_output(path: str) -> bool:
    """Whether ``path`` is a spelling of this process's standard output (``/dev/stdout``,
    ``/dev/fd/1``, ``/proc/self/fd/1``, a link to one of them): while standard output is
    reserved, opening it would open descriptor 1, which is stderr then. Links are followed
    one at a time, since the last one is a descriptor, not a path."""
    current = os.path.abspath(path)
    for _ in range(40):  # as many links as the kernel follows
        current = "/" + current.lstrip("/")  # POSIX keeps a leading "//"
        if current == "/dev/stdout" or _DESCRIPTOR_1.fullmatch(current):
            if current.startswith("/proc/") and current.split("/")[2] not in ("self", "thread-self"):
                return current.split("/")[2] == str(os.getpid())
            return True
        parent, _, name = current.rpartition("/")
        try:
            parent = os.path.realpath(parent) if parent else "/"
            candidate = os.path.join(parent, name)
            if not os.path.islink(candidate):
                return False
            current = os.path.normpath(os.path.join(parent, os.readlink(candidate)))
        except OSError:
            return False
    return False
