"""What a simulated robot renders: an evaluation episode only the frames its policy plans from, a recorded episode
every frame (the camera images are rendered when first read, ``lwd_sim.rendering.StepImages``)."""

from __future__ import annotations

from lwd_experiment.sim_robot import RobotSettings, SimRobot
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.store import FleetStore
from lwd_policy.checkpoint_tools import init_checkpoint
from lwd_policy.inference import ChunkPredictor
from lwd_sim.rendering import CameraRig

TASK = "transfer_cube"
STEPS = 45


def test_evaluation_renders_one_frame_per_chunk_and_a_recorded_episode_every_frame(tmp_path, monkeypatch):
    store_url = f"file://{tmp_path / 'store'}"
    init_checkpoint(tmp_path / "v000001", "v000001", seed=0)
    PolicyPublisher(FleetStore(store_url)).publish(tmp_path / "v000001", "v000001", "stable")
    counts = {"renders": 0, "plans": 0}
    render, predict = CameraRig.render, ChunkPredictor.predict

    def counted_render(self, data):
        counts["renders"] += 1
        return render(self, data)

    def counted_predict(self, observations, generator, noise_scale=1.0):
        counts["plans"] += 1
        return predict(self, observations, generator, noise_scale)

    monkeypatch.setattr(CameraRig, "render", counted_render)
    monkeypatch.setattr(ChunkPredictor, "predict", counted_predict)
    settings = RobotSettings("robot0", store_url, tmp_path / "robot0", allow_unsigned=True, tasks=(TASK,),
                             max_steps=STEPS)  # fmt: skip
    robot = SimRobot(settings)
    try:
        seen = {}
        for mode in ("evaluation", "deployment"):
            counts.update(renders=0, plans=0)
            summary = robot.run_episode(TASK, 0, mode)
            assert summary.steps == STEPS and not summary.success
            seen[mode] = dict(counts)
    finally:
        robot.close()
    evaluation, deployment = seen["evaluation"], seen["deployment"]
    assert 2 <= evaluation["plans"] < STEPS // 10, evaluation
    assert evaluation["renders"] == evaluation["plans"], "an evaluation renders only the frames its policy plans from"
    assert deployment["renders"] == STEPS, "a recorded episode renders every frame it records"
