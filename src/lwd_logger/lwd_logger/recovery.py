"""Crash recovery of the spool: turn leftover ``.recording/<id>`` folders into readable, *incomplete* episodes.

After a crash (``kill -9``, power loss) a partial folder holds an MCAP file
without its summary and footer, and no metadata.yaml. Recovery streams that
file up to the last complete record (everything before the last flush),
rewrites those messages into a fresh bag with the journal's topic
definitions, marks it ``lwd.outcome: incomplete`` (and ``lwd.recovered:
true``), writes the manifest and commits it. A partial folder whose bag was
already closed cleanly (crash between close and commit) is committed as it
is. Nothing is deleted until its replacement is committed.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

from mcap.exceptions import McapError
from mcap.records import Channel, Message
from mcap.stream_reader import StreamReader
from rosbags.typesys.store import Typestore

from lwd_logger.bag_reader import BagReader
from lwd_logger.episode_facts import TOPICS_TO_DECODE, EpisodeInfo, EpisodeStats, custom_data
from lwd_logger.errors import BagError
from lwd_logger.spool import JOURNAL_NAME, Spool, commit_folder
from lwd_logger.writer import RosbagsWriter

RECOVERING_DIR = ".recovering"
log = logging.getLogger(__name__)


def valid_prefix_messages(mcap_path: Path) -> Iterator[tuple[str, int, bytes]]:
    """(topic, log_time_ns, data) of every message in an MCAP file up to its first truncated or corrupt record."""
    channels: dict[int, str] = {}
    with open(mcap_path, "rb") as stream:
        reader = StreamReader(stream, validate_crcs=True)
        try:
            for record in reader.records:
                if isinstance(record, Channel):
                    channels[record.id] = record.topic
                elif isinstance(record, Message) and record.channel_id in channels:
                    yield channels[record.channel_id], record.log_time, bytes(record.data)
        except (McapError, EOFError, struct.error, ValueError, RuntimeError) as error:
            log.warning("%s: read up to the last valid record (%s: %s)", mcap_path, type(error).__name__, error)


def recover_partial(spool: Spool, partial: Path, typestore: Typestore) -> Path:
    """Commit one partial folder as a readable episode; returns the committed folder."""
    episode_id = partial.name
    committed = spool.committed_path(episode_id)
    if (partial / "metadata.yaml").is_file():
        info = BagReader(partial).info
        (partial / JOURNAL_NAME).unlink(missing_ok=True)
        return commit_folder(partial, committed, dict(info.custom_data))
    journal_path = partial / JOURNAL_NAME
    if not journal_path.is_file():
        raise BagError(f"{partial}: no metadata.yaml and no {JOURNAL_NAME}; left in place for manual inspection")
    journal = json.loads(journal_path.read_text())
    info = EpisodeInfo.from_json(journal["episode"])
    storage_files = sorted(partial.glob("*.mcap"))
    if len(storage_files) != 1:
        raise BagError(f"{partial}: expected one .mcap storage file, found {len(storage_files)}")
    target = spool.root / RECOVERING_DIR / episode_id
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(exist_ok=True)
    stats = EpisodeStats()
    stats.add_policy_version(info.policy_version)
    writer = RosbagsWriter(typestore, storage="mcap")
    writer.open(target)
    specs = {spec["topic"]: spec for spec in journal["topics"]}
    declared: set[str] = set()
    recovered = 0
    for topic, log_time, data in valid_prefix_messages(storage_files[0]):
        spec = specs.get(topic)
        if spec is None:
            continue
        if topic not in declared:
            writer.add_topic(topic, spec["msgtype"], spec["msgdef"], spec["rihs01"])
            declared.add(topic)
        if topic in TOPICS_TO_DECODE:
            stats.observe(topic, typestore.deserialize_cdr(data, spec["msgtype"]))
        elif topic.startswith("/camera/"):
            stats.observe(topic, None)
        writer.write(topic, data, log_time)
        recovered += 1
    data = custom_data(info, stats, outcome="incomplete")
    data["lwd.recovered"] = "true"
    writer.close(data)
    facts = {**data, "lwd.start_time_ns": str(journal["start_time_ns"])}
    commit_folder(target, committed, facts)
    shutil.rmtree(partial)
    log.warning("recovered interrupted episode %s: %d messages, marked incomplete", episode_id, recovered)
    return committed


def recover_spool(spool: Spool, typestore: Typestore) -> list[Path]:
    """Recover every partial folder of the spool (call at startup, before recording); returns committed folders."""
    if (spool.root / RECOVERING_DIR).is_dir():
        shutil.rmtree(spool.root / RECOVERING_DIR)
    recovered = []
    for partial in spool.partials():
        try:
            recovered.append(recover_partial(spool, partial, typestore))
        except BagError as error:
            log.error("cannot recover %s: %s", partial, error)
    return recovered
