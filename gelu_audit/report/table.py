"""Reports as rich tables for people: one table per dtype (accuracy), per run (speed, compare),
per dtype and device (paths); notes in plain lines under them."""

from __future__ import annotations

import math

from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from gelu_audit.audits.accuracy import AuditReport, CaseResult, Verdict
from gelu_audit.audits.compare import ReportComparison
from gelu_audit.audits.estimates import Estimate
from gelu_audit.audits.paths import BASELINE, FAR_APART, PathResult, PathsReport
from gelu_audit.audits.profile import ErrorProfile
from gelu_audit.audits.speed import BaselineChange, BaselineMetric, SpeedReport, copy_change_notes
from gelu_audit.audits.stats import ErrorStats, FlushToZero, PolicyOutcome
from gelu_audit.numerics.formulas import Pass
from gelu_audit.numerics.inputs import InputSet
from gelu_audit.report.console import render_to_string, report_width
from gelu_audit.report.text import (
    SPARK_WIDTH,
    accuracy_rank_key,
    compare_verdict_line,
    copy_drift_notes,
    fastest_lines,
    few_names,
    format_correctly_rounded,
    format_domain,
    format_median_time,
    format_over_tolerance,
    format_ratio_to_copy,
    format_share_estimate,
    format_size,
    format_ulp,
    format_ulp_estimate,
    format_x,
    shown_domain,
    sorted_changes,
    sparkline,
    speed_run_failures,
    untimed_text,
)

# --- accuracy ---------------------------------------------------------------------------------


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
        row: list[Text | str] = [name, case.formula, Text("error", style="red")]  # the why: a note
        return row + [""] * 10 + ([Text("FAIL", style="bold red")] if gated else [])
    exact, own = case.exact, case.own_formula
    specials_ok = sum(check.ok for check in case.specials)
    flush = exact.flush_to_zero
    row = [
        name,
        case.formula,
        *_stats_cells(exact),
        Text(format_ulp(exact.max_ulp_outside_flush), style=_ulp_style(exact.max_ulp_outside_flush))
        if flush.count
        else "—",
        _flush_cell(flush) if flush.count else "—",
        Text(format_ulp(own.max_ulp), style=_ulp_style(own.max_ulp)),
        format_ulp_estimate(exact.estimates.p99_ulp) if exact.estimates else format_ulp(exact.p99_ulp),
        format_correctly_rounded(exact),
        format_domain(shown_domain(exact)),
        Text(str(case.nonfinite_count), style="red" if case.nonfinite_count else ""),
        Text(str(case.wrong_sign_zero_count), style="yellow" if case.wrong_sign_zero_count else ""),
        Text(
            f"{specials_ok}/{len(case.specials)}", style="" if specials_ok == len(case.specials) else "yellow"
        ),
    ]
    if gated:
        row.append(Text("pass", style="green") if verdict.passed else Text("FAIL", style="bold red"))
    return row


BACKWARD_TITLE = " — backward: GELU′(x), the gradient with grad_output = 1"

# Accuracy columns: header, justification, and how readily it is left out when the terminal is
# too narrow (0: never; the highest number goes first).
ACCURACY_COLUMNS: tuple[tuple[str, JustifyMethod, int], ...] = (
    ("implementation", "left", 0),
    ("formula", "left", 3),
    ("max ULP", "right", 0),
    ("at x", "right", 1),
    ("w/o flush", "right", 1),
    ("flushed to 0", "left", 3),
    ("vs own formula", "right", 3),
    ("p99", "right", 4),
    ("CR", "right", 1),
    ("domain", "left", 2),
    ("non-finite", "right", 3),
    ("±0 sign", "right", 5),
    ("specials", "right", 5),
)


def _flush_cell(flush: FlushToZero) -> str:
    """The flushed count and its span below 0 (the tail); x > 0 flushes are only noted."""
    below = f"[{flush.negative[0]:.4g}, {flush.negative[1]:.4g}]" if flush.negative else ""
    above = "x > 0 too" if flush.positive else ""
    return f"{flush.count:,}: " + ", ".join(part for part in (below, above) if part)


def case_label(case: CaseResult) -> str:
    """How notes name a case: implementation, device, dtype, and the pass when backward."""
    backward = " backward" if case.pass_ is Pass.BACKWARD else ""
    return f"{case.implementation} {case.device} {case.dtype}{backward}"


