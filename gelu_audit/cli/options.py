"""What every command shares: exit codes, progress, where the document goes, option parsing.

May import: everything below the command line (lazily, so ``--help`` stays instant).
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from gelu_audit.environment import usable_cpus
from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.numerics.formulas import FORMULA_NAMES
from gelu_audit.progress import ProgressSink
from gelu_audit.report.output_format import ALL_FORMATS, OutputFormat, names
from gelu_audit.report.visible import visible
from gelu_audit.standard_output import (
    document_is_terminal,
    document_stream,
    names_standard_output,
    reserved_for_the_document,
)

if TYPE_CHECKING:  # pragma: no cover
    from gelu_audit.implementations.plugins import PluginOptions

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


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
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as progress:
            task_id = progress.add_task(description, total=total)
            yield lambda steps: progress.advance(task_id, steps)

    def log(self, message: str) -> None:
        say(message)


def say(message: str) -> None:
    """One line on stderr, ``gelu-audit: ...``: names and messages from plugins, kernels and
    configuration files in it are shown (report.visible), never acted on by the terminal, and
    its line breaks are spaces."""
    click.echo(f"gelu-audit: {' '.join(visible(message).splitlines())}", err=True)


def fail(message: str) -> NoReturn:
    """One clear line on stderr, exit 2."""
    say(f"error: {message}")
    sys.exit(EXIT_ERROR)


def use_color() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return document_is_terminal() and "NO_COLOR" not in os.environ


def place_document(text: str, output: str | None) -> None:
    """Write the one document to stdout, or atomically to ``output``.

    A file is written beside its target and renamed over it, so a reader never sees half a
    document and a failed write (full disk, size limit, missing or read-only directory) leaves
    an existing target as it was. A new file gets the permissions of a plain write under the
    umask, not mkstemp's 0600: a CI artefact server or a colleague must be able to read it; a
    file replaced keeps its own (a report someone made private, or shared wider, stays so). Its
    other hard links, if any, keep the old document: a rename cannot reach them.

    A rename replaces a directory entry, so two kinds of target are written otherwise: one that
    is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO) is written in place, as a
    shell's ``>`` would, never replaced by a file; a symbolic link is followed, and the file it
    names is the one replaced, so the link stays a link."""
    if output is None or goes_to_stdout(output):
        _write_stdout(text)  # (descriptor 1 is stderr while kernels may print: the names would say so)
        return
    try:
        target = os.stat(output)  # follows links
    except OSError:
        target = None
    if target is not None and not stat.S_ISREG(target.st_mode) and not stat.S_ISDIR(target.st_mode):
        _write_in_place(text, output)
        return
    path = _replaced_path(output)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
        replaced = target is not None and stat.S_ISREG(target.st_mode)  # keeps its own permissions
        os.fchmod(fd, stat.S_IMODE(target.st_mode) if replaced and target else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise EnvironmentUnavailableError(f"cannot write {output}: {error.strerror}") from None


def _replaced_path(output: str) -> Path:
    """The file a write to ``output`` replaces: the one a symbolic link names, so the link stays."""
    return Path(os.path.realpath(output)) if os.path.islink(output) else Path(output)


def _output_targets(output: str | None, also: tuple[str, ...]) -> list[str | None]:
    """``-o``'s target (None: standard output) and each ``--also FORMAT=FILE``'s file."""
    return [output, *(value.partition("=")[2] for value in also)]


def check_output_targets(output: str | None, also: tuple[str, ...] = ()) -> None:
    """:func:`check_writable` for ``-o``'s file and every ``--also`` file, before the work."""
    for file in _output_targets(output, also):
        if file and not goes_to_stdout(file):
            check_writable(file)


