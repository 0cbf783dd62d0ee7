"""The code-path report (``gelu-audit paths``): JSON (schema ``gelu-audit.paths``) and tables."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from gelu_audit.audits.paths import BASELINE, PATHS, PathResult, PathsReport
from gelu_audit.report.envelope import DocumentKind, dumps, envelope
from gelu_audit.report.table import render_to_string


FAR_APART = 2**62
"""Ordinal distances this large mean one answer is non-finite (or NaN) and the other is not."""


def paths_document(report: PathsReport, environment: dict[str, Any]) -> dict[str, Any]:
    s = report.settings
    chosen = [p for p in PATHS if not s.paths or p.name in s.paths]
    return {
        **envelope(DocumentKind.PATHS),
        "settings": {"dtypes": list(s.dtypes), "implementations": list(s.implementations) or "all PyTorch ones",
                     "devices": list(s.devices), "paths": [p.name for p in chosen], "samples": s.samples,
                     "seed": s.seed, "top": s.top},  # fmt: skip
        "baseline": {"name": BASELINE.name, "description": BASELINE.description},
        "paths": {p.name: p.description for p in chosen},
        "inputs": {name: inputs.to_json() for name, inputs in report.inputs.items()},
        "summary": {
            "comparisons": len(report.results),
            "agree": sum(r.status == "agree" for r in report.results),
            "differ": sum(r.status == "differ" for r in report.results),
            "errors": sum(r.status == "error" for r in report.results),
            "all_agree": report.passed,
            "seconds": report.seconds,
        },
        "results": [_result_json(r) for r in report.results],
        "skipped": [{"implementation": i, "device": d, "dtype": t, "reason": why} for i, d, t, why in report.skipped],
        "environment": environment,
    }


def _result_json(result: PathResult) -> dict[str, Any]:
    data = {k: getattr(result, k) for k in ("implementation", "device", "dtype", "path", "status",
                                            "points", "differing", "error", "seconds")}  # fmt: skip
    data["max_ordinal_distance"] = None if result.max_ordinal_distance >= FAR_APART else result.max_ordinal_distance
    data["examples"] = [
        {"x": e.x, "contiguous": e.contiguous, "path": e.path, "reference": e.reference, "closer": e.closer,
         "ordinal_distance": None if e.ordinal_distance >= FAR_APART else e.ordinal_distance}
        for e in result.examples
    ]  # fmt: skip
    return data


def render_paths_json(report: PathsReport, environment: dict[str, Any]) -> str:
    return dumps(paths_document(report, environment))


def _distance(value: int) -> str:
    return "non-finite" if value >= FAR_APART else f"{value:,}"


def render_paths_table(report: PathsReport, color: bool) -> str:
    """One table per dtype and device: implementations as rows, paths as columns."""
    renderables: list[object] = []
    groups: dict[tuple[str, str], list[PathResult]] = {}
    for result in report.results:
        groups.setdefault((result.dtype, result.device), []).append(result)
    for (dtype, device), results in groups.items():
        names = list(dict.fromkeys(r.implementation for r in results))
        path_names = list(dict.fromkeys(r.path for r in results if r.path != BASELINE.name))
        table = Table(title=f"{dtype} on {device}: bits against the contiguous call "
                            f"({len(report.inputs[dtype]):,} inputs)", title_justify="left", header_style="bold")  # fmt: skip
        table.add_column("implementation")
        for name in path_names:
            table.add_column(name, justify="right")
        for name in names:
            cells: list[Text | str] = []
            mine = {r.path: r for r in results if r.implementation == name}
            for path_name in path_names:
                r = mine.get(path_name)
                if r is None:
                    cells.append("n/a" if path_name not in report.offered.get(name, ()) else "—")
                elif r.status == "agree":
                    cells.append(Text("same", style="green"))
                elif r.status == "error":
                    cells.append(Text("error", style="red"))
                else:
                    cells.append(Text(f"{r.differing:,} (≤{_distance(r.max_ordinal_distance)})", style="yellow"))
            if BASELINE.name in mine:  # the contiguous call itself failed
                cells = [Text("error", style="red")] * len(path_names)
            table.add_row(name, *cells)
        renderables.append(table)
    lines = ["cells: inputs whose bits differ from the contiguous call (≤ the farthest apart, in "
             "representable values); 'n/a': the path is only offered by F.gelu's own op."]  # fmt: skip
    for r in report.results:
        if r.status == "error":
            lines.append(f"error {r.implementation} {r.device} {r.dtype} {r.path}: {r.error}")
        elif r.status == "differ" and r.examples:
            e = r.examples[0]
            lines.append(f"{r.implementation} {r.device} {r.dtype} {r.path}: x = {e.x!r}: "
                         f"contiguous {e.contiguous!r}, {r.path} {e.path!r}, "
                         f"correctly rounded {e.reference!r} ({_closer(e.closer, r.path)})")  # fmt: skip
    for name, device, dtype, reason in report.skipped:
        lines.append(f"skipped {name} {device} {dtype}: {reason}")
    verdict = "all paths agree" if report.passed else "paths disagree"
    lines.append(f"{len(report.results)} comparison(s) in {report.seconds:.1f} s: {verdict}")
    renderables.extend(lines)
    return render_to_string(renderables, color)


def _closer(closer: str, path: str) -> str:
    return {"tie": "equally far", "contiguous": "contiguous is closer", "path": f"{path} is closer"}[closer]
