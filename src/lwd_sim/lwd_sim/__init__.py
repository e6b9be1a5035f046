"""Simulated MuJoCo ALOHA dual-arm robot driver and scripted operator.

Importing the package sets ``MUJOCO_GL=egl`` (unless already set) before anything imports
mujoco, gym-aloha or dm_control, so rendering works headless with no display.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
