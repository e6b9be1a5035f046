"""Atomic publication of policy versions to the fleet store.

Order (docs/contracts.md, "Artifacts and the fleet store"): upload every weight and
config file of ``policies/<version>/``, verify their sizes remotely, upload
``manifest.json`` last, and only then move ``policies/channels/<name>`` by writing
a temp file and renaming it over the pointer. A robot that reads the channel
therefore never sees a version whose manifest is not yet in place.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import fsspec
from lwd_interfaces.manifest import MANIFEST_NAME, Manifest, ManifestError, verify_folder

from lwd_fleet.errors import PublishError

LOGGER = logging.getLogger(__name__)
POLICIES = "policies"
CHANNELS = "channels"


class PolicyPublisher:
    """Uploads verified local policy folders to ``<store>/policies/<version>/`` and moves channel pointers."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.fs, root = fsspec.core.url_to_fs(store_url)
        self.root = root.rstrip("/")

    def version_path(self, version: str) -> str:
        """Store path of a version's folder."""
        return f"{self.root}/{POLICIES}/{version}"

    def channel_path(self, channel: str) -> str:
        """Store path of a channel pointer file."""
        if not channel or "/" in channel or channel.startswith("."):
            raise PublishError(f"invalid channel name {channel!r}")
        return f"{self.root}/{POLICIES}/{CHANNELS}/{channel}"

    def channel_version(self, channel: str) -> str | None:
        """The version a channel serves, or None when the channel does not exist yet."""
        path = self.channel_path(channel)
        if not self.fs.exists(path):
            return None
        return self.fs.cat_file(path).decode().strip()

    def remote_manifest(self, version: str) -> Manifest | None:
        """The committed manifest of a published version, or None when it is not (fully) published."""
        path = f"{self.version_path(version)}/{MANIFEST_NAME}"
        if not self.fs.exists(path):
            return None
        return Manifest.from_json(self.fs.cat_file(path))

    def publish(self, folder: str | os.PathLike[str], version: str, channel: str | None = None) -> Manifest:
        """Upload a local policy folder as ``version`` (manifest last), then point ``channel`` at it.

        Re-publishing identical content is a no-op upload; different content under an existing version
        raises PublishError. The local folder is verified against its manifest before anything is sent.
        """
        try:
            manifest = verify_folder(folder, kind="policy")
        except ManifestError as error:
            raise PublishError(f"refusing to publish {folder}: {error}") from error
        if manifest.facts.get("version") not in (None, version):
            raise PublishError(f"{folder} holds version {manifest.facts['version']!r}, not {version!r}")
        existing = self.remote_manifest(version)
        if existing is not None and existing.digest != manifest.digest:
            raise PublishError(f"store already holds a different policy under version {version!r}")
        if existing is None:
            self._upload(Path(folder), version, manifest)
        if channel is not None:
            self.move_channel(channel, version)
        LOGGER.info("published policy %s%s", version, f" on channel {channel}" if channel else "")
        return manifest

    def _upload(self, folder: Path, version: str, manifest: Manifest) -> None:
        remote = self.version_path(version)
        self.fs.makedirs(remote, exist_ok=True)
        for entry in manifest.files:
            target = f"{remote}/{entry.path}"
            parent = target.rsplit("/", 1)[0]
            if parent != remote:
                self.fs.makedirs(parent, exist_ok=True)
            self.fs.put_file(str(folder / entry.path), target)
            size = self.fs.size(target)
            if size != entry.size:
                raise PublishError(f"upload of {target} has {size} bytes, expected {entry.size}")
        self.fs.pipe_file(f"{remote}/{MANIFEST_NAME}", manifest.to_json().encode())

    def move_channel(self, channel: str, version: str) -> None:
        """Point ``channel`` at an already published version: temp file, then rename over the pointer."""
        if self.remote_manifest(version) is None:
            raise PublishError(f"cannot point channel {channel!r} at {version!r}: the version has no manifest")
        target = self.channel_path(channel)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{target.rsplit('/', 1)[0]}/.{channel}.{uuid.uuid4().hex}.tmp"
        self.fs.pipe_file(temporary, f"{version}\n".encode())
        self.fs.mv(temporary, target)
