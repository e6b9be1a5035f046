"""rosbag2 episode recorder, bag bridge uploader to the fleet store, and their nodes."""

from setuptools import find_packages, setup

PACKAGE = "lwd_logger"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=[
        "numpy",
        "PyYAML",
        "rosbags",
        "backports.zstd",
        "mcap",
        "imageio",
        "imageio-ffmpeg",
        "pillow",
        "matplotlib",
        "lwd-interfaces",
        "lwd_fleet",
    ],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="rosbag2 episode recorder, bag bridge uploader to the fleet store, and their nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "recorder_node = lwd_logger.recorder_node:main",
            "bridge_node = lwd_logger.bridge_node:main",
        ],
    },
)
