"""Fixtures of the learner tests: real LWD episode bags written with rosbags (MCAP), committed with a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.manifest import build_manifest, write_manifest
from lwd_interfaces.messages import header as make_header
from lwd_interfaces.messages import joint_state, policy_version, pose_array
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

if TYPE_CHECKING:
    from lwd_policy.contract import PolicyConfig

JOINT_NAMES = [f"joint_{i}" for i in range(14)]


def write_episode_bag(
    path: Path,
    steps: int = 12,
    outcome: str = "success",
    kind: str = "deployment",
    intervention_steps: tuple[int, ...] = (),
    cameras: tuple[str, ...] = ("top",),
    image_shape: tuple[int, int] = (8, 10),
    episode_id: str = "ep0",
    task: str = "transfer_cube",
    extra_custom: dict[str, str] | None = None,
    objects: int = 0,
    joints: int = 14,
    nan_step: int | None = None,
    zero_stamps: bool = False,
    compression: str = "none",
) -> Path:
    """Write an LWD episode bag whose executed action at step t is t + joint/100 and proprio is -t.

    Images carry the step index in every pixel, so alignment is checkable from the decoded arrays.
    With ``objects`` > 0 each step also records ``/perception/object_poses``: see ``object_poses_at``.
    Faults for the quarantine tests: ``joints`` joints per JointState, NaN joint states at ``nan_step``,
    every header stamp 0 (``zero_stamps``), zstd-compressed MCAP chunks (``compression="zstd"``).
    """
    typestore = lwd_typestore()
    JointState = typestore.types["sensor_msgs/msg/JointState"]
    Image = typestore.types["sensor_msgs/msg/Image"]
    Intervention = typestore.types["lwd_msgs/msg/InterventionState"]
    PolicyVersion = typestore.types["lwd_msgs/msg/PolicyVersion"]
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    if compression == "zstd":
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    custom = {
        "lwd.robot_id": "robot0",
        "lwd.episode_id": episode_id,
        "lwd.task": task,
        "lwd.instruction": f"do {task}",
        "lwd.episode_kind": kind,
        "lwd.policy_versions": "v000001",
        "lwd.outcome": outcome,
        "lwd.steps": str(steps),
        "lwd.interventions": str(int(bool(intervention_steps))),
        "lwd.intervention_steps": str(len(intervention_steps)),
        "lwd.label_source": "sim/ground_truth",
        "lwd.cameras": ",".join(cameras),
    }
    custom.update(extra_custom or {})
    for key, value in custom.items():
        writer.set_custom_data(key, value)
    with writer:
        joint_conn = writer.add_connection(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, typestore=typestore)
        exec_conn = writer.add_connection(topics.EXECUTED_COMMAND, topics.JOINT_STATE_TYPE, typestore=typestore)
        state_conn = writer.add_connection(
            topics.INTERVENTION_STATE, topics.TOPIC_TYPES[topics.INTERVENTION_STATE], typestore=typestore
        )
        version_conn = writer.add_connection(
            topics.POLICY_VERSION, topics.TOPIC_TYPES[topics.POLICY_VERSION], typestore=typestore
        )
        poses_type = topics.TOPIC_TYPES[topics.OBJECT_POSES]
        poses_conn = writer.add_connection(topics.OBJECT_POSES, poses_type, typestore=typestore) if objects else None
        cam_conns = {
            name: writer.add_connection(topics.camera_topic(name), topics.IMAGE_TYPE, typestore=typestore)
            for name in cameras
        }
        base = 1_700_000_000_000_000_000
        for step in range(steps):
            log_time = base + step * 20_000_000
            stamp = 0 if zero_stamps else log_time
            header = make_header(stamp)
            if step in (0, steps // 2):
                version = policy_version(stamp, f"v{step + 1:06d}", uri="", sha256="", channel="stable")
                writer.write(version_conn, log_time, typestore.serialize_cdr(version, PolicyVersion.__msgtype__))
            fill = np.nan if step == nan_step else -float(step)
            proprio = joint_state(stamp, JOINT_NAMES[:joints], fill * np.ones(joints), np.zeros(joints))
            action = joint_state(stamp, JOINT_NAMES[:joints], step + np.arange(joints) / 100.0)
            active = step in intervention_steps
            state = Intervention(
                header=header,
                mode=1 if active else 0,
                source="operator/scripted" if active else "policy",
                active=active,
            )
            writer.write(joint_conn, log_time, typestore.serialize_cdr(proprio, JointState.__msgtype__))
            for conn in cam_conns.values():
                height, width = image_shape
                pixels = np.full(height * width * 3, step % 256, dtype=np.uint8)
                image = Image(
                    header=header,
                    height=height,
                    width=width,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=width * 3,
                    data=pixels,
                )
                writer.write(conn, log_time, typestore.serialize_cdr(image, Image.__msgtype__))
            if poses_conn is not None:
                poses = pose_array(stamp, object_poses_at(step, objects))
                writer.write(poses_conn, log_time, typestore.serialize_cdr(poses, poses_type))
            writer.write(state_conn, log_time, typestore.serialize_cdr(state, Intervention.__msgtype__))
            writer.write(exec_conn, log_time, typestore.serialize_cdr(action, JointState.__msgtype__))
    return path


def object_poses_at(step: int, objects: int) -> np.ndarray:
    """The ``[objects, 7]`` poses ``write_episode_bag`` records at ``step``: object i at (step, i, 0.5), unrotated."""
    return np.array([[step, index, 0.5, 1.0, 0.0, 0.0, 0.0] for index in range(objects)]).reshape(objects, 7)


def commit_episode(store_root: Path, bag_name: str, date: str = "2026-11-25", **kwargs) -> Path:
    """Write a bag into ``<store>/episodes/robot0/<date>/<bag_name>`` and commit it with its manifest."""
    folder = store_root / "episodes" / "robot0" / date / bag_name
    folder.parent.mkdir(parents=True, exist_ok=True)
    write_episode_bag(folder, episode_id=bag_name, **kwargs)
    from lwd_logger.bag_reader import BagReader

    write_manifest(folder, build_manifest(folder, "episode", BagReader(folder).info.custom_data))
    return folder


@pytest.fixture
def episode_bag_writer() -> Callable[..., Path]:
    """The function that writes one LWD episode bag (see write_episode_bag)."""
    return write_episode_bag


@pytest.fixture
def episode_committer() -> Callable[..., Path]:
    """The function that writes and commits one episode into a file store (see commit_episode)."""
    return commit_episode


TINY_VLA = {
    "image_height": 16,
    "image_width": 16,
    "horizon": 4,
    "flow_steps": 3,
    "vision_channels": [8, 8],
    "vision_groups": 4,
    "vision_dim": 16,
    "language_proj_dim": 16,
    "proprio_hidden": 16,
    "feature_dim": 32,
    "time_embedding_dim": 8,
    "expert_width": 32,
    "expert_blocks": 1,
}
"""A VLAConfig small enough to pretrain and fine-tune in seconds on 2 cores."""


class HashEmbedder:
    """Deterministic stand-in for the sentence model: a seeded Gaussian vector per instruction text."""

    def embed(self, texts: list[str]):
        import hashlib

        import torch

        vectors = []
        for text in texts:
            seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
            vectors.append(torch.randn(384, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(vectors)


def build_fleet_store(root: Path, bc_steps: int = 3, policy_config: PolicyConfig | None = None) -> Path:
    """A file store with three committed episodes (demo, deployment with takeover, failed deployment)
    and a tiny BC-pretrained policy published as v000000-bc on channel stable.

    The policy is of ``policy_config``'s registered type, by default the built-in VLA sized by ``TINY_VLA``."""
    from lwd_fleet.publisher import PolicyPublisher
    from lwd_fleet.store import FleetStore
    from lwd_learner.episode_cache import EpisodeCache
    from lwd_learner.pretrain import find_episode_folders, load_episodes, pretrain_bc, write_pretrained
    from lwd_learner.pretrain_config import PretrainConfig
    from lwd_policy.config import VLAConfig

    store = root / "store"
    commit_episode(store, "demo0", steps=24, kind="demonstration", image_shape=(16, 16))
    commit_episode(store, "dep0", steps=20, intervention_steps=(3, 4, 5), image_shape=(16, 16))
    commit_episode(store, "dep1", steps=18, outcome="failure", image_shape=(16, 16))
    vla = policy_config or VLAConfig.from_dict(TINY_VLA)
    episodes = load_episodes(find_episode_folders(f"file://{store}"), EpisodeCache(root / "bc-cache"), vla.cameras)
    config = PretrainConfig(steps=bc_steps, batch_size=8)
    model, normalizer = pretrain_bc(episodes, vla, HashEmbedder(), config)
    write_pretrained(model, normalizer, root / "bc", "v000000-bc", len(episodes), bc_steps)
    PolicyPublisher(FleetStore(f"file://{store}")).publish(root / "bc", "v000000-bc", "stable")
    return store


@pytest.fixture(scope="session")
def fleet_store_template(tmp_path_factory) -> Path:
    """One fleet store built per session (see build_fleet_store); tests get copies of it."""
    return build_fleet_store(tmp_path_factory.mktemp("fleet-template"))


@pytest.fixture
def fleet_store(tmp_path, fleet_store_template) -> Path:
    """A private copy of the session's fleet store: episodes plus a pretrained policy on channel stable."""
    import shutil

    return Path(shutil.copytree(fleet_store_template, tmp_path / "store"))
