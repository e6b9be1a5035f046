"""EpisodeRecorder: committed bags carry the lwd.* facts, both time stamps, and honour discard/rerecord/quota."""

from __future__ import annotations

import json

import pytest
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.manifest import verify_folder
from lwd_logger.bag_reader import BagReader
from lwd_logger.errors import RecorderError, SpoolFullError
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter


def test_committed_episode_has_contract_custom_data_and_manifest(record_episode):
    folder = record_episode(n=10, success=True)
    manifest = verify_folder(folder, kind="episode")
    info = BagReader(folder).info
    data = info.custom_data
    assert info.storage_id == "mcap"
    assert data["lwd.robot_id"] == "robot7"
    assert data["lwd.episode_id"] == "ep1"
    assert data["lwd.task"] == "transfer_cube"
    assert data["lwd.instruction"] == "pick up the cube"
    assert data["lwd.episode_kind"] == "deployment"
    assert data["lwd.policy_versions"] == "v000001,v000002"
    assert data["lwd.outcome"] == "success"
    assert data["lwd.steps"] == "10"
    assert data["lwd.interventions"] == "1"
    assert data["lwd.intervention_steps"] == "3"
    assert data["lwd.label_source"] == "sim/ground_truth"
    assert data["lwd.cameras"] == "top"
    assert info.complete
    assert manifest.facts["lwd.outcome"] == "success"
    assert not (folder / "lwd_journal.json").exists()
    assert sorted(f.path for f in manifest.files) == ["ep1.mcap", "metadata.yaml"]


def test_header_stamp_and_receive_time_are_both_kept(record_episode):
    folder = record_episode(n=3)
    messages = list(BagReader(folder).messages([topics.EXECUTED_COMMAND]))
    assert len(messages) == 3
    for i, message in enumerate(messages):
        stamp = message.msg.header.stamp.sec * 10**9 + message.msg.header.stamp.nanosec
        assert stamp == 1_700_000_000 * 10**9 + i * 20_000_000
        assert message.log_time_ns == stamp + 1000
        assert message.msg.position[0] == pytest.approx(i * 0.03)


def test_zstd_compressed_episode_reads_back(record_episode):
    folder = record_episode(n=5, compression="zstd")
    reader = BagReader(folder)
    assert reader.info.message_counts[topics.camera_topic("top")] == 5
    images = [m.msg for m in reader.messages([topics.camera_topic("top")])]
    assert [int(img.data[0]) for img in images] == [0, 25, 50, 75, 100]


def test_serialized_bytes_are_written_unchanged(make_recorder, steps, episode_info):
    recorder = make_recorder()
    recorder.start_episode(episode_info)
    message = steps.joint_state(5, 0.25)
    raw = steps.typestore.serialize_cdr(message, topics.JOINT_STATE_TYPE)
    assert recorder.record(topics.EXECUTED_COMMAND, topics.JOINT_STATE_TYPE, raw, 42)
    folder = recorder.end_episode()
    (read,) = BagReader(folder).messages()
    assert bytes(steps.typestore.serialize_cdr(read.msg, read.msgtype)) == bytes(raw)
    assert BagReader(folder).info.custom_data["lwd.outcome"] == "incomplete"


def test_discard_removes_the_episode_and_rerecord_restarts_it(make_recorder, steps, episode_info, spool):
    recorder = make_recorder()
    recorder.start_episode(episode_info)
    for topic, msgtype, msg in steps.step(0):
        recorder.record(topic, msgtype, msg, 1)
    recorder.rerecord_episode()
    assert recorder.active
    for topic, msgtype, msg in steps.step(1):
        recorder.record(topic, msgtype, msg, 2)
    recorder.set_label(False, "operator/joy", False)
    folder = recorder.end_episode()
    assert BagReader(folder).info.custom_data["lwd.steps"] == "1"
    assert BagReader(folder).info.custom_data["lwd.outcome"] == "failure"
    recorder.start_episode(episode_info.__class__(episode_id="ep2", robot_id="robot7", task="t"))
    recorder.discard_episode()
    assert [p.name for p in spool.committed()] == ["ep1"]
    assert spool.partials() == []


