"""Interoperability: our bags read by rosbags AnyReader and by the independent mcap-ros2 decoder; our reader
ingests bags written by other tools (sqlite3, compressed MCAP, types only defined in the bag); bad bags fail clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from lwd_interfaces import lwd_type_names, lwd_typestore, topics
from lwd_logger.bag_reader import BagReader, bag_typestore
from lwd_logger.errors import BagError
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.typesys import Stores, get_types_from_msg, get_typestore


def decode_independently(mcap_file):
    """(topic, message) pairs decoded by the mcap + mcap-ros2-support libraries alone."""
    with open(mcap_file, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        return [(channel.topic, msg) for _, channel, _, msg in reader.iter_decoded_messages()]


def all_types_episode(make_recorder, steps, episode_info):
    """Record one message of every lwd_msgs message type plus the standard per-step topics."""
    recorder = make_recorder()
    recorder.start_episode(episode_info)
    for topic, msgtype, msg in steps.step(0, active=True):
        recorder.record(topic, msgtype, msg, 10)
    t = steps.typestore.types
    version = t["lwd_msgs/msg/PolicyVersion"](
        header=steps.header(3),
        version="v000003",
        uri="file://fleet/policies/v000003",
        sha256="0" * 64,
        channel="stable",
    )
    extra = [
        (topics.ACTION_CHUNK, "lwd_msgs/msg/ActionChunk", steps.chunk(1, "v000002", 7)),
        (topics.EPISODE_EVENT, "lwd_msgs/msg/EpisodeEvent", steps.event(2, 0)),
        (topics.POLICY_VERSION, "lwd_msgs/msg/PolicyVersion", version),
        (topics.REWARD_LABEL, "lwd_msgs/msg/RewardLabel", steps.reward(4, "ep1", True)),
    ]
    for i, (topic, msgtype, msg) in enumerate(extra):
        recorder.record(topic, msgtype, msg, 20 + i)
    return recorder.end_episode()


def test_every_lwd_msg_type_reads_back_with_anyreader_and_mcap_ros2(make_recorder, steps, episode_info):
    folder = all_types_episode(make_recorder, steps, episode_info)
    message_types = {name for name in lwd_type_names() if "/msg/" in name}
    with AnyReader([folder], default_typestore=lwd_typestore()) as reader:
        decoded = {c.msgtype: reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()}
    assert message_types <= set(decoded)
    assert decoded["lwd_msgs/msg/ActionChunk"].chunk_id == 7
    assert decoded["lwd_msgs/msg/PolicyVersion"].channel == "stable"

    (mcap_file,) = folder.glob("*.mcap")
    independent = dict(decode_independently(mcap_file))
    assert independent[topics.ACTION_CHUNK].policy_version == "v000002"
    assert list(independent[topics.ACTION_CHUNK].actions)[:3] == [0.0, 1.0, 2.0]
    assert independent[topics.EPISODE_EVENT].instruction == "pick up the cube"
    assert independent[topics.INTERVENTION_STATE].active is True
    assert independent[topics.POLICY_VERSION].version == "v000003"
    assert independent[topics.REWARD_LABEL].success is True
    assert len(independent[topics.JOINT_STATES].position) == 14
    assert independent[topics.camera_topic("top")].encoding == "rgb8"


def test_independent_decoder_reads_zstd_chunks(record_episode):
    folder = record_episode(n=4, compression="zstd")
    (mcap_file,) = folder.glob("*.mcap")
    counts: dict[str, int] = {}
    for topic, _ in decode_independently(mcap_file):
        counts[topic] = counts.get(topic, 0) + 1
    assert counts[topics.EXECUTED_COMMAND] == 4


CUSTOM_DEF = "float64 temperature\nstring[] notes\n"


def foreign_bag(path, storage, mode=None):
    """A bag as another tool would write it: a custom type unknown to lwd, and a standard type."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg(CUSTOM_DEF, "acme_msgs/msg/Probe"))
    writer = Writer(path, version=8, storage_plugin=storage)
    if mode is not None:
        writer.set_compression(mode, CompressionFormat.ZSTD)
    with writer:
        probe = writer.add_connection("/probe", "acme_msgs/msg/Probe", typestore=store)
        joy = writer.add_connection("/teleop/joy", "sensor_msgs/msg/Joy", typestore=store)
        for i in range(3):
            msg = store.types["acme_msgs/msg/Probe"](temperature=20.0 + i, notes=["a", "b"])
            writer.write(probe, 100 + i, store.serialize_cdr(msg, "acme_msgs/msg/Probe"))
        header = store.types["std_msgs/msg/Header"](
            stamp=store.types["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="x"
        )
        joy_msg = store.types["sensor_msgs/msg/Joy"](
            header=header, axes=np.array([0.5], dtype=np.float32), buttons=np.array([1], dtype=np.int32)
        )
        writer.write(joy, 200, store.serialize_cdr(joy_msg, "sensor_msgs/msg/Joy"))


@pytest.mark.parametrize(
    ("storage", "mode", "storage_id"),
    [
        (StoragePlugin.SQLITE3, None, "sqlite3"),
        (StoragePlugin.SQLITE3, CompressionMode.MESSAGE, "sqlite3"),
        (StoragePlugin.MCAP, CompressionMode.STORAGE, "mcap"),
        (StoragePlugin.MCAP, CompressionMode.FILE, "mcap"),
    ],
    ids=["sqlite3", "sqlite3-message-zstd", "mcap-chunk-zstd", "mcap-file-zstd"],
)
def test_reader_ingests_foreign_bags_with_in_bag_type_definitions(tmp_path, storage, mode, storage_id):
    folder = tmp_path / "foreign"
    foreign_bag(folder, storage, mode)
    reader = BagReader(folder)
    assert reader.info.storage_id == storage_id
    assert reader.info.message_counts == {"/probe": 3, "/teleop/joy": 1}
    assert not reader.info.complete
    messages = list(reader.messages())
    probes = [m.msg.temperature for m in messages if m.topic == "/probe"]
    assert probes == [20.0, 21.0, 22.0]
    (joy,) = [m.msg for m in messages if m.topic == "/teleop/joy"]
    assert list(joy.buttons) == [1]


def test_a_type_definition_that_contradicts_its_stored_hash_is_refused(tmp_path):
    folder = tmp_path / "foreign"
    foreign_bag(folder, StoragePlugin.SQLITE3)
    metadata = folder / "metadata.yaml"
    metadata.write_text(metadata.read_text().replace("RIHS01_4237", "RIHS01_0000"))
    with pytest.raises(BagError, match=r"acme_msgs/msg/Probe.*does not match its definition"):
        BagReader(folder)


def test_bags_that_store_the_same_definitions_share_one_typestore(tmp_path):
    """A fleet's episodes all store the same definitions: their message parsers are built once, not per bag."""
    for name in ("first", "second"):
        foreign_bag(tmp_path / name, StoragePlugin.MCAP)
    with Reader(tmp_path / "first") as first, Reader(tmp_path / "second") as second:
        shared = bag_typestore(first.connections)
        assert bag_typestore(second.connections) is shared
        assert "acme_msgs/msg/Probe" in shared.fielddefs
        assert bag_typestore(first.connections[1:]) is not shared


def test_missing_metadata_raises_bag_error(record_episode):
    folder = record_episode(n=2)
    (folder / "metadata.yaml").unlink()
    with pytest.raises(BagError, match=r"no metadata\.yaml"):
        BagReader(folder)
    assert (folder / "ep1.mcap").is_file()


def test_truncated_storage_raises_bag_error(record_episode, tmp_path):
    folder = record_episode(n=4)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    mcap_file = copy / "ep1.mcap"
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match=r"cannot read bag|corrupt or truncated"):
        reader = BagReader(copy)
        list(reader.messages())
    assert (folder / "ep1.mcap").stat().st_size == len(data)


