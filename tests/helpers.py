"""Helpers the tests share: the CLI run as a user runs it, with every JSON document it writes
checked against its published schema, and the one-line usage-error assertion."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mpmath

    from gelu_audit.numerics.formulas import Formula

SCHEMAS = Path(__file__).resolve().parents[1] / "gelu_audit" / "schemas"


@cache
def _validator(schema: str):
    import jsonschema

    name = schema.removeprefix("gelu-audit.")
    document = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(document)


def validate_document(document: object) -> None:
    """Fail the test unless ``document`` matches the published schema it names."""
    assert isinstance(document, dict) and isinstance(document.get("schema"), str), "not a gelu-audit document"
    errors = sorted(_validator(document["schema"]).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, f"{document['schema']} does not match its schema: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:3]
    )


def _written_json(args: tuple[str, ...], cwd: Path | None) -> list[Path]:
    paths = []
    for flag, value in itertools.pairwise(args):
        if flag in ("-o", "--output") and value.endswith(".json"):
            path = Path(value) if cwd is None else Path(cwd, value)
            paths.append(path)
    return paths


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m gelu_audit ARGS` as a user would; returns the finished process.

    Every JSON document it prints or writes with -o is validated against docs' schema."""
    # A known width: under pytest, children inherit COLUMNS=80 from the environment of the run.
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "gelu_audit", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
        cwd=cwd,
    )
    if result.stdout.lstrip().startswith("{"):
        validate_document(json.loads(result.stdout))
    for path in _written_json(args, cwd):
        if path.exists():
            validate_document(json.loads(path.read_text(encoding="utf-8")))
    return result


def session_cache_dir() -> Path:
    """The session's reference cache (conftest's ``session_cache``): audits built in a test
    share the 16-bit tables the CLI runs store, instead of recomputing them with mpmath."""
    return Path(os.environ["GELU_AUDIT_CACHE_DIR"])


def assert_usage_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


def gelu_mpmath(formula: Formula, x: float | mpmath.mpf, precision: int = 128) -> mpmath.mpf:
    """A formula at ``x`` in mpmath at a fixed working precision (bits): an independent value
    for tests, without the Ziv loop's rounding decisions."""
    import mpmath

    with mpmath.workprec(precision):
        return formula.mpmath_value(mpmath.mpf(x))


def case_of(document: dict[str, Any], implementation: str, dtype: str = "fp16") -> dict[str, Any]:
    """One case of an accuracy report's JSON, by implementation and dtype."""
    return next(
        c for c in document["results"] if c["implementation"] == implementation and c["dtype"] == dtype
    )
