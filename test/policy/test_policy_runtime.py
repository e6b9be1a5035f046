"""Inference runtime: chunk queue, holds, determinism, adversarial outputs and hot swap."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from lwd_policy.checkpoint import load_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.inference import ChunkPredictor, PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.normalization import Normalizer, Stats
from lwd_policy.runtime import CommandStatus, InferenceRuntime, RuntimeConfig, RuntimeConfigError, StepCommand
from lwd_policy.safety import robot_limits

PERIOD = 0.02
SMALL_HORIZON = 8


def observation(stamp: float, config: VLAConfig, instruction: str = "pick up the cube") -> PolicyObservation:
    """A fixed observation of an ALOHA-shaped robot at rest."""
    images = {camera: np.full((config.image_height, config.image_width, 3), 90, np.uint8) for camera in config.cameras}
    return PolicyObservation(stamp=stamp, qpos=np.zeros(config.proprio_dim), images=images, instruction=instruction)


def _runtime(folder: Path, encoder: InstructionEncoder, **settings: object) -> InferenceRuntime:
    predictor = ChunkPredictor(load_checkpoint(folder), encoder)
    config = RuntimeConfig(**{"mode": "lockstep", "low_water": 4, **settings})
    return InferenceRuntime(predictor, robot_limits(), config)


def _run(runtime: InferenceRuntime, steps: int, start: int = 0) -> list[StepCommand]:
    return [
        runtime.step(observation((start + i) * PERIOD, runtime.policy_config), (start + i) * PERIOD)
        for i in range(steps)
    ]


def test_lockstep_is_deterministic_under_a_seed(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder
) -> None:
    folder = make_checkpoint("v000001")
    first = _run(_runtime(folder, encoder, seed=11, noise_scale=1.0), 40)
    second = _run(_runtime(folder, encoder, seed=11, noise_scale=1.0), 40)
    other = _run(_runtime(folder, encoder, seed=12, noise_scale=1.0), 40)
    assert all(r.status is CommandStatus.POLICY for r in first)
    assert all(np.array_equal(a.command, b.command) for a, b in zip(first, second, strict=True))
    assert not all(np.array_equal(a.command, b.command) for a, b in zip(first, other, strict=True))
    centred = _run(_runtime(folder, encoder, seed=11), 40)
    centred_other_seed = _run(_runtime(folder, encoder, seed=12), 40)
    assert all(np.array_equal(a.command, b.command) for a, b in zip(centred, centred_other_seed, strict=True))
    assert not all(np.array_equal(a.command, b.command) for a, b in zip(first, centred, strict=True))
    chunks = [chunk for r in first for chunk in r.new_chunks]
    assert [c.chunk_id for c in chunks] == list(range(len(chunks))) and len(chunks) >= 40 // (SMALL_HORIZON - 4)
    assert all(c.actions.shape == (SMALL_HORIZON, 14) and c.policy_version == "v000001" for c in chunks)
    assert all(r.policy_version == "v000001" and r.inference_latency > 0 for r in first)


def test_reset_sets_the_sampling_noise_of_the_episodes_that_follow(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder
) -> None:
    """A fleet robot explores in its deployment episodes and is evaluated deterministically, on one runtime."""
    folder = make_checkpoint("v000001")
    deterministic = _run(_runtime(folder, encoder, seed=11), 12)
    runtime = _runtime(folder, encoder, seed=11)
    runtime.reset(noise_scale=1.0)
    assert runtime.config.noise_scale == 1.0
    exploring = _run(runtime, 12)
    assert not all(np.array_equal(a.command, b.command) for a, b in zip(exploring, deterministic, strict=True))
    runtime.reset(noise_scale=0.0)
    evaluated = _run(runtime, 12, start=12)
    assert all(np.array_equal(a.command, b.command) for a, b in zip(evaluated, deterministic, strict=True))
    runtime.reset()
    assert runtime.config.noise_scale == 0.0, "a reset without a noise scale keeps the current one"
    runtime.reset(noise_scale=1.0, seed=5)
    seeded = _run(runtime, 12, start=24)
    elsewhere = _runtime(folder, encoder, seed=11)
    _run(elsewhere, 12)
    elsewhere.reset(noise_scale=1.0, seed=5)
    assert all(
        np.array_equal(a.command, b.command) for a, b in zip(seeded, _run(elsewhere, 12, start=24), strict=True)
    ), "an episode's noise depends on its seed, not on what the runtime sampled before"
    with pytest.raises(RuntimeConfigError, match="noise_scale"):
        runtime.reset(noise_scale=1.5)


def test_stale_observation_holds(make_checkpoint: Callable[..., Path], encoder: InstructionEncoder) -> None:
    runtime = _runtime(make_checkpoint("v000001"), encoder, stale_after=0.05)
    before = _run(runtime, 10)[-1]
    stale = runtime.step(observation(9 * PERIOD, runtime.policy_config), 12 * PERIOD)
    assert stale.status is CommandStatus.HOLD_STALE and not stale.from_policy
    np.testing.assert_array_equal(stale.command, before.command)
    assert stale.new_chunks == ()
    fresh = runtime.step(observation(13 * PERIOD, runtime.policy_config), 13 * PERIOD)
    assert fresh.status is CommandStatus.POLICY
    assert runtime.counters.held_stale == 1


def test_nan_and_huge_policy_outputs_never_reach_the_robot(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder
) -> None:
    checkpoint = load_checkpoint(make_checkpoint("v000001"))
    huge = Normalizer(checkpoint.normalizer.proprio, Stats(np.full(14, 1e6), np.full(14, 1e9)))
    checkpoint.normalizer = huge
    limits = robot_limits()
    runtime = InferenceRuntime(ChunkPredictor(checkpoint, encoder), limits, RuntimeConfig(mode="lockstep", low_water=4))
    results = _run(runtime, 30)
    commands = np.stack([r.command for r in results])
    assert np.all(commands <= limits.upper) and np.all(commands >= limits.lower)
    assert np.all(np.abs(np.diff(commands, axis=0)) <= limits.max_delta + 1e-12)
    assert all(r.clamped for r in results) and runtime.counters.rate_limited > 0
    with torch.no_grad():
        checkpoint.model.action_expert.output.bias.fill_(float("nan"))
    held = _run(runtime, 30, start=30)
    assert any(r.status is CommandStatus.HOLD_NONFINITE for r in held)
    assert all(np.all(np.isfinite(r.command)) for r in held)
    previous = results[-1]
    for result in held:
        if result.status is CommandStatus.HOLD_NONFINITE:
            np.testing.assert_array_equal(result.command, previous.command)
        previous = result
    assert held[-1].status is CommandStatus.HOLD_NONFINITE


def test_bad_checkpoints_are_rejected_and_the_old_policy_keeps_serving(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder, small_config: VLAConfig
) -> None:
    runtime = _runtime(make_checkpoint("v000001"), encoder)
    _run(runtime, 5)
    corrupt = make_checkpoint("v000002", seed=1)
    (corrupt / "config.json").write_text((corrupt / "config.json").read_text().replace("8", "9", 1))
    mismatched = make_checkpoint("v000003", seed=2, config=small_config.replace(horizon=12))
    empty = corrupt.parent / "v000004"
    empty.mkdir()
    for folder, reason in ((corrupt, "sha256"), (mismatched, "horizon: expected 8, got 12"), (empty, "no manifest")):
        report = runtime.offer_checkpoint(folder).result()
        assert not report.accepted and reason in report.reason
    results = _run(runtime, 30, start=5)
    assert all(r.status is CommandStatus.POLICY and r.policy_version == "v000001" for r in results)
    assert runtime.counters.rejected_checkpoints == 3 and runtime.counters.swaps == 0
    good = runtime.offer_checkpoint(make_checkpoint("v000005", seed=3)).result()
    assert good.accepted and good.version == "v000005"
    after = _run(runtime, 2 * SMALL_HORIZON, start=35)
    assert after[-1].policy_version == "v000005" and runtime.counters.swaps == 1


def test_hot_swap_under_load_drops_no_step(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder, small_config: VLAConfig
) -> None:
    """Realtime mode at a 100 Hz loop: swap twice (and offer one bad checkpoint) while commands keep flowing.

    Like an rclpy timer, a late tick is not repeated: the loop sleeps to the next 10 ms boundary.
    """
    config = small_config.replace(horizon=20)
    folders = [make_checkpoint(f"v00000{i}", seed=i, config=config) for i in (1, 2, 3)]
    bad = make_checkpoint("v000009", seed=9, config=config)
    (bad / "model.safetensors").write_bytes(b"not a safetensors file")
    runtime = InferenceRuntime(
        ChunkPredictor(load_checkpoint(folders[0]), encoder),
        robot_limits(),
        RuntimeConfig(mode="realtime", low_water=16, max_latency=1.0, stale_after=1.0, torch_threads=1),
    )
    offers = {60: folders[1], 120: bad, 180: folders[2]}
    reports = []
    results = []
    threads = torch.get_num_threads()
    try:
        with runtime:
            start = time.perf_counter()
            for i in range(300):
                if i in offers:
                    reports.append(runtime.offer_checkpoint(offers[i]))
                now = time.perf_counter() - start
                results.append(runtime.step(observation(now, config), now))
                elapsed = time.perf_counter() - start
                time.sleep((int(elapsed / 0.01) + 1) * 0.01 - elapsed)
    finally:
        torch.set_num_threads(threads)
    assert [r.result().accepted for r in reports] == [True, False, True]
    first_policy = next(i for i, r in enumerate(results) if r.from_policy)
    assert first_policy <= 5
    assert all(r.status is CommandStatus.POLICY for r in results[first_policy:])
    assert runtime.counters.held_starved == 0 and runtime.counters.swaps == 2
    versions = [r.policy_version for r in results[first_policy:]]
    assert versions == sorted(versions) and versions[-1] == "v000003"
    assert {"v000001", "v000002", "v000003"} <= set(versions) and "v000009" not in versions
    chunk_versions = {c.chunk_id: c.policy_version for r in results for c in r.new_chunks}
    assert all(chunk_versions[r.chunk_id] == r.policy_version for r in results[first_policy:])


def test_realtime_requires_start_and_low_water_below_horizon(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder
) -> None:
    folder = make_checkpoint("v000001")
    runtime = _runtime(folder, encoder, mode="realtime")
    with pytest.raises(RuntimeConfigError, match="not started"):
        runtime.step(observation(0.0, runtime.policy_config), 0.0)
    with pytest.raises(RuntimeConfigError, match="below the chunk horizon"):
        _runtime(folder, encoder, low_water=SMALL_HORIZON)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(RuntimeConfigError, match="noise_scale"):
            RuntimeConfig(noise_scale=bad)


def test_predictor_resizes_camera_frames_and_batches_robots(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder
) -> None:
    predictor = ChunkPredictor(load_checkpoint(make_checkpoint("v000001")), encoder)
    big = PolicyObservation(0.0, np.zeros(14), {"top": np.full((96, 128, 3), 90, np.uint8)}, "pick up the cube")
    small = observation(0.0, predictor.config)
    np.testing.assert_array_equal(predictor.batch([big]).images["top"], predictor.batch([small]).images["top"])
    noise_seed = torch.Generator().manual_seed(4)
    batched = predictor.predict([small, observation(0.0, predictor.config, "insert the peg")], generator=noise_seed)
    assert batched.shape == (2, SMALL_HORIZON, 14)
    assert not np.allclose(batched[0], batched[1])


def test_reset_starts_from_the_measured_pose(make_checkpoint: Callable[..., Path], encoder: InstructionEncoder) -> None:
    limits = robot_limits()
    config = RuntimeConfig(mode="lockstep", low_water=4)
    runtime = InferenceRuntime.from_checkpoint(make_checkpoint("v000001"), limits, config, encoder)
    _run(runtime, 10)
    runtime.reset()
    pose = np.linspace(-0.5, 0.5, 14)
    pose[[6, 13]] = 0.5
    base = observation(0.2, runtime.policy_config)
    first = runtime.step(PolicyObservation(0.2, pose, base.images, base.instruction), 0.2)
    assert first.status is CommandStatus.POLICY
    assert [c.start_step for c in first.new_chunks] == [first.step]
    assert np.all(np.abs(first.command - pose) <= limits.max_delta + 1e-12)


def test_chunks_that_miss_their_deadline_are_dropped_and_the_robot_holds(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder
) -> None:
    runtime = _runtime(make_checkpoint("v000001"), encoder, mode="realtime", max_latency=1e-9)
    pose = np.full(14, 0.2)
    base = observation(0.0, runtime.policy_config)
    results = []
    with runtime:
        start = time.perf_counter()
        while runtime.counters.missed_deadlines < 2 and time.perf_counter() - start < 10.0:
            now = time.perf_counter() - start
            results.append(runtime.step(PolicyObservation(now, pose, base.images, base.instruction), now))
            time.sleep(0.005)
    assert runtime.counters.missed_deadlines >= 2 and runtime.counters.chunks == 0
    assert all(not r.from_policy for r in results)
    assert all(np.array_equal(r.command, pose) for r in results)


def test_with_a_robot_statistics_outside_its_joint_limits_are_refused_at_start_and_at_hot_swap(
    make_checkpoint: Callable[..., Path], encoder: InstructionEncoder
) -> None:
    import json

    from lwd_interfaces.manifest import build_manifest, read_manifest, write_manifest
    from lwd_interfaces.robots import ALOHA_SIM
    from lwd_policy.checkpoint import CheckpointError

    far = make_checkpoint("v000002", seed=1)
    stats = json.loads((far / "normalization.json").read_text())
    stats["action"]["shift"][2] = 40.0  # rad: far outside the elbow's limits, yet finite and below 1e3
    (far / "normalization.json").write_text(json.dumps(stats))
    write_manifest(far, build_manifest(far, "policy", read_manifest(far).facts))
    config = RuntimeConfig(mode="lockstep", low_water=4)
    with pytest.raises(CheckpointError, match=r"action\.shift\[2\] = 40 .*aloha_sim"):
        InferenceRuntime.from_checkpoint(far, robot_limits(ALOHA_SIM), config, encoder, ALOHA_SIM)
    runtime = InferenceRuntime.from_checkpoint(
        make_checkpoint("v000001"), robot_limits(ALOHA_SIM), config, encoder, ALOHA_SIM
    )
    report = runtime.offer_checkpoint(far).result()
    assert not report.accepted and "far outside joint left_arm_elbow's limits" in report.reason
    assert runtime.version == "v000001" and runtime.counters.rejected_checkpoints == 1
    assert InferenceRuntime.from_checkpoint(far, robot_limits(ALOHA_SIM), config, encoder).version == "v000002"
