"""The headline experiment: every learner on the same fleet budget, seeds and starting policies, repeated.

Scripted demonstrations are recorded once. Each of ``--repeats`` runs BC-pretrains its own base on them
with its own training seed (run i seeds BC and the trainer with i), and each arm (LWD, LWD with a scalar
expectile value, HG-DAgger, frozen BC) gets its own copy of that run's store and runs the same rounds of
fleet episodes (same seeds) and trainer updates. Each run's base and final policies are evaluated with no
interventions on the test seeds (``lwd_experiment.seed_splits``; the same seeds in every run), the final
one also with held-out instructions.

Prints each arm's mean final success over the runs with a 95% Student-t interval across runs (what
changes from one training run to the next), the first arm's gain over each other arm run by run with the
same interval (arms of a run share its base, so the base's variance cancels), then the first arm against each
other arm seed by seed, the pairs of every run pooled, with the exact McNemar p-value (what changes from seed
to seed). Under
the work folder: ``demonstrations/`` (the recorded store), ``run-<i>/base/`` (run i's BC base),
``run-<i>/<arm>/`` (run i's arm, with its report), ``learning.md`` and ``learning.json``.

    .venv/bin/python bench/learning.py --preset default --repeats 3 --work-dir runs/learning

The arms of a run share its base's evaluation (deterministic, so run once) and one learner cache
(``run-<i>/cache``: decoded episodes and encoder features, keyed by content). Running the command again
on the same work folder resumes it: the recorded demonstrations, the finished bases and every arm with a
report are kept (an arm's settings must match), and an unfinished base or arm starts again. A run whose arms all
finished needs no base, so runs can be resumed from their arms' reports alone (``<arm>/arm.json`` and
``<arm>/report/results.json``, as ``docs/results/`` keeps them).

``--shared`` reuses the demonstrations and BC bases of an earlier run (its work folder), so a new or
changed arm is compared on the same bases as the arms measured before; a base the earlier run lacks is
pretrained here. ``--runs 0,3,4`` does (and summarizes) those runs only, so the runs of one experiment can
be spread over invocations or machines and summarized together at the end. ``--split validation`` evaluates
on validation seeds instead, for tuning an arm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path

from lwd.arguments import non_negative_float, oversample_bound
from lwd_experiment.arm_run import ArmRun, link_store
from lwd_experiment.demo_loop import CHANNEL, DemoLoop
from lwd_experiment.learner_arms import LEARNER_ARMS
from lwd_experiment.presets import INPUTS, PRESETS, DemoPreset, preset
from lwd_experiment.report import RoundResult, gain_table, paired_table, per_task_repeats_table, repeats_table
from lwd_experiment.seed_splits import EVALUATION_SPLITS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--arms", default="lwd,lwd-expectile,hg-dagger,frozen-bc", help="comma-separated arms")
    parser.add_argument("--work-dir", type=Path, required=True, help="folder of the experiment (again: resume)")
    parser.add_argument("--rounds", type=int, default=None, help="override the preset's rounds")
    parser.add_argument("--inputs", choices=INPUTS, default=None, help="override what the policy reads")
    parser.add_argument(
        "--fleet-noise-scale", type=non_negative_float, help="override the preset's fleet exploration noise"
    )
    parser.add_argument("--repeats", type=int, default=1, help="independent runs, each from its own BC base")
    parser.add_argument(
        "--runs", type=run_indices, help="comma-separated runs to do and summarize instead of 0..repeats-1 (e.g. 0,3,4)"
    )
    parser.add_argument("--split", choices=EVALUATION_SPLITS, default="test", help="seeds of the base and final")
    parser.add_argument("--shared", type=Path, help="an earlier run's work folder: reuse its demos and BC bases")
    parser.add_argument(
        "--max-oversample", type=oversample_bound, help="override every arm's replay mix bound (1e9: the mix unbounded)"
    )
    args = parser.parse_args()
    arms = [name.strip() for name in args.arms.split(",") if name.strip()]
    unknown = sorted(set(arms) - set(LEARNER_ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; valid arms are {sorted(LEARNER_ARMS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    runs = args.runs or list(range(args.repeats))
    bound = {} if args.max_oversample is None else {"max_oversample": args.max_oversample}
    given = (("rounds", args.rounds), ("inputs", args.inputs), ("fleet_noise_scale", args.fleet_noise_scale))
    chosen = preset(args.preset, **{key: value for key, value in given if value is not None})
    demonstrations = (args.shared or args.work_dir) / "demonstrations"
    if args.shared is None:
        record_demonstrations(chosen, demonstrations)
    elif not (demonstrations / "fleet").is_dir():
        parser.error(f"{args.shared} holds no recorded demonstrations (demonstrations/fleet)")
    finals: dict[str, list[RoundResult]] = {name: [] for name in arms}
    for run in runs:
        run_dir = args.work_dir / f"run-{run}"
        base, base_evaluation = None, None
        for name in arms:
            arm = ArmRun(chosen, replace(LEARNER_ARMS[name], **bound), run, args.split)
            try:
                rounds = arm.finished(run_dir)
            except ValueError as error:
                parser.error(str(error))
            if rounds is None:
                base = base or base_policy(chosen, demonstrations, args.shared, args.work_dir, run)
                rounds = arm.run_from(base, run_dir, base_evaluation)
            base_evaluation = rounds[0]
            finals[name].append(rounds[-1])
    table = "\n".join(summary_lines(chosen, args.split, finals))
    (args.work_dir / "learning.md").write_text(table + "\n")
    results = {name: [asdict(result) for result in runs] for name, runs in finals.items()}
    (args.work_dir / "learning.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    return 0


def run_indices(text: str) -> list[int]:
    """``--runs``: distinct non-negative run indices, comma-separated, in the order given."""
    try:
        runs = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated run indices such as 0,3,4, got {text!r}") from None
    if not runs or min(runs) < 0 or len(set(runs)) != len(runs):
        raise argparse.ArgumentTypeError(f"expected distinct non-negative run indices, got {text!r}")
    return runs


def record_demonstrations(chosen: DemoPreset, demonstrations: Path) -> None:
    """Record the scripted demonstrations into ``demonstrations``, unless an earlier invocation finished them."""
    finished = demonstrations / "recorded"
    if finished.is_file():
        print(f"reusing the demonstrations recorded in {demonstrations}")
        return
    if demonstrations.exists():
        print(f"{demonstrations} holds an unfinished recording: recording the demonstrations again")
        shutil.rmtree(demonstrations)
    DemoLoop(chosen, demonstrations).record_demonstrations()
    finished.touch()


def base_policy(chosen: DemoPreset, demonstrations: Path, earlier: Path | None, work_dir: Path, run: int) -> Path:
    """Run ``run``'s prepared store with its BC base: the earlier run's (or an earlier invocation's) when it has
    one, else pretrained here on the demonstrations with training seed ``run``. A base whose checkpoint was
    committed but never published (its store lost, or the run killed in between) keeps the checkpoint."""
    for folder in (earlier, work_dir):
        if folder is not None and base_published(folder / f"run-{run}" / "base"):
            return folder / f"run-{run}" / "base"
    base = work_dir / f"run-{run}" / "base"
    trained = (base / "pretrained" / "manifest.json").is_file()
    if base.exists():
        redo = "publishing its trained checkpoint again" if trained else "pretraining it again"
        print(f"{base} holds an unfinished base: {redo}")
        for entry in base.iterdir():
            if entry.is_dir() and not (trained and entry.name == "pretrained"):
                shutil.rmtree(entry)
            elif entry.is_file():
                entry.unlink()
    link_store(demonstrations / "fleet", base / "fleet")
    shutil.copytree(demonstrations / "keys", base / "keys")
    loop = DemoLoop(chosen, base, training_seed=run, cache_dir=base.parent / "cache")
    if trained:
        loop.publish_pretrained()
    else:
        loop.pretrain()
    return base


def base_published(base: Path) -> bool:
    """Whether ``base`` holds a pretrained policy published on the channel (the last step of pretraining)."""
    return (base / "pretrained").is_dir() and (base / "fleet" / "policies" / "channels" / CHANNEL).is_file()


def summary_lines(chosen: DemoPreset, split: str, finals: dict[str, list[RoundResult]]) -> list[str]:
    """The Markdown summary: the setup, each arm's mean over the runs, and the pooled seed-by-seed comparison."""
    runs = len(next(iter(finals.values())))
    lines = [
        f"preset {chosen.name}: {chosen.robots} robots, {chosen.rounds} rounds x {chosen.episodes_per_round} fleet "
        f"episodes and {chosen.updates_per_round} updates; {runs} runs, run i with BC and trainer seed i; "
        f"{chosen.final_eval_episodes_per_task} {split} seeds per task (the same in every run), no interventions; "
        f"held-out instructions on {chosen.held_out_instruction_episodes_per_task} of them; policy inputs: "
        f"{chosen.inputs}",
        "",
        "Final success, mean over runs with a 95% Student-t interval across runs",
        "",
        *repeats_table(finals, chosen.tasks),
        "",
        "Per task, mean over runs with a 95% Student-t interval across runs: success, success with held-out "
        "instructions, and the best stage reached as a fraction of the task's stages (partial progress)",
        "",
        *per_task_repeats_table(finals, chosen.tasks),
    ]
    if len(finals) > 1:
        lines += [
            "",
            "Run by run, the first arm's final success minus each other arm's (both from the run's base, on the same "
            "seeds): mean over runs with a 95% Student-t interval across runs",
            "",
            *gain_table(finals, chosen.tasks),
            "",
            f"Seed by seed, every run pooled: {split} seeds only the first arm solved vs only the other; "
            "exact McNemar p",
            "",
            *paired_table(finals, chosen.tasks),
        ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
