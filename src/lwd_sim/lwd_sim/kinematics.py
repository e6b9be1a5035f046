"""Differential inverse kinematics for one ViperX arm, from MuJoCo Jacobians.

The tool point is a point between the fingers, fixed in the gripper link's frame. Each call to
``ArmKinematics.solve`` takes one bounded damped-least-squares step toward a target tool pose,
using ``mujoco.mj_jac`` on a private kinematic copy of the model posed at the *commanded* arm
configuration. Iterating on the command (not on the lagging measured state) gives smooth
tracking without integrator oscillation; the stiff position servos keep the measured pose
within millimetres of it, and the caller closes the loop on measured object poses.
"""

from __future__ import annotations

import mujoco
import numpy as np

TOOL_OFFSET = np.array([0.135, 0.0, 0.0])
"""Tool point (between the finger pads) in the gripper_link frame [m]."""
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")


def rotation(axis: str, angle: float) -> np.ndarray:
    """3x3 rotation matrix about a principal axis ("x", "y" or "z") by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    raise ValueError(f"rotation axis must be 'x', 'y' or 'z', got {axis!r}")


def orientation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame rotation vector that turns ``current`` into ``target`` (both 3x3)."""
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, (target @ current.T).reshape(-1))
    error = np.zeros(3)
    mujoco.mju_quat2Vel(error, quat, 1.0)
    return error


class ArmKinematics:
    """Tool pose, Jacobian and damped-least-squares IK step for the ``left`` or ``right`` arm."""

    def __init__(self, model: mujoco.MjModel, side: str, damping: float = 0.05) -> None:
        if side not in ("left", "right"):
            raise ValueError(f"arm side must be 'left' or 'right', got {side!r}")
        self.model = model
        self.side = side
        self.damping = damping
        self.body = model.body(f"vx300s_{side}/gripper_link").id
        joints = [model.joint(f"vx300s_{side}/{name}") for name in ARM_JOINTS]
        self.dofs = np.array([int(model.jnt_dofadr[joint.id]) for joint in joints])
        self.qpos_index = np.array([int(model.jnt_qposadr[joint.id]) for joint in joints])
        self.lower = np.array([model.jnt_range[joint.id][0] for joint in joints])
        self.upper = np.array([model.jnt_range[joint.id][1] for joint in joints])
        self._scratch = mujoco.MjData(model)

    def tool_pose(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """World position of the tool point and the gripper orientation (3x3)."""
        rotation_matrix = data.xmat[self.body].reshape(3, 3)
        return data.xpos[self.body] + rotation_matrix @ TOOL_OFFSET, rotation_matrix.copy()

    def jacobian(self, data: mujoco.MjData) -> np.ndarray:
        """6x6 Jacobian (linear rows, then angular) of the tool point w.r.t. this arm's joints."""
        point, _ = self.tool_pose(data)
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        mujoco.mj_jac(self.model, data, jacp, jacr, point, self.body)
        return np.vstack([jacp[:, self.dofs], jacr[:, self.dofs]])

    def pose_at(self, arm_joints: np.ndarray) -> mujoco.MjData:
        """The private kinematic copy posed at ``arm_joints`` (6,), kinematics computed."""
        self._scratch.qpos[self.qpos_index] = arm_joints
        mujoco.mj_kinematics(self.model, self._scratch)
        mujoco.mj_comPos(self.model, self._scratch)
        return self._scratch

    def solve(
        self,
        arm_joints: np.ndarray,
        target_position: np.ndarray,
        target_rotation: np.ndarray,
        max_linear: float = 0.01,
        max_angular: float = 0.08,
        rotation_weight: float = 0.3,
    ) -> np.ndarray:
        """New arm joints (6,): one bounded IK step from ``arm_joints`` toward the target pose.

        The position error is clipped to ``max_linear`` [m] and the orientation error to
        ``max_angular`` [rad], so a far target is approached along a straight line at bounded
        speed; the step is solved by damped least squares on the weighted 6-D Jacobian and the
        result is clipped to the joint limits.
        """
        data = self.pose_at(arm_joints)
        position, rotation_matrix = self.tool_pose(data)
        linear = _clip_norm(target_position - position, max_linear)
        angular = _clip_norm(orientation_error(target_rotation, rotation_matrix), max_angular)
        error = np.concatenate([linear, rotation_weight * angular])
        jac = self.jacobian(data)
        jac[3:] *= rotation_weight
        gram = jac @ jac.T + (self.damping**2) * np.eye(6)
        return np.clip(arm_joints + jac.T @ np.linalg.solve(gram, error), self.lower, self.upper)


def _clip_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= limit else vector * (limit / norm)
