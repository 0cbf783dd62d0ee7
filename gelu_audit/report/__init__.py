"""Renderers: one module per output format, each returning a string for the CLI to place."""

from __future__ import annotations

import enum


class OutputFormat(str, enum.Enum):
    """Document formats the commands can write."""

    TABLE = "table"
    JSON = "json"
