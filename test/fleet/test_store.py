"""FleetStore itself: credentials never shown, unsafe keys and unknown schemes refused, and the key operations
the learner uses (glob, find, atomic replace) on every backend: file://, in-process memory://, a real SFTP
server and a real S3 API; a local upload copied in the kernel and proven by a read-back behind the copy."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest
from lwd_fleet.errors import StoreError
from lwd_fleet.store import FleetStore, redact_url

from lwd_fleet import store as store_module


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


@pytest.mark.parametrize("store_backend", ["file", "memory", "sftp", "s3"], indirect=True)
def test_glob_find_and_replace_bytes_speak_in_keys(store_backend):
    store = FleetStore(store_backend.url)
    assert store.is_local == (store_backend.kind == "file")
    store.write_bytes("a/x/manifest.json", b"{}")
    store.write_bytes("a/x/sub/data.bin", b"data")
    store.write_bytes("a/y/data.bin", b"pending")
    assert store.glob("a/*/manifest.json") == ["a/x/manifest.json"]
    assert store.find("a/x") == ["a/x/manifest.json", "a/x/sub/data.bin"]
    store.replace_bytes("c/pointer", b"one\n")
    store.replace_bytes("c/pointer", b"two\n")
    store.write_bytes("a/x/manifest.json", b"{ }")
    assert store.read_bytes("c/pointer") == b"two\n"
    assert store.read_bytes("a/x/manifest.json") == b"{ }"
    assert store.find("c") == ["c/pointer"], "no temp file is left behind"
    assert store.listdir("a") == ["x", "y"] and store.listdir("nothing") == []
    assert FleetStore(store_backend.url, create=False).find("a/y") == ["a/y/data.bin"]


def test_a_local_upload_is_copied_in_the_kernel_and_proven_by_reading_every_byte_back(tmp_path, monkeypatch):
    block = store_module._COPY_BLOCK
    data = os.urandom(2 * block + 12345)  # three blocks: each read back while the next one is copied
    digest = hashlib.sha256(data).hexdigest()
    local = tmp_path / "bag.mcap"
    local.write_bytes(data)
    store = FleetStore(str(tmp_path / "fleet"))
    (tmp_path / "fleet" / "a").mkdir(parents=True)
    (tmp_path / "fleet" / "a" / "bag.mcap").write_bytes(data[: block + 7])  # an upload cut short
    assert store.upload_proven(local, "a/bag.mcap", digest) == (len(data) - block - 7, True)
    assert (tmp_path / "fleet" / "a" / "bag.mcap").read_bytes() == data
    assert store.proofs == {"read-back": 1}

    def cross_device(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", cross_device)  # spool and store on two filesystems: sendfile
    assert store.upload_proven(local, "b/bag.mcap", digest) == (len(data), True)
    assert (tmp_path / "fleet" / "b" / "bag.mcap").read_bytes() == data
    assert store.upload_proven(local, "b/bag.mcap", "0" * 64) == (0, False), "a copy is proven by its digest only"
    with open(tmp_path / "fleet" / "b" / "bag.mcap", "ab") as stream:
        stream.write(b"tail")  # a longer remote file is no prefix to resume from: copied again, then proven
    assert store.upload_proven(local, "b/bag.mcap", digest) == (len(data), True)
    assert store.proofs == {"read-back": 3}
