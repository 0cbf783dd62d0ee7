"""``gelu-audit plot``: pictures of a saved accuracy report."""

from __future__ import annotations


import click

from gelu_audit.cli.config import config_option
from gelu_audit.cli.options import (
    dtype_names,
    split_list,
)


@click.command()
@config_option
@click.argument("report", metavar="REPORT.json")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="FILE.png or FILE.svg; with several dtypes/devices, FILE-<dtype>.png for each.")
@click.option("-d", "--dtype", "dtypes", multiple=True, metavar="DTYPE", help="Only these dtypes.")
@click.option("-i", "--impl", "impls", multiple=True, metavar="NAME", help="Only these implementations.")
@click.option("--device", "devices", multiple=True, metavar="DEVICE", help="Only these devices.")
@click.option("--against", type=click.Choice(["exact", "formula"]), default="exact", show_default=True,
              help="Error against the exact GELU or each implementation's own formula.")
def plot(report: str, output: str, dtypes: tuple[str, ...], impls: tuple[str, ...], devices: tuple[str, ...],
         against: str) -> None:  # fmt: skip
    """Draw ULP error against x and the ULP histograms from a saved `accuracy -f json` report.

    Needs matplotlib (pip install 'gelu-audit[plot]'). Prints the files written."""
    from gelu_audit.implementations.devices import parse_device
    from gelu_audit.report.plot import check_plot_path, write_plots
    from gelu_audit.report.envelope import DocumentKind, load_document

    target = check_plot_path(output)
    document = load_document(report, DocumentKind.ACCURACY)
    chosen_dtypes = list(dtype_names(dtypes))
    chosen_devices = [parse_device(d) for d in split_list(devices)]
    for path in write_plots(document, target, chosen_dtypes, split_list(impls), chosen_devices, against):
        click.echo(str(path))
