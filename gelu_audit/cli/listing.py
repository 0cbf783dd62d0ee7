"""``gelu-audit list``: the implementations, and where each can run here."""

from __future__ import annotations


import click

from gelu_audit.cli.options import (
    split_list,
    use_color,
)


@click.command("list")
@click.option("-d", "--dtype", "dtypes", multiple=True, metavar="DTYPE", help="Only these dtypes.")
@click.option("--device", "devices", multiple=True, metavar="DEVICE", help="Only these devices.")
@click.option("-f", "--format", "output_format", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def list_command(dtypes: tuple[str, ...], devices: tuple[str, ...], output_format: str) -> None:
    """Show the implementations, where each can run here, and why not elsewhere."""
    from gelu_audit.numerics.formats import FORMATS, parse_format
    from gelu_audit.implementations.registry import all_implementations
    from gelu_audit.implementations.devices import device_unavailable_reason, parse_device
    from gelu_audit.implementations.availability import unavailable_reason  # fmt: skip

    formats = [parse_format(d) for d in split_list(dtypes)] or list(FORMATS.values())
    device_names = list(dict.fromkeys(parse_device(d) for d in split_list(devices))) or ["cpu", "cuda:0"]
    rows = []
    for impl in all_implementations():
        for device in device_names:
            for fmt in formats:
                reason = device_unavailable_reason(device) or unavailable_reason(impl, device, fmt)
                rows.append({"implementation": impl.name, "backend": impl.backend,
                             "formula": impl.formula.name, "device": device, "dtype": fmt.name,
                             "available": reason is None, "reason": None if reason is None else str(reason),
                             "description": impl.description, "notes": list(impl.notes)})  # fmt: skip
    if output_format == "json":
        from gelu_audit.report.envelope import DocumentKind, dumps, envelope

        click.echo(dumps({**envelope(DocumentKind.LIST), "implementations": rows}), nl=False)
        return
    from rich.table import Table
    from rich.text import Text

    from gelu_audit.report.table import render_to_string

    table = Table(header_style="bold")
    for header in ("implementation", "formula", "computes", *(f"{d}" for d in device_names)):
        table.add_column(header)
    for impl in all_implementations():
        cells = []
        for device in device_names:
            mine = [r for r in rows if r["implementation"] == impl.name and r["device"] == device]
            lines = [", ".join(r["dtype"] for r in mine if r["available"])] if any(r["available"] for r in mine) else []
            by_reason: dict[str, list[str]] = {}
            for r in mine:
                if not r["available"]:
                    by_reason.setdefault(str(r["reason"]), []).append(r["dtype"])
            everywhere = len(by_reason) == 1 and not lines
            lines += [f"—  {reason}" if everywhere else f"{', '.join(names)}: —  {reason}"
                      for reason, names in by_reason.items()]  # fmt: skip
            cells.append(Text("\n".join(lines)))
        computes = Text(impl.description)
        for note in impl.notes:
            computes.append("\n" + note, style="dim")
        table.add_row(impl.name, impl.formula.name, computes, *cells)
    click.echo(render_to_string([table], use_color()), nl=False)
