"""The command-line fuzz, shared by the test suite (a few hundred cases) and
``benchmarks/fuzz_cli.py`` (thousands): invocations of every command built from the options it
declares, valid values mixed with hostile ones, run in-process on small inputs.

The property (the exit-code contract): the exit code is 0, 1 or 2; stderr has no traceback and
no "internal error"; stdout is empty or exactly one well-formed document in the format asked for;
on exit 2, stderr is one line.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from click.testing import CliRunner
from hypothesis import strategies as st

from gelu_audit.cli import cli, main

HOSTILE = (
    "", " ", "-1", "0", "nan", "inf", "-inf", "1e309", "99999999999999999999", "abc", "[bold]x[/bold]",
    "$x$", "</testcase>", "|", "fp8", "float128", "cuda:99", "tpu", ":", "5:1", "nan:1", "1/0", "0/3",
    "3/2", "1X", "-1K", "99999999999G", "torch-gelu;rm", "no-such-gelu", "os:system", "a:b:c", "%s%n",
)  # fmt: skip
"""Values no option should accept silently, or should handle without falling over."""

CHEAP_VALUES: dict[str, tuple[str, ...]] = {
    "dtype": ("fp16", "bf16", "half", "bfloat16", "fp16,bf16"),
    "impl": (
        "numpy-erf",
        "numpy-tanh",
        "torch-gelu",
        "torch-quick-gelu",
        "gelu_audit_sample_plugin:good_gelu",
    ),
    "device": ("cpu",),
    "range": ("-1:1", "0:0.5", "-2:", ":-3"),
    "samples": ("10", "1"),
    "seed": ("0", "7", "-3"),
    "top": ("1", "3"),
    "max-ulp": ("0", "4", "1e9"),
    "domain-tolerance": ("0", "2"),
    "sizes": ("1K", "2", "1K,2K"),
    "warmup": ("0",),
    "threads": ("1", "2"),
    "path": ("strided", "size-7", "out"),
    "max-slowdown": ("10%", "0.5", "0%"),
    "allow-ulp-increase": ("0", "1"),
    "allow-cr-drop": ("0", "5"),
    "impl-timeout": ("5", "0"),
    "impl-dtypes": ("fp16", "fp16,bf16"),
    "impl-devices": ("cpu",),
    "chunk-size": ("32K", "1M"),
    "jobs": ("1",),
}
"""Valid values that keep a case small: 16-bit formats (no sample sizes to blow up), one CPU
device, few implementations. Options left out here get hostile values only, or none."""

NEVER: dict[str, set[str]] = {
    "accuracy": {"exhaustive", "shard", "no-cache", "cache-dir", "plot", "output", "also", "config"},
    "merge": {"output", "also", "config"},
    "speed": {"baseline", "output", "config", "samples"},
    "paths": {"output", "config"},
    "compare": {"output", "config"},
    "plot": {"output", "config"},
    "list": set(),
}
"""Options the fuzz does not set: they write files or read the configuration (tested by their
own tests), or their valid values are the expensive ones (an exhaustive fp32 run)."""

BASE: dict[str, tuple[str, ...]] = {
    "accuracy": ("-d", "fp16", "-i", "numpy-erf", "--range", "-1:1", "--no-progress"),
    "speed": (
        *("-i", "numpy-erf", "--sizes", "1K", "--samples", "3"),
        *("--target", "0", "--warmup", "0", "--no-progress"),
    ),
    "paths": ("-d", "fp16", "-i", "torch-gelu", "--path", "strided", "--no-progress"),
    "list": ("-d", "fp16",),
    "compare": (),
    "merge": (),
    "plot": (),
}  # fmt: skip
"""What each invocation starts from: a small case; the fuzz's options come after and override."""


CASE_SECONDS = 60
"""An invocation of a small case that runs longer than this is a finding (a hang, or a small
input that is not small)."""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float = 0.0


class TookTooLong(BaseException):
    """Raised by the alarm: a BaseException, so the entry point's error mapping lets it through."""


def _alarm(signum: int, frame: object) -> None:
    raise TookTooLong


def invoke(argv: list[str]) -> Outcome:
    """The console entry point, in this process, with stdout and stderr captured."""
    runner = CliRunner()
    code = 0
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    start = time.perf_counter()
    with runner.isolation() as (out, err, _):
        try:
            main(argv)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 2 if done.code else 0
        except TookTooLong:
            code = -1
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    return Outcome(
        code,
        out.getvalue().decode("utf-8", "replace"),
        err.getvalue().decode("utf-8", "replace"),
        time.perf_counter() - start,
    )


