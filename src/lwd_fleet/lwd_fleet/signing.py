"""Signed policy releases: who may publish a policy that robots hot-swap in, not only whether its bytes are intact.

A manifest's sha256 entries prove the weights are the ones it lists; they say nothing about who wrote the
manifest, so anyone with write access to the store could publish. A release key (ed25519, through the
``cryptography`` library) therefore signs each published manifest: the publisher writes the signature next to
it in the store (:func:`lwd_fleet.layout.signature_key`) and robots check it with :func:`verify_release`
against the public keys they are configured with (:class:`ReleaseTrust`) before any weight is downloaded.

- The signature covers the manifest's exact bytes, and the manifest's facts carry the version, so a signed
  manifest copied under another version, or a manifest changed after signing, is refused: the version a robot
  reports is the one that was signed.
- A key is named by its key id, the first 16 hex digits of the sha256 of its raw public key. A revocation
  list (one key id a line, ``#`` comments) refuses a key even where it is still trusted.
- Private keys live in one file each (PEM PKCS#8, mode 0600, refused when others can read it); their bytes are
  never logged, printed or written anywhere else. Public keys are PEM SubjectPublicKeyInfo files.
- ``allow_unsigned`` (development only) accepts a release no trusted key signed, with a warning each time; a
  signature that fails under a trusted key, or one from a revoked key, is refused even then.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from lwd_interfaces.manifest import Manifest, ManifestError

from lwd_fleet.errors import PolicyVerificationError, ReleaseKeyError, SignatureError

LOGGER = logging.getLogger(__name__)

SIGNATURE_FORMAT = "lwd-release-ed25519/1"
"""The ``format`` of a signature file; also the domain prefix of the signed message."""
PRIVATE_KEY_SUFFIX = ".key"
PUBLIC_KEY_SUFFIX = ".pub"
KEY_ID_LENGTH = 16


def key_id(public_key: Ed25519PublicKey) -> str:
    """The short name of a public key: the first 16 hex digits of the sha256 of its 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_LENGTH]


def _signed_message(manifest_bytes: bytes) -> bytes:
    """What a release signature covers: the format name (so it signs nothing else by accident), then the manifest."""
    return SIGNATURE_FORMAT.encode() + b"\n" + manifest_bytes


