"""Success intervals, seed-paired comparisons and means over repeated runs of the demo's evaluation."""

import pytest
from lwd_experiment.report import (
    RoundResult,
    gain_table,
    instruction_comparison,
    paired_table,
    per_task_repeats_table,
    repeats_table,
    write_report,
)
from lwd_experiment.stats import mean_gain, mean_rate, paired_comparison, student_t_quantile
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
    return RoundResult(1, "v1", 0, 0, 0, eval_outcomes=outcomes)


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


def test_mean_gain_is_a_signed_unclipped_t_interval_across_runs():
    gain = mean_gain([0.30, 0.20, 0.25])
    half = 4.302653 * 0.05 / 3**0.5
    assert (gain.low, gain.high) == (pytest.approx(0.25 - half), pytest.approx(0.25 + half))
    assert str(gain) == "+25 points [+13, +37] (3 runs)"
    assert mean_gain([-0.9, 0.9]).low < -1.0, "a difference is not clipped to [0, 1]"
    assert str(mean_gain([-0.05])) == "-5 points (1 run)" and mean_gain([-0.05]).high is None
    with pytest.raises(ValueError, match="at least one run"):
        mean_gain([])


def test_gain_table_subtracts_run_from_run_so_a_shared_base_cancels():
    """Two runs whose bases differ by 50 points: each run's gain is +50, so the interval has no spread, where the
    arms' own means across runs overlap completely."""
    lwd = [result_with({"a": {1: True, 2: True}}), result_with({"a": {1: True, 2: False}})]
    bc = [result_with({"a": {1: True, 2: False}}), result_with({"a": {1: False, 2: False}})]
    header, _rule, row = gain_table({"lwd": lwd, "bc": bc}, ("a",))
    assert header == "| lwd minus | a | all tasks | all tasks per run |"
    assert row == "| bc | +50 points [+50, +50] (2 runs) | +50 points [+50, +50] (2 runs) | +50, +50 |"
    assert mean_rate([1.0, 0.5]).low < mean_rate([0.5, 0.0]).high, "the arms' own intervals overlap"
    with pytest.raises(ValueError):
        gain_table({"lwd": lwd, "bc": bc[:1]}, ("a",))


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


def suite_result(round_index: int) -> RoundResult:
    """A round of three tasks, one of them long (15 stages), with stages, fleet and held-out outcomes."""
    result = result_with({"a": {1: True, 2: False}, "b": {1: False, 2: False}, "long": {1: False, 2: False}})
    result.round_index = round_index
    result.eval_stages = {"a": {1: 4, 2: 2}, "b": {1: 0, 2: 1}, "long": {1: 6, 2: 3}}
    result.max_stages = {"a": 4, "b": 4, "long": 15}
    result.fleet_outcomes = {"a": {7: True}, "b": {8: False, 9: True}, "long": {10: False}}
    result.held_out_instruction_outcomes = {"a": {1: False}, "b": {1: True}, "long": {1: False}}
    return result


def test_stage_progress_is_the_mean_best_stage_over_the_tasks_own_stages():
    result = suite_result(1)
    assert result.stage_progress_for("long") == pytest.approx(4.5 / 15)
    assert result.stage_cell("long") == "4.5/15 (30%)" and result.stage_cell("a") == "3.0/4 (75%)"
    assert result.stage_progress_for("missing") is None and result.stage_cell("missing") == "-"
    assert str(result.fleet_rate_for("b")).endswith("(1/2)") and str(result.held_out_rate_for("b")).endswith("(1/1)")


def test_the_report_gives_every_task_its_success_stages_held_out_and_fleet_rows_and_plots(tmp_path):
    rounds = [suite_result(0), suite_result(1)]
    rounds[0].fleet_outcomes = {}
    rounds[0].held_out_instruction_outcomes = {}
    text = write_report(tmp_path, "suite", rounds, []).read_text()
    assert "| round | task | success, no operator | mean best stage | held-out instructions | fleet success |" in text
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in text.splitlines()}
    assert {("0", task) for task in ("a", "b", "long")} | {("1", task) for task in ("a", "b", "long")} <= set(rows)
    long_final = rows[("1", "long")].split(" | ")
    assert long_final[2].endswith("(0/2)") and long_final[3] == "4.5/15 (30%)"
    assert long_final[4].endswith("(0/1)") and long_final[5].endswith("(0/1) |")
    assert rows[("0", "b")].endswith("| - | - |"), "round 0 ran no fleet and no held-out evaluation"
    for name in ("success.png", "stages.png", "interventions.png"):
        assert (tmp_path / name).stat().st_size > 0 and f"({name})" in text


def test_per_task_repeats_table_gives_each_arm_and_task_its_mean_success_held_out_and_stages():
    runs = [suite_result(1), suite_result(1)]
    runs[1].eval_stages = {"a": {1: 4, 2: 4}, "b": {1: 0, 2: 0}, "long": {1: 15, 2: 0}}
    frozen = [suite_result(1)]
    frozen[0].held_out_instruction_outcomes = {}
    frozen[0].eval_stages = {}
    header, _rule, *rows = per_task_repeats_table({"lwd": runs, "bc": frozen}, ("a", "long"))
    assert header == "| arm | task | success | held-out instructions | mean best stage / max stage |"
    assert rows[1] == f"| lwd | long | {mean_rate([0.0, 0.0])} | {mean_rate([0.0, 0.0])} | {mean_rate([0.3, 0.5])} |"
    assert rows[2] == "| bc | a | 50% (1 run) | - | - |", "not evaluated with held-out instructions or stages: -"
    assert len(rows) == 4
