"""``lwd train``: BC pretraining, the continual trainer service, its status, and publishing a checkpoint.

- ``lwd train bc --episodes DIR_OR_STORE --out CHECKPOINT_DIR``: the pretrained VLA.
- ``lwd train publish --store URL --checkpoint DIR``: put a policy folder on a store channel.
- ``lwd train serve --store URL --work-dir DIR``: ingest, train, publish, resume (runs under torchrun too).
- ``lwd train status --work-dir DIR``: the figures the service last reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lwd_fleet.layout import CATALOG_NAME

if TYPE_CHECKING:
    from lwd_policy.language import InstructionEncoder

LOGGER = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command group."""
    parser = subparsers.add_parser("train", help="pretrain, serve and inspect the LWD learner")
    commands = parser.add_subparsers(dest="train_command", required=True, metavar="TRAIN_COMMAND")

    bc = commands.add_parser("bc", help="BC flow-matching pretraining on demonstrations")
    bc.add_argument("--episodes", required=True, help="folder of episode bags, or a file:// fleet store URL")
    bc.add_argument("--out", required=True, type=Path, help="checkpoint folder to create")
    bc.add_argument("--version", default="v000000-bc", help="version string of the checkpoint")
    bc.add_argument("--vla-config", type=Path, help="JSON file of VLAConfig fields (default: the built-in config)")
    bc.add_argument("--steps", type=int, default=2000, help="gradient steps")
    bc.add_argument("--batch-size", type=int, default=32)
    bc.add_argument("--lr", type=float, default=3e-4)
    bc.add_argument("--seed", type=int, default=0)
    bc.add_argument("--with-interventions", action="store_true", help="also clone intervention steps (HG-DAgger)")
    bc.add_argument("--cache-dir", type=Path, default=Path(".lwd-cache/episodes"), help="decoded-episode cache")
    bc.add_argument("--language-model", default="", help="sentence-transformers model folder (default: MiniLM)")
    bc.set_defaults(handler=run_bc)

    publish = commands.add_parser("publish", help="publish a policy checkpoint folder to a store channel")
    publish.add_argument("--store", required=True, help="fleet store URL, e.g. file://./fleet")
    publish.add_argument("--checkpoint", required=True, type=Path, help="policy folder with manifest.json")
    publish.add_argument("--channel", default="stable")
    publish.set_defaults(handler=run_publish)

    serve = commands.add_parser("serve", help="continual trainer: watch the store, train, publish")
    serve.add_argument("--store", required=True, help="fleet store URL, e.g. file://./fleet")
    serve.add_argument("--work-dir", type=Path, default=Path("runs/trainer"), help="caches, checkpoints, telemetry")
    serve.add_argument("--pretrained", default="", help="policy folder or store version (default: the channel's)")
    serve.add_argument("--channel", default="stable")
    serve.add_argument("--publish-every", type=int, default=100, help="M: updates between published checkpoints")
    serve.add_argument("--batch-size", type=int, default=64)
    serve.add_argument("--buffer-capacity", type=int, default=200_000, help="transitions")
    serve.add_argument("--mix", default="demo=0.25,autonomous=0.5,intervention=0.25", help="sampling mix")
    serve.add_argument("--scan-every", type=int, default=50, help="updates between store scans")
    serve.add_argument("--poll-interval", type=float, default=5.0, help="seconds between scans while idle")
    serve.add_argument("--n-step", type=int, default=1)
    serve.add_argument("--agent", default="{}", help="JSON object of AgentConfig overrides, e.g. '{\"lam\": 0.3}'")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--catalog", default="", help=f"SQLite episode catalog (default: <work-dir>/{CATALOG_NAME})")
    serve.add_argument("--max-updates", type=int, help="stop at this many total updates")
    serve.add_argument("--until-idle", action="store_true", help="stop when a publish finds no new episodes")
    serve.set_defaults(handler=run_serve)

    status = commands.add_parser("status", help="print the trainer's last reported figures")
    status.add_argument("--work-dir", type=Path, default=Path("runs/trainer"))
    status.add_argument("--json", action="store_true", help="print the raw status JSON")
    status.set_defaults(handler=run_status)


