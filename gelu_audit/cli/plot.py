"""``gelu-audit plot``: pictures of a saved accuracy report."""

from __future__ import annotations

import click

from gelu_audit.cli.config import config_option
from gelu_audit.cli.options import (
    against_option,
    device_option,
    dtype_names,
    dtype_option,
    impl_option,
    split_list,
)


@click.command()
@config_option
@click.argument("report", metavar="REPORT.json")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE",
    help="FILE.png or FILE.svg; with several dtypes/devices, FILE-<dtype>.png for each.",
)
@dtype_option("Only these dtypes.")
@impl_option("Only these implementations.")
@device_option("Only these devices.")
@against_option("Error against the exact GELU or each implementation's own formula.")
@click.option(
    "--style",
    type=click.Choice(["auto", "lines", "heatmap"]),
    default="auto",
    show_default=True,
    help="lines: error against x overlaid, and histograms; heatmap: a row per implementation, "
    "colour = max ULP per segment of x; auto: a heatmap from 6 implementations on.",
)
def plot(
    report: str,
    output: str,
    dtypes: tuple[str, ...],
    impls: tuple[str, ...],
    devices: tuple[str, ...],
    against: str,
    style: str,
) -> None:
    """Draw ULP error against x and the ULP histograms from a saved `accuracy -f json` report.

    Needs matplotlib (pip install 'gelu-audit[plot]'). Prints the files written."""
    from gelu_audit.implementations.devices import parse_device
    from gelu_audit.report.envelope import DocumentKind, load_document, reading
    from gelu_audit.report.plot import check_plot_path, write_plots

    target = check_plot_path(output)
    document = load_document(report, DocumentKind.ACCURACY)
    chosen_dtypes = list(dtype_names(dtypes))
    chosen_devices = [parse_device(d) for d in split_list(devices)]
    with reading(report):
        written = write_plots(
            document, target, chosen_dtypes, split_list(impls), chosen_devices, against, style
        )
    for path in written:
        click.echo(str(path))
