"""`gelu-audit merge`: the shards of an exhaustive run add up to the one run's report."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_usage_error, run_cli


@pytest.mark.slow
def test_merging_shards_equals_one_run(tmp_path) -> None:
    common = [
        "accuracy",
        "-d",
        "fp32",
        "--exhaustive",
        "--range",
        "-8:-7",
        "-i",
        "torch-gelu,numpy-tanh",
        "-f",
        "json",
        "--no-progress",
    ]
    whole = run_cli(*common, "-j", "2", "-o", str(tmp_path / "whole.json"))
    assert whole.returncode == 0, whole.stderr
    for k in (1, 2, 3):
        shard = run_cli(
            *common, "-j", "1", "--chunk-size", "64K", "--shard", f"{k}/3", "-o", str(tmp_path / f"s{k}.json")
        )
        assert shard.returncode == 0, shard.stderr
    merged = run_cli("merge", *(str(tmp_path / f"s{k}.json") for k in (3, 1, 2)), "-f", "json")
    assert merged.returncode == 0, merged.stderr
    one, combined = json.loads((tmp_path / "whole.json").read_text()), json.loads(merged.stdout)
    for a, b in zip(one["results"], combined["results"], strict=True):
        a.pop("seconds"), b.pop("seconds")
        assert a == b
    assert one["inputs"]["fp32"]["count"] == combined["inputs"]["fp32"]["count"] == (1 << 21) + 1
    assert [r["regions"] for r in one["references"]["fp32"]] == [
        r["regions"] for r in combined["references"]["fp32"]
    ]
    table = run_cli("merge", *(str(tmp_path / f"s{k}.json") for k in (1, 2, 3)))
    assert table.returncode == 0 and "torch-gelu" in table.stdout

    assert_usage_error(
        run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json")), "missing shard(s) 3 of 3"
    )
    assert_usage_error(run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "s1.json")), "given twice")
    assert_usage_error(run_cli("merge", str(tmp_path / "whole.json")), "not a shard report")
    other = json.loads((tmp_path / "s2.json").read_text())
    other["settings"]["top"] = 9
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert_usage_error(
        run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "other.json"), str(tmp_path / "s3.json")),
        "other settings (top)",
    )
    assert one["settings"]["reference_tier"] == combined["settings"]["reference_tier"] == "scipy"
    other = json.loads((tmp_path / "s2.json").read_text())
    other["settings"]["reference_tier"] = "torch:cuda:0"  # a shard run on a GPU: other mantissas
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert_usage_error(
        run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "other.json"), str(tmp_path / "s3.json")),
        "other settings (reference_tier)",
    )
    other = json.loads((tmp_path / "s2.json").read_text())  # a runner without numpy-tanh: a third
    other["results"] = [r for r in other["results"] if r["implementation"] != "numpy-tanh"]  # of its
    (tmp_path / "other.json").write_text(json.dumps(other))  # space must not pass for the whole
    assert_usage_error(
        run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "other.json"), str(tmp_path / "s3.json")),
        "audited other cases than",
    )
    for shard in ("s1", "s2", "s3"):  # every shard the same, but not a tier this version knows
        document = json.loads((tmp_path / f"{shard}.json").read_text())
        document["settings"]["reference_tier"] = "jax"
        (tmp_path / f"odd-{shard}.json").write_text(json.dumps(document))
    assert_usage_error(
        run_cli("merge", *(str(tmp_path / f"odd-s{k}.json") for k in (1, 2, 3))),
        "unknown reference tier 'jax'",
    )


def test_missing_shards_are_named_as_runs() -> None:
    """A merge of one shard of 4,096 names the other 4,095 in one short line."""
    from gelu_audit.audits.merge import number_ranges

    assert number_ranges([1, 3, 4, 5, 9]) == "1, 3–5, 9"
    assert number_ranges(list(range(2, 4097))) == "2–4096"


NAN_HATER = """
import torch
import torch.nn.functional as F


def gelu(x):
    if torch.isnan(x).any():
        raise ValueError("no NaN please")
    return F.gelu(x)
"""


def test_a_case_that_failed_at_the_special_inputs_stays_failed_when_merged(tmp_path) -> None:
    """The specials (±inf, NaN) run after the stream, so a kernel that raises only there has a
    whole state in each shard and its error only in the shard's results: the merge rebuilt the
    case from the state and passed it (exit 0)."""
    (tmp_path / "nan_hater.py").write_text(NAN_HATER, encoding="utf-8")
    env = {"PYTHONPATH": str(tmp_path)}
    audit = ("accuracy", "-d", "fp32", "--exhaustive", "--range", "1:1.001", "-i", "nan_hater:gelu")
    for k in (1, 2):
        shard = run_cli(
            *audit, "--shard", f"{k}/2", "-f", "json", "-o", str(tmp_path / f"s{k}.json"), env=env
        )
        assert shard.returncode == 1, shard.stderr
    merged = run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-f", "json")
    assert merged.returncode == 1, merged.stderr
    (case,) = json.loads(merged.stdout)["results"]
    assert case["status"] == "error" and "no NaN please" in case["error"]