def test_corrupt_metadata_and_non_bag_raise_bag_error(record_episode, tmp_path):
    folder = record_episode(n=2)
    (folder / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed\n")
    with pytest.raises(BagError, match="cannot read bag"):
        BagReader(folder)
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        BagReader(tmp_path / "nothing")


def test_bag_from_independent_mcap_writer_is_reindexed_and_read(tmp_path):
    from lwd_logger.reindex import reindex
    from mcap.writer import CompressionType
    from mcap_ros2.writer import Writer as McapRos2Writer

    folder = tmp_path / "tool_bag"
    folder.mkdir()
    with open(folder / "tool_bag.mcap", "wb") as stream:
        writer = McapRos2Writer(stream, compression=CompressionType.LZ4)
        schema = writer.register_msgdef("acme_msgs/msg/Probe", CUSTOM_DEF)
        for i in range(4):
            writer.write_message("/probe", schema, {"temperature": 30.0 + i, "notes": ["x"]}, log_time=1000 + i)
        writer.finish()
    with pytest.raises(BagError, match=r"no metadata\.yaml"):
        BagReader(folder)
    reindex(folder)
    reader = BagReader(folder)
    assert reader.info.message_counts == {"/probe": 4}
    assert reader.info.duration_ns >= 3
    assert [m.msg.temperature for m in reader.messages()] == [30.0, 31.0, 32.0, 33.0]
    assert [m.log_time_ns for m in reader.messages()] == [1000, 1001, 1002, 1003]
    with pytest.raises(BagError, match="already exists"):
        reindex(folder)


def test_reindex_refuses_truncated_mcap(record_episode, tmp_path):
    from lwd_logger.reindex import reindex

    folder = record_episode(n=4)
    copy = tmp_path / "truncated"
    copy.mkdir()
    data = (folder / "ep1.mcap").read_bytes()
    (copy / "ep1.mcap").write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match=r"interrupted recording|unreadable MCAP"):
        reindex(copy)
    assert not (copy / "metadata.yaml").exists()


def test_a_corrupt_zstd_chunk_raises_corrupt_chunk_error_not_the_decompressors_own(record_episode, tmp_path):
    from lwd_logger.errors import CorruptChunkError

    copy = Path(shutil.copytree(record_episode(n=4, compression="zstd"), tmp_path / "copy"))
    storage = copy / "ep1.mcap"
    data = bytearray(storage.read_bytes())
    start = data.index(b"\x28\xb5\x2f\xfd") + 20  # inside the first zstd frame, size unchanged
    data[start : start + 16] = b"\xff" * 16
    storage.write_bytes(bytes(data))
    with pytest.raises(CorruptChunkError, match=r"copy: a compressed storage chunk does not decompress"):
        list(BagReader(copy).messages())
