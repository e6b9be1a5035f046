"""Live start-up and shut-down behaviour of single nodes: clear errors instead of tracebacks, exit 0 on SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from live_graph import BIN, NodeGraph, Probe, free_domain_id, wait_until
from lwd_interfaces import topics
from lwd_interfaces.ros import contract_qos
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import String


def test_intervention_node_refuses_to_start_episodes_without_an_instruction(tmp_path):
    graph = NodeGraph(tmp_path, free_domain_id())
    node = graph.start("intervention_node", [str(BIN / "intervention_node")])
    try:
        assert node.process.wait(60) == 1
    finally:
        graph.kill_all()
    output = node.output()
    assert "parameter 'instruction' is empty" in output and "Traceback" not in output


def test_policy_node_reports_a_bad_checkpoint_at_configure_and_stays_up(tmp_path):
    domain = free_domain_id()
    graph = NodeGraph(tmp_path, domain)
    (tmp_path / "not_a_policy").mkdir()
    params = ["--ros-args", "-p", f"checkpoint:={tmp_path / 'not_a_policy'}"]
    node = graph.start("policy_node", [str(BIN / "policy_node"), *params])
    probe = Probe(domain)
    try:
        assert not probe.change_state("/policy_node", 1)
        assert probe.lifecycle_state("/policy_node") == "unconfigured"
        assert "configure failed" in node.output()
        codes = graph.stop()
    finally:
        probe.close()
        graph.kill_all()
    assert codes == {"policy_node": 0}


def test_sim_driver_publishes_images_and_exits_0_on_sigint(tmp_path):
    domain = free_domain_id()
    graph = NodeGraph(tmp_path, domain)
    node = graph.start("sim_driver", [str(BIN / "sim_driver")])
    probe = Probe(domain)
    try:
        camera = topics.camera_topic("top")
        images = probe.collect(Image, camera, contract_qos(camera))
        wait_until(lambda: len(images) >= 5, 60, "camera images", graph)
        assert (images[0].encoding, images[0].height, images[0].width) == ("rgb8", 96, 128)
        node.process.send_signal(signal.SIGINT)
        assert node.process.wait(30) == 0
    except subprocess.TimeoutExpired:
        raise AssertionError(node.output()) from None
    finally:
        probe.close()
        graph.kill_all()
    assert "Traceback" not in node.output()


FAREWELL_NODE = textwrap.dedent(
    """
    from rclpy.node import Node
    from std_msgs.msg import String

    from lwd_interfaces.ros import run_node


    class Farewell(Node):
        def __init__(self):
            super().__init__("farewell")
            self.publisher = self.create_publisher(String, "/farewell", 10)
            self.create_timer(0.05, lambda: self.publisher.publish(String(data="hello")))

        def destroy_node(self):
            self.publisher.publish(String(data="goodbye"))
            self.publisher.wait_for_all_acked()
            super().destroy_node()


    run_node(Farewell)
    """
)


def test_a_node_still_reaches_the_graph_from_destroy_node_after_sigint(tmp_path):
    """SIGINT only asks run_node to stop: the node is destroyed before its context, so cleanup can still publish."""
    domain = free_domain_id()
    graph = NodeGraph(tmp_path, domain)
    script = tmp_path / "farewell_node.py"
    script.write_text(FAREWELL_NODE)
    probe = Probe(domain)
    farewells = probe.collect(String, "/farewell", QoSProfile(depth=10))
    node = graph.start("farewell", [sys.executable, str(script)])
    try:
        wait_until(lambda: len(farewells) > 0, 60, "the node's first message", graph)
        node.process.send_signal(signal.SIGINT)
        assert node.process.wait(30) == 0, node.output()
        wait_until(lambda: farewells[-1].data == "goodbye", 10, "the farewell message", graph)
    finally:
        probe.close()
        graph.kill_all()
    assert "Traceback" not in node.output()
