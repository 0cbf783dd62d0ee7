"""``gelu-audit compare``: what got worse between two saved reports."""

from __future__ import annotations

import sys
from typing import Any

import click

from gelu_audit.cli.config import config_option
from gelu_audit.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    check_output_targets,
    compare_by_option,
    format_option,
    place_document,
    say,
    use_color,
)
from gelu_audit.errors import UsageError
from gelu_audit.report.output_format import COMPARE_FORMATS


@click.command()
@config_option
@click.argument("old", metavar="OLD.json")
@click.argument("new", metavar="NEW.json")
@click.option(
    "--allow-ulp-increase",
    type=float,
    default=0.0,
    show_default=True,
    metavar="ULP",
    help="Accuracy: growth of a case's max ULP error that is not a regression.",
)
@click.option(
    "--allow-cr-drop",
    type=float,
    default=0.0,
    show_default=True,
    metavar="POINTS",
    help="Accuracy: drop of the share correctly rounded (percentage points) that is not a regression.",
)
@click.option(
    "--max-slowdown",
    default="10%",
    show_default=True,
    help="Speed: slowdown (of --compare-by) that is not yet a regression.",
)
@compare_by_option("Speed")
@format_option(COMPARE_FORMATS)
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
def compare(old: str, new: str, **options: Any) -> None:
    """What got worse and better between two accuracy (or two speed) JSON reports.

    Exit 1 on a regression beyond the allowances (or a case missing from NEW), else 0."""
    from gelu_audit.audits.compare import check_same_kind, compare_accuracy, compare_speed
    from gelu_audit.audits.speed import BaselineMetric, check_baseline, parse_slowdown
    from gelu_audit.report.envelope import DocumentKind, load_document, reading
    from gelu_audit.report.render import render_compare

    check_output_targets(options["output"])
    if not options["allow_ulp_increase"] >= 0 or not options["allow_cr_drop"] >= 0:
        raise UsageError("--allow-ulp-increase and --allow-cr-drop must be non-negative")
    max_slowdown = parse_slowdown(options["max_slowdown"])
    metric = BaselineMetric(options["compare_by"])
    kinds = (DocumentKind.ACCURACY, DocumentKind.SPEED)
    old_document, new_document = (load_document(path, *kinds) for path in (old, new))
    check_same_kind(old_document, new_document)
    with reading([old, new]):
        if old_document["schema"] == DocumentKind.SPEED.value:
            for path, document in ((old, old_document), (new, new_document)):
                with reading(path):
                    check_baseline(document["cases"], metric, path)
            comparison = compare_speed(old_document, new_document, max_slowdown, metric)
        else:
            comparison = compare_accuracy(
                old_document, new_document, options["allow_ulp_increase"], options["allow_cr_drop"]
            )
    settings = {
        "allow_ulp_increase": options["allow_ulp_increase"],
        "allow_cr_drop": options["allow_cr_drop"],
        "max_slowdown": max_slowdown,
        "compare_by": metric.value,
    }
    color = use_color() and options["output"] is None
    text = render_compare(comparison, options["output_format"], old, new, settings, color=color)
    place_document(text, options["output"])
    if comparison.compared_nothing:
        say(f"FAIL: {comparison.COMPARED_NOTHING}")
    sys.exit(EXIT_FAILED if comparison.regressed or comparison.compared_nothing else EXIT_OK)
