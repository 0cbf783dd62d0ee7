"""Progress reporting seen from the core: a sink the CLI implements, silent by default."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ProgressSink:
    """Receives progress from long-running core functions; this base class ignores it."""

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A unit of work of ``total`` steps; the yielded function advances it."""
        yield lambda _steps: None

    def log(self, message: str) -> None:
        """A one-line note for the person watching (never part of the report)."""


SILENT = ProgressSink()
