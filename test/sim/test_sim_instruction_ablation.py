"""The semantic task's fixed-instruction ablation: ignoring the instruction gets pick_colour right only by chance.

``pick_colour`` shows a red and a blue cube and its instruction names the one to hand over, drawn from the
seed. An operator that always moves the red cube (its plan fixed, the words ignored) must solve exactly the
seeds that name red, about half, while the operator that follows the instruction solves them all. Validation
seeds only (``lwd_experiment.seed_splits``): this measures a task, it tunes nothing.
"""

from __future__ import annotations

from math import comb

from lwd_experiment.seed_splits import split_seeds
from lwd_interfaces.success_rate import wilson_rate
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator_trials import demonstration_episodes, fixed_target_episodes
from lwd_sim.tasks import PICK_COLOURS

SEEDS = 20


def chance_bounds(trials: int, probability: float, level: float = 0.99) -> tuple[int, int]:
    """The central ``level`` range of successes of ``trials`` independent coin flips of ``probability``."""
    pmf = [comb(trials, k) * probability**k * (1 - probability) ** (trials - k) for k in range(trials + 1)]
    tail = (1 - level) / 2
    low = next(k for k in range(trials + 1) if sum(pmf[: k + 1]) > tail)
    high = next(k for k in reversed(range(trials + 1)) if sum(pmf[k:]) > tail)
    return low, high


def named_targets(seeds: list[int]) -> dict[int, str]:
    """The cube each seed's instruction names."""
    driver = AlohaSimDriver("pick_colour", cameras=[])
    named = {}
    for seed in seeds:
        driver.reset(seed)
        named[seed] = driver.target
    driver.close()
    return named


def test_an_instruction_blind_operator_solves_only_the_seeds_naming_its_cube_and_the_follower_solves_all():
    seeds = list(split_seeds("validation", SEEDS))
    red_seeds = {seed for seed, target in named_targets(seeds).items() if target == "red"}
    assert 0 < len(red_seeds) < SEEDS, "the validation seeds name both colours"

    blind = fixed_target_episodes("pick_colour", seeds, "red")
    following = demonstration_episodes("pick_colour", seeds)

    assert {outcome.seed for outcome in blind if outcome.success} == red_seeds, "blind: exactly the red seeds"
    solved = len(red_seeds)
    low, high = chance_bounds(SEEDS, 1 / len(PICK_COLOURS))
    assert low <= solved <= high, f"{solved}/{SEEDS} outside the 99% chance range [{low}, {high}]"
    blind_rate = wilson_rate(solved, SEEDS)
    assert blind_rate.low <= 1 / len(PICK_COLOURS) <= blind_rate.high, f"blind {blind_rate} excludes chance"
    assert all(outcome.success for outcome in following), "the instruction-following operator solves every seed"
    assert wilson_rate(SEEDS, SEEDS).low > blind_rate.high, "following the instruction beats chance"
