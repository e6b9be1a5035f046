"""Success intervals and seed-paired comparisons of the demo's evaluation."""

import pytest
from lwd_experiment.report import RoundResult, paired_table
from lwd_experiment.stats import paired_comparison
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
    header, _rule, row = paired_table({"lwd": lwd, "bc": baseline}, ("a", "b"))
    assert header == "| lwd vs | a | b | all tasks |"
    assert row == "| bc | 1 vs 1 (p = 1.000) | 1 vs 0 (p = 1.000) | 2 vs 1 (p = 1.000) |"
