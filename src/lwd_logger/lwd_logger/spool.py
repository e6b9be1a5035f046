"""The robot's local spool: where episodes are recorded, committed, and wait for upload.

Layout: ``<root>/.recording/<episode_id>/`` while recording (or after a
crash), ``<root>/<episode_id>/`` once committed (rosbag2 folder +
manifest.json). Keeping the episode id as the folder name from the start
gives the storage file its final name (``<episode_id>.mcap``).
The quota (maximum spool bytes, minimum free disk bytes) is checked before an
episode starts; over quota, ``SpoolFullError`` stops new episodes. The spool
never deletes anything itself: only the bridge does, after verifying the upload.
``commit_folder`` is the one way a partial folder becomes a committed episode (the recorder's clean
end, which passes the sha256 its writer computed while writing, and crash recovery, which hashes
the files it salvaged, both use it); ``JOURNAL_NAME`` is the journal a partial folder carries.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from lwd_interfaces.manifest import MANIFEST_NAME, FileEntry, build_manifest, write_manifest

from lwd_logger.errors import SpoolFullError

RECORDING_DIR = ".recording"
JOURNAL_NAME = "lwd_journal.json"
log = logging.getLogger(__name__)


def commit_folder(
    partial: Path, committed: Path, facts: dict[str, Any], hashed: dict[str, FileEntry] | None = None
) -> Path:
    """Write the episode manifest last, then rename the partial folder to its committed name.

    ``hashed``: entries of files the writer hashed as it wrote them; only the others are read to hash them.
    """
    write_manifest(partial, build_manifest(partial, "episode", facts, hashed))
    os.replace(partial, committed)
    directory = os.open(committed.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return committed


class Spool:
    """A spool folder with a byte quota and a free-disk floor."""

    def __init__(self, root: str | Path, max_bytes: int | None = None, min_free_bytes: int = 0) -> None:
        """``max_bytes`` None means no spool-size limit; ``min_free_bytes`` is the free disk space to keep."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes

    def partial_path(self, episode_id: str) -> Path:
        """Folder an episode is recorded into."""
        return self.root / RECORDING_DIR / episode_id

    def committed_path(self, episode_id: str) -> Path:
        """Folder of a committed episode."""
        return self.root / episode_id

    def partials(self) -> list[Path]:
        """Folders of episodes still recording or interrupted by a crash."""
        recording = self.root / RECORDING_DIR
        return sorted(p for p in recording.iterdir() if p.is_dir()) if recording.is_dir() else []

    def committed(self) -> list[Path]:
        """Committed episode folders (a manifest is present), oldest name first."""
        return sorted(
            p
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_NAME).is_file()
        )

    def used_bytes(self) -> int:
        """Bytes of every file in the spool."""
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def free_bytes(self) -> int:
        """Free bytes on the spool's disk."""
        return shutil.disk_usage(self.root).free

    def check_quota(self, min_free_bytes: int = 0) -> None:
        """Raise ``SpoolFullError`` (and log it loudly) when a new episode must not start.

        ``min_free_bytes`` raises the free-disk floor for this check (the recorder does after a full disk).
        """
        used = self.used_bytes()
        free = self.free_bytes()
        floor = max(self.min_free_bytes, min_free_bytes)
        problem = None
        if self.max_bytes is not None and used >= self.max_bytes:
            problem = f"spool {self.root} holds {used} bytes, quota is {self.max_bytes}"
        elif free < floor:
            problem = f"disk of spool {self.root} has {free} bytes free, minimum is {floor}"
        if problem:
            message = (
                f"SPOOL FULL: {problem}. No new episode will start until the bridge uploads and frees "
                f"committed episodes; nothing un-uploaded is deleted."
            )
            log.error(message)
            raise SpoolFullError(message)
