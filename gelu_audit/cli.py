"""Command line: parses options, runs the core, places the document, sets the exit code.

The only module that prints or exits. Exit codes (contract): 0 all checks pass; 1 a threshold
or gate failed, or an implementation raised/returned garbage; 2 usage, configuration,
environment or internal error, reported in one line (traceback only with GELU_AUDIT_DEBUG=1).
Heavy modules (torch, mpmath, the core) are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from gelu_audit import __version__
from gelu_audit.config import config_option, install_environment_variables
from gelu_audit.errors import GeluAuditError, UsageError
from gelu_audit.progress import ProgressSink

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
ACCURACY_FORMATS = ["table", "json", "markdown", "junit", "github"]
"""table for people; json for machines; markdown (GitHub step summary), junit, github annotations for CI."""


class RichProgress(ProgressSink):
    """Progress bars on stderr, only when stderr is a terminal (CI logs stay clean)."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if not self.enabled:
            yield lambda _steps: None
            return
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
            TimeRemainingColumn,
        )  # fmt: skip

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=self.console, transient=True) as progress:
            task_id = progress.add_task(description, total=total)
            yield lambda steps: progress.advance(task_id, steps)

    def log(self, message: str) -> None:
        click.echo(f"gelu-audit: {message}", err=True)


def fail(message: str) -> NoReturn:
    """One clear line on stderr, exit 2."""
    click.echo(f"gelu-audit: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def use_color() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def place_document(text: str, output: str | None) -> None:
    """Write the one document to stdout, or atomically to ``output``."""
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    path = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as error:
        raise UsageError(f"cannot write {output}: {error.strerror}") from None


def split_list(values: tuple[str, ...]) -> list[str]:
    """Options may be repeated or comma-separated: ``-d fp16 -d bf16`` = ``-d fp16,bf16``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def dtype_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--dtype`` values (aliases accepted) as format names, once each, in the order given."""
    from gelu_audit.formats import parse_format

    return tuple(dict.fromkeys(parse_format(d).name for d in split_list(values)))


def check_sampling(samples: int | None, top: int) -> None:
    """``--samples`` and ``--top`` of the commands that audit inputs."""
    if top < 1:
        raise UsageError("--top must be at least 1")
    if samples is not None and samples < 1:
        raise UsageError(f"--samples must be a positive number, not {samples}")


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="gelu-audit")
def cli() -> None:
    """Audit GELU implementations: ULP accuracy against correctly rounded references, and speed."""


# --- accuracy ---------------------------------------------------------------------------------


def plugin_options(function: Any) -> Any:
    """The options that say what a ``MODULE:FUNCTION`` implementation computes."""
    for option in reversed([
        click.option("--impl-formula", type=click.Choice(["erf", "tanh", "sigmoid"]), default="erf", show_default=True,
                     help="Formula your MODULE:FUNCTION implementations claim."),
        click.option("--impl-backend", type=click.Choice(["torch", "numpy"]), default="torch", show_default=True,
                     help="They receive a torch tensor, or a NumPy array."),
        click.option("--impl-dtypes", default="fp16,bf16,fp32,fp64", show_default=True, metavar="LIST",
                     help="Dtypes they support."),
        click.option("--impl-devices", default="cpu,cuda", show_default=True, metavar="LIST",
                     help="Device kinds they support (cpu, cuda)."),
        click.option("--impl-timeout", type=float, default=60.0, show_default=True, metavar="S",
                     help="Seconds one call may take before the case is an error; 0: no limit."),
    ]):  # fmt: skip
        function = option(function)
    return function


def plugin_settings(options: dict[str, Any]) -> Any:
    """PluginOptions from the ``--impl-*`` options, checked."""
    from gelu_audit.plugins import DEVICE_KINDS, PluginOptions

    devices = split_list((options["impl_devices"],))
    for device in devices:
        if device not in DEVICE_KINDS:
            raise UsageError(f"--impl-devices: unknown device kind {device!r} (choose from cpu, cuda)")
    timeout = options["impl_timeout"]
    if not timeout >= 0:
        raise UsageError(f"--impl-timeout must be a non-negative number of seconds, not {timeout}")
    dtypes = dtype_names((options["impl_dtypes"],))
    if not dtypes or not devices:
        raise UsageError("--impl-dtypes and --impl-devices must name at least one")
    return PluginOptions(options["impl_formula"], options["impl_backend"], dtypes, tuple(devices), timeout or None)


