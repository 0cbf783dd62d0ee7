"""The layout's one rule: dependencies point one way, down the pipeline.

Every ``import`` of every module (those inside functions too: a lazy import is still a
dependency) is parsed, and a module may import only its own package and the layers below it.
``references`` and ``implementations`` are siblings: neither may import the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gelu_audit"

LAYERS: dict[str, int] = {
    "errors": -1,
    "progress": 0,
    "environment": 0,
    "user_cache": 0,
    "numerics": 1,
    "references": 2,
    "implementations": 2,
    "audits": 3,
    "report": 4,
    "api": 5,
    "pytest_plugin": 6,
    "cli": 7,
    "__main__": 8,
}
"""Each top-level module or package of gelu_audit and its height: a module may import what is
lower, and its own package. ``errors`` is below the rest of the foundation, which may raise
them. The root ``gelu_audit`` (the version) is below everything; its ``__init__`` loads the
public API lazily, the one upward reference, by design (PEP 562)."""


def _unit(module: str) -> str:
    """The layer a ``gelu_audit.…`` module belongs to: its first component below the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every gelu_audit import, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base == "gelu_audit":  # `from gelu_audit import x`: x may be a module
                found += [(node.lineno, f"gelu_audit.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return [(line, name) for line, name in found if name.split(".")[0] == "gelu_audit"]


def test_every_top_level_module_has_a_layer() -> None:
    units = {_unit(name) for name, _ in _modules()} - {""}
    assert units <= set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"
    assert {"numerics", "references", "implementations", "audits", "report", "cli"} <= units


@pytest.mark.parametrize("module, path", _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_point_down(module: str, path: Path) -> None:
    unit = _unit(module)
    if unit == "":
        return  # the root: __version__ and the lazy public API
    upward = []
    for line, imported in _imports(path, module):
        target = _unit(imported)
        if target in ("", unit) or imported == "gelu_audit.__version__":
            continue
        if target == "__version__":
            continue
        if LAYERS[target] >= LAYERS[unit]:
            upward.append(f"line {line}: {imported} ({target}, layer {LAYERS[target]})")
    assert not upward, f"{module} (layer {LAYERS[unit]}) imports upward or sideways: " + "; ".join(upward)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an audits module importing the report layer is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gelu_audit.report.envelope import dumps\n", encoding="utf-8")
    imports = _imports(bad, "gelu_audit.audits.bad")
    assert imports == [(2, "gelu_audit.report.envelope")]
    assert LAYERS[_unit(imports[0][1])] >= LAYERS["audits"]
