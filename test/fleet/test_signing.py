"""Signed policy releases (issue 17, item 4): robots hot-swap in only what a trusted, unrevoked release key signed.

Every test publishes through the real PolicyPublisher into a file:// store and watches it with the real
ChannelWatcher; an attacker is someone who can write the store but does not hold the release key.
"""

from __future__ import annotations

import json
import logging
import shutil
import stat
from pathlib import Path

import pytest
from lwd_fleet.channel_watcher import ChannelWatcher
from lwd_fleet.errors import PolicyVerificationError, PublishError, ReleaseKeyError, SignatureError
from lwd_fleet.layout import channel_file, manifest_key, policy_folder, signature_key
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, ReleaseTrust, generate_key_pair, read_revocation_list
from lwd_fleet.store import FleetStore
from lwd_interfaces.manifest import Manifest, build_manifest, write_manifest


@pytest.fixture
def store(tmp_path):
    return FleetStore(f"file://{tmp_path / 'fleet'}")


@pytest.fixture
def keys(tmp_path):
    """Two release key pairs, ``old`` and ``new``: name -> (private key path, public key path, key id)."""
    return {name: generate_key_pair(tmp_path / "keys", name) for name in ("old", "new")}


def local_policy(tmp_path, version, weights=b"w" * 64, facts=None):
    """A local policy folder whose manifest names ``version`` (or carries ``facts``)."""
    folder = tmp_path / "local" / version
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "normalization.json").write_text('{"scale": 1.0}')
    write_manifest(folder, build_manifest(folder, "policy", {"version": version} if facts is None else facts))
    return folder


def publish(store, tmp_path, version, key_path=None, weights=b"w" * 64):
    """Publish a fresh local policy as ``version`` on channel stable, signed with ``key_path`` (or not)."""
    key = ReleaseKey.from_file(key_path) if key_path else None
    PolicyPublisher(store, key).publish(local_policy(tmp_path, version, weights), version, "stable")


def watcher(store, tmp_path, *public_keys, revoked=None, allow_unsigned=False, cache="cache"):
    trust = ReleaseTrust.from_files(public_keys, revoked, allow_unsigned)
    return ChannelWatcher(store, "stable", tmp_path / cache, trust=trust)


def store_path(store, key):
    return Path(store.path(key))


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites_it(tmp_path, keys):
    private, public, key_id = keys["old"]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    key = ReleaseKey.from_file(private)
    assert key.key_id == key_id and len(key_id) == 16 and key_id != keys["new"][2]
    assert repr(key) == f"ReleaseKey(key_id={key_id!r})"
    assert set(ReleaseTrust.from_files([public]).trusted) == {key_id}
    with pytest.raises(FileExistsError, match="never overwritten"):
        generate_key_pair(tmp_path / "keys", "old")
    private.chmod(0o644)
    with pytest.raises(ReleaseKeyError, match=r"open to others.*chmod 600"):
        ReleaseKey.from_file(private)
    with pytest.raises(ReleaseKeyError, match="not a PEM public key"):
        ReleaseTrust.from_files([private])


def test_a_robot_with_no_trusted_key_is_a_configuration_error_unless_unsigned_is_allowed():
    with pytest.raises(ReleaseKeyError, match="no trusted release key"):
        ReleaseTrust.from_files([""])
    assert ReleaseTrust.from_files([], allow_unsigned=True).allow_unsigned


def test_signed_release_flows_from_publisher_to_watcher_and_the_private_key_is_never_logged(
    store, tmp_path, keys, caplog
):
    private, public, key_id = keys["new"]
    with caplog.at_level(logging.DEBUG):
        publish(store, tmp_path, "v000001", private)
        release = watcher(store, tmp_path, public).poll()
    assert release.version == "v000001"
    assert (release.folder / "model.safetensors").read_bytes() == b"w" * 64
    signature = json.loads(store.read_bytes(signature_key(policy_folder("v000001"))))
    assert signature["key_id"] == key_id
    secret = private.read_text()
    body = secret.splitlines()[1]
    assert all(
        body not in record.getMessage() and "PRIVATE KEY" not in record.getMessage() for record in caplog.records
    )
    assert f"signed by key {key_id}" in caplog.text
    # A second robot, and a restart with a warm cache, accept the same signed release.
    assert watcher(store, tmp_path, public).poll().version == "v000001"


