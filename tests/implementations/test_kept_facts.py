"""Facts measured about this machine's torch, kept between runs: read back only under the same
fingerprint, never trusted when damaged, and giving the same answers as measuring again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gelu_audit.implementations.cpu_paths import cpu_path_here, detect_cpu_path
from gelu_audit.implementations.kept_facts import (
    FACTS_FILE,
    KEPT_MACHINES,
    KeptFacts,
    fingerprint,
    torch_install,
)
from gelu_audit.implementations.registry import registry
from gelu_audit.numerics.formats import BF16, FP16

torch = pytest.importorskip("torch")


def test_the_install_is_read_without_importing_torch_and_agrees_with_it() -> None:
    install = torch_install()
    assert install is not None
    assert install.version == torch.__version__ and install.git_version == torch.version.git_version
    assert install.cuda == torch.version.cuda and install.hip == torch.version.hip
    assert install.has_gpu_support == (torch.version.cuda is not None or torch.version.hip is not None)
    code = "import sys; from gelu_audit.implementations.kept_facts import torch_install; "
    code += "print(torch_install().version, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == [torch.__version__, "False"], result.stderr


def test_a_fact_is_read_back_only_under_its_own_fingerprint(tmp_path: Path) -> None:
    facts = KeptFacts(tmp_path / FACTS_FILE)
    key = fingerprint()
    facts.put("answer", key, {"value": 42})
    assert facts.get("answer", key) == {"value": 42}
    assert facts.get("answer", fingerprint("another compiler")) is None
    assert facts.get("question", key) is None
    assert KeptFacts(None).get("answer", key) is None  # no cache directory: nothing read
    remeasure = KeptFacts(tmp_path / FACTS_FILE, read=False)
    assert remeasure.get("answer", key) is None  # measured again...
    remeasure.put("answer", key, {"value": 43})
    assert facts.get("answer", key) == {"value": 43}  # ...and kept


def test_the_fingerprint_follows_the_dispatch_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = fingerprint()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert fingerprint() != before
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # threads do not choose the kernel
    assert fingerprint() == before


@pytest.mark.parametrize(
    "damage", [b"\x00garbage", b'{"version": 1, "records": []}', b"[1, 2]", b"", b"[" * 200_000]
)
def test_a_damaged_file_is_a_miss_and_is_replaced(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / FACTS_FILE
    path.write_bytes(damage)
    facts = KeptFacts(path)
    assert facts.get("answer", fingerprint()) is None
    facts.put("answer", fingerprint(), True)
    assert facts.get("answer", fingerprint()) is True
    assert json.loads(path.read_text())["version"] == 1


def test_a_write_that_fails_keeps_nothing_and_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    facts = KeptFacts(blocker / FACTS_FILE)  # its folder cannot be made
    facts.put("answer", fingerprint(), True)
    assert facts.get("answer", fingerprint()) is None


def test_the_file_keeps_the_most_recently_measured_machines(tmp_path: Path) -> None:
    facts = KeptFacts(tmp_path / FACTS_FILE)
    keys = [fingerprint(str(n)) for n in range(KEPT_MACHINES + 3)]
    for key in keys:
        facts.put("answer", key, key)
    kept = [key for key in keys if facts.get("answer", key) == key]
    assert kept == keys[-KEPT_MACHINES:]


def test_a_kept_cpu_path_is_the_measured_one(tmp_path: Path) -> None:
    known = registry()
    default, aten = known["torch-gelu"], known["torch-gelu-aten"]
    facts = KeptFacts(tmp_path / FACTS_FILE)
    for fmt in (FP16, BF16):
        first = cpu_path_here(default, aten, fmt, facts)
        again = cpu_path_here(default, aten, fmt, facts)
        assert not first.kept and again.kept
        assert (again.path, again.probes, again.differing, again.measured_at) == (
            first.path,
            first.probes,
            first.differing,
            first.measured_at,
        )
        fresh = detect_cpu_path(default, aten, fmt)
        assert (fresh.path, fresh.differing) == (first.path, first.differing)
        assert ("measured " + first.measured_at[:10]) in again.describe()


def _list_json(cache: Path, *options: str) -> tuple[dict, list[str]]:
    code = (
        "import sys, io, contextlib, json\n"
        "from gelu_audit.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    try: main(['list', '-f', 'json', *{list(options)!r}])\n"
        "    except SystemExit: pass\n"
        "print(json.dumps([json.loads(out.getvalue()), [m for m in ('torch',) if m in sys.modules]]))"
    )
    env = {**os.environ, "GELU_AUDIT_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    document, loaded = json.loads(result.stdout)
    return document, loaded


def test_list_answers_from_kept_facts_without_importing_torch(tmp_path: Path) -> None:
    """Issue 16's start-up: `list` in 1.5 s, when ``import torch`` alone takes 1.1–1.4 s. (On
    the CPU: a CUDA build imports torch to ask for its devices.)"""
    options = ("-d", "fp16,fp64", "--device", "cpu")
    first, first_loaded = _list_json(tmp_path, *options)
    again, again_loaded = _list_json(tmp_path, *options)
    remeasured, remeasured_loaded = _list_json(tmp_path, *options, "--remeasure")
    after, after_loaded = _list_json(tmp_path, *options)
    assert first_loaded == ["torch"] and again_loaded == [] and remeasured_loaded == ["torch"]
    assert after_loaded == []

    def answers(document: dict) -> list:
        paths = [
            {k: v for k, v in (row["cpu_path"] or {}).items() if k not in ("kept", "measured_at")}
            for row in document["implementations"]
        ]
        return [(row["available"], row["reason"]) for row in document["implementations"]] + paths

    assert answers(first) == answers(again) == answers(remeasured) == answers(after)

    def paths(document: dict) -> list[dict]:
        return [row["cpu_path"] for row in document["implementations"] if row["cpu_path"]]

    assert paths(again) and all(p["kept"] for p in paths(again))
    assert not any(p["kept"] for p in paths(remeasured))
    # what --remeasure measured is what is kept from then on
    assert [(p["kept"], p["measured_at"]) for p in paths(after)] == [
        (True, p["measured_at"]) for p in paths(remeasured)
    ]


def test_list_works_where_no_cache_directory_can_be_named(tmp_path: Path) -> None:
    env = {**os.environ, "GELU_AUDIT_CACHE_DIR": "~no-such-user-gelu-audit/cache"}
    listing = subprocess.run(
        [sys.executable, "-m", "gelu_audit", "list", "-d", "fp16", "--device", "cpu", "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout)["implementations"]
    audit = subprocess.run(
        [sys.executable, "-m", "gelu_audit", "accuracy", "-d", "fp16", "-i", "numpy-erf"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert audit.returncode == 2 and len(audit.stderr.strip().splitlines()) == 1, audit.stderr
    assert "GELU_AUDIT_CACHE_DIR" in audit.stderr and "Traceback" not in audit.stderr


@pytest.mark.slow
@pytest.mark.compile
def test_kept_probe_loads_skip_the_children_and_change_nothing_else(tmp_path: Path) -> None:
    """The first process runs Inductor's ISA probe, loading each library in a child Python, and
    keeps the loads that succeeded; the second asks no child for those. Both find the same ISA
    list, pick the same ISA, leave Inductor's configuration alone, and compile fp16 GELU to the
    same bits on every input."""
    code = (
        "import hashlib, subprocess, sys, torch\n"
        "children = []\n"
        "real_run = subprocess.run\n"
        "def counting(args, *rest, **options):\n"
        "    if list(args[:2]) == [sys.executable, '-c']:\n"
        "        children.append(args)\n"
        "    return real_run(args, *rest, **options)\n"
        "subprocess.run = counting\n"
        "import torch._inductor.config as inductor_config\n"
        "from torch._inductor.cpu_vec_isa import pick_vec_isa, valid_vec_isa_list\n"
        "from gelu_audit.implementations.compiled import _prepare, compiled_gelu\n"
        "from gelu_audit.numerics.formats import FP16\n"
        "_prepare('none')('cpu', FP16)\n"
        "x = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.float16)\n"
        "answers = compiled_gelu('none', 'cpu', 'torch.float16')(x).view(torch.int16).numpy()\n"
        "isas = ','.join(str(isa).replace(' ', '_') for isa in valid_vec_isa_list())\n"
        "picked = str(pick_vec_isa()).replace(' ', '_')\n"
        "print(len(children), inductor_config.cpp.vec_isa_ok, hashlib.sha256(answers.tobytes()).hexdigest(), "
        "isas, picked)\n"
    )
    env = {**os.environ, "GELU_AUDIT_CACHE_DIR": str(tmp_path)}
    env.pop("TORCHINDUCTOR_VEC_ISA_OK", None)
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env) for _ in "ab"
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    (first_children, *first), (second_children, *second) = (run.stdout.split() for run in runs)
    kept = [
        fact
        for record in json.loads((tmp_path / FACTS_FILE).read_text())["records"].values()
        for name, fact in record["facts"].items()
        if name.startswith("inductor")
    ]
    assert len(kept) == 1 and int(first_children) >= len(kept[0]) > 0
    assert int(second_children) == 0
    assert first == second and first[0] == "None"  # Inductor's switch untouched, same ISAs and bits
