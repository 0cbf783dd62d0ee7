"""``--reference-tier``: the torch tier gives the SciPy tier's report on the CPU, auto picks
the audit's GPU, and a tier that cannot run here is one clear line and exit 2."""

from __future__ import annotations

import json

import pytest

from gelu_audit.audits.accuracy import reference_tier_for
from gelu_audit.errors import EnvironmentUnavailableError
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier, TierBackend
from tests.helpers import assert_usage_error, run_cli

torch = pytest.importorskip("torch")


def without_tier(document: dict) -> dict:
    """The report without its timings and the tier's own name."""
    document["settings"].pop("reference_tier")
    for sources in document["references"].values():
        for source in sources:
            for key in ("tier", "from_cache", "note"):  # (the second run reads the 16-bit tables)
                source.pop(key, None)
    for case in document["results"]:
        case.pop("seconds")
    for key in ("created", "summary", "streams"):
        document.pop(key, None)
    return document


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["-d", "fp32,bf16", "--pass", "both", "-i", "torch-gelu,torch-gelu-tanh,numpy-erf"],
        ["-d", "fp32", "--exhaustive", "--range", "-6:-5.9", "-i", "torch-gelu,torch-gelu-tanh", "-j", "2"],
    ],
    ids=["samples", "exhaustive"],
)
def test_the_torch_tier_gives_the_scipy_tiers_report(args: list[str]) -> None:
    """Sampled fp32 (both passes) and exhaustive 16-bit beside it, and a streamed fp32 range,
    each run by both tiers: the same JSON but for the tier's name and the timings."""
    reports = {}
    for tier in ("scipy", "torch"):
        result = run_cli("accuracy", *args, "--reference-tier", tier, "-f", "json", "--no-progress")
        assert result.returncode in (0, 1), result.stderr
        reports[tier] = json.loads(result.stdout)
    scipy, torch_report = reports["scipy"], reports["torch"]
    assert scipy["settings"]["reference_tier"] == "scipy"
    assert torch_report["settings"]["reference_tier"] == "torch:cpu"
    tiers = {s.get("tier") for sources in torch_report["references"].values() for s in sources}
    assert "torch:cpu" in tiers
    assert without_tier(scipy) == without_tier(torch_report)


@pytest.mark.parametrize(
    ("tier", "message"),
    [("numpy", "--reference-tier: unknown reference tier 'numpy'"), ("torch:tpu", "use scipy, torch")],
)
def test_an_unknown_tier_is_a_usage_error(tier: str, message: str) -> None:
    assert_usage_error(run_cli("accuracy", "-d", "fp16", "--reference-tier", tier), message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_gpu_tier_without_a_gpu_is_one_line() -> None:
    result = run_cli("accuracy", "-d", "fp32", "-i", "torch-gelu", "--reference-tier", "torch:cuda")
    assert_usage_error(result, "--reference-tier torch:cuda:0: no CUDA device here")


def test_a_gpu_that_is_not_here_is_refused() -> None:
    with pytest.raises(EnvironmentUnavailableError, match="--reference-tier torch:cuda:999"):
        reference_tier_for(ReferenceTier(TierBackend.TORCH, "cuda:999"), ["cpu"])


def test_auto_runs_the_tier_beside_the_first_gpu() -> None:
    """No GPU is needed to choose: the devices the audit runs on decide."""
    assert reference_tier_for(None, ["cpu"]) == SCIPY_TIER
    assert reference_tier_for(None, ["cpu", "cuda:1", "cuda:0"]) == ReferenceTier(TierBackend.TORCH, "cuda:1")
    asked = ReferenceTier(TierBackend.TORCH, "cpu")
    assert reference_tier_for(asked, ["cpu", "cuda:0"]) == asked
    assert reference_tier_for(SCIPY_TIER, ["cuda:0"]) == SCIPY_TIER