@cli.command()
@config_option
@click.option("-d", "--dtype", "dtypes", multiple=True, metavar="DTYPE",
              help="fp16, bf16, fp32, fp64 (aliases: half, bfloat16, float, double…); "
                   "repeat or comma-separate. Default: all four.")
@click.option("-i", "--impl", "impls", multiple=True, metavar="NAME",
              help="Implementation name (see `gelu-audit list`) or MODULE:FUNCTION (your own); "
                   "repeatable. Default: every available one.")
@click.option("--device", "devices", multiple=True, metavar="DEVICE",
              help="cpu, cuda or cuda:N; repeatable. Default: cpu, and cuda when present.")
@click.option("--samples", type=int, default=None, metavar="N",
              help="Sample size for fp32/fp64 (defaults 20000 and 10000). fp16/bf16 are exhaustive.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fp32/fp64 sample.")
@click.option("--range", "value_range", default=None, metavar="LO:HI",
              help="Only audit inputs in [LO, HI], e.g. -8:8 or :0.")
@click.option("--max-ulp", type=float, default=None, metavar="N",
              help="Gate: exit 1 when any case exceeds N ULP (or has non-finite mismatches).")
@click.option("--against", type=click.Choice(["exact", "formula"]), default="exact", show_default=True,
              help="What --max-ulp gates: the exact GELU, or the formula each implementation claims.")
@click.option("--domain-tolerance", type=float, default=None, metavar="ULP",
              help="ULP tolerance of the accurate domain. Default: --max-ulp, else 2.")
@click.option("-f", "--format", "output_format", type=click.Choice(ACCURACY_FORMATS), default="table",
              show_default=True, help="Document written to stdout (or to --output).")
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
@click.option("--also", multiple=True, metavar="FORMAT=FILE",
              help="Also write the same report as FORMAT (json, markdown, junit, github, table) to FILE; repeatable.")
@click.option("-j", "--jobs", type=int, default=None, metavar="N",
              help="Processes for reference computation. Default: all cores.")
@click.option("--cache-dir", default=None, metavar="DIR",
              help="Reference table cache. Default: $GELU_AUDIT_CACHE_DIR or the user cache dir.")
@click.option("--no-cache", is_flag=True, help="Compute reference tables without reading or writing the cache.")
@click.option("--exhaustive", is_flag=True,
              help="fp32: audit all 2^32 inputs (streamed, fast reference tier; minutes). "
                   "fp16/bf16 are always exhaustive; fp64 cannot be.")
@click.option("--chunk-size", default="1M", show_default=True, metavar="N",
              help="With --exhaustive: points per work item (power of two, 32K to 1M).")
@click.option("--shard", default=None, metavar="K/N",
              help="With --exhaustive: audit only the K-th of N slices; combine with `gelu-audit merge`.")
@click.option("--top", type=int, default=5, show_default=True, help="Worst inputs kept per case.")
@click.option("--details", is_flag=True, help="Table format: list worst inputs and histograms too.")
@click.option("--profile", is_flag=True, help="Table format: add where the error is, per binade of x.")
@click.option("--plot", "plot_file", default=None, metavar="FILE",
              help="Also draw error against x and the histograms to FILE (.png or .svg; needs gelu-audit[plot]).")
@click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
@plugin_options
def accuracy(**options: Any) -> None:
    """Audit accuracy in ULPs against correctly rounded mpmath references."""
    from gelu_audit.accuracy import AuditSettings, Gate, run_audit
    from gelu_audit.environment import collect_environment
    from gelu_audit.exhaustive import parse_chunk_size, parse_shard
    from gelu_audit.inputs import parse_range
    from gelu_audit.reference import default_cache_dir

    dtypes = dtype_names(options["dtypes"])
    gate = None
    if options["max_ulp"] is not None:
        if not options["max_ulp"] >= 0:
            raise UsageError(f"--max-ulp must be a non-negative number, not {options['max_ulp']}")
        gate = Gate(options["max_ulp"], options["against"])
    if options["domain_tolerance"] is not None and not options["domain_tolerance"] >= 0:
        raise UsageError("--domain-tolerance must be a non-negative number")
    if options["jobs"] is not None and options["jobs"] < 1:
        raise UsageError("--jobs must be at least 1")
    check_sampling(options["samples"], options["top"])
    cache_dir = None if options["no_cache"] else Path(options["cache_dir"] or default_cache_dir())
    settings = AuditSettings(
        dtypes=dtypes or AuditSettings.dtypes,
        implementations=tuple(split_list(options["impls"])),
        devices=tuple(split_list(options["devices"])),
        samples=options["samples"],
        seed=options["seed"],
        value_range=parse_range(options["value_range"]) if options["value_range"] else None,
        gate=gate,
        domain_tolerance=options["domain_tolerance"],
        jobs=options["jobs"] or default_jobs(),
        cache_dir=cache_dir,
        top=options["top"],
        exhaustive=options["exhaustive"],
        chunk_size=parse_chunk_size(options["chunk_size"]),
        shard=parse_shard(options["shard"]) if options["shard"] else None,
        plugin_options=plugin_settings(options),
        thresholds=click.get_current_context().meta.get("thresholds", ()),
    )
    if settings.shard and options["output_format"] != "json":
        raise UsageError("--shard writes a partial report for `gelu-audit merge`: add --format json")
    parse_also(options["also"])  # a typo fails now, not after the audit
    plot_target = None
    if options["plot_file"]:
        from gelu_audit.plot import check_plot_path, require_matplotlib

        plot_target = check_plot_path(options["plot_file"])
        require_matplotlib()  # before a long audit, not after it
    report = run_audit(settings, RichProgress(not options["no_progress"]))
    environment = collect_environment()
    if plot_target:
        from gelu_audit.plot import write_plots
        from gelu_audit.report.json_report import accuracy_document

        for path in write_plots(accuracy_document(report, environment), plot_target):
            click.echo(f"gelu-audit: wrote {path}", err=True)
    emit_accuracy(report, environment, options)


