"""Static checks of the ROS 2 node layer and the launch files, which cannot run here (no rclpy, no launch).

- Node sources (read with ``ast``): every publisher and subscriber uses a namespaced topic, the
  message type and QoS class of the topic contract, and a pub/sub pair on a topic agrees on the
  type; every parameter has a descriptor with a range that fits its type; times come from the node
  clock; images go through cv_bridge; lifecycle nodes enable their managed publishers.
- Launch files run against stand-ins of the Humble ``launch``/``launch_ros`` API: only names on an
  explicit allow-list exist, each with its Humble signature, so a Jazzy-only name or keyword
  fails. The stand-in runs ``generate_launch_description`` and the OpaqueFunctions, so the
  arguments, the nodes and the parameter files that bringup writes are checked for real.
- ``lwd_interfaces.ros`` runs against stand-ins of ``rclpy.qos`` and ``rcl_interfaces.msg``.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import io
import re
import shlex
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from lwd_interfaces import topics
from node_sources import ROS_MODULES, UNKNOWN, console_scripts, declared_parameters, node_files

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
        if spec.default is not UNKNOWN and ros_type(value) != ros_type(spec.default):
            errors.append(f"{executable}: {name} is {ros_type(value)}, declared {ros_type(spec.default)}")
        elif spec.low not in (None, UNKNOWN) and not spec.low <= value <= spec.high:
            errors.append(f"{executable}: {name}={value} is outside [{spec.low}, {spec.high}]")
        if spec.choices not in (None, UNKNOWN) and value not in spec.choices:
            errors.append(f"{executable}: {name}={value!r} is not one of {sorted(spec.choices)}")
    return errors


def flatten(section: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested ``ros__parameters`` (``buttons: {success: 0}``) as dotted names (``buttons.success``)."""
    flat = {}
    for key, value in section.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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


def endpoints_of(executable: str, source: str) -> list[Endpoint]:
    """Every publisher and subscriber created in one node source."""
    tree = ast.parse(source)
    resolver = TopicResolver(executable, tree)
    return [
        resolver.endpoint(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ENDPOINT_CALLS
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
    """The contract topics in the recorder's ``RECORDED_TOPICS``, read statically (cameras come from a parameter)."""
    tree = ast.parse(node_files()["recorder_node"].read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "RECORDED_TOPICS" for t in node.targets)
    ]
    return {getattr(topics, element.attr) for element in value.elts}


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


def test_images_are_converted_with_cv_bridge():
    for executable in ("policy_node", "sim_driver"):
        source = node_files()[executable].read_text()
        assert "from cv_bridge import" in source, executable
        tree = ast.parse(source)
        built = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "Image"]
        assert not built, f"{executable} builds sensor_msgs/Image by hand"
    assert "imgmsg_to_cv2" in node_files()["policy_node"].read_text()
    assert "cv2_to_imgmsg" in node_files()["sim_driver"].read_text()


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


def test_every_parameter_has_a_descriptor_and_numbers_have_a_range_of_their_type():
    for executable, path in node_files().items():
        for name, spec in declared_parameters(path).items():
            where = f"{executable}: {name}"
            descriptor = spec.descriptor
            assert isinstance(descriptor, ast.Call) and getattr(descriptor.func, "id", None) == "describe", where
            assert descriptor.args, f"{where}: describe() needs a description"
            description = descriptor.args[0]
            assert not isinstance(description, ast.Constant) or description.value.strip(), where
            if spec.default is UNKNOWN or isinstance(spec.default, bool):
                continue
            if isinstance(spec.default, (int, float)):
                assert spec.low is not None and spec.high is not None, f"{where}: numeric parameter without a range"
                # rclpy applies an integer range only to integers and a float range only to doubles.
                assert type(spec.low) is type(spec.high) is type(spec.default), f"{where}: bounds of another type"
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
    assert any("label_timeout_s=-1.0 is outside" in e for e in errors)
    assert any("storage='rosbag1' is not one of" in e for e in errors)
    assert any("cameras is an empty list" in e for e in errors)
    assert any("nope is not declared" in e for e in errors)


