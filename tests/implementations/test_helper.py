"""The accuracy audit's helper: torch.compile's rows built and run in a child process while the
audit does the rest give the report the audit gives in its own process, when the build works
and when it fails; a helper that dies while building is a skip that says how, the other setups
are asked again, and calls are served between setups."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gelu_audit.implementations import helper
from gelu_audit.implementations.compiled import compile_requirement
from gelu_audit.implementations.gradient import backward_implementation
from gelu_audit.implementations.helper import hand_to_helper
from gelu_audit.implementations.isolation import BACKWARD, ChildProcess, InChild, with_backward
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.registry import built_in_named, select_implementations
from gelu_audit.implementations.runner import direct_call, run_implementation_bits
from gelu_audit.numerics.formats import FORMATS
from gelu_audit.numerics.formulas import ERF
from tests.helpers import session_cache_dir

_AUDIT = r"""
import json, sys
from pathlib import Path
from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.numerics.formulas import Pass
from gelu_audit.numerics.inputs import parse_range
from gelu_audit.report.json_documents import render_accuracy_json

if __name__ == "__main__":  # the helper is spawned: it imports this module again
    use_helper, rows, cache, passes, dtypes = sys.argv[1] == "helper", *sys.argv[2:6]
    settings = AuditSettings(
        dtypes=tuple(dtypes.split(",")), implementations=tuple(rows.split(",")),
        value_range=parse_range("-6:6"),
        passes=tuple(Pass(p) for p in passes.split(",")), cache_dir=Path(cache),
    )
    report = run_audit(settings, use_helper=use_helper)
    document = json.loads(render_accuracy_json(report, {}))
    print(json.dumps({"document": document, "dynamo here": "torch._dynamo" in sys.modules}))
"""

_RUN_FACTS = {"seconds", "created", "elapsed_s", "wall_s", "duration_s", "time_s", "from_cache"}
"""What differs between two runs of one audit: timings, and whether the tables were in the cache."""

needs_compiler = pytest.mark.skipif(
    compile_requirement("cpu", FORMATS["fp16"]) is not None, reason="no C++ compiler"
)


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in _RUN_FACTS}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _audit(
    where: str, rows: tuple[str, ...], passes: str, tmp_path: Path, dtypes: str = "fp16", **environment: str
) -> dict[str, Any]:
    """An audit of ``rows`` in a fresh process, with the helper or without (``where``)."""
    script = tmp_path / "audit.py"
    script.write_text(_AUDIT, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), where, ",".join(rows), str(session_cache_dir()), passes, dtypes],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **environment},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.mark.slow
@pytest.mark.compile
@needs_compiler
def test_the_helper_gives_the_in_process_report_and_this_process_never_loads_dynamo(tmp_path: Path) -> None:
    if helper.usable_cpus() < 2:
        pytest.skip("one CPU to run on: no helper is started")
    # results must keep their places; tanh's references are first needed by the helper's row
    rows = ("torch-gelu", "torch-compile-gelu", "numpy-erf", "torch-compile-gelu-tanh")
    helped = _audit("helper", rows, "forward", tmp_path)
    assert helped["dynamo here"] is False  # Dynamo and Inductor were loaded by the helper alone
    here = _audit("here", rows, "forward", tmp_path)
    assert here["dynamo here"] is True
    assert [case["implementation"] for case in helped["document"]["results"]] == list(rows)
    assert all(case["status"] == "ok" for case in here["document"]["results"])
    assert _untimed(helped["document"]) == _untimed(here["document"])


@pytest.mark.slow
@pytest.mark.compile
@needs_compiler
def test_a_build_that_fails_in_the_helper_gives_the_in_process_report(tmp_path: Path) -> None:
    """Inductor's compiler fails (a ``$CXX`` that exits 1, and a fresh Inductor cache so that
    nothing is loaded from it). The compiled tanh row is skipped with the build's message, in
    its place among the skips (before onnxruntime's bf16, which has no kernel, while numpy-erf
    runs), in both passes, and without the tanh references only it needed. After the first
    failed build Inductor is loaded, and its own compiler check gives the later reasons, in
    both processes alike."""
    compiler = tmp_path / "failing-c++"
    compiler.write_text("#!/bin/sh\necho 'this compiler always fails' >&2\nexit 1\n", encoding="utf-8")
    compiler.chmod(compiler.stat().st_mode | stat.S_IEXEC)
    rows = ("numpy-erf", "torch-compile-gelu-tanh", "onnxruntime-gelu")
    documents = []
    for where in ("helper", "here"):
        environment = {"CXX": str(compiler), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / f"inductor-{where}")}
        audited = _audit(where, rows, "forward,backward", tmp_path, "fp16,bf16", **environment)
        documents.append(audited["document"])
    helped, here = documents
    skips = [(s["implementation"], s["dtype"], s["pass"]) for s in here["skipped"]]
    assert skips == [
        ("torch-compile-gelu-tanh", "fp16", "forward"),
        ("numpy-erf", "fp16", "backward"),
        ("torch-compile-gelu-tanh", "fp16", "backward"),
        ("onnxruntime-gelu", "fp16", "backward"),
        ("torch-compile-gelu-tanh", "bf16", "forward"),  # the helper's, before one decided at once
        ("onnxruntime-gelu", "bf16", "forward"),
        ("numpy-erf", "bf16", "backward"),
        ("torch-compile-gelu-tanh", "bf16", "backward"),
        ("onnxruntime-gelu", "bf16", "backward"),
    ], skips
    compiled = [s["reason"] for s in here["skipped"] if "compile" in s["implementation"]]
    assert compiled[0].startswith("torch.compile failed") and all("C++ compiler" in r for r in compiled)
    assert {source["formula"] for dtype in ("fp16", "bf16") for source in here["references"][dtype]} == {
        "erf"
    }
    assert _untimed(helped) == _untimed(here)


def test_only_built_ins_that_may_build_in_the_helper_are_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled row's CPU cases go to the helper while Inductor is not loaded here. Rows
    without a costly build stay and start no helper; so does the compiled row when the audit
    is not on the CPU, with one CPU to run on, or once Inductor is loaded here (a user's
    settings may be in this process)."""
    fp16 = [FORMATS["fp16"]]
    compiled = select_implementations(["numpy-erf", "torch-compile-gelu"])
    monkeypatch.delitem(sys.modules, "torch._inductor.config", raising=False)
    monkeypatch.setattr(helper, "usable_cpus", lambda: 2)  # whatever this runner is pinned to
    hosted = hand_to_helper(compiled, fp16, ())
    try:
        assert set(hosted) == {"torch-compile-gelu"}
        assert isinstance(hosted["torch-compile-gelu"].isolation, InChild)
    finally:
        for impl in hosted.values():
            assert isinstance(impl.isolation, InChild)
            impl.isolation.child.close()
    assert hand_to_helper(select_implementations(["numpy-erf"]), fp16, ()) == {}
    assert hand_to_helper(compiled, fp16, ("cuda",)) == {}  # the helper takes the CPU's cases alone
    with monkeypatch.context() as one_cpu:  # no overlap to gain, one more import of torch to pay
        one_cpu.setattr(helper, "usable_cpus", lambda: 1)
        assert hand_to_helper(compiled, fp16, ()) == {}
    monkeypatch.setitem(sys.modules, "torch._inductor.config", sys)  # loaded here, by a user
    assert hand_to_helper(compiled, fp16, ()) == {}


