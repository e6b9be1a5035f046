"""Atomic publication of policy versions to the fleet store.

Order (docs/contracts.md, "Artifacts and the fleet store"): upload every weight and
config file of the version's folder, verify their sizes remotely, write the release
signature of the manifest (when the publisher holds a release key, :mod:`lwd_fleet.signing`),
upload ``manifest.json`` last, and only then move the channel file by writing a temp file
and renaming it over it, or on S3 (no rename) with one PUT over it
(``FleetStore.replace_bytes``; folder and file keys: :mod:`lwd_fleet.layout`). A robot
that reads the channel therefore never sees a version whose manifest or signature is not yet in place.

Robots refuse unsigned releases unless told otherwise, so a publisher without a key warns on every publish.
Re-publishing identical content with a key (re-)signs it: that is how a key rotation re-signs the version a
channel serves (docs/operators.md, "Release keys").
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lwd_interfaces.manifest import Manifest, ManifestError, verify_folder

from lwd_fleet.errors import PublishError
from lwd_fleet.layout import POLICY_VERSION, channel_file, manifest_key, policy_folder, signature_key
from lwd_fleet.signing import ReleaseKey, sign_manifest
from lwd_fleet.store import FleetStore

LOGGER = logging.getLogger(__name__)


class PolicyPublisher:
    """Uploads verified local policy folders as versions of a ``FleetStore`` and moves channel pointers.

    With a ``release_key`` every published manifest is signed; without one, releases go out unsigned.
    """

    def __init__(self, store: FleetStore, release_key: ReleaseKey | None = None) -> None:
        self.store = store
        self.release_key = release_key

    @staticmethod
    def _channel_key(channel: str) -> str:
        """Store key of a channel file; PublishError for a name that is not a plain file name."""
        if not channel or "/" in channel or channel.startswith("."):
            raise PublishError(f"invalid channel name {channel!r}")
        return channel_file(channel)

    def channel_version(self, channel: str) -> str | None:
        """The version a channel serves, or None when the channel does not exist yet."""
        key = self._channel_key(channel)
        if not self.store.exists(key):
            return None
        return self.store.read_bytes(key).decode().strip()

    def remote_manifest(self, version: str) -> Manifest | None:
        """The committed manifest of a published version, or None when it is not (fully) published."""
        key = manifest_key(policy_folder(version))
        if not self.store.exists(key):
            return None
        return Manifest.from_json(self.store.read_bytes(key))

    def publish(self, folder: str | os.PathLike[str], version: str, channel: str | None = None) -> Manifest:
        """Upload a local policy folder as ``version`` (manifest last), then point ``channel`` at it.

        Re-publishing identical content is a no-op upload (that signs it again, with a release key); different
        content under an existing version raises PublishError. The local folder is verified against its
        manifest, which must name ``version`` (robots check that it does), before anything is sent.
        """
        if not POLICY_VERSION.match(version):
            raise PublishError(
                f"refusing to publish version {version!r}: robots accept only 'v' and six digits with an optional "
                "suffix, like v000000-bc"
            )
        try:
            manifest = verify_folder(folder, kind="policy")
        except ManifestError as error:
            raise PublishError(f"refusing to publish {folder}: {error}") from error
        if manifest.facts.get("version") != version:
            raise PublishError(f"{folder} holds version {manifest.facts.get('version')!r}, not {version!r}")
        existing = self.remote_manifest(version)
        if existing is not None and existing.digest != manifest.digest:
            raise PublishError(f"store already holds a different policy under version {version!r}")
        if existing is None:
            self._upload(Path(folder), version, manifest)
        elif self.release_key is not None:
            remote = policy_folder(version)
            self._sign(self.release_key, remote, self.store.read_bytes(manifest_key(remote)))
        if channel is not None:
            self.move_channel(channel, version)
        signed = f"signed by key {self.release_key.key_id}" if self.release_key else "UNSIGNED (no release key)"
        LOGGER.info("published policy %s%s, %s", version, f" on channel {channel}" if channel else "", signed)
        if self.release_key is None:
            LOGGER.warning("policy %s is not signed: robots refuse it unless they allow unsigned policies", version)
        return manifest

    def _upload(self, folder: Path, version: str, manifest: Manifest) -> None:
        remote = policy_folder(version)
        self.store.makedirs(remote)
        for entry in manifest.files:
            target = f"{remote}/{entry.path}"
            self.store.upload_file(folder / entry.path, target)
            size = self.store.size(target)
            if size != entry.size:
                raise PublishError(f"upload of {self.store.path(target)} has {size} bytes, expected {entry.size}")
        manifest_bytes = manifest.to_json().encode()
        if self.release_key is not None:
            self._sign(self.release_key, remote, manifest_bytes)
        self.store.write_bytes(manifest_key(remote), manifest_bytes)

    def _sign(self, key: ReleaseKey, remote: str, manifest_bytes: bytes) -> None:
        """Write the release signature of a version's exact manifest bytes next to its manifest (atomic rename)."""
        self.store.replace_bytes(signature_key(remote), sign_manifest(key, manifest_bytes))

    def move_channel(self, channel: str, version: str) -> None:
        """Point ``channel`` at an already published version: temp file, then rename over the pointer."""
        if self.remote_manifest(version) is None:
            raise PublishError(f"cannot point channel {channel!r} at {version!r}: the version has no manifest")
        self.store.replace_bytes(self._channel_key(channel), f"{version}\n".encode())
