"""lwd_msgs for use without ROS 2: a rosbags typestore and the shared topic contract."""

from lwd_interfaces.typestore import interface_definitions, lwd_type_names, lwd_typestore

__all__ = ["interface_definitions", "lwd_type_names", "lwd_typestore"]
