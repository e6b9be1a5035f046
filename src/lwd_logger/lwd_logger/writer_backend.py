"""Which bag writer the recorder uses: ROS 2's own ``rosbag2_py`` where it is installed, else ``rosbags``.

Kept apart from :mod:`lwd_logger.writer` (the interface and the ``rosbags`` writer), which the
``rosbag2_py`` writer builds on, so that the modules import one way only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from rosbags.typesys.store import Typestore

from lwd_logger.writer import BACKENDS, COMPRESSIONS, STORAGES, BagWriter, RosbagsWriter


def writer_factory(
    backend: str, typestore: Typestore, storage: str = "mcap", compression: str = "none"
) -> tuple[str, Callable[[], BagWriter]]:
    """``(backend used, factory of fresh writers)`` for the recorder.

    ``auto`` uses ROS 2's own ``rosbag2_py`` where it is importable (a sourced ROS 2 install),
    else the pure-Python ``rosbags`` writer; naming ``rosbag2_py`` where it is missing is an error.
    """
    if backend not in BACKENDS:
        raise ValueError(f"writer backend must be one of {BACKENDS}, got {backend!r}")
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    available = importlib.util.find_spec("rosbag2_py") is not None
    if backend == "rosbag2_py" and not available:
        raise ValueError("writer backend 'rosbag2_py' requested but rosbag2_py is not importable (source ROS 2)")
    if backend == "rosbags" or not available:
        return "rosbags", lambda: RosbagsWriter(typestore, storage, compression)
    from lwd_logger.rosbag2py_writer import Rosbag2PyWriter

    return "rosbag2_py", lambda: Rosbag2PyWriter(typestore, storage, compression)
