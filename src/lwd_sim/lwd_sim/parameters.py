"""The parameters of ``sim_driver``, declared once (see :mod:`lwd_interfaces.parameters`)."""

from __future__ import annotations

from lwd_interfaces.parameters import Parameter, ParameterTable

from lwd_sim.tasks import TASKS

SIM_DRIVER = ParameterTable(
    "sim_driver",
    [
        Parameter("task", "transfer_cube", "task scene", choices=tuple(TASKS)),
        Parameter("cameras", ["top"], "model cameras to render (top, angle, left_wrist, right_wrist, ...)"),
        Parameter("image_height", 96, "rendered image height [px]", 8, 2160),
        Parameter("image_width", 128, "rendered image width [px]", 8, 3840),
        Parameter("control_rate_hz", 50.0, "simulator steps per second [Hz]", 1.0, 1000.0),
        Parameter("camera_every_n_steps", 1, "publish images every N control steps", 1, 1000),
        Parameter("seed", 0, "seed of the first episode; each reset uses the next", 0, 2**31 - 1),
        Parameter("frame_id", "world", "header.frame_id of /joint_states"),
    ],
)
