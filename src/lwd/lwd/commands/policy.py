"""``lwd policy``: create, verify and smoke-test policy checkpoints, and make release keys.

- ``lwd policy init OUT``: write a randomly initialised default VLA checkpoint (identity normalization),
  a starting point before any BC pretraining.
- ``lwd policy verify FOLDER [--robot NAME]``: check the manifest, config, statistics (against the robot
  profile's joint limits with ``--robot``) and tensors; print a summary, or one ``INVALID:`` line.
- ``lwd policy sample FOLDER``: verify, then run one chunk inference on a blank observation and report it.
- ``lwd policy keygen --out DIR [--name NAME]``: a new release key pair, ``NAME.key`` (the trainer's, mode
  0600, never printed) and ``NAME.pub`` (the robots' ``trusted_keys``); prints the key id. Never overwrites.

``verify`` answers a question, so an invalid checkpoint is its "no" (INVALID on stdout, exit 1); for
``sample`` it is a user error (one line on stderr, exit 2, from ``lwd.cli``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lwd_interfaces.robots import ROBOTS

from lwd.arguments import add_path, file_name, name_list, non_negative_int, policy_version, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``policy`` command group."""
    parser = subparsers.add_parser("policy", help="policy checkpoints: init, verify, sample; release keys")
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="POLICY_COMMAND")

    init = commands.add_parser("init", help="write a randomly initialised checkpoint")
    init.add_argument("out", type=Path, help="checkpoint folder to create")
    init.add_argument("--version", type=policy_version, default="v000000", help="version string (default v000000)")
    init.add_argument("--seed", type=non_negative_int, default=0, help="weight initialisation seed")
    init.add_argument("--cameras", type=name_list, default="top", help="comma-separated camera names")
    init.add_argument("--horizon", type=positive_int, default=20, help="chunk length H [steps]")
    init.add_argument("--flow-steps", type=positive_int, default=10, help="Euler steps K")
    init.set_defaults(handler=run_init)

    verify = commands.add_parser("verify", help="verify a checkpoint and print its summary")
    add_path(verify, "folder", must_be="dir")
    verify.add_argument("--json", action="store_true", help="print the summary as JSON")
    verify.add_argument(
        "--robot", choices=sorted(ROBOTS), help="robot profile whose joint limits the statistics must suit"
    )
    verify.set_defaults(handler=run_verify)

    sample = commands.add_parser("sample", help="run one inference on a blank observation")
    add_path(sample, "folder", must_be="dir")
    sample.add_argument("--instruction", default="pick up the cube", help="instruction text")
    sample.add_argument("--seed", type=non_negative_int, default=0, help="sampling noise seed")
    sample.set_defaults(handler=run_sample)

    keygen = commands.add_parser("keygen", help="make a release key pair that signs published policies")
    keygen.add_argument("--out", required=True, type=Path, help="folder for NAME.key and NAME.pub (made 0700)")
    keygen.add_argument("--name", type=file_name, default="release", help="key pair file name (default release)")
    keygen.set_defaults(handler=run_keygen)


def run_init(args: argparse.Namespace) -> int:
    """``lwd policy init``."""
    from lwd_policy.checkpoint_tools import init_checkpoint
    from lwd_policy.config import VLAConfig

    config = VLAConfig(cameras=args.cameras, horizon=args.horizon, flow_steps=args.flow_steps)
    manifest = init_checkpoint(args.out, args.version, config, args.seed)
    print(f"wrote {args.out} (version {args.version}, manifest sha256 {manifest.digest})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """``lwd policy verify``: exit status 0 when valid, 1 with the reason otherwise."""
    from lwd_policy.checkpoint import CheckpointError
    from lwd_policy.checkpoint_tools import checkpoint_summary

    try:
        summary = checkpoint_summary(args.folder, ROBOTS.get(args.robot))
    except CheckpointError as error:
        print(f"INVALID: {error}")
        return 1
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    io = summary["io"]
    print(
        f"OK {summary['version']}: {summary['parameters'] / 1e6:.2f} M parameters, cameras {io['cameras']} "
        f"{io['image_height']}x{io['image_width']}, H={io['horizon']} D={io['action_dim']} "
        f"K={summary['flow_steps']}, manifest sha256 {summary['manifest_sha256']}"
    )
    return 0


def run_sample(args: argparse.Namespace) -> int:
    """``lwd policy sample``: exit 1 when the chunk is not finite (a bad checkpoint is reported by ``lwd.cli``)."""
    from lwd_policy.checkpoint_tools import sample_chunk

    report = sample_chunk(args.folder, args.instruction, args.seed)
    print(
        f"{report.version}: chunk {report.shape[0]}x{report.shape[1]} in {report.latency_ms:.1f} ms "
        f"(embedding cached), range [{report.minimum:.3f}, {report.maximum:.3f}], finite={report.finite}"
    )
    return 0 if report.finite else 1


def run_keygen(args: argparse.Namespace) -> int:
    """``lwd policy keygen``: write a key pair; an existing key file is a user error (exit 2), never overwritten."""
    from lwd_fleet.signing import generate_key_pair

    private, public, key_id = generate_key_pair(args.out, args.name)
    print(f"release key {key_id}: private {private} (mode 0600: keep it on the trainer only), public {public}")
    return 0
