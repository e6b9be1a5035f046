"""Static checks of the ROS 2 node layer and the launch files (the live graph tests are in test/ros/).

- Node sources (read with ``ast``): every publisher and subscriber uses a namespaced topic, the
  message type and QoS class of the topic contract, and a pub/sub pair on a topic agrees on the
  type; every parameter has a descriptor with a range that fits its type; times come from the node
  clock; lifecycle nodes enable their managed publishers.
- Launch files run against stand-ins of the ``launch``/``launch_ros`` API (test/launch_standin.py;
  ``launch`` is not installable here): the arguments, the nodes and the parameter files that
  bringup writes are checked for real.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from launch_standin import LaunchSimulator, node_parameters
from lwd_interfaces import topics
from lwd_interfaces.parameters import ParameterError, flatten
from node_sources import ROS_MODULES, console_scripts, declared_parameters, node_files

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
LIFECYCLE_EXECUTABLES = {"policy_node", "recorder_node", "bridge_node"}
EXTERNAL_INPUTS = {topics.TELEOP_JOY, topics.TELEOP_COMMAND}
"""Subscribed topics no LWD node publishes: joy_node's gamepad and the leader-arm driver."""
BUILTIN_PARAMETERS = {"use_sim_time"}
"""Parameters every rclpy node declares itself."""
# --------------------------------------------------------------------------- node sources


