"""ChannelWatcher (versions published by the PolicyPublisher downloaded, verified, reported once; corrupt ones
refused) and the Catalog (committed episodes indexed, pending skipped, bad manifests rejected with reasons,
success statistics), on every store backend (file://, a real SFTP server, a real S3 API); damaged channel
content on file://."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lwd_fleet.catalog import Catalog
from lwd_fleet.channel_watcher import ChannelWatcher
from lwd_fleet.errors import FleetError, PolicyVerificationError, StoreError
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, ReleaseTrust, sign_manifest
from lwd_fleet.store import FleetStore
from lwd_interfaces.manifest import MANIFEST_NAME, build_manifest, write_manifest
from lwd_logger.bridge import BagBridge
from lwd_logger.episode_facts import EpisodeInfo

KEY = ReleaseKey(Ed25519PrivateKey.generate())
TRUST = ReleaseTrust({KEY.key_id: KEY.public_key})


def make_policy(parent, version, weights=b"w" * 64):
    """A local policy folder with its manifest (naming its version)."""
    folder = parent / version
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "config.json").write_text('{"horizon": 2}')
    (folder / "normalization.json").write_text("{}")
    write_manifest(folder, build_manifest(folder, "policy", {"version": version}))
    return folder


def publish_policy(root, version, weights=b"w" * 64, channel="stable"):
    """Write a signed version straight into a file:// store's folders and point the channel at it (no publisher)."""
    folder = make_policy(root / "policies", version, weights)
    (folder / "manifest.sig").write_bytes(sign_manifest(KEY, (folder / MANIFEST_NAME).read_bytes()))
    (root / "policies" / "channels").mkdir(exist_ok=True)
    (root / "policies" / "channels" / channel).write_text(version + "\n")
    return folder


def test_published_versions_reach_the_watcher_once(store_backend, tmp_path):
    publisher = PolicyPublisher(FleetStore(store_backend.url), KEY)
    publisher.publish(make_policy(tmp_path / "local", "v000001"), "v000001", "stable")
    reported = []
    store = FleetStore(store_backend.url, create=False)
    watcher = ChannelWatcher(store, "stable", tmp_path / "cache", trust=TRUST, on_release=reported.append)
    first = watcher.poll()
    assert first.version == "v000001"
    assert (first.folder / "model.safetensors").read_bytes() == b"w" * 64
    assert watcher.poll() is None
    canary = make_policy(tmp_path / "local", "v000002-canary", weights=b"x" * 64)
    publisher.publish(canary, "v000002-canary", "stable")
    second = watcher.poll()
    assert second.version == "v000002-canary"
    assert [r.version for r in reported] == ["v000001", "v000002-canary"]
    assert second.sha256 != first.sha256
    assert store_backend.get("policies/channels/stable") == b"v000002-canary\n"
    assert not [key for key in store_backend.raw.find("policies") if key.endswith(".tmp")]


def test_corrupt_version_is_refused_and_not_reported(store_backend, tmp_path):
    publisher = PolicyPublisher(FleetStore(store_backend.url), KEY)
    publisher.publish(make_policy(tmp_path / "local", "v000003"), "v000003")
    store_backend.put("policies/v000003/model.safetensors", b"tampered" * 8)
    publisher.move_channel("stable", "v000003")
    reported = []
    store = FleetStore(store_backend.url)
    watcher = ChannelWatcher(store, "stable", tmp_path / "cache", trust=TRUST, on_release=reported.append)
    with pytest.raises(PolicyVerificationError, match=r"v000003.*refused"):
        watcher.poll()
    assert reported == []
    assert watcher.current is None
    assert not (tmp_path / "cache" / "v000003").exists()


def test_missing_or_malformed_channel_is_a_clear_error(tmp_path):
    root = tmp_path / "fleet"
    watcher = ChannelWatcher(FleetStore(str(root)), "stable", tmp_path / "cache", trust=TRUST)
    with pytest.raises(StoreError, match="does not exist"):
        watcher.poll()
    (root / "policies" / "channels").mkdir(parents=True)
    (root / "policies" / "channels" / "stable").write_text("../../etc\n")
    with pytest.raises(StoreError, match="malformed version"):
        watcher.poll()


def upload(record_episode, spool, store, episode_id, robot, task, success, versions="v000001"):
    info = EpisodeInfo(episode_id=episode_id, robot_id=robot, task=task, policy_version=versions)
    record_episode(n=4, success=success, info=info)
    return BagBridge(spool, store).upload_pending()[0]


def test_catalog_indexes_episodes_and_computes_success_rates(store_backend, record_episode, spool, tmp_path):
    store = FleetStore(store_backend.url)
    upload(record_episode, spool, store, "a1", "r1", "transfer_cube", True)
    upload(record_episode, spool, store, "a2", "r1", "transfer_cube", False)
    upload(record_episode, spool, store, "a3", "r1", "transfer_cube", True)
    last = upload(record_episode, spool, store, "b1", "r2", "insertion", True, versions="v000002")
    catalog = Catalog(tmp_path / "catalog.sqlite")
    report = catalog.ingest(store)
    assert (report.added, report.known, report.rejected) == (4, 0, 0)
    assert catalog.ingest(store).known == 4
    rows = {row["episode_id"]: row for row in catalog.episodes()}
    assert rows["a2"]["outcome"] == "failure"
    assert rows["a1"]["steps"] == 4
    assert rows["a1"]["interventions"] == 1
    assert rows["b1"]["sha256"] == last.sha256
    assert rows["b1"]["store_path"] == last.key
    stats = {(s.robot_id, s.task): s for s in catalog.stats()}
    assert stats[("r1", "transfer_cube")].success_rate == pytest.approx(2 / 3)
    assert stats[("r2", "insertion")].policy_versions == "v000002"
    assert [row["episode_id"] for row in catalog.episodes(robot_id="r2")] == ["b1"]