def left_out_line(width: int, dropped: list[str]) -> str:
    """The line that says which columns a narrow terminal left out."""
    return f"left out at {width} columns: {', '.join(dropped)} (-f json has them)"


def columns_left_out(
    columns: list[tuple[str, JustifyMethod, int]],
    rows: list[list[Text | str]],
    width: int,
    leave_out: tuple[str, ...] = (),
) -> list[str]:
    """The headers to leave out so the table fits ``width`` without cutting a number or a word:
    ``leave_out`` first, then the lowest priority first, until it fits."""

    def cell_width(cell: Text | str) -> int:
        return cell.cell_len if isinstance(cell, Text) else Text(cell).cell_len

    needed = [
        max([cell_width(header), *(cell_width(row[i]) for row in rows)]) + 3
        for i, (header, _, _) in enumerate(columns)
    ]
    kept = [i for i, column in enumerate(columns) if column[0] not in leave_out]
    dropped: list[str] = [column[0] for column in columns if column[0] in leave_out]
    while sum(needed[i] for i in kept) + 1 > width:
        droppable = [i for i in kept if columns[i][2] > 0]
        if not droppable:
            break  # nothing left to drop: rich wraps the title, the cells stay whole
        victim = max(droppable, key=lambda i: (columns[i][2], i))
        kept.remove(victim)
        dropped.append(columns[victim][0])
    return dropped


def fitted_table(
    title: str,
    columns: list[tuple[str, JustifyMethod, int]],
    rows: list[list[Text | str]],
    width: int,
    leave_out: tuple[str, ...] = (),
) -> tuple[Table, list[str]]:
    """The table with the :func:`columns_left_out` left out; and the headers left out."""
    dropped = columns_left_out(columns, rows, width, leave_out)
    kept = [i for i, column in enumerate(columns) if column[0] not in dropped]
    table = Table(title=title, title_justify="left", header_style="bold")
    for i in kept:
        table.add_column(columns[i][0], justify=columns[i][1], no_wrap=True)
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table, dropped


def fitted_items(
    title: str, columns: list[tuple[str, JustifyMethod, int]], rows: list[list[Text | str]], width: int
) -> list[object]:
    """The :func:`fitted_table`, followed by the line that says what it left out, if anything."""
    table, dropped = fitted_table(title, columns, rows, width)
    return [table, left_out_line(width, dropped)] if dropped else [table]


ESTIMATED = ("p99", "CR")
"""The columns a stratified sample estimates for the whole range (headed ``… est.``)."""


def _header(header: str, tolerance: float, estimated: bool) -> str:
    """An accuracy column's header in one table: the tolerance in the domain's, and ``est.``
    on the figures a sample estimates."""
    if header == "domain":
        return f"domain ≤{tolerance:g} ULP"
    if estimated and header in ESTIMATED:
        return f"{header} est."
    return header


def accuracy_tables(report: AuditReport, width: int = 160) -> list[object]:
    """One table per dtype (and pass), each followed by its verdict line; columns that do not
    fit ``width`` are left out of every table alike, and a line says which."""
    gated = report.settings.gate is not None or bool(report.settings.thresholds)
    tolerance = report.settings.effective_domain_tolerance
    groups = dict.fromkeys((case.dtype, case.pass_) for case in report.results)
    planned = []
    for dtype, inputs in report.inputs.items():
        for pass_ in (p for d, p in groups if d == dtype):
            title = inputs.describe() + (BACKWARD_TITLE if pass_ is Pass.BACKWARD else "")
            estimated = isinstance(inputs, InputSet) and inputs.estimable
            columns = [
                (_header(header, tolerance, estimated), justify, priority)
                for header, justify, priority in ACCURACY_COLUMNS
            ]
            if gated:
                columns.append(("verdict", "left", 0))
            pairs = [
                (case, verdict)
                for case, verdict in zip(report.results, report.verdicts)
                if case.dtype == dtype and case.pass_ is pass_
            ]
            rows = [case_row(case, verdict, gated) for case, verdict in pairs]
            planned.append((title, columns, rows, verdict_line(dtype, pass_, pairs, gated)))
    # What any one table had to leave out, by column position (headers differ per table:
    # "CR" or "CR est."); every table then leaves out the same columns.
    left_out: dict[int, None] = {}
    for _, columns, rows, _ in planned:
        headers = [header for header, _, _ in columns]
        left_out.update(dict.fromkeys(headers.index(h) for h in columns_left_out(columns, rows, width)))
    items: list[object] = []
    for title, columns, rows, verdict in planned:
        leave_out = tuple(columns[i][0] for i in left_out)
        items += [fitted_table(title, columns, rows, width, leave_out)[0], verdict]
    if left_out:
        base = [_header(header, tolerance, estimated=False) for header, _, _ in ACCURACY_COLUMNS] + [
            "verdict"
        ]
        items.append(left_out_line(width, [base[i] for i in left_out]))
    return items


