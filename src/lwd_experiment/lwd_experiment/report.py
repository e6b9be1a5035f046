"""The demo's report folder: per-round success with 95% intervals, plots, a Markdown summary, JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from lwd_interfaces.success_rate import Rate, wilson_rate

from lwd_experiment.stats import paired_comparison


@dataclass
class RoundResult:
    """What one deployment round measured: the policy it ran, fleet outcomes, held-out evaluation.

    ``eval_outcomes`` maps each task to the success of each held-out seed, so that two policies
    evaluated on the same seeds can be compared seed by seed.
    """

    round_index: int
    policy_version: str
    fleet_successes: int
    fleet_episodes: int
    fleet_interventions: int
    fleet_intervention_steps: int
    fleet_steps: int
    eval_outcomes: dict[str, dict[int, bool]] = field(default_factory=dict)
    cycle_time_s: float = 0.0
    trainer_updates: int = 0
    turnaround_s: dict[str, float] = field(default_factory=dict)
    """Per robot: seconds from the end of the newest episode this version trained on to the start of the robot's
    first episode on it (robots hot-swap between episodes, so that is always their next episode)."""

    @property
    def fleet_rate(self) -> Rate:
        """Success of the deployed fleet (operator interventions allowed)."""
        return wilson_rate(self.fleet_successes, self.fleet_episodes)

    @property
    def eval_rate(self) -> Rate:
        """Success on held-out seeds with no interventions, all tasks pooled."""
        pooled = [outcome for outcomes in self.eval_outcomes.values() for outcome in outcomes.values()]
        return wilson_rate(sum(pooled), len(pooled))

    def eval_rate_for(self, task: str) -> Rate:
        """Held-out success on one task."""
        outcomes = self.eval_outcomes.get(task, {})
        return wilson_rate(sum(outcomes.values()), len(outcomes))

    @property
    def intervention_rate(self) -> float:
        """Fraction of fleet control steps run by the operator."""
        return self.fleet_intervention_steps / self.fleet_steps if self.fleet_steps else 0.0


def write_report(folder: Path, title: str, rounds: list[RoundResult], notes: list[str]) -> Path:
    """Write summary.md, results.json and the PNG plots into ``folder``; return the summary path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps([asdict(r) for r in rounds], indent=2) + "\n")
    _plot_success(folder / "success.png", rounds)
    _plot_interventions(folder / "interventions.png", rounds)
    tasks = sorted({task for r in rounds for task in r.eval_outcomes})
    lines = [f"# {title}", "", *notes, ""]
    header = [
        "round",
        "policy",
        "held-out success (95% CI)",
        *[f"{t}" for t in tasks],
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
        row = [
            str(r.round_index),
            r.policy_version,
            str(r.eval_rate),
            *per_task,
            fleet,
            f"{per_episode:.2f}",
            turnaround,
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "![held-out success per round](success.png)", "", "![interventions per round](interventions.png)"]
    if (folder / "before.gif").exists() and (folder / "after.gif").exists():
        lines += ["", "Before training: ![before](before.gif) After training: ![after](after.gif)"]
    summary = folder / "summary.md"
    summary.write_text("\n".join(lines) + "\n")
    return summary


def paired_table(finals: dict[str, RoundResult], tasks: tuple[str, ...]) -> list[str]:
    """Markdown rows comparing the first arm with each other arm seed by seed, per task and pooled.

    A cell reads "a vs b (p = ...)": a held-out seeds only the first arm solved, b only the other,
    and the two-sided exact McNemar p-value. Only seeds both arms completed are paired.
    """
    (reference, first), *others = finals.items()
    header = [f"{reference} vs", *tasks, "all tasks"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, other in others:
        pairs = {task: _paired_outcomes(first, other, task) for task in tasks}
        pooled = [pair for task in tasks for pair in pairs[task]]
        cells = [str(paired_comparison(pairs[task])) for task in tasks]
        cells.append(str(paired_comparison(pooled)))
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return lines


def _paired_outcomes(first: RoundResult, second: RoundResult, task: str) -> list[tuple[bool, bool]]:
    """Both results' outcomes on each held-out seed of ``task`` that both completed."""
    a, b = first.eval_outcomes.get(task, {}), second.eval_outcomes.get(task, {})
    return [(a[seed], b[seed]) for seed in sorted(a.keys() & b.keys())]


def _plot_success(path: Path, rounds: list[RoundResult]) -> None:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    x = [r.round_index for r in rounds]
    rates = [r.eval_rate for r in rounds]
    axis.errorbar(
        x,
        [q.value for q in rates],
        yerr=[[q.value - q.low for q in rates], [q.high - q.value for q in rates]],
        marker="o",
        capsize=4,
        label="held-out, no interventions",
    )
    fleet = [(r.round_index, r.fleet_rate.value) for r in rounds if r.fleet_episodes]
    if fleet:
        label = "fleet with operator, previous round's policy"
        axis.plot(*zip(*fleet, strict=True), marker="s", linestyle="--", label=label)
    axis.set_xlabel("round (policy version deployed)")
    axis.set_ylabel("success rate")
    axis.set_ylim(0, 1.05)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
