"""Limits: the ``--max-ulp`` gate and configured thresholds are one type, evaluated one way."""

from __future__ import annotations

import pytest

from gelu_audit.audits.accuracy import AuditSettings, CaseResult, run_audit, verdict
from gelu_audit.audits.thresholds import Threshold
from tests.helpers import session_cache_dir


@pytest.fixture(scope="module")
def erf_case() -> CaseResult:
    """numpy-erf in fp16: within half an ULP or so, and one non-finite answer (GELU(-inf) is NaN)."""
    (case,) = run_audit(
        AuditSettings(dtypes=("fp16",), implementations=("numpy-erf",), cache_dir=session_cache_dir())
    ).results
    assert case.status == "ok" and case.nonfinite_count == 1
    return case


def test_the_gate_applies_to_every_case_and_allows_no_nonfinite_answer(erf_case: CaseResult) -> None:
    gate = Threshold.gate(1000)
    assert gate.is_gate and gate.max_nonfinite == 0
    assert gate.matches("anything", "bf16", "cuda:3")
    first = erf_case.nonfinite[0]
    assert gate.failures(erf_case) == [
        f"1 non-finite mismatch(es), first at x = {first.x!r} (got {first.got!r})"
    ]
    assert Threshold.gate(0.0).failures(erf_case)[0].startswith("max ")
    assert verdict(erf_case, gate).reasons == tuple(gate.failures(erf_case))


def test_configured_thresholds_name_their_selector(erf_case: CaseResult) -> None:
    strict = Threshold(dtype="fp16", max_nonfinite=0, max_ulp=0.0)
    reasons = strict.failures(erf_case)
    assert reasons[0].startswith("threshold [dtype=fp16]: max ") and reasons[0].endswith("(against exact)")
    assert reasons[1] == "threshold [dtype=fp16]: 1 non-finite mismatch(es) > 0"
    assert Threshold(dtype="fp16", max_nonfinite=1).failures(erf_case) == []
    assert not Threshold(dtype="bf16", max_ulp=0.0).matches("numpy-erf", "fp16", "cpu")


def test_gate_and_thresholds_together(erf_case: CaseResult) -> None:
    covered = Threshold(implementation="numpy-*", domain=(-100.0, 100.0))  # accurate everywhere
    exact = Threshold(implementation="numpy-*", max_abs=0.0)  # rounding leaves some error
    outcome = verdict(erf_case, Threshold.gate(1000), (covered, exact))
    assert not outcome.passed and len(outcome.reasons) == 2
    assert outcome.reasons[1].startswith("threshold [implementation=numpy-*]: max abs error ")
    assert verdict(erf_case, None, ()).passed
