"""Stage reward and success detection (gym-aloha's rules), on contact sets and in the simulator."""

from __future__ import annotations

import mujoco
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator
from lwd_sim.tasks import LEFT_FINGER, RIGHT_FINGER, insertion_stage, transfer_cube_stage


def test_transfer_cube_stages():
    assert transfer_cube_stage(frozenset({("red_box", "table")})) == 0
    assert transfer_cube_stage(frozenset({("red_box", "table"), ("red_box", RIGHT_FINGER)})) == 1
    assert transfer_cube_stage(frozenset({(RIGHT_FINGER, "red_box")})) == 2
    assert transfer_cube_stage(frozenset({("red_box", LEFT_FINGER), ("red_box", "table")})) == 3
    assert transfer_cube_stage(frozenset({("red_box", LEFT_FINGER), ("red_box", RIGHT_FINGER)})) == 4


def test_insertion_stages():
    on_table = {("red_peg", "table"), ("socket-1", "table")}
    both = {("red_peg", RIGHT_FINGER), ("socket-3", LEFT_FINGER)}
    assert insertion_stage(frozenset(on_table)) == 0
    assert insertion_stage(frozenset(on_table | both)) == 1
    assert insertion_stage(frozenset(both)) == 2
    assert insertion_stage(frozenset(both | {("red_peg", "socket-2")})) == 3
    assert insertion_stage(frozenset({("red_peg", "pin")})) == 4
    assert insertion_stage(frozenset(both | {("red_peg", "socket-2"), ("red_peg", "table")})) == 1


def test_success_is_detected_when_the_left_arm_holds_the_cube_and_not_otherwise():
    driver = AlohaSimDriver("transfer_cube", cameras=[])
    operator = ScriptedOperator(seed=0)
    driver.reset(11)
    assert driver.stage_reward == 0 and not driver.success
    demo = operator.demonstrate(driver, 11, max_steps=300)
    assert demo.success and driver.success and driver.stage_reward == driver.max_stage
    assert 2 in demo.stages, "the cube was lifted by the right arm before the hand-over"
    address = int(driver.model.jnt_qposadr[driver.model.body("box").jntadr[0]])
    driver.data.qpos[address : address + 7] = [0.1, 0.5, 0.02, 1.0, 0.0, 0.0, 0.0]
    driver.data.qvel[:] = 0.0
    mujoco.mj_forward(driver.model, driver.data)
    assert driver.stage_reward == 0 and not driver.success, "cube back on the table, away from the grippers"
