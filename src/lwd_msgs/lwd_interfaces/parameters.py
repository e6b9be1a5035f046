"""Node parameters declared once: name, type, default, range, choices and description, free of rclpy.

Each node's :class:`ParameterTable` lives next to its core. The ROS node declares it through
``lwd_interfaces.ros.declare_parameters`` (descriptors, ranges and types enforced by rclpy); the
``lwd`` runner and ``lwd intervention check-config`` validate YAML with :meth:`ParameterTable.read`;
``config/<node>.yaml`` and ``docs/parameters.md`` are checked against the tables by the tests, so
a default or a range exists in one place only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class ParameterError(ValueError):
    """A parameter value has the wrong type, lies outside its range or choices, or is unknown."""


def _kind(value: Any) -> type:
    """The ROS parameter type a default declares: bool, int, float, str, or a list of one of them."""
    return list if isinstance(value, (list, tuple)) else type(value)


@dataclass(frozen=True)
class Parameter:
    """One declared parameter. ``low``/``high`` bound numbers inclusively; ``choices`` restrict strings."""

    name: str
    default: bool | int | float | str | list[Any]
    description: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.low is None) != (self.high is None):
            raise ValueError(f"parameter {self.name!r}: a range needs both bounds")
        if isinstance(self.default, list) and not self.default:
            raise ValueError(f"parameter {self.name!r}: an empty list default has no type rclpy can infer")
        self.check(self.default)

    def check(self, value: Any) -> Any:
        """``value`` as this parameter's type (an int is accepted for a float); ParameterError otherwise."""
        kind = _kind(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if _kind(value) is not kind:
            raise ParameterError(f"parameter {self.name!r} must be {kind.__name__}, got {value!r}")
        if kind is list:
            value = list(value)
            if {_kind(item) for item in value} - {_kind(self.default[0])}:
                raise ParameterError(f"parameter {self.name!r} must list {_kind(self.default[0]).__name__}s")
        if self.low is not None and not self.low <= value <= self.high:
            raise ParameterError(f"parameter {self.name!r} must be in [{self.low}, {self.high}], got {value!r}")
        if self.choices and value not in self.choices:
            raise ParameterError(f"parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}")
        return value


class ParameterTable(Sequence[Parameter]):
    """The parameters of one node, in declaration order; nested YAML (``buttons: {x: 1}``) uses dotted names."""

    def __init__(self, node: str, parameters: Sequence[Parameter]) -> None:
        self.node = node
        self._parameters = tuple(parameters)
        self._by_name = {parameter.name: parameter for parameter in self._parameters}
        if len(self._by_name) != len(self._parameters):
            raise ValueError(f"{node}: a parameter is declared twice")

    def __getitem__(self, index: int) -> Parameter:  # type: ignore[override]
        return self._parameters[index]

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters)

    def get(self, name: str) -> Parameter | None:
        """The parameter called ``name``, if declared."""
        return self._by_name.get(name)

    def defaults(self) -> dict[str, Any]:
        """name -> default, flat (dotted names)."""
        return {parameter.name: parameter.default for parameter in self._parameters}

    def read(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value: ``values`` (nested or dotted) checked, the defaults for the rest.

        Raises ParameterError naming an unknown parameter or a bad value.
        """
        given = flatten(values)
        unknown = sorted(set(given) - set(self._by_name))
        if unknown:
            raise ParameterError(f"unknown {self.node} parameters: {unknown}")
        return {p.name: p.check(given[p.name]) if p.name in given else p.default for p in self._parameters}


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested ``ros__parameters`` (``buttons: {success: 0}``) as dotted names (``buttons.success``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def markdown_table(table: ParameterTable) -> str:
    """The reference table of ``table`` for docs/parameters.md."""
    lines = [f"### `{table.node}`", "", "| parameter | default | range / choices | meaning |", "|---|---|---|---|"]
    for parameter in table:
        if parameter.choices:
            bounds = ", ".join(f"`{choice}`" for choice in parameter.choices)
        elif parameter.low is not None:
            bounds = f"[{parameter.low}, {parameter.high}]"
        else:
            bounds = ""
        lines.append(f"| `{parameter.name}` | `{json.dumps(parameter.default)}` | {bounds} | {parameter.description} |")
    return "\n".join(lines) + "\n"
