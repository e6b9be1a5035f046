"""Checksummed manifests for the artifacts the fleet exchanges (episode bags, policy versions).

A manifest lists every file of an artifact folder with its size and sha256,
plus free-form facts. It is written last: a folder without one is not yet an
artifact. Anything read from a store is verified against its manifest first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

MANIFEST_NAME = "manifest.json"
MANIFEST_TEMPORARY = MANIFEST_NAME + ".tmp"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """An artifact does not match its manifest, or the manifest itself is malformed."""


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact: its path relative to the folder, size in bytes and sha256 hex."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """The files of an artifact folder and the facts recorded about it."""

    kind: str
    files: tuple[FileEntry, ...]
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys), so equal manifests have equal bytes and digests."""
        body = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "facts": self.facts,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @property
    def digest(self) -> str:
        """sha256 of the manifest's canonical JSON: the artifact's identity."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse manifest JSON, refusing anything malformed with a ManifestError."""
        try:
            body = json.loads(text)
            if body.get("format_version") != FORMAT_VERSION:
                raise ManifestError(f"unsupported manifest format_version {body.get('format_version')!r}")
            files = tuple(
                FileEntry(path=str(f["path"]), size=int(f["size"]), sha256=str(f["sha256"])) for f in body["files"]
            )
            manifest = cls(kind=str(body["kind"]), files=files, facts=dict(body.get("facts", {})))
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ManifestError(f"malformed manifest: {error}") from error
        _check_entries(files)
        return manifest


def _check_entries(files: tuple[FileEntry, ...]) -> None:
    """Every entry names one file inside the folder, once, as ``build_manifest`` writes it: a relative POSIX path
    without empty, ``.`` or ``..`` parts, not the manifest itself, not the folder of another entry."""
    counts = Counter(entry.path for entry in files)
    paths = set(counts)
    for path, count in counts.items():
        if count > 1:
            raise ManifestError(f"manifest lists {path!r} more than once")
    for entry in files:
        parts = entry.path.split("/")
        if any(part in ("", ".", "..") for part in parts) or entry.path in (MANIFEST_NAME, MANIFEST_TEMPORARY):
            raise ManifestError(f"manifest lists an unsafe path {entry.path!r} (not a file inside the folder)")
        if any("/".join(parts[:end]) in paths for end in range(1, len(parts))):
            raise ManifestError(f"manifest lists {entry.path!r} inside another listed file")
        if len(entry.sha256) != 64:
            raise ManifestError(f"manifest entry {entry.path!r} has a malformed sha256")


def sha256_stream(stream: IO[bytes], limit: int | None = None) -> tuple[str, int]:
    """sha256 hex digest and byte count of a readable binary stream (of its first ``limit`` bytes if given),
    read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    while (limit is None or size < limit) and (
        block := stream.read(_CHUNK if limit is None else min(_CHUNK, limit - size))
    ):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a local file."""
    with open(path, "rb") as stream:
        return sha256_stream(stream)[0]


def artifact_files(folder: Path) -> Iterable[Path]:
    """Every regular file under ``folder`` except the manifest and its temporary file, in a stable order.

    A write interrupted by a crash can leave the temporary file behind; it is never part of the artifact.
    """
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in (MANIFEST_NAME, MANIFEST_TEMPORARY):
            yield path


def build_manifest(
    folder: str | os.PathLike[str],
    kind: str,
    facts: dict[str, Any] | None = None,
    hashed: Mapping[str, FileEntry] | None = None,
) -> Manifest:
    """A Manifest (not yet written) of every file of a local artifact folder.

    ``hashed`` holds the entries of files whose sha256 was computed as they were written (by relative path);
    those are not read again. A file whose size on disk differs from its ``hashed`` entry changed after it
    was hashed: a ManifestError, never a manifest that vouches for bytes nobody hashed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ManifestError(f"{root} is not a folder")
    hashed = hashed or {}
    entries = []
    for path in artifact_files(root):
        relative = path.relative_to(root).as_posix()
        known = hashed.get(relative)
        if known is None:
            with open(path, "rb") as stream:
                sha, size = sha256_stream(stream)
            entries.append(FileEntry(path=relative, size=size, sha256=sha))
            continue
        if path.stat().st_size != known.size:
            raise ManifestError(f"{path} has {path.stat().st_size} bytes, {known.size} were hashed as it was written")
        entries.append(FileEntry(path=relative, size=known.size, sha256=known.sha256))
    if not entries:
        raise ManifestError(f"{root} holds no files to put in a manifest")
    return Manifest(kind=kind, files=tuple(entries), facts=dict(facts or {}))


def write_manifest(folder: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``manifest.json`` into a local folder atomically (temp file, fsync, rename)."""
    target = Path(folder) / MANIFEST_NAME
    temporary = Path(folder) / MANIFEST_TEMPORARY
    with open(temporary, "w") as stream:
        stream.write(manifest.to_json())
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, target)
    return target


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    """Read a local folder's manifest; a ManifestError when it is missing or malformed."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{folder} has no {MANIFEST_NAME}: not a committed artifact")
    return Manifest.from_json(path.read_bytes())


def verify_folder(folder: str | os.PathLike[str], kind: str | None = None) -> Manifest:
    """Check a local artifact folder against its manifest; return it, or raise ManifestError saying what differs."""
    root = Path(folder)
    manifest = read_manifest(root)
    if kind is not None and manifest.kind != kind:
        raise ManifestError(f"{root}: manifest kind is {manifest.kind!r}, expected {kind!r}")
    for entry in manifest.files:
        path = root / entry.path
        if not path.is_file():
            raise ManifestError(f"{root}: {entry.path} is listed in the manifest but missing")
        size = path.stat().st_size
        if size != entry.size:
            raise ManifestError(f"{root}: {entry.path} has {size} bytes, manifest says {entry.size}")
        if sha256_file(path) != entry.sha256:
            raise ManifestError(f"{root}: {entry.path} fails its sha256 check")
    return manifest
