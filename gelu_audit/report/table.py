"""The accuracy report as rich tables for people: one table per dtype, then the notes."""

from __future__ import annotations

import io
import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gelu_audit.audits.stats import AccurateDomain, ErrorStats
from gelu_audit.audits.accuracy import AuditReport, CaseResult, Verdict
from gelu_audit.audits.profile import ErrorProfile


def render_to_string(renderables: list[object], color: bool, width: int | None = None) -> str:
    """Render rich objects to a string; colour codes only when asked (the CLI decides)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, force_terminal=color, no_color=not color, width=width or 160,
        highlight=False, soft_wrap=False, color_system="standard" if color else None,
    )  # fmt: skip
    for item in renderables:
        # Plain strings are printed as text, never as rich markup: reasons and errors carry
        # brackets ("pip install 'gelu-audit[jax]'", "raised IndexError: [...]").
        console.print(Text(item) if isinstance(item, str) else item)
    return buffer.getvalue()


def format_ulp(value: float | None) -> str:
    """ULP figures: three decimals when small, thousands separators when large."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "inf"
    if value < 100:
        return f"{value:.3f}"
    if value < 1e7:
        return f"{value:,.0f}"
    return f"{value:.3e}"


def format_x(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}"


def format_domain(domain: AccurateDomain) -> str:
    if domain.lo is None or domain.hi is None:
        return "none (fails at 0)"
    return domain.interval_text() + (" all" if domain.covers_all else "")


def _ulp_style(value: float) -> str:
    if value <= 0.5:
        return "green"
    if value <= 4:
        return "yellow"
    return "red"


def _stats_cells(stats: ErrorStats) -> list[Text | str]:
    worst = stats.worst[0] if stats.worst else None
    return [
        Text(format_ulp(stats.max_ulp), style=_ulp_style(stats.max_ulp)),
        format_x(worst.x) if worst else "—",
    ]


def case_row(case: CaseResult, verdict: Verdict, gated: bool) -> list[Text | str]:
    name = case.implementation + ("" if case.device == "cpu" else f" [{case.device}]")
    if case.status != "ok" or case.exact is None or case.own_formula is None:
        row: list[Text | str] = [name, case.formula, Text(f"error: {case.error}", style="red")]
        return row + [""] * 8 + ([Text("FAIL", style="bold red")] if gated else [])
    exact, own = case.exact, case.own_formula
    specials_ok = sum(check.ok for check in case.specials)
    row = [
        name,
        case.formula,
        *_stats_cells(exact),
        Text(format_ulp(own.max_ulp), style=_ulp_style(own.max_ulp)),
        format_ulp(exact.p99_ulp),
        f"{100 * exact.correctly_rounded:.1f}%",
        format_domain(exact.accurate_domain),
        Text(str(case.nonfinite_count), style="red" if case.nonfinite_count else ""),
        Text(str(case.wrong_sign_zero_count), style="yellow" if case.wrong_sign_zero_count else ""),
        Text(f"{specials_ok}/{len(case.specials)}",
             style="" if specials_ok == len(case.specials) else "yellow"),  # fmt: skip
    ]
    if gated:
        row.append(Text("pass", style="green") if verdict.passed else Text("FAIL", style="bold red"))
    return row


def accuracy_tables(report: AuditReport) -> list[object]:
    gated = report.settings.gate is not None
    tolerance = report.settings.effective_domain_tolerance
    items: list[object] = []
    for dtype, inputs in report.inputs.items():
        table = Table(title=inputs.describe(), title_justify="left", header_style="bold")
        for header, justify in [
            ("implementation", "left"), ("formula", "left"), ("max ULP", "right"),
            ("at x", "right"), ("vs own formula", "right"), ("p99", "right"),
            ("CR", "right"), (f"domain ≤{tolerance:g} ULP", "left"),
            ("non-finite", "right"), ("±0 sign", "right"), ("specials", "right"),
        ] + ([("gate", "left")] if gated else []):  # fmt: skip
            table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for case, verdict in zip(report.results, report.verdicts):
            if case.dtype == dtype:
                table.add_row(*case_row(case, verdict, gated))
        items.append(table)
    return items


