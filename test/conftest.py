"""Shared pytest setup: headless MuJoCo rendering, the repository root, recorded episodes and fleet stores.

The episode fixtures (a typestore-backed step message builder, a spool, a recorder, a recorded labelled
episode) serve the lwd_logger tests and the lwd_fleet tests that upload or catalogue real bags. The store
fixtures start real servers on loopback (OpenSSH for ``sftp://``, moto's S3 API for ``s3://``), and
``store_backend`` runs a test once per backend (``file``, ``sftp``, ``s3``; ``memory`` on request through
indirect parametrization). S3 credentials reach the store as in a deployment: from the environment.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lwd_interfaces import lwd_typestore, messages, topics
from lwd_logger.episode_facts import EpisodeInfo
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter
from store_servers import SSHD, S3Server, SshServer, StoreBackend

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The workspace root (the folder holding colcon.meta)."""
    return REPO_ROOT


START_NS = 1_700_000_000 * 10**9
JOINTS = [f"joint_{i}" for i in range(14)]


class StepMessages:
    """Builds the messages a robot publishes for one control step (contract: same header stamp on all)."""

    def __init__(self, cameras: tuple[str, ...] = ("top",), height: int = 48, width: int = 64) -> None:
        self.typestore = lwd_typestore()
        self.cameras = cameras
        self.height = height
        self.width = width
        self.t = self.typestore.types

    def header(self, stamp_ns: int) -> Any:
        return messages.header(stamp_ns, frame_id="base")

    def joint_state(self, stamp_ns: int, value: float) -> Any:
        positions = np.full(14, value, dtype=np.float64)
        return self.t["sensor_msgs/msg/JointState"](
            header=self.header(stamp_ns),
            name=JOINTS,
            position=positions,
            velocity=positions * 0.5,
            effort=np.zeros(0, dtype=np.float64),
        )

    def image(self, stamp_ns: int, fill: int) -> Any:
        data = np.full(self.height * self.width * 3, (fill * 25) % 256, dtype=np.uint8)
        return self.t["sensor_msgs/msg/Image"](
            header=self.header(stamp_ns),
            height=self.height,
            width=self.width,
            encoding="rgb8",
            is_bigendian=0,
            step=self.width * 3,
            data=data,
        )

    def intervention(self, stamp_ns: int, active: bool) -> Any:
        return self.t["lwd_msgs/msg/InterventionState"](
            header=self.header(stamp_ns),
            mode=1 if active else 0,
            source="teleop/joy" if active else "policy",
            active=active,
        )

    def chunk(self, stamp_ns: int, version: str, chunk_id: int) -> Any:
        return self.t["lwd_msgs/msg/ActionChunk"](
            header=self.header(stamp_ns),
            horizon=2,
            action_dim=14,
            step_period=0.02,
            actions=np.arange(28, dtype=np.float32),
            policy_version=version,
            chunk_id=chunk_id,
            inference_latency=0.01,
        )

    def reward(self, stamp_ns: int, episode_id: str, success: bool) -> Any:
        return self.t["lwd_msgs/msg/RewardLabel"](
            header=self.header(stamp_ns),
            episode_id=episode_id,
            reward=1.0 if success else 0.0,
            terminal=success,
            success=success,
            source="sim/ground_truth",
        )

    def event(self, stamp_ns: int, event: int, episode_id: str = "ep1") -> Any:
        return self.t["lwd_msgs/msg/EpisodeEvent"](
            header=self.header(stamp_ns),
            event=event,
            episode_id=episode_id,
            robot_id="robot7",
            task="transfer_cube",
            instruction="pick up the cube",
            policy_version="v000001",
        )

    def step(self, index: int, active: bool = False, start_ns: int = START_NS) -> list[tuple[str, str, Any]]:
        """(topic, msgtype, message) of one control step."""
        stamp = start_ns + index * 20_000_000
        out = [(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, self.joint_state(stamp, index * 0.01))]
        out += [(topics.camera_topic(c), topics.IMAGE_TYPE, self.image(stamp, index)) for c in self.cameras]
        out.append((topics.POLICY_COMMAND, topics.JOINT_STATE_TYPE, self.joint_state(stamp, index * 0.02)))
        out.append((topics.EXECUTED_COMMAND, topics.JOINT_STATE_TYPE, self.joint_state(stamp, index * 0.03)))
        out.append((topics.INTERVENTION_STATE, "lwd_msgs/msg/InterventionState", self.intervention(stamp, active)))
        return out


