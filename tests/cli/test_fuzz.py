"""The command line under fuzzing: every command, valid and hostile values mixed, and the exit
code contract holds (tests/cli/fuzzing.py). `benchmarks/fuzz_cli.py` runs the same with many
more cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.cli.fuzzing import check, document_corpus, invocations, invoke

CORPUS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def corpus(tmp_path_factory: pytest.TempPathFactory, sample_plugin: Path) -> None:
    """Reports, damaged ones, and the sample plugin on the path (a MODULE:FUNCTION row)."""
    CORPUS.update(document_corpus(tmp_path_factory.mktemp("fuzz-corpus")))


@pytest.mark.slow
@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(argv=invocations(lambda: CORPUS))
def test_the_contract_holds_for_any_command_line(argv: list[str]) -> None:
    check(argv, invoke(argv))


@pytest.mark.parametrize(
    "argv",
    [
        [
            "paths",
            "-d",
            "fp16",
            "-i",
            "gelu_audit_sample_plugin:good_gelu",
            "-i",
            "torch-gelu",
            "--path",
            "out",
        ],
        ["accuracy", "-d", "fp16", "-i", "numpy-erf", "--range", "-1:1", "-f", "junit", "--max-ulp", "nan"],
        [
            "speed",
            "-i",
            "numpy-erf",
            "--sizes",
            "99999999999G",
            "--samples",
            "3",
            "--target",
            "0",
            "--warmup",
            "0",
        ],
        ["accuracy", "-d", "fp16", "-i", "numpy-erf", "--range", "-1:1", "-j", "99999999999999999999"],
        ["compare", "missing.json", "missing.json"],
        ["speed", "-i", "numpy-erf", "--sizes", "1K", "--samples", "3", "--target", "0", "--warmup", "1e309"],
        [
            "speed",
            "-i",
            "numpy-erf",
            "--sizes",
            "1K",
            "--samples",
            "3",
            "--target",
            "0",
            "--threads",
            "99999999999999999999",
        ],
    ],
    ids=[
        "paths-plugin",
        "nan-gate",
        "huge-size",
        "huge-jobs",
        "missing-files",
        "endless-warmup",
        "huge-threads",
    ],
)
def test_cases_the_fuzz_found_or_would_find(argv: list[str], sample_plugin: Path) -> None:
    check(argv, invoke(argv))
