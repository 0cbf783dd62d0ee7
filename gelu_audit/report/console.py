"""The terminal: how wide to lay a report out, and rich objects rendered to a string.

Apart from the other renderers' helpers so that ``gelu-audit list``, which needs only these,
does not import the audits (about 0.13 s of its start-up).
"""

from __future__ import annotations

import io
import os

from rich.console import Console
from rich.text import Text

from gelu_audit.standard_output import document_columns

DEFAULT_WIDTH = 160
"""Columns when neither the caller, ``COLUMNS`` nor a terminal says (a pipe, a CI log)."""


def report_width(width: int | None = None) -> int:
    """The width to lay tables out for: the caller's, else ``COLUMNS``, else the terminal's
    when standard output is one, else DEFAULT_WIDTH."""
    if width:
        return width
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 40:
        return int(columns)
    columns_here = document_columns()
    return DEFAULT_WIDTH if columns_here is None else max(40, columns_here)


def render_to_string(renderables: list[object], color: bool, width: int | None = None) -> str:
    """Render rich objects to a string; colour codes only when asked (the CLI decides)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        width=report_width(width),
        highlight=False,
        soft_wrap=False,
        color_system="standard" if color else None,
    )
    for item in renderables:
        # Plain strings are printed as text, never as rich markup: reasons and errors carry
        # brackets ("pip install 'gelu-audit[jax]'", "raised IndexError: [...]").
        console.print(Text(item) if isinstance(item, str) else item)
    return buffer.getvalue()
