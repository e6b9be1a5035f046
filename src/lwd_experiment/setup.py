"""The simulated-fleet experiment: in-process robots, the learning loop, presets and report."""

from setuptools import find_packages, setup

PACKAGE = "lwd_experiment"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=[
        "matplotlib",
        "numpy",
        "torch",
        "imageio",
        "lwd_fleet",
        "lwd_policy",
        "lwd_intervention",
        "lwd_logger",
        "lwd_sim",
        "lwd-interfaces",
    ],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="The simulated-fleet experiment: in-process robots, the learning loop, presets and report.",
    license="Apache-2.0",
)
