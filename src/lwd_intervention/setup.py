"""Takeover arbitration, teleop inputs, reward labels and the intervention node."""

from setuptools import find_packages, setup

PACKAGE = "lwd_intervention"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["numpy", "PyYAML", "lwd-interfaces"],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="Takeover arbitration, teleop inputs, reward labels and the intervention node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "intervention_node = lwd_intervention.node:main",
            "keyboard_teleop = lwd_intervention.keyboard_teleop:main",
        ],
    },
)
