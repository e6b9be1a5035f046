"""Fault table: each fault of issue 17 (and the two of issue 8), injected into the real components, with what the
system did and what was lost, every cell observed by this script.

Episodes are recorded with the project's recorder (EpisodeRecorder -> RosbagsWriter MCAP, 16x16 camera, 14
joints, 12 steps) into a spool and uploaded by the real BagBridge into a real file:// fleet store; a bad episode
differs from a good one only in the fault injected. The BC checkpoint the trainer starts from is made by
``lwd train bc`` on that store, run in-process through ``lwd.cli.main`` like every ``lwd`` command here. The one
stand-in is the full disk: a RosbagsWriter whose writes raise ENOSPC once a byte budget is spent (the spool's
free-space check reads the same budget), since filling a real disk is not something to do on a shared machine.

    .venv/bin/python bench/faults.py                 # about 2 minutes on 2 cores
    .venv/bin/python bench/faults.py --keep /tmp/lwd-faults   # keep the store, spools and logs
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lwd.cli import main as lwd
from lwd_fleet.channel_watcher import ChannelWatcher
from lwd_fleet.errors import FleetError
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, ReleaseTrust, generate_key_pair
from lwd_fleet.store import FleetStore
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.manifest import MANIFEST_NAME, build_manifest, read_manifest, write_manifest
from lwd_interfaces.messages import header, joint_state, rgb8_image
from lwd_interfaces.robots import ALOHA_SIM
from lwd_logger.bag_reader import BagReader
from lwd_logger.bridge import BagBridge
from lwd_logger.episode_facts import EpisodeInfo
from lwd_logger.errors import RecordingFailedError, SpoolFullError
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.recovery import recover_spool
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter
from lwd_policy.checkpoint import WEIGHTS_NAME
from lwd_policy.inference import PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.runtime import InferenceRuntime, RuntimeConfig
from lwd_policy.safety import robot_limits
from safetensors.torch import load_file, save_file

from lwd_learner import episode_cache

ROBOT = "robot0"
TASK = "transfer_cube"
INSTRUCTION = "pick up the cube"
STEPS = 12
BASE_NS = 1_700_000_000 * 10**9
PERIOD_NS = 20_000_000
TINY_VLA = {
    "image_height": 16, "image_width": 16, "horizon": 4, "flow_steps": 3, "vision_channels": [8, 8],
    "vision_groups": 4, "vision_dim": 16, "language_proj_dim": 16, "proprio_hidden": 16, "feature_dim": 32,
    "time_embedding_dim": 8, "expert_width": 32, "expert_blocks": 1,
}  # fmt: skip
"""A VLAConfig small enough to pretrain and fine-tune in seconds on 2 cores."""
GOOD = ("good_demo0", "good_demo1", "good_dep0")
BAD = {  # bag name: (how it differs from a good one, the recorder arguments that make it so)
    "bad_seven_joints": ("JointStates of 7 joints", {"joints": 7}),
    "bad_nan_joints": ("a demonstration whose joints are NaN at step 3", {"nan_step": 3, "kind": "demonstration"}),
    "bad_zero_stamps": ("every header stamp 0 (30 steps)", {"zero_stamps": True, "steps": 30}),
    "bad_corrupt_chunk": ("16 bytes of a zstd chunk overwritten before commit", {"compression": "zstd"}),
    "bad_unlabelled": ("no success/failure label (outcome incomplete)", {"label": False}),
}


@dataclass
class Row:
    """One line of the fault table."""

    fault: str
    injected: str
    did: str
    lost: str
    seconds: float = 0.0


@dataclass
class Bench:
    """Folders and artifacts the rows share: the fleet store, the BC checkpoint, the trainer's work folder."""

    root: Path
    store: Path = field(init=False)
    bc: Path = field(init=False)
    vla_config: Path = field(init=False)
    signing_key: Path = field(init=False)
    public_key: Path = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.root / "store"
        self.bc = self.root / "bc"
        self.vla_config = self.root / "vla.json"
        self.vla_config.write_text(json.dumps(TINY_VLA))
        self.signing_key, self.public_key, _ = generate_key_pair(self.root / "keys")

    @property
    def store_url(self) -> str:
        """The store's file:// URL."""
        return f"file://{self.store}"