@pytest.fixture
def steps() -> StepMessages:
    """Per-step message builder with one small camera."""
    return StepMessages()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    """An empty spool without quota."""
    return Spool(tmp_path / "spool")


@pytest.fixture
def make_recorder(spool: Spool) -> Callable[..., EpisodeRecorder]:
    """Factory of recorders over the spool fixture, with options for the writer."""

    def make(compression: str = "none", storage: str = "mcap", **kwargs: Any) -> EpisodeRecorder:
        store = lwd_typestore()
        return EpisodeRecorder(spool, lambda: RosbagsWriter(store, storage, compression), store, **kwargs)

    return make


@pytest.fixture
def episode_info() -> EpisodeInfo:
    """Start facts of a test episode."""
    return EpisodeInfo(
        episode_id="ep1",
        robot_id="robot7",
        task="transfer_cube",
        instruction="pick up the cube",
        policy_version="v000001",
        cameras=("top",),
    )


@pytest.fixture
def record_episode(
    make_recorder: Callable[..., EpisodeRecorder], steps: StepMessages, episode_info: EpisodeInfo
) -> Callable[..., Path]:
    """Record a full labelled episode of ``n`` steps with an intervention on steps 3..5; returns the folder."""

    def record(n: int = 10, success: bool = True, compression: str = "none", info: EpisodeInfo | None = None) -> Path:
        info = info or episode_info
        recorder = make_recorder(compression=compression)
        recorder.start_episode(info)
        t = 1_700_000_000 * 10**9
        recorder.record(topics.ACTION_CHUNK, "lwd_msgs/msg/ActionChunk", steps.chunk(t, "v000002", 1), t)
        for i in range(n):
            for topic, msgtype, msg in steps.step(i, active=3 <= i <= 5):
                recorder.record(topic, msgtype, msg, t + i * 20_000_000 + 1000)
        label = steps.reward(t + n * 20_000_000, info.episode_id, success)
        recorder.record(topics.REWARD_LABEL, "lwd_msgs/msg/RewardLabel", label, t + n * 20_000_000)
        recorder.set_label(success, "sim/ground_truth", success)
        return recorder.end_episode()

    return record


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    """A running sshd for SFTP store tests; skipped (with the reason) where openssh-server is not installed."""
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed (/usr/sbin/sshd missing): apt-get install openssh-server")
    server = SshServer(tmp_path / "ssh")
    server.start()
    yield server
    server.kill()


S3_BUCKET = "lwd-fleet"


def require_s3_packages() -> None:
    """Skip (with the reason) where the S3 server or the s3:// backend is not installed."""
    for module in ("moto", "s3fs"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install -r requirements.txt")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server for the whole session, holding the empty bucket ``S3_BUCKET``."""
    require_s3_packages()
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    server.create_bucket(S3_BUCKET)
    yield server
    server.stop()


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Dummy AWS credentials in the environment, as a deployment passes them; the host's AWS setup is hidden."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    environment = {
        "AWS_ACCESS_KEY_ID": "lwd-test-key-id",
        "AWS_SECRET_ACCESS_KEY": "lwd-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


def s3_url(server: S3Server, prefix: str) -> str:
    """URL of a store below ``prefix`` in the test bucket; the endpoint travels in the URL, never credentials."""
    return f"s3://{S3_BUCKET}/{prefix}?endpoint_url={server.endpoint}"


@pytest.fixture(params=["file", "sftp", "s3"])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreBackend:
    """An empty fleet store of each backend in turn, reached by URL as the nodes and the CLI reach it."""
    kind = request.param
    if kind == "file":
        return StoreBackend(kind, f"file://{tmp_path / 'fleet'}")
    if kind == "memory":
        return StoreBackend(kind, f"memory:///fleet-{uuid.uuid4().hex}")
    if kind == "sftp":
        return StoreBackend(kind, request.getfixturevalue("ssh_server").url)
    request.getfixturevalue("s3_credentials")
    return StoreBackend(kind, s3_url(request.getfixturevalue("s3_server"), f"fleet-{uuid.uuid4().hex}"))
