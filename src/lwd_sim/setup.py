"""Simulated MuJoCo ALOHA dual-arm robot driver and scripted operator."""

from setuptools import find_packages, setup

PACKAGE = "lwd_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["numpy", "mujoco", "gym-aloha", "dm-control", "lwd-interfaces"],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="Simulated MuJoCo ALOHA dual-arm robot driver and scripted operator.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["sim_driver = lwd_sim.node:main"],
    },
)
