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
    "standard_output": 0,
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


ROOT_API = {"check": "api", "AccuracyCheckError": "api", "gelu_kernel": "implementations"}
"""The names the root loads lazily, and the layer each comes from: ``from gelu_audit import
check`` in a lower module is an import of ``api``, however the root reaches it."""


def _unit(module: str) -> str:
    """The layer a ``gelu_audit.…`` module belongs to: its first component below the root (a
    name of the root's lazy API: the layer it is loaded from)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] == "__version__":
        return ""
    return ROOT_API.get(parts[1], parts[1])


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
        if target in ("", unit):
            continue
        if target not in LAYERS:
            upward.append(
                f"line {line}: {imported} (no layer: a module of gelu_audit's, or add it to LAYERS)"
            )
        elif LAYERS[target] >= LAYERS[unit]:
            upward.append(f"line {line}: {imported} ({target}, layer {LAYERS[target]})")
    assert not upward, f"{module} (layer {LAYERS[unit]}) imports upward or sideways: " + "; ".join(upward)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an audits module importing the report layer is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gelu_audit.report.envelope import dumps\n", encoding="utf-8")
    imports = _imports(bad, "gelu_audit.audits.bad")
    assert imports == [(2, "gelu_audit.report.envelope")]
    assert LAYERS[_unit(imports[0][1])] >= LAYERS["audits"]


def test_the_roots_one_upward_reference_is_its_lazy_api() -> None:
    """The root imports nothing at load time, and inside ``__getattr__`` only the modules its
    public names come from: the one upward reference the layer rule allows, by design."""
    root = PACKAGE / "__init__.py"
    tree = ast.parse(root.read_text(encoding="utf-8"))
    at_load = [
        node
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "module", None) != "__future__"
    ]
    assert not at_load, [ast.dump(node) for node in at_load]
    assert sorted({name for _, name in _imports(root, "gelu_audit")}) == [
        "gelu_audit.api",
        "gelu_audit.implementations.plugins",
    ]


def test_an_import_of_the_roots_lazy_api_counts_as_its_layer(tmp_path: Path) -> None:
    """``from gelu_audit import check`` in a lower layer is an upward import of ``api``."""
    bad = tmp_path / "bad.py"
    bad.write_text("from gelu_audit import check\n", encoding="utf-8")
    [(line, imported)] = _imports(bad, "gelu_audit.audits.bad")
    assert (line, _unit(imported)) == (1, "api") and LAYERS["api"] > LAYERS["audits"]


FORBIDDEN_OUTSIDE_CLI = {
    "print",
    "sys.exit",
    "os._exit",
    "exit",
    "quit",
    "click.echo",
    "sys.stdout.write",
    "sys.stderr.write",
}
"""What only ``cli/`` may call: the core reports through a ProgressSink and typed errors, so a
library caller (``check``, ``run_audit``) never has its process printed to or ended."""


def _calls(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every call of a plain or dotted name in the file."""

    def dotted(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.lineno, name)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and (name := dotted(node.func)) is not None
    ]


@pytest.mark.parametrize("module, path", _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_only_the_command_line_prints_or_exits(module: str, path: Path) -> None:
    if _unit(module) in ("cli", "__main__"):
        return
    found = [f"line {line}: {name}()" for line, name in _calls(path) if name in FORBIDDEN_OUTSIDE_CLI]
    assert not found, f"{module} prints or exits: " + "; ".join(found)


def test_the_print_rule_catches_a_print(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\ndef f():\n    print('x')\n    sys.exit(2)\n", encoding="utf-8")
    assert [name for _, name in _calls(bad) if name in FORBIDDEN_OUTSIDE_CLI] == ["print", "sys.exit"]
