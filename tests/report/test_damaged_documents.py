"""Every command that reads a saved report, fed damaged ones: one line, exit 2, in seconds.

compare, merge, plot and ``speed --baseline`` each get the same corpus: empty, truncated, not
JSON, JSON of the wrong type, another schema, a future version, NaN where a number belongs, a
field of the wrong type, numbers that contradict each other, a 100 MB file and deep nesting.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.fuzzing import BASE, invoke

SHARD_RUN = ["accuracy", "-d", "fp32", "--exhaustive", "--range", "1:1.002", "-i", "numpy-erf", "-j", "1"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Real reports to damage: an accuracy report, a shard report, a speed report."""
    found = {}
    for name, argv in {
        "accuracy": ["accuracy", *BASE["accuracy"]],
        "shard": [*SHARD_RUN, "--shard", "1/1", "--no-progress"],
        "speed": ["speed", *BASE["speed"]],
    }.items():
        outcome = invoke([*argv, "-f", "json"])
        assert outcome.code in (0, 1), outcome.stderr
        found[name] = json.loads(outcome.stdout)
    return found


def _edit(kind: str, change: Callable[[dict], None]) -> Callable[[dict[str, dict]], str]:
    def make(reports: dict[str, dict]) -> str:
        document = copy.deepcopy(reports[kind])
        change(document)
        return json.dumps(document)

    return make


def _set_first(path: list, value: object) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


COMMANDS: dict[str, tuple[str, Callable[[str, Path], list[str]]]] = {
    "compare": ("accuracy", lambda damaged, good: ["compare", str(good), damaged]),
    "merge": ("shard", lambda damaged, good: ["merge", damaged]),
    "plot": ("accuracy", lambda damaged, good: ["plot", damaged, "-o", str(good.with_suffix(".png"))]),
    "speed": ("speed", lambda damaged, good: ["speed", *BASE["speed"], "--baseline", damaged]),
}
"""Each reader: the kind of report it reads, and its command line for a damaged file."""


def _both_broken(document: dict) -> None:
    """What compare reads (max ULP) and what plot draws (the profile) contradict themselves."""
    exact = document["results"][0]["exact"]
    exact["max_ulp"] = "lots"
    exact["profile"]["max_ulp"] = exact["profile"]["max_ulp"][:-1]


def damages(kind: str) -> dict[str, tuple[Callable[[dict[str, dict]], str], str]]:
    """Damaged versions of a report of ``kind``, with what the one line must say."""
    schema = f"gelu-audit.{'speed' if kind == 'speed' else 'accuracy'}"
    contradiction = {
        "accuracy": (_both_broken, "not a consistent gelu-audit report"),
        "shard": (
            _set_first(["shard_state", "fp32", "cases", "numpy-erf@cpu", "exact", "finite"], 10**9),
            "counts out of order",
        ),
        "speed": (_set_first(["cases", 0, "size"], "huge"), "not a consistent gelu-audit report"),
    }[kind]
    wrong_type, wrong_message = {
        "accuracy": (["results"], "not a consistent gelu-audit report"),
        "shard": (["shard_state"], "holds no fp32 state"),
        "speed": (["cases"], "not a consistent gelu-audit report"),
    }[kind]
    other = '{"schema": "gelu-audit.list", "schema_version": 1}'
    only_speed = (
        {"bad-copy": (_edit(kind, _set_first(["cases", 0, "copy"], {"median": "fast"})), wrong_message)}
        if kind == "speed"
        else {}
    )
    return only_speed | {
        "empty": (lambda r: "", "is not JSON"),
        "truncated": (lambda r: json.dumps(r[kind])[:200], "is not JSON"),
        "not-json": (lambda r: "<html>\n", "is not JSON"),
        "list": (lambda r: "[1, 2, 3]", f"is not a {schema}"),
        "other-schema": (lambda r: other, "schema: 'gelu-audit.list'"),
        "future": (_edit(kind, _set_first(["schema_version"], 99)), "schema version 99"),
        "nan-token": (
            lambda r: (
                json.dumps(r[kind])
                .replace('"seed": 0', '"seed": NaN', 1)
                .replace('"samples": 3', '"samples": NaN', 1)
            ),
            "NaN where a number belongs",
        ),
        "wrong-type": (_edit(kind, _set_first(wrong_type, "nothing")), wrong_message),
        "contradiction": (_edit(kind, contradiction[0]), contradiction[1]),
        "deep": (lambda r: "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    }


CASES = [(command, damage) for command, (kind, _) in COMMANDS.items() for damage in damages(kind)]


@pytest.mark.parametrize("command, damage", CASES, ids=[f"{c}-{d}" for c, d in CASES])
def test_a_damaged_report_is_one_line_and_exit_2(
    command: str, damage: str, reports: dict[str, dict], tmp_path: Path
) -> None:
    kind, argv = COMMANDS[command]
    make, message = damages(kind)[damage]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(reports[kind]))
    damaged = tmp_path / "damaged.json"
    damaged.write_text(make(reports))
    outcome = invoke(argv(str(damaged), good))
    assert outcome.code == 2, (outcome.code, outcome.stdout[:300], outcome.stderr)
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "internal error" not in lines[0], outcome.stderr
    assert outcome.stdout == "" and outcome.seconds < 30


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_100_mb_file_is_refused_before_it_is_read(
    command: str, reports: dict[str, dict], tmp_path: Path
) -> None:
    kind, argv = COMMANDS[command]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(reports[kind]))
    huge = tmp_path / "huge.json"
    with open(huge, "w") as handle:
        handle.write('{"schema": "gelu-audit.accuracy", "padding": "')
        handle.write("x" * (100 << 20))
        handle.write('"}')
    outcome = invoke(argv(str(huge), good))
    assert outcome.code == 2 and "larger than any gelu-audit report" in outcome.stderr, outcome.stderr
    assert outcome.seconds < 5