def test_events_and_late_reward_label_commit_with_label(make_recorder, steps, spool):
    recorder = make_recorder(label_timeout_s=60.0)
    recorder.handle_event(steps.event(0, 0), cameras=("top",))
    for topic, msgtype, msg in steps.step(0):
        recorder.record(topic, msgtype, msg, 1)
    assert recorder.handle_event(steps.event(1, 1)) is None
    assert recorder.active
    committed = recorder.handle_reward(steps.reward(2, "ep1", True))
    assert committed == spool.committed_path("ep1")
    assert BagReader(committed).info.custom_data["lwd.outcome"] == "success"


def test_end_without_label_times_out_as_incomplete(spool, steps):
    now = [0]
    store = lwd_typestore()
    recorder = EpisodeRecorder(spool, lambda: RosbagsWriter(store), store, label_timeout_s=1.0, clock_ns=lambda: now[0])
    recorder.handle_event(steps.event(0, 0))
    recorder.handle_event(steps.event(1, 1))
    assert recorder.tick() is None
    now[0] = 2 * 10**9
    folder = recorder.tick()
    info = BagReader(folder).info
    assert info.custom_data["lwd.outcome"] == "incomplete"
    assert not info.complete


def test_bad_event_order_raises_clear_errors(make_recorder, episode_info):
    recorder = make_recorder()
    with pytest.raises(RecorderError, match="no episode is open"):
        recorder.end_episode()
    assert not recorder.record(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, b"\x00", 1)
    assert recorder.messages_outside_episode == 1
    recorder.start_episode(episode_info)
    with pytest.raises(RecorderError, match="still recording"):
        recorder.start_episode(episode_info)


def test_spool_quota_refuses_new_episodes_without_deleting(record_episode, make_recorder, spool, episode_info, caplog):
    folder = record_episode(n=3)
    before = {p.name: p.stat().st_size for p in folder.iterdir()}
    spool.max_bytes = 10
    recorder = make_recorder()
    with pytest.raises(SpoolFullError, match="SPOOL FULL"):
        recorder.start_episode(episode_info.__class__(episode_id="ep2", robot_id="robot7", task="t"))
    assert "SPOOL FULL" in caplog.text
    assert {p.name: p.stat().st_size for p in folder.iterdir()} == before
    free_floor = Spool(spool.root, min_free_bytes=2**62)
    with pytest.raises(SpoolFullError, match="bytes free"):
        free_floor.check_quota()


def test_journal_lists_topics_while_recording(make_recorder, steps, episode_info, spool):
    recorder = make_recorder()
    partial = recorder.start_episode(episode_info)
    for topic, msgtype, msg in steps.step(0):
        recorder.record(topic, msgtype, msg, 1)
    journal = json.loads((partial / "lwd_journal.json").read_text())
    assert journal["episode"]["episode_id"] == "ep1"
    assert {t["topic"] for t in journal["topics"]} == {m[0] for m in steps.step(0)}


def test_sqlite3_storage_records_and_reads_back(make_recorder, steps, episode_info):
    recorder = make_recorder(storage="sqlite3", compression="zstd")
    recorder.start_episode(episode_info)
    for i in range(3):
        for topic, msgtype, msg in steps.step(i):
            recorder.record(topic, msgtype, msg, i + 1)
        recorder.flush()
    folder = recorder.end_episode()
    reader = BagReader(folder)
    assert reader.info.storage_id == "sqlite3"
    assert reader.info.custom_data["lwd.steps"] == "3"
    assert [m.log_time_ns for m in reader.messages([topics.EXECUTED_COMMAND])] == [1, 2, 3]
