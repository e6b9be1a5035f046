"""Bags to dataset, DIVL + QAM offline-to-online training, and the trainer node."""

from setuptools import find_packages, setup

PACKAGE = "lwd_learner"

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
        "torch",
        "safetensors",
        "tensorboard",
        "lwd-interfaces",
        "lwd_fleet",
        "lwd_policy",
        "lwd_logger",
    ],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="Bags to dataset, DIVL + QAM offline-to-online training, and the trainer node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "trainer_node = lwd_learner.node:main",
        ],
    },
)
