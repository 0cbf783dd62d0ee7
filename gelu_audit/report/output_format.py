"""The document formats the commands write, as a type (choices, dispatch and tests loop over it).

Kept free of heavy imports: the command line names these in ``--help``.
"""

from __future__ import annotations

import enum


class OutputFormat(enum.Enum):
    """A document format: for people (table), machines (json) or CI (markdown, junit, github)."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    JUNIT = "junit"
    GITHUB = "github"


ALL_FORMATS: tuple[OutputFormat, ...] = tuple(OutputFormat)
"""What ``accuracy``, ``merge`` and ``speed`` write."""
COMPARE_FORMATS = (OutputFormat.TABLE, OutputFormat.JSON, OutputFormat.MARKDOWN)
"""What ``compare`` writes."""
PATHS_FORMATS = (OutputFormat.TABLE, OutputFormat.JSON)
"""What ``paths`` writes."""
LIST_FORMATS = (OutputFormat.TABLE, OutputFormat.JSON)
"""What ``list`` writes."""


def names(formats: tuple[OutputFormat, ...]) -> list[str]:
    """The values, for a click.Choice."""
    return [f.value for f in formats]
