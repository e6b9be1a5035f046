"""The packages form a one-way graph: each imports only the layers below it, and no modules import in a cycle.

docs/architecture.md explains the layers. The walk reads every ``import`` statement under ``src/``,
including imports inside functions, so a lazy import cannot hide an upward dependency or a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
LAYERS = (
    {"lwd_interfaces"},
    {"lwd_fleet"},
    {"lwd_policy", "lwd_intervention", "lwd_logger", "lwd_sim"},
    {"lwd_learner", "lwd_experiment"},
    {"lwd"},
)
"""Lowest first. A package may import packages of lower layers only; packages of one layer are peers that
do not import each other."""
LAYER = {package: depth for depth, packages in enumerate(LAYERS) for package in packages}


def source_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every Python module of every package under src/."""
    modules = {}
    for init in sorted(SRC.glob("*/*/__init__.py")):
        package_dir = init.parent
        for path in sorted(package_dir.rglob("*.py")):
            parts = path.relative_to(package_dir.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = source_modules()


def imported_modules(module: str, path: Path) -> Iterator[str]:
    """The project modules ``module`` imports (a ``from package import name`` names the submodule when it is one)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
        else:
            continue
        for target in targets:
            if target in MODULES:
                yield target


def test_the_walk_finds_every_package():
    assert {name.split(".")[0] for name in MODULES} == set(LAYER)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_package_and_lower_layers(module: str):
    package = module.split(".")[0]
    upward = [
        target
        for target in imported_modules(module, MODULES[module])
        if target.split(".")[0] != package and LAYER[target.split(".")[0]] >= LAYER[package]
    ]
    assert not upward, f"{module} (layer {LAYER[package]}) imports from its own layer or above: {upward}"


def test_no_modules_import_each_other_in_a_cycle():
    graph = {module: set(imported_modules(module, path)) - {module} for module, path in MODULES.items()}
    cycles = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
