"""ChannelWatcher: follows a policy channel of the fleet store and brings new versions into a local cache.

``poll()`` reads the channel's file in the store; when it names a version not
yet reported, the watcher downloads the version's folder (manifest first, then
each listed file; keys from :mod:`lwd_fleet.layout`) into the local policy
cache's staging folder, verifies every file against the manifest, renames it
to the version's cache folder (:mod:`lwd_fleet.policy_cache`) and reports it.
A version that fails verification is refused with ``PolicyVerificationError``
and never reported. The policy runtime loads the reported folder.

``poll()`` raises nothing but lwd_fleet's own errors (:class:`FleetError`): bad
content (a channel file that is a folder or not UTF-8, a manifest entry naming
no file, a listed file that is a folder) is a ``StoreError`` or
``PolicyVerificationError`` with a one-line message, and an unreachable store a
``StoreUnavailableError``, so a host's worker logs it and keeps serving the
version it reported last (``current`` is unchanged).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lwd_interfaces.manifest import MANIFEST_NAME, Manifest, ManifestError, verify_folder

from lwd_fleet.errors import PolicyVerificationError, StoreError, StoreUnavailableError
from lwd_fleet.layout import channel_file, manifest_key, policy_folder, policy_uri
from lwd_fleet.policy_cache import cached_version, staged_version
from lwd_fleet.store import TRANSIENT_ERRORS, FleetStore

VERSION_PATTERN = re.compile(r"^v\d{6}(-[A-Za-z0-9._-]+)?$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRelease:
    """A verified policy version in the local cache."""

    version: str
    channel: str
    folder: Path
    sha256: str
    uri: str


class ChannelWatcher:
    """Polls one channel and caches the versions it serves."""

    def __init__(
        self,
        store: FleetStore,
        channel: str,
        cache_dir: str | Path,
        on_release: Callable[[PolicyRelease], None] | None = None,
    ) -> None:
        """Watch the channel named ``channel`` of ``store``; ``on_release`` is called for each new version."""
        if not channel or "/" in channel:
            raise ValueError(f"invalid channel name {channel!r}")
        self.store = store
        self.channel = channel
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.on_release = on_release
        self.current: PolicyRelease | None = None

    def channel_version(self) -> str:
        """The version the channel serves now; StoreError when the channel file is missing or malformed."""
        where = f"channel {self.channel!r} in {self.store.display_url}"
        try:
            version = self.store.read_bytes(channel_file(self.channel)).decode().strip()
        except FileNotFoundError as error:
            raise StoreError(f"channel {self.channel!r} does not exist in {self.store.display_url}") from error
        except (IsADirectoryError, NotADirectoryError) as error:
            raise StoreError(f"{where}: {channel_file(self.channel)} is a folder, not a channel file") from error
        except UnicodeDecodeError as error:
            raise StoreError(f"{where}: the channel file is not UTF-8 text ({error.reason})") from error
        if not VERSION_PATTERN.match(version):
            raise StoreError(f"channel {self.channel!r} names a malformed version {version!r}")
        return version

    def poll(self) -> PolicyRelease | None:
        """Fetch and verify the channel's version if it is new; returns the release reported, else None.

        Raises only FleetError subclasses; on any of them ``current`` stays the version reported last.
        """
        try:
            version = self.channel_version()
            if self.current is not None and self.current.version == version:
                return None
            release = self.fetch(version)
        except TRANSIENT_ERRORS as error:
            raise StoreUnavailableError(
                f"channel {self.channel!r}: cannot read {self.store.display_url}: {type(error).__name__}: {error}"
            ) from error
        self.current = release
        log.info("channel %s now serves %s (%s)", self.channel, version, release.folder)
        if self.on_release is not None:
            self.on_release(release)
        return release

    def fetch(self, version: str) -> PolicyRelease:
        """Download and verify a version's folder into the cache (reusing a verified cached copy)."""
        folder = cached_version(self.cache_dir, version)
        uri = policy_uri(self.store.display_url, version)
        if folder.is_dir():
            try:
                manifest = verify_folder(folder, kind="policy")
                return PolicyRelease(version, self.channel, folder, manifest.digest, uri)
            except ManifestError as error:
                log.warning("cached %s fails verification (%s); downloading it again", folder, error)
                shutil.rmtree(folder)
        staging = staged_version(self.cache_dir, version)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            remote = policy_folder(version)
            manifest_bytes = self.store.read_bytes(manifest_key(remote))
            manifest = Manifest.from_json(manifest_bytes)
            for entry in manifest.files:
                target = staging / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                self.store.download_file(f"{remote}/{entry.path}", target)
            (staging / MANIFEST_NAME).write_bytes(manifest_bytes)
            verify_folder(staging, kind="policy")
        except (ManifestError, FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            shutil.rmtree(staging)
            raise PolicyVerificationError(f"policy {version} on channel {self.channel!r} refused: {error}") from error
        staging.rename(folder)
        return PolicyRelease(version, self.channel, folder, manifest.digest, uri)
