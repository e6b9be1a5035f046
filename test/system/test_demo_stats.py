"""Success intervals, seed-paired comparisons and means over repeated runs of the demo's evaluation."""

import pytest
from lwd_experiment.report import RoundResult, instruction_comparison, paired_table, repeats_table
from lwd_experiment.stats import mean_rate, paired_comparison, student_t_quantile
from lwd_interfaces.success_rate import wilson_rate


def test_wilson_interval_matches_the_textbook_value_and_stays_inside_zero_one():
    half = wilson_rate(5, 10)
    assert (round(half.low, 3), round(half.high, 3)) == (0.237, 0.763)
    assert wilson_rate(0, 10).low == pytest.approx(0.0, abs=1e-12)
    assert wilson_rate(10, 10).high == pytest.approx(1.0)
    assert 0.0 <= wilson_rate(0, 10).low and wilson_rate(10, 10).high <= 1.0
    assert str(wilson_rate(1, 4)) == "25% [5%, 70%] (1/4)"


@pytest.mark.parametrize("successes, trials", [(-1, 3), (4, 3), (0, -1)])
def test_wilson_rejects_impossible_counts(successes, trials):
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_rate(successes, trials)


def test_paired_comparison_counts_discordant_seeds_and_gives_the_exact_mcnemar_p_value():
    pairs = [(True, False)] * 8 + [(False, True)] * 2 + [(True, True)] * 5 + [(False, False)] * 3
    result = paired_comparison(pairs)
    assert (result.only_first, result.only_second, result.both, result.neither) == (8, 2, 5, 3)
    assert result.p_value == pytest.approx(2 * (1 + 10 + 45) / 2**10)
    assert str(result) == "8 vs 2 (p = 0.109)"


def test_paired_comparison_of_agreeing_policies_finds_no_difference():
    assert paired_comparison([(True, True), (False, False)]).p_value == 1.0
    assert paired_comparison([]).p_value == 1.0
    assert paired_comparison([(True, False)] * 10).p_value == pytest.approx(2 / 2**10)
    assert str(paired_comparison([(True, False)] * 12)) == "12 vs 0 (p < 0.001)"


def result_with(outcomes: dict[str, dict[int, bool]]) -> RoundResult:
    return RoundResult(1, "v1", 0, 0, 0, 0, 0, eval_outcomes=outcomes)


def test_rates_come_from_the_per_seed_outcomes():
    result = result_with({"a": {1: True, 2: False}, "b": {1: True, 2: True, 3: True}})
    assert (result.eval_rate.successes, result.eval_rate.trials) == (4, 5)
    assert result.eval_rate_for("a").trials == 2 and result.eval_rate_for("missing").trials == 0


def test_paired_table_pairs_only_seeds_both_arms_completed():
    lwd = result_with({"a": {1: True, 2: True, 3: False}, "b": {1: True, 2: True}})
    baseline = result_with({"a": {1: False, 2: True, 3: True, 4: True}, "b": {1: False}})
    header, _rule, row = paired_table({"lwd": [lwd], "bc": [baseline]}, ("a", "b"))
    assert header == "| lwd vs | a | b | all tasks |"
    assert row == "| bc | 1 vs 1 (p = 1.000) | 1 vs 0 (p = 1.000) | 2 vs 1 (p = 1.000) |"


def test_paired_table_pairs_run_with_run_and_pools_the_pairs_of_every_run():
    lwd = [result_with({"a": {1: True, 2: True}}), result_with({"a": {1: True, 2: False}})]
    baseline = [result_with({"a": {1: False, 2: True}}), result_with({"a": {1: False, 2: True}})]
    _header, _rule, row = paired_table({"lwd": lwd, "bc": baseline}, ("a",))
    assert row == "| bc | 2 vs 1 (p = 1.000) | 2 vs 1 (p = 1.000) |", "seed 2 of run 1 is the only one bc alone solved"
    with pytest.raises(ValueError):
        paired_table({"lwd": lwd, "bc": baseline[:1]}, ("a",))


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_student_t_quantile_matches_the_textbook_table(df, expected):
    assert student_t_quantile(0.95, df) == pytest.approx(expected, abs=5e-4)


def test_mean_rate_is_a_t_interval_across_runs_clipped_to_zero_one():
    three = mean_rate([0.5, 0.6, 0.7])
    half = 4.302653 * 0.1 / 3**0.5
    assert (three.mean, three.runs) == (pytest.approx(0.6), 3)
    assert (three.low, three.high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert str(three) == "60% [35%, 85%] (3 runs)"
    assert (mean_rate([0.9, 1.0]).high, mean_rate([0.0, 0.1]).low) == (1.0, 0.0)
    assert str(mean_rate([0.8, 0.8])) == "80% [80%, 80%] (2 runs)", "identical runs: no spread"
    assert str(mean_rate([0.25])) == "25% (1 run)" and mean_rate([0.25]).low is None
    with pytest.raises(ValueError, match="at least one run"):
        mean_rate([])


def test_repeats_table_gives_each_arm_its_mean_over_runs_per_task_and_with_held_out_instructions():
    runs = [result_with({"a": {1: True, 2: True}, "b": {1: False, 2: False}}) for _ in range(2)]
    runs.append(result_with({"a": {1: True, 2: False}, "b": {1: True, 2: False}}))
    for run in runs:
        run.held_out_instruction_outcomes = {"a": {1: True}, "b": {1: False}}
    single = [result_with({"a": {1: False, 2: False}, "b": {1: True, 2: True}})]
    header, _rule, lwd, bc = repeats_table({"lwd": runs, "bc": single}, ("a", "b"))
    assert header == "| arm | a | b | all tasks | held-out instructions | all tasks per run |"
    a, b, pooled = mean_rate([1.0, 1.0, 0.5]), mean_rate([0.0, 0.0, 0.5]), mean_rate([0.5, 0.5, 0.5])
    assert lwd == f"| lwd | {a} | {b} | {pooled} | {mean_rate([0.5] * 3)} | 50%, 50%, 50% |"
    assert bc == "| bc | 0% (1 run) | 100% (1 run) | 50% (1 run) | - | 50% |", "no held-out evaluation: -"


def test_instruction_comparison_pairs_trained_and_held_out_outcomes_seed_by_seed():
    result = result_with({"a": {1: True, 2: True, 3: False}, "b": {1: False}})
    result.held_out_instruction_outcomes = {"a": {1: True, 2: False, 3: True}, "b": {1: False}}
    comparison = instruction_comparison(result)
    assert (comparison.only_first, comparison.only_second, comparison.both, comparison.neither) == (1, 1, 1, 1)
    assert result.held_out_instruction_rate.trials == 4 and result.held_out_instruction_rate.successes == 2