def test_catalog_skips_pending_and_rejects_bad_manifests_with_reasons(store_backend, record_episode, spool, tmp_path):
    store = FleetStore(store_backend.url)
    good = upload(record_episode, spool, store, "g1", "r1", "transfer_cube", True)
    store_backend.put("episodes/r1/2026-11-25/pending1/x.mcap", b"partial upload")
    store_backend.put(f"episodes/r1/2026-11-25/broken1/{MANIFEST_NAME}", b"{not json")
    tampered = f"{good.key}/g1.mcap"
    store_backend.put(tampered, store_backend.get(tampered)[:-10] + b"0123456789")
    catalog = Catalog(tmp_path / "catalog.sqlite")
    report = catalog.ingest(store, verify=True)
    assert report.pending == 1
    assert report.added == 0
    reasons = {row["store_path"]: row["reason"] for row in catalog.rejected()}
    assert reasons == {"episodes/r1/2026-11-25/broken1": "invalid_manifest", good.key: "checksum_mismatch"}
    details = {row["store_path"]: row["detail"] for row in catalog.rejected()}
    assert "malformed manifest" in details["episodes/r1/2026-11-25/broken1"]
    assert "fails its sha256 check" in details[good.key]


def empty_manifest_entry(root, folder):
    body = json.loads((folder / MANIFEST_NAME).read_text())
    body["files"].append({"path": "", "size": 0, "sha256": "0" * 64})
    (folder / MANIFEST_NAME).write_text(json.dumps(body))


def listed_file_is_a_folder(root, folder):
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()


def manifest_is_a_folder(root, folder):
    (folder / MANIFEST_NAME).unlink()
    (folder / MANIFEST_NAME).mkdir()


def channel_not_utf8(root, folder):
    (root / "policies" / "channels" / "stable").write_bytes(b"v00000\xff\xfe\n")


def channel_is_a_folder(root, folder):
    channel = root / "policies" / "channels" / "stable"
    channel.unlink()
    channel.mkdir()


@pytest.mark.parametrize(
    "damage",
    [empty_manifest_entry, listed_file_is_a_folder, manifest_is_a_folder, channel_not_utf8, channel_is_a_folder],
)
def test_bad_channel_content_is_a_fleet_error_and_the_robot_keeps_its_policy(tmp_path, damage):
    root = tmp_path / "fleet"
    publish_policy(root, "v000001")
    reported = []
    watcher = ChannelWatcher(
        FleetStore(str(root)), "stable", tmp_path / "cache", trust=TRUST, on_release=reported.append
    )
    assert watcher.poll().version == "v000001"
    damage(root, publish_policy(root, "v000002", weights=b"x" * 64))
    with pytest.raises(FleetError, match=r"v000002|channel 'stable'") as caught:
        watcher.poll()
    assert "\n" not in str(caught.value)
    assert watcher.current.version == "v000001" and [r.version for r in reported] == ["v000001"]
    assert (watcher.current.folder / "model.safetensors").read_bytes() == b"w" * 64


def test_an_episode_ingest_rejected_is_not_counted_and_stays_rejected(record_episode, spool, tmp_path):
    store = FleetStore(str(tmp_path / "fleet"))
    good = upload(record_episode, spool, store, "g1", "r1", "transfer_cube", True)
    bad = upload(record_episode, spool, store, "b1", "r1", "transfer_cube", True)
    catalog = Catalog(tmp_path / "catalog.sqlite")
    assert catalog.ingest(store).added == 2
    catalog.reject(bad.key, "wrong_joint_count", f"{bad.key}: 7 joints, the policy reads 14", sha256=bad.sha256)
    assert [row["episode_id"] for row in catalog.episodes()] == ["g1"]
    assert catalog.ingest(store).rejected == 1
    assert [row["episode_id"] for row in catalog.episodes()] == ["g1"]
    assert [(s.episodes, s.successes) for s in catalog.stats()] == [(1, 1)]
    (row,) = catalog.rejected()
    assert (row["store_path"], row["reason"], row["sha256"]) == (bad.key, "wrong_joint_count", bad.sha256)
    assert catalog.quarantine_counts() == {"wrong_joint_count": 1}
    assert good.key != bad.key


def test_a_catalog_from_before_named_reasons_keeps_its_rejections_as_details(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE rejected (store_path TEXT PRIMARY KEY, reason TEXT NOT NULL, seen_at TEXT NOT NULL)")
    old.execute("INSERT INTO rejected VALUES ('episodes/r1/d/x', 'malformed manifest: oops', 'then')")
    old.commit()
    old.close()
    (row,) = Catalog(path).rejected()
    assert (row["reason"], row["detail"], row["sha256"]) == ("unclassified", "malformed manifest: oops", "")
