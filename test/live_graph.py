"""A live ROS 2 node graph for the tests: real node processes on real DDS, and a probe node in the test.

:class:`NodeGraph` starts the processes a launch description names (see launch_standin.py), each
with its own log file, on a DDS domain of the test's own with discovery kept on loopback; it stops
them with SIGINT, as ``ros2 launch`` does on Ctrl-C, and reports every exit status.
:class:`Probe` is an rclpy node inside the test process, spinning in a thread: it publishes,
subscribes, calls services and drives lifecycle transitions the way launch does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rclpy
import yaml
from launch_standin import REPO, LaunchRun, LaunchSimulator
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions

BIN = Path(sys.prefix) / "bin"
GOAL_STATES = {Transition.TRANSITION_CONFIGURE: "inactive", Transition.TRANSITION_ACTIVATE: "active"}
"""The lifecycle state each transition the tests use leads to."""
_DOMAINS = itertools.count()


def free_domain_id() -> int:
    """A DDS domain id for one test: distinct within this run, and spread by pid across concurrent runs."""
    return 1 + (os.getpid() * 17 + next(_DOMAINS)) % 140


def graph_environment(domain_id: int) -> dict[str, str]:
    """The environment of every process of a test graph: its domain, loopback discovery, offline models."""
    return {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",
        "RCUTILS_COLORIZED_OUTPUT": "0",
    }


@dataclass
class NodeProcess:
    """One running node executable and the file its output goes to."""

    name: str
    command: list[str]
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        """Everything the process has written so far (stdout and stderr)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class NodeGraph:
    """Node processes of one test, on one DDS domain; ``stop`` sends SIGINT and collects exit codes."""

    def __init__(self, folder: Path, domain_id: int) -> None:
        self.folder = folder
        self.domain_id = domain_id
        self.env = graph_environment(domain_id)
        self.processes: list[NodeProcess] = []
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, label: str, command: list[str]) -> NodeProcess:
        """Start ``command`` (an executable with ``--ros-args``) with its output in ``<folder>/<label>.log``."""
        log = self.folder / f"{label}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(command, env=self.env, stdout=sink, stderr=subprocess.STDOUT, cwd=self.folder)
        node = NodeProcess(label, command, process, log)
        self.processes.append(node)
        return node

    def running(self) -> list[str]:
        """Labels of the processes still alive."""
        return [node.name for node in self.processes if node.process.poll() is None]

    def assert_alive(self) -> None:
        """Fail with the dead process's output if any node exited."""
        for node in self.processes:
            if node.process.poll() is not None:
                raise AssertionError(f"{node.name} exited with {node.process.returncode}:\n{node.output()[-4000:]}")

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        """SIGINT every node, as Ctrl-C on ``ros2 launch`` does; exit code per label (-9: had to be killed, after
        a SIGABRT that makes Python write every thread's stack into the node's log)."""
        for node in self.processes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        codes = {}
        for node in self.processes:
            try:
                codes[node.name] = node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: its threads' stacks go to its log
                try:
                    node.process.wait(5.0)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
                codes[node.name] = -9
        return codes

    def logs(self) -> str:
        """Every node's output, labelled: what a failing test prints."""
        return "\n".join(f"===== {node.name}\n{node.output()[-6000:]}" for node in self.processes)

    def kill_all(self) -> None:
        """Teardown: no process outlives its test."""
        for node in self.processes:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait()


class Probe:
    """An rclpy node in the test process, on the graph's domain, spinning in a background thread."""

    def __init__(self, domain_id: int, name: str = "lwd_test_probe") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except ExternalShutdownException:
                return

    def collect(self, msgtype: type, topic: str, qos: QoSProfile) -> list[Any]:
        """Subscribe ``topic``; the returned list fills with every message received, in order."""
        received: list[Any] = []

        def keep(message: Any) -> None:
            with self.lock:
                received.append(message)

        self.node.create_subscription(msgtype, topic, keep, qos)
        return received

    def call(
        self, srv_type: type, name: str, request: Any, timeout: float = 20.0, resend_after: float | None = None
    ) -> Any:
        """Call service ``name`` once it is available; its response.

        DDS can report a service ready before the server's reply can reach this client, and a reply
        sent then is lost. So the call waits a moment after discovery, and an idempotent request may
        be sent again every ``resend_after`` seconds until a reply comes.
        """
        client = self.node.create_client(srv_type, name)
        try:
            wait_until(client.service_is_ready, timeout, f"service {name}")
            time.sleep(0.5)
            deadline = time.monotonic() + timeout
            while True:
                future = client.call_async(request)
                wait = min(resend_after or timeout, max(0.1, deadline - time.monotonic()))
                try:
                    wait_until(future.done, wait, f"a response from {name}")
                    return future.result()
                except AssertionError:
                    if resend_after is None or time.monotonic() >= deadline:
                        raise
        finally:
            self.node.destroy_client(client)

    def lifecycle_state(self, node: str) -> str:
        """The current lifecycle state label of node ``node`` (full name)."""
        return self.call(GetState, f"{node}/get_state", GetState.Request(), resend_after=2.0).current_state.label

    def change_state(self, node: str, transition: int, timeout: float = 60.0) -> bool:
        """Ask node ``node`` (full name) for a lifecycle transition, as launch's ChangeState event does.

        A transition is not idempotent, so a lost reply is resolved by asking the node for its state:
        the transition succeeded when the node is in the state it leads to.
        """
        request = ChangeState.Request(transition=Transition(id=transition))
        try:
            return bool(self.call(ChangeState, f"{node}/change_state", request, timeout).success)
        except AssertionError:
            if transition not in GOAL_STATES:
                raise
            return self.lifecycle_state(node) == GOAL_STATES[transition]

    def bring_up(self, node: str, timeout: float = 90.0) -> None:
        """configure, then activate: what bringup's event handlers do for each lifecycle node."""
        assert self.change_state(node, Transition.TRANSITION_CONFIGURE, timeout), f"{node}: configure failed"
        assert self.change_state(node, Transition.TRANSITION_ACTIVATE, timeout), f"{node}: activate failed"
        assert self.lifecycle_state(node) == "active"

    def close(self) -> None:
        """Shut the probe's context down and join its thread."""
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5.0)


