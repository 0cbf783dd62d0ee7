"""Facts measured about this machine's PyTorch, kept between runs.

Some answers cost more to measure than the command that needs them takes in all, and change only
when the installation does:
- ``gelu-audit list`` must say whether torch runs here and which CPU kernel ``F.gelu`` takes per
  dtype (``cpu_paths``); asking means importing torch, 1.1–1.4 s on the 2-core Xeon, most of
  what ``list`` costs.
- Inductor probes every vector ISA the CPU advertises (it loads a test library in a child
  Python, one per ISA or extension) in every process that compiles on the CPU: 1–2 s before the
  first ``torch.compile`` row can run (``compiled``).

So each answer, once measured, is kept in ``machine-facts.json`` in the cache directory, under a
fingerprint of everything it depends on: gelu-audit's version, the torch installation (its
version, git revision, CUDA build, and ``torch/version.py``'s size and modification time, which
a reinstall changes), the CPU (model and feature flags), the environment variables that steer
PyTorch's dispatch and Inductor, and whatever a fact adds of its own (the loader's variables,
for Inductor's probe loads). When any of those differs, the fingerprint differs and the fact is measured
again. Reading never fails a command: a missing, unreadable or damaged file is a miss, and a
failed write keeps nothing.
May import: foundation (``user_cache``, ``environment``, ``errors``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gelu_audit import __version__
from gelu_audit.environment import cpu_features, cpu_model, timestamp
from gelu_audit.errors import EnvironmentUnavailableError
from gelu_audit.user_cache import default_cache_dir, write_atomically

FACTS_FILE = "machine-facts.json"
FACTS_VERSION = 1
"""Bumped when a fact's meaning changes: every kept fact is then measured again."""
KEPT_MACHINES = 16
"""Fingerprints kept in the file (the most recently measured): one per installation, CPU and
environment a user has run on from this cache directory."""
_STEERING_PREFIXES = ("ATEN_", "ONEDNN_", "DNNL_", "TORCH")
"""Environment variables whose values enter the fingerprint: the CPU capability and oneDNN's ISA
caps (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``) and Inductor's settings
(``TORCHINDUCTOR_*``)."""


@dataclass(frozen=True)
class TorchInstall:
    """The installed torch, read from ``torch/version.py`` without importing torch."""

    version: str
    git_version: str
    cuda: str | None
    hip: str | None
    stamp: str
    """``version.py``'s path, size and modification time: a reinstall or a rebuild changes it."""

    @property
    def has_gpu_support(self) -> bool:
        """Whether this build can use a GPU at all (a CPU-only wheel cannot, whatever the machine)."""
        return self.cuda is not None or self.hip is not None


@cache
def torch_install() -> TorchInstall | None:
    """The installed torch, or None when there is none (or its version file cannot be read:
    then the caller imports torch and finds out)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        source = path.read_text(encoding="utf-8")
        values: dict[str, Any] = {}
        for node in ast.parse(source).body:  # name = literal, or name: type = literal
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
    except (OSError, SyntaxError, ValueError):
        return None
    stamp = file_stamp(path)
    if not isinstance(values.get("__version__"), str) or stamp is None:
        return None
    return TorchInstall(
        version=values["__version__"],
        git_version=str(values.get("git_version")),
        cuda=values.get("cuda"),
        hip=values.get("hip"),
        stamp=stamp,
    )


def file_stamp(path: Path | str) -> str | None:
    """A file by path, size and modification time, which a rewrite changes (None where it is
    not there): how a kept fact names the files it depends on."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return f"{path}:{status.st_size}:{status.st_mtime_ns}"


def fingerprint(*own: str) -> str | None:
    """What a kept fact depends on, hashed; None without an installed torch, or where the OS does
    not list the CPU's features (then nothing is kept: two CPUs could not be told apart).
    ``own`` is what one fact depends on besides (a compiler's identity)."""
    install, features = torch_install(), cpu_features()
    if install is None or not features:
        return None
    parts = {
        "facts_version": FACTS_VERSION,
        "gelu_audit": __version__,
        "torch": asdict(install),
        "cpu": [cpu_model(), features],
        "environment": sorted(
            (name, value) for name, value in os.environ.items() if name.startswith(_STEERING_PREFIXES)
        ),
        "dispatch": _dispatch_switches(),
        "own": list(own),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _dispatch_switches() -> list[bool]:
    """The in-process switch that sends ``F.gelu`` to ATen instead of oneDNN
    (``torch.backends.mkldnn``): on, as in any fresh process, unless torch is loaded here and
    its caller turned it off."""
    torch = sys.modules.get("torch")
    if torch is None:
        return [True]
    try:
        return [bool(torch.backends.mkldnn.enabled)]
    except AttributeError:  # a torch without the switch: as in a fresh process
        return [True]


@dataclass(frozen=True)
class KeptFacts:
    """The facts file: read a fact measured under the same fingerprint, keep a new one.

    ``path`` None keeps and reads nothing (no cache directory can be named here); ``read``
    False measures everything again and keeps the new answers (``list --remeasure``)."""

    path: Path | None
    read: bool = True

    def get(self, name: str, key: str | None) -> Any | None:
        """The value kept for ``name`` under fingerprint ``key``, or None."""
        if self.path is None or key is None or not self.read:
            return None
        record = self._records().get(key)
        return record["facts"].get(name) if isinstance(record, dict) else None

    def put(self, name: str, key: str | None, value: Any) -> None:
        """Keep ``value`` for ``name`` under ``key``, with the time it was measured. A write that
        fails (read-only or full disk) keeps nothing: the fact is measured again next time."""
        if self.path is None or key is None:
            return
        records = self._records()
        record = records.pop(key, None) or {"facts": {}}
        record["facts"][name] = value
        record["measured_at"] = timestamp()
        records[key] = record  # last: the most recently measured machine is kept longest
        kept = dict(list(records.items())[-KEPT_MACHINES:])
        text = json.dumps({"version": FACTS_VERSION, "records": kept}, indent=1)  # in order: oldest first
        try:
            write_atomically(self.path, lambda handle: handle.write(text.encode()))
        except OSError:
            return

    def _records(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # unreadable, not JSON, nested too deep
            return {}
        if not isinstance(document, dict) or document.get("version") != FACTS_VERSION:
            return {}
        records = document.get("records")
        if not isinstance(records, dict):
            return {}
        return {
            key: record
            for key, record in records.items()
            if isinstance(record, dict) and isinstance(record.get("facts"), dict)
        }


def kept_facts(read: bool = True) -> KeptFacts:
    """The facts file in the cache directory (``$GELU_AUDIT_CACHE_DIR``, else the user cache);
    none where no cache directory can be named (the facts are then measured every time)."""
    try:
        return KeptFacts(default_cache_dir() / FACTS_FILE, read)
    except EnvironmentUnavailableError:
        return KeptFacts(None)