def ros_type(value: Any) -> str:
    """The rclpy parameter type a value declares (what rclpy then enforces for overrides)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        kinds = {ros_type(item) for item in value}
        return f"{kinds.pop()}_array" if len(kinds) == 1 else f"mixed array {sorted(kinds)}"
    return type(value).__name__


def parameter_errors(executable: str, values: dict[str, Any]) -> list[str]:
    """What rclpy would reject (or the node would refuse) in parameter overrides for ``executable``."""
    declared = declared_parameters(node_files()[executable])
    errors = []
    for name, value in values.items():
        if name in BUILTIN_PARAMETERS:
            continue
        if name not in declared:
            errors.append(f"{executable}: {name} is not declared")
            continue
        spec = declared[name]
        if isinstance(value, list) and not value:
            errors.append(f"{executable}: {name} is an empty list, whose type rclpy cannot infer")
        elif ros_type(value) != ros_type(spec.default):
            errors.append(f"{executable}: {name} is {ros_type(value)}, declared {ros_type(spec.default)}")
        else:
            try:
                spec.check(value)
            except ParameterError as error:
                errors.append(f"{executable}: {error}")
    return errors


@dataclass(frozen=True)
class Endpoint:
    """A publisher or subscriber as written in a node source."""

    executable: str
    line: int
    kind: str  # "pub" | "sub"
    msgtype: str | None  # None: chosen at run time from the contract (the recorder)
    topic: str | None  # absolute contract name, "<executable>:~/..." for private topics, None: dynamic
    qos: str | None  # QoS class, None when the code does not use the contract helpers
    qos_topic: str | None  # the topic named in contract_qos(...), if any
    namespaced: bool


class TopicResolver:
    """Turns the topic, type and QoS expressions of endpoint calls into contract names."""

    def __init__(self, executable: str, tree: ast.Module) -> None:
        self.executable = executable
        self.types: dict[str, str] = {}
        self.constants: dict[str, tuple[str, str]] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith(".msg"):
                for alias in node.names:
                    self.types[alias.asname or alias.name] = f"{node.module.replace('.', '/')}/{alias.name}"
            elif isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith(ROS_MODULES):
                for alias in node.names:
                    self.constants[alias.asname or alias.name] = (node.module, alias.name)

    def topic(self, expression: ast.expr) -> str | None:
        """Absolute contract name of a topic expression; None when it is only known at run time."""
        if isinstance(expression, ast.Constant):
            return expression.value
        if isinstance(expression, ast.Attribute) and getattr(expression.value, "id", None) == "topics":
            return getattr(topics, expression.attr)
        if isinstance(expression, ast.Call) and getattr(expression.func, "attr", None) == "camera_topic":
            return topics.camera_topic("CAMERA")
        if isinstance(expression, ast.Name) and expression.id in self.constants:
            module, name = self.constants[expression.id]
            return getattr(importlib.import_module(module), name)
        return None

    def contract_endpoint(self, call: ast.Call) -> Endpoint:
        """``subscribe(node, Type, topics.X, ...)`` / ``advertise(node, Type, topics.X)``: namespaced, contract QoS."""
        kind = "sub" if call.func.id == "subscribe" else "pub"
        msgtype = self.types.get(getattr(call.args[1], "id", ""), None)
        topic = self.topic(call.args[2])
        qos = topics.topic_qos(topic) if topic else "contract"
        return Endpoint(self.executable, call.lineno, kind, msgtype, topic, qos, topic, True)

    def endpoint(self, call: ast.Call) -> Endpoint:
        kind = "sub" if call.func.attr == "create_subscription" else "pub"
        type_expression, topic_expression = call.args[0], call.args[1]
        qos_expression = call.args[3 if kind == "sub" else 2]
        msgtype = self.types.get(getattr(type_expression, "id", ""), None)
        namespaced = False
        topic = None
        if isinstance(topic_expression, ast.Constant) and topic_expression.value.startswith("~/"):
            namespaced, topic = True, f"{self.executable}:{topic_expression.value}"
        elif isinstance(topic_expression, ast.Call) and getattr(topic_expression.func, "attr", None) == "relative":
            namespaced, topic = True, self.topic(topic_expression.args[0])
        qos = qos_topic = None
        if isinstance(qos_expression, ast.Call):
            helper = getattr(qos_expression.func, "id", None)
            if helper == "contract_qos":
                qos_topic = self.topic(qos_expression.args[0])
                qos = topics.topic_qos(qos_topic) if qos_topic else "contract"
            elif helper == "qos_profile":
                qos = self.topic(qos_expression.args[0])
        return Endpoint(self.executable, call.lineno, kind, msgtype, topic, qos, qos_topic, namespaced)


ENDPOINT_CALLS = ("create_publisher", "create_lifecycle_publisher", "create_subscription")
CONTRACT_ENDPOINT_CALLS = ("subscribe", "advertise")
"""lwd_interfaces.ros helpers that take the namespace and QoS from the contract topic they are given."""


def endpoints_of(executable: str, source: str) -> list[Endpoint]:
    """Every publisher and subscriber created in one node source."""
    tree = ast.parse(source)
    resolver = TopicResolver(executable, tree)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    return [resolver.endpoint(c) for c in calls if getattr(c.func, "attr", None) in ENDPOINT_CALLS] + [
        resolver.contract_endpoint(c) for c in calls if getattr(c.func, "id", None) in CONTRACT_ENDPOINT_CALLS
    ]


def contract_type(topic: str) -> str | None:
    """The contract message type of an absolute topic name (camera topics included)."""
    if topic.startswith(topics.CAMERA_PREFIX + "/"):
        return topics.IMAGE_TYPE
    return topics.TOPIC_TYPES.get(topic)


def endpoint_errors(endpoints: list[Endpoint]) -> list[str]:
    """Namespacing, QoS and message-type problems of a set of endpoints, and type disagreements between them."""
    errors = []
    types_by_topic: dict[str, set[tuple[str, str]]] = {}
    for e in endpoints:
        where = f"{e.executable}:{e.line}"
        if not e.namespaced:
            errors.append(
                f"{where}: topic is not topics.relative(...) or '~/...', so the robot namespace does not apply"
            )
        if e.qos is None:
            errors.append(f"{where}: QoS is not contract_qos(...) or qos_profile(...)")
        if e.topic is None:
            continue
        expected_qos = topics.topic_qos(e.topic) if contract_type(e.topic) else None
        if expected_qos and e.qos != expected_qos:
            errors.append(f"{where}: {e.topic} uses QoS {e.qos}, the contract says {expected_qos}")
        if e.qos_topic and e.qos_topic != e.topic:
            errors.append(f"{where}: QoS of {e.qos_topic} used on {e.topic}")
        if e.msgtype is not None:
            if contract_type(e.topic) and e.msgtype != contract_type(e.topic):
                errors.append(f"{where}: {e.topic} carries {e.msgtype}, the contract says {contract_type(e.topic)}")
            types_by_topic.setdefault(e.topic, set()).add((e.msgtype, where))
    for topic, uses in types_by_topic.items():
        if len({msgtype for msgtype, _ in uses}) > 1:
            errors.append(f"{topic}: publishers and subscribers disagree on the type: {sorted(uses)}")
    return errors


def all_endpoints() -> list[Endpoint]:
    return [e for executable, path in node_files().items() for e in endpoints_of(executable, path.read_text())]


def test_node_layer_has_every_node_of_the_issue():
    assert set(node_files()) == {
        "policy_node",
        "intervention_node",
        "keyboard_teleop",
        "recorder_node",
        "bridge_node",
        "sim_driver",
        "trainer_node",
    }


def test_qos_contract_covers_every_topic_as_the_issue_asks():
    assert set(topics.TOPIC_QOS) == set(topics.TOPIC_TYPES)
    assert topics.topic_qos(topics.camera_topic("top")) == topics.SENSOR_DATA
    assert topics.TOPIC_QOS[topics.POLICY_VERSION] == topics.TOPIC_QOS[topics.INTERVENTION_STATE] == topics.LATCHED
    for reliable in (topics.EXECUTED_COMMAND, topics.POLICY_COMMAND, topics.TELEOP_COMMAND, topics.REWARD_LABEL):
        assert topics.TOPIC_QOS[reliable] == topics.RELIABLE
    with pytest.raises(KeyError):
        topics.topic_qos("/not/a/contract/topic")


def test_every_endpoint_is_namespaced_typed_and_uses_the_contract_qos():
    assert endpoint_errors(all_endpoints()) == []


def test_published_and_subscribed_topics_agree_and_every_input_has_a_publisher():
    endpoints = all_endpoints()
    published = {e.topic for e in endpoints if e.kind == "pub"}
    subscribed = {e.topic for e in endpoints if e.kind == "sub" and e.topic is not None}
    paired = published & subscribed
    assert {
        topics.JOINT_STATES,
        topics.POLICY_COMMAND,
        topics.EXECUTED_COMMAND,
        topics.POLICY_VERSION,
        topics.OBJECT_POSES,
    } <= paired
    assert subscribed - published == EXTERNAL_INPUTS
    for topic in paired:
        msgtypes = {e.msgtype for e in endpoints if e.topic == topic and e.msgtype is not None}
        assert len(msgtypes) == 1, (topic, msgtypes)


def recorded_topics() -> set[str]:
    """The contract topics the recorder records (cameras come from a parameter)."""
    from lwd_logger.parameters import RECORDED_TOPICS

    return set(RECORDED_TOPICS)


def test_recorder_records_every_sensor_topic_the_nodes_publish():
    """A per-step sensor topic that a node publishes but the recorder skips would never reach training."""
    published = {e.topic for e in all_endpoints() if e.kind == "pub" and e.qos == topics.SENSOR_DATA}
    sensors = published - {topics.camera_topic("CAMERA")}
    assert {topics.JOINT_STATES, topics.OBJECT_POSES} <= sensors
    assert sensors <= recorded_topics()


def test_the_endpoint_check_catches_a_wrong_type_qos_and_name():
    source = """
