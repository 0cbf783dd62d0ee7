"""Subnormal flushing as a property of its own, the accurate domain over normal numbers, and the
thresholds on the flush."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.special

from gelu_audit.audits.accuracy import AuditReport, AuditSettings, audit_case, prepared_blocks, references_for
from gelu_audit.audits.accuracy import verdict as case_verdict
from gelu_audit.audits.thresholds import Threshold, parse_thresholds
from gelu_audit.errors import UsageError
from gelu_audit.implementations.model import Implementation
from gelu_audit.numerics.formats import FP16
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import exhaustive_inputs
from gelu_audit.progress import SILENT
from gelu_audit.report.table import render_accuracy_table

TINY = FP16.smallest_normal


def _exact(x: np.ndarray) -> np.ndarray:
    wide = x.astype(np.float64)
    return (0.5 * wide * scipy.special.erfc(-wide / np.sqrt(2))).astype(x.dtype)


def _daz_ftz(x: np.ndarray) -> np.ndarray:
    """Subnormal inputs read as 0, subnormal results written as 0: correctly rounded otherwise."""
    y = _exact(np.where(np.abs(x) < TINY, np.float16(0), x))
    return np.where(np.abs(y) < TINY, np.float16(0), y).astype(np.float16)


def _case(function):
    inputs = exhaustive_inputs(FP16)
    settings = AuditSettings(dtypes=("fp16",), cache_dir=Path(os.environ["GELU_AUDIT_CACHE_DIR"]))
    references, _ = references_for(inputs, {ERF}, settings, SILENT)
    impl = Implementation("flushing", "numpy", ERF, function, "test double")
    return audit_case(impl, "cpu", inputs, prepared_blocks(inputs, references, 5), 2.0)


@pytest.fixture(scope="module")
def flushing():
    return _case(_daz_ftz)


def test_flushing_subnormals_is_reported_as_a_property_not_as_the_domain(flushing) -> None:
    stats = flushing.exact
    handling = stats.subnormals
    assert handling.inputs > 0 and handling.inputs_flushed == handling.inputs
    assert handling.outputs > 0 and handling.outputs_flushed == handling.outputs
    assert handling.describe() == (
        "subnormal inputs flushed to 0 (DAZ-like), subnormal results flushed to 0 (FTZ-like)"
    )
    # over every input the domain ends at the first subnormal; over normal numbers it is wide
    assert stats.accurate_domain.hi is not None and stats.accurate_domain.hi < TINY
    normal = stats.accurate_domain_normal
    assert normal is not None and normal.lo is not None and normal.hi is not None
    assert normal.lo < -8 and normal.hi == FP16.largest_finite


def test_a_correctly_rounded_kernel_flushes_nothing() -> None:
    stats = _case(_exact).exact
    assert stats.subnormals.inputs_flushed == 0 and stats.subnormals.outputs_flushed == 0
    assert stats.subnormals.describe() == ""
    assert stats.accurate_domain_normal == stats.accurate_domain


def test_the_table_notes_the_flushing_once_and_shows_the_normal_domain(flushing) -> None:
    report = AuditReport(
        AuditSettings(dtypes=("fp16",)), {"fp16": exhaustive_inputs(FP16)}, {}, [flushing], [], 0.0
    )
    report.verdicts.append(case_verdict(flushing, None))
    text = render_accuracy_table(report, color=False, width=200)
    assert "subnormal inputs and results flushed to 0 (DAZ/FTZ-like): flushing (fp16)" in text
    assert flushing.exact.accurate_domain_normal.interval_text() in text


def test_thresholds_on_the_flush(flushing) -> None:
    stats = flushing.exact
    assert stats.flush_to_zero.count > 0
    # results below the smallest normal are flushed: GELU(x) ≈ x/2, so inputs up to 2 × that
    ok = Threshold(max_ulp_outside_flush=0.5, max_flush_below=2 * float(FP16.smallest_normal))
    assert ok.failures(flushing) == []
    strict = Threshold(max_flush_below=-1.0)
    (reason,) = strict.failures(flushing)
    assert "flushes to 0 at x = " in reason and "above -1" in reason
    loose_everywhere = Threshold(max_ulp=0.5)
    assert loose_everywhere.failures(flushing)  # the flushed inputs are far more than 0.5 ULP off


def test_flush_threshold_keys_are_checked() -> None:
    (parsed,) = parse_thresholds([{"max-ulp-outside-flush": 4, "max-flush-below": -5.5}], "pyproject.toml")
    assert parsed.max_ulp_outside_flush == 4 and parsed.max_flush_below == -5.5
    with pytest.raises(UsageError, match="max-flush-below must be a number"):
        parse_thresholds([{"max-flush-below": "low"}], "pyproject.toml")
    with pytest.raises(UsageError, match="max-ulp-outside-flush must be a non-negative number"):
        parse_thresholds([{"max-ulp-outside-flush": -1}], "pyproject.toml")
