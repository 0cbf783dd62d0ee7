"""``gelu-audit accuracy`` and ``gelu-audit merge``: the accuracy audit and its shards' merge."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from gelu_audit.cli.config import config_option
from gelu_audit.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    RichProgress,
    against_option,
    also_option,
    check_output_targets,
    check_sampling,
    check_workers,
    default_jobs,
    details_option,
    device_option,
    document_on_stdout_only,
    dtype_names,
    dtype_option,
    format_option,
    goes_to_stdout,
    impl_option,
    output_option,
    parse_also,
    parse_chunk_size,
    place_document,
    plugin_options,
    plugin_settings,
    profile_option,
    progress_option,
    sampling_option,
    say,
    split_list,
    use_color,
)
from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.report.output_format import OutputFormat

if TYPE_CHECKING:  # pragma: no cover
    from gelu_audit.audits.accuracy import AuditReport
    from gelu_audit.audits.thresholds import Threshold
    from gelu_audit.references.tiers import ReferenceTier


@click.command()
@config_option
@dtype_option(
    "fp16, bf16, fp32, fp64 (aliases: half, bfloat16, float, double…); "
    "repeat or comma-separate. Default: all four."
)
@impl_option(
    "Implementation name (see `gelu-audit list`) or MODULE:FUNCTION (your own); "
    "repeatable. Default: every available one."
)
@device_option("cpu, cuda or cuda:N; repeatable. Default: cpu, and cuda when present.")
@sampling_option
@click.option(
    "--range",
    "value_range",
    default=None,
    metavar="LO:HI",
    help="Only audit inputs in [LO, HI], e.g. -8:8 or :0.",
)
@click.option(
    "--max-ulp",
    type=float,
    default=None,
    metavar="N",
    help="Gate: exit 1 when any case exceeds N ULP (or has non-finite mismatches).",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="NAME",
    help="Gate: exit 1 when any answer breaks the tolerance policy NAME (torch-assert-close, benchdnn, "
    "xnnpack; repeatable) or is a non-finite mismatch. The report then shows every policy per case.",
)
@against_option(
    "What --max-ulp and --policy gate: the exact GELU, or the formula each implementation claims."
)
@click.option(
    "--domain-tolerance",
    type=float,
    default=None,
    metavar="ULP",
    help="ULP tolerance of the accurate domain. Default: --max-ulp, else 2.",
)
@format_option()
@output_option
@also_option
@click.option(
    "-j",
    "--jobs",
    type=int,
    default=None,
    metavar="N",
    help="Processes for reference computation. Default: all cores.",
)
@click.option(
    "--cache-dir",
    default=None,
    metavar="DIR",
    help="Reference table cache. Default: $GELU_AUDIT_CACHE_DIR or the user cache dir.",
)
@click.option(
    "--no-cache", is_flag=True, help="Compute reference tables without reading or writing the cache."
)
@click.option(
    "--exhaustive",
    is_flag=True,
    help="fp32: audit all 2^32 inputs (streamed, fast reference tier; minutes). "
    "fp16/bf16 are always exhaustive; fp64 cannot be.",
)
@click.option(
    "--chunk-size",
    default="1M",
    show_default=True,
    metavar="N",
    help="With --exhaustive: points per work item (power of two, 32K to 1M).",
)
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="With --exhaustive: audit only the K-th of N slices; combine with `gelu-audit merge`.",
)
@click.option(
    "--reference-store",
    default=None,
    metavar="DIR",
    help="With --exhaustive: keep the fp32 references and the statistics of a correctly rounded "
    "answer in DIR (about 160 MB per formula for all of fp32), so a later audit with the same "
    "settings pays mostly for the kernel.",
)
@click.option(
    "--reference-tier",
    default="auto",
    show_default=True,
    metavar="TIER",
    help="Where the fast reference tier's float64 work runs (fp32 and samples): scipy (NumPy, "
    "in the audit's processes), torch (= torch:cpu) or torch:cuda[:N], or auto: torch on the "
    "audit's CUDA device when it runs on one, else scipy. The same correctly rounded references "
    "either way; on the CPU the same bits. Name it for shards that may run on different machines.",
)
@click.option(
    "--pass",
    "audited_pass",
    type=click.Choice(["forward", "backward", "both"]),
    default="forward",
    show_default=True,
    help="What to audit: GELU(x), its gradient GELU′(x) (the backward kernel with grad_output = 1), or both.",
)
@click.option("--top", type=int, default=5, show_default=True, help="Worst inputs kept per case.")
@details_option
@profile_option
@click.option(
    "--plot",
    "plot_file",
    default=None,
    metavar="FILE",
    help="Also draw error against x and the histograms to FILE (.png or .svg; needs gelu-audit[plot]).",
)
@progress_option
@plugin_options
@document_on_stdout_only
def accuracy(**options: Any) -> None:
    """Audit accuracy in ULPs against correctly rounded mpmath references."""
    from gelu_audit.audits.accuracy import AuditSettings, run_audit
    from gelu_audit.audits.exhaustive import parse_shard
    from gelu_audit.audits.policies import policy_named
    from gelu_audit.audits.thresholds import Threshold
    from gelu_audit.environment import collect_environment
    from gelu_audit.implementations.frameworks import keep_jax_builds
    from gelu_audit.numerics.formulas import Pass
    from gelu_audit.numerics.inputs import parse_range
    from gelu_audit.user_cache import default_cache_dir

    dtypes = dtype_names(options["dtypes"])
    gate = None
    if options["max_ulp"] is not None:
        if not options["max_ulp"] >= 0:
            raise UsageError(f"--max-ulp must be a non-negative number, not {options['max_ulp']}")
        gate = Threshold.gate(options["max_ulp"], options["against"])
    if options["domain_tolerance"] is not None and not options["domain_tolerance"] >= 0:
        raise UsageError("--domain-tolerance must be a non-negative number")
    if options["jobs"] is not None:
        check_workers("--jobs", options["jobs"])
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
        reference_store=Path(options["reference_store"]) if options["reference_store"] else None,
        plugin_options=plugin_settings(options),
        thresholds=click.get_current_context().meta.get("thresholds", ())
        + tuple(
            Threshold(
                policy=policy_named(name).name, against=options["against"], max_nonfinite=0, is_gate=True
            )
            for name in split_list(options["policies"])
        ),
        passes=tuple(Pass) if options["audited_pass"] == "both" else (Pass(options["audited_pass"]),),
        reference_tier=reference_tier_option(options["reference_tier"]),
    )
    if settings.shard and options["output_format"] is not OutputFormat.JSON:
        raise UsageError("--shard writes a partial report for `gelu-audit merge`: add --format json")
    parse_also(options["also"], options["output"])  # a typo fails now, not after the audit
    plot_target = None
    if options["plot_file"]:
        from gelu_audit.report.plot import check_plot_path, require_matplotlib

        plot_target = check_plot_path(options["plot_file"])
        require_matplotlib()  # before a long audit, not after it
    keep_jax_builds(cache_dir)
    report = run_audit(settings, RichProgress(not options["no_progress"]), use_helper=True)
    environment = collect_environment()
    for threshold in unmatched_thresholds(report):
        say(f"warning: {threshold.describe()} matched no case of this run")
    place_accuracy(report, environment, options)  # first: a plot that cannot be drawn keeps the report
    if plot_target:
        draw_plots(report, environment, plot_target)
    exit_with_verdict(report)


def unmatched_thresholds(report: AuditReport) -> list[Threshold]:
    """The configured thresholds that selected no case, run or skipped: most likely a typo in a
    selector, which would otherwise drop the limit without a word. (A warning, not an error: a
    shared configuration may name kernels or devices a given run does not have.)"""
    cases = [(c.implementation, c.dtype, c.device, c.pass_.value) for c in report.results]
    cases += [(s.implementation, s.dtype, s.device, s.pass_.value) for s in report.skipped]
    return [t for t in report.settings.thresholds if not any(t.matches(*case) for case in cases)]


def draw_plots(report: AuditReport, environment: dict[str, Any], target: Path) -> None:
    """``--plot``, once the report is written. An audit with nothing to draw (every case failed
    or was skipped) is said in one line and keeps its verdict; a file that cannot be written is
    exit 2, saying the report was written."""
    from gelu_audit.report.json_documents import accuracy_document
    from gelu_audit.report.plot import write_plots

    try:
        written = write_plots(accuracy_document(report, environment), target)
    except UsageError as nothing:
        say(f"no plot: {nothing}")
        return
    except EnvironmentUnavailableError as error:
        raise EnvironmentUnavailableError(f"{error} (the report itself was written)") from None
    for path in written:
        say(f"wrote {path}")


def reference_tier_option(text: str) -> ReferenceTier | None:
    """``--reference-tier``: None for ``auto`` (the audit chooses by its devices)."""
    from gelu_audit.references.tiers import parse_tier

    if text.strip().lower() == "auto":
        return None
    try:
        return parse_tier(text)
    except ValueError as error:
        raise UsageError(f"--reference-tier: {error}") from None


def emit_accuracy(report: AuditReport, environment: dict[str, Any], options: dict[str, Any]) -> NoReturn:
    """Render an accuracy report as asked (and as every --also asks), place it, exit with its verdict:
    one measurement, as many views as CI needs."""
    place_accuracy(report, environment, options)
    exit_with_verdict(report)


def exit_with_verdict(report: AuditReport) -> NoReturn:
    """Exit 0 or 1 by the report's verdict; a gate that had no case to check says so on stderr
    too, where a CI log shows it beside the exit code."""
    if report.gated_nothing:
        say(f"FAIL: {report.GATED_NOTHING}")
    sys.exit(EXIT_OK if report.passed else EXIT_FAILED)


def place_accuracy(report: AuditReport, environment: dict[str, Any], options: dict[str, Any]) -> None:
    """Render the report in each format asked and place each document."""
    from gelu_audit.report.render import render_accuracy

    views = {"details": options.get("details", False), "profile": options.get("profile", False)}
    documents = parse_also(options.get("also", ()), options["output"])
    documents.append((options["output_format"], options["output"]))
    # the --also views, then -o's document, and standard output's last: a view that cannot be
    # written stops the run before -o's file is replaced, and a full pipe loses no file
    for output_format, file in sorted(documents, key=lambda document: goes_to_stdout(document[1])):
        color = use_color() and file is None
        place_document(render_accuracy(report, output_format, environment, color=color, **views), file)


@click.command()
@config_option
@click.argument("reports", nargs=-1, required=True, metavar="SHARD.json...")
@format_option()
@output_option
@also_option
@details_option
@profile_option
def merge(reports: tuple[str, ...], **options: Any) -> None:
    """Combine the JSON reports of `accuracy --exhaustive --shard K/N` into the whole run's report."""
    from gelu_audit.audits.merge import merge_shards
    from gelu_audit.report.envelope import DocumentKind, load_document, reading

    check_output_targets(options["output"], options["also"])
    shards = [(path, load_document(path, DocumentKind.ACCURACY)) for path in reports]
    with reading(list(reports)):
        report, environment = merge_shards(shards)
    emit_accuracy(report, environment, options)