def check_writable(output: str) -> None:
    """Refuse, before an audit that may take hours, a file :func:`place_document` could not
    write: in a folder that does not exist or is not writable, or a folder itself. (A write can
    still fail later, a full disk; then it is exit 2 and the previous file is kept.)"""
    try:
        target = os.stat(output)  # follows links
    except OSError:
        target = None
    if target is not None and stat.S_ISDIR(target.st_mode):
        raise EnvironmentUnavailableError(f"cannot write {output}: Is a directory")
    if target is not None and not stat.S_ISREG(target.st_mode):
        return  # a device or FIFO, written in place
    folder = _replaced_path(output).parent
    if not folder.is_dir():
        raise EnvironmentUnavailableError(f"cannot write {output}: No such file or directory ({folder})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EnvironmentUnavailableError(f"cannot write {output}: Permission denied ({folder})")


def _write_in_place(text: str, output: str) -> None:
    """The document written straight into a device, FIFO or the like (nothing to replace)."""
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise EnvironmentUnavailableError(f"cannot write {output}: {error.strerror}") from None


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


STDOUT_CLOSED = "cannot write the document to standard output: it is closed (give -o FILE)"


def _write_stdout(text: str) -> None:
    """The document to stdout, flushed here, so that a full disk or a closed pipe is one clear
    line (exit 2) instead of an error when the interpreter flushes at exit."""
    stream = document_stream()
    if stream is None:  # started with standard output closed (`>&-`)
        raise EnvironmentUnavailableError(STDOUT_CLOSED)
    try:
        stream.write(text)
        stream.flush()
    except OSError as error:
        # Nothing more can reach this stdout: point it at /dev/null so the exit does not retry.
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
        os.close(devnull)
        raise EnvironmentUnavailableError(
            f"cannot write the document to standard output: {error.strerror}"
        ) from None


def document_on_stdout_only(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command that runs kernels or loads plugins: what they print goes to stderr while it
    runs, and standard output gets the one document (:mod:`gelu_audit.standard_output`).
    Applied below click's decorators, so ``--help`` still prints to stdout.

    A document bound for a standard output that was closed (``>&-``) is refused before the
    command runs, not after an audit whose report has nowhere to go."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        output, also = kwargs.get("output"), kwargs.get("also", ())
        if document_stream() is None and any(goes_to_stdout(file) for file in _output_targets(output, also)):
            raise EnvironmentUnavailableError(STDOUT_CLOSED)
        check_output_targets(output, also)
        with reserved_for_the_document():
            return command(*args, **kwargs)

    return run


def split_list(values: tuple[str, ...]) -> list[str]:
    """Options may be repeated or comma-separated: ``-d fp16 -d bf16`` = ``-d fp16,bf16``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


LIST_OPTIONS = frozenset({"dtypes", "impls", "devices", "policies", "paths"})
"""The repeatable options whose values are comma-separated lists (split_list reads them)."""


def names_nothing(param: click.Parameter, value: object) -> bool:
    """Whether a value given for a text option gives it nothing: blank, or for a list option
    only commas, or (from the configuration file) an empty list."""
    if isinstance(value, (list, tuple)):
        return not value or any(names_nothing(param, item) for item in value)
    if not isinstance(value, str):
        return False
    return not split_list((value,)) if param.name in LIST_OPTIONS else not value.strip()


def refuse_empty_values(group: click.Group) -> None:
    """Make an empty value given for a text option a usage error (one line, exit 2) instead of
    the option's default: ``--baseline "$BASE"`` or ``-d "$DTYPES"`` with the variable unset must
    not turn into a run without the baseline's gate, or over every dtype.

    On the command line an empty value is also how one run clears a value that the
    configuration file or an environment variable sets (``--baseline ''`` against ``baseline =
    "base.json"``): there it gives the built-in default, and is refused only where there is
    nothing to clear. An environment variable that names nothing (``GELU_AUDIT_ACCURACY_DTYPE=,``)
    is refused, naming the variable (click ignores an empty one itself);
    config.command_defaults refuses the same in the configuration file, naming the file."""
    commandline, environment = click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT

    def configured(ctx: click.Context, param: click.Option) -> bool:
        variable = param.envvar if isinstance(param.envvar, str) else None
        in_file = param.name in (ctx.default_map or {})
        return in_file or bool(variable and os.environ.get(variable, "").strip())

    def built_in_default(ctx: click.Context, param: click.Option) -> Any:
        if param.multiple:
            return ()
        default = param.default
        return param.type_cast_value(ctx, default) if isinstance(default, str) else None

    def checked(callback: Callable[..., Any] | None) -> Callable[..., Any]:
        def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
            source = ctx.get_parameter_source(param.name) if param.name else None
            if isinstance(param, click.Option) and names_nothing(param, value):
                given = [v for v in (value if param.multiple else ()) if not names_nothing(param, v)]
                if source is commandline and configured(ctx, param) and not param.required:
                    # the configured value is dropped; values given beside the empty one stay
                    value = tuple(given) if given else built_in_default(ctx, param)
                elif source is commandline:
                    values = value if param.multiple else (value,)
                    empty = next((v for v in values if names_nothing(param, v)), "")
                    raise UsageError(
                        f"{max(param.opts, key=len)}: {empty!r} is an empty value; leave the option out "
                        "for its default (an empty value clears only one set by the configuration file "
                        "or the environment)"
                    )
                elif source is environment:
                    raw = os.environ.get(str(param.envvar), "")
                    raise UsageError(f"{param.envvar}={raw!r} is an empty value; unset it for the default")
            return callback(ctx, param, value) if callback else value

        return check

    for command in group.commands.values():
        for param in command.params:
            if (
                isinstance(param, click.Option)
                and not param.is_flag
                and isinstance(param.type, click.types.StringParamType)
            ):
                param.callback = checked(param.callback)


def dtype_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--dtype`` values (aliases accepted) as format names, once each, in the order given."""
    from gelu_audit.numerics.formats import parse_format

    return tuple(dict.fromkeys(parse_format(d).name for d in split_list(values)))


MAX_SAMPLES = 1 << 32
"""The largest ``--samples``: as many as fp32 has inputs (fp64's sample is held in memory)."""


def check_sampling(samples: int | None, top: int) -> None:
    """``--samples`` and ``--top`` of the commands that audit inputs."""
    if top < 1:
        raise UsageError("--top must be at least 1")
    if samples is not None and samples < 1:
        raise UsageError(f"--samples must be a positive number, not {samples}")
    if samples is not None and samples > MAX_SAMPLES:
        raise UsageError(
            f"--samples {samples:,} is more than {MAX_SAMPLES:,} (every fp32 input: -d fp32 --exhaustive)"
        )


def check_workers(option: str, count: int) -> None:
    """``--jobs`` (processes) and ``--threads``: at least 1, and at most 4 per core."""
    if count < 1:
        raise UsageError(f"{option} must be at least 1")
    if count > 4 * default_jobs():
        raise UsageError(f"{option} {count} is more than 4 per core here ({default_jobs()} cores)")


def default_jobs() -> int:
    return usable_cpus()


def plugin_options(function: Any) -> Any:
    """The options that say what a ``MODULE:FUNCTION`` implementation computes."""
    for option in reversed(
        [
            click.option(
                "--impl-formula",
                type=click.Choice(FORMULA_NAMES),
                default="erf",
                show_default=True,
                help="Formula your MODULE:FUNCTION implementations claim.",
            ),
            click.option(
                "--impl-backend",
                type=click.Choice(["torch", "numpy"]),
                default="torch",
                show_default=True,
                help="They receive a torch tensor, or a NumPy array.",
            ),
            click.option(
                "--impl-dtypes",
                default="fp16,bf16,fp32,fp64",
                show_default=True,
                metavar="LIST",
                help="Dtypes they support.",
            ),
            click.option(
                "--impl-devices",
                default="cpu,cuda",
                show_default=True,
                metavar="LIST",
                help="Device kinds they support (cpu, cuda).",
            ),
            click.option(
                "--impl-timeout",
                type=float,
                default=60.0,
                show_default=True,
                metavar="S",
                help="Seconds one call may take before the case is an error; 0: no limit.",
            ),
            click.option(
                "--isolate",
                is_flag=True,
                default=False,
                help="Run each plugin in a child process of its own: a crash (segfault, abort, "
                "exit, out of memory) is its case's error and the audit goes on.",
            ),
        ]
    ):
        function = option(function)
    return function


def plugin_settings(options: dict[str, Any]) -> PluginOptions:
    """PluginOptions from the ``--impl-*`` options, checked."""
    from gelu_audit.implementations.plugins import DEVICE_KINDS, PluginOptions

    devices = split_list((options["impl_devices"],))
    for device in devices:
        if device not in DEVICE_KINDS:
            raise UsageError(f"--impl-devices: unknown device kind {device!r} (choose from cpu, cuda)")
    timeout = options["impl_timeout"]
    if not 0 <= timeout < 1e6:  # NaN and inf fail too: the thread join takes no infinite time
        raise UsageError(f"--impl-timeout must be a finite, non-negative number of seconds, not {timeout}")
    dtypes = dtype_names((options["impl_dtypes"],))
    if not dtypes or not devices:
        raise UsageError("--impl-dtypes and --impl-devices must name at least one")
    return PluginOptions(
        options["impl_formula"],
        options["impl_backend"],
        dtypes,
        tuple(devices),
        timeout or None,
        isolate=bool(options["isolate"]),
    )


def parse_size(text: str, option: str, example: str) -> int:
    """``1K``, ``64K``, ``1M``, ``2G`` (powers of 1024) or a plain positive integer."""
    item = str(text).strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(item[-1:], 1)
    digits = item[:-1] if scale > 1 else item
    if not digits.isdigit() or int(digits) < 1:
        raise UsageError(f"malformed size {item!r} in {option}: use e.g. {example}")
    return int(digits) * scale


MAX_SPEED_SIZE = 1 << 33
"""The largest ``--sizes`` element count (8G): beyond it no device holds input, output and copy."""


def parse_sizes(text: str) -> tuple[int, ...]:
    """``--sizes 1K,64K,1M,16M``."""
    # once each: "1K,1024" would time the same case twice
    sizes = tuple(dict.fromkeys(parse_size(item, "--sizes", "1K,64K,1M,16M") for item in text.split(",")))
    for size in sizes:
        if size > MAX_SPEED_SIZE:
            raise UsageError(f"--sizes: {size:,} elements is more than the largest, {MAX_SPEED_SIZE >> 30}G")
    return sizes


def parse_chunk_size(text: str) -> int:
    """``--chunk-size 256K``: a power of two from 32K to 1M (see ``check_chunk_size``)."""
    from gelu_audit.audits.exhaustive import check_chunk_size

    try:
        size = parse_size(text, "--chunk-size", "256K")
    except UsageError:
        size = 0
    return check_chunk_size(size, text)


def format_option(
    formats: tuple[OutputFormat, ...] = ALL_FORMATS,
    text: str = "Document written to stdout (or to --output).",
) -> Callable[[Any], Any]:
    """``-f/--format``: one of ``formats``, handed to the command as an :class:`OutputFormat`."""

    def to_format(ctx: click.Context, param: click.Parameter, value: str) -> OutputFormat:
        return OutputFormat(value)

    return click.option(
        "-f",
        "--format",
        "output_format",
        type=click.Choice(names(formats)),
        default="table",
        show_default=True,
        callback=to_format,
        help=text,
    )


def parse_also(values: tuple[str, ...], output: str | None = None) -> list[tuple[OutputFormat, str]]:
    """``--also FORMAT=FILE`` pairs, checked before any work is done: each names a format and a
    file of its own (two documents written to one file would leave only the last; ``output``,
    ``-o``'s file, counts too; ``-`` is standard output, which carries one document)."""
    pairs = []
    known = names(ALL_FORMATS)
    taken: dict[str, str] = {}
    if output is not None:
        taken[_same_file_key(output)] = "-o"
    for value in values:
        fmt, _, file = value.partition("=")
        if fmt not in known or not file:
            raise UsageError(f"--also {value!r}: expected FORMAT=FILE with FORMAT one of {', '.join(known)}")
        key = _same_file_key(file)
        if key in taken or (key == "-" and output is None):
            other = taken.get(key, "the report itself")
            raise UsageError(
                f"--also {value!r}: {file!r} is already written by {other}; give each view a file of its own"
            )
        taken[key] = f"--also {value!r}"
        pairs.append((OutputFormat(fmt), file))
    return pairs


def _same_file_key(file: str) -> str:
    """What two spellings of one output share: ``-``, or the path with links resolved."""
    return "-" if goes_to_stdout(file) else os.path.realpath(file)


def goes_to_stdout(output: str | None) -> bool:
    """No ``-o``, ``-o -``, or a path that names standard output (``/dev/stdout``, a link to it)."""
    return output is None or output == "-" or names_standard_output(output)


# --- options several commands share (one definition each, so they read and behave alike) -----

Decorator = Callable[[Any], Any]


def dtype_option(text: str) -> Decorator:
    """``-d/--dtype``: repeatable, comma-separated allowed, aliases accepted."""
    return click.option("-d", "--dtype", "dtypes", multiple=True, metavar="DTYPE", help=text)


def impl_option(text: str) -> Decorator:
    """``-i/--impl``: names from ``gelu-audit list``, or MODULE:FUNCTION."""
    return click.option("-i", "--impl", "impls", multiple=True, metavar="NAME", help=text)


def device_option(text: str) -> Decorator:
    """``--device``: cpu, cuda or cuda:N."""
    return click.option("--device", "devices", multiple=True, metavar="DEVICE", help=text)


def against_option(text: str) -> Decorator:
    """``--against exact|formula``: the exact GELU, or the formula each implementation claims."""
    return click.option(
        "--against", type=click.Choice(["exact", "formula"]), default="exact", show_default=True, help=text
    )


output_option = click.option(
    "-o", "--output", default=None, metavar="FILE", help="Write the document to FILE (atomically)."
)
progress_option = click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
also_option = click.option(
    "--also",
    multiple=True,
    metavar="FORMAT=FILE",
    help="Also write the same report as FORMAT (json, markdown, junit, github, table) to FILE; repeatable.",
)
details_option = click.option(
    "--details", is_flag=True, help="Table format: list worst inputs and histograms too."
)
profile_option = click.option(
    "--profile", is_flag=True, help="Table format: add where the error is, per binade of x."
)
sampling_options = (
    click.option(
        "--samples",
        type=int,
        default=None,
        metavar="N",
        help="Sample size for fp32/fp64 (defaults 20000 and 10000). fp16/bf16 are exhaustive.",
    ),
    click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed of the fp32/fp64 sample.",
    ),
)
"""``--samples N --seed S``: the stratified sample of fp32/fp64 (checked by :func:`check_sampling`)."""


def sampling_option(function: Any) -> Any:
    """Both :data:`sampling_options`, in order."""
    for option in reversed(sampling_options):
        function = option(function)
    return function


def compare_by_option(what: str) -> Decorator:
    """``--compare-by ratio|time``: what speed cases are compared by (``BaselineMetric``)."""
    return click.option(
        "--compare-by",
        type=click.Choice(["ratio", "time"]),
        default="ratio",
        show_default=True,
        help=f"{what}: compare per-sample ratios to copy (steady across machines) or times per call "
        "(tighter on one machine, whose copy may drift).",
    )
