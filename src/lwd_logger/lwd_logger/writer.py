"""The bag writer interface the recorder uses, and its rosbags implementation (MCAP or sqlite3 storage).

The recorder only needs: open a new bag folder, declare topics, write
serialized messages, flush what is written to disk, close with custom data, and
the sha256 of the files the writer hashed as it wrote them (the manifest does not read those again).
``RosbagsWriter`` is pure Python and works everywhere; ``Rosbag2PyWriter``
(in ``rosbag2py_writer``) uses ROS 2's own library where it is installed; ``writer_backend``
chooses between them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lwd_interfaces.manifest import FileEntry
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.typesys.store import Typestore

from lwd_logger.mcap_storage import DirectMcapWriter, DirectWriter

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
COMPRESSIONS = ("none", "zstd")
BACKENDS = ("auto", "rosbag2_py", "rosbags")
"""Writer backends: ``auto`` takes ``rosbag2_py`` where it is importable, else ``rosbags``."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic as declared in a bag: name, type, and the definition and hash that make it self-describing."""

    topic: str
    msgtype: str
    msgdef: str
    rihs01: str


class BagWriter(Protocol):
    """What the recorder needs from a rosbag2 writer backend."""

    def open(self, path: Path) -> None:
        """Create the bag folder ``path`` (which must not exist) and its storage file."""

    def add_topic(self, topic: str, msgtype: str, msgdef: str | None = None, rihs01: str | None = None) -> TopicSpec:
        """Declare a topic; the definition comes from the typestore unless given."""

    def write(self, topic: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Append one serialized (CDR) message received at ``log_time_ns``."""

    def flush(self) -> None:
        """Make everything written so far durable and readable after a crash."""

    def close(self, custom_data: dict[str, str]) -> None:
        """Finish the storage file and write metadata.yaml with ``custom_data``."""

    def abort(self) -> None:
        """Stop writing without finishing the bag (its folder is left for the caller)."""

    def hashed_files(self) -> dict[str, FileEntry]:
        """After ``close``: manifest entries, by path relative to the bag folder, of the files hashed as written.

        Files not listed (all of them for a writer that cannot hash as it writes) are hashed at commit.
        """


class RosbagsWriter:
    """A ``BagWriter`` over the pure-Python ``rosbags`` library.

    MCAP storage is chunked (``mcap_storage.DirectMcapWriter``, which writes
    message bytes without copying them); ``flush`` closes the current chunk and fsyncs the
    file, so a crash loses at most what came after the last flush. With
    ``compression="zstd"`` each MCAP chunk is zstd-compressed (rosbag2's
    storage-level compression, readable by every MCAP reader); for sqlite3 it
    compresses each message, the way ``ros2 bag record --compression-mode message`` does.
    """

    def __init__(self, typestore: Typestore, storage: str = "mcap", compression: str = "none") -> None:
        """Choose the storage plugin (``mcap`` | ``sqlite3``) and compression (``none`` | ``zstd``)."""
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        self.typestore = typestore
        self.storage = storage
        self.compression = compression
        self._writer: DirectWriter | None = None
        self._connections: dict[str, object] = {}
        self._hashed: dict[str, FileEntry] = {}

    def open(self, path: Path) -> None:
        """Create the bag folder (rosbag2 version 9)."""
        writer = DirectWriter(path, version=9, storage_plugin=STORAGES[self.storage])
        if self.compression == "zstd":
            mode = CompressionMode.STORAGE if self.storage == "mcap" else CompressionMode.MESSAGE
            writer.set_compression(mode, CompressionFormat.ZSTD)
        writer.open()
        self._writer = writer
        self._connections = {}
        self._hashed = {}

    def _require_open(self) -> DirectWriter:
        if self._writer is None:
            raise RuntimeError("RosbagsWriter is not open")
        return self._writer

    def add_topic(self, topic: str, msgtype: str, msgdef: str | None = None, rihs01: str | None = None) -> TopicSpec:
        """Declare a topic once; its message definition is stored in the bag."""
        writer = self._require_open()
        if topic in self._connections:
            raise ValueError(f"topic {topic} is already declared")
        if msgdef is None or rihs01 is None:
            spec = topic_spec(self.typestore, topic, msgtype)
            msgdef, rihs01 = spec.msgdef, spec.rihs01
        self._connections[topic] = writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=rihs01)
        return TopicSpec(topic=topic, msgtype=msgtype, msgdef=msgdef, rihs01=rihs01)

    def write(self, topic: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Append one serialized message to a declared topic."""
        self._require_open().write(self._connections[topic], log_time_ns, data)

    def flush(self) -> None:
        """Close the pending MCAP chunk (or commit sqlite3) and fsync the storage file."""
        writer = self._require_open()
        storage = writer.storage
        if self.storage == "mcap":
            if storage.chunk.msgs or storage.pieces:
                storage.close_chunk()
            storage.bio.flush()
            os.fsync(storage.bio.fileno())
        else:
            storage.conn.commit()

    def close(self, custom_data: dict[str, str]) -> None:
        """Write the MCAP summary/footer and metadata.yaml (with custom_data); the MCAP file's sha256 is then known."""
        writer = self._require_open()
        for key, value in custom_data.items():
            writer.set_custom_data(key, value)
        storage = writer.storage
        writer.close()
        self._writer = None
        if isinstance(storage, DirectMcapWriter):
            entry = storage.file_entry()
            self._hashed = {entry.path: entry}

    def hashed_files(self) -> dict[str, FileEntry]:
        """The MCAP storage file's manifest entry after ``close`` (sqlite3 storage is hashed at commit)."""
        return dict(self._hashed)

    def abort(self) -> None:
        """Close the storage file without a summary; the folder stays as it is."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


def topic_spec(typestore: Typestore, topic: str, msgtype: str) -> TopicSpec:
    """A topic with the message definition and RIHS01 hash the typestore knows for ``msgtype``."""
    if msgtype not in typestore.fielddefs:
        raise KeyError(f"message type {msgtype} of {topic} is unknown to the typestore; pass msgdef and rihs01")
    msgdef, _ = typestore.generate_msgdef(msgtype, ros_version=2)
    return TopicSpec(topic=topic, msgtype=msgtype, msgdef=msgdef, rihs01=typestore.hash_rihs01(msgtype))
