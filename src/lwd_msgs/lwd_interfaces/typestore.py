"""Load the lwd_msgs interface definitions into a rosbags typestore.

Off ROS 2, this is how every LWD component gets message classes and CDR
serialization that is byte-identical to what rclpy produces for the same
``.msg`` files. The ``.msg``/``.srv`` files in ``src/lwd_msgs`` are the single
source of truth; they ship inside this package as data.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "lwd_msgs"
DEFAULT_STORE = Stores.ROS2_HUMBLE


def interface_definitions() -> dict[str, str]:
    """Map every lwd_msgs type name (``lwd_msgs/msg/X``, ``lwd_msgs/srv/Y_Request``) to its text."""
    root = resources.files(__package__)
    definitions: dict[str, str] = {}
    for entry in sorted(root.joinpath("msg").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".msg"):
            definitions[f"{PACKAGE}/msg/{entry.name[:-4]}"] = entry.read_text()
    for entry in sorted(root.joinpath("srv").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".srv"):
            request, separator, response = entry.read_text().partition("\n---")
            if not separator:
                raise ValueError(f"{entry.name}: a .srv file needs a '---' line between request and response")
            base = f"{PACKAGE}/srv/{entry.name[:-4]}"
            definitions[f"{base}_Request"] = request
            definitions[f"{base}_Response"] = response.lstrip("-\n")
    if not definitions:
        raise FileNotFoundError(f"no .msg/.srv files found in {root}; is lwd-interfaces installed correctly?")
    return definitions


@cache
def lwd_typestore(store: Stores = DEFAULT_STORE) -> Typestore:
    """A typestore with the ROS 2 standard messages plus every lwd_msgs type registered.

    The result is cached per ROS distribution; treat it as read-only.
    """
    typestore = get_typestore(store)
    types = {}
    for name, text in interface_definitions().items():
        # rosbags files every parsed type under <pkg>/<kind>/msg/; keep the srv names ROS 2 uses.
        (parsed,) = get_types_from_msg(text, name).values()
        types[name] = parsed
    typestore.register(types)
    return typestore


def lwd_type_names() -> list[str]:
    """All lwd_msgs type names, sorted."""
    return sorted(interface_definitions())