# Episodes, recorded with the project's recorder ----------------------------------------------------------------


def step_messages(step: int, joints: int, nan_step: int | None, zero_stamps: bool) -> list[tuple[str, str, object]]:
    """(topic, type, message) of one control step: joint state, camera image, executed command, intervention."""
    stamp = 0 if zero_stamps else BASE_NS + step * PERIOD_NS
    names = ALOHA_SIM.joint_names[:joints]
    position = 0.1 * np.sin(step / 4 + np.arange(joints)) + 0.5 * np.isin(np.arange(joints), (6, 13))
    measured = np.full(joints, np.nan) if step == nan_step else position
    state = lwd_typestore().types["lwd_msgs/msg/InterventionState"](
        header=header(stamp), mode=0, source="policy", active=False
    )
    return [
        (topics.JOINT_STATES, topics.JOINT_STATE_TYPE, joint_state(stamp, names, measured, np.zeros(joints))),
        (topics.camera_topic("top"), topics.IMAGE_TYPE, rgb8_image(stamp, "top", np.full((16, 16, 3), step, np.uint8))),
        (topics.EXECUTED_COMMAND, topics.JOINT_STATE_TYPE, joint_state(stamp, names, position + 0.01)),
        (topics.INTERVENTION_STATE, topics.TOPIC_TYPES[topics.INTERVENTION_STATE], state),
    ]


def record(
    spool: Spool,
    episode_id: str,
    steps: int = STEPS,
    kind: str = "deployment",
    joints: int = 14,
    nan_step: int | None = None,
    zero_stamps: bool = False,
    compression: str = "none",
    label: bool = True,
) -> Path:
    """Record one episode through EpisodeRecorder and commit it in the spool; returns its folder."""
    typestore = lwd_typestore()
    recorder = EpisodeRecorder(spool, lambda: RosbagsWriter(typestore, "mcap", compression), typestore)
    recorder.start_episode(EpisodeInfo(episode_id, ROBOT, TASK, INSTRUCTION, "v000000-bc", kind, ("top",)))
    for step in range(steps):
        for topic, msgtype, message in step_messages(step, joints, nan_step, zero_stamps):
            recorder.record(topic, msgtype, message, BASE_NS + step * PERIOD_NS)
    if label:
        recorder.set_label(True, "bench", True)
    return recorder.end_episode()


def corrupt_zstd_chunk(folder: Path) -> None:
    """Overwrite 16 bytes inside the bag's first zstd frame and re-commit: a bad write before the manifest."""
    (storage,) = folder.glob("*.mcap")
    data = bytearray(storage.read_bytes())
    start = data.index(b"\x28\xb5\x2f\xfd") + 20
    data[start : start + 16] = b"\xff" * 16
    storage.write_bytes(bytes(data))
    write_manifest(folder, build_manifest(folder, "episode", read_manifest(folder).facts))


def build_store(bench: Bench) -> None:
    """Record the good and bad episodes, good ones first in name order, and upload them all with the bridge."""
    spool = Spool(bench.root / "robot-spool")
    for name in GOOD:
        record(spool, name, kind="demonstration" if "demo" in name else "deployment")
    for name, (_, arguments) in BAD.items():
        folder = record(spool, name, **arguments)
        if name == "bad_corrupt_chunk":
            corrupt_zstd_chunk(folder)
    BagBridge(spool, FleetStore(bench.store_url)).upload_pending()


# Running things and observing them ---------------------------------------------------------------------------------