def notes(report: AuditReport, details: bool) -> list[str]:
    """Plain lines under the tables: failures explained, special values, skipped cases."""
    lines: list[str] = []
    for case, verdict in zip(report.results, report.verdicts):
        label = f"{case.implementation} {case.device} {case.dtype}"
        if not verdict.passed:
            lines.append(f"FAIL {label}: " + "; ".join(verdict.reasons))
        bad = [c for c in case.specials if not c.ok]
        if bad:
            lines.append(
                f"specials {label}: "
                + ", ".join(f"GELU({c.name}) = {c.got!r}, expected {c.expected!r}" for c in bad)
            )
        if details and case.exact is not None:
            for point in case.exact.worst:
                lines.append(
                    f"  worst {label}: x={point.x!r} ({point.x_hex}) got {point.got!r} "
                    f"({point.got_hex}) exact {point.exact} → {format_ulp(point.ulp_error)} ULP"
                )
            lines.append(
                f"  histogram {label}: " + " ".join(f"{k}:{v}" for k, v in case.exact.histogram if v)
            )
    for skip in report.skipped:
        lines.append(f"skipped {skip.implementation} {skip.device} {skip.dtype}: {skip.reason}")
    gate = report.settings.gate
    summary = f"{len(report.results)} case(s) in {report.seconds:.1f} s"
    if gate:
        failed = sum(not v.passed for v in report.verdicts)
        summary += f"; gate max {gate.max_ulp:g} ULP against {gate.against}: "
        summary += "all pass" if failed == 0 else f"{failed} FAIL"
    lines.append(summary)
    lines.append(
        "max ULP: |ŷ − y| / ulp(y) against the exact GELU; 'vs own formula': against the formula "
        "it claims; CR: share correctly rounded; domain: widest interval around 0 within the "
        "tolerance ('all': no tested input fails); ±0 sign: zeros of the wrong sign."
    )
    return lines


def render_table(report: AuditReport, color: bool, details: bool = False, width: int | None = None,
                 profile: bool = False) -> str:  # fmt: skip
    """The tables, the error profiles (with ``profile`` or ``details``), then the notes."""
    profiles = profile_tables(report) if profile or details else []
    return render_to_string([*accuracy_tables(report), *profiles, "\n".join(notes(report, details))], color, width)


# --- the error profile as text ----------------------------------------------------------------

SPARK_WIDTH = 72
"""Characters per profile line: segments are merged (by their maximum) to fit."""
_SPARK_LEVELS = ((0.5, "▁"), (1.0, "▂"), (2.0, "▃"), (4.0, "▄"), (16.0, "▅"), (256.0, "▆"), (65536.0, "▇"))


def _spark_char(max_ulp: float, nonfinite: int) -> str:
    if nonfinite:
        return "!"
    return next((char for bound, char in _SPARK_LEVELS if max_ulp <= bound), "█")


def sparkline(profile: ErrorProfile, tolerance: float, width: int = SPARK_WIDTH) -> Text:
    """One character per group of adjacent segments, from −∞ (left) to +∞ (right): its height
    is the group's maximum error on a log scale (▁ ≤0.5, ▂ ≤1, ▃ ≤2, ▄ ≤4, ▅ ≤16, ▆ ≤256,
    ▇ ≤65536 ULP, █ more; ! a non-finite mismatch), red above the tolerance."""
    n = len(profile.points)
    text = Text()
    if n == 0:
        return text
    groups = min(n, width)
    for g in range(groups):
        first, last = g * n // groups, (g + 1) * n // groups
        worst = max(profile.max_ulp[first:last])
        nonfinite = sum(profile.nonfinite[first:last])
        over = sum(profile.over_tolerance[first:last])
        style = "red" if nonfinite or over else ("green" if worst <= 0.5 else "yellow")
        text.append(_spark_char(worst, nonfinite), style=style)
    return text


def _axis(profile: ErrorProfile, width: int = SPARK_WIDTH) -> str:
    """The header over a sparkline: its left end, 0 where x = 0 falls, its right end."""
    n = len(profile.points)
    if n == 0:
        return ""
    groups = min(n, width)
    zero = next((g for g in range(groups) if profile.x_hi[(g + 1) * n // groups - 1] > 0), groups - 1)
    left, right = f"{profile.x_lo[0]:.3g}", f"{profile.x_hi[-1]:.3g}"
    left = left if len(left) < zero else ""
    right = right if len(right) < groups - zero - 1 else ""
    return left.ljust(zero) + "0" + right.rjust(groups - zero - 1)


def profile_tables(report: AuditReport) -> list[object]:
    """Per dtype: each case's maximum error along x as a line of block characters."""
    tolerance = report.settings.effective_domain_tolerance
    items: list[object] = []
    for dtype in report.inputs:
        cases = [c for c in report.results if c.dtype == dtype and c.exact is not None]
        if not cases:
            continue
        table = Table(title=f"{dtype}: where the error is (max per binade of x, against the exact GELU; "
                            f"▁≤0.5 ▂≤1 ▃≤2 ▄≤4 ▅≤16 ▆≤256 ▇≤65536 █ more, ! non-finite; red: over {tolerance:g} ULP)",
                      title_justify="left", header_style="bold")  # fmt: skip
        table.add_column("implementation", no_wrap=True)
        table.add_column(_axis(cases[0].exact.profile), no_wrap=True)
        for case in cases:
            name = case.implementation + ("" if case.device == "cpu" else f" [{case.device}]")
            table.add_row(name, sparkline(case.exact.profile, tolerance))
        items.append(table)
    return items
