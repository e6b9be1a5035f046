"""One learner arm's run on a prepared BC base, as ``bench/learning.py`` repeats it: resumable, since a finished
arm is read back from its report rather than run again (nor its base prepared)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from lwd_experiment.demo_loop import DemoLoop
from lwd_experiment.learner_arms import LearnerArm
from lwd_experiment.presets import DemoPreset
from lwd_experiment.report import RoundResult
from lwd_experiment.seed_splits import EvaluationSplit


@dataclass(frozen=True)
class ArmRun:
    """One learner arm of one run: its preset, learner settings, training seed and evaluation split."""

    preset: DemoPreset
    learner: LearnerArm
    run: int
    split: EvaluationSplit

    def finished(self, run_dir: Path) -> list[RoundResult] | None:
        """The arm's rounds read back from its report in ``run_dir/<arm>`` when an earlier invocation finished it
        (ValueError when that one had other settings), else None. A finished arm needs no base."""
        folder = run_dir / self.learner.name
        settings = folder / "arm.json"
        results = folder / "report" / "results.json"
        if not results.is_file():
            return None
        if not settings.is_file() or json.loads(settings.read_text()) != self.settings():
            raise ValueError(f"{folder} finished with other settings ({settings}); choose another --work-dir")
        print(f"reusing the finished arm {folder}")
        return [RoundResult.from_json(data) for data in json.loads(results.read_text())]

    def run_from(self, base: Path, run_dir: Path, base_evaluation: RoundResult | None) -> list[RoundResult]:
        """Run the arm on ``base`` in ``run_dir/<arm>`` (anew, when an earlier invocation left it unfinished),
        sharing the learner cache ``run_dir/cache`` with the run's other arms."""
        folder = run_dir / self.learner.name
        if folder.exists():
            print(f"{folder} is unfinished: running the arm again from its base")
            shutil.rmtree(folder)
        link_store(base / "fleet", folder / "fleet")
        for part in ("pretrained", "keys"):
            shutil.copytree(base / part, folder / part)
        (folder / "arm.json").write_text(json.dumps(self.settings(), indent=2) + "\n")
        loop = DemoLoop(
            self.preset, folder, arm=self.learner, training_seed=self.run, split=self.split, cache_dir=run_dir / "cache"
        )
        loop.deploy(base=base_evaluation)
        return loop.rounds

    def settings(self) -> dict:
        """What makes a finished arm reusable: the same preset, learner, seed and split."""
        chosen = {"preset": asdict(self.preset), "learner": asdict(self.learner), "run": self.run, "split": self.split}
        return json.loads(json.dumps(chosen))


def link_store(source: Path, target: Path) -> None:
    """Give ``target`` the fleet store ``source`` holds, its files hard-linked (copied across file systems).

    Sharing is safe because a store never rewrites a file it holds: new episodes get new keys (an upload resumes
    only its own partial file), and manifests and channel pointers are replaced by a rename, which leaves the other
    store's link as it was. A run's arms thus share its base's demonstrations (gigabytes from pixels) instead of
    each copying them."""
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
