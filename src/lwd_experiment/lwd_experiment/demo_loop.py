"""The learning-while-deploying loop, end to end, on a simulated fleet.

1. scripted demonstrations, recorded and uploaded like any episode;
2. BC pretraining into the base VLA (``lwd train bc``), published on the channel;
3. rounds: the fleet deploys the channel's policy (the scripted operator intervenes and labels),
   bags are recorded and uploaded, the trainer (``lwd train serve``, its own process, resuming
   from its last checkpoint each round) ingests them, trains DIVL + QAM and publishes a new
   version, which the running robots hot-swap before their next episode;
4. each policy version is evaluated with no interventions: the base and the final policy on the test
   seeds (the reported numbers), the versions in between on validation seeds
   (:mod:`lwd_experiment.seed_splits`), and the final policy also with held-out instructions,
   paraphrases no recorded episode carries (:mod:`lwd_sim.tasks`);
5. a report folder with per-round success and 95% intervals, plots and before/after videos.

The robots and the trainer meet only through the fleet store. Every policy is signed: the work folder's
``keys/release.key`` (made by ``lwd policy keygen`` first) signs what ``lwd train publish`` and
``lwd train serve`` publish, and the robots trust ``keys/release.pub`` only, as a real fleet would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import imageio.v2 as imageio
import numpy as np
from lwd_interfaces.progress import PREFIX as PROGRESS_PREFIX
from lwd_sim.process_fleet import JobFailure, ProcessFleet
from lwd_sim.tasks import TASKS

from lwd_experiment.learner_arms import LEARNER_ARMS, LearnerArm
from lwd_experiment.presets import DemoPreset
from lwd_experiment.report import RoundResult, instruction_comparison, write_report
from lwd_experiment.seed_splits import EvaluationSplit, split_seeds
from lwd_experiment.sim_robot import EpisodeJob, EpisodeSummary, RobotSettings, fleet_calibration, sim_robot_fleet

KEY_NAME = "release"
"""The demo's release key pair: ``<work_dir>/keys/release.key`` and ``release.pub``."""

CHANNEL = "stable"

T = TypeVar("T")


class DemoError(RuntimeError):
    """A stage of the demo failed; the message names the stage and where its log is."""