def test_a_policy_published_without_the_key_is_refused_and_the_robot_keeps_serving(store, tmp_path, keys):
    private, public, _ = keys["old"]
    publish(store, tmp_path, "v000001", private)
    robot = watcher(store, tmp_path, public)
    assert robot.poll().version == "v000001"
    # The attacker writes the store: unsigned, then signed with a key of their own.
    publish(store, tmp_path, "v000002", weights=b"evil" * 16)
    with pytest.raises(SignatureError, match=r"policy v000002 refused: it is not signed"):
        robot.poll()
    attacker_private, _, attacker_id = generate_key_pair(tmp_path / "attacker")
    publish(store, tmp_path, "v000003", attacker_private, weights=b"evil" * 16)
    with pytest.raises(SignatureError, match=rf"policy v000003 refused: signed by unknown key {attacker_id}"):
        robot.poll()
    assert robot.current.version == "v000001"
    assert (robot.current.folder / "model.safetensors").read_bytes() == b"w" * 64
    assert not (tmp_path / "cache" / "v000002").exists() and not (tmp_path / "cache" / "v000003").exists()


def test_a_manifest_changed_after_signing_is_refused(store, tmp_path, keys):
    private, public, _ = keys["old"]
    publish(store, tmp_path, "v000001", private)
    robot = watcher(store, tmp_path, public)
    robot.poll()
    publish(store, tmp_path, "v000002", private)
    # The attacker swaps in other weights and rewrites the manifest's checksums to match them.
    folder = store_path(store, policy_folder("v000002"))
    (folder / "model.safetensors").write_bytes(b"1e38" * 16)
    write_manifest(folder, build_manifest(folder, "policy", {"version": "v000002"}))
    with pytest.raises(SignatureError, match=r"v000002 refused: key \w+'s signature does not match the manifest"):
        robot.poll()
    assert robot.current.version == "v000001"


def test_a_signed_manifest_naming_another_version_is_refused(store, tmp_path, keys):
    private, public, _ = keys["old"]
    publish(store, tmp_path, "v000001", private)
    # Replay: the signed v000001 (manifest, signature, weights) copied under a newer version name.
    shutil.copytree(store_path(store, policy_folder("v000001")), store_path(store, policy_folder("v000009")))
    store.replace_bytes(channel_file("stable"), b"v000009\n")
    with pytest.raises(PolicyVerificationError, match=r"policy v000009 refused: its manifest names version 'v000001'"):
        watcher(store, tmp_path, public).poll()
    # Even a development robot that accepts unsigned policies refuses the mismatch.
    with pytest.raises(PolicyVerificationError, match="names version 'v000001'"):
        watcher(store, tmp_path, allow_unsigned=True, cache="dev").poll()


def test_the_publisher_refuses_a_manifest_that_does_not_name_the_version(store, tmp_path, keys):
    folder = local_policy(tmp_path, "v000001", facts={})
    with pytest.raises(PublishError, match="holds version None, not 'v000001'"):
        PolicyPublisher(store, ReleaseKey.from_file(keys["old"][0])).publish(folder, "v000001", "stable")


def test_the_publisher_refuses_a_version_robots_would_refuse_and_uploads_nothing(store, tmp_path, keys):
    """A checkpoint may carry any file-safe version (``lwd train bc --version v-bc20k``), but a channel naming it
    would leave every robot without a policy: the publisher says so before anything is sent."""
    folder = local_policy(tmp_path, "v-bc20k")
    with pytest.raises(PublishError, match=r"refusing to publish version 'v-bc20k'.*like v000000-bc"):
        PolicyPublisher(store, ReleaseKey.from_file(keys["old"][0])).publish(folder, "v-bc20k", "stable")
    assert not store.exists(channel_file("stable")) and not store.glob("policies/*")


