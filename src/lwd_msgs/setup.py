"""Off-ROS Python distribution of the lwd_msgs interfaces (rosbags typestore + topic contract).

colcon builds this package with ament_cmake (see package.xml); pip uses this file.
"""

from setuptools import setup

setup(
    name="lwd-interfaces",
    version="0.1.0",
    description="lwd_msgs .msg/.srv definitions loaded into a rosbags typestore, for use without ROS 2",
    packages=["lwd_interfaces", "lwd_interfaces.robots"],
    package_data={"lwd_interfaces": ["msg/*.msg", "srv/*.srv", "py.typed"]},
    install_requires=["rosbags"],
    python_requires=">=3.10",
)