def parse_also(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``--also FORMAT=FILE`` pairs, checked before any work is done."""
    pairs = []
    for value in values:
        fmt, _, file = value.partition("=")
        if fmt not in ACCURACY_FORMATS or not file:
            raise UsageError(f"--also {value!r}: expected FORMAT=FILE with FORMAT one of {', '.join(ACCURACY_FORMATS)}")
        pairs.append((fmt, file))
    return pairs


def render_accuracy(report: Any, environment: dict[str, Any], output_format: str, options: dict[str, Any],
                    color: bool) -> str:  # fmt: skip
    if output_format != "table":
        from gelu_audit.report.ci_formats import render_document

        return render_document(report, output_format, environment)
    from gelu_audit.report.table import render_table

    return render_table(report, color, options.get("details", False), profile=options.get("profile", False))


def emit_accuracy(report: Any, environment: dict[str, Any], options: dict[str, Any]) -> NoReturn:
    """Render an accuracy report as asked (and as every --also asks), place it, exit with its verdict:
    one measurement, as many views as CI needs."""
    for output_format, file in parse_also(options.get("also", ())):
        place_document(render_accuracy(report, environment, output_format, options, False), file)
    color = use_color() and options["output"] is None
    place_document(render_accuracy(report, environment, options["output_format"], options, color), options["output"])
    sys.exit(EXIT_OK if report.passed else EXIT_FAILED)


# --- merge ------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.argument("reports", nargs=-1, required=True, metavar="SHARD.json...")
@click.option("-f", "--format", "output_format", type=click.Choice(ACCURACY_FORMATS), default="table",
              show_default=True, help="Document written to stdout (or to --output).")
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
@click.option("--also", multiple=True, metavar="FORMAT=FILE",
              help="Also write the same report as FORMAT (json, markdown, junit, github, table) to FILE; repeatable.")
@click.option("--details", is_flag=True, help="Table format: list worst inputs and histograms too.")
@click.option("--profile", is_flag=True, help="Table format: add where the error is, per binade of x.")
def merge(reports: tuple[str, ...], **options: Any) -> None:
    """Combine the JSON reports of `accuracy --exhaustive --shard K/N` into the whole run's report."""
    from gelu_audit.merge import merge_shards

    report, environment = merge_shards(list(reports))
    emit_accuracy(report, environment, options)


# --- compare ----------------------------------------------------------------------------------


@cli.command()
@config_option
@click.argument("old", metavar="OLD.json")
@click.argument("new", metavar="NEW.json")
@click.option("--allow-ulp-increase", type=float, default=0.0, show_default=True, metavar="ULP",
              help="Accuracy: growth of a case's max ULP error that is not a regression.")
@click.option("--allow-cr-drop", type=float, default=0.0, show_default=True, metavar="POINTS",
              help="Accuracy: drop of the share correctly rounded (percentage points) that is not a regression.")
@click.option("--max-slowdown", default="10%", show_default=True,
              help="Speed: slowdown relative to copy that is not yet a regression.")
@click.option("-f", "--format", "output_format", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True)
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
def compare(old: str, new: str, **options: Any) -> None:
    """What got worse and better between two accuracy (or two speed) JSON reports.

    Exit 1 on a regression beyond the allowances (or a case missing from NEW), else 0."""
    from gelu_audit.compare import compare_accuracy, compare_speed, load_pair
    from gelu_audit.report.compare_report import render_compare_json, render_compare_markdown, render_compare_table
    from gelu_audit.speed import parse_slowdown

    if not options["allow_ulp_increase"] >= 0 or not options["allow_cr_drop"] >= 0:
        raise UsageError("--allow-ulp-increase and --allow-cr-drop must be non-negative")
    max_slowdown = parse_slowdown(options["max_slowdown"])
    old_document, new_document = load_pair(old, new)
    if old_document["schema"] == "gelu-audit.speed":
        comparison = compare_speed(old_document, new_document, max_slowdown)
    else:
        comparison = compare_accuracy(old_document, new_document, options["allow_ulp_increase"], options["allow_cr_drop"])
    settings = {"allow_ulp_increase": options["allow_ulp_increase"], "allow_cr_drop": options["allow_cr_drop"],
                "max_slowdown": max_slowdown}  # fmt: skip
    if options["output_format"] == "json":
        text = render_compare_json(comparison, old, new, settings)
    elif options["output_format"] == "markdown":
        text = render_compare_markdown(comparison)
    else:
        text = render_compare_table(comparison, use_color() and options["output"] is None)
    place_document(text, options["output"])
    sys.exit(EXIT_FAILED if comparison.regressed else EXIT_OK)


# --- plot -------------------------------------------------------------------------------------


@cli.command()
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
    from gelu_audit.implementations import parse_device
    from gelu_audit.plot import check_plot_path, write_plots
    from gelu_audit.report.json_report import ACCURACY_SCHEMA
    from gelu_audit.report.serialize import load_document

    target = check_plot_path(output)
    document = load_document(report, ACCURACY_SCHEMA, (1,))
    chosen_dtypes = list(dtype_names(dtypes))
    chosen_devices = [parse_device(d) for d in split_list(devices)]
    for path in write_plots(document, target, chosen_dtypes, split_list(impls), chosen_devices, against):
        click.echo(str(path))


# --- speed ------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.option("--device", "devices", multiple=True, metavar="DEVICE", help="cpu, cuda or cuda:N. Default: cpu.")
@click.option("-d", "--dtype", "dtypes", multiple=True, metavar="DTYPE", help="One or several. Default: fp32.")
@click.option("-i", "--impl", "impls", multiple=True, metavar="NAME", help="Default: all available built-ins.")
@click.option("--sizes", default="1K,64K,1M,16M", show_default=True, help="Element counts (K/M = 1024/1024²).")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (recorded in the report).")
@click.option("--samples", type=int, default=25, show_default=True, help="Timed samples per case.")
@click.option("--warmup", type=float, default=0.1, show_default=True, help="Warm-up seconds per case.")
@click.option("--baseline", default=None, metavar="FILE", help="A previous `speed --format json` report.")
@click.option("--max-slowdown", default="10%", show_default=True,
              help="With --baseline: the copy-normalised slowdown that counts as a regression.")
@click.option("-f", "--format", "output_format", type=click.Choice(ACCURACY_FORMATS), default="table",
              show_default=True)
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
@click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
@plugin_options
def speed(**options: Any) -> None:
    """Time implementations against a plain copy of the same size (the bandwidth limit)."""
    from gelu_audit.report.serialize import load_document
    from gelu_audit.report.speed_report import (
        SPEED_SCHEMA, SPEED_SCHEMA_VERSION, render_speed_json, render_speed_table,
    )  # fmt: skip
    from gelu_audit.speed import Protocol, SpeedSettings, compare_with_baseline, parse_sizes, parse_slowdown, run_speed

    if options["samples"] < 3:
        raise UsageError("--samples must be at least 3")
    if not options["warmup"] >= 0:
        raise UsageError("--warmup must be a non-negative number of seconds")
    max_slowdown = parse_slowdown(options["max_slowdown"])
    baseline = None
    if options["baseline"]:
        baseline = load_document(options["baseline"], SPEED_SCHEMA, (SPEED_SCHEMA_VERSION,))
    dtypes = dtype_names(options["dtypes"]) or ("fp32",)
    settings = SpeedSettings(
        dtypes=dtypes,
        implementations=tuple(split_list(options["impls"])),
        devices=tuple(split_list(options["devices"])) or ("cpu",),
        sizes=parse_sizes(options["sizes"]),
        threads=options["threads"],
        protocol=Protocol(warmup_s=options["warmup"], samples=options["samples"]),
        plugin_options=plugin_settings(options),
    )
    report = run_speed(settings, RichProgress(not options["no_progress"]))
    comparisons = None if baseline is None else compare_with_baseline(report.cases, baseline["cases"], max_slowdown)
    if options["output_format"] == "json":
        text = render_speed_json(report, comparisons, max_slowdown if baseline else None)
    elif options["output_format"] != "table":
        from gelu_audit.report import speed_report

        render = getattr(speed_report, f"render_speed_{options['output_format']}")
        text = render(report, comparisons)
    else:
        text = render_speed_table(report, comparisons, max_slowdown if baseline else None,
                                  use_color() and options["output"] is None)  # fmt: skip
    place_document(text, options["output"])
    failed = any(c.status == "error" for c in report.cases) or any(
        c.verdict == "regression" for c in comparisons or []
    )
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


# --- paths ------------------------------------------------------------------------------------


@cli.command()
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
@click.option("-f", "--format", "output_format", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically).")
@click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
@plugin_options
def paths(**options: Any) -> None:
    """Check that layouts, sizes and in-place/out= calls of a PyTorch GELU give the same bits.

    Exit 0 when every path agrees with the contiguous call bit for bit, 1 when one differs or
    fails (each difference is reported with its input), 2 on bad usage."""
    from gelu_audit.code_paths import PathsSettings, run_paths
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
    if options["output_format"] == "json":
        from gelu_audit.report.paths_report import render_paths_json

        text = render_paths_json(report, collect_environment())
    else:
        from gelu_audit.report.paths_report import render_paths_table

        text = render_paths_table(report, use_color() and options["output"] is None)
    place_document(text, options["output"])
    sys.exit(EXIT_OK if report.passed else EXIT_FAILED)


# --- list -------------------------------------------------------------------------------------


@cli.command("list")
@click.option("-d", "--dtype", "dtypes", multiple=True, metavar="DTYPE", help="Only these dtypes.")
@click.option("--device", "devices", multiple=True, metavar="DEVICE", help="Only these devices.")
@click.option("-f", "--format", "output_format", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def list_command(dtypes: tuple[str, ...], devices: tuple[str, ...], output_format: str) -> None:
    """Show the implementations, where each can run here, and why not elsewhere."""
    from gelu_audit.formats import FORMATS, parse_format
    from gelu_audit.implementations import (
        all_implementations, device_unavailable_reason, parse_device, unavailable_reason,
    )  # fmt: skip

    formats = [parse_format(d) for d in split_list(dtypes)] or list(FORMATS.values())
    device_names = list(dict.fromkeys(parse_device(d) for d in split_list(devices))) or ["cpu", "cuda:0"]
    rows = []
    for impl in all_implementations():
        for device in device_names:
            for fmt in formats:
                reason = device_unavailable_reason(device) or unavailable_reason(impl, device, fmt)
                rows.append({"implementation": impl.name, "backend": impl.backend,
                             "formula": impl.formula, "device": device, "dtype": fmt.name,
                             "available": reason is None, "reason": reason,
                             "description": impl.description, "notes": list(impl.notes)})  # fmt: skip
    if output_format == "json":
        from gelu_audit.report.serialize import dumps

        click.echo(dumps({"schema": "gelu-audit.list", "schema_version": 1, "implementations": rows}), nl=False)
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
        table.add_row(impl.name, impl.formula, computes, *cells)
    click.echo(render_to_string([table], use_color()), nl=False)


install_environment_variables(cli)


# --- entry point ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: maps every failure to its exit code and one line."""
    try:
        cli.main(args=argv, prog_name="gelu-audit", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.UsageError as error:
        fail(error.format_message().replace("\n", " "))
    except click.exceptions.Abort as abort:  # click turns Ctrl-C into Abort; keep its message
        click.echo(f"gelu-audit: {abort.__cause__ or 'interrupted'}", err=True)
        sys.exit(130)
    except KeyboardInterrupt as interrupt:  # an exhaustive stream says how far it got
        click.echo(f"gelu-audit: {interrupt or 'interrupted'}", err=True)
        sys.exit(130)
    except GeluAuditError as error:
        fail(str(error))
    except click.ClickException as error:
        fail(error.format_message())
    except Exception as error:  # noqa: BLE001 - the one place that turns bugs into exit 2
        if os.environ.get("GELU_AUDIT_DEBUG"):
            traceback.print_exc()
        fail(f"internal error: {type(error).__name__}: {error} (set GELU_AUDIT_DEBUG=1 for a traceback)")
    sys.exit(EXIT_OK)
