"""``gelu-audit speed``: timing against a copy of the same size."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from gelu_audit.cli.config import config_option
from gelu_audit.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    RichProgress,
    check_workers,
    compare_by_option,
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
    say,
    split_list,
    use_color,
)
from gelu_audit.errors import EnvironmentUnavailableError, UsageError


@click.command()
@config_option
@device_option("cpu, cuda or cuda:N. Default: cpu.")
@dtype_option("One or several. Default: fp32.")
@impl_option("Default: all available built-ins.")
@click.option(
    "--sizes", default="1K,64K,1M,16M", show_default=True, help="Element counts (K/M = 1024/1024²)."
)
@click.option("--threads", type=int, default=None, help="CPU threads for torch (recorded in the report).")
@click.option("--samples", type=int, default=25, show_default=True, help="Timed samples per case, at least.")
@click.option(
    "--target",
    default="2%",
    show_default=True,
    metavar="PCT",
    help="Sample each case until the 95% interval of its ratio to copy (of its time per call "
    "with --compare-by time) is within ±PCT, or --max-time is reached; 0 takes exactly --samples.",
)
@click.option(
    "--max-time",
    type=float,
    default=10.0,
    show_default=True,
    metavar="S",
    help="Seconds of sampling per case at most, when --target is not met sooner.",
)
@click.option("--warmup", type=float, default=0.1, show_default=True, help="Warm-up seconds per case.")
@click.option("--baseline", default=None, metavar="FILE", help="A previous `speed --format json` report.")
@click.option(
    "--max-slowdown",
    default="10%",
    show_default=True,
    help="With --baseline: the slowdown (of --compare-by) that counts as a regression.",
)
@compare_by_option("For --target, the table's interval and --baseline")
@format_option()
@output_option
@progress_option
@plugin_options
@document_on_stdout_only
def speed(**options: Any) -> None:
    """Time implementations against a plain copy of the same size (the bandwidth limit)."""
    from gelu_audit.audits.speed import (
        BASELINE_COMPARED_NOTHING,
        BaselineMetric,
        SpeedSettings,
        TimingProtocol,
        check_baseline,
        compare_with_baseline,
        parse_share,
        parse_slowdown,
        run_speed,
    )
    from gelu_audit.cli.options import parse_sizes
    from gelu_audit.implementations.frameworks import keep_jax_builds
    from gelu_audit.report.envelope import DocumentKind, load_document, reading
    from gelu_audit.report.render import render_speed
    from gelu_audit.user_cache import default_cache_dir

    if options["samples"] < 3:
        raise UsageError("--samples must be at least 3")
    if options["threads"] is not None:
        check_workers("--threads", options["threads"])
    if not 0 <= options["warmup"] <= 3600:  # NaN and inf fail too: an endless warm-up is a hang
        raise UsageError(f"--warmup must be a number of seconds from 0 to 3600, not {options['warmup']}")
    max_slowdown = parse_slowdown(options["max_slowdown"])
    target = parse_share(options["target"], "--target", 1)
    if not 0 < options["max_time"] <= 3600:
        raise UsageError(f"--max-time must be a number of seconds from 0 to 3600, not {options['max_time']}")
    metric = BaselineMetric(options["compare_by"])
    baseline = None
    if options["baseline"]:
        baseline = load_document(options["baseline"], DocumentKind.SPEED)
        with reading(options["baseline"]):  # checked now, not after minutes of timing
            check_baseline(baseline["cases"], metric, options["baseline"])
    dtypes = dtype_names(options["dtypes"]) or ("fp32",)
    settings = SpeedSettings(
        dtypes=dtypes,
        implementations=tuple(split_list(options["impls"])),
        devices=tuple(split_list(options["devices"])) or ("cpu",),
        sizes=parse_sizes(options["sizes"]),
        threads=options["threads"],
        protocol=TimingProtocol(
            warmup_s=options["warmup"],
            samples=options["samples"],
            target=target or None,
            target_by=metric,
            time_cap_s=options["max_time"],
        ),
        plugin_options=plugin_settings(options),
    )
    # JAX's compiles happen in untimed warm-ups, but the run waits for them: kept as `accuracy`
    # keeps them, in the same cache directory (speed has no --cache-dir of its own)
    with contextlib.suppress(EnvironmentUnavailableError):  # no cache directory can be named
        keep_jax_builds(default_cache_dir())
    report = run_speed(settings, RichProgress(not options["no_progress"]))
    comparisons = (
        None
        if baseline is None
        else compare_with_baseline(report.cases, baseline["cases"], max_slowdown, metric)
    )
    color = use_color() and options["output"] is None
    allowed = max_slowdown if baseline else None
    text = render_speed(report, comparisons, allowed, options["output_format"], color=color, metric=metric)
    place_document(text, options["output"])
    compared_nothing = comparisons == []  # a baseline, and no case of this run in it: checked nothing
    if compared_nothing:
        say(f"FAIL: {BASELINE_COMPARED_NOTHING}")
    failed = (
        compared_nothing
        or any(c.status == "error" for c in report.cases)
        or any(c.verdict == "regression" for c in comparisons or [])
    )
    sys.exit(EXIT_FAILED if failed else EXIT_OK)
