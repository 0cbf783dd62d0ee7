"""``gelu-audit compare``: what got worse between two saved reports."""

from __future__ import annotations

import sys
from typing import Any

import click

from gelu_audit.cli.config import config_option
from gelu_audit.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    format_option,
    place_document,
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
    help="Speed: slowdown relative to copy that is not yet a regression.",
)
@format_option(COMPARE_FORMATS)
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
def compare(old: str, new: str, **options: Any) -> None:
    """What got worse and better between two accuracy (or two speed) JSON reports.

    Exit 1 on a regression beyond the allowances (or a case missing from NEW), else 0."""
    from gelu_audit.audits.compare import check_same_kind, compare_accuracy, compare_speed
    from gelu_audit.audits.speed import parse_slowdown
    from gelu_audit.report.envelope import DocumentKind, load_document, reading
    from gelu_audit.report.render import render_compare

    if not options["allow_ulp_increase"] >= 0 or not options["allow_cr_drop"] >= 0:
        raise UsageError("--allow-ulp-increase and --allow-cr-drop must be non-negative")
    max_slowdown = parse_slowdown(options["max_slowdown"])
    kinds = (DocumentKind.ACCURACY, DocumentKind.SPEED)
    old_document, new_document = (load_document(path, *kinds) for path in (old, new))
    check_same_kind(old_document, new_document)
    with reading([old, new]):
        if old_document["schema"] == DocumentKind.SPEED.value:
            comparison = compare_speed(old_document, new_document, max_slowdown)
        else:
            comparison = compare_accuracy(
                old_document, new_document, options["allow_ulp_increase"], options["allow_cr_drop"]
            )
    settings = {
        "allow_ulp_increase": options["allow_ulp_increase"],
        "allow_cr_drop": options["allow_cr_drop"],
        "max_slowdown": max_slowdown,
    }
    color = use_color() and options["output"] is None
    text = render_compare(comparison, options["output_format"], old, new, settings, color=color)
    place_document(text, options["output"])
    sys.exit(EXIT_FAILED if comparison.regressed else EXIT_OK)
