"""Fixtures of the live ROS 2 graph tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from learner.conftest import TINY_VLA
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, generate_key_pair
from lwd_fleet.store import FleetStore
from lwd_interfaces.robots import ALOHA_SIM
from lwd_policy.checkpoint import save_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.contract import build_policy
from lwd_policy.normalization import Normalizer, Stats


@pytest.fixture
def policy_store(tmp_path: Path) -> Path:
    """A file store holding only a tiny policy on channel ``stable``, as v000000-bc: no episodes until the robot
    uploads.

    The policy is random-initialised, with action statistics that hold its commands within a milliradian of
    the middle of the simulated ALOHA's joint ranges (a BC policy of the learner tests' synthetic episodes
    would command far past the joint limits, which robots refuse). So after the rate-limited move from the
    start pose the commands settle, and a replay can match them step by step even though an untrained
    network answers a slightly different observation quite differently.
    """
    config = VLAConfig.from_dict(TINY_VLA)
    middle = (np.array(ALOHA_SIM.lower) + np.array(ALOHA_SIM.upper)) / 2
    actions = Stats(middle, np.full(config.action_dim, 0.001))
    normalizer = Normalizer(Stats(np.zeros(config.state_dim), np.ones(config.state_dim)), actions)
    torch.manual_seed(0)
    folder = tmp_path / "seed" / "v000000-bc"
    save_checkpoint(build_policy(config), normalizer, folder, "v000000-bc")
    store = tmp_path / "seed" / "store"
    PolicyPublisher(FleetStore(f"file://{store}")).publish(folder, "v000000-bc", "stable")
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
