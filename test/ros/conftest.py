"""Fixtures of the live ROS 2 graph tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from learner.conftest import build_fleet_store


@pytest.fixture
def policy_store(tmp_path: Path) -> Path:
    """A file store holding only a tiny BC policy on channel ``stable``: no episodes until the robot uploads."""
    store = build_fleet_store(tmp_path / "seed")
    shutil.rmtree(store / "episodes")
    return store