@dataclass
class Progress:
    """Live progress: one line per finished episode and per stage, with running totals."""

    emit: Callable[[str], None] = print
    started: float = field(default_factory=time.monotonic)
    per_robot: dict[str, str] = field(default_factory=dict)

    def stage(self, text: str) -> None:
        """Announce a stage (and forget the previous stage's robot status lines)."""
        self.per_robot.clear()
        self.emit(f"[{self._clock()}] == {text}")

    def episode(self, summary: EpisodeSummary, done: int, total: int, successes: int) -> None:
        """One finished episode, with the stage's success so far and every robot's last status."""
        outcome = "success" if summary.success else "failure"
        reasons = ", ".join(summary.takeover_reasons) or "none"
        takeovers = f", takeovers: {reasons}" if summary.mode == "deployment" else ""
        self.per_robot[summary.robot_id] = (
            f"{summary.robot_id}: {summary.task} seed {summary.seed} {outcome} in {summary.steps} steps{takeovers}"
            f" (policy {summary.policy_version or 'operator'})"
        )
        self.emit(f"[{self._clock()}]   {done}/{total} done, {successes} successes | " + " | ".join(
            self.per_robot[robot] for robot in sorted(self.per_robot)))  # fmt: skip

    def note(self, text: str) -> None:
        """A progress line of the current stage (e.g. forwarded from a child command)."""
        self.emit(f"[{self._clock()}]   {text}")

    def _clock(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        return f"{elapsed // 60:02d}:{elapsed % 60:02d}"


class DemoLoop:
    """Runs one demo: its work folder holds the fleet store, robot spools, trainer state, logs and the report.

    ``training_seed`` seeds BC pretraining and the trainer, so runs with different seeds are independent
    repeats on the same episode seeds. ``split`` is the seed split of the reported evaluations, the base and
    the final policy's: ``test`` for a result, ``validation`` when the run itself tunes a setting.
    ``cache_dir`` is the learner cache (decoded episodes, encoder features) that BC pretraining and the trainer
    share; runs on the same episodes and base may share it too, since it is keyed by content.
    """

    def __init__(
        self,
        preset: DemoPreset,
        work_dir: Path,
        progress: Progress | None = None,
        arm: LearnerArm = LEARNER_ARMS["lwd"],
        training_seed: int = 0,
        split: EvaluationSplit = "test",
        cache_dir: Path | None = None,
    ) -> None:
        self.preset = preset
        self.arm = arm
        self.training_seed = training_seed
        self.split = split
        self.work_dir = work_dir.resolve()
        self.store_url = f"file://{self.work_dir / 'fleet'}"
        self.progress = progress or Progress()
        self.logs = self.work_dir / "logs"
        self.keys = self.work_dir / "keys"
        self.cache_dir = (cache_dir or self.work_dir / "trainer" / "cache").resolve()
        self.rounds: list[RoundResult] = []
        self.failures: list[JobFailure] = []
        self._fleet_episodes = 0

    def run(self) -> Path:
        """Run every stage; returns the report's summary.md."""
        self.record_demonstrations()
        self.pretrain()
        return self.deploy()

    def record_demonstrations(self) -> None:
        """Stage 1: make the release key pair, record the scripted demonstrations into a new fleet store."""
        if (self.work_dir / "fleet").exists():
            raise DemoError(f"{self.work_dir} already holds a demo run; choose a new --work-dir (nothing was changed)")
        self.progress.stage(f"work folder {self.work_dir}, fleet store {self.store_url}")
        self.release_key()
        fleet = self._fleet()
        try:
            self._demonstrations(fleet)
        finally:
            fleet.close()

    def deploy(self, base: RoundResult | None = None) -> Path:
        """Stages 3-5 on a prepared store: evaluate the base policy, run the rounds, write the report.

        ``base`` is the base policy's evaluation when another run on the same base and split already made it:
        evaluation is deterministic, so it is reused rather than run again."""
        preset = self.preset
        self.progress.stage(f"learner {self.arm.name}: {self.arm.description}")
        base_seeds = split_seeds(self.split, preset.final_eval_episodes_per_task)
        held_out_seeds = split_seeds(self.split, preset.held_out_instruction_episodes_per_task)
        fleet = self._fleet()
        try:
            if base is None:
                base = self._evaluate(fleet, 0, self.split, base_seeds, "before.gif")
            elif base.eval_split != self.split or any(
                list(outcomes) != list(base_seeds) for outcomes in base.eval_outcomes.values()
            ):
                raise DemoError(f"the base evaluation given is not on this run's {len(base_seeds)} {self.split} seeds")
            self.rounds.append(replace(base))
            for round_index in range(1, preset.rounds + 1 if self.arm.train else 1):
                self.rounds.append(self._round(fleet, round_index))
            final = self.rounds[-1]
            self.progress.stage(f"held-out instructions: {len(held_out_seeds)} {self.split} seeds per task")
            done = self._run_jobs(fleet, self._evaluation_jobs(held_out_seeds, "held_out"))
            final.held_out_instruction_outcomes = self._outcomes(done)
            rate = final.held_out_instruction_rate
            self.progress.stage(f"policy {final.policy_version}, held-out instructions: {self.split} success {rate}")
        finally:
            fleet.close()
        return self._report()

    def evaluate(self, per_task: int, split: EvaluationSplit = "validation") -> RoundResult:
        """Evaluate the policy the channel serves now on ``per_task`` seeds per task of ``split``, no operator."""
        seeds = split_seeds(split, per_task)
        fleet = self._fleet()
        try:
            return self._evaluate(fleet, 0, split, seeds)
        finally:
            fleet.close()

    def release_key(self) -> Path:
        """The private key that signs the demo's policies (the pair is made by ``lwd policy keygen`` when missing)."""
        private = self.keys / f"{KEY_NAME}.key"
        if not private.is_file():
            self.run_lwd("keygen", ["policy", "keygen", "--out", str(self.keys), "--name", KEY_NAME])
        return private

    def robot_settings(self) -> list[RobotSettings]:
        """The settings of the preset's robots: the demo's store and release key, the preset's tasks, their step
        budgets and the fleet sampling noise."""
        preset = self.preset
        return [
            RobotSettings(
                robot_id=f"sim_{index:02d}",
                store_url=self.store_url,
                work_dir=self.work_dir / "robots" / f"sim_{index:02d}",
                channel=CHANNEL,
                trusted_keys=(str(self.keys / f"{KEY_NAME}.pub"),),
                tasks=preset.tasks,
                max_steps=preset.max_steps,
                task_max_steps=tuple((task, preset.max_steps_for(task)) for task in preset.tasks),
                fleet_noise_scale=preset.fleet_noise_scale,
            )
            for index in range(preset.robots)
        ]

    def _fleet(self) -> ProcessFleet:
        preset = self.preset
        trusted = self.keys / f"{KEY_NAME}.pub"
        if not trusted.is_file():
            raise DemoError(f"{trusted} is missing: the demo's robots trust only its own release key (keys/)")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.progress.stage(f"starting {preset.robots} robot processes, tasks {', '.join(preset.tasks)}")
        return sim_robot_fleet(self.robot_settings())

    def _run_jobs(self, fleet: ProcessFleet, jobs: list[EpisodeJob]) -> list[EpisodeSummary]:
        counter = {"done": 0, "ok": 0}

        def on_done(summary: EpisodeSummary) -> None:
            counter["done"] += 1
            counter["ok"] += summary.success
            self.progress.episode(summary, counter["done"], len(jobs), counter["ok"])

        done, failures = fleet.run(jobs, on_done=on_done)
        self.failures += failures
        return done

    def _demonstrations(self, fleet: ProcessFleet) -> None:
        preset = self.preset
        self.progress.stage(f"1. scripted demonstrations: {preset.demos_per_task} per task")
        seeds = split_seeds("demonstration", preset.demos_per_task)
        jobs = [EpisodeJob(task, seed, "demonstration") for seed in seeds for task in preset.tasks]
        done = self._run_jobs(fleet, jobs)
        if not any(summary.success for summary in done):
            raise DemoError("no demonstration succeeded; nothing to pretrain on")
        replays = preset.replays_per_task if preset.inputs == "pixels" else 0
        if replays:
            self.progress.stage(f"1b. replays for perception labels: {replays} per task, each on a new scene")
            scenes = split_seeds("demonstration", replays, offset=preset.demos_per_task)
            self._run_jobs(
                fleet,
                [
                    EpisodeJob(task, seed, "replay", replay_of=seeds[index % len(seeds)])
                    for index, seed in enumerate(scenes)
                    for task in preset.tasks
                ],
            )

    def pretrain(self) -> None:
        """Stage 2 on a store of demonstrations: BC-pretrain the base VLA (seeded by ``training_seed``); publish it."""
        preset = self.preset
        pixels = preset.inputs == "pixels"
        perception = preset.perception_steps if pixels else 0
        flow_steps = preset.bc_flow_steps()
        steps = f"{perception} perception steps, then {flow_steps}" if perception else str(flow_steps)
        self.progress.stage(f"2. BC pretraining of the base VLA: {steps} steps, seed {self.training_seed}")
        checkpoint = self.work_dir / "pretrained"
        vla_config = self.work_dir / "vla_config.json"
        vla_config.write_text(preset.vla_config().to_json())
        labels = []
        if perception:
            calibration = self.work_dir / "camera_calibration.json"
            calibration.write_text(fleet_calibration(self.robot_settings()[0]).to_json())
            labels = ["--camera-calibration", str(calibration)]
        self.run_lwd(
            "pretrain",
            ["train", "bc", "--episodes", self.store_url, "--out", str(checkpoint), "--version", "v000000-bc",
             "--vla-config", str(vla_config), "--steps", str(flow_steps),
             "--perception-steps", str(perception), "--perception-lr", str(preset.perception_lr),
             "--perception-frames", "recorded" if pixels else "cloned", *labels,
             "--batch-size", str(preset.bc_batch_size), "--seed", str(self.training_seed),
             "--cache-dir", str(self.cache_dir)],
        )  # fmt: skip
        self.publish_pretrained()

    def publish_pretrained(self) -> None:
        """Stage 3: sign the pretrained checkpoint and deploy it on the fleet's channel (also alone, for a base
        whose training finished but whose store was lost)."""
        self.progress.stage("3. deploying v000000-bc to the fleet (channel stable)")
        checkpoint = self.work_dir / "pretrained"
        self.run_lwd("publish", ["train", "publish", "--store", self.store_url, "--checkpoint", str(checkpoint),
                                 "--channel", CHANNEL, "--signing-key", str(self.release_key())])  # fmt: skip

    def _round(self, fleet: ProcessFleet, round_index: int) -> RoundResult:
        preset = self.preset
        started = time.monotonic()
        self.progress.stage(f"round {round_index}/{preset.rounds}: fleet runs {preset.episodes_per_round} episodes")
        seeds = split_seeds("fleet", preset.episodes_per_round, offset=self._fleet_episodes)
        jobs = [EpisodeJob(preset.tasks[seed % len(preset.tasks)], seed, "deployment") for seed in seeds]
        self._fleet_episodes += preset.episodes_per_round
        deployed = self._run_jobs(fleet, jobs)
        updates = round_index * preset.updates_per_round
        self.progress.stage(f"round {round_index}: trainer ingests and trains to update {updates} ({self.arm.name})")
        self.run_lwd(
            f"trainer-round-{round_index}",
            ["train", "serve", "--store", self.store_url, "--work-dir", str(self.work_dir / "trainer"),
             "--channel", CHANNEL, "--max-updates", str(updates), "--publish-every", str(preset.updates_per_round),
             "--batch-size", str(preset.trainer_batch_size), "--agent", self.arm.agent, "--mix", self.arm.mix,
             *([] if self.arm.max_oversample is None else ["--max-oversample", str(self.arm.max_oversample)]),
             *(["--clone-mix", self.arm.clone_mix] if self.arm.clone_mix else []),
             "--seed", str(self.training_seed), "--cache-dir", str(self.cache_dir),
             "--signing-key", str(self.release_key())],
        )  # fmt: skip
        final = round_index == preset.rounds
        split = self.split if final else "validation"
        seeds = split_seeds(split, preset.final_eval_episodes_per_task if final else preset.eval_episodes_per_task)
        trained_until = max(summary.ended_unix for summary in deployed) if deployed else None
        result = self._evaluate(fleet, round_index, split, seeds, "after.gif" if final else "", trained_until)
        result.fleet_outcomes = self._outcomes(deployed)
        result.fleet_interventions = sum(s.interventions for s in deployed)
        result.fleet_intervention_steps = sum(s.intervention_steps for s in deployed)
        result.fleet_steps = sum(s.steps for s in deployed)
        result.trainer_updates = updates
        result.cycle_time_s = time.monotonic() - started
        return result

    def _evaluate(
        self,
        fleet: ProcessFleet,
        round_index: int,
        split: EvaluationSplit,
        seeds: range,
        video: str = "",
        trained_until: float | None = None,
    ) -> RoundResult:
        """Episodes of the serving policy on ``seeds`` (of ``split``) of every task, trained instructions, no
        operator; ``trained_until`` (the end of the newest episode that policy trained on) gives each robot's
        turnaround."""
        self.progress.stage(f"evaluation after round {round_index}: {len(seeds)} {split} seeds per task, no operator")
        done = self._run_jobs(fleet, self._evaluation_jobs(seeds, "trained", capture=bool(video)))
        versions = sorted({summary.policy_version for summary in done})
        result = RoundResult(round_index, ",".join(versions), 0, 0, 0, eval_split=split)
        if trained_until is not None:
            for summary in sorted(done, key=lambda s: s.started_unix):
                result.turnaround_s.setdefault(summary.robot_id, summary.started_unix - trained_until)
        result.eval_outcomes = self._outcomes(done)
        result.eval_stages = self._per_task(done, lambda summary: summary.best_stage)
        result.max_stages = {task: TASKS[task].max_stage for task in self.preset.tasks}
        turnaround = f"; turnaround {max(result.turnaround_s.values()):.0f} s" if result.turnaround_s else ""
        self.progress.stage(
            f"round {round_index} policy {result.policy_version}: {split} success {result.eval_rate}{turnaround}"
        )
        if video:
            frames = [summary for summary in done if summary.frames]
            if frames:
                self._write_video(self.work_dir / "report" / video, frames[0])
        return result

    def _evaluation_jobs(self, seeds: range, instructions: str, capture: bool = False) -> list[EpisodeJob]:
        """One evaluation episode per seed and task, paraphrases from ``instructions`` (``trained`` or
        ``held_out``); ``capture`` keeps the frames of each task's first episode."""
        return [
            EpisodeJob(task, seed, "evaluation", capture=capture and index == 0, instructions=instructions)
            for index, seed in enumerate(seeds)
            for task in self.preset.tasks
        ]

    def _outcomes(self, done: list[EpisodeSummary]) -> dict[str, dict[int, bool]]:
        """Each task's success per seed, seeds in order."""
        return self._per_task(done, lambda summary: bool(summary.success))

    def _per_task(self, done: list[EpisodeSummary], value: Callable[[EpisodeSummary], T]) -> dict[str, dict[int, T]]:
        """Each task's ``value`` of its episodes per seed, seeds in order."""
        return {
            task: {s.seed: value(s) for s in sorted(done, key=lambda s: s.seed) if s.task == task}
            for task in self.preset.tasks
        }

    def _write_video(self, path: Path, summary: EpisodeSummary) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = [np.asarray(frame) for frame in summary.frames[::2]]
        imageio.mimsave(path, frames, duration=0.04, loop=0)

    def run_lwd(self, stage: str, arguments: list[str]) -> None:
        """Run an ``lwd`` command as its own process: its whole output goes to the stage's log, and its
        progress lines (:mod:`lwd_interfaces.progress`) also to the console."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{stage}.log"
        command = [sys.executable, "-m", "lwd.cli", *arguments]
        with (
            open(log_path, "w") as log,
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            ) as process,
        ):
            for line in process.stdout:
                log.write(line)
                if line.startswith(PROGRESS_PREFIX + " "):
                    self.progress.note(line[len(PROGRESS_PREFIX) + 1 :].rstrip())
        if process.returncode != 0:
            tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
            raise DemoError(f"stage {stage} failed (exit code {process.returncode}); log {log_path}:\n{tail}")

    def _report(self) -> Path:
        first, last = self.rounds[0], self.rounds[-1]
        improved = last.eval_rate.low > first.eval_rate.high
        preset = self.preset
        notes = [
            f"Learner `{self.arm.name}` ({self.arm.description}). "
            f"Preset `{preset.name}`: {preset.robots} simulated robots, tasks {', '.join(preset.tasks)}, "
            f"{preset.rounds} rounds of {preset.episodes_per_round} fleet episodes and "
            f"{preset.updates_per_round} trainer updates each. The base and the final policy are evaluated on "
            f"{self.split} seeds, the rounds in between on validation seeds (lwd_experiment.seed_splits). "
            f"Policy inputs: {preset.inputs}.",
            "",
            f"Base policy: {first.eval_rate}. Final policy: {last.eval_rate}. "
            + ("The 95% intervals do not overlap: the fleet's policy improved."
               if improved else "The 95% intervals overlap: no improvement is established by this run."),
            "",
            f"Final policy with held-out instructions (paraphrases no episode was recorded with, on the first "
            f"{preset.held_out_instruction_episodes_per_task} of those seeds per task): "
            f"{last.held_out_instruction_rate}; seeds solved only with the trained instructions vs only with the "
            f"held-out ones: {instruction_comparison(last)}.",
        ]  # fmt: skip
        if self.failures:
            notes += ["", f"{len(self.failures)} episodes failed to run (robot errors or crashes); see the logs."]
        summary = write_report(self.work_dir / "report", "LWD demo: a simulated fleet learning while deploying",
                               self.rounds, notes)  # fmt: skip
        facts = {
            "preset": self.preset.name,
            "arm": self.arm.name,
            "base": str(first.eval_rate),
            "final": str(last.eval_rate),
            "improved": improved,
            "failures": len(self.failures),
            "base_rate": first.eval_rate.value,
            "final_rate": last.eval_rate.value,
            "total_fleet_episodes": sum(r.fleet_episodes for r in self.rounds),
            "final_ci": [last.eval_rate.low, last.eval_rate.high],
            "base_ci": [first.eval_rate.low, first.eval_rate.high],
            "split": self.split,
            "final_held_out_instructions": str(last.held_out_instruction_rate),
            "final_held_out_instructions_rate": last.held_out_instruction_rate.value,
            "base_per_task": {task: str(first.eval_rate_for(task)) for task in preset.tasks},
            "final_per_task": {task: str(last.eval_rate_for(task)) for task in preset.tasks},
            "final_stage_progress_per_task": {task: last.stage_progress_for(task) for task in preset.tasks},
        }
        (self.work_dir / "report" / "facts.json").write_text(json.dumps(facts, indent=2) + "\n")
        return summary
