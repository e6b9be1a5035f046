"""Catalog: an SQLite index of the committed episodes in the fleet store, and the quarantine of the bags rejected.

One row per episode (robot, task, policy versions, steps, interventions,
outcome, manifest sha256, store path, ingested time). ``ingest(store)``
walks the store's episode folders (robot, then day, then episode; see
:mod:`lwd_fleet.layout`): folders without a manifest are not yet episodes
and are skipped; malformed manifests, wrong kinds, missing ``lwd.*`` facts
and (with ``verify=True``) files failing their sha256 are recorded in the
``rejected`` table.

The ``rejected`` table is the fleet's one quarantine record: every stage that
sets an episode aside (this ingest, the trainer's) writes a named reason
(:mod:`lwd_fleet.quarantine`), the detail and the manifest digest there. A
rejected episode is never counted as usable, and ``ingest`` does not look at it
again while its manifest digest is unchanged.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from lwd_interfaces.episodes import COMPLETE_OUTCOMES
from lwd_interfaces.manifest import Manifest, ManifestError

from lwd_fleet.layout import EPISODES, day_episodes, episode_folder, manifest_key, robot_episodes
from lwd_fleet.quarantine import CHECKSUM_MISMATCH, INVALID_MANIFEST, manifest_identity
from lwd_fleet.store import FleetStore

LOGGER = logging.getLogger(__name__)

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
    seen_at TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT ''
);
"""
_MIGRATION = """
ALTER TABLE rejected ADD COLUMN detail TEXT NOT NULL DEFAULT '';
ALTER TABLE rejected ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';
UPDATE rejected SET detail = reason, reason = 'unclassified';
"""
"""A catalog written before named reasons kept the message in ``reason``: it becomes the detail."""
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
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(rejected)")}
        if "detail" not in columns:
            with self.db:
                self.db.executescript(_MIGRATION)

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

    def reject(self, store_path: str, reason: str, detail: str, sha256: str = "") -> None:
        """Quarantine an episode: ``reason`` is a name of :data:`lwd_fleet.quarantine.REASONS`, ``detail`` the
        one-line message, ``sha256`` its manifest digest. It leaves the catalogued episodes if it was there."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO rejected (store_path, reason, seen_at, detail, sha256) VALUES (?, ?, ?, ?, ?)",
                (store_path, reason, _now(), detail, sha256),
            )
            self.db.execute("DELETE FROM episodes WHERE store_path = ?", (store_path,))

    def rejection(self, store_path: str, sha256: str) -> sqlite3.Row | None:
        """The quarantine record of the episode at ``store_path`` when it holds the content ``sha256``, else None."""
        query = "SELECT * FROM rejected WHERE store_path = ? AND sha256 = ?"
        return self.db.execute(query, (store_path, sha256)).fetchone()

    def quarantine_counts(self) -> dict[str, int]:
        """How many episodes are quarantined under each reason."""
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM rejected GROUP BY reason ORDER BY reason"))

    def ingest(self, store: FleetStore, verify: bool = False) -> IngestReport:
        """Catalogue every committed episode of the store (checking file sha256s when ``verify``)."""
        outcomes = {"added": 0, "known": 0, "pending": 0, "rejected": 0}
        for robot in store.listdir(EPISODES):
            for day in store.listdir(robot_episodes(robot)):
                for episode in store.listdir(day_episodes(robot, day)):
                    outcomes[self._ingest_one(store, episode_folder(robot, day, episode), verify)] += 1
        return IngestReport(**outcomes)

    def _ingest_one(self, store: FleetStore, key: str, verify: bool) -> str:
        """Catalogue one episode folder; returns which IngestReport count it adds to."""
        if not store.exists(manifest_key(key)):
            return "pending"
        identity = ""
        try:
            manifest_bytes = store.read_bytes(manifest_key(key))
            identity = manifest_identity(manifest_bytes)
            if self.rejection(key, identity) is not None:
                return "rejected"
            manifest = Manifest.from_json(manifest_bytes)
            if manifest.kind != "episode":
                raise ManifestError(f"manifest kind is {manifest.kind!r}, expected 'episode'")
        except (ManifestError, ValueError, IsADirectoryError, NotADirectoryError) as error:
            return self._quarantine(key, INVALID_MANIFEST, str(error), identity)
        for entry in manifest.files if verify else ():
            try:
                intact = store.sha256(f"{key}/{entry.path}") == entry.sha256
            except (FileNotFoundError, IsADirectoryError):
                intact = False
            if not intact:
                return self._quarantine(key, CHECKSUM_MISMATCH, f"{entry.path} fails its sha256 check", identity)
        try:
            return "added" if self.add(manifest, key) else "known"
        except (ManifestError, ValueError) as error:
            return self._quarantine(key, INVALID_MANIFEST, str(error), identity)

    def _quarantine(self, key: str, reason: str, detail: str, sha256: str) -> str:
        detail = f"{key}: {detail}"
        LOGGER.warning("catalog: quarantined %s (%s): %s", key, reason, detail)
        self.reject(key, reason, detail, sha256)
        return "rejected"

    def episodes(self, robot_id: str | None = None, task: str | None = None) -> list[sqlite3.Row]:
        """Catalogued episodes, optionally filtered, in store-path order."""
        query = (
            "SELECT * FROM episodes WHERE (? IS NULL OR robot_id = ?) AND (? IS NULL OR task = ?) ORDER BY store_path"
        )
        return list(self.db.execute(query, (robot_id, robot_id, task, task)))

    def rejected(self) -> list[sqlite3.Row]:
        """The quarantine: rejected episodes with their reason, detail and manifest digest."""
        return list(self.db.execute("SELECT * FROM rejected ORDER BY store_path"))

    def version_outcomes(self, version: str) -> tuple[int, int]:
        """(successes, labelled) of the deployment episodes run on ``version`` alone (no hot swap mid-episode),
        counting only episodes labelled success or failure."""
        query = """
            SELECT COALESCE(SUM(success), 0), COUNT(success) FROM episodes
            WHERE episode_kind = 'deployment' AND policy_versions = ?
        """
        successes, labelled = self.db.execute(query, (version,)).fetchone()
        return int(successes), int(labelled)

    def stats(self) -> list[GroupStats]:
        """Success statistics per robot, task and policy versions."""
        query = """
            SELECT robot_id, task, policy_versions, COUNT(*) AS episodes, COUNT(success) AS labelled,
                   COALESCE(SUM(success), 0) AS successes
            FROM episodes GROUP BY robot_id, task, policy_versions ORDER BY robot_id, task, policy_versions
        """
        return [GroupStats(*row) for row in self.db.execute(query)]