def check(argv: list[str], outcome: Outcome) -> None:
    """The contract, for one invocation."""
    shown = " ".join(argv)
    assert outcome.code != -1, f"more than {CASE_SECONDS} s: gelu-audit {shown}"
    assert outcome.code in (0, 1, 2), f"exit {outcome.code}: gelu-audit {shown}\n{outcome.stderr}"
    assert "Traceback" not in outcome.stderr, f"traceback: gelu-audit {shown}\n{outcome.stderr}"
    assert "internal error" not in outcome.stderr, f"gelu-audit {shown}\n{outcome.stderr}"
    if outcome.code == 2:
        lines = outcome.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gelu-audit: "), (
            f"gelu-audit {shown}\n{outcome.stderr}"
        )
        assert outcome.stdout == "" or "--help" in argv or "-h" in argv, (
            f"exit 2 with output: gelu-audit {shown}"
        )
    if outcome.stdout and "--help" not in argv and "-h" not in argv:
        check_document(argv, outcome.stdout)


def check_document(argv: list[str], text: str) -> None:
    """stdout is one document of the format asked for (the last -f/--format wins)."""
    fmt = "table"
    for flag, value in itertools.pairwise(argv):
        if flag in ("-f", "--format"):
            fmt = value
    shown = " ".join(argv)
    if fmt == "json":
        document = json.loads(text)  # one document: json.loads refuses trailing data
        assert isinstance(document, dict) and str(document.get("schema", "")).startswith("gelu-audit."), shown
    elif fmt == "junit":
        ET.fromstring(text.encode("utf-8"))
    elif fmt == "github":
        assert all(line.startswith("::") for line in text.splitlines()), shown
    elif fmt == "markdown":
        assert text.startswith("## "), shown
    else:
        assert text.strip(), shown


def _options(command: click.Command) -> list[click.Option]:
    never = NEVER.get(command.name or "", set())
    return [
        p for p in command.params
        if isinstance(p, click.Option) and p.opts[-1].lstrip("-") not in never and p.name != "help"
    ]  # fmt: skip


def _long(option: click.Option) -> str:
    return next((o for o in option.opts if o.startswith("--")), option.opts[0])


def option_values(option: click.Option) -> st.SearchStrategy[list[str]]:
    """One occurrence of ``option`` on a command line: a flag, or the option with a value."""
    name = _long(option)
    if option.is_flag:
        return st.just([name])
    valid = list(CHEAP_VALUES.get(name.lstrip("-"), ()))
    if isinstance(option.type, click.Choice):
        valid += [str(c) for c in option.type.choices]
    pool = st.sampled_from(valid) | st.sampled_from(HOSTILE) if valid else st.sampled_from(HOSTILE)
    return pool.map(lambda value: [name, value])


def invocations(files: Callable[[], dict[str, str]]) -> st.SearchStrategy[list[str]]:
    """A command, its small base, then up to five fuzzed options (repeats allowed)."""

    def for_command(name: str) -> st.SearchStrategy[list[str]]:
        command = cli.commands[name]
        options = _options(command)
        fuzzed = st.lists(st.sampled_from(options).flatmap(option_values), max_size=5)
        arguments = st.just([])
        if name in ("compare", "merge", "plot"):
            paths = st.sampled_from(sorted(files().values()))
            count = {"compare": (2, 2), "merge": (1, 3), "plot": (1, 1)}[name]
            arguments = st.lists(paths, min_size=count[0], max_size=count[1])
        extra = {"plot": ["-o", os.path.join(files()["dir"], "plot.png")]}.get(name, [])
        return st.tuples(arguments, fuzzed).map(
            lambda parts: [
                name,
                *parts[0],
                *BASE[name],
                *extra,
                *(token for option in parts[1] for token in option),
            ]
        )

    return st.sampled_from(sorted(cli.commands)).flatmap(for_command)


def document_corpus(directory: Path) -> dict[str, str]:
    """Files the commands that read reports are fed: real reports, and damaged ones."""
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / "accuracy.json"
    outcome = invoke(["accuracy", *BASE["accuracy"], "-f", "json"])
    report.write_text(outcome.stdout)
    speed = directory / "speed.json"
    outcome = invoke(["speed", *BASE["speed"], "-f", "json"])
    speed.write_text(outcome.stdout)
    corpus = {"accuracy": str(report), "speed": str(speed), "dir": str(directory)}
    damaged = {
        "empty": "",
        "truncated": report.read_text()[: len(report.read_text()) // 2],
        "not-json": "gelu\n",
        "list": "[1, 2, 3]\n",
        "future": re.sub(r'"schema_version": \d+', '"schema_version": 99', report.read_text(), count=1),
        "foreign": '{"schema": "something.else", "schema_version": 1}\n',
    }
    for name, text in damaged.items():
        path = directory / f"{name}.json"
        path.write_text(text)
        corpus[name] = str(path)
    corpus["missing"] = str(directory / "missing.json")
    corpus["directory"] = str(directory)
    return corpus