def test_key_rotation_trust_both_publish_with_new_then_drop_old(store, tmp_path, keys):
    (old_private, old_public, _), (new_private, new_public, _) = keys["old"], keys["new"]
    publish(store, tmp_path, "v000001", old_private)
    robot = watcher(store, tmp_path, old_public, new_public)
    assert robot.poll().version == "v000001"
    publish(store, tmp_path, "v000002", new_private)
    assert robot.poll().version == "v000002"
    # The channel's version was signed with the new key, so a robot trusting only it takes over seamlessly ...
    rotated = watcher(store, tmp_path, new_public, cache="rotated")
    assert rotated.poll().version == "v000002"
    # ... and a release still signed with the dropped key is refused.
    publish(store, tmp_path, "v000003", old_private)
    with pytest.raises(SignatureError, match="v000003 refused: signed by unknown key"):
        rotated.poll()
    assert rotated.current.version == "v000002"


def test_republishing_with_the_new_key_re_signs_the_version_the_channel_serves(store, tmp_path, keys):
    (old_private, _, _), (new_private, new_public, new_id) = keys["old"], keys["new"]
    folder = local_policy(tmp_path, "v000001")
    PolicyPublisher(store, ReleaseKey.from_file(old_private)).publish(folder, "v000001", "stable")
    with pytest.raises(SignatureError, match="unknown key"):
        watcher(store, tmp_path, new_public).poll()
    PolicyPublisher(store, ReleaseKey.from_file(new_private)).publish(folder, "v000001", "stable")
    assert json.loads(store.read_bytes(signature_key(policy_folder("v000001"))))["key_id"] == new_id
    assert watcher(store, tmp_path, new_public).poll().version == "v000001"


def test_a_revoked_key_is_refused_even_while_trusted(store, tmp_path, keys):
    (old_private, old_public, old_id), (_, new_public, _) = keys["old"], keys["new"]
    revoked = tmp_path / "revoked.txt"
    revoked.write_text(f"# leaked laptop, 2026-05-01\n{old_id}  # old release key\n\n")
    assert read_revocation_list(revoked) == {old_id}
    publish(store, tmp_path, "v000001", old_private)
    with pytest.raises(SignatureError, match=f"v000001 refused: signed by revoked key {old_id}"):
        watcher(store, tmp_path, old_public, new_public, revoked=revoked).poll()
    # Revocation holds even on a development robot that accepts unsigned policies.
    with pytest.raises(SignatureError, match="revoked"):
        watcher(store, tmp_path, revoked=revoked, allow_unsigned=True).poll()
    revoked.write_text("not-a-key-id\n")
    with pytest.raises(ReleaseKeyError, match="malformed key ids"):
        read_revocation_list(revoked)


def test_a_cached_copy_is_served_only_while_its_release_is_still_accepted(store, tmp_path, keys):
    (private, public, key_id) = keys["old"]
    publish(store, tmp_path, "v000001", private)
    assert watcher(store, tmp_path, public).poll().version == "v000001"
    revoked = tmp_path / "revoked.txt"
    revoked.write_text(key_id + "\n")
    with pytest.raises(SignatureError, match="revoked"):
        watcher(store, tmp_path, public, revoked=revoked).poll()


def test_allow_unsigned_accepts_unsigned_policies_loudly_but_never_a_broken_signature(store, tmp_path, keys, caplog):
    private, public, _ = keys["old"]
    publish(store, tmp_path, "v000001")
    with caplog.at_level(logging.WARNING, logger="lwd_fleet"):
        assert watcher(store, tmp_path, allow_unsigned=True).poll().version == "v000001"
    assert "v000001 is NOT signed" in caplog.text and "robots refuse it" in caplog.text
    publish(store, tmp_path, "v000002", private)
    manifest = Manifest.from_json(store.read_bytes(manifest_key(policy_folder("v000002"))))
    changed = Manifest(manifest.kind, manifest.files, {**manifest.facts, "note": "edited"})
    store.write_bytes(manifest_key(policy_folder("v000002")), changed.to_json().encode())
    with pytest.raises(SignatureError, match="does not match the manifest"):
        watcher(store, tmp_path, public, allow_unsigned=True, cache="dev").poll()
    store.write_bytes(signature_key(policy_folder("v000002")), b"{not json")
    with pytest.raises(SignatureError, match="v000002 refused: malformed signature file"):
        watcher(store, tmp_path, public, cache="dev2").poll()
