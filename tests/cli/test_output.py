"""Where the document goes: stdout or a file, never half-written, readable by others."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_usage_error

AUDIT = ("accuracy", "-d", "fp16", "-i", "numpy-erf", "--range", "-1:1")


def run(
    *args: str, stdout: int | None = subprocess.PIPE, setup: str = ""
) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process that first runs ``setup`` (its umask, its limits): set there,
    not with preexec_fn, which forks a process that already runs JAX's threads."""
    launcher = "\n".join(
        [
            "import sys, runpy",
            setup,
            "sys.argv[0] = 'gelu-audit'",
            "runpy.run_module('gelu_audit', run_name='__main__')",
        ]
    )
    return subprocess.run(
        [sys.executable, "-c", launcher, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=300,
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_full_stdout_is_one_line_and_exit_2() -> None:
    with open("/dev/full", "w") as full:
        result = run(*AUDIT, "-f", "json", stdout=full.fileno())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "gelu-audit: error: cannot write the document to standard output: No space left on device"
    ]


def test_a_new_report_file_has_the_umask_permissions_and_a_replaced_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    target = tmp_path / "report.json"
    result = run(*AUDIT, "-f", "json", "-o", str(target), setup="import os; os.umask(0o022)")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    target.chmod(0o600)  # made private: replacing it must not show it to others again
    result = run(*AUDIT, "-f", "json", "-o", str(target), setup="import os; os.umask(0o022)")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


FILE_SIZE_LIMIT = (
    "import resource, signal\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))"
)
"""In the child: files may not grow past 4 KiB, and going past it is an error, not a signal."""


def test_a_write_that_fails_leaves_the_old_report_and_no_partial_file(tmp_path: Path) -> None:
    """A full disk, as a file-size limit: exit 2, one line, the previous report untouched and no
    temporary file left beside it (for -o and --also alike)."""
    target, also = tmp_path / "report.json", tmp_path / "report.md"
    target.write_text("previous report\n")
    result = run(*AUDIT, "-f", "json", "-o", str(target), setup=FILE_SIZE_LIMIT)
    assert_usage_error(result, f"cannot write {target}: File too large")
    assert target.read_text() == "previous report\n"
    result = run(*AUDIT, "-o", str(tmp_path / "t.txt"), "--also", f"json={also}", setup=FILE_SIZE_LIMIT)
    assert_usage_error(result, f"cannot write {also}: File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_missing_directory_is_one_line_before_the_audit(tmp_path: Path) -> None:
    """Checked up front: an exhaustive run used to take its hours first, and a bad ``--also``
    failed after ``-o``'s file was written (exit 2 beside a written report)."""
    result = run(*AUDIT, "-o", str(tmp_path / "missing" / "report.txt"))
    assert_usage_error(result, "No such file or directory")
    also = ("--also", f"markdown={tmp_path / 'missing' / 'report.md'}")
    result = run(*AUDIT, "-f", "json", "-o", str(tmp_path / "report.json"), *also)
    assert_usage_error(
        result, f"cannot write {tmp_path / 'missing' / 'report.md'}: No such file or directory"
    )
    through = tmp_path / "missing" / ".." / "report.json"  # the write would fail: a missing folder on the way
    assert_usage_error(run(*AUDIT, "-o", str(through)), "No such file or directory")
    assert list(tmp_path.iterdir()) == []


def _unwritable_directory_for_root() -> Path | None:
    """Root writes through any mode bits: a directory root cannot write either (sysfs, or a
    file system mounted read-only), probed, or None when this machine has none."""
    candidates = [Path("/sys")]
    with open("/proc/mounts", encoding="ascii", errors="replace") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 3 and "ro" in fields[3].split(","):
                candidates.append(Path(fields[1]))
    for directory in candidates:
        if not directory.is_dir():
            continue
        try:
            os.close(os.open(directory / "gelu-audit-probe", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except OSError:
            return directory
        (directory / "gelu-audit-probe").unlink()
    return None


def test_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        tmp_path.chmod(0o555)
        directory: Path | None = tmp_path
    else:
        directory = _unwritable_directory_for_root()
        if directory is None:
            pytest.skip("running as root, and no directory here that root cannot write")
    assert directory is not None
    try:
        result = run(*AUDIT, "-o", str(directory / "gelu-audit-report.txt"))
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"cannot write {directory / 'gelu-audit-report.txt'}: " in result.stderr
        assert not any(p.name.startswith("gelu-audit-report") for p in directory.iterdir())
    finally:
        tmp_path.chmod(0o755)
