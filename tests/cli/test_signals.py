"""Stopping a long run: SIGTERM (a cancelled CI job) and Ctrl-C end an exhaustive audit cleanly,
in one line saying how far it got, with no worker process left behind and no report written."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LONG_RUN = ["accuracy", "-d", "fp32", "--exhaustive", "--range", "-4:4", "-i", "numpy-erf", "--no-progress"]
"""About two billion inputs: minutes of work, stopped after a few seconds."""


def _default_sigint() -> None:
    """In the child before it starts: Ctrl-C as a terminal delivers it. A suite started in the
    background by a shell (`pytest … &`) ignores SIGINT, the child inherits that, and Python
    then keeps it ignored, as it should: the run went on for minutes and the test timed out."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_STARTED: list[subprocess.Popen[str]] = []


def _start(jobs: str, output: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gelu_audit", *LONG_RUN, "-j", jobs, "-o", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=_default_sigint,
    )
    _STARTED.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_run_left_behind() -> Iterator[None]:
    """Every run a test started is killed, with its workers, when the test ends, passed or
    failed: one left going took both cores from the rest of the suite for minutes."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until_chunks_run(process: subprocess.Popen[str], limit: float = 120.0) -> None:
    """Until a process of the run's group has loaded the compiled fold, which only folding a
    chunk loads: the stream is under way. (A fixed sleep of 8 s did this before: most of it
    waiting, with the run's workers on both cores, beside the rest of the suite.)"""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                in_group = int(stat.read_text().rsplit(")", 1)[1].split()[2]) == process.pid
                if in_group and "_fold" in (stat.parent / "maps").read_text():
                    return
            except (OSError, IndexError, ValueError):  # a process that ended meanwhile
                continue
        time.sleep(0.2)
    raise AssertionError(f"no chunk was folded within {limit:g} s")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("jobs, target", [("2", "group"), ("2", "parent"), ("1", "parent")])
def test_sigterm_stops_an_exhaustive_run_cleanly(jobs: str, target: str, tmp_path: Path) -> None:
    output = tmp_path / "report.txt"
    process = _start(jobs, output)
    _wait_until_chunks_run(process)
    if target == "group":  # what a CI runner or `timeout` sends
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gelu-audit: interrupted after "), stderr
    assert stdout == "" and not output.exists()
    deadline = time.time() + 10
    while _group_alive(process.pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not _group_alive(process.pid), "a worker process outlived the run"


@pytest.mark.slow
def test_ctrl_c_still_exits_130(tmp_path: Path) -> None:
    process = _start("2", tmp_path / "report.txt")
    _wait_until_chunks_run(process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted after " in stderr, stderr


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_worker_killed_while_sending_a_result_does_not_hang_the_stop() -> None:
    """What a SIGKILL can leave in the results pipe: the length of a message, and only part of
    it. The pool's reading thread waits for the rest; ``kill_workers`` closes this process's
    end too, so the read ends and ``shutdown`` returns (it hung in CI before)."""
    import multiprocessing
    import struct
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from gelu_audit.audits.exhaustive import kill_workers

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    busy = pool.submit(_sleep, 30.0)
    time.sleep(0.5)
    writer = pool._result_queue._writer  # type: ignore[attr-defined]
    os.write(writer.fileno(), struct.pack("!i", 217_088) + b"half a message")  # as a killed sender leaves it
    time.sleep(0.5)  # the reading thread has read the length and waits for the rest
    kill_workers(pool)
    stopped = threading.Thread(
        target=pool.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True
    )
    stopped.start()
    stopped.join(timeout=30)
    assert not stopped.is_alive(), "shutdown still waits for the rest of a message no one will send"
    assert busy.done()


def test_a_worker_that_dies_while_sending_a_result_fails_the_run_instead_of_hanging_it() -> None:
    """A worker that dies on its own (out of memory) mid-result leaves the same half message:
    the pool never reports itself broken, and a stream would wait for its results forever.
    ``wait_watching`` sees the dead worker, and the waiting ends with BrokenProcessPool, which
    the stream reports in one line ("a worker process died…")."""
    import multiprocessing
    import struct
    import threading
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from gelu_audit.audits.exhaustive import wait_watching

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    busy = pool.submit(_sleep, 60.0)
    time.sleep(0.5)
    writer = pool._result_queue._writer  # type: ignore[attr-defined]
    os.write(writer.fileno(), struct.pack("!i", 217_088) + b"half a message")
    time.sleep(0.5)
    for process in list(pool._processes.values()):  # type: ignore[attr-defined]
        process.kill()  # as the out-of-memory killer would
    waited: list[object] = []
    waiting = threading.Thread(target=lambda: waited.append(wait_watching(pool, {busy})), daemon=True)
    waiting.start()
    waiting.join(timeout=30)
    assert not waiting.is_alive(), "still waiting for the results of a dead worker"
    assert busy.done() and isinstance(busy.exception(), BrokenProcessPool)
    pool.shutdown(wait=True)
