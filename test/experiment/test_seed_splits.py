"""The seed splits: disjoint ranges, and the test split out of reach of every study that tunes a setting."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from lwd_experiment.seed_splits import SPLITS, TEST_SPLIT_ENTRY_POINTS, SplitError, split_seeds

REPO = Path(__file__).resolve().parents[2]
TUNING_BENCHES = sorted(
    path for path in (REPO / "bench").glob("*.py") if not str(path).endswith(TEST_SPLIT_ENTRY_POINTS)
)


def seeds_asked_from(filename: str, split: str) -> range:
    """``split_seeds(split, 2)`` as code of ``filename`` calls it (the guard reads the caller's file)."""
    code = compile(f"split_seeds({split!r}, 2)", filename, "eval")
    return eval(code, {"split_seeds": split_seeds})


def test_the_splits_are_pairwise_disjoint():
    for (first, a), (second, b) in itertools.combinations(SPLITS.items(), 2):
        assert a.stop <= b.start or b.stop <= a.start, f"{first} and {second} overlap"
    assert set(SPLITS) == {"demonstration", "fleet", "validation", "test"}


def test_split_seeds_counts_from_the_start_of_a_split_after_an_offset():
    assert split_seeds("validation", 3) == range(900_000, 900_003), "validation is the old held-out range"
    assert split_seeds("fleet", 2, offset=4) == range(SPLITS["fleet"].start + 4, SPLITS["fleet"].start + 6)
    assert len(split_seeds("demonstration", 0)) == 0


@pytest.mark.parametrize(
    "split, count, offset, message",
    [
        ("holdout", 1, 0, "unknown seed split 'holdout'"),
        ("validation", len(SPLITS["validation"]) + 1, 0, "holds 100000 seeds"),
        ("fleet", 1, len(SPLITS["fleet"]), "holds 800000 seeds"),
        ("fleet", -1, 0, "asked for -1"),
    ],
)
def test_split_seeds_refuses_unknown_splits_and_seeds_beyond_a_split(split, count, offset, message):
    with pytest.raises(SplitError, match=message):
        split_seeds(split, count, offset)


def test_the_test_split_is_refused_outside_its_entry_points():
    with pytest.raises(SplitError, match=r"test split is reserved .* use 'validation'"):
        split_seeds("test", 1)


@pytest.mark.parametrize("entry_point", TEST_SPLIT_ENTRY_POINTS)
def test_the_test_split_is_served_to_the_programs_that_report_results(entry_point):
    candidates = [REPO / entry_point, *REPO.glob(f"src/*/{entry_point}")]
    assert any(path.is_file() for path in candidates), f"{entry_point} names no file: the allow-list is stale"
    assert seeds_asked_from(f"/anywhere/{entry_point}", "test") == SPLITS["test"][:2]


@pytest.mark.parametrize("bench", TUNING_BENCHES, ids=lambda path: path.name)
def test_no_tuning_bench_reaches_the_test_split(bench):
    with pytest.raises(SplitError, match="test split is reserved"):
        seeds_asked_from(str(bench), "test")
    assert seeds_asked_from(str(bench), "validation") == split_seeds("validation", 2)
    tree = ast.parse(bench.read_text(), str(bench))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            assert node.value not in SPLITS["test"], f"{bench.name}:{node.lineno} holds a test seed"
        if isinstance(node, ast.Call):
            for value in call_arguments(node):
                assert value != "test", f"{bench.name}:{node.lineno} passes the test split to {ast.unparse(node.func)}"


def call_arguments(call: ast.Call) -> list[object]:
    """The constant arguments of a call, with the elements of literal lists, tuples and sets (argparse choices)."""
    values = []
    for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
        elements = argument.elts if isinstance(argument, ast.List | ast.Tuple | ast.Set) else [argument]
        values += [element.value for element in elements if isinstance(element, ast.Constant)]
    return values
