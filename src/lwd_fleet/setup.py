"""The fleet store: its key layout, storage backends, episode catalog, policy channels and publication."""

from setuptools import find_packages, setup

PACKAGE = "lwd_fleet"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["fsspec", "paramiko", "s3fs", "cryptography", "lwd-interfaces"],
    zip_safe=True,
    maintainer="LWD developers",
    maintainer_email="dev@lwd.invalid",
    description="The fleet store: its key layout, storage backends, episode catalog, policy channels and publication.",
    license="Apache-2.0",
)
