"""Shared fixtures: one reference cache per test session, and the sample plugin package.
Helpers (the CLI runner, schema validation) are in tests/helpers.py."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SAMPLE_PLUGIN = Path(__file__).resolve().parent / "sample_plugin"


def pytest_configure(config: pytest.Config) -> None:
    """Give torch.compile's Inductor a kernel cache of this run's own, before anything imports
    torch (pytest-xdist's workers inherit the one their controller made: the same CPU). A cache
    built under another CPU capability is reused without a check and can return garbage
    (docs/findings.md §18), so a test's answer would depend on what ran before."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # pytest-xdist's workers are given COLUMNS=80 and LINES=24; a plain run, like the pipe or
        # CI log the report tests assume, has neither (report_width then lays out 160 columns)
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        path = tempfile.mkdtemp(prefix="gelu-audit-inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point the reference cache at a per-session directory (never the user's real cache)."""
    path = tmp_path_factory.mktemp("reference-cache")
    os.environ["GELU_AUDIT_CACHE_DIR"] = str(path)
    return path


SUITE_TABLES = (
    ("fp16", ("erf", "tanh", "sigmoid", "erf-grad", "tanh-grad")),
    ("bf16", ("erf", "tanh", "sigmoid", "erf-grad")),
)
"""The 16-bit reference tables the whole suite reads (each test that needs one shares it)."""


@pytest.fixture(scope="session", autouse=True)
def suite_tables(
    session_cache: Path, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """For a run of the whole suite, build the tables it reads up front on two processes, as the
    CLI does, instead of one process in whichever in-process audit first asks (the Python API's
    default): about 25 s instead of 45 s of mpmath. A run of a few tests builds only what those
    need, when they need it.

    Under pytest-xdist (the README's ``-n auto``) the workers are the processes: they build the
    tables once between them, in a directory of the run's, each table by whichever worker takes
    its lock first (each worker starts at its own share of the list, and waits on a table only
    when it reaches one another worker holds), and each worker saves them into its own session
    cache, which tests may damage or fill without touching another worker's.

    "The whole suite" is a run that collected tests from many files: one file of many cheap
    tests (tests/test_layers.py has a few per module) is not."""
    if len({item.path for item in request.session.items}) < 10:
        return
    from gelu_audit.numerics.formats import FORMATS
    from gelu_audit.numerics.formulas import FUNCTIONS
    from gelu_audit.references.cache import cache_path, exhaustive_table, save_table

    tables = [(FUNCTIONS[formula], FORMATS[fmt]) for fmt, formulas in SUITE_TABLES for formula in formulas]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        for function, fmt in tables:
            exhaustive_table(function, fmt, session_cache, jobs=2)
        return
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent / "suite-tables"
    shared.mkdir(exist_ok=True)
    first = (
        int(worker.removeprefix("gw")) * len(tables) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    )
    for function, fmt in tables[first:] + tables[:first]:
        with open(shared / f"{fmt.name}-{function.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # built by another worker meanwhile: read, not rebuilt
            table, _ = exhaustive_table(function, fmt, shared, jobs=1)
        save_table(cache_path(session_cache, function, fmt), function, fmt, table)


@pytest.fixture(scope="module")
def sample_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample plugin package (tests/sample_plugin), pip-installed into a directory of its
    own and put on the path of this process and of every CLI run: its entry points are then
    visible exactly as an installed package's, without touching the environment's site-packages
    (a leftover install would add broken kernels to every later default audit)."""

    target = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-source") / "sample_plugin"
    shutil.copytree(
        SAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    import importlib.util

    # Offline with the environment's own setuptools where it has one (Python 3.11 venvs and
    # this project's CI do); else pip fetches it into an isolated build environment.
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    subprocess.run(  # from a copy: setuptools builds in the source tree
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            *offline,
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
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