from lwd_interfaces import topics
from lwd_interfaces.ros import contract_qos, qos_profile
from sensor_msgs.msg import JointState
from lwd_msgs.msg import PolicyVersion
class Bad:
    def __init__(self):
        self.create_publisher(JointState, topics.relative(topics.POLICY_VERSION), contract_qos(topics.POLICY_VERSION))
        self.create_subscription(
            PolicyVersion, topics.relative(topics.POLICY_VERSION), cb, qos_profile(topics.RELIABLE)
        )
        self.create_publisher(JointState, "/joint_states", 10)
"""
    errors = endpoint_errors(endpoints_of("bad", source))
    assert any("carries sensor_msgs/msg/JointState" in e for e in errors)
    assert any("disagree on the type" in e for e in errors)
    assert any("uses QoS reliable, the contract says latched" in e for e in errors)
    assert any("namespace does not apply" in e for e in errors)
    assert any("QoS is not contract_qos" in e for e in errors)


def test_recorder_subscribes_raw_and_nodes_stamp_with_the_node_clock():
    recorder = ast.parse(node_files()["recorder_node"].read_text())
    for call in ast.walk(recorder):
        if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "create_subscription":
            raw = {k.arg: k.value for k in call.keywords}.get("raw")
            assert isinstance(raw, ast.Constant) and raw.value is True, f"recorder_node:{call.lineno} is not raw=True"
    for executable, path in node_files().items():
        for call in ast.walk(ast.parse(path.read_text())):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                owner = getattr(call.func.value, "id", None)
                wall_clock = (owner, call.func.attr) in {("time", "time"), ("time", "time_ns"), ("datetime", "now")}
                assert not wall_clock, f"{executable}:{call.lineno}: use self.get_clock().now(), not the wall clock"


def lifecycle_classes() -> dict[str, ast.ClassDef]:
    """executable -> its node class, for the nodes that subclass rclpy's LifecycleNode."""
    found = {}
    for executable, path in node_files().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "LifecycleNode" for b in node.bases):
                found[executable] = node
    return found


