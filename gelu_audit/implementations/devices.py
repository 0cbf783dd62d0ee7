"""Devices: naming them (cpu, cuda, cuda:N), and whether they can be used here.

May import: numerics, errors, implementations.model.
"""

from __future__ import annotations

from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.implementations.model import SkipKind, SkipReason


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


def torch_missing_reason() -> SkipReason | None:
    """Why PyTorch cannot be used here, or None when it can."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return SkipReason(SkipKind.PACKAGE_MISSING, "PyTorch is not installed (pip install torch)")
    return None


def device_unavailable_reason(device: str) -> SkipReason | None:
    """Why ``device`` cannot be used here, or None when it can."""
    if device == "cpu":
        return None
    reason = torch_missing_reason()
    if reason:
        return reason
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
