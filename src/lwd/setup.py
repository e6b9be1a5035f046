"""LWD bringup: launch files, configuration, and the lwd command-line runner."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lwd"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        ("share/lwd/launch", sorted(glob("launch/*.launch.py"))),
        ("share/lwd/config", sorted(glob("config/*.yaml"))),
        ("share/lwd/config/profiles", sorted(glob("config/profiles/*.yaml"))),
    ],
    install_requires=[
        "PyYAML",
        "lwd_fleet",
        "lwd_policy",
        "lwd_intervention",
        "lwd_logger",
        "lwd_learner",
        "lwd_sim",
        "lwd_experiment",
        "lwd-interfaces",
    ],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="LWD bringup: launch files, configuration, and the lwd command-line runner.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["lwd = lwd.cli:main"],
    },
)
