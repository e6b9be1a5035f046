"""Operator render tools: camera video with overlays (GIF and MP4) and the commanded-vs-executed joint plot."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from lwd_logger.errors import BagError
from lwd_logger.render import plot_joints, render_video
from PIL import Image


def test_gif_marks_intervention_frames_and_outcome(record_episode, tmp_path):
    folder = record_episode(n=8, success=False)
    summary = render_video(folder, tmp_path / "ep.gif", fps=4)
    assert summary.frames == 8
    assert summary.intervention_frames == 3
    assert summary.outcome == "failure"
    frames = iio.imread(tmp_path / "ep.gif", index=None)
    assert frames.shape[0] == 8
    banner = frames[4, 2, 40, :3].astype(int)
    assert banner[0] > 150 and banner[1] < 80
    plain = frames[0, 2, 40, :3].astype(int)
    assert plain[0] < 50


def test_mp4_and_joint_plot_are_written(record_episode, tmp_path):
    folder = record_episode(n=6)
    render_video(folder, tmp_path / "ep.mp4", fps=10)
    assert iio.imread(tmp_path / "ep.mp4", plugin="FFMPEG").shape[0] == 6
    png = plot_joints(folder, tmp_path / "joints.png")
    image = np.asarray(Image.open(png))
    assert image.shape[0] > 200 and image.shape[1] > 600


def test_render_without_cameras_is_a_clear_error(make_recorder, steps, episode_info, tmp_path):
    recorder = make_recorder()
    recorder.start_episode(episode_info)
    recorder.record("/joint_states", "sensor_msgs/msg/JointState", steps.joint_state(1, 0.0), 1)
    folder = recorder.end_episode()
    with pytest.raises(BagError, match="no camera topics"):
        render_video(folder, tmp_path / "x.gif")
    with pytest.raises(BagError, match="no /command/executed"):
        plot_joints(folder, tmp_path / "x.png")
