"""Shared fixtures: one reference cache per test session, the CLI runner (which checks every
JSON document the tool writes against its published schema), and the sample plugin package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SCHEMAS = Path(__file__).resolve().parents[1] / "gelu_audit" / "schemas"
SAMPLE_PLUGIN = Path(__file__).resolve().parent / "sample_plugin"


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point the reference cache at a per-session directory (never the user's real cache)."""
    path = tmp_path_factory.mktemp("reference-cache")
    os.environ["GELU_AUDIT_CACHE_DIR"] = str(path)
    return path


@lru_cache(maxsize=None)
def _validator(schema: str):  # noqa: ANN202 - a jsonschema validator
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
    for flag, value in zip(args, args[1:]):
        if flag in ("-o", "--output") and value.endswith(".json"):
            path = Path(value) if cwd is None else Path(cwd, value)
            paths.append(path)
    return paths


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m gelu_audit ARGS` as a user would; returns the finished process.

    Every JSON document it prints or writes with -o is validated against docs' schema."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "gelu_audit", *args],
        capture_output=True, text=True, env=full_env, timeout=600, cwd=cwd,
    )  # fmt: skip
    if result.stdout.lstrip().startswith("{"):
        validate_document(json.loads(result.stdout))
    for path in _written_json(args, cwd):
        if path.exists():
            validate_document(json.loads(path.read_text(encoding="utf-8")))
    return result


def assert_usage_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


@pytest.fixture(scope="module")
def sample_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample plugin package (tests/sample_plugin), pip-installed into a directory of its
    own and put on the path of this process and of every CLI run: its entry points are then
    visible exactly as an installed package's, without touching the environment's site-packages
    (a leftover install would add broken kernels to every later default audit)."""
    import shutil

    target = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-source") / "sample_plugin"
    shutil.copytree(SAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    import importlib.util

    # Offline with the environment's own setuptools where it has one (Python 3.11 venvs and
    # this project's CI do); else pip fetches it into an isolated build environment.
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    subprocess.run(  # from a copy: setuptools builds in the source tree
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *offline, "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), previous]))
    sys.path.insert(0, str(target))
    import importlib

    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    if previous is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = previous
    for name in [m for m in sys.modules if m.startswith("gelu_audit_sample_plugin")]:
        del sys.modules[name]
