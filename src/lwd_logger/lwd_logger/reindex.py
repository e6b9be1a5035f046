"""Rebuild a missing ``metadata.yaml`` for a finished MCAP bag, as ``ros2 bag reindex`` does.

Other tools (the ``mcap`` CLI, ``mcap_ros2.writer``, a copy that lost its
metadata) leave a folder holding only ``*.mcap``. When the MCAP file is
complete (it has a summary section), its schemas, channels and statistics
say everything metadata.yaml needs. A file without a summary is an
interrupted recording: use ``recovery`` instead. Existing metadata is never
overwritten. Custom data is left empty, so such a bag is never taken for a
complete LWD episode.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.summary import Summary

from lwd_logger.errors import BagError


def _topic_entries(summary: Summary, path: Path) -> list[dict]:
    """metadata.yaml's ``topics_with_message_count``: one entry per channel of the MCAP summary."""
    entries = []
    for channel_id, channel in sorted(summary.channels.items()):
        schema = summary.schemas.get(channel.schema_id)
        if schema is None or channel.message_encoding != "cdr":
            raise BagError(f"{path}: channel {channel.topic} is not a ROS 2 CDR channel")
        entries.append(
            {
                "topic_metadata": {
                    "name": channel.topic,
                    "type": schema.name,
                    "serialization_format": "cdr",
                    "offered_qos_profiles": [],
                    "type_description_hash": "",
                },
                "message_count": int(summary.statistics.channel_message_counts.get(channel_id, 0)),
            }
        )
    return entries


def reindex(folder: str | Path) -> Path:
    """Write ``<folder>/metadata.yaml`` from the summary of the folder's single MCAP file; returns its path."""
    folder = Path(folder)
    target = folder / "metadata.yaml"
    if target.exists():
        raise BagError(f"{target} already exists; not overwriting it")
    files = sorted(folder.glob("*.mcap"))
    if len(files) != 1:
        raise BagError(f"{folder}: reindex needs exactly one .mcap file, found {len(files)}")
    try:
        with open(files[0], "rb") as stream:
            summary = make_reader(stream).get_summary()
    except (McapError, OSError, ValueError, EOFError) as error:
        raise BagError(f"{files[0]}: unreadable MCAP ({type(error).__name__}: {error})") from error
    if summary is None or summary.statistics is None:
        raise BagError(f"{files[0]} has no summary: an interrupted recording (recover it with `lwd bag recover`)")
    statistics = summary.statistics
    topics = _topic_entries(summary, files[0])
    count = int(statistics.message_count)
    start = int(statistics.message_start_time) if count else 0
    duration = int(statistics.message_end_time) - start if count else 0
    info = {
        "version": 9,
        "storage_identifier": "mcap",
        "relative_file_paths": [files[0].name],
        "duration": {"nanoseconds": duration},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": count,
        "topics_with_message_count": topics,
        "compression_format": "",
        "compression_mode": "",
        "files": [
            {
                "path": files[0].name,
                "starting_time": {"nanoseconds_since_epoch": start},
                "duration": {"nanoseconds": duration},
                "message_count": count,
            }
        ],
        "custom_data": {},
        "ros_distro": "lwd-reindex",
    }
    temporary = target.with_suffix(".yaml.tmp")
    temporary.write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False))
    os.replace(temporary, target)
    return target
