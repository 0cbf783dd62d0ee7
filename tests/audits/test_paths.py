"""`gelu-audit paths`: the same kernel through different layouts, sizes and APIs, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gelu_audit.audits.paths import PATHS, PathsSettings, compare_paths, disagreements, run_paths
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.registry import registry
from gelu_audit.numerics.formats import FP16, FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import exhaustive_inputs, parse_range
from tests.helpers import assert_usage_error, run_cli


def _layout_dependent(x):
    """A kernel with a layout bug: non-contiguous inputs get a different (worse) answer.
    Each answer is exact in the dtype, so sizes and offsets cannot change a bit."""
    return x * 0.5 if x.is_contiguous() else x * 0.25


def _refuses_small(x):
    if x.numel() < 8:
        raise RuntimeError("vector kernel needs 8 elements")
    return x * 0.5


def test_a_layout_dependent_kernel_is_caught_with_its_inputs() -> None:
    impl = Implementation("layout-bug", "torch", ERF, _layout_dependent, "test kernel")
    inputs = exhaustive_inputs(FP16, parse_range("1:3"))
    results = {r.path: r for r in compare_paths(impl, "cpu", inputs, PATHS, top=3)}
    assert set(results) == {"strided", "transposed", "offset", "size-1", "size-7", "size-67"}
    assert results["strided"].status == "differ" and results["strided"].differing == len(inputs)
    for same in ("offset", "size-1", "size-7", "size-67"):  # contiguous every time
        assert results[same].status == "agree" and results[same].differing == 0
    # the column-major view is non-contiguous too, unless the input fits in one column
    assert results["transposed"].status == "differ"
    example = results["strided"].examples[0]  # all one binade (1024 fp16 values) apart: the first
    assert example.x == 1.0 and (example.contiguous, example.path) == (0.5, 0.25)
    assert example.ordinal_distance == 1024 and example.closer == "contiguous"  # GELU(1) = 0.841


def test_a_path_that_raises_is_an_error_and_the_others_still_run() -> None:
    impl = Implementation("small-fails", "torch", ERF, _refuses_small, "test kernel")
    inputs = exhaustive_inputs(FP16, parse_range("-1:1"))
    results = {r.path: r for r in compare_paths(impl, "cpu", inputs, PATHS)}
    assert results["size-1"].status == results["size-7"].status == "error"
    assert "raised RuntimeError: vector kernel needs 8 elements" in results["size-7"].error
    assert results["strided"].status == results["size-67"].status == "agree"


def test_disagreement_arithmetic() -> None:
    x = np.array([1.0, 2.0, 3.0, np.nan, -1.0])
    base = np.array([0.5, 1.0, np.inf, np.nan, -0.0])
    got = np.array([0.5, np.nextafter(np.float32(1.0), np.float32(2.0)).item(), 3.0, np.nan, 0.0])
    count, farthest, examples = disagreements(FP32, ERF, x, base, got, top=5)
    assert count == 3  # NaN vs NaN agrees; -0 vs +0 does not
    assert farthest >= 2**62  # inf against a finite number
    assert [e.x for e in examples] == [3.0, 2.0, -1.0]
    assert examples[1].ordinal_distance == 1


def test_in_place_and_out_only_for_the_aten_op() -> None:
    report = run_paths(
        PathsSettings(
            dtypes=("fp16",),
            implementations=("torch-gelu", "torch-quick-gelu"),
            paths=("in-place", "out", "offset"),
        )
    )
    done = {(r.implementation, r.path) for r in report.results}
    assert done == {
        ("torch-gelu", "in-place"),
        ("torch-gelu", "out"),
        ("torch-gelu", "offset"),
        ("torch-quick-gelu", "offset"),
    }
    assert all(r.points == 65536 for r in report.results)


def test_paths_cli_json_and_exit_code() -> None:
    result = run_cli("paths", "-d", "fp16", "-i", "torch-gelu-tanh", "--path", "strided,out", "-f", "json")
    document = json.loads(result.stdout)
    assert document["schema"] == "gelu-audit.paths"
    assert [r["path"] for r in document["results"]] == ["strided", "out"]
    assert result.returncode == (0 if document["summary"]["all_agree"] else 1)
    for r in document["results"]:
        assert r["differing"] == (0 if r["status"] == "agree" else r["differing"])
        assert len(r["examples"]) == min(r["differing"], 5)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--path", "diagonal"), "unknown code path 'diagonal'"),
        (("-i", "numpy-erf"), "nothing to compare (numpy-erf: not a PyTorch implementation)"),
        (("-i", "no-such-gelu"), "unknown implementation 'no-such-gelu'"),
        (("--samples", "0"), "--samples must be a positive number"),
    ],
)
def test_paths_usage_errors(args: tuple[str, ...], message: str) -> None:
    assert_usage_error(run_cli("paths", "-d", "fp16", *args), message)


def test_every_torch_builtin_has_every_layout_path() -> None:
    torch_names = [n for n, impl in registry().items() if impl.backend == "torch"]
    report = run_paths(
        PathsSettings(dtypes=("bf16",), implementations=tuple(torch_names), paths=("transposed",))
    )
    ran = {r.implementation for r in report.results}
    assert ran | {name for name, *_ in report.skipped} == set(torch_names)
    assert {r.status for r in report.results} <= {"agree", "differ"}


def test_paths_of_an_import_string_implementation(sample_plugin) -> None:
    """A MODULE:FUNCTION row beside F.gelu: the table marks the ops it does not offer (it used to
    look the name up in the registry while rendering: internal error, exit 2)."""
    result = run_cli(
        "paths",
        "-d",
        "fp16",
        "-i",
        "gelu_audit_sample_plugin:good_gelu",
        "-i",
        "torch-gelu",
        "--path",
        "in-place,strided",
        "--no-progress",
    )
    assert result.returncode in (0, 1), result.stderr
    row = next(line for line in result.stdout.splitlines() if "gelu_audit_sample_plugin:good_gelu" in line)
    assert "n/a" in row


def test_the_timeout_applies_to_every_path_of_a_plugin(sample_plugin) -> None:
    result = run_cli(
        "paths",
        "-d",
        "fp16",
        "-i",
        "gelu_audit_sample_plugin:never_returns",
        "--impl-timeout",
        "0.5",
        "--path",
        "size-7",
        "-f",
        "json",
    )
    assert result.returncode == 1, result.stderr
    (error,) = json.loads(result.stdout)["results"]
    assert error["status"] == "error" and "did not return within 0.5 s" in error["error"]
