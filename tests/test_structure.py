"""The shape of the code: small modules, no import cycles, no private names across modules.

These are the rules the README's "How the code is laid out" promises a newcomer.
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 600


def product_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the product (not tests or benchmarks)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("tests", "benchmarks") or relative.parts[0].startswith("."):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def all_python_files() -> list[Path]:
    return [path for path in sorted(ROOT.rglob("*.py"))
            if not path.relative_to(ROOT).parts[0].startswith(".")]


def imported_modules(tree: ast.AST, known: set[str]) -> set[str]:
    """Project modules a file imports (module-level or inside functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def test_no_module_is_too_long() -> None:
    long = {name: len(path.read_text().splitlines()) for name, path in product_modules().items()}
    assert {name: lines for name, lines in long.items() if lines > MAX_MODULE_LINES} == {}


def test_imports_have_no_cycle() -> None:
    modules = product_modules()
    graph = {name: imported_modules(ast.parse(path.read_text()), set(modules)) - {name}
             for name, path in modules.items()}
    visiting, done, cycles = set(), set(), []

    def visit(name: str, trail: list[str]) -> None:
        if name in done:
            return
        if name in visiting:
            cycles.append(trail[trail.index(name):] + [name])
            return
        visiting.add(name)
        for other in sorted(graph[name]):
            visit(other, trail + [name])
        visiting.discard(name)
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def private_uses(path: Path, known: set[str]) -> list[str]:
    """`from project_module import _name`, `project_module._name`, and patches of
    private names by string (monkeypatch.setattr(x, "_name"), patch("a.b._name"))."""
    tree = ast.parse(path.read_text())
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in known:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in known:
            found += [f"{node.module}.{alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
              and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
              and node.value.id in aliases):
            found.append(f"{aliases[node.value.id]}.{node.attr}")
        elif isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            text = [arg.value for arg in node.args
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
            if name in ("setattr", "delattr") and len(node.args) >= 2 and text:
                if text[0].startswith("_") and not text[0].startswith("__"):
                    found.append(f"patch of {text[0]}")
            elif name in ("patch", "setattr") and text and "." in text[0]:
                last = text[0].rsplit(".", 1)[1]
                if last.startswith("_") and not last.startswith("__"):
                    found.append(f"patch of {text[0]}")
    return found


def test_no_private_name_is_used_across_modules() -> None:
    known = set(product_modules())
    uses = {str(path.relative_to(ROOT)): found for path in all_python_files()
            if (found := private_uses(path, known))}
    assert uses == {}


@pytest.mark.skipif(shutil.which("ruff") is None and sys.modules.get("ruff") is None,
                    reason="ruff is not installed")
def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
