"""Devices: their names, and what happens when one is missing. Runs without a GPU: only the
answers that need CUDA itself are in the `cuda`-marked tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.implementations.availability import unavailable_reason
from gelu_audit.implementations.devices import device_unavailable_reason, parse_device, resolve_devices
from gelu_audit.implementations.model import SkipKind
from gelu_audit.implementations.registry import availability_rows, registry
from gelu_audit.numerics.formats import FP16

torch = pytest.importorskip("torch")
HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize(
    "text, device",
    [("cpu", "cpu"), ("CPU", "cpu"), ("cuda", "cuda:0"), (" cuda:1 ", "cuda:1"), ("cuda:12", "cuda:12")],
)
def test_device_names(text: str, device: str) -> None:
    assert parse_device(text) == device


@pytest.mark.parametrize("text", ["tpu", "cuda:", "cuda:x", "cuda:-1", "gpu", ""])
def test_unknown_device_names_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="use cpu, cuda or cuda:N"):
        parse_device(text)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_without_cuda_asking_for_it_is_an_error_and_the_default_skips_it() -> None:
    with pytest.raises(EnvironmentUnavailableError, match=r"--device cuda:0: no CUDA device here"):
        resolve_devices(["cuda"])
    devices, skipped = resolve_devices(None)
    assert devices == ["cpu"] and [name for name, _ in skipped] == ["cuda"]
    assert skipped[0][1].kind is SkipKind.DEVICE_UNAVAILABLE
    reason = device_unavailable_reason("cuda:3")
    assert reason is not None and reason.kind is SkipKind.DEVICE_UNAVAILABLE


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_with_cuda_every_device_is_found_and_a_missing_index_is_named() -> None:
    count = torch.cuda.device_count()
    devices, skipped = resolve_devices(None)
    assert devices == ["cpu"] + [f"cuda:{i}" for i in range(count)] and skipped == []
    reason = device_unavailable_reason(f"cuda:{count}")
    assert reason is not None and f"this machine has {count} CUDA device(s)" in reason.message


def test_cpu_only_rows_are_skipped_on_a_gpu_by_kind() -> None:
    """Whether or not a GPU is here: NumPy, other frameworks and the oneDNN switch are CPU-only."""
    known = registry()
    for name in ("numpy-erf", "torch-gelu-aten", "jax-gelu", "onnxruntime-gelu"):
        reason = unavailable_reason(known[name], "cuda:0", FP16)
        assert reason is not None and reason.kind is SkipKind.CPU_ONLY, name
    assert unavailable_reason(known["torch-gelu"], "cuda:0", FP16) is None  # the device is checked apart


def test_list_says_cpu_only_before_what_the_machine_lacks() -> None:
    """`gelu-audit list`: a CPU-only row's CUDA column says "CPU only" (its claim, true on any
    machine), not that this machine has no GPU; a torch row's says what the machine lacks."""
    rows = {(r["implementation"], r["device"]): r for r in availability_rows([FP16], ["cpu", "cuda:0"])}
    for name in ("numpy-erf", "torch-gelu-aten", "jax-jit-gelu", "onnxruntime-gelu"):
        assert rows[(name, "cuda:0")]["reason"] == "CPU only", name
    if not HAS_CUDA:
        assert "no CUDA device here" in rows[("torch-gelu", "cuda:0")]["reason"]


def test_a_torch_kept_as_importing_that_no_longer_does_is_found_out(tmp_path: Path) -> None:
    """A kept "torch imports" is taken at its word only by ``list``; an audit imports. Here
    torch's files stay in place (its fingerprint is unchanged) but importing it fails: the audit's
    check says so, and ``list``, kept as importing, finds out when it measures a CPU path, reports
    the rows as unavailable and keeps that instead."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "GELU_AUDIT_CACHE_DIR": str(tmp_path)}
    kept = subprocess.run(
        [sys.executable, "-m", "gelu_audit", "list", "-d", "fp16", "--device", "cpu", "-f", "json"],
        env=env,
        capture_output=True,
    )
    assert kept.returncode == 0, kept.stderr
    (tmp_path / "machine-facts.json").write_text(
        (tmp_path / "machine-facts.json").read_text().replace('"cpu path', '"was cpu path')
    )  # the CPU paths forgotten, "torch imports" kept
    code = (
        "import builtins, json\n"
        "real = builtins.__import__\n"
        "def blocked(name, *args, **kwargs):\n"
        "    if name == 'torch' or name.startswith('torch.'):\n"
        "        raise ImportError('libtorch_cpu.so: cannot open shared object file')\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = blocked\n"
        "from gelu_audit.implementations.devices import TORCH_IMPORTS, torch_missing_reason\n"
        "from gelu_audit.implementations.kept_facts import fingerprint, kept_facts\n"
        "from gelu_audit.implementations.registry import availability_rows\n"
        "from gelu_audit.numerics.formats import FP16\n"
        "print(torch_missing_reason().message)\n"
        "print(kept_facts().get(TORCH_IMPORTS, fingerprint()))\n"
        "rows = availability_rows([FP16], ['cpu'])\n"
        "print(json.dumps({r['implementation']: r['reason'] for r in rows}))\n"
        "print(kept_facts().get(TORCH_IMPORTS, fingerprint()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    audit_reason, kept_before, rows, kept_after = result.stdout.splitlines()
    assert (
        audit_reason
        == "PyTorch does not import: ImportError: libtorch_cpu.so: cannot open shared object file"
    )
    assert kept_before == "True" and kept_after == "False"
    reasons = json.loads(rows)
    assert reasons["torch-gelu"] == audit_reason
    assert reasons["numpy-erf"] is None
