"""Shared fixtures: one reference cache per test session, so exhaustive tables build once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point the reference cache at a per-session directory (never the user's real cache)."""
    path = tmp_path_factory.mktemp("reference-cache")
    os.environ["GELU_AUDIT_CACHE_DIR"] = str(path)
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m gelu_audit ARGS` as a user would; returns the finished process."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gelu_audit", *args],
        capture_output=True, text=True, env=full_env, timeout=600,
    )  # fmt: skip


def assert_usage_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
