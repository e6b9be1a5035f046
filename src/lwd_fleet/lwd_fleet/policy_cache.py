"""The robot's local policy cache: where verified policy versions from the fleet store live on its disk.

The policy node never downloads: the channel watcher (run by the bag bridge node)
mirrors a version's store folder into ``<cache_dir>/<version>/``, staging it in
``<cache_dir>/.download/<version>/`` until it verifies. An announcement's ``uri``
that is already local (``file://`` URL or plain path) is used directly; any other
scheme is looked up in the cache by version (or, when the cache folder is the root
of a local store, in that store's policy folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from lwd_fleet.layout import policy_folder

STAGING = ".download"
"""Cache subfolder where a version is downloaded and verified before it is renamed into place."""


def cached_version(cache_dir: str | os.PathLike[str], version: str) -> Path:
    """Folder of a verified version in the cache."""
    return Path(cache_dir) / version


def staged_version(cache_dir: str | os.PathLike[str], version: str) -> Path:
    """Folder where a version is downloaded before it verifies."""
    return Path(cache_dir) / STAGING / version


def resolve_local_policy(uri: str, version: str, cache_dir: str | os.PathLike[str] | None) -> Path | None:
    """The local folder holding ``version``, or None when it is not (yet) on this machine."""
    parsed = urlparse(uri) if uri else None
    if parsed is not None and parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path if parsed.scheme == "file" else uri))
        if parsed.scheme == "file" and parsed.netloc and parsed.netloc != "localhost":
            local = Path(parsed.netloc + parsed.path)
        if local.is_dir():
            return local
    if cache_dir and version:
        for candidate in (cached_version(cache_dir, version), Path(cache_dir) / policy_folder(version)):
            if candidate.is_dir():
                return candidate
    return None
