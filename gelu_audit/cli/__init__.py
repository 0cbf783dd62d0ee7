"""The command line: one module per command, the shared options, the configuration file.

The top layer: it may import every other package; nothing imports it (but ``__main__``).
Heavy modules (torch, mpmath, the core) are imported inside the commands, so that
``gelu-audit --help`` is instant.
"""

from __future__ import annotations

from gelu_audit.cli.main import cli, main

__all__ = ["cli", "main"]
