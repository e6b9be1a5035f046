"""Read the rclpy node sources statically: entry points and the parameters each node declares.

Shared by the packaging and ROS-layer tests, which cannot import the nodes (no rclpy here).
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGES = ["lwd_policy", "lwd_intervention", "lwd_logger", "lwd_learner", "lwd_sim"]
ROS_MODULES = (
    "rclpy",
    "rcl_interfaces",
    "sensor_msgs",
    "std_msgs",
    "geometry_msgs",
    "lwd_msgs",
    "cv_bridge",
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


@dataclass
class Declared:
    """One ``declare_parameter`` call: default and descriptor as far as they are constant."""

    default: Any
    descriptor: ast.expr | None
    low: Any = None
    high: Any = None
    choices: Any = None


def declared_parameters(path: Path) -> dict[str, Declared]:
    """name -> Declared for every ``self.declare_parameter("name", default, descriptor=...)`` in a file."""
    tree = ast.parse(path.read_text())
    evaluate = SourceEvaluator(tree)
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "declare_parameter":
            name = ast.literal_eval(node.args[0])
            keywords = {k.arg: k.value for k in node.keywords}
            descriptor = keywords.get("descriptor")
            declared = Declared(evaluate(node.args[1]) if len(node.args) > 1 else UNKNOWN, descriptor)
            if isinstance(descriptor, ast.Call) and getattr(descriptor.func, "id", None) == "describe":
                options = {k.arg: k.value for k in descriptor.keywords}
                declared.low = evaluate(options.get("low"))
                declared.high = evaluate(options.get("high"))
                declared.choices = evaluate(options.get("choices"))
            found[name] = declared
    return found
