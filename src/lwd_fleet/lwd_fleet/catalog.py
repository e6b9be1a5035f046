"""Catalog: an SQLite index of the committed episodes in the fleet store, and of the bags it rejected.

One row per episode (robot, task, policy versions, steps, interventions,
outcome, manifest sha256, store path, ingested time). ``ingest(store)``
walks the store's episode folders (robot, then day, then episode; see
:mod:`lwd_fleet.layout`): folders without a manifest are not yet episodes
and are skipped; malformed manifests, wrong kinds, missing ``lwd.*`` facts
and (with ``verify=True``) files failing their sha256 are recorded in the
``rejected`` table with the reason.
"""

from __future__ import annotations

import datetime
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from lwd_interfaces.episodes import COMPLETE_OUTCOMES
from lwd_interfaces.manifest import Manifest, ManifestError

from lwd_fleet.layout import EPISODES, day_episodes, episode_folder, manifest_key, robot_episodes
from lwd_fleet.store import FleetStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    episode_id TEXT PRIMARY KEY,
    robot_id TEXT NOT NULL,
    task TEXT NOT NULL,
    episode_kind TEXT NOT NULL,
    policy_versions TEXT NOT NULL,
    steps INTEGER NOT NULL,
    interventions INTEGER NOT NULL,
    intervention_steps INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    success INTEGER,
    sha256 TEXT NOT NULL,
    store_path TEXT NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    store_path TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
"""
REQUIRED_FACTS = ("lwd.robot_id", "lwd.episode_id", "lwd.task", "lwd.outcome", "lwd.steps", "lwd.interventions")


@dataclass(frozen=True)
class IngestReport:
    """What one ingest pass did."""

    added: int
    known: int
    pending: int
    rejected: int


@dataclass(frozen=True)
class GroupStats:
    """Success statistics of one (robot, task, policy versions) group."""

    robot_id: str
    task: str
    policy_versions: str
    episodes: int
    labelled: int
    successes: int

    @property
    def success_rate(self) -> float | None:
        """Successes over episodes labelled success or failure; None when none is labelled."""
        return self.successes / self.labelled if self.labelled else None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Catalog:
    """The SQLite catalog file."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) the catalog database."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def add(self, manifest: Manifest, store_path: str) -> bool:
        """Insert one episode from its manifest; returns False when it was already catalogued."""
        facts = manifest.facts
        missing = [key for key in REQUIRED_FACTS if key not in facts]
        if missing:
            raise ManifestError(f"manifest facts lack {', '.join(missing)}")
        outcome = str(facts["lwd.outcome"])
        row = (
            str(facts["lwd.episode_id"]),
            str(facts["lwd.robot_id"]),
            str(facts["lwd.task"]),
            str(facts.get("lwd.episode_kind", "deployment")),
            str(facts.get("lwd.policy_versions", "")),
            int(facts["lwd.steps"]),
            int(facts["lwd.interventions"]),
            int(facts.get("lwd.intervention_steps", 0)),
            outcome,
            (1 if outcome == "success" else 0) if outcome in COMPLETE_OUTCOMES else None,
            manifest.digest,
            store_path,
            _now(),
        )
        with self.db:
            cursor = self.db.execute(f"INSERT OR IGNORE INTO episodes VALUES ({','.join('?' * len(row))})", row)
            self.db.execute("DELETE FROM rejected WHERE store_path = ?", (store_path,))
        return cursor.rowcount == 1

    def reject(self, store_path: str, reason: str) -> None:
        """Record a bag that is not catalogued, and why."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?)", (store_path, reason, _now()))

    def ingest(self, store: FleetStore, verify: bool = False) -> IngestReport:
        """Catalogue every committed episode of the store (checking file sha256s when ``verify``)."""
        added = known = pending = rejected = 0
        for robot in store.listdir(EPISODES):
            for day in store.listdir(robot_episodes(robot)):
                for episode in store.listdir(day_episodes(robot, day)):
                    key = episode_folder(robot, day, episode)
                    if not store.exists(manifest_key(key)):
                        pending += 1
                        continue
                    try:
                        manifest = Manifest.from_json(store.read_bytes(manifest_key(key)))
                        if manifest.kind != "episode":
                            raise ManifestError(f"manifest kind is {manifest.kind!r}, expected 'episode'")
                        if verify:
                            for entry in manifest.files:
                                if store.sha256(f"{key}/{entry.path}") != entry.sha256:
                                    raise ManifestError(f"{entry.path} fails its sha256 check")
                        if self.add(manifest, key):
                            added += 1
                        else:
                            known += 1
                    except (ManifestError, ValueError, FileNotFoundError) as error:
                        self.reject(key, str(error))
                        rejected += 1
        return IngestReport(added, known, pending, rejected)

    def episodes(self, robot_id: str | None = None, task: str | None = None) -> list[sqlite3.Row]:
        """Catalogued episodes, optionally filtered, in store-path order."""
        query = (
            "SELECT * FROM episodes WHERE (? IS NULL OR robot_id = ?) AND (? IS NULL OR task = ?) ORDER BY store_path"
        )
        return list(self.db.execute(query, (robot_id, robot_id, task, task)))

    def rejected(self) -> list[sqlite3.Row]:
        """Rejected bags with their reasons."""
        return list(self.db.execute("SELECT * FROM rejected ORDER BY store_path"))

    def stats(self) -> list[GroupStats]:
        """Success statistics per robot, task and policy versions."""
        query = """
            SELECT robot_id, task, policy_versions, COUNT(*) AS episodes, COUNT(success) AS labelled,
                   COALESCE(SUM(success), 0) AS successes
            FROM episodes GROUP BY robot_id, task, policy_versions ORDER BY robot_id, task, policy_versions
        """
        return [GroupStats(*row) for row in self.db.execute(query)]
