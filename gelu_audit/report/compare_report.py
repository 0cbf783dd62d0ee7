"""`gelu-audit compare` as a table, JSON (schema ``gelu-audit.compare``) or Markdown."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from gelu_audit.audits.compare import ReportComparison
from gelu_audit.report.envelope import DocumentKind, dumps, envelope
from gelu_audit.report.table import render_to_string

_STYLES = {"regression": "bold red", "missing": "bold red", "mixed": "yellow", "improvement": "green",
           "new": "cyan", "unchanged": "", "inconclusive": "yellow"}  # fmt: skip
_ORDER = ("regression", "missing", "mixed", "inconclusive", "improvement", "new", "unchanged")


def _sorted(comparison: ReportComparison) -> list[Any]:
    return sorted(comparison.changes, key=lambda c: _ORDER.index(c.verdict))


def compare_document(comparison: ReportComparison, old_path: str, new_path: str, settings: dict[str, Any]) -> dict[str, Any]:
    counts = {v: sum(c.verdict == v for c in comparison.changes) for v in _ORDER}
    return {
        **envelope(DocumentKind.COMPARE),
        "kind": comparison.kind, "old": old_path, "new": new_path, "settings": settings,
        "summary": {**counts, "regressed": comparison.regressed},
        "notes": comparison.notes,
        "changes": [{"implementation": c.implementation, "dtype": c.dtype, "device": c.device, "verdict": c.verdict,
                     "worse": list(c.worse), "better": list(c.better), "old": c.old, "new": c.new}
                    for c in _sorted(comparison)],
    }  # fmt: skip


def render_compare_json(comparison: ReportComparison, old_path: str, new_path: str, settings: dict[str, Any]) -> str:
    return dumps(compare_document(comparison, old_path, new_path, settings))


def _verdict_line(comparison: ReportComparison) -> str:
    bad = sum(c.verdict in ("regression", "mixed", "missing") for c in comparison.changes)
    good = sum(c.verdict == "improvement" for c in comparison.changes)
    head = f"{bad} regression(s)" if bad else "no regression"
    return f"{comparison.kind}: {head}, {good} improvement(s), {len(comparison.changes)} case(s) compared"


def render_compare_table(comparison: ReportComparison, color: bool) -> str:
    table = Table(title=f"{comparison.kind} baseline comparison", title_justify="left", header_style="bold")
    for column in ("implementation", "dtype", "device", "verdict", "what changed"):
        table.add_column(column)
    for c in _sorted(comparison):
        text = "; ".join([*c.worse, *c.better]) or "—"
        table.add_row(c.implementation, c.dtype, c.device, Text(c.verdict, style=_STYLES[c.verdict]), Text(text))
    return render_to_string([table, *comparison.notes, _verdict_line(comparison)], color)


def render_compare_markdown(comparison: ReportComparison) -> str:
    status = "❌" if comparison.regressed else "✅"
    lines = [f"## {status} gelu-audit compare ({_verdict_line(comparison)})", "",
             "| implementation | dtype | device | verdict | what changed |", "|---|---|---|---|---|"]  # fmt: skip
    for c in _sorted(comparison):
        text = "; ".join([*c.worse, *c.better]).replace("|", "\\|") or "—"
        lines.append(f"| `{c.implementation}` | {c.dtype} | {c.device} | {c.verdict} | {text} |")
    lines += ["", *(f"> {note}" for note in comparison.notes)]
    return "\n".join(lines).rstrip() + "\n"
