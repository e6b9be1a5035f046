"""Fixtures of the live ROS 2 graph tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from learner.conftest import build_fleet_store
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, generate_key_pair
from lwd_fleet.store import FleetStore


@pytest.fixture
def policy_store(tmp_path: Path) -> Path:
    """A file store holding only a tiny BC policy on channel ``stable``: no episodes until the robot uploads."""
    store = build_fleet_store(tmp_path / "seed")
    shutil.rmtree(store / "episodes")
    return store


@pytest.fixture
def release_parameters(policy_store: Path) -> dict[str, dict[str, Any]]:
    """The fleet's release key as node parameters: the trainer signs with it, the robots' bridges trust it.

    The store's v000000-bc is signed with it too (publishing identical content again signs it).
    """
    private, public, _ = generate_key_pair(policy_store.parent / "keys")
    publisher = PolicyPublisher(FleetStore(f"file://{policy_store}"), ReleaseKey.from_file(private))
    publisher.publish(policy_store / "policies" / "v000000-bc", "v000000-bc")
    return {"bridge_node": {"trusted_keys": [str(public)]}, "trainer_node": {"signing_key": str(private)}}
