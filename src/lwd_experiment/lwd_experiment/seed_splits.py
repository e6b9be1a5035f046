"""The episode seeds of every experiment, in four disjoint ranges: the one home of which seed is for what.

A seed fixes an episode's scene (object poses) and its instruction paraphrase, so a seed range is a data
split. Settings chosen on the seeds a number is reported on make that number optimistic; the splits keep
training, tuning and reporting apart:

- ``demonstration`` and ``fleet``: the episodes the policies train on (scripted demonstrations, then the
  fleet's deployments, round after round);
- ``validation``: every study that picks a setting (``bench/bc_ablation.py``, ``bench/offline_learner.py``,
  ``bench/policy_eval.py``, ``bench/takeovers.py``, ``bench/paired.py``, ``bench/bc_fit.py``) and the
  demo's per-round evaluations between the base and the final policy, which are what one looks at to
  choose rounds, updates or a learner's settings;
- ``test``: only the evaluations that are reported, the base and the final policy of ``lwd demo``
  (``make demo``) and of ``bench/learning.py``.

The validation range is the old held-out range (900000..): every setting chosen before the splits existed
(λ, the data mix, ``noise_scale``, ``low_water``, ``object_slots``) was chosen on it, so it cannot serve as
the test split. The test range starts at 1000000, seeds no run had used before.

:func:`split_seeds` is the only way to a split's seeds, and it serves the test split only to
:data:`TEST_SPLIT_ENTRY_POINTS`: a tuning study that asks for it gets :class:`SplitError`
(``test/experiment/test_seed_splits.py`` also checks every bench script).
"""

from __future__ import annotations

import sys
from typing import Literal

EvaluationSplit = Literal["validation", "test"]
EVALUATION_SPLITS: tuple[EvaluationSplit, ...] = ("validation", "test")
"""The splits an evaluation takes by name."""

SPLITS: dict[str, range] = {
    "demonstration": range(1_000, 100_000),
    "fleet": range(100_000, 900_000),
    "validation": range(900_000, 1_000_000),
    "test": range(1_000_000, 1_100_000),
}
"""Each split's seeds; pairwise disjoint."""

TEST_SPLIT_ENTRY_POINTS = ("lwd/commands/demo.py", "bench/learning.py")
"""The programs that report results, by the end of their file path: only code they call reaches the test split."""


class SplitError(ValueError):
    """A split that does not exist, more seeds than it holds, or the test split asked for by a tuning study."""


def split_seeds(split: str, count: int, offset: int = 0) -> range:
    """``count`` seeds of ``split``, skipping its first ``offset``.

    The test split is served only while one of :data:`TEST_SPLIT_ENTRY_POINTS` is on the call stack, so no
    study that tunes a setting can measure on it, whichever path its split name takes.
    """
    if split not in SPLITS:
        raise SplitError(f"unknown seed split {split!r}; valid splits are {sorted(SPLITS)}")
    seeds = SPLITS[split]
    if count < 0 or offset < 0 or offset + count > len(seeds):
        raise SplitError(f"split {split} holds {len(seeds)} seeds; asked for {count} from offset {offset}")
    if split == "test" and not _called_from_test_entry_point():
        raise SplitError(
            "the test split is reserved for the reported evaluations of "
            f"{' and '.join(TEST_SPLIT_ENTRY_POINTS)}; studies that choose settings use 'validation'"
        )
    return seeds[offset : offset + count]


def _called_from_test_entry_point() -> bool:
    """Whether a frame of the current call stack runs code of one of the test split's entry points."""
    frame = sys._getframe(1)
    while frame is not None:
        path = "/" + frame.f_code.co_filename.replace("\\", "/")
        if path.endswith(tuple("/" + entry for entry in TEST_SPLIT_ENTRY_POINTS)):
            return True
        frame = frame.f_back
    return False