def test_lifecycle_nodes_enable_their_managed_publishers():
    classes = lifecycle_classes()
    assert set(classes) == LIFECYCLE_EXECUTABLES
    for executable, cls in classes.items():
        methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
        assert {"on_configure", "on_activate", "on_deactivate"} <= set(methods), executable
        for transition in ("on_activate", "on_deactivate", "on_cleanup", "on_shutdown"):
            if transition in methods:
                calls = [
                    c.func.attr
                    for c in ast.walk(methods[transition])
                    if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                    if isinstance(c.func.value, ast.Call) and getattr(c.func.value.func, "id", None) == "super"
                ]
                # rclpy's base transition enables/disables the lifecycle publishers: skipping it mutes them.
                assert transition in calls, f"{executable}.{transition} does not call super().{transition}"
        plain = [
            c for c in ast.walk(cls) if isinstance(c, ast.Call) and getattr(c.func, "attr", "") == "create_publisher"
        ]
        assert not plain, f"{executable} creates a plain publisher; lifecycle nodes use create_lifecycle_publisher"


def test_every_node_declares_a_table_where_each_parameter_is_described_and_numbers_have_a_range():
    for executable, path in node_files().items():
        declared = declared_parameters(path)
        assert declared, f"{executable} declares no parameter table"
        for name, spec in declared.items():
            where = f"{executable}: {name}"
            assert spec.description.strip(), f"{where}: no description"
            if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
                assert spec.low is not None and spec.high is not None, f"{where}: numeric parameter without a range"
                assert spec.low <= spec.default <= spec.high, f"{where}: default outside its own range"


