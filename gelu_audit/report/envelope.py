"""The JSON documents: their envelope (schema, version, tool, time), encoding and loading.

Every document gelu-audit writes starts with the same envelope and is read back through the
same loader, which refuses files that are not ours or of a version it cannot read.
Version history (each schema's ``schema_version``):

* accuracy, speed, paths, list, compare — 1: the first published versions.
* accuracy — 2: each case and each skipped entry has ``pass`` (``forward`` or ``backward``,
  part of the case's identity), and ``settings.passes`` says which were asked for. Version 1
  documents are still read: their cases are forward ones.
* accuracy — 3: the error profiles' segments (``x_lo``, ``x_hi``, ``points``), the same for
  every case of a dtype, are written once, in ``inputs.<dtype>.profile_segments``; each case's
  profile keeps ``max_ulp`` and its counts as sparse ``{"at", "count"}`` columns. The loader
  expands them back (:func:`expand_profiles`), so readers see full profiles whatever the
  version. (A default run's JSON: 2.6 → about 1 MB.)

May import: errors, environment, the package version.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from gelu_audit import __version__
from gelu_audit.environment import timestamp
from gelu_audit.errors import ReportFormatError


class DocumentKind(enum.Enum):
    """The documents gelu-audit writes, by schema id."""

    ACCURACY = "gelu-audit.accuracy"
    SPEED = "gelu-audit.speed"
    PATHS = "gelu-audit.paths"
    LIST = "gelu-audit.list"
    COMPARE = "gelu-audit.compare"

    @property
    def version(self) -> int:
        """The version this gelu-audit writes."""
        return {DocumentKind.ACCURACY: 3, DocumentKind.SPEED: 2}.get(self, 1)

    @property
    def readable_versions(self) -> tuple[int, ...]:
        """The versions this gelu-audit reads. Speed version 1 is not among them: its NumPy,
        JAX and ONNX Runtime rows were timed against NumPy's single-threaded copy, so their
        ratios mean something else, and a baseline comparison with them would be wrong."""
        first = 2 if self is DocumentKind.SPEED else 1
        return tuple(range(first, self.version + 1))


def envelope(kind: DocumentKind) -> dict[str, Any]:
    """The first keys of every document: what it is, which version, who wrote it and when."""
    return {
        "schema": kind.value,
        "schema_version": kind.version,
        "tool": {"name": "gelu-audit", "version": __version__},
        "created": timestamp(),
    }


def jsonable(value: Any) -> Any:
    """Plain JSON data for dataclasses, numpy scalars, paths and enums.

    JSON has no NaN or infinity: non-finite floats become the strings "nan", "inf", "-inf"
    (documented in docs/json-schema.md), so every document parses with a strict parser.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    return value


def dumps(document: dict[str, Any]) -> str:
    """A strict-JSON string (no NaN/Infinity tokens) with a trailing newline.

    Indented for people, except that a list of plain values stays on one line (error profiles
    and histograms are long columns of numbers: one per line, they would be most of the file),
    and so does a small record of plain values (an input and its answer, an estimate and its
    interval): one record, one line; a short table of plain rows (a histogram) likewise."""
    text = _encode(jsonable(document), "") + "\n"
    # A lone surrogate (a kernel's message naming an undecodable file) has no UTF-8 encoding:
    # the document could not be written. Outside strings JSON has none, so each becomes its
    # \uXXXX escape, which a JSON reader turns back into the same character.
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_RECORD_KEYS = 10
"""A dict of at most this many plain values is written on one line."""


