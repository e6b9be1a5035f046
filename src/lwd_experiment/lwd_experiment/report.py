"""The demo's report folder: per-round success with 95% intervals, plots, a Markdown summary, JSON; and the
tables that compare learner arms, seed by seed and across repeated runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from lwd_interfaces.success_rate import Rate, wilson_rate

from lwd_experiment.stats import PairedComparison, mean_gain, mean_rate, paired_comparison

_PER_SEED_FIELDS = ("eval_outcomes", "held_out_instruction_outcomes", "eval_stages", "fleet_outcomes")


@dataclass
class RoundResult:
    """What one deployment round measured: the policy it ran, fleet outcomes, evaluation with no operator.

    ``eval_outcomes`` maps each task to the success of each evaluation seed (of the seed split
    ``eval_split``, trained instructions), so that two policies evaluated on the same seeds can be compared
    seed by seed. ``held_out_instruction_outcomes`` is the same for instructions no episode was recorded with,
    on seeds of the same split; only the final policy of a run is evaluated that way. ``eval_stages`` holds each
    evaluation seed's best stage reward, of the task's ``max_stages``, so partial progress on a long task shows
    where success does not; ``fleet_outcomes`` is each task's fleet success per seed (operator allowed).
    """

    round_index: int
    policy_version: str
    fleet_interventions: int
    fleet_intervention_steps: int
    fleet_steps: int
    eval_outcomes: dict[str, dict[int, bool]] = field(default_factory=dict)
    eval_split: str = "validation"
    held_out_instruction_outcomes: dict[str, dict[int, bool]] = field(default_factory=dict)
    cycle_time_s: float = 0.0
    trainer_updates: int = 0
    turnaround_s: dict[str, float] = field(default_factory=dict)
    """Per robot: seconds from the end of the newest episode this version trained on to the start of the robot's
    first episode on it (robots hot-swap between episodes, so that is always their next episode)."""
    eval_stages: dict[str, dict[int, int]] = field(default_factory=dict)
    max_stages: dict[str, int] = field(default_factory=dict)
    fleet_outcomes: dict[str, dict[int, bool]] = field(default_factory=dict)

    @property
    def fleet_successes(self) -> int:
        """Fleet episodes that succeeded (operator interventions allowed), all tasks."""
        return sum(sum(outcomes.values()) for outcomes in self.fleet_outcomes.values())

    @property
    def fleet_episodes(self) -> int:
        """Fleet episodes run, all tasks."""
        return sum(len(outcomes) for outcomes in self.fleet_outcomes.values())

    @property
    def fleet_rate(self) -> Rate:
        """Success of the deployed fleet (operator interventions allowed)."""
        return wilson_rate(self.fleet_successes, self.fleet_episodes)

    def as_json(self) -> dict:
        """The round as results.json stores it: every field, plus the fleet's pooled counts."""
        return {**asdict(self), "fleet_successes": self.fleet_successes, "fleet_episodes": self.fleet_episodes}

    @classmethod
    def from_json(cls, data: dict) -> RoundResult:
        """The round that ``as_json`` stored (JSON's string seeds turned back into ints)."""
        values = {field.name: data[field.name] for field in fields(cls) if field.name in data}
        for name in _PER_SEED_FIELDS:
            values[name] = {
                task: {int(seed): value for seed, value in seeds.items()} for task, seeds in data[name].items()
            }
        return cls(**values)

    @property
    def eval_rate(self) -> Rate:
        """Success on the evaluation seeds with no interventions, all tasks pooled."""
        return _pooled_rate(self.eval_outcomes)

    def eval_rate_for(self, task: str) -> Rate:
        """Evaluation success on one task."""
        outcomes = self.eval_outcomes.get(task, {})
        return wilson_rate(sum(outcomes.values()), len(outcomes))

    def held_out_rate_for(self, task: str) -> Rate:
        """Success with held-out instructions on one task (0 trials when not evaluated)."""
        outcomes = self.held_out_instruction_outcomes.get(task, {})
        return wilson_rate(sum(outcomes.values()), len(outcomes))

    def fleet_rate_for(self, task: str) -> Rate:
        """Success of the deployed fleet on one task (operator interventions allowed)."""
        outcomes = self.fleet_outcomes.get(task, {})
        return wilson_rate(sum(outcomes.values()), len(outcomes))

    def stage_progress_for(self, task: str) -> float | None:
        """Mean over the evaluation seeds of the best stage reached, as a fraction of the task's max stage
        (None when the task's stages were not recorded)."""
        stages = self.eval_stages.get(task, {})
        if not stages or not self.max_stages.get(task):
            return None
        return sum(stages.values()) / len(stages) / self.max_stages[task]

    def stage_cell(self, task: str) -> str:
        """The task's stage progress for a table: "mean best stage/max stage (fraction)", "-" when unknown."""
        progress = self.stage_progress_for(task)
        if progress is None:
            return "-"
        return f"{progress * self.max_stages[task]:.1f}/{self.max_stages[task]} ({progress:.0%})"

    @property
    def held_out_instruction_rate(self) -> Rate:
        """Success with held-out instructions, all tasks pooled (0 trials when not evaluated)."""
        return _pooled_rate(self.held_out_instruction_outcomes)

    @property
    def intervention_rate(self) -> float:
        """Fraction of fleet control steps run by the operator."""
        return self.fleet_intervention_steps / self.fleet_steps if self.fleet_steps else 0.0