def config_documents() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(file, node, flat parameters) for config/*.yaml and config/profiles/*.yaml."""
    for path in sorted((REPO / "config").rglob("*.yaml")):
        for node, section in (yaml.safe_load(path.read_text()) or {}).items():
            yield str(path.relative_to(REPO)), node, flatten(section["ros__parameters"])


def test_config_and_profile_values_have_the_declared_type_range_and_choice():
    seen = set()
    for filename, node, parameters in config_documents():
        seen.add(filename)
        assert node in node_files(), f"{filename}: no node named {node}"
        assert parameter_errors(node, parameters) == [], filename
    assert {"config/profiles/aloha.yaml", "config/profiles/aloha_sim.yaml"} <= seen


def test_the_parameter_check_catches_wrong_types_ranges_and_choices():
    errors = parameter_errors(
        "recorder_node",
        {"flush_period_s": 1, "label_timeout_s": -1.0, "storage": "rosbag1", "cameras": [], "nope": 0},
    )
    assert any("flush_period_s is integer, declared double" in e for e in errors)
    assert any("'label_timeout_s' must be in [0.0, 600.0], got -1.0" in e for e in errors)
    assert any("'storage' must be one of ['mcap', 'sqlite3'], got 'rosbag1'" in e for e in errors)
    assert any("cameras is an empty list" in e for e in errors)
    assert any("nope is not declared" in e for e in errors)


def test_recorder_writer_backend_choice():
    from lwd_interfaces import lwd_typestore
    from lwd_logger.writer import RosbagsWriter
    from lwd_logger.writer_backend import writer_factory

    store = lwd_typestore()
    backend, factory = writer_factory("auto", store)
    assert backend == ("rosbag2_py" if importlib.util.find_spec("rosbag2_py") else "rosbags")
    if backend == "rosbags":
        assert isinstance(factory(), RosbagsWriter)
        with pytest.raises(ValueError, match="rosbag2_py is not importable"):
            writer_factory("rosbag2_py", store)
    with pytest.raises(ValueError, match="writer backend"):
        writer_factory("rosbag1", store)
    with pytest.raises(ValueError, match="storage"):
        writer_factory("rosbags", store, storage="db3")


# --------------------------------------------------------------------------- package.xml


def package_dependencies(package: str) -> set[str]:
    root = ET.parse(SRC / package / "package.xml").getroot()
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in root.findall(tag)}


def imported_roots(paths: list[Path]) -> set[str]:
    roots = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return roots - set(sys.stdlib_module_names) - {"__future__"}


def test_package_xml_covers_launch_files_and_the_ros_helpers():
    launch_imports = imported_roots(sorted((REPO / "launch").glob("*.launch.py")))
    assert launch_imports - {"yaml"} <= package_dependencies("lwd"), launch_imports - package_dependencies("lwd")
    assert "python3-yaml" in package_dependencies("lwd")
    ros_helper_imports = imported_roots([SRC / "lwd_msgs" / "lwd_interfaces" / "ros.py"]) - {"lwd_interfaces"}
    assert ros_helper_imports == {"rclpy", "rcl_interfaces"}
    assert ros_helper_imports <= package_dependencies("lwd_msgs")


# --------------------------------------------------------------------------- launch files


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch) -> LaunchSimulator:
    return LaunchSimulator(monkeypatch)


def test_launch_files_import_only_allow_listed_humble_names(launcher):
    for path in sorted((REPO / "launch").glob("*.launch.py")):
        launcher.load(path)  # an ImportError names a launch/launch_ros name outside the allow-list


def test_bringup_arguments_have_descriptions_and_choices(launcher, tmp_path):
    run = launcher.run(
        REPO / "launch" / "bringup.launch.py",
        {"checkpoint": "/policies/v1", "instruction": "fold the towel", "data_dir": str(tmp_path)},
    )
    required = {"robot_id", "robot_profile", "use_sim", "store_url", "channel", "namespace", "log_level"}
    assert required <= set(run.arguments)
    for name, argument in run.arguments.items():
        assert argument["description"], f"launch argument {name} has no description"
    for name in ("robot_profile", "use_sim", "channel", "log_level", "use_sim_time"):
        assert run.arguments[name]["choices"], f"launch argument {name} has no choices"
    profiles = sorted(p.stem for p in (REPO / "config" / "profiles").glob("*.yaml"))
    assert sorted(run.arguments["robot_profile"]["choices"]) == profiles


def test_bringup_starts_the_robot_nodes_with_declared_parameters(launcher, tmp_path):
    run = launcher.run(
        REPO / "launch" / "bringup.launch.py",
        {
            "checkpoint": "/policies/v1",
            "instruction": "fold the towel",
            "robot_id": "007",
            "data_dir": str(tmp_path),
            "log_level": "debug",
        },
    )
    executables = {node["executable"]: node for node in run.nodes}
    assert set(executables) == {"policy_node", "intervention_node", "recorder_node", "bridge_node"}
    for executable, node in executables.items():
        assert executable in console_scripts(node["package"]), executable
        assert node["name"] == executable and node["namespace"] == "007"
        assert node.kind == ("LifecycleNode" if executable in LIFECYCLE_EXECUTABLES else "Node")
        assert node["ros_arguments"] == ["--log-level", "debug"]
        key, parameters = node_parameters(node)
        assert key == f"/007/{executable}"
        assert parameter_errors(executable, parameters) == []
    assert node_parameters(executables["recorder_node"])[1]["robot_id"] == "007"  # a string, not the int 7
    recorder = node_parameters(executables["recorder_node"])[1]
    bridge = node_parameters(executables["bridge_node"])[1]
    assert recorder["spool_dir"] == bridge["spool_dir"] == str(tmp_path.resolve() / "007" / "spool")
    assert node_parameters(executables["recorder_node"])[1]["cameras"] == [
        "cam_high",
        "cam_low",
        "cam_left_wrist",
        "cam_right_wrist",
    ]
    configured = {e["lifecycle_node_matcher"]["target_action"]["executable"] for e in run.events}
    assert configured == LIFECYCLE_EXECUTABLES
    assert all(e["transition_id"] == 1 for e in run.events)
    activated = {h["target_lifecycle_node"]["executable"] for h in run.handlers if h["goal_state"] == "inactive"}
    assert activated == LIFECYCLE_EXECUTABLES


def test_bringup_passes_the_trusted_release_key_to_the_bridge(launcher, tmp_path):
    arguments = {"checkpoint": "/p", "instruction": "fold the towel", "data_dir": str(tmp_path)}
    for given, expected in (({}, [""]), ({"trusted_keys": "/etc/lwd/keys/release.pub"}, ["/etc/lwd/keys/release.pub"])):
        run = launcher.run(REPO / "launch" / "bringup.launch.py", {**arguments, **given})
        (bridge,) = [node for node in run.nodes if node["executable"] == "bridge_node"]
        assert node_parameters(bridge)[1]["trusted_keys"] == expected


def test_bringup_rejects_a_value_outside_the_choices(launcher, tmp_path):
    with pytest.raises(AssertionError, match="channel"):
        launcher.run(
            REPO / "launch" / "bringup.launch.py",
            {"checkpoint": "/p", "instruction": "fold the towel", "channel": "nightly", "data_dir": str(tmp_path)},
        )


def test_sim_launch_starts_n_robots_each_with_the_full_stack(launcher, tmp_path):
    run = launcher.run(
        REPO / "launch" / "sim.launch.py",
        {"robots": "3", "checkpoint": "/policies/v1", "task": "insertion", "data_dir": str(tmp_path)},
    )
    namespaces = {node["namespace"] for node in run.nodes}
    assert namespaces == {"sim_01", "sim_02", "sim_03"}
    drivers = [node for node in run.nodes if node["executable"] == "sim_driver"]
    assert len(drivers) == 3 and len(run.nodes) == 15
    seeds = set()
    for driver in drivers:
        _, parameters = node_parameters(driver)
        assert parameter_errors("sim_driver", parameters) == []
        assert parameters["task"] == "insertion" and parameters["cameras"] == ["top"]
        seeds.add(parameters["seed"])
    assert len(seeds) == 3
    spools = {node_parameters(n)[1]["spool_dir"] for n in run.nodes if n["executable"] == "recorder_node"}
    assert len(spools) == 3


def test_trainer_launch_overrides_are_declared(launcher):
    run = launcher.run(REPO / "launch" / "trainer.launch.py", {})
    (node,) = run.nodes
    config_file, overrides = node["parameters"]
    assert config_file["substitutions"][1:] == ["config", "trainer_node.yaml"]
    declared = declared_parameters(node_files()["trainer_node"])
    assert set(overrides) <= set(declared)
    assert all(value["value_type"] is str for value in overrides.values())
    assert "pretrained" in overrides and run.arguments["pretrained"]["default_value"] == ""


def test_trainer_launch_ends_when_the_trainer_exits(launcher):
    run = launcher.run(REPO / "launch" / "trainer.launch.py", {})
    (handler,) = run.handlers
    assert handler.kind == "OnProcessExit" and handler["target_action"] is run.nodes[0]
    assert [entity.kind for entity in handler["on_exit"]] == ["LogInfo", "Shutdown"]


def test_bringup_stops_the_robot_when_a_lifecycle_node_fails_to_configure(launcher, tmp_path):
    arguments = {"checkpoint": "/p", "instruction": "fold the towel", "data_dir": str(tmp_path)}
    run = launcher.run(REPO / "launch" / "bringup.launch.py", arguments)
    failures = [h for h in run.handlers if h["goal_state"] == "unconfigured"]
    assert {h["target_lifecycle_node"]["executable"] for h in failures} == LIFECYCLE_EXECUTABLES
    for handler in failures:
        assert handler["start_state"] == "configuring"
        log, shutdown = handler["entities"]
        assert (log.kind, shutdown.kind) == ("LogInfo", "Shutdown")
        assert handler["target_lifecycle_node"]["executable"] in shutdown["reason"]


def test_bringup_needs_an_instruction_on_a_real_robot_and_takes_the_task_s_in_sim(launcher, tmp_path):
    with pytest.raises(ValueError, match="instruction:="):
        launcher.run(REPO / "launch" / "bringup.launch.py", {"checkpoint": "/p", "data_dir": str(tmp_path)})
    run = launcher.run(
        REPO / "launch" / "bringup.launch.py",
        {"checkpoint": "/p", "use_sim": "true", "task": "insertion", "data_dir": str(tmp_path)},
    )
    instructions = {
        node["executable"]: node_parameters(node)[1]["instruction"]
        for node in run.nodes
        if node["executable"] in ("intervention_node", "policy_node")
    }
    from lwd_sim.tasks import TASKS

    assert set(instructions.values()) == {TASKS["insertion"].instructions[0]}


@pytest.mark.parametrize("robots", ["abc", "0", "2.5", "33"])
def test_sim_launch_rejects_a_robot_count_it_cannot_start_with_a_clear_error(launcher, tmp_path, robots):
    with pytest.raises(ValueError, match="robots:= must be a whole number from 1 to 32"):
        launcher.run(
            REPO / "launch" / "sim.launch.py", {"robots": robots, "checkpoint": "/p", "data_dir": str(tmp_path)}
        )


# --------------------------------------------------------------------------- operator guide

OPERATOR_GUIDE = REPO / "docs" / "operators.md"
EVENT_NAMES = {"hand back": "hand_back", "e-stop": "estop", "reset e-stop": "reset_estop"}


def guide_table(header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``, as stripped cells."""
    lines = OPERATOR_GUIDE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_operator_guide_lists_the_real_bringup_arguments(launcher, tmp_path):
    run = launcher.run(
        REPO / "launch" / "bringup.launch.py",
        {"checkpoint": "/p", "instruction": "fold the towel", "data_dir": str(tmp_path)},
    )
    rows = guide_table("| argument |")
    assert {row[0].strip("`") for row in rows} == set(run.arguments)
    for name, default, choices, _ in rows:
        argument = run.arguments[name.strip("`")]
        listed = [choice.strip("`") for choice in choices.split(", ")] if choices else None
        assert listed == argument["choices"], name
        if isinstance(argument["default_value"], str):
            assert default == f"`{argument['default_value']}`", name
        elif argument["default_value"] is None:
            assert default == "(required)", name


def test_operator_guide_lists_the_real_buttons_and_keys():
    from lwd_intervention.keyboard import DEFAULT_KEYS

    parameters = yaml.safe_load((REPO / "config" / "intervention_node.yaml").read_text())["intervention_node"]
    buttons = parameters["ros__parameters"]["buttons"]
    keys = {event.value: key for key, event in DEFAULT_KEYS.items()}
    documented = set()
    for event, gamepad, key, _ in guide_table("| event | gamepad |"):
        if event == "quit console":
            continue
        name = EVENT_NAMES.get(event, event)
        documented.add(name)
        assert gamepad.endswith(f"({buttons[name]})"), (event, gamepad)
        if name in keys:
            assert key == ("space" if keys[name] == " " else f"`{keys[name]}`"), (event, key)
    assert documented == set(buttons)


def test_operator_guide_commands_and_launch_arguments_exist(launcher, tmp_path):
    from lwd.cli import build_parser

    text = OPERATOR_GUIDE.read_text()
    commands = re.findall(r"`(lwd [^`]+)`", text) + re.findall(r"^(lwd .+?)(?:\s+#.*)?$", text, re.MULTILINE)
    assert len(commands) >= 8
    parser = build_parser()
    for command in commands:
        arguments = shlex.split(command)[1:]
        if len(arguments) == 2:  # a bare "lwd group command" mention: the command must exist
            with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args([*arguments, "--help"])
            assert exit_info.value.code == 0, command
        else:
            parser.parse_args(arguments)  # SystemExit on an unknown command or option
    declared = set()
    for launch_file in ("bringup.launch.py", "sim.launch.py", "trainer.launch.py"):
        arguments = {"checkpoint": "/p", "instruction": "fold the towel", "data_dir": str(tmp_path)}
        declared |= set(launcher.run(REPO / "launch" / launch_file, arguments).arguments)
    used = set(re.findall(r"(?<!-r )(?<![\w/])([a-z][a-z_]*):=", text))
    assert used and used <= declared, used - declared