def accuracy_rank(case: CaseResult) -> tuple[float, ...]:
    """The case's place in its table's ranking (:func:`~gelu_audit.report.text.accuracy_rank_key`),
    most accurate first; against the exact GELU."""
    stats = case.exact
    assert stats is not None
    estimates = stats.estimates
    return accuracy_rank_key(
        finite=stats.finite_points,
        nonfinite=case.nonfinite_count,
        over_share=stats.over_tolerance_share,
        max_outside_flush=stats.max_ulp_outside_flush,
        max_ulp=stats.max_ulp,
        correctly_rounded=estimates.correctly_rounded.value if estimates else stats.correctly_rounded,
        mean_ulp=estimates.mean_ulp.value if estimates else stats.mean_ulp,
    )


def _peers(best: CaseResult, cases: list[CaseResult]) -> str:
    """Who the verdict cannot put behind ``best``, for a line of its own under the verdict:
    cases ranked exactly the same (the same bits, often: an ATen twin, a jitted call), and on
    a sample, cases with no more non-finite answers whose estimated share over the tolerance
    has an interval reaching ``best``'s (the sample does not tell them apart). Empty when
    ``best`` is ahead of every other case."""
    rank = accuracy_rank(best)
    others = [c for c in cases if c is not best]
    tied = [c.implementation for c in others if accuracy_rank(c) == rank]
    said = [f"as accurate: {few_names(tied)}"] if tied else []
    mine = best.exact.estimates if best.exact else None
    if mine is not None:
        near = [
            c
            for c in others
            if c.implementation not in tied
            and c.nonfinite_count <= best.nonfinite_count  # more non-finite answers: behind
            and c.exact is not None
            and c.exact.estimates is not None
            and c.exact.estimates.over_tolerance.low <= mine.over_tolerance.high
        ]
        if near:
            said.append(f"within the sample's interval: {few_names([c.implementation for c in near])}")
    return "; ".join(said)


def verdict_line(dtype: str, pass_: Pass, pairs: list[tuple[CaseResult, Verdict]], gated: bool) -> str:
    """One line per table: the most accurate implementation (:func:`accuracy_rank`), and which
    ones fail or broke."""
    name = f"{dtype}{' backward' if pass_ is Pass.BACKWARD else ''}"
    finished = [case for case, _ in pairs if case.exact is not None]
    parts = []
    if finished:
        best = min(finished, key=lambda case: (*accuracy_rank(case), case.implementation))
        stats = best.exact
        assert stats is not None
        nonfinite = f", {best.nonfinite_count:,} non-finite" if best.nonfinite_count else ""
        parts.append(
            f"most accurate: {best.implementation} ({format_over_tolerance(stats)}{nonfinite}; max "
            f"{format_ulp(stats.max_ulp)} ULP)"
        )
        peers = _peers(best, finished)
    errors = [case.implementation for case, _ in pairs if case.status != "ok"]
    if errors:
        parts.append(f"error: {', '.join(errors)}")
    if gated:
        failed = [
            case.implementation for case, verdict in pairs if not verdict.passed and case.status == "ok"
        ]
        parts.append(f"fail: {', '.join(failed)}" if failed else "every case passes")
    line = f"→ {name}: " + "; ".join(parts)
    return line + (f"\n  {peers}" if finished and peers else "")


def _who(cases: list[CaseResult], population: list[CaseResult]) -> str:
    """The cases a note concerns: "all N", "all N but …" when that is shorter, or the
    implementations with their dtypes."""

    def listed(group: list[CaseResult]) -> str:
        by_name: dict[str, list[str]] = {}
        for case in group:
            where = case.dtype + ("" if case.device == "cpu" else f" {case.device}")
            by_name.setdefault(case.implementation, []).append(where)
        return ", ".join(f"{name} ({', '.join(wheres)})" for name, wheres in by_name.items())

    if len(cases) == len(population) and len(cases) > 1:
        return f"all {len(population)}"
    if len(cases) > len(population) // 2 > 0:
        concerned = {id(case) for case in cases}
        return f"all {len(population)} but {listed([c for c in population if id(c) not in concerned])}"
    return listed(cases)


