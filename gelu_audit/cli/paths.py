"""``gelu-audit paths``: do layouts, sizes and APIs change the bits?"""

from __future__ import annotations

import sys
from typing import Any

import click

from gelu_audit.cli.config import config_option
from gelu_audit.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    RichProgress,
    check_sampling,
    dtype_names,
    format_option,
    place_document,
    plugin_options,
    plugin_settings,
    split_list,
    use_color,
)
from gelu_audit.report.output_format import PATHS_FORMATS


@click.command()
@config_option
@click.option("-d", "--dtype", "dtypes", multiple=True, metavar="DTYPE",
              help="One or several (fp16, bf16, fp32, fp64; comma-separated allowed). Default: all four.")
@click.option("-i", "--impl", "impls", multiple=True, metavar="NAME",
              help="PyTorch implementations to check. Default: every available one.")
@click.option("--device", "devices", multiple=True, metavar="DEVICE", help="cpu, cuda or cuda:N. Default: cpu.")
@click.option("--path", "paths", multiple=True, metavar="PATH",
              help="Only these code paths (strided, transposed, offset, size-1, size-7, size-67, in-place, out).")
@click.option("--samples", type=int, default=None, metavar="N",
              help="fp32/fp64 sample size (default 20000/10000); fp16/bf16 are exhaustive.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fp32/fp64 sample.")
@click.option("--top", type=int, default=5, show_default=True, help="Differing inputs kept per comparison.")
@format_option(PATHS_FORMATS)
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
@click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
@plugin_options
def paths(**options: Any) -> None:
    """Check that layouts, sizes and in-place/out= calls of a PyTorch GELU give the same bits.

    Exit 0 when every path agrees with the contiguous call bit for bit, 1 when one differs or
    fails (each difference is reported with its input), 2 on bad usage."""
    from gelu_audit.audits.paths import PathsSettings, run_paths
    from gelu_audit.environment import collect_environment
    check_sampling(options["samples"], options["top"])
    dtypes = dtype_names(options["dtypes"])
    settings = PathsSettings(
        dtypes=dtypes or PathsSettings.dtypes,
        implementations=tuple(split_list(options["impls"])),
        devices=tuple(split_list(options["devices"])) or ("cpu",),
        paths=tuple(split_list(options["paths"])),
        samples=options["samples"], seed=options["seed"], top=options["top"],
        plugin_options=plugin_settings(options),
    )  # fmt: skip
    report = run_paths(settings, RichProgress(not options["no_progress"]))
    from gelu_audit.report.render import render_paths

    color = use_color() and options["output"] is None
    text = render_paths(report, options["output_format"], collect_environment(), color=color)
    place_document(text, options["output"])
    sys.exit(EXIT_OK if report.passed else EXIT_FAILED)
