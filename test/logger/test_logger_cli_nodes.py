"""The ``lwd bag`` / ``lwd store`` commands end to end, and static checks of the ROS 2 nodes (parameters in
config YAML are declared by the node, entry points exist, node files import only what package.xml lists)."""

from __future__ import annotations

import ast
import json
import re

import yaml
from lwd.cli import main
from lwd_fleet.store import FleetStore
from lwd_logger.bridge import BagBridge
from node_sources import declared_parameters

NODES = {"recorder_node": "recorder_node.py", "bridge_node": "bridge_node.py"}


def test_bag_info_prints_facts(record_episode, capsys):
    folder = record_episode(n=3)
    assert main(["bag", "info", str(folder), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["complete"] is True
    assert body["custom_data"]["lwd.steps"] == "3"
    assert body["message_counts"]["/command/executed"] == 3
    assert main(["bag", "info", str(folder)]) == 0
    assert "lwd.outcome" in capsys.readouterr().out


def test_bag_render_writes_video_and_plot(record_episode, tmp_path, capsys):
    folder = record_episode(n=4)
    assert (
        main(["bag", "render", str(folder), "--out", str(tmp_path / "v.gif"), "--plot", str(tmp_path / "p.png")]) == 0
    )
    assert (tmp_path / "v.gif").stat().st_size > 0
    assert (tmp_path / "p.png").stat().st_size > 0


def test_store_upload_ls_stats(record_episode, spool, tmp_path, capsys):
    record_episode(n=3, success=True)
    url = f"file://{tmp_path / 'fleet'}"
    catalog = str(tmp_path / "catalog.sqlite")
    assert main(["store", "upload", str(spool.root), "--store", url]) == 0
    assert "1 episode(s) uploaded" in capsys.readouterr().out
    assert main(["store", "ls", "--store", url, "--catalog", catalog]) == 0
    out = capsys.readouterr().out
    assert "ingested 1 new" in out
    assert re.search(r"ep1\s+robot7\s+transfer_cube\s+success\s+3\s+0", out)
    assert main(["store", "stats", "--store", url, "--catalog", catalog, "--no-ingest"]) == 0
    assert re.search(r"robot7\s+transfer_cube\s+v000001,v000002\s+1\s+1\s+100.0%", capsys.readouterr().out)


def test_bag_recover_command(make_recorder, steps, episode_info, spool, capsys):
    recorder = make_recorder()
    recorder.start_episode(episode_info)
    for topic, msgtype, msg in steps.step(0):
        recorder.record(topic, msgtype, msg, 1)
    recorder.flush()
    assert main(["bag", "recover", str(spool.root)]) == 0
    assert "1 episode(s) recovered" in capsys.readouterr().out
    (result,) = BagBridge(spool, FleetStore(str(spool.root.parent / "fleet"))).upload_pending()
    assert result.episode_id == "ep1"


def test_node_parameters_match_config_yaml(repo_root):
    for node, filename in NODES.items():
        path = repo_root / "src/lwd_logger/lwd_logger" / filename
        source = path.read_text()
        config = yaml.safe_load((repo_root / "config" / f"{node}.yaml").read_text())
        params = set(config[node]["ros__parameters"])
        assert params == set(declared_parameters(path)), node
        assert f'NODE_NAME = "{node}"' in source


def test_launch_parameters_are_declared(repo_root):
    launch = (repo_root / "src/lwd/launch/bringup.launch.py").read_text()
    for node in NODES:
        declared = declared_parameters(repo_root / "src/lwd_logger/lwd_logger" / NODES[node])
        block = launch.split(f'executable="{node}"')[1].split("Node(")[0]
        for name in re.findall(r"\{([^}]*)\}", block):
            for key in re.findall(r'"(\w+)":', name):
                assert key in declared, (node, key)


def test_entry_points_and_package_xml_cover_node_imports(repo_root):
    setup = (repo_root / "src/lwd_logger/setup.py").read_text()
    package_xml = (repo_root / "src/lwd_logger/package.xml").read_text()
    depends = set(re.findall(r"<exec_depend>([\w-]+)</exec_depend>", package_xml))
    for node, filename in NODES.items():
        assert f'"{node} = lwd_logger.{filename[:-3]}:main"' in setup
        tree = ast.parse((repo_root / "src/lwd_logger/lwd_logger" / filename).read_text())
        roots = {
            (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name).split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) and getattr(n, "level", 0) == 0
        }
        ros = roots & {"rclpy", "rosidl_runtime_py", "lwd_msgs", "sensor_msgs", "std_msgs"}
        assert ros <= depends, ros - depends
        assert any(n.name == "main" for n in tree.body if isinstance(n, ast.FunctionDef))


def test_bag_reindex_command(record_episode, capsys):
    folder = record_episode(n=2)
    (folder / "metadata.yaml").unlink()
    assert main(["bag", "reindex", str(folder)]) == 0
    assert "metadata.yaml" in capsys.readouterr().out
    assert main(["bag", "info", str(folder), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["message_counts"]["/command/executed"] == 2
    assert body["complete"] is False
