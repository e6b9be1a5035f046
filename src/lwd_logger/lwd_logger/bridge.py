"""BagBridge: uploads committed episodes from the local spool to the fleet store, then frees the spool.

For each committed episode: check that every file its manifest lists is there with its size (the sha256
values were computed by the recorder as it wrote the bag, so nothing is hashed here), upload every file to
its episode folder in the store (:func:`lwd_fleet.layout.episode_folder`; skipping remote files the store
proves already match, resuming partial ones), have the store prove each copy has the manifest's sha256
(``FleetStore.upload_proven``: the sftp server's own sha256sum where it can run one, else a read-back, which a
local store runs behind its copy), write the manifest last, read it back, and only then delete the local
copy. On the good path each byte is read once locally (to send it) and hashed once, where the store keeps it.
The local file is hashed only when a proof fails, to tell a damaged remote copy (StoreError; tried again)
from local bytes that changed after the recorder hashed them. Store errors are retried with exponential
backoff and a reconnect; after the last attempt the episode stays in the spool and ``StoreUnavailableError``
is raised.

A committed episode whose local bytes fail their manifest (or whose facts cannot
place it in the store) can never be uploaded; the files this attempt sent are removed
from the store, and ``upload_pending`` moves the episode aside
to ``<spool>/.quarantine/<name>`` with a ``<name>.reason.json`` beside it (reason
name from :mod:`lwd_fleet.quarantine`, detail, time), logs and counts it, and
uploads the others. Nothing is deleted, and a store outage is never a reason.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lwd_fleet.errors import StoreError, StoreUnavailableError
from lwd_fleet.layout import episode_day, episode_folder, manifest_key
from lwd_fleet.quarantine import CHECKSUM_MISMATCH, INVALID_FACTS
from lwd_fleet.store import TRANSIENT_ERRORS, FleetStore
from lwd_interfaces.manifest import MANIFEST_NAME, FileEntry, Manifest, ManifestError, read_manifest, sha256_file

from lwd_logger.spool import Spool

T = TypeVar("T")
log = logging.getLogger(__name__)
QUARANTINE_DIR = ".quarantine"
"""Folder of the spool that unverifiable episodes are moved into (the spool skips dot folders)."""


class UnverifiableEpisodeError(StoreError):
    """A local committed episode can never be uploaded as it is; ``reason`` names why (lwd_fleet.quarantine)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class UploadResult:
    """One uploaded episode: where it went, how many bytes were actually sent, and its manifest digest."""

    episode_id: str
    key: str
    bytes_sent: int
    files_skipped: int
    sha256: str


def episode_key(manifest: Manifest, folder: Path) -> str:
    """Store key of an episode's folder, from its robot, id and start day (UTC)."""
    facts = manifest.facts
    robot_id = facts.get("lwd.robot_id")
    episode_id = facts.get("lwd.episode_id", folder.name)
    if not robot_id:
        raise UnverifiableEpisodeError(
            f"{folder}: manifest facts lack lwd.robot_id; cannot place it in the store", INVALID_FACTS
        )
    start_ns = int(facts.get("lwd.start_time_ns") or (folder / MANIFEST_NAME).stat().st_mtime_ns)
    return episode_folder(robot_id, episode_day(start_ns), episode_id)


def local_manifest(folder: Path) -> Manifest:
    """A committed spool episode's manifest, once every file it lists is present with its size (nothing hashed).

    UnverifiableEpisodeError (checksum_mismatch) when the manifest is unreadable or a file is missing or resized.
    """
    try:
        manifest = read_manifest(folder)
        if manifest.kind != "episode":
            raise ManifestError(f"{folder}: manifest kind is {manifest.kind!r}, expected 'episode'")
        for entry in manifest.files:
            path = folder / entry.path
            if not path.is_file():
                raise ManifestError(f"{folder}: {entry.path} is listed in the manifest but missing")
            if path.stat().st_size != entry.size:
                raise ManifestError(
                    f"{folder}: {entry.path} has {path.stat().st_size} bytes, manifest says {entry.size}"
                )
    except ManifestError as error:
        raise UnverifiableEpisodeError(
            f"local episode {folder} fails verification, not uploaded (kept): {error}", CHECKSUM_MISMATCH
        ) from error
    return manifest


