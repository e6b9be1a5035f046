"""``lwd store``: the fleet store's episode catalog, and a one-shot upload of a spool.

- ``lwd store ingest``: index the store's committed episodes in the SQLite catalog.
- ``lwd store ls``: list catalogued episodes (ingesting first unless ``--no-ingest``); ``--rejected`` lists the
  quarantine instead: each episode set aside by the catalog or the trainer, its reason and detail. A rejected
  episode is never listed or counted as usable.
- ``lwd store stats``: success rates per robot, task and policy versions.
- ``lwd store upload SPOOL``: upload a spool's committed episodes (what the bridge node does continuously);
  one that fails verification is moved to ``SPOOL/.quarantine/`` and the others go on.

The store URL comes from ``--store`` or ``$LWD_STORE`` (default ``file://./fleet``). Reading commands
(ingest, ls, stats) open only a store that exists; ``upload`` writes, so it makes a new ``file://`` store.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lwd_fleet.layout import CATALOG_NAME

from lwd.arguments import CommandError, add_path, store_url

DEFAULT_CATALOG = Path(".lwd-cache") / CATALOG_NAME
DEFAULT_STORE = os.environ.get("LWD_STORE", "file://./fleet")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``store`` command group."""
    parser = subparsers.add_parser("store", help="fleet store catalog and uploads")
    commands = parser.add_subparsers(dest="store_command", required=True, metavar="STORE_COMMAND")

    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument("--store", type=store_url, default=DEFAULT_STORE, help="fsspec URL")
        add_path(command, "--catalog", must_be="in_dir", help=f"SQLite catalog file (default: {DEFAULT_CATALOG})")

    ingest = commands.add_parser("ingest", help="index committed episodes of the store")
    common(ingest)
    ingest.add_argument("--verify", action="store_true", help="re-read every file and check its sha256")
    ingest.set_defaults(handler=run_ingest)

    ls = commands.add_parser("ls", help="list catalogued episodes")
    common(ls)
    ls.add_argument("--robot", help="only this robot")
    ls.add_argument("--task", help="only this task")
    ls.add_argument("--no-ingest", action="store_true", help="list the catalog as it is, without reading the store")
    ls.add_argument("--rejected", action="store_true", help="list rejected bags and their reasons instead")
    ls.set_defaults(handler=run_ls)

    stats = commands.add_parser("stats", help="success rates per robot / task / policy versions")
    common(stats)
    stats.add_argument("--no-ingest", action="store_true")
    stats.set_defaults(handler=run_stats)

    upload = commands.add_parser("upload", help="upload a spool's committed episodes once")
    add_path(upload, "spool", must_be="dir")
    upload.add_argument("--store", type=store_url, default=DEFAULT_STORE, help="fsspec URL")
    upload.set_defaults(handler=run_upload)


def _ingest(args: argparse.Namespace, verify: bool = False):
    """The catalog, after ingesting the store unless ``--no-ingest`` (the store must exist, the catalog's folder
    is made only for the default catalog)."""
    from lwd_fleet.catalog import Catalog
    from lwd_fleet.store import FleetStore

    path = args.catalog or DEFAULT_CATALOG
    ingest = not getattr(args, "no_ingest", False)
    if not ingest and not path.is_file():
        raise CommandError(f"catalog {path} does not exist (run without --no-ingest to build it)")
    store = FleetStore(args.store, create=False) if ingest else None
    catalog = Catalog(path)
    if store is not None:
        report = catalog.ingest(store, verify=verify)
        print(
            f"ingested {report.added} new, {report.known} known, {report.pending} pending (no manifest yet), "
            f"{report.rejected} rejected"
        )
    return catalog


def run_ingest(args: argparse.Namespace) -> int:
    """Index the store."""
    _ingest(args, verify=args.verify).close()
    return 0


def run_ls(args: argparse.Namespace) -> int:
    """Print one line per catalogued (or rejected) episode."""
    catalog = _ingest(args)
    if args.rejected:
        for row in catalog.rejected():
            print(f"{row['store_path']}  {row['reason']}  {row['detail']}")
    else:
        print(f"{'episode':<24} {'robot':<12} {'task':<16} {'outcome':<10} {'steps':>6} {'interv':>6} policy")
        for row in catalog.episodes(robot_id=args.robot, task=args.task):
            print(
                f"{row['episode_id']:<24} {row['robot_id']:<12} {row['task']:<16} {row['outcome']:<10} "
                f"{row['steps']:>6} {row['interventions']:>6} {row['policy_versions']}"
            )
    catalog.close()
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print success rates per group."""
    catalog = _ingest(args)
    print(f"{'robot':<12} {'task':<16} {'policy versions':<24} {'episodes':>8} {'labelled':>8} {'success':>8}")
    for group in catalog.stats():
        rate = f"{group.success_rate:.1%}" if group.success_rate is not None else "-"
        print(
            f"{group.robot_id:<12} {group.task:<16} {group.policy_versions:<24} {group.episodes:>8} "
            f"{group.labelled:>8} {rate:>8}"
        )
    catalog.close()
    return 0


def run_upload(args: argparse.Namespace) -> int:
    """Upload a spool once."""
    from lwd_fleet.store import FleetStore
    from lwd_logger.bridge import QUARANTINE_DIR, BagBridge
    from lwd_logger.spool import Spool

    bridge = BagBridge(Spool(args.spool), FleetStore(args.store))
    results = bridge.upload_pending()
    for result in results:
        print(f"uploaded {result.episode_id} -> {result.key} ({result.bytes_sent} bytes sent)")
    print(f"{len(results)} episode(s) uploaded")
    if bridge.quarantined:
        print(f"{bridge.quarantined} episode(s) failed verification, moved to {args.spool / QUARANTINE_DIR}")
    return 0
