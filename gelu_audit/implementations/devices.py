"""Devices: naming them (cpu, cuda, cuda:N), and whether they can be used here.

May import: numerics, errors, implementations.model, .kept_facts.
"""

from __future__ import annotations

import sys

from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.implementations.kept_facts import KeptFacts, fingerprint, torch_install
from gelu_audit.implementations.model import SkipKind, SkipReason, first_line


def parse_device(text: str) -> str:
    """Normalise a device name: ``cpu``, ``cuda`` (= ``cuda:0``) or ``cuda:N``."""
    name = text.strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda":
        return "cuda:0"
    if name.startswith("cuda:") and name[5:].isdigit():
        return name
    raise UsageError(f"unknown device {text!r}: use cpu, cuda or cuda:N")


TORCH_IMPORTS = "torch imports"
"""The kept fact that torch imported here (see :mod:`~gelu_audit.implementations.kept_facts`)."""


def torch_missing_reason(facts: KeptFacts | None = None) -> SkipReason | None:
    """Why PyTorch cannot be used here, or None when it can.

    Loaded torch can be used; otherwise it is imported, which is the only sure answer and costs
    over a second. ``list``, which must answer faster than that, passes its ``facts``: then a
    torch kept as importing under this installation's fingerprint is taken at its word, and
    what an import finds is kept. (If a library torch needs goes away later, ``list`` finds
    out when it next measures a CPU path, or with ``--remeasure``; an audit always imports.)"""
    if sys.modules.get("torch") is not None:
        return None
    key = fingerprint() if facts is not None else None  # None when no installed torch can be read
    if facts is not None and facts.get(TORCH_IMPORTS, key) is True:
        return None
    try:
        import torch  # noqa: F401
    except Exception as error:  # noqa: BLE001 - an ImportError, or a broken native library
        if facts is not None:
            facts.put(TORCH_IMPORTS, key, False)
        if torch_install() is None and isinstance(error, ImportError):
            return SkipReason(SkipKind.PACKAGE_MISSING, "PyTorch is not installed (pip install torch)")
        return SkipReason(SkipKind.PACKAGE_MISSING, f"PyTorch does not import: {first_line(error)}")
    if facts is not None:
        facts.put(TORCH_IMPORTS, key, True)
    return None


def device_unavailable_reason(device: str, facts: KeptFacts | None = None) -> SkipReason | None:
    """Why ``device`` cannot be used here, or None when it can. A torch built without GPU
    support answers without being imported."""
    if device == "cpu":
        return None
    reason = torch_missing_reason(facts)
    if reason:
        return reason
    install = torch_install()
    if install is not None and not install.has_gpu_support:
        return SkipReason(
            SkipKind.DEVICE_UNAVAILABLE,
            f"no CUDA device here (this PyTorch, {install.version}, is built without CUDA)",
        )
    import torch

    if not torch.cuda.is_available():
        return SkipReason(
            SkipKind.DEVICE_UNAVAILABLE, "no CUDA device here (torch.cuda.is_available() is False)"
        )
    index = int(device.split(":")[1])
    if index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        return SkipReason(
            SkipKind.DEVICE_UNAVAILABLE, f"{device} does not exist: this machine has {count} CUDA device(s)"
        )
    return None


def resolve_devices(requested: list[str] | None) -> tuple[list[str], list[tuple[str, SkipReason]]]:
    """Devices to audit and the default ones skipped with why.

    Asked-for devices that are unavailable are an error (exit 2); from the default set
    (cpu and cuda) they are skipped with the reason.
    """
    if requested:
        devices = list(dict.fromkeys(parse_device(d) for d in requested))
        for device in devices:
            reason = device_unavailable_reason(device)
            if reason:
                raise EnvironmentUnavailableError(f"--device {device}: {reason}")
        return devices, []
    devices, skipped = ["cpu"], []
    reason = device_unavailable_reason("cuda:0")
    if reason:
        skipped.append(("cuda", reason))
    else:
        import torch

        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices, skipped