def parse_mix(text: str) -> dict[str, float]:
    """``demo=0.25,autonomous=0.5`` → ``{"demo": 0.25, "autonomous": 0.5}``; ValueError on bad syntax."""
    mix = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, separator, value = part.partition("=")
        if not separator:
            raise ValueError(f"mix entry {part!r} is not name=weight")
        mix[name.strip()] = float(value)
    return mix


def _instruction_encoder(model_path: str) -> InstructionEncoder:
    """The sentence-embedding model (imported lazily: loading sentence-transformers takes seconds)."""
    from lwd_policy.language import InstructionEncoder

    return InstructionEncoder(model_path or None)


def run_bc(args: argparse.Namespace) -> int:
    """Pretrain the VLA by BC on the demonstrations found under ``--episodes``."""
    from lwd_learner.episode_cache import EpisodeCache
    from lwd_learner.pretrain import (
        PretrainConfig,
        PretrainError,
        find_episode_folders,
        load_episodes,
        pretrain_bc,
        reason_counts,
        write_pretrained,
    )
    from lwd_policy.config import VLAConfig

    vla = VLAConfig.from_json(args.vla_config.read_text()) if args.vla_config else VLAConfig()
    try:
        rejected = []
        folders = find_episode_folders(args.episodes)
        episodes = load_episodes(folders, EpisodeCache(args.cache_dir), vla.cameras, vla, rejected.append)
        print(f"{len(episodes)} usable episodes from {args.episodes}", flush=True)
        if rejected:
            held = ", ".join(f"{reason} {count}" for reason, count in reason_counts(rejected).items())
            print(f"{len(rejected)} set aside: {held} (each is named in the log)", flush=True)
        config = PretrainConfig(
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            with_interventions=args.with_interventions,
        )
        model, normalizer = pretrain_bc(
            episodes,
            vla,
            _instruction_encoder(args.language_model or vla.language_model),
            config,
            progress=lambda step, loss: print(f"step {step}/{args.steps} bc_loss {loss:.4f}", flush=True),
        )
    except PretrainError as error:
        print(f"lwd train bc: {error}", file=sys.stderr)
        return 1
    write_pretrained(model, normalizer, args.out, args.version, len(episodes), args.steps)
    print(f"wrote {args.version} to {args.out}")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    """Publish a policy folder under the version its manifest names, then move the channel."""
    from lwd_fleet.errors import PublishError
    from lwd_fleet.publisher import PolicyPublisher
    from lwd_fleet.store import FleetStore
    from lwd_interfaces.manifest import ManifestError, read_manifest

    try:
        version = str(read_manifest(args.checkpoint).facts.get("version", ""))
        PolicyPublisher(FleetStore(args.store)).publish(args.checkpoint, version, args.channel)
    except (ManifestError, PublishError) as error:
        print(f"lwd train publish: {error}", file=sys.stderr)
        return 1
    print(f"published {version} on {args.channel}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Run the trainer service (single process, or one replica under torchrun)."""
    from lwd_learner.distributed import DistributedContext
    from lwd_learner.trainer import TrainerConfig, TrainerError, TrainerService

    try:
        config = TrainerConfig(
            store_url=args.store,
            work_dir=args.work_dir,
            pretrained=args.pretrained,
            channel=args.channel,
            publish_every=args.publish_every,
            batch_size=args.batch_size,
            buffer_capacity=args.buffer_capacity,
            mix=parse_mix(args.mix),
            scan_every=args.scan_every,
            poll_interval=args.poll_interval,
            n_step=args.n_step,
            agent=json.loads(args.agent),
            seed=args.seed,
            catalog=args.catalog,
        )
    except (ValueError, json.JSONDecodeError) as error:
        print(f"lwd train serve: {error}", file=sys.stderr)
        return 2
    context = DistributedContext.from_environment()
    try:
        service = TrainerService(
            config, lambda checkpoint: _instruction_encoder(checkpoint.config.language_model), context
        )
        try:
            step = service.run(max_updates=args.max_updates, until_idle=args.until_idle)
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

    try:
        status = read_status(args.work_dir / "telemetry")
    except FileNotFoundError as error:
        print(f"lwd train status: {error}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2, sort_keys=True) if args.json else format_status(status))
    return 0