def test_recorder_writer_backend_choice():
    from lwd_interfaces import lwd_typestore
    from lwd_logger.writer import RosbagsWriter, writer_factory

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


# --------------------------------------------------------------------------- lwd_interfaces.ros


def _message_class(name: str, fields: dict[str, Any]) -> type:
    """A stand-in ROS message class: keyword construction, attributes with defaults."""

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(fields)
        if unknown:
            raise TypeError(f"{name} has no fields {unknown}")
        for key, default in fields.items():
            setattr(self, key, kwargs.get(key, default() if callable(default) else default))

    return type(name, (), {"__init__": __init__})


@pytest.fixture
def ros_helpers(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``lwd_interfaces.ros`` imported over stand-ins of the Humble rclpy.qos and rcl_interfaces.msg names."""
    msg = types.ModuleType("rcl_interfaces.msg")
    msg.ParameterDescriptor = _message_class(
        "ParameterDescriptor",
        {
            "name": "",
            "type": 0,
            "description": "",
            "additional_constraints": "",
            "read_only": False,
            "dynamic_typing": False,
            "floating_point_range": list,
            "integer_range": list,
        },
    )
    msg.FloatingPointRange = _message_class("FloatingPointRange", {"from_value": 0.0, "to_value": 0.0, "step": 0.0})
    msg.IntegerRange = _message_class("IntegerRange", {"from_value": 0, "to_value": 0, "step": 0})
    qos = types.ModuleType("rclpy.qos")
    qos.HistoryPolicy = types.SimpleNamespace(KEEP_LAST="keep_last", KEEP_ALL="keep_all")
    qos.ReliabilityPolicy = types.SimpleNamespace(RELIABLE="reliable", BEST_EFFORT="best_effort")
    qos.DurabilityPolicy = types.SimpleNamespace(VOLATILE="volatile", TRANSIENT_LOCAL="transient_local")
    qos.QoSProfile = _message_class(
        "QoSProfile", {"history": None, "depth": None, "reliability": None, "durability": None}
    )
    rclpy = types.ModuleType("rclpy")
    rclpy.qos = qos
    rclpy.calls = []
    rclpy.spin = lambda node: node.spin()
    rclpy.try_shutdown = lambda: rclpy.calls.append("try_shutdown")
    rcl_interfaces = types.ModuleType("rcl_interfaces")
    rcl_interfaces.msg = msg
    for name, module in {"rclpy": rclpy, "rclpy.qos": qos, "rcl_interfaces": rcl_interfaces}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "rcl_interfaces.msg", msg)
    spec = importlib.util.spec_from_file_location(
        "lwd_interfaces_ros_under_test", Path(topics.__file__).with_name("ros.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_qos_profiles_match_the_contract(ros_helpers):
    latched = ros_helpers.contract_qos(topics.POLICY_VERSION)
    assert (latched.reliability, latched.durability, latched.depth) == ("reliable", "transient_local", 1)
    camera = ros_helpers.contract_qos(topics.camera_topic("top"), depth=50)
    assert (camera.reliability, camera.durability, camera.depth) == ("best_effort", "volatile", 50)
    command = ros_helpers.qos_profile(topics.RELIABLE)
    assert (command.reliability, command.durability, command.depth) == ("reliable", "volatile", 10)


def test_describe_builds_read_only_descriptors_with_typed_ranges(ros_helpers):
    plain = ros_helpers.describe("spool folder")
    assert plain.read_only and plain.description == "spool folder" and not plain.integer_range
    ranged = ros_helpers.describe("period [s]", low=0.1, high=60.0)
    (interval,) = ranged.floating_point_range
    assert (interval.from_value, interval.to_value, interval.step) == (0.1, 60.0, 0.0) and not ranged.integer_range
    (counts,) = ros_helpers.describe("retries", low=1, high=100).integer_range
    assert (counts.from_value, counts.to_value) == (1, 100)
    assert (
        ros_helpers.describe("storage", choices=("mcap", "sqlite3")).additional_constraints == "one of: mcap, sqlite3"
    )
    with pytest.raises(ValueError, match="both bounds"):
        ros_helpers.describe("half a range", low=1.0)
    assert ros_helpers.require_choice("storage", "mcap", ("mcap",)) == "mcap"
    with pytest.raises(ValueError, match="'storage' must be one of"):
        ros_helpers.require_choice("storage", "bag", ("mcap",))


class _SpinningNode:
    """Stands in for a node: ``rclpy.spin`` runs ``spin``, which ends the way ``outcome`` says."""

    def __init__(self, outcome: type[BaseException] | None) -> None:
        self.outcome = outcome
        self.events: list[str] = []

    def spin(self) -> None:
        if self.outcome is not None:
            raise self.outcome()

    def get_logger(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(info=lambda text: self.events.append(f"log: {text}"))

    def destroy_node(self) -> None:
        self.events.append("destroyed")


def test_spin_until_shutdown_destroys_the_node_however_spinning_ends(ros_helpers):
    interrupted = _SpinningNode(KeyboardInterrupt)
    ros_helpers.spin_until_shutdown(interrupted, "interrupted; saving")
    assert interrupted.events == ["log: interrupted; saving", "destroyed"]
    crashed = _SpinningNode(RuntimeError)
    with pytest.raises(RuntimeError):
        ros_helpers.spin_until_shutdown(crashed)
    assert crashed.events == ["destroyed"]
    assert sys.modules["rclpy"].calls == ["try_shutdown", "try_shutdown"]


def test_every_node_main_spins_through_the_shared_helper():
    for executable, source in node_files().items():
        text = source.read_text()
        if "rclpy.spin(" in text or "spin_until_shutdown(" in text:
            assert "rclpy.spin(" not in text and "spin_until_shutdown(" in text, f"{executable} spins on its own"


# --------------------------------------------------------------------------- launch files


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
    },
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


class LaunchContextStandIn:
    """The LaunchContext an OpaqueFunction sees: the launch configurations of its scope."""

    def __init__(self, configurations: dict[str, Any]) -> None:
        self.launch_configurations = configurations

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
            elif kind == "RegisterEventHandler":
                run.handlers.append(entity["event_handler"])
            elif kind == "EmitEvent":
                run.events.append(entity["event"])
            else:
                raise AssertionError(f"unexpected launch entity {kind}")


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch) -> LaunchSimulator:
    return LaunchSimulator(monkeypatch)


def node_parameters(node: Call) -> tuple[str, dict[str, Any]]:
    """(key, flat parameters) of the one parameter file bringup gives a node."""
    (path,) = node["parameters"]
    ((key, section),) = yaml.safe_load(Path(path).read_text()).items()
    return key, flatten(section["ros__parameters"])


def test_launch_files_import_only_allow_listed_humble_names(launcher):
    for path in sorted((REPO / "launch").glob("*.launch.py")):
        launcher.load(path)  # an ImportError names a launch/launch_ros name outside the allow-list


def test_bringup_arguments_have_descriptions_and_choices(launcher, tmp_path):
    run = launcher.run(REPO / "launch" / "bringup.launch.py", {"checkpoint": "/policies/v1", "data_dir": str(tmp_path)})
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
        {"checkpoint": "/policies/v1", "robot_id": "007", "data_dir": str(tmp_path), "log_level": "debug"},
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


def test_bringup_rejects_a_value_outside_the_choices(launcher, tmp_path):
    with pytest.raises(AssertionError, match="channel"):
        launcher.run(
            REPO / "launch" / "bringup.launch.py",
            {"checkpoint": "/p", "channel": "nightly", "data_dir": str(tmp_path)},
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
    run = launcher.run(REPO / "launch" / "bringup.launch.py", {"checkpoint": "/p", "data_dir": str(tmp_path)})
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
        arguments = {"checkpoint": "/p", "data_dir": str(tmp_path)}
        declared |= set(launcher.run(REPO / "launch" / launch_file, arguments).arguments)
    used = set(re.findall(r"(?<!-r )(?<![\w/])([a-z][a-z_]*):=", text))
    assert used and used <= declared, used - declared
