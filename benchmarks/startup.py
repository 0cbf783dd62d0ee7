"""Start-up: what `list` and `accuracy -d fp16` cost, warm, side by side in one run.

Issue 16's targets: warm `gelu-audit list` ≤ 1.5 s, warm `accuracy -d fp16` with every row
≤ 3 s. Each round runs, one after the other (so a drift of the machine touches every command
alike):

- ``import torch`` alone, the floor of anything that needs torch;
- ``list`` with the kept facts (``machine-facts.json``) warm, and ``list --remeasure``, which
  imports torch and measures F.gelu's CPU paths again (what every ``list`` paid before);
- ``accuracy -d fp16`` with every row; without the two ``torch.compile`` rows; with only them;
- the compiled rows again with the kept facts removed first, so that Inductor's CPU ISA probe
  runs, as it did in every process before the facts were kept;
- every row through ``run_audit`` (rendered as JSON), with the compiled rows built and run in a
  helper process while the rest is audited, as the CLI does, and with them built in the
  audit's own process, as before.

The reference tables are read from the user's cache (linked into a private cache directory,
which also holds this run's facts file), so a first run there builds them once, untimed.

    python benchmarks/startup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMPILED = "torch-compile-gelu,torch-compile-gelu-tanh"
EVERY_ROW = """
import sys
from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.report.json_documents import render_accuracy_json
from gelu_audit.implementations.frameworks import keep_jax_builds
from gelu_audit.user_cache import default_cache_dir
settings = AuditSettings(dtypes=("fp16",), cache_dir=default_cache_dir())  # the CLI's default
keep_jax_builds(settings.cache_dir)  # as the CLI does: these rows differ from it in the helper alone
report = run_audit(settings, use_helper=sys.argv[1] == "helper")
render_accuracy_json(report, {})
"""
"""Every fp16 row through run_audit, the compiled rows in the helper or in the audit's process
(``python -c``: the helper, spawned, has no main module to import again)."""


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds of wall time for one run of ``command`` (its output dropped); a failed run stops
    the benchmark, since its time would mean nothing."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gelu_audit.environment import cpu_model
    from gelu_audit.implementations.kept_facts import FACTS_FILE
    from gelu_audit.implementations.registry import all_implementations
    from gelu_audit.user_cache import default_cache_dir

    tool = [sys.executable, "-m", "gelu_audit"]
    others = ",".join(impl.name for impl in all_implementations() if impl.name not in COMPILED.split(","))
    commands = {
        "import torch": [sys.executable, "-c", "import torch"],
        "list (kept facts)": [*tool, "list"],
        "list --remeasure": [*tool, "list", "--remeasure"],
        "accuracy -d fp16, every row": [*tool, "accuracy", "-d", "fp16", "--no-progress"],
        "  every row but the compiled": [*tool, "accuracy", "-d", "fp16", "-i", others, "--no-progress"],
        "  the compiled rows alone": [*tool, "accuracy", "-d", "fp16", "-i", COMPILED, "--no-progress"],
        "  the compiled rows, ISA probe": [*tool, "accuracy", "-d", "fp16", "-i", COMPILED, "--no-progress"],
        "run_audit, compiled rows in the helper": [sys.executable, "-c", EVERY_ROW, "helper"],
        "run_audit, compiled rows in process": [sys.executable, "-c", EVERY_ROW, "here"],
    }
    with tempfile.TemporaryDirectory() as cache:
        for table in default_cache_dir().glob("reference-fp16-*.npz"):
            (Path(cache) / table.name).symlink_to(table)
        env = {**os.environ, "GELU_AUDIT_CACHE_DIR": cache}
        facts = Path(cache) / FACTS_FILE
        for command in commands.values():  # untimed: tables, facts and Inductor's cache warm
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(options.rounds):
            for label, command in commands.items():
                if label.endswith("ISA probe"):
                    kept = facts.read_bytes()
                    facts.unlink()
                    seconds[label].append(timed(command, env))
                    facts.write_bytes(kept)  # the other commands keep their warm facts
                else:
                    seconds[label].append(timed(command, env))
    print(f"warm start-up, {cpu_model()!r}, {os.cpu_count()} CPUs, {options.rounds} rounds (median; runs):")
    for label, values in seconds.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {label:32s} {statistics.median(values):6.2f} s   ({runs})")


if __name__ == "__main__":
    main()