def _encode(value: Any, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        if len(value) <= _RECORD_KEYS and all(not isinstance(v, (dict, list)) for v in value.values()):
            return json.dumps(jsonable(value), allow_nan=False, ensure_ascii=False)
        items = [
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_encode(v, inner)}" for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        if len(value) <= _RECORD_KEYS * 2 and all(
            isinstance(v, list) and all(not isinstance(w, (dict, list)) for w in v) for v in value
        ):  # a short table of plain rows: a histogram's [label, count] pairs
            return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        return "[\n" + ",\n".join(inner + _encode(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; gelu-audit writes non-finite numbers as strings."""
    raise ValueError(f"{name} where a number belongs; gelu-audit writes it as the string {name.lower()!r}")


@contextmanager
def reading(paths: str | list[str]) -> Iterator[None]:
    """What a loaded report says is checked as it is used: a field missing, of the wrong type,
    or contradicting another (a shard whose counts do not add up) stops the command with one
    line naming the file(s), instead of an internal error deep in the merge or the comparison."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as error:
        where = paths if isinstance(paths, str) else ", ".join(paths)
        detail = f"missing {error}" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
        raise ReportFormatError(f"{where}: not a consistent gelu-audit report ({detail})") from error


MAX_DOCUMENT_BYTES = 64 << 20
"""No report gelu-audit writes comes near this (a default run with error profiles is about
3 MB): a larger file is refused before it is read, so memory stays bounded."""


def load_document(path: str | Path, *kinds: DocumentKind) -> dict[str, Any]:
    """Load a report, refusing files that are not ours (of one of ``kinds``), of a version this
    gelu-audit cannot read, too large to be a report, or not JSON (NaN tokens included)."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise ReportFormatError(
                f"{path} is {size / 2**20:.1f} MiB, larger than any gelu-audit report "
                f"({MAX_DOCUMENT_BYTES >> 20} MiB at most)"
            )
        document = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except OSError as error:
        raise ReportFormatError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ReportFormatError(f"{path} is not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise ReportFormatError(f"{path} is not JSON ({error.msg} at line {error.lineno})") from None
    except ValueError as error:  # _refuse_constant
        raise ReportFormatError(f"{path} is not strict JSON ({error})") from None
    except RecursionError:
        raise ReportFormatError(f"{path} is nested too deeply to be a gelu-audit report") from None
    by_schema = {kind.value: kind for kind in kinds}
    if not isinstance(document, dict) or document.get("schema") not in by_schema:
        found = document.get("schema") if isinstance(document, dict) else None
        raise ReportFormatError(f"{path} is not a {' or '.join(by_schema)} report (schema: {found!r})")
    kind = by_schema[document["schema"]]
    if document.get("schema_version") not in kind.readable_versions:
        raise ReportFormatError(
            f"{path} has {document['schema']} schema version {document.get('schema_version')!r}; "
            f"this gelu-audit reads version(s) {', '.join(map(str, kind.readable_versions))}"
        )
    if kind is DocumentKind.ACCURACY and document["schema_version"] >= 3:
        with reading(str(path)):
            expand_profiles(document)
    return document


# --- error profiles, written once per dtype (accuracy version 3) ------------------------------

_SEGMENT_COLUMNS = ("x_lo", "x_hi", "points")
_COUNT_COLUMNS = ("over_tolerance", "nonfinite")


def _sparse(values: list[int]) -> dict[str, list[int]]:
    at = [i for i, v in enumerate(values) if v]
    return {"at": at, "count": [values[i] for i in at]}


def _dense(sparse: dict[str, list[int]], length: int) -> list[int]:
    values = [0] * length
    if len(sparse["at"]) != len(sparse["count"]):
        raise ValueError("a sparse profile column's at and count differ in length")
    for i, count in zip(sparse["at"], sparse["count"]):
        values[int(i)] = int(count)
    return values


def compact_profiles(document: dict[str, Any]) -> None:
    """Write each dtype's profile segments once, in ``inputs.<dtype>.profile_segments``, and each
    case's counts sparsely. A case whose segments differ from its dtype's keeps them (never so
    today: every case of a dtype sees the same inputs), so no fact is lost."""
    for case in document["results"]:
        shared = document["inputs"].get(case["dtype"])
        for key in ("exact", "own_formula"):
            stats = case.get(key)
            if not isinstance(stats, dict) or shared is None:
                continue
            profile = stats["profile"]
            segments = {column: profile[column] for column in _SEGMENT_COLUMNS}
            shared.setdefault("profile_segments", segments)
            compact: dict[str, Any] = {} if shared["profile_segments"] == segments else segments
            compact["max_ulp"] = profile["max_ulp"]
            for column in _COUNT_COLUMNS:
                compact[column] = _sparse(profile[column])
            stats["profile"] = compact


def expand_profiles(document: dict[str, Any]) -> None:
    """The inverse of :func:`compact_profiles`: full columns in every case's profile."""
    for case in document.get("results", []):
        for key in ("exact", "own_formula"):
            stats = case.get(key)
            if not isinstance(stats, dict) or "profile" not in stats:
                continue
            profile = stats["profile"]
            if "x_lo" not in profile:
                profile.update(document["inputs"][case["dtype"]]["profile_segments"])
            length = len(profile["x_lo"])
            for column in _COUNT_COLUMNS:
                if isinstance(profile[column], dict):
                    profile[column] = _dense(profile[column], length)