# --- the child's protocol, with kernels of this module ----------------------------------------


def _exits(device: str, fmt: Any) -> None:
    os._exit(3)


def _dies_when_set_up() -> Implementation:
    """Module level: the child rebuilds it by name."""
    return Implementation("dies-when-set-up", "numpy", ERF, np.copy, "test", prepare=_exits)


def _answers_with_its_input() -> Implementation:
    return Implementation("identity", "numpy", ERF, np.copy, "test")


@pytest.mark.slow
def test_a_helper_that_dies_while_building_is_a_skip_and_the_other_setups_are_asked_again() -> None:
    """The child does its setups in order: the one it was doing when it died is blamed; the
    others are asked of a fresh child."""
    fp16 = FORMATS["fp16"]
    child = ChildProcess(
        {**with_backward("dies", _dies_when_set_up), **with_backward("identity", _answers_with_its_input)}
    )
    try:
        child.set_up_ahead([("dies", "fp16", "cpu"), ("identity", "fp16", "cpu")])
        assert child.setup_failure("identity", fp16, "cpu") is None
        failure = child.setup_failure("dies", fp16, "cpu")
        assert failure == (
            "its setup ended its process with exit status 3; run in a child process, the audit goes on"
        )
        patterns = np.arange(0, 2**15, 97, dtype=np.uint16)
        assert np.array_equal(
            child.run("identity", None, fp16, "cpu", patterns, direct_call, False), patterns
        )
    finally:
        child.close()


def _sleeps(device: str, fmt: Any) -> None:
    time.sleep(0.3)


def _slow_to_set_up() -> Implementation:
    return Implementation("slow-to-set-up", "numpy", ERF, np.copy, "test", prepare=_sleeps)


@pytest.mark.slow
def test_a_call_made_while_setups_are_pending_is_served_between_two_of_them() -> None:
    """Four setups of 0.3 s are asked ahead; once the first is answered, a call is made. The
    child answers the call between two setups, before the last: at once if the call is there
    before it starts the second (a loaded machine), else once the second is done."""
    child = ChildProcess(with_backward("slow", _slow_to_set_up))
    patterns = np.arange(0, 2**16, 5, dtype=np.uint16)
    names = ("fp16", "bf16", "fp32", "fp64")
    try:
        child.set_up_ahead([("slow", name, "cpu") for name in names])
        assert child.setup_failure("slow", FORMATS["fp16"], "cpu") is None
        answers = child.run("slow", None, FORMATS["fp16"], "cpu", patterns, direct_call, True)
        assert np.array_equal(answers, patterns)
        assert ("slow", "fp64", "cpu") in child._awaited  # not yet: the call came first
        assert all(child.setup_failure("slow", FORMATS[name], "cpu") is None for name in names)
    finally:
        child.close()


@pytest.mark.slow
def test_a_helper_hosts_the_backward_pass_beside_the_forward() -> None:
    """The members a row is hosted as: its forward and its backward pass, each giving the bits
    it gives in this process (the backward through autograd)."""
    fp16 = FORMATS["fp16"]
    child = ChildProcess(with_backward("torch-gelu", partial(built_in_named, "torch-gelu")))
    forward = built_in_named("torch-gelu")
    backward = backward_implementation(forward)
    assert backward is not None
    patterns = np.arange(0, 2**16, 7, dtype=np.uint16)
    try:
        for member, impl in (("torch-gelu", forward), ("torch-gelu" + BACKWARD, backward)):
            here = run_implementation_bits(impl, fp16, "cpu", patterns)
            assert np.array_equal(child.run(member, None, fp16, "cpu", patterns, direct_call, True), here)
    finally:
        child.close()
