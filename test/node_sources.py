"""Read the rclpy node sources statically: entry points and the parameters each node declares.

Shared by the packaging and ROS-layer tests, which cannot import the nodes (no rclpy here).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

from lwd_interfaces.parameters import Parameter, ParameterTable

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGES = ["lwd_policy", "lwd_intervention", "lwd_logger", "lwd_learner", "lwd_sim"]
ROS_MODULES = (
    "rclpy",
    "rcl_interfaces",
    "sensor_msgs",
    "std_msgs",
    "geometry_msgs",
    "lwd_msgs",
    "lwd_interfaces.ros",
)
UNKNOWN = object()
"""A parameter default or bound that the static reader cannot evaluate."""


def console_scripts(package: str) -> dict[str, str]:
    """executable -> 'module:function' from a package's setup.py, read statically."""
    for node in ast.walk(ast.parse((SRC / package / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            scripts = ast.literal_eval(node.value).get("console_scripts", [])
            return {name.strip(): target.strip() for name, target in (s.split("=", 1) for s in scripts)}
    return {}


def node_files() -> dict[str, Path]:
    """executable -> source file of every rclpy entry point."""
    found = {}
    for package in PACKAGES:
        for executable, target in console_scripts(package).items():
            module = target.split(":")[0]
            path = SRC / package / Path(*module.split(".")).with_suffix(".py")
            if re.search(r"^(from|import) rclpy", path.read_text(), re.MULTILINE):
                found[executable] = path
    return found


class SourceEvaluator:
    """Evaluates constant expressions of a node source, resolving names from its rclpy-free imports."""

    def __init__(self, tree: ast.Module) -> None:
        self.imports: dict[str, tuple[str, str]] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if not node.module.startswith(ROS_MODULES):
                    for alias in node.names:
                        self.imports[alias.asname or alias.name] = (node.module, alias.name)

    def __call__(self, expression: ast.expr | None) -> Any:
        if expression is None:
            return None
        namespace = {}
        for name in {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)}:
            if name not in self.imports:
                return UNKNOWN
            module, attribute = self.imports[name]
            namespace[name] = getattr(importlib.import_module(module), attribute)
        code = compile(ast.Expression(expression), "<node source>", "eval")
        try:
            return eval(code, {"__builtins__": {}}, namespace)  # constant expressions of our own sources
        except Exception:  # anything not constant is simply unknown
            return UNKNOWN


def declared_parameters(path: Path) -> dict[str, Parameter]:
    """name -> Parameter of the table a node source declares with ``declare_parameters(self, TABLE)``."""
    tree = ast.parse(path.read_text())
    evaluate = SourceEvaluator(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "declare_parameters":
            table = evaluate(node.args[1])
            assert isinstance(table, ParameterTable), f"{path}: cannot resolve the parameter table {node.args[1]}"
            return {parameter.name: parameter for parameter in table}
    return {}
