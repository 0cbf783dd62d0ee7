"""Typed errors: the CLI turns these into one clear line and exit code 2."""

from __future__ import annotations


class GeluAuditError(Exception):
    """Base class for errors that are the user's or the environment's, not a bug.

    The CLI prints ``str(error)`` on one line and exits with code 2.
    """


class UsageError(GeluAuditError):
    """A malformed option value: unknown dtype, bad range, unknown implementation…"""


class EnvironmentUnavailableError(GeluAuditError):
    """Something explicitly asked for is not available here (no CUDA, no matplotlib…)."""


class ReportFormatError(GeluAuditError):
    """A saved report that is not ours, is damaged, or has an unknown schema version."""
