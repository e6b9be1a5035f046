"""FleetStore itself: credentials never shown, unsafe keys and unknown schemes refused, and the key operations
the learner uses (glob, find, atomic replace) on a file:// and an in-process memory:// store."""

from __future__ import annotations

import pytest
from lwd_fleet.errors import StoreError
from lwd_fleet.store import FleetStore, redact_url


def test_redact_url_hides_credentials():
    url = "sftp://robot:hunter2@10.0.0.5:2222/fleet?key_filename=/home/robot/.ssh/id_ed25519"
    redacted = redact_url(url)
    assert "hunter2" not in redacted
    assert "id_ed25519" not in redacted
    assert redacted == "sftp://robot@10.0.0.5:2222/fleet?<redacted>"


def test_unsupported_scheme_and_unsafe_keys_are_refused(tmp_path):
    with pytest.raises(StoreError, match="unsupported store URL scheme"):
        FleetStore("gopher://x/y")
    with pytest.raises(StoreError, match="unsafe store key"):
        FleetStore(str(tmp_path)).path("../etc/passwd")


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_glob_find_and_replace_bytes_speak_in_keys(kind, tmp_path):
    store = FleetStore(f"file://{tmp_path / 'fleet'}" if kind == "file" else f"memory:///fleet-{tmp_path.name}")
    assert store.is_local == (kind == "file")
    store.write_bytes("a/x/manifest.json", b"{}")
    store.write_bytes("a/x/sub/data.bin", b"data")
    store.write_bytes("a/y/data.bin", b"pending")
    assert store.glob("a/*/manifest.json") == ["a/x/manifest.json"]
    assert store.find("a/x") == ["a/x/manifest.json", "a/x/sub/data.bin"]
    store.replace_bytes("c/pointer", b"one\n")
    store.replace_bytes("c/pointer", b"two\n")
    assert store.read_bytes("c/pointer") == b"two\n"
    assert store.find("c") == ["c/pointer"], "no temp file is left behind"