def _outcome(value: float) -> str:
    """A special value's answer as people say it: NaN, ±∞, ±0, or the number."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    if value == 0:
        return "−0" if math.copysign(1.0, value) < 0 else "+0"
    return repr(value)


def _expected(value: float) -> str:
    """What was expected, said so that dtypes share it: NaN, ±∞, ±0, or RN of the value."""
    return _outcome(value) if value == 0 or not math.isfinite(value) else "its correctly rounded value"


def notes(report: AuditReport, details: bool) -> list[str]:
    """Plain lines under the tables: failures explained, then special values and skips, each
    said once with the cases it concerns (``details``: once per case)."""
    lines: list[str] = []
    for case, verdict in zip(report.results, report.verdicts):
        if not verdict.passed:
            lines.append(f"FAIL {case_label(case)}: " + "; ".join(verdict.reasons))
    specials: dict[tuple[Pass, str, str, str], list[CaseResult]] = {}
    for case in report.results:
        function = "GELU′" if case.pass_ is Pass.BACKWARD else "GELU"
        for check in case.specials:
            if not check.ok and details:
                lines.append(
                    f"specials {case_label(case)}: {function}({check.name}) = {check.got!r}, "
                    f"expected {check.expected!r}"
                )
            elif not check.ok:
                key = (case.pass_, check.name, _outcome(check.got), _expected(check.expected))
                specials.setdefault(key, []).append(case)
    for (pass_, name, got, expected), cases in specials.items():
        function = "GELU′" if pass_ is Pass.BACKWARD else "GELU"
        population = [c for c in report.results if c.pass_ is pass_ and c.status == "ok"]
        lines.append(f"{function}({name}) = {got} instead of {expected}: {_who(cases, population)}")
    if details:
        for case in report.results:
            if case.exact is None:
                continue
            label = case_label(case)
            for point in case.exact.worst:
                lines.append(
                    f"  worst {label}: x={point.x!r} ({point.x_hex}) got {point.got!r} "
                    f"({point.got_hex}) exact {point.exact} → {format_ulp(point.ulp_error)} ULP"
                )
            lines.append(
                f"  histogram {label}: " + " ".join(f"{k}:{v}" for k, v in case.exact.histogram if v)
            )
    flushing: dict[str, list[CaseResult]] = {}
    for case in report.results:
        if case.exact is not None:
            handling = case.exact.subnormals
            inputs = bool(handling.inputs) and handling.inputs_flushed == handling.inputs
            results = bool(handling.outputs) and handling.outputs_flushed == handling.outputs
            if inputs or results:
                what = " and ".join(w for w, flag in (("inputs", inputs), ("results", results)) if flag)
                like = "/".join(w for w, flag in (("DAZ", inputs), ("FTZ", results)) if flag)
                flushing.setdefault(f"subnormal {what} flushed to 0 ({like}-like)", []).append(case)
    for text, cases in flushing.items():
        population = [c for c in report.results if c.status == "ok"]
        lines.append(f"{text}: {_who(cases, population)}")
    skips: dict[str, list[str]] = {}
    for skip in report.skipped:
        backward = " backward" if skip.pass_ is Pass.BACKWARD else ""
        where = f"{skip.implementation} {skip.device} {skip.dtype}{backward}"
        if details:
            lines.append(f"skipped {where}: {skip.reason}")
        else:
            skips.setdefault(skip.reason, []).append(where)
    for reason, wheres in skips.items():
        names = list(dict.fromkeys(w.split()[0] for w in wheres))
        devices = list(dict.fromkeys(w.split()[1] for w in wheres))
        shown = (
            ", ".join(names) if len(names) <= 3 else f"{len(names)} implementations on {', '.join(devices)}"
        )
        lines.append(f"skipped {len(wheres)} case(s) ({shown}): {reason}")
    gate = report.settings.gate
    summary = f"{len(report.results)} case(s) in {report.seconds:.1f} s"
    if gate:
        failed = sum(not v.passed for v in report.verdicts)
        summary += f"; gate max {gate.max_ulp:g} ULP against {gate.against}"
        if not report.gated_nothing:
            summary += ": all pass" if failed == 0 else f": {failed} FAIL"
    if report.gated_nothing:
        summary += f"; FAIL: {report.GATED_NOTHING}"
    lines.append(summary)
    lines.append(
        "ULP vs the exact GELU; w/o flush: inputs flushed to ±0 left out; CR: correctly rounded; "
        "domain: ≤ tolerance, normal x"
    )
    if any(isinstance(inputs, InputSet) and inputs.estimable for inputs in report.inputs.values()):
        lines.append(
            "sampled: max ULP is the largest found (a lower bound); est.: estimate for the whole range "
            "(95% interval)"
        )
    return lines


def render_accuracy_table(
    report: AuditReport, color: bool, details: bool = False, width: int | None = None, profile: bool = False
) -> str:
    """The tables with their verdict lines, the error profiles (with ``profile`` or
    ``details``), then the notes."""
    width = report_width(width)
    profiles = profile_tables(report, width) if profile or details else []
    gated_policies = any(t.policy_name for t in report.settings.thresholds)
    policies = policy_tables(report, width) if gated_policies or details else []
    return render_to_string(
        [*accuracy_tables(report, width), *profiles, *policies, "\n".join(notes(report, details))],
        color,
        width,
    )


def policy_cell(outcome: PolicyOutcome, estimate: Estimate | None = None) -> Text:
    """``pass (0.66×)``: the worst error as a share of the allowance; or how many inputs break
    the policy, and the worst finite one. For a stratified sample (``estimate``), also how much
    of the range breaks it: ``344 found, est. 1.7%±0.2``, since the sample's count says nothing
    of the range's (and its hard-region points, which find breaks, stand for no share)."""
    if outcome.passed:
        text = f"pass ({outcome.max_ratio:.3g}×)"
    else:
        where = f" x={outcome.worst.x:.5g} ({outcome.max_ratio:.3g}×)" if outcome.worst else ""
        found = f"{outcome.finite_breaks:,}"
        text = (
            f"{found} found, est. {format_share_estimate(estimate)} at{where}"
            if estimate
            else f"{found} at{where}"
        )
    if outcome.nonfinite:
        text += f" +{outcome.nonfinite:,} non-finite"
    return Text(text, style="green" if outcome.passed else "red")


