"""One entry per report: the document in the format asked for.

Each dispatch handles every :class:`OutputFormat` (``assert_never`` makes a new member a type
error until it is handled); a format a command does not offer is refused.
"""

from __future__ import annotations

from typing import Any, NoReturn

from gelu_audit.audits.accuracy import AuditReport
from gelu_audit.audits.compare import ReportComparison
from gelu_audit.audits.paths import PathsReport
from gelu_audit.audits.speed import BaselineChange, BaselineMetric, SpeedReport
from gelu_audit.errors import UsageError
from gelu_audit.report import github, json_documents, junit, markdown, table
from gelu_audit.report.output_format import OutputFormat
from gelu_audit.report.visible import with_visible_text


def assert_never(value: NoReturn) -> NoReturn:
    """A member left unhandled (typing.assert_never, which Python 3.10 lacks)."""
    raise AssertionError(f"unhandled output format: {value!r}")


def _not_offered(what: str, output_format: OutputFormat) -> NoReturn:
    """A format the command does not offer (its ``-f`` choices leave it out)."""
    raise UsageError(f"{what} writes no {output_format.value} document")


def render_accuracy(
    report: AuditReport,
    output_format: OutputFormat,
    environment: dict[str, Any],
    *,
    color: bool = False,
    details: bool = False,
    profile: bool = False,
) -> str:
    """An accuracy report (of ``accuracy`` or ``merge``) as a document. Every view but JSON
    shows the names and reasons in it with their control characters escaped (report.visible)."""
    if output_format is not OutputFormat.JSON:
        report = with_visible_text(report)
    if output_format is OutputFormat.TABLE:
        return table.render_accuracy_table(report, color, details, profile=profile)
    if output_format is OutputFormat.JSON:
        return json_documents.render_accuracy_json(report, environment)
    if output_format is OutputFormat.MARKDOWN:
        return markdown.render_accuracy_markdown(report)
    if output_format is OutputFormat.JUNIT:
        return junit.render_accuracy_junit(report)
    if output_format is OutputFormat.GITHUB:
        return github.render_accuracy_github(report)
    assert_never(output_format)


def render_speed(
    report: SpeedReport,
    comparisons: list[BaselineChange] | None,
    max_slowdown: float | None,
    output_format: OutputFormat,
    *,
    color: bool = False,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> str:
    """A speed report, with its baseline comparison (by ``metric``) when there was one, as a
    document."""
    if output_format is not OutputFormat.JSON:
        report, comparisons = with_visible_text((report, comparisons))
    if output_format is OutputFormat.TABLE:
        return table.render_speed_table(report, comparisons, max_slowdown, color, metric)
    if output_format is OutputFormat.JSON:
        return json_documents.render_speed_json(report, comparisons, max_slowdown, metric)
    if output_format is OutputFormat.MARKDOWN:
        return markdown.render_speed_markdown(report, comparisons, metric)
    if output_format is OutputFormat.JUNIT:
        return junit.render_speed_junit(report, comparisons)
    if output_format is OutputFormat.GITHUB:
        return github.render_speed_github(report, comparisons)
    assert_never(output_format)


def render_compare(
    comparison: ReportComparison,
    output_format: OutputFormat,
    old_path: str,
    new_path: str,
    settings: dict[str, Any],
    *,
    color: bool = False,
) -> str:
    """``gelu-audit compare``'s result as a document."""
    if output_format is not OutputFormat.JSON:
        comparison = with_visible_text(comparison)
    if output_format is OutputFormat.TABLE:
        return table.render_compare_table(comparison, color)
    if output_format is OutputFormat.JSON:
        return json_documents.render_compare_json(comparison, old_path, new_path, settings)
    if output_format is OutputFormat.MARKDOWN:
        return markdown.render_compare_markdown(comparison)
    if output_format in (OutputFormat.JUNIT, OutputFormat.GITHUB):
        _not_offered("compare", output_format)
    assert_never(output_format)


def render_paths(
    report: PathsReport, output_format: OutputFormat, environment: dict[str, Any], *, color: bool = False
) -> str:
    """``gelu-audit paths``'s report as a document."""
    if output_format is not OutputFormat.JSON:
        report = with_visible_text(report)
    if output_format is OutputFormat.TABLE:
        return table.render_paths_table(report, color)
    if output_format is OutputFormat.JSON:
        return json_documents.render_paths_json(report, environment)
    if output_format in (OutputFormat.MARKDOWN, OutputFormat.JUNIT, OutputFormat.GITHUB):
        _not_offered("paths", output_format)
    assert_never(output_format)
