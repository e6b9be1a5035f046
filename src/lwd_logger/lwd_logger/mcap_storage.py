"""A zero-copy MCAP storage for the rosbags writer: the same file layout, without copying message bytes.

rosbags' ``McapWriter`` builds every record in a ``BytesIO`` and copies each
message four times before it reaches the file, which caps recording at about
a third of the disk's sequential write speed for camera-sized messages. This
subclass keeps a chunk as a list of record pieces (small headers plus the
caller's immutable ``bytes``) and writes them with one ``writelines`` call;
only zstd-compressed chunks are joined (the compressor needs one buffer).
Chunk, message-index and chunk-index records are the ones rosbags writes
(uncompressed CRC 0 means "not computed", as the MCAP spec allows), so
every MCAP reader reads the result. It relies on rosbags 0.11's
``McapWriter`` internals (pinned in requirements.txt).

The storage file is written through a ``HashingFile``, so its sha256 is known the moment it is closed:
the episode's manifest takes it from there instead of reading the whole bag again at commit.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from io import BytesIO
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, ClassVar

from lwd_interfaces.manifest import FileEntry
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.rosbag2.storage_mcap import McapWriter, PendingChunk

CHUNK_BYTES = 1 << 20
_MESSAGE_HEADER = struct.Struct("<BQHIQQ")
_OP_MESSAGE, _OP_CHUNK, _OP_MESSAGE_INDEX = 0x05, 0x06, 0x07
_MESSAGE_FIELDS_SIZE = 2 + 4 + 8 + 8


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<I", len(data)) + data


class HashingFile:
    """A binary file being written front to back that hashes (sha256) every byte as it is written.

    Wraps a file already opened for writing; what it already holds is read back once (the few header bytes
    written before the wrap). Only sequential writes are supported, which is how MCAP storage is written.
    """

    def __init__(self, raw: BinaryIO, path: Path) -> None:
        """Take over ``raw`` (open on ``path``), hashing what it holds so far."""
        raw.flush()
        self._raw = raw
        self._digest = hashlib.sha256()
        with open(path, "rb") as existing:
            head = existing.read(raw.tell())
        self._digest.update(head)
        self.size = len(head)

    def write(self, data: bytes | memoryview) -> int:
        """Write and hash ``data``."""
        written = self._raw.write(data)
        self._digest.update(data)
        self.size += len(data)
        return written

    def writelines(self, pieces: Iterable[bytes]) -> None:
        """Write and hash every piece, in order."""
        for piece in pieces:
            self.write(piece)

    def tell(self) -> int:
        """Current position (the bytes written so far)."""
        return self._raw.tell()

    def flush(self) -> None:
        """Flush the underlying file."""
        self._raw.flush()

    def fileno(self) -> int:
        """File descriptor of the underlying file (for fsync)."""
        return self._raw.fileno()

    def close(self) -> None:
        """Close the underlying file."""
        self._raw.close()

    @property
    def sha256(self) -> str:
        """sha256 hex digest of every byte written so far."""
        return self._digest.hexdigest()


class DirectMcapWriter(McapWriter):
    """``McapWriter`` whose chunks are lists of pieces written straight to the file, hashed as they are written."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Open the file as rosbags does; start an empty piece list."""
        super().__init__(*args, **kwargs)
        self.bio = HashingFile(self.bio, self.path)
        self.pieces: list[bytes] = []
        self.pieces_size = 0

    def file_entry(self) -> FileEntry:
        """Manifest entry (path relative to the bag folder, size, sha256) of the storage file as written so far."""
        return FileEntry(path=self.path.name, size=self.bio.size, sha256=self.bio.sha256)

    def _take_pending_records(self) -> None:
        """Move schema/channel records rosbags wrote into ``chunk.bio`` onto the piece list, in order."""
        if self.chunk.bio.tell():
            data = self.chunk.bio.getvalue()
            self.pieces.append(data)
            self.pieces_size += len(data)
            self.chunk.bio = BytesIO()

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        """Append one message record (header + the caller's bytes, not copied when they are ``bytes``)."""
        self._take_pending_records()
        payload = data if isinstance(data, bytes) else bytes(data)
        self.message_start_time = min(timestamp, self.message_start_time)
        self.message_end_time = max(timestamp, self.message_end_time)
        self.channel_stats[connection.id] += 1
        chunk = self.chunk
        chunk.message_start_time = min(timestamp, chunk.message_start_time)
        chunk.message_end_time = max(timestamp, chunk.message_end_time)
        chunk.msgs[connection.id].append((timestamp, self.pieces_size))
        header = _MESSAGE_HEADER.pack(
            _OP_MESSAGE, _MESSAGE_FIELDS_SIZE + len(payload), connection.id, 0, timestamp, timestamp
        )
        self.pieces += (header, payload)
        self.pieces_size += len(header) + len(payload)
        if self.pieces_size > CHUNK_BYTES:
            self.close_chunk()

    def close_chunk(self) -> None:
        """Write the pending chunk, its message indexes, and remember its chunk index record."""
        self._take_pending_records()
        chunk = self.chunk
        uncompressed_size = self.pieces_size
        if self.compression:
            body = [self.compressor(b"".join(self.pieces))]
            body_size = len(body[0])
        else:
            body, body_size = self.pieces, uncompressed_size
        fields = (
            struct.pack("<QQQI", chunk.message_start_time, chunk.message_end_time, uncompressed_size, 0)
            + _string(self.compression)
            + struct.pack("<Q", body_size)
        )
        chunk_start = self.bio.tell()
        self.bio.write(struct.pack("<BQ", _OP_CHUNK, len(fields) + body_size) + fields)
        self.bio.writelines(body)
        chunk_end = self.bio.tell()
        offsets = []
        for channel_id, messages in chunk.msgs.items():
            offsets.append((channel_id, self.bio.tell()))
            entries = b"".join(struct.pack("<QQ", stamp, offset) for stamp, offset in messages)
            record = struct.pack("<HI", channel_id, len(entries)) + entries
            self.bio.write(struct.pack("<BQ", _OP_MESSAGE_INDEX, len(record)) + record)
        index = BytesIO()
        index.write(
            struct.pack("<QQQQ", chunk.message_start_time, chunk.message_end_time, chunk_start, chunk_end - chunk_start)
        )
        index.write(struct.pack("<I", len(offsets) * 10))
        for channel_id, offset in offsets:
            index.write(struct.pack("<HQ", channel_id, offset))
        index.write(struct.pack("<Q", self.bio.tell() - chunk_end))
        index.write(_string(self.compression))
        index.write(struct.pack("<QQ", body_size, uncompressed_size))
        self.chunks.append(index)
        self.pieces = []
        self.pieces_size = 0
        self.chunk = PendingChunk(2**63 - 1, 0, BytesIO(), chunk.msgs.__class__(list))

    def close(self, version: int, metadata: str) -> None:
        """Write the last chunk, then the summary and footer as rosbags does."""
        if self.pieces or self.chunk.bio.tell():
            self.close_chunk()
        super().close(version, metadata)


class DirectWriter(Writer):
    """The rosbags rosbag2 ``Writer`` with ``DirectMcapWriter`` as its MCAP storage."""

    STORAGE_PLUGINS: ClassVar[Mapping[StoragePlugin, type]] = MappingProxyType(
        {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: DirectMcapWriter}
    )
