"""``--isolate``: a kernel that ends its process (segfault, abort, exit, SIGKILL as the
out-of-memory killer sends it) is its case's error, with how it died, and the audit goes on;
a kernel that answers differently on two calls is an error with or without isolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import case_of, run_cli

PLUGIN = "gelu_audit_sample_plugin"


def _audit(*args: str) -> dict:
    result = run_cli("accuracy", "--range", "-4:4", "--impl-timeout", "5", "-f", "json", *args)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_crashes_are_their_cases_errors_and_the_audit_goes_on(sample_plugin: Path) -> None:
    crashes = {
        "segfaults": "killed by SIGSEGV",
        "aborts": "killed by SIGABRT",
        "exits": "ended its process with exit status 3",
        "killed": "killed by SIGKILL (out of memory, or killed)",
    }
    names = [f"{PLUGIN}:{name}" for name in crashes]
    impls = [a for n in [*names, f"{PLUGIN}:segfaults_in_fp16", "numpy-erf"] for a in ("-i", n)]
    document = _audit("-d", "fp16,bf16", "--isolate", *impls)
    for name, how in crashes.items():
        for dtype in ("fp16", "bf16"):  # the child is started again after each death
            case = case_of(document, f"{PLUGIN}:{name}", dtype)
            assert case["status"] == "error" and how in case["error"], case["error"]
    fp16_only = f"{PLUGIN}:segfaults_in_fp16"
    assert "SIGSEGV" in case_of(document, fp16_only, "fp16")["error"]
    assert case_of(document, fp16_only, "bf16")["status"] == "ok"  # a fresh child after the crash
    assert case_of(document, "numpy-erf", "bf16")["status"] == "ok"
    assert document["settings"]["impl_options"]["isolate"] is True


@pytest.mark.slow
def test_an_isolated_kernel_gives_the_same_report_as_in_process(sample_plugin: Path) -> None:
    """Through both routes (an import string; an entry point, rebuilt in the child by name)."""
    reports = []
    for isolate in ((), ("--isolate",)):
        result = run_cli(
            "accuracy", "-d", "fp16", "--range", "-8:8", "-f", "json",
            "-i", f"{PLUGIN}:good_gelu", "-i", "sample-good", *isolate,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    for name in (f"{PLUGIN}:good_gelu", "sample-good"):
        plain, isolated = (case_of(report, name) for report in reports)
        assert plain["status"] == isolated["status"] == "ok"
        assert plain["exact"] == isolated["exact"]


@pytest.mark.slow
def test_an_isolated_kernel_that_hangs_is_stopped(sample_plugin: Path) -> None:
    document = _audit(
        "-d", "fp16", "--isolate", "--impl-timeout", "2", "-i", "sample-hangs", "-i", "numpy-erf"
    )
    assert "did not return within 2 s" in case_of(document, "sample-hangs")["error"]
    assert case_of(document, "numpy-erf")["status"] == "ok"


@pytest.mark.parametrize("isolate", [(), ("--isolate",)], ids=["in-process", "isolated"])
def test_different_answers_on_two_calls_are_an_error(sample_plugin: Path, isolate: tuple[str, ...]) -> None:
    document = _audit("-d", "fp16", *isolate, "-i", f"{PLUGIN}:nondeterministic", "-i", "numpy-erf")
    error = case_of(document, f"{PLUGIN}:nondeterministic")["error"]
    assert error.startswith("gave different answers for the same input on two calls: 2 of "), error
    assert case_of(document, "numpy-erf")["status"] == "ok"
