"""``lwd train``: BC pretraining, the continual trainer service, its status, and publishing a checkpoint.

- ``lwd train bc --episodes DIR_OR_STORE --out CHECKPOINT_DIR``: the pretrained VLA.
- ``lwd train publish --store URL --checkpoint DIR [--signing-key KEY]``: put a (signed) policy folder on a
  store channel.
- ``lwd train serve --store URL --work-dir DIR``: ingest, train, publish, resume (runs under torchrun too: the
  ranks share ``--work-dir``, each ingests its share of the new episodes, all train on all of them);
  ``--canary`` publishes to the canary channel first and rolls it back when it is worse (:mod:`lwd_fleet.canary`).
- ``lwd train status --work-dir DIR``: the figures the service last reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lwd_fleet.canary import CANARY_CHANNEL, CanaryRule
from lwd_fleet.layout import CATALOG_NAME
from lwd_interfaces.progress import ProgressMeter
from lwd_learner.parameters import TRAINER_NODE
from lwd_learner.pretrain_config import PERCEPTION_FRAMES, PretrainConfig

from lwd.arguments import (
    CommandError,
    add_path,
    agent_overrides,
    fraction,
    non_negative_float,
    non_negative_int,
    oversample_bound,
    policy_version,
    positive_float,
    positive_int,
    sampling_mix,
    store_url,
)

if TYPE_CHECKING:
    from lwd_policy.language import InstructionEncoder

LOGGER = logging.getLogger(__name__)
CACHE_HELP = "learner cache folder: decoded episodes and encoder features, keyed by content, so runs may share it"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command group."""
    parser = subparsers.add_parser("train", help="pretrain, serve and inspect the LWD learner")
    commands = parser.add_subparsers(dest="train_command", required=True, metavar="TRAIN_COMMAND")

    bc = commands.add_parser("bc", help="BC flow-matching pretraining on demonstrations")
    add_path(
        bc,
        "--episodes",
        must_be="dir",
        required=True,
        type=store_url,
        help="folder of episode bags, or a file:// fleet store URL",
    )
    bc.add_argument("--out", required=True, type=Path, help="checkpoint folder to create")
    bc.add_argument("--version", type=policy_version, default="v000000-bc", help="version string of the checkpoint")
    add_path(bc, "--vla-config", must_be="file", help="JSON file of VLAConfig fields (default: the built-in config)")
    bc.add_argument("--steps", type=positive_int, default=2000, help="gradient steps")
    bc.add_argument(
        "--perception-steps",
        type=non_negative_int,
        default=0,
        help="first train perception alone (the object head's loss) for this many steps, then freeze it",
    )
    bc.add_argument("--perception-lr", type=positive_float, default=3e-4, help="learning rate of the perception steps")
    bc.add_argument(
        "--perception-frames",
        choices=PERCEPTION_FRAMES,
        default="cloned",
        help="frames the object head learns from: those cloned, or every frame recorded with object positions "
        "(e.g. replays, which fail and are never cloned)",
    )
    add_path(
        bc,
        "--camera-calibration",
        must_be="file",
        help="JSON projections of the fixed cameras (lwd_interfaces.camera_projection): the perception steps also "
        "learn where the objects appear in each image",
    )
    bc.add_argument(
        "--keypoint-weight",
        type=non_negative_float,
        default=PretrainConfig.keypoint_weight,
        help="weight of that image-space loss against the object head's",
    )
    bc.add_argument("--batch-size", type=positive_int, default=32)
    bc.add_argument("--lr", type=positive_float, default=3e-4)
    bc.add_argument("--seed", type=non_negative_int, default=0)
    bc.add_argument("--with-interventions", action="store_true", help="also clone intervention steps (HG-DAgger)")
    bc.add_argument("--cache-dir", type=Path, default=Path(".lwd-cache"), help=CACHE_HELP)
    bc.add_argument("--language-model", default="", help="sentence-transformers model folder (default: MiniLM)")
    bc.set_defaults(handler=run_bc)

    publish = commands.add_parser("publish", help="publish a policy checkpoint folder to a store channel")
    publish.add_argument("--store", required=True, type=store_url, help="fleet store URL, e.g. file://./fleet")
    add_path(publish, "--checkpoint", must_be="dir", required=True, help="policy folder with manifest.json")
    publish.add_argument("--channel", default="stable")
    add_signing_key(publish)
    publish.set_defaults(handler=run_publish)

    _register_serve(commands.add_parser("serve", help="continual trainer: watch the store, train, publish"))

    status = commands.add_parser("status", help="print the trainer's last reported figures")
    status.add_argument("--work-dir", type=Path, default=Path("runs/trainer"))
    status.add_argument("--json", action="store_true", help="print the raw status JSON")
    status.set_defaults(handler=run_status)


