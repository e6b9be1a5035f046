"""Stand-ins of the ROS 2 ``launch`` / ``launch_ros`` API that run this workspace's launch files here.

``launch``, ``launch_ros`` and ``ros2cli`` are not installable from PyPI, so the launch files cannot
run under ``ros2 launch`` in the test suite. :class:`LaunchSimulator` runs them against stand-ins
that expose only an allow-list of names, each with its Humble signature (a subset of Jazzy's), so
a misspelled or newer-only name or keyword fails. It executes ``generate_launch_description`` and
the OpaqueFunctions, scoped groups and includes, and records the nodes, lifecycle events and event
handlers a real launch would act on. The static checks (test_ros_layer.py) inspect that record;
the live graph tests (test/ros/) start exactly those processes, with those parameter files.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from lwd_interfaces.parameters import flatten

REPO = Path(__file__).resolve().parent.parent


def _node_signature(
    *,
    executable,
    package=None,
    name=None,
    namespace=None,
    exec_name=None,
    parameters=None,
    remappings=None,
    ros_arguments=None,
    arguments=None,
    output="log",
    emulate_tty=False,
    respawn=False,
    respawn_delay=None,
    additional_env=None,
    cwd=None,
    prefix=None,
    sigterm_timeout=None,
    sigkill_timeout=None,
    condition=None,
): ...


def _lifecycle_node_signature(*, name, namespace, **node):
    inspect.signature(_node_signature).bind(**node)


def _on_state_transition_signature(
    *, entities, target_lifecycle_node=None, transition=None, start_state=None, goal_state=None, matcher=None
): ...


HUMBLE_LAUNCH_API: dict[str, dict[str, Callable[..., Any] | dict[str, int]]] = {
    # Checked against ros2/launch and ros2/launch_ros (Humble: launch 1.0.x, launch_ros 0.19.x).
    # Deliberately absent: LifecycleNode(autostart=...) (Jazzy), GroupAction(forwarding=...).
    "launch": {
        "LaunchDescription": lambda initial_entities=None, *, deprecated_reason=None: None,
        "LaunchContext": lambda *args, **kwargs: None,
    },
    "launch.actions": {
        "DeclareLaunchArgument": lambda name, *, default_value=None, description=None, choices=None, condition=None: 0,
        "EmitEvent": lambda *, event, condition=None: None,
        "GroupAction": lambda actions, *, scoped=True, launch_configurations=None, condition=None: None,
        "IncludeLaunchDescription": lambda launch_description_source, *, launch_arguments=None, condition=None: None,
        "OpaqueFunction": lambda *, function, args=None, kwargs=None, condition=None: None,
        "RegisterEventHandler": lambda event_handler, *, condition=None: None,
        "LogInfo": lambda *, msg, condition=None: None,
        "Shutdown": lambda *, reason="reason not given", condition=None: None,
    },
    "launch.event_handlers": {"OnProcessExit": lambda *, target_action=None, on_exit: None},
    "launch.events": {"matches_action": lambda target_action: None},
    "launch.launch_description_sources": {"PythonLaunchDescriptionSource": lambda launch_file_path: None},
    "launch.substitutions": {
        "LaunchConfiguration": lambda variable_name, *, default=None: None,
        "PathJoinSubstitution": lambda substitutions: None,
    },
    "launch_ros.actions": {"Node": _node_signature, "LifecycleNode": _lifecycle_node_signature},
    "launch_ros.event_handlers": {
        "OnStateTransition": _on_state_transition_signature,
    },
    "launch_ros.events.lifecycle": {"ChangeState": lambda *, lifecycle_node_matcher, transition_id: None},
    "launch_ros.parameter_descriptions": {"ParameterValue": lambda value, *, value_type=None: None},
    "launch_ros.substitutions": {"FindPackageShare": lambda package: None},
    "lifecycle_msgs.msg": {"Transition": {"TRANSITION_CONFIGURE": 1, "TRANSITION_ACTIVATE": 3}},
    "ament_index_python.packages": {"get_package_share_directory": lambda package_name: None},
}


@dataclass
class Call:
    """A constructed launch entity: its class name and bound arguments (defaults applied)."""

    kind: str
    arguments: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.arguments[key]

    def perform(self, context: LaunchContextStandIn) -> str:
        """``LaunchConfiguration(...).perform(context)``, as the OpaqueFunctions call it."""
        return context.perform(self)


def _stub(kind: str, signature: Callable[..., Any]) -> Callable[..., Call]:
    def construct(*args: Any, **kwargs: Any) -> Call:
        try:
            bound = inspect.signature(signature).bind(*args, **kwargs)
            signature(*args, **kwargs)  # nested checks (LifecycleNode's Node keywords)
        except TypeError as error:
            raise TypeError(f"{kind}: not the Humble signature: {error}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for parameter in inspect.signature(signature).parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:  # LifecycleNode passes the rest on to Node
                arguments.update(arguments.pop(parameter.name))
        return Call(kind, arguments)

    return construct


def launch_stand_ins() -> dict[str, types.ModuleType]:
    """Modules exposing exactly the allow-listed Humble names."""
    modules: dict[str, types.ModuleType] = {}
    for module_name, names in HUMBLE_LAUNCH_API.items():
        parts = module_name.split(".")
        for depth in range(1, len(parts) + 1):
            modules.setdefault(".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
        module = modules[module_name]
        for name, spec in names.items():
            setattr(module, name, types.SimpleNamespace(**spec) if isinstance(spec, dict) else _stub(name, spec))
    modules["ament_index_python.packages"].get_package_share_directory = share_directory
    for name, module in modules.items():
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(modules[parent], child, module)
    return modules


def share_directory(package_name: str) -> str:
    """The repository stands in for share/lwd: it holds launch/ and config/ in the installed layout."""
    assert package_name == "lwd", package_name
    return str(REPO)


@dataclass
class LaunchRun:
    """What a simulated ``ros2 launch`` produced."""

    arguments: dict[str, Call] = field(default_factory=dict)
    nodes: list[Call] = field(default_factory=list)
    handlers: list[Call] = field(default_factory=list)
    events: list[Call] = field(default_factory=list)
    scopes: dict[int, LaunchContextStandIn] = field(default_factory=dict)
    """The launch context each node was created in, by ``id(node)``: what its substitutions resolve against."""

    def command(self, node: Call, bin_dir: Path, folder: Path) -> list[str]:
        """The command line ``ros2 launch`` runs for ``node``: its executable with ``--ros-args``.

        Name and namespace become remaps, each parameter file a ``--params-file`` and each
        parameter dictionary a file written into ``folder`` (as launch_ros does with a temp file).
        """
        context = self.scopes[id(node)]
        arguments = [str(bin_dir / node["executable"]), "--ros-args", "-r", f"__node:={node['name']}"]
        if node["namespace"]:
            arguments += ["-r", f"__ns:=/{context.resolve(node['namespace']).strip('/')}"]
        for index, parameters in enumerate(node["parameters"] or []):
            if isinstance(parameters, dict):
                values = {name: context.resolve(value) for name, value in parameters.items()}
                path = folder / f"{node['name']}_{index}.yaml"
                path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
                parameters = path
            arguments += ["--params-file", str(context.resolve(parameters))]
        return arguments + [str(context.resolve(argument)) for argument in node["ros_arguments"] or []]


class LaunchContextStandIn:
    """The LaunchContext an OpaqueFunction sees: the launch configurations of its scope."""

    def __init__(self, configurations: dict[str, Any]) -> None:
        self.launch_configurations = configurations

    def resolve(self, value: Any) -> Any:
        """A substitution's value as launch performs it when it starts a process (strings, paths, typed values)."""
        if not isinstance(value, Call):
            return value
        if value.kind == "LaunchConfiguration":
            return self.resolve(self.launch_configurations[value["variable_name"]])
        if value.kind == "PathJoinSubstitution":
            return str(Path(*(str(self.resolve(part)) for part in value["substitutions"])))
        if value.kind == "FindPackageShare":
            return share_directory(value["package"])
        if value.kind == "ParameterValue":
            resolved = self.resolve(value["value"])
            return value["value_type"](resolved) if value["value_type"] else resolved
        raise AssertionError(f"no stand-in for the substitution {value.kind}")

    def perform(self, value: Any) -> Any:
        """A LaunchConfiguration's value (following a default that names another one); other values as they are."""
        if isinstance(value, Call) and value.kind == "LaunchConfiguration":
            return self.perform(self.launch_configurations[value["variable_name"]])
        return value


