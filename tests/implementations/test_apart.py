"""Rows built apart: torch.compile's rows built and run in a helper process while the audit does
the rest give the same report as in process; a helper that dies while building is a skip that
says how, and the next request gets a fresh helper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.implementations.apart import built_apart
from gelu_audit.implementations.compiled import compile_requirement
from gelu_audit.implementations.gradient import backward_implementation
from gelu_audit.implementations.isolation import BACKWARD, ChildProcess, with_backward
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.registry import implementation_named, select_implementations
from gelu_audit.implementations.runner import direct_call, run_implementation_bits
from gelu_audit.numerics.formats import FORMATS
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import parse_range
from gelu_audit.report.json_documents import render_accuracy_json
from tests.helpers import session_cache_dir

ROWS = ("torch-gelu", "torch-compile-gelu", "numpy-erf")
"""A compiled row between others: its results must keep their places."""

_AUDIT = r"""
import json, sys
from pathlib import Path
from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.numerics.inputs import parse_range
from gelu_audit.report.json_documents import render_accuracy_json

if __name__ == "__main__":  # the helper is spawned: it imports this module again
    settings = AuditSettings(
        dtypes=("fp16",), implementations=tuple(sys.argv[1].split(",")), value_range=parse_range("-6:6"),
        cache_dir=Path(sys.argv[2]),
    )
    report = run_audit(settings, builds_apart=True)
    document = json.loads(render_accuracy_json(report, {}))
    print(json.dumps({"document": document, "dynamo here": "torch._dynamo" in sys.modules}))
"""

_RUN_FACTS = {"seconds", "created", "elapsed_s", "wall_s", "duration_s", "time_s", "from_cache"}
"""What differs between two runs of one audit: timings, and whether the tables were in the cache."""


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in _RUN_FACTS}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.skipif(compile_requirement("cpu", FORMATS["fp16"]) is not None, reason="no C++ compiler")
def test_rows_built_apart_give_the_in_process_report_and_this_process_never_loads_dynamo(
    tmp_path: Path,
) -> None:
    script = tmp_path / "audit_apart.py"
    script.write_text(_AUDIT, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), ",".join(ROWS), str(session_cache_dir())],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    apart = json.loads(run.stdout)
    assert apart["dynamo here"] is False  # Dynamo and Inductor were loaded by the helper alone
    settings = AuditSettings(
        dtypes=("fp16",),
        implementations=ROWS,
        value_range=parse_range("-6:6"),
        cache_dir=session_cache_dir(),
    )
    here = json.loads(render_accuracy_json(run_audit(settings), {}))
    assert [case["implementation"] for case in apart["document"]["results"]] == list(ROWS)
    assert all(case["status"] == "ok" for case in here["results"])
    assert _untimed(apart["document"]) == _untimed(here)


def test_only_the_rows_that_build_apart_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows without a costly build stay, and start no helper; so does a compiled row once
    Inductor is loaded here (a user's settings may be in this process)."""
    numpy_only = select_implementations(["numpy-erf"])
    assert built_apart(numpy_only, [FORMATS["fp16"]], ["cpu"]) == (numpy_only, frozenset())
    implementations = select_implementations(["numpy-erf", "torch-compile-gelu"])
    monkeypatch.setitem(sys.modules, "torch._inductor.config", sys.modules.get("torch._inductor.config", sys))
    kept, apart = built_apart(implementations, [FORMATS["fp16"]], ["cpu"])
    assert kept == implementations and apart == frozenset()
    assert all(impl.isolation is None for impl in kept)


# --- a helper that dies while it builds -------------------------------------------------------


def _exits(device: str, fmt: Any) -> None:
    os._exit(3)


def _dies_when_prepared() -> Implementation:
    """Module level: the child rebuilds it by name."""
    return Implementation("dies-when-prepared", "numpy", ERF, np.copy, "test", prepare=_exits)


def _answers_with_its_input() -> Implementation:
    return Implementation("identity", "numpy", ERF, np.copy, "test")


@pytest.mark.slow
def test_a_helper_that_dies_while_building_is_a_skip_and_the_next_request_gets_a_fresh_one() -> None:
    """The answer to two preparations is lost with the helper; each is then asked alone, so
    the one that kills its helper is the one reported, and the other is ready."""
    fp16 = FORMATS["fp16"]
    child = ChildProcess(
        {**with_backward("dies", _dies_when_prepared), **with_backward("identity", _answers_with_its_input)}
    )
    try:
        child.prepare_ahead([("identity", "fp16", "cpu"), ("dies", "fp16", "cpu")])
        failure = child.preparation_failure("dies", fp16, "cpu")
        assert failure == (
            "its preparation ended its process with exit status 3; run in a child process, the audit goes on"
        )
        assert child.preparation_failure("identity", fp16, "cpu") is None
        patterns = np.arange(0, 2**15, 97, dtype=np.uint16)
        answers = child.run("identity", None, fp16, "cpu", patterns, direct_call, False)
        assert np.array_equal(answers, patterns)
    finally:
        child.close()


@pytest.mark.slow
def test_a_helper_hosts_the_backward_pass_beside_the_forward() -> None:
    """The members an implementation is hosted as: its forward and its backward pass, each
    giving the bits it gives in this process (the backward through autograd)."""
    fp16 = FORMATS["fp16"]
    child = ChildProcess(with_backward("torch-gelu", partial(implementation_named, "torch-gelu")))
    forward = implementation_named("torch-gelu")
    backward = backward_implementation(forward)
    assert backward is not None
    patterns = np.arange(0, 2**16, 7, dtype=np.uint16)
    try:
        for member, impl in (("torch-gelu", forward), ("torch-gelu" + BACKWARD, backward)):
            here = run_implementation_bits(impl, fp16, "cpu", patterns)
            assert np.array_equal(child.run(member, None, fp16, "cpu", patterns, direct_call, True), here)
    finally:
        child.close()
