#!/usr/bin/env bash
# Install ROS 2 Jazzy from PyPI wheels into a venv and build lwd_msgs with the real rosidl generators.
#
#   ros/install.sh [VENV]        (default .venv; `make test` runs it once per change of its inputs)
#
# Afterwards `from lwd_msgs.msg import ActionChunk` is generated code, and rclpy runs on Fast DDS,
# with no environment to source. Every step is idempotent: a second run changes nothing.
#
# The wheels (one unofficial publisher, github.com/ycheng517/ros-python-wheels) have two defects
# this script works around:
#   1. Their dependency metadata misses the build-side packages that building an interface package
#      needs (ament_package, ament_cmake_include_directories, python_cmake_module, the
#      gtest/gmock/pytest cmake pieces, rosidl_core_generators, lark). So we install an explicit,
#      hash-locked list (ros/jazzy.lock) with --no-deps instead of trusting the resolver.
#   2. About a dozen installed `*_generator_pyExport.cmake` files name the include directories of
#      the image the wheels were built in (/opt/python/cp311-cp311/...). We rewrite them to this
#      venv's Python and numpy include directories, or the generated C extensions do not compile.
# A third one needs nothing here: ros-wheels-bootstrapper's .pth re-executes every Python start
# of the venv once with LD_LIBRARY_PATH set, so a child process must inherit both that path and
# the guard variable `_ROS_WHEELS_BOOTSTRAP_COMPLETE`, or neither (subprocess with the parent's
# environment does the right thing).
#
# To regenerate the lock: in a scratch venv, `pip install ros-jazzy-rclpy ros-jazzy-rmw-fastrtps-cpp
# ros-jazzy-{std,sensor,geometry,lifecycle}-msgs ros-jazzy-rosidl-default-{generators,runtime}
# ros-jazzy-ament-cmake-ros ros-jazzy-ament-package ros-jazzy-python-cmake-module
# ros-jazzy-rosidl-core-generators ros-jazzy-ament-cmake-{gtest,gmock,pytest}`, then
# `pip install --dry-run --ignore-installed --no-deps --report r.json` over its `ros-*` packages and
# lark-parser, and write each name==version with its sha256 (the ros-jazzy-* meta wheels only pin).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
PY="$(cd "$VENV" && pwd)/bin/python"
PREFIX="$("$PY" -c 'import sys; print(sys.prefix)')"
BUILD=build/lwd_msgs
mkdir -p build

echo "ros/install.sh: ROS 2 Jazzy wheels into $VENV"
"$PY" -m pip install --quiet --require-hashes --no-deps -r ros/jazzy.lock

# Defect 2: point the generator export files at this venv's include directories.
"$PY" - "$PREFIX" <<'PYTHON'
import sys, sysconfig
from pathlib import Path

import numpy

BUILD_IMAGE_NUMPY = "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"
BUILD_IMAGE_PYTHON = "/opt/python/cp311-cp311/include/python3.11"
fixed = 0
for path in Path(sys.argv[1], "share").glob("*/cmake/*.cmake"):
    text = path.read_text()
    if BUILD_IMAGE_PYTHON not in text and BUILD_IMAGE_NUMPY not in text:
        continue
    text = text.replace(BUILD_IMAGE_NUMPY, numpy.get_include())
    path.write_text(text.replace(BUILD_IMAGE_PYTHON, sysconfig.get_paths()["include"]))
    fixed += 1
if fixed:
    print(f"ros/install.sh: rewrote the build image's include paths in {fixed} cmake export files")
PYTHON

echo "ros/install.sh: building lwd_msgs with rosidl (about a minute on 2 cores)"
cmake -S src/lwd_msgs -B "$BUILD" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF >"$BUILD.log" 2>&1 || { tail -40 "$BUILD.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" >>"$BUILD.log" 2>&1 || { tail -40 "$BUILD.log"; exit 1; }
cmake --install "$BUILD" >>"$BUILD.log" 2>&1 || { tail -40 "$BUILD.log"; exit 1; }
"$PY" -c 'import rclpy; from lwd_msgs.msg import ActionChunk; from lwd_msgs.srv import LabelEpisode'
echo "ros/install.sh: rclpy $("$PY" -c 'import importlib.metadata as m; print(m.version("ros-rclpy"))') (Jazzy) and lwd_msgs are ready"
