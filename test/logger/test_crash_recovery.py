"""Crash safety: a recorder killed with SIGKILL mid-episode leaves data that recovers, up to the last flush,
into a readable episode marked incomplete (never passed off as complete)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.manifest import verify_folder
from lwd_logger.bag_reader import BagReader
from lwd_logger.errors import BagError
from lwd_logger.recovery import recover_spool
from lwd_logger.spool import Spool

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from lwd_interfaces import lwd_typestore, topics
    from lwd_logger.episode_facts import EpisodeInfo
    from lwd_logger.recorder import EpisodeRecorder
    from lwd_logger.spool import Spool
    from lwd_logger.writer import RosbagsWriter

    store = lwd_typestore()
    T = store.types
    recorder = EpisodeRecorder(Spool(sys.argv[1]), lambda: RosbagsWriter(store, "mcap", sys.argv[2]), store,
                               flush_period_s=3600.0)
    recorder.start_episode(EpisodeInfo("crash1", "robot7", "insertion", policy_version="v000004"))
    for step in range(40):
        stamp = T["builtin_interfaces/msg/Time"](sec=1, nanosec=step)
        header = T["std_msgs/msg/Header"](stamp=stamp, frame_id="")
        q = np.full(14, float(step))
        js = T["sensor_msgs/msg/JointState"](header=header, name=[], position=q, velocity=q, effort=q[:0])
        state = T["lwd_msgs/msg/InterventionState"](header=header, mode=1, source="teleop", active=step >= 10)
        recorder.record(topics.EXECUTED_COMMAND, topics.JOINT_STATE_TYPE, js, 1000 + step)
        recorder.record(topics.INTERVENTION_STATE, "lwd_msgs/msg/InterventionState", state, 1000 + step)
        if step == 29:
            recorder.flush()
            print("flushed", flush=True)
    print("unflushed tail written", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_sigkill_mid_episode_recovers_flushed_prefix_as_incomplete(tmp_path, compression):
    spool_root = tmp_path / "spool"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(spool_root), compression], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "flushed"
        assert child.stdout.readline().strip() == "unflushed tail written"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    spool = Spool(spool_root)
    (partial,) = spool.partials()
    assert not (partial / "metadata.yaml").exists()
    with pytest.raises(BagError, match=r"no metadata\.yaml"):
        BagReader(partial)

    (folder,) = recover_spool(spool, lwd_typestore())
    assert spool.partials() == []
    assert spool.committed() == [folder]
    manifest = verify_folder(folder, kind="episode")
    reader = BagReader(folder)
    data = reader.info.custom_data
    assert data["lwd.outcome"] == "incomplete"
    assert data["lwd.recovered"] == "true"
    assert not reader.info.complete
    assert manifest.facts["lwd.outcome"] == "incomplete"
    executed = [m.msg.position[0] for m in reader.messages([topics.EXECUTED_COMMAND])]
    assert executed[:30] == [float(step) for step in range(30)]
    assert len(executed) >= 30
    assert data["lwd.steps"] == str(len(executed))
    assert data["lwd.interventions"] == "1"
    assert data["lwd.policy_versions"] == "v000004"
    assert data["lwd.robot_id"] == "robot7"


def test_partial_closed_before_commit_is_committed_as_recorded(record_episode, spool):
    folder = record_episode(n=3, success=True)
    (folder / "manifest.json").unlink()
    partial = spool.partial_path("ep1")
    partial.parent.mkdir(exist_ok=True)
    folder.rename(partial)
    (recovered,) = recover_spool(spool, lwd_typestore())
    verify_folder(recovered, kind="episode")
    assert BagReader(recovered).info.custom_data["lwd.outcome"] == "success"


def test_partial_without_journal_is_left_in_place(spool, caplog):
    partial = spool.partial_path("lost")
    partial.mkdir(parents=True)
    (partial / "lost.mcap").write_bytes(b"\x89MCAP0\r\n")
    assert recover_spool(spool, lwd_typestore()) == []
    assert (partial / "lost.mcap").is_file()
    assert "left in place" in caplog.text
