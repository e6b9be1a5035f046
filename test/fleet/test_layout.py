"""The store's key layout is written once, in lwd_fleet/layout.py: no other source spells out a store key."""

from __future__ import annotations

import re
from pathlib import Path

from lwd_fleet import layout

SRC = Path(__file__).resolve().parents[2] / "src"
LAYOUT = SRC / "lwd_fleet" / "lwd_fleet" / "layout.py"
STORE_KEY = re.compile(r"""\b(?:policies|episodes|channels|rollouts)/|["'](?:policies|channels|rollouts)["']""")
"""A top-level store folder followed by a key part, or a bare policy/channel folder name as a string."""


def test_no_source_outside_the_layout_spells_out_a_store_key():
    offending = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path != LAYOUT
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if STORE_KEY.search(line)
    ]
    assert not offending, "build store keys with lwd_fleet.layout:\n" + "\n".join(offending)


def test_keys_are_the_documented_layout():
    day = layout.episode_day(1_764_028_800 * 10**9)
    assert day == "2025-11-25"
    episode = layout.episode_folder("robot0", day, "ep1")
    assert episode == "episodes/robot0/2025-11-25/ep1"
    assert layout.manifest_key(episode) == "episodes/robot0/2025-11-25/ep1/manifest.json"
    assert layout.manifest_folder(layout.manifest_key(episode)) == episode
    assert layout.policy_folder("v000001") == "policies/v000001"
    assert layout.signature_key(layout.policy_folder("v000001")) == "policies/v000001/manifest.sig"
    assert layout.channel_file("stable") == "policies/channels/stable"
    assert layout.rollout_record("v000002") == "rollouts/v000002.json"
    assert (
        layout.policy_uri("sftp://fleet@store/srv/fleet/", "v000001") == "sftp://fleet@store/srv/fleet/policies/v000001"
    )
