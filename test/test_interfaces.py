"""lwd_msgs loads off ROS, every type round-trips through CDR, and an independent decoder agrees."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from lwd_interfaces import interface_definitions, lwd_type_names, lwd_typestore
from lwd_interfaces.messages import pose_array, pose_array_poses, stamp_ns
from lwd_interfaces.topics import OBJECT_POSES, TOPIC_TYPES, camera_topic, relative
from mcap_ros2._dynamic import generate_dynamic

EXPECTED_TYPES = {
    "lwd_msgs/msg/ActionChunk",
    "lwd_msgs/msg/InterventionState",
    "lwd_msgs/msg/RewardLabel",
    "lwd_msgs/msg/EpisodeEvent",
    "lwd_msgs/msg/PolicyVersion",
    "lwd_msgs/srv/LabelEpisode_Request",
    "lwd_msgs/srv/LabelEpisode_Response",
    "lwd_msgs/srv/SetMode_Request",
    "lwd_msgs/srv/SetMode_Response",
}


def sample_value(typestore, typename: str, depth: int = 0):
    """Build a message of ``typename`` whose every field holds a distinctive non-default value."""
    cls = typestore.types[typename]
    fields = typestore.fielddefs[typename][1]
    values = {}
    for index, (name, (kind, spec)) in enumerate(fields):
        values[name] = sample_field(typestore, kind, spec, index + depth)
    return cls(**values)


def sample_field(typestore, kind, spec, seed: int):
    from rosbags.typesys.store import Nodetype

    if kind == Nodetype.BASE:
        base = spec[0]
        if base == "string":
            return f"value-{seed}"
        if base == "bool":
            return seed % 2 == 0
        if base.startswith("float"):
            return float(seed) + 0.5
        return seed + 1
    if kind == Nodetype.NAME:
        if spec == "builtin_interfaces/msg/Time":
            return typestore.types[spec](sec=seed + 100, nanosec=seed + 7)
        return sample_value(typestore, spec, seed)
    if kind == Nodetype.SEQUENCE:
        inner_kind, inner_spec = spec[0]
        if inner_kind == Nodetype.BASE and inner_spec[0].startswith("float"):
            return np.arange(seed, seed + 6, dtype=np.float32 if inner_spec[0] == "float32" else np.float64)
        return [sample_field(typestore, inner_kind, inner_spec, seed + i) for i in range(2)]
    raise AssertionError(f"unhandled field kind {kind}")


def test_every_expected_type_is_registered():
    assert set(lwd_type_names()) == EXPECTED_TYPES
    typestore = lwd_typestore()
    for name in EXPECTED_TYPES:
        assert name in typestore.types


def test_every_field_is_documented_with_a_comment():
    for name, text in interface_definitions().items():
        for line in text.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                assert "#" in stripped, f"{name}: field without documentation: {stripped!r}"


@pytest.mark.parametrize("typename", sorted(EXPECTED_TYPES))
def test_cdr_round_trip_and_independent_decoder(typename):
    typestore = lwd_typestore()
    message = sample_value(typestore, typename)
    data = typestore.serialize_cdr(message, typename)
    back = typestore.deserialize_cdr(data, typename)
    assert typestore.serialize_cdr(back, typename) == data

    # mcap_ros2 parses the same .msg text with its own CDR implementation.
    definition = interface_definitions()[typename]
    schema_name = typename
    decoders = generate_dynamic(schema_name, msg_definition_with_dependencies(definition))
    decoded = decoders[schema_name](bytes(data))
    for field, _ in typestore.fielddefs[typename][1]:
        ours = getattr(message, field)
        theirs = getattr(decoded, field)
        if field == "header":
            assert theirs.frame_id == ours.frame_id
            assert theirs.stamp.sec == ours.stamp.sec
        elif isinstance(ours, np.ndarray):
            np.testing.assert_allclose(np.asarray(theirs), ours)
        else:
            assert theirs == pytest.approx(ours) if isinstance(ours, float) else theirs == ours


def msg_definition_with_dependencies(definition: str) -> str:
    """The concatenated definition format rosbag2 stores, with std_msgs/Header appended."""
    header = "builtin_interfaces/Time stamp\nstring frame_id\n"
    time = "int32 sec\nuint32 nanosec\n"
    separator = "=" * 80
    return f"{definition}\n{separator}\nMSG: std_msgs/Header\n{header}{separator}\nMSG: builtin_interfaces/Time\n{time}"


def test_cdr_bytes_match_hand_computed_layout():
    """RewardLabel laid out by hand per the CDR rules rclpy follows (little-endian, 4-byte aligned)."""
    typestore = lwd_typestore()
    types = typestore.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=3, nanosec=4), frame_id="")
    label = types["lwd_msgs/msg/RewardLabel"](
        header=header, episode_id="e1", reward=1.0, terminal=True, success=True, source="sim"
    )
    data = typestore.serialize_cdr(label, "lwd_msgs/msg/RewardLabel")
    expected = b"\x00\x01\x00\x00"  # encapsulation: CDR little-endian
    expected += struct.pack("<iI", 3, 4)  # stamp
    expected += struct.pack("<I", 1) + b"\x00" + b"\x00" * 3  # frame_id "" + pad
    expected += struct.pack("<I", 3) + b"e1\x00" + b"\x00"  # episode_id + pad to 4
    expected += struct.pack("<f", 1.0) + b"\x01\x01" + b"\x00\x00"  # reward, terminal, success, pad
    expected += struct.pack("<I", 4) + b"sim\x00"
    assert bytes(data) == expected


def test_topic_contract_types_are_known():
    typestore = lwd_typestore()
    for topic, typename in TOPIC_TYPES.items():
        assert topic.startswith("/")
        assert typename in typestore.types, typename
    assert camera_topic("top") == "/camera/top/image_raw"
    with pytest.raises(ValueError):
        camera_topic("a/b")


def test_relative_names_resolve_in_a_namespace():
    assert relative("/joint_states") == "joint_states"
    assert relative(camera_topic("top")) == "camera/top/image_raw"
    assert relative("joint_states") == "joint_states"
    for topic in TOPIC_TYPES:
        # A relative name resolves to /<namespace><contract name>, and to the contract name without one.
        assert "/" + relative(topic) == topic


def test_pose_array_round_trips_through_cdr():
    typestore = lwd_typestore()
    msgtype = TOPIC_TYPES[OBJECT_POSES]
    rows = np.array([[0.1, -0.2, 0.3, 0.9, 0.1, -0.3, 0.2], [1.5, 2.5, 3.5, 1.0, 0.0, 0.0, 0.0]])
    message = pose_array(1_700_000_000_123_456_789, rows)
    back = typestore.deserialize_cdr(typestore.serialize_cdr(message, msgtype), msgtype)
    assert stamp_ns(back.header.stamp) == 1_700_000_000_123_456_789 and back.header.frame_id == "world"
    orientation = back.poses[0].orientation  # rows are (x, y, z, qw, qx, qy, qz); the message is (x, y, z, w)
    assert (orientation.w, orientation.x, orientation.y, orientation.z) == (0.9, 0.1, -0.3, 0.2)
    decoded = pose_array_poses(back)
    assert decoded.dtype == np.float64
    np.testing.assert_array_equal(decoded, rows)
    empty = typestore.deserialize_cdr(typestore.serialize_cdr(pose_array(0, np.zeros((0, 7)), "map"), msgtype), msgtype)
    assert empty.header.frame_id == "map" and pose_array_poses(empty).shape == (0, 7)
    with pytest.raises(ValueError, match=r"poses must be \[N, 7\]"):
        pose_array(0, np.zeros((2, 3)))


@pytest.mark.parametrize(
    "paths",
    [[""], ["."], ["/etc/passwd"], ["../x"], ["a/../../x"], ["a//b"], ["./a"], ["a/"], ["manifest.json"],
     ["a", "a"], ["a", "a/b"]],
)  # fmt: skip
def test_manifest_refuses_entries_that_are_not_one_file_inside_the_folder(paths):
    import json

    from lwd_interfaces.manifest import Manifest, ManifestError

    files = [{"path": path, "size": 1, "sha256": "0" * 64} for path in paths]
    body = {"format_version": 1, "kind": "policy", "files": files, "facts": {}}
    with pytest.raises(ManifestError, match="manifest lists"):
        Manifest.from_json(json.dumps(body))
    files = [{"path": path, "size": 1, "sha256": "0" * 64} for path in ("a/b", "a/c", "weights.safetensors")]
    assert len(Manifest.from_json(json.dumps({**body, "files": files})).files) == 3
