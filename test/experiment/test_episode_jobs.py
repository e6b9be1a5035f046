"""Episode jobs: held-out instructions are for evaluation only, so no recorded episode ever carries one."""

from __future__ import annotations

import pytest
from lwd_experiment.sim_robot import EpisodeJob, check_episode_kind


def test_held_out_instructions_are_refused_for_recorded_episodes():
    assert EpisodeJob("insertion", 7, "evaluation", instructions="held_out").instructions == "held_out"
    for mode in ("demonstration", "deployment"):
        with pytest.raises(ValueError, match=f"held_out instructions are for evaluation only, not {mode}"):
            EpisodeJob("insertion", 7, mode, instructions="held_out")
        assert EpisodeJob("insertion", 7, mode).instructions == "trained"


@pytest.mark.parametrize(
    "mode, instructions, message",
    [("training", "trained", "mode must be one of"), ("evaluation", "novel", "instructions must be one of")],
)
def test_unknown_modes_and_instruction_sets_are_refused(mode, instructions, message):
    with pytest.raises(ValueError, match=message):
        check_episode_kind(mode, instructions)


def test_a_replay_names_the_demonstration_it_replays_and_no_other_mode_does():
    assert EpisodeJob("insertion", 7, "replay", replay_of=3).replay_of == 3
    with pytest.raises(ValueError, match="replay_of names the replayed demonstration's seed"):
        EpisodeJob("insertion", 7, "replay")
    for mode in ("demonstration", "deployment", "evaluation"):
        with pytest.raises(ValueError, match="for replays only"):
            EpisodeJob("insertion", 7, mode, replay_of=3)
