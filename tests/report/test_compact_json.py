"""Version 3 accuracy documents: profiles written once per dtype, read back in full."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.errors import ReportFormatError
from gelu_audit.report.envelope import DocumentKind, jsonable, load_document
from gelu_audit.report.json_documents import render_accuracy_json


@pytest.fixture(scope="module")
def audited():
    settings = AuditSettings(
        dtypes=("bf16", "fp32"),
        implementations=("numpy-erf", "numpy-tanh"),
        samples=3000,
        cache_dir=Path(os.environ["GELU_AUDIT_CACHE_DIR"]),  # the session's cached tables
    )
    return run_audit(settings)


def test_profiles_are_written_once_per_dtype_and_read_back_whole(audited, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(render_accuracy_json(audited, {}), encoding="utf-8")
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["schema_version"] == 3
    for case in written["results"]:
        assert "x_lo" not in case["exact"]["profile"]  # the dtype's segments are in inputs
        assert set(case["exact"]["profile"]["nonfinite"]) == {"at", "count"}
    assert set(written["inputs"]["fp32"]["profile_segments"]) == {"x_lo", "x_hi", "points"}

    loaded = load_document(path, DocumentKind.ACCURACY)
    for case, result in zip(loaded["results"], audited.results):
        assert case["exact"]["profile"] == json.loads(json.dumps(jsonable(result.exact.profile)))
        if result.own_formula is not result.exact:
            assert case["own_formula"]["profile"] == json.loads(
                json.dumps(jsonable(result.own_formula.profile))
            )


def test_a_sparse_column_that_does_not_add_up_is_refused_in_one_line(audited, tmp_path: Path) -> None:
    document = json.loads(render_accuracy_json(audited, {}))
    document["results"][0]["exact"]["profile"]["over_tolerance"]["count"].append(3)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ReportFormatError, match="not a consistent gelu-audit report"):
        load_document(path, DocumentKind.ACCURACY)