def policy_tables(report: AuditReport, width: int) -> list[object]:
    """Per dtype and pass: which tolerance policies each case passes, and where it breaks them
    (against the formula each claims when a --policy gate or threshold says ``formula``)."""
    own = any(t.policy_name and t.against == "formula" for t in report.settings.thresholds)
    gated = {t.policy_name for t in report.settings.thresholds}
    items: list[object] = []
    groups = dict.fromkeys((case.dtype, case.pass_) for case in report.results)
    for dtype, pass_ in groups:
        cases = [c for c in report.results if c.dtype == dtype and c.pass_ is pass_]
        stats = [(c, c.own_formula if own else c.exact) for c in cases]
        names = list(dict.fromkeys(o.policy for _, s in stats if s is not None for o in s.policies))
        if not names:
            continue
        columns: list[tuple[str, JustifyMethod, int]] = [("implementation", "left", 0)]
        columns += [(name, "left", 0 if name in gated else 1) for name in names]  # the gate's stays
        rows: list[list[Text | str]] = []
        for case, case_stats in stats:
            by_name = {o.policy: o for o in case_stats.policies} if case_stats else {}
            row: list[Text | str] = [case.implementation]
            estimates = case_stats.estimates.policy_breaks if case_stats and case_stats.estimates else {}
            row += [
                policy_cell(by_name[name], estimates.get(name)) if name in by_name else "—" for name in names
            ]
            rows.append(row)
        against = "the formula each claims" if own else "the exact GELU"
        sampled = any(case_stats and case_stats.estimates for _, case_stats in stats)
        breaking = "the finite answers that break it" + (
            " (found, and the estimated share of the range)" if sampled else ""
        )
        title = (
            f"{dtype}{' backward' if pass_ is Pass.BACKWARD else ''}: tolerance policies against {against} "
            f"(pass: the worst error as a share of the allowance; else {breaking}, and the worst)"
        )
        items += fitted_items(title, columns, rows, width)
    return items


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