def _register_serve(serve: argparse.ArgumentParser) -> None:
    """The options of ``lwd train serve`` (the TrainerConfig fields)."""
    serve.add_argument("--store", required=True, type=store_url, help="fleet store URL, e.g. file://./fleet")
    serve.add_argument("--work-dir", type=Path, default=Path("runs/trainer"), help="caches, checkpoints, telemetry")
    serve.add_argument("--pretrained", default="", help="policy folder or store version (default: the channel's)")
    serve.add_argument("--channel", default="stable")
    add_signing_key(serve)
    serve.add_argument(
        "--publish-every", type=positive_int, default=100, help="M: updates between published checkpoints"
    )
    serve.add_argument("--batch-size", type=positive_int, default=64)
    serve.add_argument("--buffer-capacity", type=positive_int, default=200_000, help="transitions")
    serve.add_argument(
        "--mix", type=sampling_mix, default="demo=0.25,autonomous=0.5,intervention=0.25", help="sampling mix"
    )
    serve.add_argument(
        "--clone-mix",
        type=sampling_mix,
        default={},
        help="sampling mix of a second batch that the cloning loss learns from (default: it clones from --mix's batch)",
    )
    serve.add_argument(
        "--max-oversample",
        type=oversample_bound,
        default=TRAINER_NODE.defaults()["max_oversample"],
        help="no category's batch share exceeds this many times its buffer share (1: uniform)",
    )
    serve.add_argument("--scan-every", type=positive_int, default=50, help="updates between store scans")
    serve.add_argument("--poll-interval", type=positive_float, default=5.0, help="seconds between scans while idle")
    serve.add_argument("--n-step", type=positive_int, default=1)
    serve.add_argument(
        "--ingest-workers",
        type=non_negative_int,
        default=0,
        help="processes that verify and decode new episodes (0: the trainer's own)",
    )
    serve.add_argument(
        "--agent",
        type=agent_overrides,
        default="{}",
        help="JSON object of AgentConfig overrides, e.g. '{\"lam\": 0.3}'",
    )
    serve.add_argument("--seed", type=non_negative_int, default=0)
    serve.add_argument("--cache-dir", type=Path, help=f"{CACHE_HELP} (default: <work-dir>/cache)")
    add_path(serve, "--catalog", must_be="in_dir", help=f"SQLite episode catalog (default: <work-dir>/{CATALOG_NAME})")
    serve.add_argument(
        "--canary",
        nargs="?",
        const=CANARY_CHANNEL,
        default="",
        metavar="CHANNEL",
        help=f"publish to this channel first (default {CANARY_CHANNEL}) and roll it back when worse than --channel",
    )
    serve.add_argument(
        "--canary-window", type=positive_int, default=CanaryRule.window, help="labelled episodes per version"
    )
    serve.add_argument(
        "--canary-margin", type=fraction, default=CanaryRule.margin, help="success-rate margin of a rollback"
    )
    serve.add_argument("--max-updates", type=non_negative_int, help="stop at this many total updates")
    serve.add_argument("--until-idle", action="store_true", help="stop when a publish finds no new episodes")
    serve.set_defaults(handler=run_serve)


def add_signing_key(parser: argparse.ArgumentParser) -> None:
    """``--signing-key``: the release private key that signs what the command publishes."""
    add_path(
        parser,
        "--signing-key",
        must_be="file",
        help="release private key (lwd policy keygen) signing each published policy; robots refuse unsigned ones",
    )


def _instruction_encoder(model_path: str) -> InstructionEncoder:
    """The sentence-embedding model (imported lazily: loading sentence-transformers takes seconds)."""
    from lwd_policy.language import InstructionEncoder

    return InstructionEncoder(model_path or None)


class BCProgress:
    """BC's progress lines, one meter per phase: a perception step costs about ten times a flow step, so one
    estimate over both phases put 50 minutes left on a 12-minute BC, and 36 hours on its first flow line."""

    def __init__(self, perception_steps: int, flow_steps: int) -> None:
        self.perception_steps = perception_steps
        self.flow_steps = flow_steps
        self.perception = ProgressMeter("bc perception", perception_steps, "steps")
        self.flow: ProgressMeter | None = None

    def __call__(self, step: int, loss: float) -> None:
        """``pretrain_bc``'s callback: ``step`` counts the perception steps first, then the flow steps."""
        if step <= self.perception_steps:
            self.perception.update(step, f"perception_loss {loss:.4f}")
            return
        self.flow = self.flow or ProgressMeter("bc", self.flow_steps, "steps")
        self.flow.update(step - self.perception_steps, f"bc_loss {loss:.4f}")