def run_lwd(argv: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
    """``lwd ARGV`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = lwd(argv)
            except SystemExit as exit_:
                code = int(exit_.code or 0)
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def last_line(text: str) -> str:
    """The last non-empty line of ``text``, for a table cell."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing printed)"


def short(text: str, root: Path, limit: int = 150) -> str:
    """``text`` in one line, the bench folder written as ``…``, cut to ``limit`` characters, safe in a table."""
    text = " ".join(str(text).replace(str(root), "…").split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ledger_by_name(work: Path) -> dict[str, dict[str, str]]:
    """The trainer's ledger from its latest resume checkpoint, keyed by episode folder name."""
    latest = max((work / "checkpoints").glob("*/trainer.json"))
    ledger = json.loads(latest.read_text())["ledger"]
    return {key.rsplit("/", 1)[1]: entry for key, entry in ledger.items()}


# The faults ----------------------------------------------------------------------------------------------------


def bc_with_bad_demonstrations(bench: Bench) -> Row:
    """``lwd train bc`` over the whole store, bad bags included; it also makes the policy the trainer starts from."""
    code, out, _ = run_lwd(
        ["train", "bc", "--episodes", bench.store_url, "--out", str(bench.bc), "--vla-config", str(bench.vla_config),
         "--steps", "10", "--batch-size", "8", "--cache-dir", str(bench.root / "bc-cache")]
    )  # fmt: skip
    usable = next(line for line in out.splitlines() if "usable episodes" in line).split()[0]
    aside = next((line for line in out.splitlines() if "set aside" in line), "nothing set aside")
    run_lwd(["train", "publish", "--store", bench.store_url, "--checkpoint", str(bench.bc),
             "--signing-key", str(bench.signing_key)])  # fmt: skip
    return Row(
        "bad bags in BC pretraining",
        f"`lwd train bc` over {len(GOOD)} good + {len(BAD)} bad bags (those of the trainer row)",
        f"exit {code}; prints `{aside.split(' (')[0]}`",
        f"good episodes used: {usable}/{len(GOOD)}; a checkpoint written: {(bench.bc / MANIFEST_NAME).is_file()}",
    )


def trainer_with_bad_bags(bench: Bench) -> Row:
    """``lwd train serve`` over the store; each bad bag must be quarantined and every good one used."""
    work = bench.root / "trainer"
    code, _, err = run_lwd(
        ["train", "serve", "--store", bench.store_url, "--work-dir", str(work), "--publish-every", "2",
         "--batch-size", "8", "--agent", '{"hidden_dim": 32}',
         "--signing-key", str(bench.signing_key), "--max-updates", "2"]
    )  # fmt: skip
    status = json.loads((work / "telemetry/status.json").read_text())
    ledger = ledger_by_name(work)
    reasons = ", ".join(f"{name.removeprefix('bad_')}: {ledger[name]['reason']}" for name in BAD if name in ledger)
    used = sum(ledger.get(name, {}).get("status") == "ingested" for name in GOOD)
    return Row(
        "bad bags between good ones (trainer)",
        "; ".join(f"{name.removeprefix('bad_')}: {how}" for name, (how, _) in BAD.items()),
        f"`lwd train serve` exit {code}{short(err, bench.root) if code else ''}; quarantined {reasons}; "
        f"status.json state `{status['state']}`",
        f"good episodes used: {used}/{len(GOOD)}; updates run {status['step']}/2",
    )


def trainer_restart(bench: Bench) -> Row:
    """Restart the trainer without its checkpoints: the catalog's quarantine must keep it from re-reading a bad bag."""
    work = bench.root / "trainer"
    shutil.rmtree(work / "checkpoints")
    decoded: list[str] = []
    decode = episode_cache.decode_episode

    def counting_decode(bag_dir: str | Path, key: str, cameras: tuple[str, ...] | None = None) -> Any:
        decoded.append(Path(bag_dir).name)
        return decode(bag_dir, key, cameras)

    episode_cache.decode_episode = counting_decode  # observe which bags the restarted trainer reads
    try:
        code, _, _ = run_lwd(
            ["train", "serve", "--store", bench.store_url, "--work-dir", str(work), "--publish-every", "2",
             "--batch-size", "8", "--agent", '{"hidden_dim": 32}',
         "--signing-key", str(bench.signing_key), "--max-updates", "2"]
        )  # fmt: skip
    finally:
        episode_cache.decode_episode = decode
    ledger = ledger_by_name(work)
    kept = sum(ledger[name]["status"] == "skipped" for name in BAD)
    used = sum(ledger[name]["status"] == "ingested" for name in GOOD)
    return Row(
        "trainer restarted after a crash that lost its resume checkpoint",
        "`lwd train serve` again on the same store and work folder, `checkpoints/` deleted",
        f"exit {code}; bad bags decoded again: {sum(name in BAD for name in decoded)}; still quarantined: "
        f"{kept}/{len(BAD)} (the catalog, by manifest digest)",
        f"good episodes used: {used}/{len(GOOD)} (from the decode cache)",
    )


def resume_with_lost_episode(bench: Bench) -> Row:
    """A buffered episode's bag is damaged and its decoded cache lost between a save and a resume."""
    work = bench.root / "trainer"
    (folder,) = bench.store.glob("episodes/*/*/good_dep0")
    storage = next(folder.glob("*.mcap"))
    original = storage.read_bytes()
    storage.write_bytes(original[:200])
    for cached in (work / "cache/episodes").glob("*.npz"):
        cached.unlink()
    code, out, err = run_lwd(
        ["train", "serve", "--store", bench.store_url, "--work-dir", str(work), "--publish-every", "2",
         "--batch-size", "8", "--agent", '{"hidden_dim": 32}',
         "--signing-key", str(bench.signing_key), "--max-updates", "4"]
    )  # fmt: skip
    storage.write_bytes(original)
    entry = ledger_by_name(work)["good_dep0"]
    restored = sum(ledger_by_name(work)[name]["status"] == "ingested" for name in GOOD if name != "good_dep0")
    return Row(
        "resume checkpoint lists an episode that can no longer be restored",
        "bag of a buffered episode truncated to 200 bytes and the decoded cache deleted, then `lwd train serve`",
        f"exit {code}{short(err, bench.root) if code else ''}; that episode quarantined `{entry['reason']}`; "
        f"`{short(last_line(out), bench.root)}`",
        f"other buffered episodes restored: {restored}/{len(GOOD) - 1}",
    )


def store_listing(bench: Bench) -> Row:
    """``lwd store ls``/``stats`` after ingest must not count a quarantined episode."""
    catalog = ["--catalog", str(bench.root / "trainer/catalog.sqlite"), "--store", bench.store_url]
    _, listed, _ = run_lwd(["store", "ls", *catalog])
    code, rejected, _ = run_lwd(["store", "ls", "--rejected", *catalog])
    shown = sum(name in listed for name in GOOD)
    quarantined = sum(name in rejected for name in BAD)
    return Row(
        "episodes ingest rejected, in the store listing",
        "`lwd store ls` and `lwd store ls --rejected` on the trainer's catalog",
        f"exit {code}; `ls` lists {sum(name in listed for name in BAD)} of the bad bags, "
        f"`ls --rejected` {quarantined}/{len(BAD)} with their reasons",
        f"good episodes listed: {shown}/{len(GOOD)}",
    )


class FillingWriter(RosbagsWriter):
    """A RosbagsWriter on a disk with ``disk['free']`` bytes: a write past them raises ENOSPC, as a full disk does."""

    def __init__(self, disk: dict[str, int]) -> None:
        super().__init__(lwd_typestore())
        self.disk = disk

    def write(self, topic: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Spend ``len(data)`` bytes of the disk, then write."""
        if len(data) > self.disk["free"]:
            self.disk["free"] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.disk["free"] -= len(data)
        super().write(topic, data, log_time_ns)

    def close(self, custom_data: dict[str, str]) -> None:
        """The summary and metadata need bytes too."""
        if self.disk["free"] == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().close(custom_data)


class SmallDiskSpool(Spool):
    """The real spool, whose free-space check reads the small disk."""

    def __init__(self, root: Path, disk: dict[str, int]) -> None:
        super().__init__(root, min_free_bytes=100)
        self.disk = disk

    def free_bytes(self) -> int:
        """Bytes left on the small disk."""
        return self.disk["free"]


def disk_full(bench: Bench) -> Row:
    """Fill the disk mid-episode, try the next episode, free space, record again."""
    disk = {"free": 12_000}  # about 8 steps
    spool = SmallDiskSpool(bench.root / "full-spool", disk)
    typestore = lwd_typestore()
    recorder = EpisodeRecorder(spool, lambda: FillingWriter(disk), typestore, flush_period_s=3600.0)
    recorder.start_episode(EpisodeInfo("full1", ROBOT, TASK, INSTRUCTION, cameras=("top",)))
    step, failed = 0, "no error (wrong)"
    try:
        for step in range(1000):
            for topic, msgtype, message in step_messages(step, 14, None, False):
                recorder.record(topic, msgtype, message, BASE_NS + step * PERIOD_NS)
            if step == 4:
                recorder.flush()
    except RecordingFailedError as error:
        failed = short(error, bench.root, 90)
    try:
        recorder.start_episode(EpisodeInfo("full2", ROBOT, TASK, INSTRUCTION, cameras=("top",)))
        refused = "accepted (wrong)"
    except SpoolFullError as error:
        refused = short(error, bench.root, 110)
    kept = BagReader(spool.committed_path("full1")).info
    disk["free"] = 10**9  # the bridge uploaded and freed the spool
    resumed = record(spool, "full3")
    return Row(
        "disk fills mid-episode",
        f"writer raises ENOSPC at step {step} (byte-budget stand-in, read by the spool too); 5 steps flushed before",
        f"`{failed}`; next start refused: `{refused}`; after space returns the next episode records "
        f"({BagReader(resumed).info.custom_data['lwd.outcome']}) without a restart",
        f"episode closed `{kept.custom_data['lwd.outcome']}` with its flushed steps: "
        f"{kept.custom_data['lwd.steps']}/5; recorder open: {recorder.active}",
    )


def record_until_killed(spool_root: str, flushed: Any) -> None:
    """Child process: record 30 steps, flush after 20, keep writing, then wait to be killed."""
    typestore = lwd_typestore()
    spool = Spool(spool_root)
    recorder = EpisodeRecorder(spool, lambda: RosbagsWriter(typestore), typestore, flush_period_s=3600.0)
    recorder.start_episode(EpisodeInfo("killed1", ROBOT, TASK, INSTRUCTION, cameras=("top",)))
    for step in range(30):
        for topic, msgtype, message in step_messages(step, 14, None, False):
            recorder.record(topic, msgtype, message, BASE_NS + step * PERIOD_NS)
        if step == 19:
            recorder.flush()
    flushed.set()
    time.sleep(600)


def robot_killed(bench: Bench) -> Row:
    """SIGKILL a recording process mid-episode, then start the robot's spool again (recovery) and upload."""
    spool_root = bench.root / "killed-spool"
    context = multiprocessing.get_context("spawn")  # a clean child: this process has torch threads by now
    flushed = context.Event()
    child = context.Process(target=record_until_killed, args=(str(spool_root), flushed))
    child.start()
    flushed.wait(120)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    spool = Spool(spool_root)
    (folder,) = recover_spool(spool, lwd_typestore())
    facts = BagReader(folder).info.custom_data
    (result,) = BagBridge(spool, FleetStore(bench.store_url)).upload_pending()
    code, _, _ = run_lwd(["bag", "info", str(bench.store / result.key)])
    return Row(
        "robot killed mid-episode (issue 8)",
        "recording process SIGKILLed after 30 steps, 20 of them flushed",
        f"process killed (exit {child.exitcode}); at restart recovery commits it `lwd.outcome: {facts['lwd.outcome']}` "
        f"(recovered {facts.get('lwd.recovered')}), the bridge uploads it; `lwd bag info` exit {code}",
        f"flushed steps kept: {min(int(facts['lwd.steps']), 20)}/20 ({facts['lwd.steps']} readable)",
    )


def spool_bad_episode(bench: Bench) -> Row:
    """A committed spool episode whose bag no longer matches its manifest, first in upload order."""
    spool = Spool(bench.root / "bridge-spool")
    folders = [record(spool, name, steps=4) for name in ("a_flipped", "b_good", "c_good")]
    with open(next(folders[0].glob("*.mcap")), "r+b") as stream:
        stream.write(b"\xde\xad\xbe\xef")
    bridge = BagBridge(spool, FleetStore(f"file://{bench.root / 'bridge-store'}"))
    uploaded = [result.episode_id for result in bridge.upload_pending()]
    reason = json.loads((spool.root / ".quarantine/a_flipped.reason.json").read_text())
    return Row(
        "one unverifiable episode in the local spool",
        "first 4 bytes of the first episode's bag (in upload order) overwritten after commit",
        f"moved to `<spool>/.quarantine/` with reason `{reason['reason']}`, bridge quarantined {bridge.quarantined}, "
        f"went on",
        f"other episodes uploaded: {len(uploaded)}/2; the bad one's folder kept: "
        f"{(spool.root / '.quarantine/a_flipped').is_dir()}",
    )


# Policies on the channel ---------------------------------------------------------------------------------------


@dataclass
class Robot:
    """A robot's policy side: its channel watcher and its inference runtime, wired as SimRobot wires them."""

    watcher: ChannelWatcher
    runtime: InferenceRuntime

    def poll(self) -> str:
        """Poll the channel and offer a new release to the runtime; the line the robot would log (or '')."""
        try:
            release = self.watcher.poll()
        except FleetError as error:
            return f"{type(error).__name__}: {error}"
        if release is None:
            return ""
        report = self.runtime.offer_checkpoint(release.folder).result()
        return "" if report.accepted else f"runtime refused {release.version}: {report.reason}"

    def serving(self, steps: int = 8) -> str:
        """Run ``steps`` control steps; the versions that served them."""
        config = self.runtime.policy_config
        images = {camera: np.full((16, 16, 3), 90, np.uint8) for camera in config.cameras}
        versions = set()
        for index in range(steps):
            observation = PolicyObservation(
                stamp=index * 0.02, qpos=np.zeros(config.proprio_dim), images=images, instruction=INSTRUCTION
            )
            versions.add(self.runtime.step(observation, index * 0.02).policy_version)
        return ",".join(sorted(versions))


def start_robot(bench: Bench, encoder: InstructionEncoder) -> Robot:
    """A robot following channel stable of the store, serving the BC policy it finds there."""
    trust = ReleaseTrust.from_files([bench.public_key])
    watcher = ChannelWatcher(
        FleetStore(bench.store_url, create=False), "stable", bench.root / "policy-cache", trust=trust
    )
    release = watcher.poll()
    config = RuntimeConfig(mode="lockstep", low_water=2, seed=0)
    runtime = InferenceRuntime.from_checkpoint(release.folder, robot_limits(ALOHA_SIM), config, encoder, ALOHA_SIM)
    return Robot(watcher, runtime)


def publish_variant(
    bench: Bench, version: str, change: Callable[[Path], None], recommit: bool = True, signer: str = "release"
) -> Path:
    """Publish a copy of the BC policy as ``version`` after ``change`` (recommitting its manifest, or not), signed by
    ``signer``: the fleet's release key, ``"attacker"`` (a key the robots do not trust) or ``"none"`` (unsigned)."""
    folder = bench.root / "variants" / version
    shutil.copytree(bench.bc, folder)
    facts = {**read_manifest(folder).facts, "version": version}
    write_manifest(folder, build_manifest(folder, "policy", facts))
    if recommit:
        change(folder)
        write_manifest(folder, build_manifest(folder, "policy", facts))
    keys = {"release": bench.signing_key, "attacker": generate_key_pair(bench.root / "attacker" / version)[0]}
    key = ReleaseKey.from_file(keys[signer]) if signer in keys else None
    PolicyPublisher(FleetStore(bench.store_url), key).publish(folder, version, "stable")
    if not recommit:
        change(bench.store / "policies" / version)  # the store's copy is changed after publication
    return folder


def edit_json(name: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    """A change to a checkpoint that edits one of its JSON files."""

    def change(folder: Path) -> None:
        body = json.loads((folder / name).read_text())
        edit(body)
        (folder / name).write_text(json.dumps(body))

    return change


def set_statistic(name: str, index: int, value: float) -> Callable[[Path], None]:
    """A change that sets one action normalization statistic (``shift`` or ``scale``)."""
    return edit_json("normalization.json", lambda stats: stats["action"][name].__setitem__(index, value))


def nan_weights(folder: Path) -> None:
    """Every weight NaN, saved as a well-formed safetensors file."""
    tensors = {
        name: tensor.clone().fill_(float("nan")) for name, tensor in load_file(str(folder / WEIGHTS_NAME)).items()
    }
    save_file(tensors, str(folder / WEIGHTS_NAME))


def tamper_weights(folder: Path) -> None:
    """Flip bytes in the weight file (its manifest still names the old sha256)."""
    with open(folder / WEIGHTS_NAME, "r+b") as stream:
        stream.seek(-16, os.SEEK_END)
        stream.write(b"\x00" * 16)


def channel_faults(bench: Bench, encoder: InstructionEncoder) -> list[Row]:
    """Each bad thing a channel can point a robot at; the robot must keep serving the BC policy."""
    robot = start_robot(bench, encoder)
    start = robot.serving()
    channel = bench.store / "policies/channels/stable"
    empty_entry = edit_json(
        MANIFEST_NAME, lambda body: body["files"].append({"path": "", "size": 0, "sha256": "0" * 64})
    )
    unchanged = edit_json("config.json", lambda body: None)
    cases = [
        ("policy published without the release key", "a copy of the BC policy published unsigned",
         lambda: publish_variant(bench, "v000098", unchanged, signer="none")),
        ("policy signed by a key the robots do not trust", "a copy of the BC policy signed by a fresh key pair",
         lambda: publish_variant(bench, "v000099", unchanged, signer="attacker")),
        ("policy manifest lists an entry `\"\"`", "store copy's manifest.json gets a file entry with path \"\"",
         lambda: publish_variant(bench, "v000101", empty_entry, recommit=False)),
        ("channel file not UTF-8", "`policies/channels/stable` holds bytes `v00000\\xff\\xfe`",
         lambda: channel.write_bytes(b"v00000\xff\xfe\n")),
        ("channel file is a folder", "`policies/channels/stable` replaced by a folder",
         lambda: (channel.unlink(), channel.mkdir())),
        ("corrupt policy on the channel: weights tampered in the store (issue 8)",
         "last 16 bytes of the store's model.safetensors zeroed after publication",
         lambda: publish_variant(bench, "v000102", tamper_weights, False)),
        ("corrupt policy on the channel: NaN weights, manifest consistent (issue 8)",
         "every weight NaN, manifest re-made over it, published",
         lambda: publish_variant(bench, "v000103", nan_weights)),
        ("normalization scale 1e38", "`action.scale[3] = 1e38`, manifest re-made, published",
         lambda: publish_variant(bench, "v000104", set_statistic("scale", 3, 1e38))),
        ("action mean far outside the robot's joint limits", "`action.shift[2] = 40` rad, manifest re-made, published",
         lambda: publish_variant(bench, "v000105", set_statistic("shift", 2, 40.0))),
    ]  # fmt: skip
    rows = []
    for fault, injected, inject in cases:
        began = time.perf_counter()
        if channel.is_dir():
            channel.rmdir()  # the previous case's channel folder; publishing writes the file again
        inject()
        line = robot.poll() or "accepted (wrong)"
        rows.append(
            Row(fault, injected, f"`{short(line, bench.root, 140)}`",
                f"robot keeps serving: {robot.serving()} (was {start})", time.perf_counter() - began)
        )  # fmt: skip
    return rows


def huge_config(bench: Bench) -> Row:
    """A checkpoint whose config asks for a 60000-wide action expert, verified with ``lwd policy verify``."""
    folder = bench.root / "variants" / "huge"
    shutil.copytree(bench.bc, folder)
    edit_json("config.json", lambda body: body.__setitem__("expert_width", 60000))(folder)
    write_manifest(folder, build_manifest(folder, "policy", read_manifest(folder).facts))
    command = [sys.executable, "-m", "lwd.cli", "policy", "verify", str(folder), "--robot", "aloha_sim"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)  # this one process's peak memory
    return Row(
        "checkpoint config asks for any amount of memory",
        f"`expert_width: 60000` in a {sum(p.stat().st_size for p in folder.iterdir()) // 1024} KB checkpoint",
        f"`lwd policy verify` (a process) exit {os.waitstatus_to_exitcode(status)}: "
        f"`{short(last_line(output), bench.root, 140)}`",
        f"peak memory of that process: {usage.ru_maxrss / 1024:.0f} MB (the config implies several GB)",
    )


CLI_CASES = [
    ["train", "bc", "--episodes", "bags", "--out", "ckpt", "--steps", "-5"],
    ["train", "bc", "--episodes", "bags", "--out", "ckpt", "--batch-size", "0"],
    ["train", "bc", "--episodes", "bags", "--out", "ckpt", "--lr", "nan"],
    ["train", "serve", "--store", "file://./fleet", "--mix", "foo=1"],
    ["train", "serve", "--store", "ftp://host/fleet"],
    ["train", "serve", "--store", "file://./typo", "--work-dir", "w"],
    ["bag", "render", "notes.txt", "--fps", "0"],
    ["bag", "info", "notes.txt"],
    ["store", "upload", "/nonexistent"],
    ["store", "ls", "--store", "file://./typo"],
    ["store", "ls", "--catalog", "/x/c.sqlite"],
]
"""The bad invocations issue 17 lists, each run in a fresh folder holding ``bags/`` and ``notes.txt``."""


def cli_errors(bench: Bench) -> Row:
    """Every bad invocation must exit 2 with one stderr line, no traceback, and create nothing."""
    good, created = {}, 0
    for index, argv in enumerate(CLI_CASES):
        folder = bench.root / "cli" / str(index)
        (folder / "bags").mkdir(parents=True)
        (folder / "notes.txt").write_text("not a bag\n")
        code, _, err = run_lwd(argv, cwd=folder)
        lines = err.strip().splitlines()
        made = sorted(path.name for path in folder.iterdir()) != ["bags", "notes.txt"]
        created += made or Path("/x").exists() or Path("/nonexistent").exists()
        if code == 2 and len(lines) == 1 and "Traceback" not in err and not made:
            good[" ".join(argv)] = lines[0]
    return Row(
        "bad `lwd` arguments",
        f"{len(CLI_CASES)} invocations: "
        + "; ".join(f"`{' '.join(argv[:2])} … {argv[-2]} {argv[-1]}`" for argv in CLI_CASES[:4])
        + "; …",
        f"exit 2 with one stderr line, no traceback: {len(good)}/{len(CLI_CASES)}; e.g. "
        f"`{good.get('train serve --store file://./typo --work-dir w', '(that case failed)')}`",
        f"invocations that created a path: {created}/{len(CLI_CASES)}",
    )


# Driver ----------------------------------------------------------------------------------------------------------


def timed(function: Callable[[Bench], Row], bench: Bench) -> Row:
    """Run one fault and time it."""
    began = time.perf_counter()
    row = function(bench)
    row.seconds = time.perf_counter() - began
    return row


def table(rows: list[Row]) -> str:
    """The Markdown table of ``rows``."""
    lines = ["| fault | injected how | what the system did | what was lost | s |", "|---|---|---|---|---|"]
    lines += [f"| {r.fault} | {r.injected} | {r.did} | {r.lost} | {r.seconds:.1f} |" for r in rows]
    return "\n".join(lines)


def run(root: Path) -> list[Row]:
    """Every fault, in an order where each row's inputs exist."""
    bench = Bench(root)
    began = time.perf_counter()
    build_store(bench)
    print(f"recorded and uploaded {len(GOOD)} good + {len(BAD)} bad episodes in {time.perf_counter() - began:.1f} s")
    rows = [timed(bc_with_bad_demonstrations, bench)]
    rows += [timed(step, bench) for step in (trainer_with_bad_bags, trainer_restart, store_listing)]
    rows.append(timed(resume_with_lost_episode, bench))
    rows += [timed(step, bench) for step in (disk_full, robot_killed, spool_bad_episode)]
    rows += channel_faults(bench, InstructionEncoder())
    rows += [timed(step, bench) for step in (huge_config, cli_errors)]
    return rows


def main() -> None:
    """Parse arguments, inject every fault, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="folder to work in and keep (default: a temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the table shows what the components said
    began = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        rows = run(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="lwd-faults-") as folder:
            rows = run(Path(folder))
    print(table(rows))
    print(f"\n{len(rows)} faults in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
