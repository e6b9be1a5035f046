"""Live start-up and shut-down behaviour of single nodes: clear errors instead of tracebacks, exit 0 on SIGINT."""

from __future__ import annotations

import signal
import subprocess

from live_graph import BIN, NodeGraph, Probe, free_domain_id, wait_until
from lwd_interfaces import topics
from lwd_interfaces.ros import contract_qos
from sensor_msgs.msg import Image


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
