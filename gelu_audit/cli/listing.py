"""``gelu-audit list``: the implementations, and where each can run here."""

from __future__ import annotations

import click

from gelu_audit.cli.options import (
    device_option,
    document_on_stdout_only,
    dtype_option,
    format_option,
    place_document,
    split_list,
    use_color,
)
from gelu_audit.report.output_format import LIST_FORMATS, OutputFormat


@click.command("list")
@dtype_option("Only these dtypes.")
@device_option("Only these devices.")
@format_option(LIST_FORMATS)
@click.option(
    "--remeasure",
    is_flag=True,
    help="Measure again what earlier runs measured here and kept in the cache directory's "
    "machine-facts.json (whether torch imports, F.gelu's CPU kernel per dtype), and keep the "
    "new answers.",
)
@document_on_stdout_only
def list_command(
    dtypes: tuple[str, ...], devices: tuple[str, ...], output_format: OutputFormat, remeasure: bool
) -> None:
    """Show the implementations, where each can run here, and why not elsewhere."""
    from gelu_audit.implementations.devices import parse_device
    from gelu_audit.implementations.kept_facts import kept_facts
    from gelu_audit.implementations.registry import availability_rows
    from gelu_audit.numerics.formats import FORMATS, parse_format

    formats = [parse_format(d) for d in split_list(dtypes)] or list(FORMATS.values())
    device_names = list(dict.fromkeys(parse_device(d) for d in split_list(devices))) or ["cpu", "cuda:0"]
    rows = availability_rows(formats, device_names, kept_facts(read=not remeasure))
    if output_format is OutputFormat.JSON:  # each renderer imported only when used: list starts fast
        from gelu_audit.report.json_documents import render_list_json

        place_document(render_list_json(rows), None)
    else:
        from gelu_audit.report.list_table import render_list_table
        from gelu_audit.report.visible import with_visible_text

        place_document(render_list_table(with_visible_text(rows), device_names, use_color()), None)