class ReleaseKey:
    """A private release key, loaded from its file; its repr names the key id only."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.key_id = key_id(private_key.public_key())

    def __repr__(self) -> str:
        return f"ReleaseKey(key_id={self.key_id!r})"

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, which robots trust."""
        return self._private_key.public_key()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ReleaseKey:
        """Load a private key file; ReleaseKeyError when it is missing, readable by others, or not an ed25519 key."""
        path = Path(path)
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as error:
            raise ReleaseKeyError(f"cannot read release key {path}: {error.strerror or error}") from error
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ReleaseKeyError(f"release key {path} is open to others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ReleaseKeyError(f"{path} is not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ReleaseKeyError(f"{path} is not an ed25519 key")
        return cls(key)


def generate_key_pair(folder: str | os.PathLike[str], name: str = "release") -> tuple[Path, Path, str]:
    """Write a new key pair as ``<folder>/<name>.key`` (0600) and ``<name>.pub``; returns (private, public, key id).

    ``folder`` is made (0700) when missing. Refuses (FileExistsError) to overwrite a key file: a replaced
    private key cannot be recovered.
    """
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path, public_path = folder / f"{name}{PRIVATE_KEY_SUFFIX}", folder / f"{name}{PUBLIC_KEY_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; a key is never overwritten (choose another name or folder)")
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(pem)
    public_key = private_key.public_key()
    public_path.write_bytes(
        public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path, key_id(public_key)


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Load a public key file; ReleaseKeyError when it is missing or not an ed25519 PEM public key."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as error:
        raise ReleaseKeyError(f"cannot read public key {path}: {error.strerror or error}") from error
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ReleaseKeyError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseKeyError(f"{path} is not an ed25519 public key")
    return key


def read_revocation_list(path: str | os.PathLike[str]) -> frozenset[str]:
    """The key ids a revocation list names (one a line; blank lines and ``#`` comments ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ReleaseKeyError(f"cannot read revocation list {path}: {error}") from error
    ids = {line.split("#", 1)[0].strip() for line in lines} - {""}
    malformed = sorted(i for i in ids if len(i) != KEY_ID_LENGTH or set(i) - set("0123456789abcdef"))
    if malformed:
        raise ReleaseKeyError(f"revocation list {path} holds malformed key ids {malformed}")
    return frozenset(ids)


def sign_manifest(key: ReleaseKey, manifest_bytes: bytes) -> bytes:
    """The signature file for a manifest's exact bytes: JSON naming the format, the key id and the signature."""
    signature = key._private_key.sign(_signed_message(manifest_bytes))
    body = {"format": SIGNATURE_FORMAT, "key_id": key.key_id, "signature": base64.b64encode(signature).decode()}
    return (json.dumps(body, sort_keys=True) + "\n").encode()


def _parse_signature(version: str, signature_file: bytes) -> tuple[str, bytes]:
    """(key id, raw signature) of a signature file; SignatureError when it is malformed."""
    try:
        body = json.loads(signature_file)
        if body["format"] != SIGNATURE_FORMAT:
            raise ValueError(f"unknown format {body['format']!r}")
        return str(body["key_id"]), base64.b64decode(body["signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise SignatureError(f"policy {version} refused: malformed signature file ({error})") from None


@dataclass(frozen=True)
class ReleaseTrust:
    """What a robot accepts: releases signed by a ``trusted`` key (key id -> public key) not in ``revoked``."""

    trusted: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()
    allow_unsigned: bool = False

    @classmethod
    def from_files(
        cls,
        public_keys: Iterable[str | os.PathLike[str]],
        revocation_list: str | os.PathLike[str] | None = None,
        allow_unsigned: bool = False,
    ) -> ReleaseTrust:
        """Load the trusted public key files and the revocation list (None or '' for none).

        ReleaseKeyError when a file is unusable, or when no key is trusted and ``allow_unsigned`` is off (such a
        robot could never accept a policy: a configuration error, not a silent refusal of every release).
        """
        keys = [load_public_key(path) for path in public_keys if str(path)]
        revoked = read_revocation_list(revocation_list) if revocation_list and str(revocation_list) else frozenset()
        if not keys and not allow_unsigned:
            raise ReleaseKeyError(
                "no trusted release key configured: give the release public key(s) (trusted_keys), "
                "or allow_unsigned for development only"
            )
        return cls({key_id(key): key for key in keys}, revoked, allow_unsigned)

    def describe(self) -> str:
        """One line for the host's startup log (key ids only)."""
        text = f"trusted release keys {sorted(self.trusted) or '[]'}, revoked {sorted(self.revoked) or '[]'}"
        return text + (" -- UNSIGNED POLICIES ALLOWED (development only)" if self.allow_unsigned else "")


def _check_signature(trust: ReleaseTrust, version: str, manifest_bytes: bytes, signature_file: bytes | None) -> None:
    """SignatureError unless a trusted, unrevoked key signed ``manifest_bytes`` (or ``allow_unsigned`` waives it)."""
    if signature_file is None:
        if not trust.allow_unsigned:
            raise SignatureError(f"policy {version} refused: it is not signed (no signature next to its manifest)")
        LOGGER.warning("policy %s is NOT signed; accepted only because allow_unsigned is set", version)
        return
    signer, signature = _parse_signature(version, signature_file)
    if signer in trust.revoked:
        raise SignatureError(f"policy {version} refused: signed by revoked key {signer}")
    public_key = trust.trusted.get(signer)
    if public_key is None:
        if not trust.allow_unsigned:
            trusted = ", ".join(sorted(trust.trusted))
            raise SignatureError(f"policy {version} refused: signed by unknown key {signer} (trusted: {trusted})")
        LOGGER.warning("policy %s is signed by untrusted key %s; accepted as allow_unsigned is set", version, signer)
        return
    try:
        public_key.verify(signature, _signed_message(manifest_bytes))
    except InvalidSignature:
        raise SignatureError(
            f"policy {version} refused: key {signer}'s signature does not match the manifest (changed after signing)"
        ) from None


def verify_release(trust: ReleaseTrust, version: str, manifest_bytes: bytes, signature_file: bytes | None) -> Manifest:
    """The manifest of ``version``, once its signature is checked against ``trust`` and it names ``version``.

    Raises SignatureError (unsigned, unknown or revoked key, changed after signing, malformed signature) or
    PolicyVerificationError (a malformed manifest, or one naming another version than the store folder / channel).
    """
    _check_signature(trust, version, manifest_bytes, signature_file)
    try:
        manifest = Manifest.from_json(manifest_bytes)
    except ManifestError as error:
        raise PolicyVerificationError(f"policy {version} refused: {error}") from error
    named = manifest.facts.get("version")
    if named != version:
        raise PolicyVerificationError(f"policy {version} refused: its manifest names version {named!r}")
    return manifest
