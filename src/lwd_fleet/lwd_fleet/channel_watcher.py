"""ChannelWatcher: follows a policy channel of the fleet store and brings new versions into a local cache.

``poll()`` reads the channel's file in the store; when it names a version not
yet reported, the watcher reads the version's manifest and its release signature
and checks them against the robot's :class:`~lwd_fleet.signing.ReleaseTrust`
(a trusted, unrevoked key signed these exact bytes, and they name this version),
then downloads each listed file (keys from :mod:`lwd_fleet.layout`) into the local
policy cache's staging folder, verifies every file against the manifest, renames
it to the version's cache folder (:mod:`lwd_fleet.policy_cache`) and reports it.
A version that fails either check is refused with ``PolicyVerificationError``
(``SignatureError`` for the signature) and never reported; nothing of an unsigned
release is downloaded. The policy runtime loads the reported folder.

``poll()`` raises nothing but lwd_fleet's own errors (:class:`FleetError`): bad
content (a channel file that is a folder or not UTF-8, a manifest entry naming
no file, a listed file that is a folder) is a ``StoreError`` or
``PolicyVerificationError`` with a one-line message, and an unreachable store a
``StoreUnavailableError``, so a host's worker logs it and keeps serving the
version it reported last (``current`` is unchanged).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lwd_interfaces.manifest import MANIFEST_NAME, Manifest, ManifestError, verify_folder

from lwd_fleet.errors import PolicyVerificationError, SignatureError, StoreError, StoreUnavailableError
from lwd_fleet.layout import POLICY_VERSION, channel_file, manifest_key, policy_folder, policy_uri, signature_key
from lwd_fleet.policy_cache import cached_version, staged_version
from lwd_fleet.signing import ReleaseTrust, verify_release
from lwd_fleet.store import TRANSIENT_ERRORS, FleetStore

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
        *,
        trust: ReleaseTrust,
        on_release: Callable[[PolicyRelease], None] | None = None,
    ) -> None:
        """Watch the channel named ``channel`` of ``store``, accepting the releases ``trust`` accepts;
        ``on_release`` is called for each new version."""
        if not channel or "/" in channel:
            raise ValueError(f"invalid channel name {channel!r}")
        self.store = store
        self.trust = trust
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
        if not POLICY_VERSION.match(version):
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
        """Check a version's release signature and manifest, then bring its files into the cache and verify them.

        Nothing is downloaded for a release that ``trust`` refuses; a cached copy is reused only when its
        manifest is byte for byte the one just verified.
        """
        remote = policy_folder(version)
        manifest_bytes, signature = self._read_release(version, remote)
        manifest = verify_release(self.trust, version, manifest_bytes, signature)
        folder = cached_version(self.cache_dir, version)
        if not self._cached(folder, manifest_bytes):
            self._download(version, remote, manifest, manifest_bytes)
            staged_version(self.cache_dir, version).rename(folder)
        return PolicyRelease(
            version, self.channel, folder, manifest.digest, policy_uri(self.store.display_url, version)
        )

    def _read_release(self, version: str, remote: str) -> tuple[bytes, bytes | None]:
        """(manifest bytes, signature file bytes or None when unsigned) of a version folder in the store."""
        try:
            manifest_bytes = self.store.read_bytes(manifest_key(remote))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise PolicyVerificationError(
                f"policy {version} on channel {self.channel!r} refused: no readable {MANIFEST_NAME} ({error})"
            ) from error
        try:
            return manifest_bytes, self.store.read_bytes(signature_key(remote))
        except FileNotFoundError:
            return manifest_bytes, None
        except (IsADirectoryError, NotADirectoryError) as error:
            raise SignatureError(f"policy {version} refused: its signature is not a file ({error})") from error

    @staticmethod
    def _cached(folder: Path, manifest_bytes: bytes) -> bool:
        """Whether ``folder`` already holds the verified release of ``manifest_bytes``; a stale copy is removed."""
        if not folder.is_dir():
            return False
        try:
            if (folder / MANIFEST_NAME).read_bytes() == manifest_bytes:
                verify_folder(folder, kind="policy")
                return True
            reason = "its manifest is not the signed one"
        except (OSError, ManifestError) as error:
            reason = str(error)
        log.warning("cached %s is not the release in the store (%s); downloading it again", folder, reason)
        shutil.rmtree(folder)
        return False

    def _download(self, version: str, remote: str, manifest: Manifest, manifest_bytes: bytes) -> None:
        """Download a version's listed files into its staging folder and verify them against the manifest."""
        staging = staged_version(self.cache_dir, version)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            for entry in manifest.files:
                target = staging / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                self.store.download_file(f"{remote}/{entry.path}", target)
            (staging / MANIFEST_NAME).write_bytes(manifest_bytes)
            verify_folder(staging, kind="policy")
        except (ManifestError, FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            shutil.rmtree(staging)
            raise PolicyVerificationError(f"policy {version} on channel {self.channel!r} refused: {error}") from error
