"""The shared option parsers: sizes (one parser for --sizes and --chunk-size)."""

from __future__ import annotations

import pytest

from gelu_audit.cli.options import parse_chunk_size, parse_size, parse_sizes
from gelu_audit.errors import UsageError


@pytest.mark.parametrize(
    "text, sizes",
    [("1K,64K", (1024, 65536)), ("1M", (1 << 20,)), ("100", (100,)), ("1K,1024,64K,1K", (1024, 65536))],
)
def test_parse_sizes(text: str, sizes) -> None:
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "1X", "-1K", "K", "0"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        parse_sizes(text)


def test_chunk_size_is_a_power_of_two_from_32k_to_1m() -> None:
    assert parse_chunk_size("256K") == 1 << 18 and parse_chunk_size("32768") == 1 << 15
    assert parse_size("2G", "--sizes", "1K") == 1 << 31
    for bad in ("1K", "3M", "x", "96K", "2M"):
        with pytest.raises(UsageError, match="--chunk-size must be a power of two"):
            parse_chunk_size(bad)
