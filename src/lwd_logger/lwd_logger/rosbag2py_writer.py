"""A ``BagWriter`` over ROS 2's own ``rosbag2_py`` (Humble/Jazzy), for robots with ROS 2 installed.

Imported only where ``rosbag2_py`` exists (``writer_backend.writer_factory`` picks it); the tests
here use ``RosbagsWriter``. rosbag2_py sets custom data only through ``StorageOptions`` on
newer distributions, so custom data is merged into metadata.yaml after the writer has
closed, the way ``ros2 bag`` writes it. Topic definitions for the recovery journal come
from the lwd typestore, as with ``RosbagsWriter``.
"""

from __future__ import annotations

from pathlib import Path

import rosbag2_py
import yaml
from lwd_interfaces.manifest import FileEntry
from rosbags.typesys.store import Typestore

from lwd_logger.writer import TopicSpec, topic_spec


class Rosbag2PyWriter:
    """Records through ``rosbag2_py.SequentialWriter``; the storage plugin writes chunks itself."""

    def __init__(self, typestore: Typestore, storage: str = "mcap", compression: str = "none") -> None:
        """Choose the rosbag2 storage plugin id and compression (``none`` | ``zstd``)."""
        if compression not in ("none", "zstd"):
            raise ValueError(f"compression must be 'none' or 'zstd', got {compression!r}")
        self.typestore = typestore
        self.storage = storage
        self.compression = compression
        self._writer: rosbag2_py.SequentialWriter | None = None
        self._path: Path | None = None

    def open(self, path: Path) -> None:
        """Open a new bag folder; rosbag2 creates it and refuses an existing one."""
        options = rosbag2_py.StorageOptions(uri=str(path), storage_id=self.storage)
        if self.compression == "zstd" and self.storage == "mcap":
            options.storage_preset_profile = "zstd_fast"
        converter = rosbag2_py.ConverterOptions(input_serialization_format="cdr", output_serialization_format="cdr")
        writer = rosbag2_py.SequentialWriter()
        writer.open(options, converter)
        self._writer = writer
        self._path = Path(path)

    def add_topic(self, topic: str, msgtype: str, msgdef: str | None = None, rihs01: str | None = None) -> TopicSpec:
        """Create the topic (Jazzy's TopicMetadata takes an ``id``, Humble's does not).

        rosbag2 finds the definition itself; the returned spec carries the typestore's definition
        and hash unless given, so the recorder's recovery journal is complete.
        """
        if self._writer is None:
            raise RuntimeError("Rosbag2PyWriter is not open")
        try:
            metadata = rosbag2_py.TopicMetadata(id=0, name=topic, type=msgtype, serialization_format="cdr")
        except TypeError:
            metadata = rosbag2_py.TopicMetadata(name=topic, type=msgtype, serialization_format="cdr")
        self._writer.create_topic(metadata)
        if msgdef is None or rihs01 is None:
            return topic_spec(self.typestore, topic, msgtype)
        return TopicSpec(topic=topic, msgtype=msgtype, msgdef=msgdef, rihs01=rihs01)

    def write(self, topic: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Write serialized bytes exactly as received."""
        if self._writer is None:
            raise RuntimeError("Rosbag2PyWriter is not open")
        self._writer.write(topic, bytes(data), log_time_ns)

    def flush(self) -> None:
        """rosbag2_py exposes no flush; its storage plugin writes each chunk to disk as it fills."""

    def close(self, custom_data: dict[str, str]) -> None:
        """Close the writer (releasing it writes metadata.yaml), then merge ``custom_data`` into it."""
        if self._writer is None or self._path is None:
            raise RuntimeError("Rosbag2PyWriter is not open")
        writer, self._writer = self._writer, None
        if hasattr(writer, "close"):
            writer.close()
        del writer
        metadata_path = self._path / "metadata.yaml"
        document = yaml.safe_load(metadata_path.read_text())
        info = document["rosbag2_bagfile_information"]
        info["custom_data"] = {**(info.get("custom_data") or {}), **custom_data}
        temporary = metadata_path.with_suffix(".yaml.tmp")
        temporary.write_text(yaml.safe_dump(document, sort_keys=False))
        temporary.replace(metadata_path)

    def abort(self) -> None:
        """Release the writer without touching custom data."""
        self._writer = None

    def hashed_files(self) -> dict[str, FileEntry]:
        """None: rosbag2's C++ storage writes its files itself, so the manifest hashes them at commit."""
        return {}
