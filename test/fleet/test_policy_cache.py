"""The local policy cache: an announced version resolves to a local folder, or to nothing."""

from __future__ import annotations

from pathlib import Path

from lwd_fleet.policy_cache import resolve_local_policy


def test_announced_versions_resolve_only_to_local_folders(tmp_path: Path) -> None:
    (tmp_path / "policies" / "v000002").mkdir(parents=True)
    direct = tmp_path / "direct"
    direct.mkdir()
    assert resolve_local_policy(f"file://{direct}", "v000001", None) == direct
    assert resolve_local_policy(str(direct), "v000001", None) == direct
    assert resolve_local_policy("sftp://store/fleet/policies/v000002", "v000002", tmp_path) == (
        tmp_path / "policies" / "v000002"
    )
    assert resolve_local_policy("s3://bucket/policies/v000003", "v000003", tmp_path) is None
