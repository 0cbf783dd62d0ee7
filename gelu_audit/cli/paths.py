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
    device_option,
    document_on_stdout_only,
    dtype_names,
    dtype_option,
    format_option,
    impl_option,
    output_option,
    place_document,
    plugin_options,
    plugin_settings,
    progress_option,
    sampling_option,
    split_list,
    use_color,
)
from gelu_audit.report.output_format import PATHS_FORMATS


@click.command()
@config_option
@dtype_option("One or several (fp16, bf16, fp32, fp64; comma-separated allowed). Default: all four.")
@impl_option("PyTorch implementations to check. Default: every available one.")
@device_option("cpu, cuda or cuda:N. Default: cpu.")
@click.option(
    "--path",
    "paths",
    multiple=True,
    metavar="PATH",
    help="Only these code paths (strided, transposed, offset, size-1, size-7, size-67, in-place, out).",
)
@sampling_option
@click.option("--top", type=int, default=5, show_default=True, help="Differing inputs kept per comparison.")
@format_option(PATHS_FORMATS)
@output_option
@progress_option
@plugin_options
@document_on_stdout_only
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
        samples=options["samples"],
        seed=options["seed"],
        top=options["top"],
        plugin_options=plugin_settings(options),
    )
    report = run_paths(settings, RichProgress(not options["no_progress"]))
    from gelu_audit.report.render import render_paths

    color = use_color() and options["output"] is None
    text = render_paths(report, options["output_format"], collect_environment(), color=color)
    place_document(text, options["output"])
    sys.exit(EXIT_OK if report.passed else EXIT_FAILED)
