"""The S3 store against moto's S3 API server: credentials come from the environment and never from or into the
URL, a missing bucket or prefix is a clear StoreError, an unreachable endpoint a StoreUnavailableError, and the
bag bridge rides out an S3 outage by retrying (nothing was half written: an upload is one object or none)."""

from __future__ import annotations

import socket

import pytest
from conftest import S3_BUCKET, require_s3_packages, s3_url
from lwd_fleet.errors import StoreError, StoreUnavailableError
from lwd_fleet.store import FleetStore
from lwd_interfaces.manifest import verify_folder
from lwd_logger.bridge import BagBridge
from store_servers import S3Server, StoreBackend


def test_s3_urls_take_no_credentials_and_only_known_parameters():
    require_s3_packages()
    with pytest.raises(StoreError, match="takes no credentials") as error:
        FleetStore("s3://AKIAEXAMPLE:hunter2@bucket/fleet")
    assert "hunter2" not in str(error.value)
    with pytest.raises(StoreError, match=r"unsupported s3:// URL parameter\(s\) \['secret'\]") as error:
        FleetStore("s3://bucket/fleet?secret=hunter2")
    assert "hunter2" not in str(error.value)


def test_missing_bucket_prefix_or_credentials_are_clear_errors(s3_server, s3_credentials, monkeypatch):
    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist"):
        FleetStore(f"s3://no-such-bucket/fleet?endpoint_url={s3_server.endpoint}")
    with pytest.raises(StoreError, match="does not exist"):
        FleetStore(s3_url(s3_server, "typo"), create=False)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="NoCredentialsError"):
        FleetStore(s3_url(s3_server, "fleet"))


def test_endpoint_from_the_standard_environment_variable(s3_server, s3_credentials, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    store = FleetStore(f"s3://{S3_BUCKET}/from-env")
    store.write_bytes("x", b"1")
    assert FleetStore(s3_url(s3_server, "from-env")).read_bytes("x") == b"1"


@pytest.fixture
def own_s3_server(tmp_path, s3_credentials):
    """An S3 server of the test's own, which it may stop and restart (a restart empties it)."""
    require_s3_packages()
    server = S3Server(tmp_path / "s3")
    server.start()
    server.create_bucket(S3_BUCKET)
    yield server
    server.stop()


def test_unreachable_s3_endpoint_is_a_clear_error(s3_credentials, monkeypatch):
    require_s3_packages()
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries would take ~12 s
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(StoreUnavailableError, match="cannot reach store") as error:
        FleetStore(f"s3://{S3_BUCKET}/fleet?endpoint_url=http://127.0.0.1:{closed_port}")
    assert "lwd-test-secret" not in str(error.value) and "?<redacted>" in str(error.value)


def test_bridge_retries_through_an_s3_outage(own_s3_server, monkeypatch, record_episode, spool, tmp_path):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    folder = record_episode(n=5)
    digest = verify_folder(folder).digest
    store = FleetStore(s3_url(own_s3_server, "fleet"))
    own_s3_server.stop()
    restarts = []

    def restart_server(delay: float) -> None:
        restarts.append(delay)
        own_s3_server.start()
        own_s3_server.create_bucket(S3_BUCKET)

    (result,) = BagBridge(spool, store, base_delay_s=0.1, sleep=restart_server).upload_pending()
    assert restarts == [0.1], "the upload must have failed once and been retried"
    assert not folder.exists()
    backend = StoreBackend("s3", s3_url(own_s3_server, "fleet"))
    assert verify_folder(backend.download(result.key, tmp_path / "copy"), kind="episode").digest == digest