def _pooled_rate(outcomes: dict[str, dict[int, bool]]) -> Rate:
    pooled = [outcome for per_seed in outcomes.values() for outcome in per_seed.values()]
    return wilson_rate(sum(pooled), len(pooled))


def instruction_comparison(result: RoundResult) -> PairedComparison:
    """Trained against held-out instructions, seed by seed: the same policy and scenes, only the words differ."""
    pairs = [
        pair
        for task, held_out in result.held_out_instruction_outcomes.items()
        for pair in _pairs(result.eval_outcomes.get(task, {}), held_out)
    ]
    return paired_comparison(pairs)


def write_report(folder: Path, title: str, rounds: list[RoundResult], notes: list[str]) -> Path:
    """Write summary.md, results.json and the PNG plots into ``folder``; return the summary path.

    The rounds table gives pooled and per-task success; the per-task table gives, for every round and task,
    success with no operator, the mean best stage, success with held-out instructions and the fleet's success.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps([r.as_json() for r in rounds], indent=2) + "\n")
    tasks = sorted({task for r in rounds for task in r.eval_outcomes})
    _plot_success(folder / "success.png", rounds, tasks)
    _plot_stages(folder / "stages.png", rounds, tasks)
    _plot_interventions(folder / "interventions.png", rounds)
    lines = [f"# {title}", "", *notes, ""]
    header = [
        "round",
        "policy",
        "seeds",
        "success, no operator (95% CI)",
        *[f"{t}" for t in tasks],
        "held-out instructions",
        "fleet success (previous policy, with operator)",
        "interventions/ep",
        "turnaround s (slowest robot)",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rounds:
        per_task = [str(r.eval_rate_for(t)) for t in tasks]
        per_episode = r.fleet_interventions / r.fleet_episodes if r.fleet_episodes else 0.0
        fleet = str(r.fleet_rate) if r.fleet_episodes else "-"
        turnaround = f"{max(r.turnaround_s.values()):.1f}" if r.turnaround_s else "-"
        held_out = str(r.held_out_instruction_rate) if r.held_out_instruction_outcomes else "-"
        row = [
            str(r.round_index),
            r.policy_version,
            r.eval_split,
            str(r.eval_rate),
            *per_task,
            held_out,
            fleet,
            f"{per_episode:.2f}",
            turnaround,
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "Per task: success with no operator, mean best stage reached (of the task's stages), success with "
        "held-out instructions, fleet success with the operator",
        "",
        *per_task_round_table(rounds, tasks),
    ]
    lines += [
        "",
        "![success per round](success.png)",
        "",
        "![stage progress per round](stages.png)",
        "",
        "![interventions per round](interventions.png)",
    ]
    if (folder / "before.gif").exists() and (folder / "after.gif").exists():
        lines += ["", "Before training: ![before](before.gif) After training: ![after](after.gif)"]
    summary = folder / "summary.md"
    summary.write_text("\n".join(lines) + "\n")
    return summary


def per_task_round_table(rounds: list[RoundResult], tasks: list[str]) -> list[str]:
    """Markdown rows, one per round and task: evaluation success, mean best stage, held-out instruction success
    and fleet success on that task ("-" for what the round did not measure)."""
    header = ["round", "task", "success, no operator", "mean best stage", "held-out instructions", "fleet success"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rounds:
        for task in tasks:
            held_out = str(r.held_out_rate_for(task)) if task in r.held_out_instruction_outcomes else "-"
            fleet = str(r.fleet_rate_for(task)) if r.fleet_outcomes.get(task) else "-"
            row = [str(r.round_index), task, str(r.eval_rate_for(task)), r.stage_cell(task), held_out, fleet]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def paired_table(finals: dict[str, Sequence[RoundResult]], tasks: tuple[str, ...]) -> list[str]:
    """Markdown rows comparing the first arm with each other arm seed by seed, per task and pooled.

    Each arm has one result per run; run ``i`` of one arm is paired with run ``i`` of the other (the same
    base policy), and the pairs of every run are pooled. A cell reads "a vs b (p = ...)": a (run, seed)
    pairs only the first arm solved, b only the other, and the two-sided exact McNemar p-value. Only seeds
    both arms completed are paired. Pooling runs treats each run's seeds as new trials: the p-value covers
    seed variance, while the across-run interval of :func:`repeats_table` covers training variance.
    """
    (reference, first), *others = finals.items()
    header = [f"{reference} vs", *tasks, "all tasks"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, other in others:
        pairs = {
            task: [pair for a, b in zip(first, other, strict=True) for pair in _paired_outcomes(a, b, task)]
            for task in tasks
        }
        pooled = [pair for task in tasks for pair in pairs[task]]
        cells = [str(paired_comparison(pairs[task])) for task in tasks]
        cells.append(str(paired_comparison(pooled)))
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return lines


def repeats_table(finals: dict[str, Sequence[RoundResult]], tasks: tuple[str, ...]) -> list[str]:
    """Markdown rows of each arm's mean success over its runs, per task, pooled and with held-out instructions.

    A cell is the mean of the runs' success rates with a 95% Student-t interval across runs
    (:func:`lwd_experiment.stats.mean_rate`), so it covers what changes from one training run to the next;
    the last column lists every run's pooled rate. "-" where a run was not evaluated with held-out instructions.
    """
    header = ["arm", *tasks, "all tasks", "held-out instructions", "all tasks per run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in finals.items():
        cells = [str(mean_rate([run.eval_rate_for(task).value for run in runs])) for task in tasks]
        cells.append(str(mean_rate([run.eval_rate.value for run in runs])))
        evaluated = all(run.held_out_instruction_outcomes for run in runs)
        cells.append(str(mean_rate([run.held_out_instruction_rate.value for run in runs])) if evaluated else "-")
        cells.append(", ".join(f"{run.eval_rate.value:.0%}" for run in runs))
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return lines


def gain_table(finals: dict[str, Sequence[RoundResult]], tasks: tuple[str, ...]) -> list[str]:
    """Markdown rows of the first arm's success minus each other arm's, run by run, per task and pooled.

    Run i of every arm starts from run i's base and runs on the same seeds, so the base's variance cancels in the
    difference. A cell is the mean difference with a 95% Student-t interval across runs
    (:func:`lwd_experiment.stats.mean_gain`); the last column lists every run's pooled difference.
    """
    (reference, first), *others = finals.items()
    header = [f"{reference} minus", *tasks, "all tasks", "all tasks per run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, other in others:
        runs = list(zip(first, other, strict=True))
        pooled = [a.eval_rate.value - b.eval_rate.value for a, b in runs]
        cells = [
            str(mean_gain([a.eval_rate_for(task).value - b.eval_rate_for(task).value for a, b in runs]))
            for task in tasks
        ]
        cells += [str(mean_gain(pooled)), ", ".join(f"{gain * 100:+.0f}" for gain in pooled)]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return lines


def per_task_repeats_table(finals: dict[str, Sequence[RoundResult]], tasks: tuple[str, ...]) -> list[str]:
    """Markdown rows, one per arm and task: the mean over runs of the success rate, of the success rate with
    held-out instructions ("-" where a run was not evaluated so) and of the best stage reached as a fraction of
    the task's stages ("-" where not recorded), each with its 95% Student-t interval across runs."""
    header = ["arm", "task", "success", "held-out instructions", "mean best stage / max stage"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in finals.items():
        for task in tasks:
            held_out = [run.held_out_rate_for(task) for run in runs]
            stages = [run.stage_progress_for(task) for run in runs]
            cells = [
                str(mean_rate([run.eval_rate_for(task).value for run in runs])),
                str(mean_rate([rate.value for rate in held_out])) if all(r.trials for r in held_out) else "-",
                str(mean_rate(stages)) if None not in stages else "-",
            ]
            lines.append("| " + " | ".join([name, task, *cells]) + " |")
    return lines


def _paired_outcomes(first: RoundResult, second: RoundResult, task: str) -> list[tuple[bool, bool]]:
    """Both results' outcomes on each evaluation seed of ``task`` that both completed."""
    return _pairs(first.eval_outcomes.get(task, {}), second.eval_outcomes.get(task, {}))


def _pairs(a: dict[int, bool], b: dict[int, bool]) -> list[tuple[bool, bool]]:
    """``(a, b)`` outcome pairs on each seed both hold, seeds in order."""
    return [(a[seed], b[seed]) for seed in sorted(a.keys() & b.keys())]


def _plot_success(path: Path, rounds: list[RoundResult], tasks: list[str]) -> None:
    """Left: pooled success per round with 95% intervals and the fleet's; right: each task's success per round."""
    figure, (axis, per_task) = plt.subplots(1, 2, figsize=(11, 3.8))
    for split, marker in (("validation", "o"), ("test", "D")):
        evaluated = [r for r in rounds if r.eval_split == split]
        if not evaluated:
            continue
        rates = [r.eval_rate for r in evaluated]
        axis.errorbar(
            [r.round_index for r in evaluated],
            [q.value for q in rates],
            yerr=[[q.value - q.low for q in rates], [q.high - q.value for q in rates]],
            marker=marker,
            linestyle="none",
            capsize=4,
            label=f"{split} seeds, no interventions",
        )
    fleet = [(r.round_index, r.fleet_rate.value) for r in rounds if r.fleet_episodes]
    if fleet:
        label = "fleet with operator, previous round's policy"
        axis.plot(*zip(*fleet, strict=True), marker="s", linestyle="--", label=label)
    axis.set_xlabel("round (policy version deployed)")
    axis.set_ylabel("success rate")
    axis.set_ylim(0, 1.05)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize="small")
    _plot_per_task(per_task, rounds, tasks, lambda r, task: r.eval_rate_for(task).value, "success rate, no operator")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_stages(path: Path, rounds: list[RoundResult], tasks: list[str]) -> None:
    """Each task's mean best stage per round, as a fraction of its stages: partial progress success hides."""
    figure, axis = plt.subplots(figsize=(6, 3.8))
    _plot_per_task(axis, rounds, tasks, RoundResult.stage_progress_for, "mean best stage / max stage")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_per_task(
    axis: plt.Axes,
    rounds: list[RoundResult],
    tasks: list[str],
    value: Callable[[RoundResult, str], float | None],
    label: str,
) -> None:
    """One line per task of ``value(round, task)`` over the rounds that evaluated the task."""
    for task in tasks:
        points = [(r.round_index, value(r, task)) for r in rounds if r.eval_outcomes.get(task)]
        points = [(index, y) for index, y in points if y is not None]
        if points:
            axis.plot(*zip(*points, strict=True), marker="o", label=task)
    axis.set_xlabel("round (policy version deployed)")
    axis.set_ylabel(label)
    axis.set_ylim(0, 1.05)
    axis.grid(alpha=0.3)
    if tasks:
        axis.legend(loc="upper left", fontsize="small")


def _plot_interventions(path: Path, rounds: list[RoundResult]) -> None:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    deployed = [r for r in rounds if r.fleet_episodes]
    axis.bar([r.round_index for r in deployed], [r.intervention_rate for r in deployed], color="tab:orange")
    axis.set_xlabel("round")
    axis.set_ylabel("fraction of steps under operator control")
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