class LaunchSimulator:
    """Runs launch files against the stand-ins: arguments, OpaqueFunctions, scoped groups and includes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name, module in launch_stand_ins().items():
            monkeypatch.setitem(sys.modules, name, module)

    def load(self, path: Path) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(f"launch_file_{path.name.split('.')[0]}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def run(self, path: Path, arguments: dict[str, Any], into: LaunchRun | None = None) -> LaunchRun:
        """Launch ``path`` with ``arguments`` (as ``name:=value`` on the command line would)."""
        run = into or LaunchRun()
        description = self.load(path).generate_launch_description()
        assert description.kind == "LaunchDescription"
        self._visit(description["initial_entities"], LaunchContextStandIn(dict(arguments)), run)
        return run

    def _visit(self, entities: list[Any], context: LaunchContextStandIn, run: LaunchRun) -> None:
        configurations = context.launch_configurations
        for entity in entities:
            kind = entity.kind
            if kind == "DeclareLaunchArgument":
                name, default, choices = entity["name"], entity["default_value"], entity["choices"]
                run.arguments.setdefault(name, entity)
                if choices is not None and isinstance(default, str):
                    assert default in choices, f"default of {name} is not one of its choices"
                if name not in configurations:
                    assert default is not None, f"required launch argument {name} not given"
                    configurations[name] = context.perform(default)
                if choices is not None:
                    assert configurations[name] in choices, (name, configurations[name])
            elif kind == "OpaqueFunction":
                self._visit(entity["function"](context), context, run)
            elif kind == "GroupAction":
                assert entity["scoped"], "a group that includes a robot must be scoped"
                self._visit(list(entity["actions"]), LaunchContextStandIn(dict(configurations)), run)
            elif kind == "IncludeLaunchDescription":
                source = entity["launch_description_source"]
                included = {key: context.perform(value) for key, value in entity["launch_arguments"]}
                self.run(Path(source["launch_file_path"]), {**configurations, **included}, run)
            elif kind in ("Node", "LifecycleNode"):
                run.nodes.append(entity)
                run.scopes[id(entity)] = context
            elif kind == "RegisterEventHandler":
                run.handlers.append(entity["event_handler"])
            elif kind == "EmitEvent":
                run.events.append(entity["event"])
            else:
                raise AssertionError(f"unexpected launch entity {kind}")


def node_parameters(node: Call) -> tuple[str, dict[str, Any]]:
    """(key, flat parameters) of the one parameter file bringup gives a node."""
    (path,) = node["parameters"]
    ((key, section),) = yaml.safe_load(Path(path).read_text()).items()
    return key, flatten(section["ros__parameters"])