def wait_until(condition: Callable[[], Any], timeout: float, what: str, graph: NodeGraph | None = None) -> Any:
    """Poll ``condition`` until it is truthy and return it; on timeout fail naming ``what`` (and the node logs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if graph is not None:
            graph.assert_alive()
        time.sleep(0.05)
    logs = f"\n{graph.logs()}" if graph is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{logs}")


def launch_plan(path: Path, arguments: dict[str, str]) -> LaunchRun:
    """What ``ros2 launch <path> name:=value ...`` would start (parameter files are written now)."""
    with pytest.MonkeyPatch.context() as patch:
        return LaunchSimulator(patch).run(path, arguments)


def sim_robot_plan(robot_id: str, checkpoint: Path, store_url: str, data_dir: Path) -> LaunchRun:
    """``bringup.launch.py`` for one simulated robot (``use_sim:=true robot_profile:=aloha_sim``)."""
    arguments = {"robot_id": robot_id, "robot_profile": "aloha_sim", "use_sim": "true"}
    arguments |= {"checkpoint": str(checkpoint), "store_url": store_url, "data_dir": str(data_dir)}
    return launch_plan(REPO / "launch" / "bringup.launch.py", arguments)


def merged_overrides(*parts: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-node overrides (executable -> parameters) of every part, later parts winning parameter by parameter."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for executable, parameters in part.items():
            merged.setdefault(executable, {}).update(parameters)
    return merged


def start_launch(
    graph: NodeGraph, plan: LaunchRun, folder: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Start every node of ``plan``; ``overrides`` (executable -> parameters) go in a file given after the launch's."""
    folder.mkdir(parents=True, exist_ok=True)
    for node in plan.nodes:
        command = plan.command(node, BIN, folder)
        extra = (overrides or {}).get(node["executable"])
        if extra:
            path = folder / f"{node['executable']}_overrides.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": dict(extra)}}))
            command += ["--params-file", str(path)]
        namespace = node["namespace"] or ""
        label = f"{plan.scopes[id(node)].resolve(namespace)}/{node['name']}".strip("/")
        graph.start(label.replace("/", "."), command)


def bring_up_lifecycle_nodes(probe: Probe, plan: LaunchRun) -> dict[str, float]:
    """Configure then activate every node bringup's events configure and its handlers activate.

    Returns each node's full name with the monotonic time its activation completed.
    """
    configured = [event["lifecycle_node_matcher"]["target_action"] for event in plan.events]
    activated = {id(h["target_lifecycle_node"]) for h in plan.handlers if h["goal_state"] == "inactive"}
    assert configured and all(id(node) in activated for node in configured)
    activation = {}
    for node in configured:
        name = f"/{plan.scopes[id(node)].resolve(node['namespace'])}/{node['name']}"
        probe.bring_up(name)
        activation[name] = time.monotonic()
    return activation


@contextlib.contextmanager
def live_graph(folder: Path, domain_id: int | None = None) -> Iterator[tuple[NodeGraph, Probe]]:
    """A node graph and a probe on a fresh domain; on leaving, every node gets SIGINT and must stop cleanly.

    A clean stop is exit status 0 from every node, no traceback and no incompatible QoS reported
    in any node's output (rclpy logs a warning for each publisher/subscriber pair whose QoS cannot
    match).
    """
    domain_id = free_domain_id() if domain_id is None else domain_id
    graph = NodeGraph(folder, domain_id)
    probe = Probe(domain_id)
    try:
        yield graph, probe
    finally:
        codes = graph.stop()
        logs = graph.logs()
        probe.close()
        graph.kill_all()
    assert all(code == 0 for code in codes.values()), f"exit codes {codes}\n{logs}"
    assert "Traceback" not in logs, logs
    assert "incompatible QoS" not in logs, logs