def profile_tables(report: AuditReport, width: int = 160) -> list[object]:
    """Per dtype: each case's maximum error along x as a line of block characters, as many as
    fit ``width`` beside the names (at most SPARK_WIDTH)."""
    tolerance = report.settings.effective_domain_tolerance
    items: list[object] = []
    for dtype in report.inputs:
        cases = [c for c in report.results if c.dtype == dtype and c.exact is not None]
        if not cases:
            continue
        table = Table(
            title=f"{dtype}: where the error is (max per binade of x, against the exact GELU; "
            f"▁≤0.5 ▂≤1 ▃≤2 ▄≤4 ▅≤16 ▆≤256 ▇≤65536 █ more, ! non-finite; red: over {tolerance:g} ULP)",
            title_justify="left",
            header_style="bold",
        )
        table.add_column("implementation", no_wrap=True)
        profiles = [(case, case.exact.profile) for case in cases if case.exact is not None]
        names = [
            case.implementation + ("" if case.device == "cpu" else f" [{case.device}]") for case in cases
        ]
        spark = max(8, min(SPARK_WIDTH, width - max(len(n) for n in names) - 7))  # 7: the borders
        table.add_column(_axis(profiles[0][1], spark), no_wrap=True)
        for name, (_, case_profile) in zip(names, profiles):
            table.add_row(name, sparkline(case_profile, tolerance, spark))
        items.append(table)
    return items


# --- speed ------------------------------------------------------------------------------------


SPEED_COLUMNS: dict[str, int] = {
    "implementation": 0,
    "device": 2,
    "dtype": 0,
    "size": 0,
    "median": 1,
    "noise": 1,
    "Gelem/s": 3,
    "GB/s": 2,
    "copy GB/s": 3,
    "ratio to copy": 0,
}
"""The speed table's columns and how readily each is left out when the terminal is narrow
(0: never; the highest number goes first); ratio to peak is 2, vs baseline never."""


