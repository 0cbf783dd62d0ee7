"""Which CPU kernel F.gelu takes, per dtype: detected by comparing bits with oneDNN off."""

from __future__ import annotations

import json

from gelu_audit.implementations.cpu_paths import CpuPath, detect_cpu_path, probe_patterns
from gelu_audit.implementations.registry import registry
from gelu_audit.numerics.formats import BF16, FP16, FP64
from tests.cli.fuzzing import invoke


def test_fp64_goes_to_aten_whatever_the_cpu() -> None:
    known = registry()
    path = detect_cpu_path(known["torch-gelu"], known["torch-gelu-aten"], FP64)
    assert path == CpuPath("fp64", "ATen", len(probe_patterns(FP64)), 0, path.measured_at)
    assert not path.kept


def test_different_bits_are_detected_and_counted() -> None:
    """Two calls that certainly differ (erf against tanh) stand in for oneDNN against ATen."""
    known = registry()
    path = detect_cpu_path(known["torch-gelu-aten"], known["torch-gelu-tanh-aten"], FP16)
    assert path.path == "oneDNN" and 0 < path.differing < path.probes
    assert path.probes == 63_488  # every finite fp16 pattern
    assert "detected" in path.describe()


def test_list_says_what_runs_here_in_table_and_json() -> None:
    table = invoke(["list", "-d", "bf16", "--device", "cpu"])
    assert table.code == 0, table.stderr
    assert "here: bf16 " in table.stdout
    document = json.loads(invoke(["list", "-d", "bf16", "--device", "cpu", "-f", "json"]).stdout)
    rows = {row["implementation"]: row for row in document["implementations"]}
    measured = rows["torch-gelu"]["cpu_path"]
    assert measured["path"] in ("oneDNN", "ATen") and measured["probes"] == len(probe_patterns(BF16))
    assert (measured["path"] == "oneDNN") == (measured["differing"] > 0)
    assert rows["numpy-erf"]["cpu_path"] is None and rows["torch-gelu-aten"]["cpu_path"] is None
