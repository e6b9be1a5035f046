"""ALOHA: two ViperX 300 arms of 6 joints plus a gripper each, in gym-aloha's joint order.

Joint limits are the ViperX 300's joint ranges (the same numbers as the arms' MJCF in gym-aloha);
grippers are normalized, 0 closed .. 1 open. The real robot records the four cameras of the ALOHA
camera drivers; the simulated one renders the ``top`` camera the built-in policies are trained on.
"""

from __future__ import annotations

from lwd_interfaces.robot import RobotDescription

_ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")
_ARM_LOWER = (-3.14158, -1.85005, -1.76278, -3.14158, -1.8675, -3.14158, 0.0)
_ARM_UPPER = (3.14158, 1.25664, 1.6057, 3.14158, 2.23402, 3.14158, 1.0)

ALOHA = RobotDescription(
    name="aloha",
    joint_names=tuple(f"{side}_arm_{joint}" for side in ("left", "right") for joint in _ARM_JOINTS),
    lower=_ARM_LOWER * 2,
    upper=_ARM_UPPER * 2,
    grippers=(6, 13),
    cameras=("cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"),
)

ALOHA_SIM = RobotDescription(
    name="aloha_sim",
    joint_names=ALOHA.joint_names,
    lower=ALOHA.lower,
    upper=ALOHA.upper,
    grippers=ALOHA.grippers,
    cameras=("top",),
)
