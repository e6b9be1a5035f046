"""BagReader: read any rosbag2 folder (ours or another tool's) with decoded or raw messages and the episode facts.

Handles MCAP and sqlite3 storage, file/message/chunk zstd compression, and
types known only from the definitions stored in the bag (a typestore is built
from them and checked against the bag's type hashes; bags without definitions
fall back to the lwd typestore). Bags that store the same definitions, as a
fleet's episodes do, share one typestore, so its message parsers are built once
per process instead of once per bag. A folder without metadata.yaml, a
truncated or corrupt storage file, or unknown types raise ``BagError`` with the reason (a damaged
compressed chunk its subclass ``CorruptChunkError``, so callers never need to
know the decompressor's own exception types); such bags
are never partially read as if complete (an interrupted recording is turned
into a readable incomplete episode by ``lwd_logger.recovery`` instead).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from backports.zstd import ZstdError  # the zstd module rosbags decompresses with on Python < 3.14
from lwd_interfaces import lwd_typestore
from lwd_interfaces.episodes import COMPLETE_OUTCOMES
from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, TypesysError, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from lwd_logger.errors import BagError, CorruptChunkError


@dataclass(frozen=True)
class BagMessage:
    """One decoded message: topic, type, receive (log) time in ns, and the message object."""

    topic: str
    msgtype: str
    log_time_ns: int
    msg: Any


@dataclass(frozen=True)
class RawBagMessage:
    """One message as stored: topic, type, receive (log) time in ns, and its serialized CDR bytes."""

    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes


@dataclass(frozen=True)
class BagInfo:
    """What a bag's metadata says about it."""

    path: Path
    storage_id: str
    custom_data: dict[str, str]
    start_time_ns: int
    duration_ns: int
    message_counts: dict[str, int]
    topic_types: dict[str, str] = field(default_factory=dict)

    @property
    def message_count(self) -> int:
        """Messages in all topics."""
        return sum(self.message_counts.values())

    @property
    def complete(self) -> bool:
        """True only for an episode whose outcome is success or failure (contract: never use others as complete)."""
        return self.custom_data.get("lwd.outcome") in COMPLETE_OUTCOMES


_READ_ERRORS = (
    ReaderError,
    SerdeError,
    TypesysError,
    yaml.YAMLError,
    KeyError,
    TypeError,
    ValueError,
    OSError,
    EOFError,
    AssertionError,
)


class BagReader:
    """Opens a rosbag2 folder once for its info; ``messages()`` streams decoded messages."""

    def __init__(self, path: str | Path) -> None:
        """Validate the folder and read its metadata; raises BagError when it is not a readable bag."""
        self.path = Path(path)
        if not self.path.is_dir():
            raise BagError(f"{self.path} is not a rosbag2 folder")
        if not (self.path / "metadata.yaml").is_file():
            raise BagError(
                f"{self.path} has no metadata.yaml: not a finished rosbag2 bag "
                "(an interrupted recording is made readable with `lwd bag recover`; "
                "a finished MCAP file from another tool with `lwd bag reindex`)"
            )
        try:
            metadata = yaml.load((self.path / "metadata.yaml").read_text(), Loader=_YAML_LOADER)
            metadata = metadata["rosbag2_bagfile_information"]
            with Reader(self.path) as reader:
                bag_typestore(reader.connections)  # definitions that contradict their hashes fail here, not mid-read
                self.info = BagInfo(
                    path=self.path,
                    storage_id=str(metadata["storage_identifier"]),
                    custom_data={str(k): str(v) for k, v in (metadata.get("custom_data") or {}).items()},
                    start_time_ns=reader.start_time if reader.message_count else 0,
                    duration_ns=reader.duration if reader.message_count else 0,
                    message_counts={name: topic.msgcount for name, topic in reader.topics.items()},
                    topic_types={name: topic.msgtype or "" for name, topic in reader.topics.items()},
                )
        except BagError:
            raise
        except ZstdError as error:
            raise CorruptChunkError(f"{self.path}: a compressed storage chunk does not decompress: {error}") from error
        except _READ_ERRORS as error:
            raise BagError(f"{self.path}: cannot read bag: {type(error).__name__}: {error}") from error

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Yield decoded messages in log-time order, optionally only those of ``topics``."""
        for connection, timestamp, msg in self._read(topics, decode=True):
            yield BagMessage(connection.topic, connection.msgtype, timestamp, msg)

    def raw_messages(self, topics: Iterable[str] | None = None) -> Iterator[RawBagMessage]:
        """Yield the serialized messages in log-time order without decoding them (for republishing as recorded)."""
        for connection, timestamp, data in self._read(topics, decode=False):
            yield RawBagMessage(connection.topic, connection.msgtype, timestamp, bytes(data))

    def _read(self, topics: Iterable[str] | None, decode: bool) -> Iterator[tuple[Connection, int, Any]]:
        wanted = set(topics) if topics is not None else None
        try:
            with Reader(self.path) as reader:
                connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
                if not connections:
                    return
                typestore = bag_typestore(reader.connections) if decode else None
                for connection, timestamp, raw in reader.messages(connections=connections):
                    yield connection, timestamp, typestore.deserialize_cdr(raw, connection.msgtype) if decode else raw
        except ZstdError as error:
            raise CorruptChunkError(f"{self.path}: a compressed storage chunk does not decompress: {error}") from error
        except _READ_ERRORS as error:
            raise BagError(f"{self.path}: corrupt or truncated bag: {type(error).__name__}: {error}") from error


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: metadata.yaml is parsed for every bag read."""


def bag_typestore(connections: list[Connection]) -> Typestore:
    """The typestore for a bag's connections: built from the definitions the bag stores (shared with every bag that
    stores the same ones), else the lwd typestore."""
    definitions = {
        (c.msgtype, c.msgdef.format, c.msgdef.data, c.digest)
        for c in connections
        if c.msgdef.format != MessageDefinitionFormat.NONE
    }
    if not definitions:
        return lwd_typestore()
    return _typestore_from_definitions(tuple(sorted(definitions, key=lambda d: (d[0], d[1].value, d[2], d[3]))))


_IDL_SEPARATOR = "=" * 80 + "\n"


@functools.lru_cache(maxsize=32)
def _typestore_from_definitions(definitions: tuple[tuple[str, MessageDefinitionFormat, str, str], ...]) -> Typestore:
    """A typestore of the given (type, format, definition, hash) entries; raises TypesysError when a stored hash
    does not match its definition."""
    types: dict = {}
    for msgtype, definition_format, text, _ in definitions:
        if definition_format == MessageDefinitionFormat.MSG:
            types.update(get_types_from_msg(text, msgtype))
        elif text.startswith(f"{_IDL_SEPARATOR}IDL: "):
            for block in text.split(_IDL_SEPARATOR)[1:]:
                types.update(get_types_from_idl(block.split("\n", 1)[1]))
        else:
            types.update(get_types_from_idl(text))
    typestore = get_typestore(Stores.EMPTY)
    typestore.register(types)
    for msgtype, _, _, digest in definitions:
        if digest and typestore.hash_rihs01(msgtype) != digest:
            raise TypesysError(f"message type {msgtype!r}: the bag's hash {digest} does not match its definition")
    return typestore