def run_bc(args: argparse.Namespace) -> int:
    """Pretrain the VLA by BC on the demonstrations found under ``--episodes``."""
    from lwd_fleet.store import FleetStore
    from lwd_interfaces.camera_projection import CameraCalibration
    from lwd_learner.episode_cache import EpisodeCache
    from lwd_learner.pretrain import (
        PretrainError,
        find_episode_folders,
        load_episodes,
        pretrain_bc,
        reason_counts,
        write_pretrained,
    )
    from lwd_policy.config import VLAConfig

    vla = VLAConfig.from_json(args.vla_config.read_text()) if args.vla_config else VLAConfig()
    calibration = CameraCalibration.read(args.camera_calibration) if args.camera_calibration else None
    if "://" in args.episodes:
        FleetStore(args.episodes, create=False)  # a mistyped store is an error, not a new empty store
    try:
        rejected = []
        folders = find_episode_folders(args.episodes)
        episodes = load_episodes(folders, EpisodeCache.under(args.cache_dir), vla.cameras, vla, rejected.append)
        print(f"{len(episodes)} usable episodes from {args.episodes}", flush=True)
        if rejected:
            held = ", ".join(f"{reason} {count}" for reason, count in reason_counts(rejected).items())
            print(f"{len(rejected)} set aside: {held} (each is named in the log)", flush=True)
        config = PretrainConfig(
            steps=args.steps,
            perception_steps=args.perception_steps,
            perception_lr=args.perception_lr,
            perception_frames=args.perception_frames,
            keypoint_weight=args.keypoint_weight,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            with_interventions=args.with_interventions,
            log_every=5,
        )
        model, normalizer = pretrain_bc(
            episodes,
            vla,
            _instruction_encoder(args.language_model or vla.language_model),
            config,
            progress=BCProgress(args.perception_steps, args.steps),
            calibration=calibration,
        )
    except PretrainError as error:
        print(f"lwd train bc: {error}", file=sys.stderr)
        return 1
    write_pretrained(model, normalizer, args.out, args.version, len(episodes), args.steps)
    print(f"wrote {args.version} to {args.out}")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    """Publish a policy folder under the version its manifest names, then move the channel.

    A folder that is no policy, or a store that refuses it, is a user error (``lwd.cli`` reports it, exit 2).
    """
    from lwd_fleet.publisher import PolicyPublisher
    from lwd_fleet.signing import ReleaseKey
    from lwd_fleet.store import FleetStore
    from lwd_interfaces.manifest import read_manifest

    version = str(read_manifest(args.checkpoint).facts.get("version", ""))
    key = ReleaseKey.from_file(args.signing_key) if args.signing_key else None
    PolicyPublisher(FleetStore(args.store), key).publish(args.checkpoint, version, args.channel)
    signed = f"signed by key {key.key_id}" if key else "UNSIGNED: robots refuse it unless they allow unsigned policies"
    print(f"published {version} on {args.channel}, {signed}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Run the trainer service (single process, or one replica under torchrun)."""
    from lwd_learner.distributed import DistributedContext
    from lwd_learner.trainer import TrainerConfig, TrainerError, TrainerService

    if args.canary == args.channel:
        raise CommandError(f"--canary {args.canary} must differ from --channel {args.channel}")
    config = TrainerConfig(
        store_url=args.store,
        work_dir=args.work_dir,
        pretrained=args.pretrained,
        channel=args.channel,
        publish_every=args.publish_every,
        batch_size=args.batch_size,
        buffer_capacity=args.buffer_capacity,
        mix=args.mix,
        clone_mix=args.clone_mix,
        max_oversample=args.max_oversample,
        scan_every=args.scan_every,
        poll_interval=args.poll_interval,
        n_step=args.n_step,
        agent=args.agent,
        seed=args.seed,
        catalog=str(args.catalog or ""),
        cache_dir=str(args.cache_dir or ""),
        signing_key=str(args.signing_key or ""),
        ingest_workers=args.ingest_workers,
        canary_channel=args.canary,
        canary_window=args.canary_window,
        canary_margin=args.canary_margin,
    )
    context = DistributedContext.from_environment()
    try:
        service = TrainerService(
            config, lambda checkpoint: _instruction_encoder(checkpoint.config.language_model), context
        )
        try:
            meter = ProgressMeter("train", args.max_updates, "updates")
            step = service.run(args.max_updates, args.until_idle, lambda: meter.update(service.step, service.summary()))
        finally:
            service.close()
    except TrainerError as error:
        print(f"lwd train serve: {error}", file=sys.stderr)
        return 1
    finally:
        context.shutdown()
    print(f"trainer stopped at update {step}, published {service.published_version or '-'}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print the status figures the trainer last wrote."""
    from lwd_learner.telemetry import format_status, read_status

    status = read_status(args.work_dir / "telemetry")
    print(json.dumps(status, indent=2, sort_keys=True) if args.json else format_status(status))
    return 0
