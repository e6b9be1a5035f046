"""Fleet episodes explore, evaluation does not (issue 19, fix 4): the demo preset's ``fleet_noise_scale`` reaches
every robot, and a robot's policy samples with it in deployment episodes and with noise 0 in evaluation episodes."""

from __future__ import annotations

import pytest
from lwd_experiment.demo_loop import DemoLoop
from lwd_experiment.presets import PRESETS, preset
from lwd_experiment.sim_robot import RobotSettings, SimRobot
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.store import FleetStore
from lwd_policy.checkpoint_tools import init_checkpoint
from lwd_policy.inference import ChunkPredictor

TASK = "transfer_cube"


def test_the_presets_explore_with_the_measured_noise_but_ci_s_loop_and_pass_their_noise_to_every_robot(tmp_path):
    assert {name: chosen.fleet_noise_scale for name, chosen in PRESETS.items()} == {
        "quick": 0.0, "default": 0.2, "full": 0.2, "suite": 0.2
    }  # fmt: skip
    loop = DemoLoop(preset("quick", robots=2, fleet_noise_scale=0.3), tmp_path)
    assert [settings.fleet_noise_scale for settings in loop.robot_settings()] == [0.3, 0.3]
    with pytest.raises(ValueError, match="fleet_noise_scale must be in"):
        RobotSettings("robot0", f"file://{tmp_path}", tmp_path, fleet_noise_scale=2.0)


def test_a_robot_samples_with_the_fleet_noise_in_deployment_and_deterministically_in_evaluation(tmp_path, monkeypatch):
    store_url = f"file://{tmp_path / 'store'}"
    init_checkpoint(tmp_path / "v000001", "v000001", seed=0)
    PolicyPublisher(FleetStore(store_url)).publish(tmp_path / "v000001", "v000001", "stable")
    noise_scales: list[float] = []
    predict = ChunkPredictor.predict

    def recording(self, observations, generator, noise_scale=1.0):
        noise_scales.append(noise_scale)
        return predict(self, observations, generator, noise_scale)

    monkeypatch.setattr(ChunkPredictor, "predict", recording)
    settings = RobotSettings("robot0", store_url, tmp_path / "robot0", allow_unsigned=True, tasks=(TASK,),
                             max_steps=3, record=False, fleet_noise_scale=0.5)  # fmt: skip
    robot = SimRobot(settings)
    try:
        for mode, expected in (("deployment", 0.5), ("evaluation", 0.0), ("deployment", 0.5)):
            noise_scales.clear()
            robot.run_episode(TASK, 0, mode)
            assert noise_scales and set(noise_scales) == {expected}, mode
    finally:
        robot.close()