class BagBridge:
    """Uploads the spool's committed episodes to a ``FleetStore``."""

    def __init__(
        self,
        spool: Spool,
        store: FleetStore,
        max_attempts: int = 6,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wire the spool and store; retries wait base_delay_s * 2**n, capped at max_delay_s."""
        self.spool = spool
        self.store = store
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep
        self.quarantined = 0

    def with_retries(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``, retrying store errors with exponential backoff and a reconnect between tries."""
        delay = self.base_delay_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                return action()
            except (*TRANSIENT_ERRORS, StoreUnavailableError) as error:
                if attempt == self.max_attempts:
                    raise StoreUnavailableError(
                        f"{what}: store {self.store.display_url} still failing after {attempt} attempts: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                log.warning(
                    "%s: store %s error (%s), retry %d/%d in %.1f s",
                    what,
                    self.store.display_url,
                    type(error).__name__,
                    attempt,
                    self.max_attempts - 1,
                    delay,
                )
                self.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
                try:
                    self.store.reconnect()
                except StoreUnavailableError as reconnect_error:
                    log.warning("%s: reconnect failed: %s", what, reconnect_error)
        raise AssertionError("unreachable: the loop returns or raises")

    def upload_episode(self, folder: Path) -> UploadResult:
        """Upload one committed episode (one attempt) and delete it locally once the store proved every file."""
        manifest = local_manifest(folder)
        key = episode_key(manifest, folder)
        sent: list[str] = []
        skipped = bytes_sent = 0
        try:
            for entry in manifest.files:
                remote = f"{key}/{entry.path}"
                if self.store.size(remote) == entry.size and self.store.holds(remote, entry.sha256):
                    skipped += 1
                    continue
                sent.append(remote)
                bytes_sent += self._send(folder, entry, remote)
        except UnverifiableEpisodeError:
            for remote in sent[:-1]:
                self.store.remove(remote)
            self.store.remove_empty_folder(key)
            raise
        manifest_bytes = manifest.to_json().encode()
        self.store.write_bytes(manifest_key(key), manifest_bytes)
        if self.store.read_bytes(manifest_key(key)) != manifest_bytes:
            raise StoreError(f"{manifest_key(key)}: manifest read back from the store differs")
        shutil.rmtree(folder)
        log.info(
            "uploaded %s to %s/%s (%d bytes sent, %d files already there)",
            folder.name,
            self.store.display_url,
            key,
            bytes_sent,
            skipped,
        )
        return UploadResult(folder.name, key, bytes_sent, skipped, manifest.digest)

    def _send(self, folder: Path, entry: FileEntry, remote: str) -> int:
        """Upload one file and have the store prove its copy matches the manifest; returns the bytes sent.

        Only when the proof fails is the local file hashed, to tell a store that damaged the copy (StoreError, the
        episode is tried again) from local bytes that changed after the recorder hashed them (quarantined).
        """
        sent, proven = self.store.upload_proven(folder / entry.path, remote, entry.sha256)
        if proven:
            return sent
        self.store.remove(remote)
        if sha256_file(folder / entry.path) != entry.sha256:
            raise UnverifiableEpisodeError(
                f"local episode {folder} fails verification, not uploaded (kept): {entry.path} fails its sha256 "
                f"check (its bytes changed after the recorder hashed them)",
                CHECKSUM_MISMATCH,
            )
        raise StoreError(f"{remote}: sha256 read back from {self.store.display_url} differs after upload")

    def upload_pending(self) -> list[UploadResult]:
        """Upload every committed episode of the spool, with retries; returns what was uploaded.

        An episode that can never be uploaded is quarantined and the others go on; a store outage still raises.
        """
        results = []
        for folder in self.spool.committed():
            try:
                results.append(self.with_retries(f"upload {folder.name}", lambda f=folder: self.upload_episode(f)))
            except UnverifiableEpisodeError as error:
                self.quarantine(folder, error.reason, str(error))
        return results

    def quarantine(self, folder: Path, reason: str, detail: str) -> Path:
        """Move a spool episode aside into ``<spool>/.quarantine/``, a reason file beside it; returns where it went."""
        root = self.spool.root / QUARANTINE_DIR
        root.mkdir(exist_ok=True)
        target = root / folder.name
        if target.exists():
            target = root / f"{folder.name}-{time.time_ns()}"
        folder.rename(target)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        body = {"episode": folder.name, "reason": reason, "detail": detail, "quarantined_at": stamp}
        (root / f"{target.name}.reason.json").write_text(json.dumps(body, indent=2) + "\n")
        self.quarantined += 1
        log.error("bridge: quarantined %s to %s (%s): %s", folder.name, target, reason, detail)
        return target

    def run(self, stop: threading.Event, poll_s: float = 5.0) -> None:
        """Upload pending episodes every ``poll_s`` until ``stop`` is set; store outages are logged, not fatal."""
        while not stop.is_set():
            try:
                self.upload_pending()
            except StoreError as error:
                log.error("bridge: %s", error)
            stop.wait(poll_s)
