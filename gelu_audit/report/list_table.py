"""``gelu-audit list`` as a table: a row per implementation, a column per device.

Apart from the other tables so that ``list`` imports no audit (its start-up is issue 16's
target: 1.5 s, of which ``import torch`` is most).
"""

from __future__ import annotations

import re
from typing import Any

from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from gelu_audit.implementations.cpu_paths import CpuPath
from gelu_audit.report.console import render_to_string, report_width


def _list_cells(
    rows: list[dict[str, Any]], devices: list[str]
) -> list[tuple[str, str, list[str], list[str]]]:
    """Per implementation: its formula, what it computes (with notes and the CPU path measured
    here), and per device the dtypes it runs in and, grouped, why not the others."""
    entries = []
    for name in dict.fromkeys(r["implementation"] for r in rows):
        own = [r for r in rows if r["implementation"] == name]
        cells = []
        for device in devices:
            mine = [r for r in own if r["device"] == device]
            lines = (
                [", ".join(r["dtype"] for r in mine if r["available"])]
                if any(r["available"] for r in mine)
                else []
            )
            by_reason: dict[str, list[str]] = {}
            for r in mine:
                if not r["available"]:
                    by_reason.setdefault(str(r["reason"]), []).append(r["dtype"])
            everywhere = len(by_reason) == 1 and not lines
            lines += [
                f"—  {reason}" if everywhere else f"{', '.join(dtypes)}: —  {reason}"
                for reason, dtypes in by_reason.items()
            ]
            # a pip command starts its own line and is never wrapped: it is copied as it stands
            cells.append("\n".join(lines).replace(" (pip install ", "\n(pip install "))
        computes = [own[0]["description"], *own[0]["notes"]]
        computes += [
            "here: " + CpuPath(row["dtype"], **row["cpu_path"]).describe()
            for row in own
            if row.get("cpu_path")
        ]
        entries.append((name, own[0]["formula"], computes, cells))
    return entries


_PIP_COMMAND = re.compile(r"\(pip install [^)]*\)")


def _words(line: str) -> list[str]:
    """The units a wrapped line must keep whole: its words, and each pip command as one."""
    return _PIP_COMMAND.findall(line) + _PIP_COMMAND.sub(" ", line).split()


def render_list_table(
    rows: list[dict[str, Any]], devices: list[str], color: bool, width: int | None = None
) -> str:
    """``gelu-audit list``: a row per implementation, a column per device, each cell the dtypes
    it runs in there and, grouped, why not the others. Where the columns cannot hold their
    longest words (a narrow terminal), one block per implementation instead: wrapped at
    spaces, never inside a word."""
    width = report_width(width)
    entries = _list_cells(rows, devices)

    columns = [
        ("implementation", [name for name, *_ in entries], False),
        ("formula", [formula for _, formula, *_ in entries], False),
        ("computes", [line for *_, computes, _ in entries for line in computes], True),
    ] + [(device, [cells[i] for *_, cells in entries], True) for i, device in enumerate(devices)]
    lowest, highest = [], []
    for header, texts, wraps in columns:
        lines = [header] + [line for text in texts for line in text.split("\n")]
        widest = max(len(line) for line in lines)
        highest.append(widest)
        lowest.append(max(len(word) for line in lines for word in _words(line)) if wraps else widest)
    room = width - 3 * len(columns) - 1  # a border and a space either side per column
    if sum(lowest) > room:  # some word cannot fit whole: one block per implementation
        blocks: list[object] = []
        for name, formula, computes, cells in entries:
            blocks.append(Text(f"{name} ({formula})", style="bold"))
            blocks.extend(
                Padding(Text(line, style="dim" if k else ""), (0, 0, 0, 2)) for k, line in enumerate(computes)
            )
            for device, cell in zip(devices, cells):
                first, *rest = cell.split("\n")
                blocks.append(Padding(Text(f"{device}: {first}"), (0, 0, 0, 2)))
                blocks.extend(Padding(Text(line), (0, 0, 0, 4)) for line in rest)
        return render_to_string(blocks, color, width)
    # Column widths chosen here, not by rich, which would fold words to even the columns out:
    # each gets its longest word, and the room left is shared in proportion to what it could use.
    spare = room - sum(lowest)
    wants = [hi - lo for lo, hi in zip(lowest, highest)]
    widths = [
        hi if sum(highest) <= room else lo + (spare * want) // max(1, sum(wants))
        for lo, hi, want in zip(lowest, highest, wants)
    ]
    table = Table(header_style="bold")
    for (header, _, wraps), column_width in zip(columns, widths):
        table.add_column(header, width=column_width, no_wrap=not wraps)
    for name, formula, computes, cells in entries:
        text = Text(computes[0])
        for note in computes[1:]:
            text.append("\n" + note, style="dim")
        table.add_row(name, formula, text, *(Text(cell) for cell in cells))
    return render_to_string([table], color, width)
