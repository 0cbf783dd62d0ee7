"""The ``gelu-audit`` command group and its entry point, which maps every failure to an exit code.

The command line is the only layer that prints or exits; one module per command beside this
one. Exit codes (contract): 0 all checks pass; 1 a threshold or gate failed, or an
implementation raised/returned garbage; 2 usage, configuration, environment or internal error,
reported in one line (traceback only with GELU_AUDIT_DEBUG=1).
Heavy modules (torch, mpmath, the core) are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback

import click

from gelu_audit import __version__
from gelu_audit.cli.accuracy import accuracy, merge
from gelu_audit.cli.compare import compare
from gelu_audit.cli.config import install_environment_variables
from gelu_audit.cli.listing import list_command
from gelu_audit.cli.options import EXIT_OK, fail, refuse_empty_values
from gelu_audit.cli.paths import paths
from gelu_audit.cli.plot import plot
from gelu_audit.cli.speed import speed
from gelu_audit.errors import GeluAuditError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="gelu-audit")
def cli() -> None:
    """Audit GELU implementations: ULP accuracy against correctly rounded references, and speed."""


for _command in (accuracy, merge, speed, paths, compare, plot, list_command):
    cli.add_command(_command)

install_environment_variables(cli)
refuse_empty_values(cli)


# --- entry point ------------------------------------------------------------------------------


EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
"""128 + SIGINT, 128 + SIGTERM: what a shell reports for a process those signals ended."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled, a container stopped): stopped like Ctrl-C, on the same path."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: maps every failure to its exit code and one line."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        _main(argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _stopped(interrupt: BaseException | None) -> None:
    """Ctrl-C or SIGTERM: one line (an exhaustive stream's says how far it got), exit 130 or 143.
    The stream re-raises the interrupt as its own, with ours as its context."""
    terminated = isinstance(interrupt, Terminated) or isinstance(
        getattr(interrupt, "__context__", None), Terminated
    )
    message = str(interrupt or "") or ("terminated" if terminated else "interrupted")
    click.echo(f"gelu-audit: {message}", err=True)
    sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="gelu-audit", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.UsageError as error:
        fail(error.format_message().replace("\n", " "))
    except click.exceptions.Abort as abort:  # click turns Ctrl-C (and our SIGTERM) into Abort
        _stopped(abort.__cause__)
    except KeyboardInterrupt as interrupt:
        _stopped(interrupt)
    except GeluAuditError as error:
        if os.environ.get("GELU_AUDIT_DEBUG") and error.__cause__ is not None:
            traceback.print_exception(error.__cause__)  # what a damaged report broke, for a bug report
        fail(str(error))
    except click.ClickException as error:
        fail(error.format_message())
    except Exception as error:  # noqa: BLE001 - the one place that turns bugs into exit 2
        if os.environ.get("GELU_AUDIT_DEBUG"):
            traceback.print_exc()
        fail(f"internal error: {type(error).__name__}: {error} (set GELU_AUDIT_DEBUG=1 for a traceback)")
    sys.exit(EXIT_OK)
