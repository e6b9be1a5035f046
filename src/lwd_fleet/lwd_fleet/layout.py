"""The fleet store's key layout, written once: every other module builds its store keys through these names.

Keys are posix paths relative to the store root (see :class:`lwd_fleet.store.FleetStore`)::

    episodes/<robot_id>/<yyyy-mm-dd>/<episode_id>/   one episode bag; <yyyy-mm-dd> is its start day (UTC)
    policies/<version>/                              one policy version (weights, config, normalization)
    policies/<version>/manifest.sig                  the release key's signature of its manifest (lwd_fleet.signing)
    policies/channels/<name>                         text file: the version that channel serves
    rollouts/<version>.json                          the canary monitor's decision on that canary version

Episode and policy folders are artifacts only once their ``manifest.json`` is in place (it is written last),
so readers look for manifests, not folders. The SQLite catalog that indexes a store lives outside it.
"""

from __future__ import annotations

import datetime
import posixpath
import re

from lwd_interfaces.manifest import MANIFEST_NAME

EPISODES = "episodes"
"""Folder of every uploaded episode, by robot, then day."""

POLICIES = "policies"
"""Folder of every published policy version, and of the channels."""

CHANNELS = posixpath.join(POLICIES, "channels")
"""Folder of the channel files."""

ROLLOUTS = "rollouts"
"""Folder of the canary monitor's decision records (:mod:`lwd_fleet.canary`), one per canary version decided."""

EPISODE_MANIFESTS = posixpath.join(EPISODES, "*", "*", "*", MANIFEST_NAME)
"""Glob pattern of the manifest of every committed episode."""

SIGNATURE_NAME = "manifest.sig"
"""File name of a policy manifest's release signature, next to the manifest."""

CATALOG_NAME = "catalog.sqlite"
"""File name of the local SQLite episode catalog, in a work or cache folder."""


def robot_episodes(robot_id: str) -> str:
    """Key of the folder of one robot's episodes (one subfolder per day)."""
    return posixpath.join(EPISODES, robot_id)


def day_episodes(robot_id: str, day: str) -> str:
    """Key of the folder of the episodes one robot started on ``day`` (``yyyy-mm-dd``)."""
    return posixpath.join(robot_episodes(robot_id), day)


def episode_day(start_ns: int) -> str:
    """The day folder name (``yyyy-mm-dd``, UTC) of an episode that started at ``start_ns``."""
    return datetime.datetime.fromtimestamp(start_ns / 1e9, tz=datetime.timezone.utc).strftime("%Y-%m-%d")


def episode_folder(robot_id: str, day: str, episode_id: str) -> str:
    """Key of one episode's folder."""
    return posixpath.join(day_episodes(robot_id, day), episode_id)


POLICY_VERSION = re.compile(r"^v\d{6}(-[A-Za-z0-9._-]+)?$")
"""What a published policy version is named: ``v`` and six digits (the trainer's update count), then an optional
suffix (``v000000-bc``). Robots refuse a channel naming anything else, so the publisher refuses it first."""


def policy_folder(version: str) -> str:
    """Key of one policy version's folder."""
    return posixpath.join(POLICIES, version)


def channel_file(channel: str) -> str:
    """Key of the file that names the version a channel serves."""
    return posixpath.join(CHANNELS, channel)


def rollout_record(version: str) -> str:
    """Key of the JSON record of the canary monitor's decision (rollback or promotion) on canary ``version``."""
    return posixpath.join(ROLLOUTS, f"{version}.json")


def manifest_key(folder: str) -> str:
    """Key of the manifest of an artifact folder (episode or policy version)."""
    return posixpath.join(folder, MANIFEST_NAME)


def signature_key(folder: str) -> str:
    """Key of the release signature of a policy version folder's manifest."""
    return posixpath.join(folder, SIGNATURE_NAME)


def manifest_folder(key: str) -> str:
    """Key of the artifact folder a manifest key belongs to (inverse of :func:`manifest_key`)."""
    return posixpath.dirname(key)


def policy_uri(store_url: str, version: str) -> str:
    """URL of a policy version's folder in the store at ``store_url``, as policy announcements carry it."""
    return f"{store_url.rstrip('/')}/{policy_folder(version)}"
