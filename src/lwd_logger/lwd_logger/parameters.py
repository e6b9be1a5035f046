"""The parameters of ``recorder_node`` and ``bridge_node``, declared once (see :mod:`lwd_interfaces.parameters`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lwd_fleet.canary import CANARY_CHANNEL
from lwd_fleet.layout import channel_file
from lwd_interfaces import topics
from lwd_interfaces.episodes import EPISODE_KINDS
from lwd_interfaces.parameters import Parameter, ParameterTable

from lwd_logger.writer import BACKENDS, COMPRESSIONS, STORAGES

RECORDER_NODE = ParameterTable(
    "recorder_node",
    [
        Parameter("spool_dir", "spool", "local spool: .recording/<id>/ while recording, <id>/ once committed"),
        Parameter("robot_id", "robot-0", "robot id when an /episode/event carries none"),
        Parameter("cameras", ["top"], "cameras recorded as /camera/<name>/image_raw (sensor_msgs/Image rgb8)"),
        Parameter("extra_topics", [""], "more topics to record ('' = none) ..."),
        Parameter("extra_topic_types", [""], "... and their types, e.g. sensor_msgs/msg/Imu"),
        Parameter("writer_backend", "auto", "bag writer (auto: rosbag2_py where importable)", choices=BACKENDS),
        Parameter("storage", "mcap", "rosbag2 storage plugin", choices=STORAGES),
        Parameter("compression", "none", "MCAP chunk compression", choices=COMPRESSIONS),
        Parameter("flush_period_s", 1.0, "a crash loses at most this much [s]", 0.05, 60.0),
        Parameter(
            "label_timeout_s", 5.0, "wait this long after END for a label, then commit incomplete [s]", 0.0, 600.0
        ),
        Parameter("max_spool_bytes", 0, "refuse new episodes above this spool size; 0 = no limit [B]", 0, 2**62),
        Parameter("min_free_bytes", 2_000_000_000, "refuse new episodes below this free disk space [B]", 0, 2**62),
        Parameter("episode_kind", "deployment", "kind recorded with each episode", choices=EPISODE_KINDS),
    ],
)

BRIDGE_NODE = ParameterTable(
    "bridge_node",
    [
        Parameter("spool_dir", "spool", "the recorder's spool"),
        Parameter(
            "store_url", "file://./fleet", "fsspec URL of the fleet store: file://, sftp://user@host:port/path, s3://"
        ),
        Parameter("robot_id", "robot-0", "this robot's fleet id"),
        Parameter("channel", "stable", f"policy channel to follow ({channel_file('<name>')})"),
        Parameter("canary_channel", CANARY_CHANNEL, "channel followed instead when this robot is a canary"),
        Parameter("canary_share", 0.0, "fleet share on the canary channel, by a hash of robot_id (0 = none)", 0.0, 1.0),
        Parameter("cache_dir", "policy_cache", "verified policy versions land in <cache_dir>/<version>/"),
        Parameter("key_filename", "", "SSH private key for sftp:// stores (never logged)"),
        Parameter("trusted_keys", [""], "release public keys whose signed policies this robot accepts ('' = none)"),
        Parameter("revoked_keys", "", "revocation list: key ids refused even if trusted, one a line ('' = none)"),
        Parameter("allow_unsigned", False, "DEVELOPMENT ONLY: also accept policies no trusted key signed (warns)"),
        Parameter("upload_period_s", 5.0, "spool scan period [s]", 0.1, 3600.0),
        Parameter("channel_period_s", 10.0, "channel poll period [s]", 0.1, 3600.0),
        Parameter("max_attempts", 6, "store retries per episode before giving up until the next scan", 1, 100),
        Parameter("base_delay_s", 0.5, "first retry delay, doubled each retry [s]", 0.0, 60.0),
        Parameter("max_delay_s", 30.0, "retry delay cap [s]", 0.0, 3600.0),
    ],
)

RECORDED_TOPICS = (
    topics.JOINT_STATES,
    topics.OBJECT_POSES,
    topics.EXECUTED_COMMAND,
    topics.POLICY_COMMAND,
    topics.ACTION_CHUNK,
    topics.INTERVENTION_STATE,
    topics.POLICY_VERSION,
    topics.TELEOP_JOY,
    topics.TELEOP_COMMAND,
)
"""The contract topics every episode records, besides the configured cameras."""


def recorded_topics(values: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(contract topics, extra topics) the recorder subscribes to, each absolute name -> type.

    Raises ValueError for an invalid camera name or extra topics without one type each.
    """
    extra_topics, extra_types = values["extra_topics"], values["extra_topic_types"]
    if len(extra_topics) != len(extra_types):
        raise ValueError("extra_topics and extra_topic_types must list the same number of entries")
    recorded = {topic: topics.TOPIC_TYPES[topic] for topic in RECORDED_TOPICS}
    recorded.update({topics.camera_topic(camera): topics.IMAGE_TYPE for camera in values["cameras"]})
    pairs = zip(extra_topics, extra_types, strict=True)
    return recorded, {"/" + topic.lstrip("/"): msgtype for topic, msgtype in pairs if topic}
