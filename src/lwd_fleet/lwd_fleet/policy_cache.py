"""Where an announced policy version's weights are on this robot's disk.

The policy node never downloads: the bag bridge (lwd_logger) mirrors
``policies/<version>/`` from the fleet store into a local cache folder. An
announcement's ``uri`` that is already local (``file://`` URL or plain path) is
used directly; any other scheme is looked up in the cache by version.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse


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
        for candidate in (Path(cache_dir) / version, Path(cache_dir) / "policies" / version):
            if candidate.is_dir():
                return candidate
    return None
