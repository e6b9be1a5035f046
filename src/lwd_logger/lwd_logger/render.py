"""Operator views of an episode bag: a video of the cameras with intervention spans and the outcome overlaid,
and a plot of commanded vs executed joints.

Frames are grouped by header stamp (all cameras of a control step share it),
cameras side by side; a red banner marks steps under operator control and
the last frames carry the episode's outcome.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from lwd_interfaces import messages, topics
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from lwd_logger.bag_reader import BagReader
from lwd_logger.errors import BagError

OUTCOME_COLORS = {"success": (40, 200, 60), "failure": (220, 40, 40), "incomplete": (230, 160, 0)}


def stamp_ns(msg: object) -> int:
    """Header stamp of a message in ns."""
    return messages.stamp_ns(msg.header.stamp)


@dataclass(frozen=True)
class RenderSummary:
    """What was rendered: frames written, frames under intervention, the outcome shown."""

    frames: int
    intervention_frames: int
    outcome: str


def intervention_stamps(reader: BagReader) -> set[int]:
    """Header stamps of the control steps where an operator was in control."""
    return {stamp_ns(m.msg) for m in reader.messages([topics.INTERVENTION_STATE]) if m.msg.active}


def image_array(msg: object) -> np.ndarray:
    """An rgb8/bgr8/mono8 sensor_msgs/Image as an HxWx3 uint8 array."""
    data = np.asarray(msg.data, dtype=np.uint8)
    if msg.encoding in ("rgb8", "bgr8"):
        pixels = data.reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
        return pixels[..., ::-1] if msg.encoding == "bgr8" else pixels
    if msg.encoding == "mono8":
        return np.repeat(data.reshape(msg.height, msg.step)[:, : msg.width, None], 3, axis=2)
    raise BagError(f"cannot render image encoding {msg.encoding!r}")


def render_video(bag: str | Path, out: str | Path, fps: float = 25.0, stride: int = 1) -> RenderSummary:
    """Write a GIF or MP4 (by ``out``'s suffix) of the bag's camera topics with overlays."""
    reader = BagReader(bag)
    cameras = sorted(t for t in reader.info.message_counts if t.startswith(topics.CAMERA_PREFIX + "/"))
    if not cameras:
        raise BagError(f"{bag} has no camera topics to render")
    by_stamp: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
    for message in reader.messages(cameras):
        by_stamp[stamp_ns(message.msg)][message.topic] = image_array(message.msg)
    active = intervention_stamps(reader)
    outcome = reader.info.custom_data.get("lwd.outcome", "incomplete")
    stamps = sorted(s for s, images in by_stamp.items() if len(images) == len(cameras))[::stride]
    frames = []
    last = max(0, len(stamps) - max(1, int(fps)))
    for index, stamp in enumerate(stamps):
        frame = Image.fromarray(np.concatenate([by_stamp[stamp][c] for c in cameras], axis=1))
        draw = ImageDraw.Draw(frame)
        if stamp in active:
            draw.rectangle((0, 0, frame.width, 14), fill=(220, 30, 30))
            draw.text((4, 1), "INTERVENTION", fill=(255, 255, 255))
        if index >= last:
            draw.rectangle((0, frame.height - 14, frame.width, frame.height), fill=OUTCOME_COLORS.get(outcome))
            draw.text((4, frame.height - 13), outcome.upper(), fill=(255, 255, 255))
        frames.append(np.asarray(frame))
    out = Path(out)
    if out.suffix.lower() == ".gif":
        iio.imwrite(out, np.stack(frames), duration=1000.0 / fps, loop=0)
    else:
        iio.imwrite(out, np.stack(frames), fps=fps, codec="libx264", plugin="FFMPEG", macro_block_size=2)
    return RenderSummary(len(frames), sum(1 for s in stamps if s in active), outcome)


def plot_joints(bag: str | Path, out: str | Path) -> Path:
    """PNG of commanded (/policy/command) vs executed (/command/executed) joints, intervention spans shaded."""
    reader = BagReader(bag)
    series: dict[str, tuple[list[float], list[np.ndarray]]] = {}
    for topic in (topics.POLICY_COMMAND, topics.EXECUTED_COMMAND):
        times, values = [], []
        for message in reader.messages([topic]):
            times.append(stamp_ns(message.msg) / 1e9)
            values.append(np.asarray(message.msg.position, dtype=float))
        series[topic] = (times, values)
    if not series[topics.EXECUTED_COMMAND][0]:
        raise BagError(f"{bag} has no {topics.EXECUTED_COMMAND} messages to plot")
    origin = series[topics.EXECUTED_COMMAND][0][0]
    joints = len(series[topics.EXECUTED_COMMAND][1][0])
    columns = 2
    rows = (joints + columns - 1) // columns
    figure = Figure(figsize=(12, 1.6 * rows))
    axes = figure.subplots(rows, columns, sharex=True, squeeze=False)
    active = sorted((s / 1e9 - origin) for s in intervention_stamps(reader))
    for joint in range(joints):
        axis = axes[joint % rows][joint // rows]
        for topic, style in ((topics.POLICY_COMMAND, "--"), (topics.EXECUTED_COMMAND, "-")):
            times, values = series[topic]
            if times:
                axis.plot([t - origin for t in times], [v[joint] for v in values], style, label=topic, linewidth=1)
        for t in active:
            axis.axvspan(t, t + 0.02, color="red", alpha=0.15, linewidth=0)
        axis.set_ylabel(f"j{joint}", fontsize=7)
    axes[0][0].legend(fontsize=7, loc="upper right")
    outcome = reader.info.custom_data.get("lwd.outcome", "unknown")
    figure.suptitle(f"{Path(bag).name}: commanded vs executed joints (outcome {outcome}; red = intervention)")
    figure.tight_layout()
    figure.savefig(out, dpi=80)
    return Path(out)
