"""docs/parameters.md, rendered from the nodes' parameter tables: ``python -m lwd.parameter_reference``.

The tables are the one source of every node parameter; the test suite checks that the page and
``config/<node>.yaml`` agree with them.
"""

from __future__ import annotations

from lwd_interfaces.parameters import ParameterTable, markdown_table
from lwd_intervention.parameters import INTERVENTION_NODE, KEYBOARD_TELEOP
from lwd_learner.parameters import TRAINER_NODE
from lwd_logger.parameters import BRIDGE_NODE, RECORDER_NODE
from lwd_policy.parameters import POLICY_NODE
from lwd_sim.parameters import SIM_DRIVER

NODE_TABLES: tuple[ParameterTable, ...] = (
    POLICY_NODE,
    INTERVENTION_NODE,
    KEYBOARD_TELEOP,
    RECORDER_NODE,
    BRIDGE_NODE,
    SIM_DRIVER,
    TRAINER_NODE,
)
"""Every node's parameter table, in the order the reference lists them."""


def render() -> str:
    """The whole reference page."""
    header = (
        "# Node parameters\n\n"
        "Generated from the nodes' parameter tables (`*/parameters.py`) by `python -m lwd.parameter_reference`;\n"
        "a test fails when this page, `config/<node>.yaml` or a node disagrees with them. Every parameter is\n"
        "read-only: change it in the YAML (or the launch arguments) and restart the node.\n"
    )
    return header + "".join("\n" + markdown_table(table) for table in NODE_TABLES)


if __name__ == "__main__":
    print(render(), end="")
