"""The parameters of ``policy_node``, declared once (see :mod:`lwd_interfaces.parameters`), and the core
settings they make."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lwd_fleet.layout import policy_folder
from lwd_interfaces.parameters import Parameter, ParameterTable
from lwd_interfaces.robots import ROBOTS, robot_description

from lwd_policy.runtime import RuntimeConfig
from lwd_policy.safety import SafetyLimits, robot_limits

POLICY_NODE = ParameterTable(
    "policy_node",
    [
        Parameter("checkpoint", "", "folder of the initial policy (required; verified at configure)"),
        Parameter(
            "policy_cache_dir",
            "",
            f"local mirror of the store's {policy_folder('<version>')}/ (filled by the bag bridge)",
        ),
        Parameter("instruction", "", "instruction until an /episode/event start carries one (warmed up at configure)"),
        Parameter("language_model_path", "", "sentence-transformers folder; '' = the bundled all-MiniLM-L6-v2"),
        Parameter("low_water", 14, "refill the chunk queue at this many steps or fewer [steps]", 0, 1000),
        Parameter("stale_after_s", 0.1, "hold when the oldest input is older than this [s]", 0.001, 10.0),
        Parameter("max_latency_s", 0.25, "drop a chunk whose inference took longer (missed deadline) [s]", 0.001, 10.0),
        Parameter("blend_decay", 0.1, "temporal-ensembling weight exp(-decay x row index) [1/step]", 0.0, 10.0),
        Parameter("blend_ramp_steps", 3, "steps over which a new chunk's weight ramps in [steps]", 0, 1000),
        Parameter("torch_threads", 1, "intra-op threads for inference", 1, 256),
        Parameter("seed", 0, "seed of the sampling noise", 0, 2**31 - 1),
        Parameter("noise_scale", 0.0, "the flow starts from noise_scale x N(0, I); 0 = deterministic", 0.0, 1.0),
        Parameter("arm_max_delta", 0.05, "largest arm-joint change per control step [rad]", 0.0, 1.0),
        Parameter("gripper_max_delta", 0.1, "largest gripper change per control step [normalized 0..1]", 0.0, 1.0),
        Parameter(
            "robot",
            "aloha",
            "robot description whose joint limits bound every command and each checkpoint's statistics",
            choices=tuple(ROBOTS),
        ),
    ],
)


def runtime_config(values: Mapping[str, Any]) -> RuntimeConfig:
    """The realtime inference runtime's settings from ``policy_node``'s parameter values."""
    return RuntimeConfig(
        mode="realtime",
        low_water=values["low_water"],
        stale_after=values["stale_after_s"],
        max_latency=values["max_latency_s"],
        blend_decay=values["blend_decay"],
        blend_ramp=values["blend_ramp_steps"],
        torch_threads=values["torch_threads"],
        seed=values["seed"],
        noise_scale=values["noise_scale"],
    )


def safety_limits(values: Mapping[str, Any]) -> SafetyLimits:
    """Joint and rate limits from ``policy_node``'s parameter values."""
    return robot_limits(robot_description(values["robot"]), values["arm_max_delta"], values["gripper_max_delta"])