def render_speed_table(
    report: SpeedReport,
    comparisons: list[BaselineChange] | None,
    max_slowdown: float | None,
    color: bool,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> str:
    compared = {(c.implementation, c.device, c.dtype, c.size): c for c in comparisons or []}
    title = (
        "time per call (median of interleaved samples) and bandwidth against a plain copy of the same size"
    )
    headers = list(SPEED_COLUMNS)
    if any(c.ratio_to_peak for c in report.cases):
        headers.append("ratio to peak")
    if comparisons is not None:
        headers.append("vs baseline")
    columns: list[tuple[str, JustifyMethod, int]] = [
        (
            h,
            "left" if h in ("implementation", "device", "dtype") else "right",
            SPEED_COLUMNS.get(h, 2 if h == "ratio to peak" else 0),
        )
        for h in headers
    ]
    rows: list[list[Text | str]] = []
    for case in report.cases:
        row: list[Text | str] = [case.implementation, case.device, case.dtype, format_size(case.size)]
        if case.status != "ok" or case.timing is None or case.elements_per_s is None:
            row.append(
                Text(case.status, style="yellow" if case.status == "skipped" else "red")
            )  # why: a note
            rows.append(row + [""] * (len(headers) - len(row)))
            continue
        noise = Text(
            f"{100 * case.timing.noise:.1f}%" + (" unstable" if case.timing.unstable else ""),
            style="yellow" if case.timing.unstable else "",
        )
        row += [
            format_median_time(case, metric),
            noise,
            f"{case.elements_per_s / 1e9:.3f}",
            f"{case.bandwidth_gbs:.2f}",
            f"{case.copy_bandwidth_gbs:.2f}",
            format_ratio_to_copy(case),
        ]
        if "ratio to peak" in headers:
            row.append(f"{case.ratio_to_peak:.3f}" if case.ratio_to_peak else "—")
        if comparisons is not None:
            c = compared.get((case.implementation, case.device, case.dtype, case.size))
            if c is None:
                row.append("not in baseline")
            else:
                style = {"regression": "bold red", "improvement": "green", "inconclusive": "yellow"}.get(
                    c.verdict, ""
                )
                row.append(
                    Text(
                        f"{100 * c.change:+.1f}% [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}] {c.verdict}",
                        style=style,
                    )
                )
        rows.append(row)
    width = report_width()
    table, dropped = fitted_table(title, columns, rows, width)
    lines = [
        f"{case.status} {case.implementation} {case.device} {case.dtype} "
        f"{format_size(case.size)}: {case.reason}"
        for case in report.cases
        if case.status != "ok"
    ]
    lines += [f"skipped {i} {d} {t}: {r}" for i, d, t, r in report.skipped]
    if dropped:
        lines.append(left_out_line(width, dropped))
    timing = report.environment.get("timing", {})
    lines.append(
        f"{len(report.cases)} case(s) in {report.seconds:.1f} s; torch threads "
        f"{timing.get('torch_threads')}; flushes denormals: {timing.get('flushes_denormals')}"
    )
    lines.append(
        "ratio to copy: the implementation's bandwidth (bytes read + written ÷ time) over a "
        "copy's, measured in the same run; 1.0 means as fast as moving the data."
    )
    lines += fastest_lines(report)
    lines += copy_drift_notes(report)
    if comparisons is not None:
        regressions = sum(c.verdict == "regression" for c in comparisons)
        lines.append(
            f"baseline: max slowdown {100 * (max_slowdown or 0):.0f}% of the {metric.compared} "
            f"(95% bootstrap interval); {regressions} regression(s)"
        )
        lines += [
            f"FAIL: {c.implementation} {c.device} {c.dtype} {format_size(c.size)}: {untimed_text(c)}"
            for c in comparisons
            if c.untimed is not None
        ]
        lines += [f"FAIL: {why}" for why in speed_run_failures(comparisons)]
        lines += copy_change_notes(comparisons)
    return render_to_string([table, "\n".join(lines)], color)


# --- paths ------------------------------------------------------------------------------------


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
        title = (
            f"{dtype} on {device}: bits against the contiguous call ({len(report.inputs[dtype]):,} inputs)"
        )
        columns: list[tuple[str, JustifyMethod, int]] = [("implementation", "left", 0)]
        columns += [(name, "right", 1) for name in path_names]
        rows: list[list[Text | str]] = []
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
                    cells.append(
                        Text(f"{r.differing:,} (≤{_distance(r.max_ordinal_distance)})", style="yellow")
                    )
            if BASELINE.name in mine:  # the contiguous call itself failed
                cells = [Text("error", style="red")] * len(path_names)
            rows.append([name, *cells])
        renderables += fitted_items(title, columns, rows, report_width())
    lines = [
        "cells: inputs whose bits differ from the contiguous call (≤ the farthest apart, in "
        "representable values); 'n/a': the path is only offered by F.gelu's own op."
    ]
    for r in report.results:
        if r.status == "error":
            lines.append(f"error {r.implementation} {r.device} {r.dtype} {r.path}: {r.error}")
        elif r.status == "differ" and r.examples:
            e = r.examples[0]
            lines.append(
                f"{r.implementation} {r.device} {r.dtype} {r.path}: x = {e.x!r}: "
                f"contiguous {e.contiguous!r}, {r.path} {e.path!r}, "
                f"correctly rounded {e.reference!r} ({_closer(e.closer, r.path)})"
            )
    for name, device, dtype, reason in report.skipped:
        lines.append(f"skipped {name} {device} {dtype}: {reason}")
    verdict = "all paths agree" if report.passed else "paths disagree"
    lines.append(f"{len(report.results)} comparison(s) in {report.seconds:.1f} s: {verdict}")
    renderables.extend(lines)
    return render_to_string(renderables, color)


def _closer(closer: str, path: str) -> str:
    return {"tie": "equally far", "contiguous": "contiguous is closer", "path": f"{path} is closer"}[closer]


# --- compare ----------------------------------------------------------------------------------


VERDICT_STYLES = {
    "regression": "bold red",
    "missing": "bold red",
    "mixed": "yellow",
    "improvement": "green",
    "new": "cyan",
    "unchanged": "",
    "inconclusive": "yellow",
}


def render_compare_table(comparison: ReportComparison, color: bool) -> str:
    table = Table(title=f"{comparison.kind} baseline comparison", title_justify="left", header_style="bold")
    for column in ("implementation", "dtype", "device", "verdict"):
        table.add_column(column, no_wrap=True)
    table.add_column("what changed", overflow="fold")  # wraps; a long word folds, never cut
    for c in sorted_changes(comparison):
        text = "; ".join([*c.worse, *c.better]) or "—"
        table.add_row(
            c.implementation, c.dtype, c.device, Text(c.verdict, style=VERDICT_STYLES[c.verdict]), Text(text)
        )
    return render_to_string([table, *comparison.notes, compare_verdict_line(comparison)], color)


# --- list -------------------------------------------------------------------------------------
