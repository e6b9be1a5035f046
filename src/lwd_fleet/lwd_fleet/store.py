"""FleetStore: the fleet store behind an fsspec URL (``file://`` default, ``sftp://``, ``s3://`` (s3fs),
``memory://`` in-process).

This is the only module that talks to fsspec, paramiko and botocore. Keys are posix paths
relative to the store root, laid out by :mod:`lwd_fleet.layout`. Uploads resume:
a remote file that is a verified prefix of the local one is appended to rather
than sent again. The URL's credentials (password, key file) are never logged:
use ``display_url``.

SFTP URLs: ``sftp://user@host:port/abs/path?key_filename=/path/to/key``; the
key file can also come from ``storage_options``. Opening an sftp store retries a connection that fails on the
way in (``connect_attempts`` tries, backoff doubling from ``connect_delay_s`` with jitter): OpenSSH drops
connections beyond ``MaxStartups`` (10 by default) still authenticating, with "Error reading SSH protocol
banner" on the client, so 16+ robots that start at once would otherwise fail on their first connection.
A refused login, a wrong host key or a missing key file is not retried. (botocore retries an S3
endpoint's connections itself, so ``s3://`` is opened once; ``reconnect`` tries once, as its callers retry.)

S3 URLs: ``s3://bucket/prefix``, with ``?endpoint_url=http://host:9000`` for an S3-compatible server
(or the standard ``AWS_ENDPOINT_URL_S3``). Credentials come from the AWS credential chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role) or ``storage_options``,
never from the URL. The bucket must exist: the store never creates one. S3 has no rename, but a PUT is
visible whole or not at all and is read back by every later request, so a small file (manifest, channel
pointer) is written with one PUT where other backends write a temp file and rename it; folders are implied
by keys; listings are never cached, so a reader sees other writers' objects at once.

A writer opens a store with ``create=True`` (a ``file://`` root is made on the spot); a reader passes
``create=False``, so a mistyped URL is a StoreError instead of a new, empty store.

``holds`` proves that a remote copy has a given sha256 by the cheapest means the store offers: on sftp
the server's own ``sha256sum`` over an ssh exec channel, where the account may run it (no bytes cross the
link; OpenSSH's sftp-server has no checksum extension such as ``check-file``), else (file://, memory://,
s3://, sftp accounts limited to sftp) a read-back. Either way the copy counts as proven only when the digest
read is exactly the one expected; ``proofs`` counts which means proved how many files. ``upload_proven`` uploads
and proves in one call: a ``file://`` store copies in the kernel and reads each block back to hash it while the
next block is copied, so the proof costs little more time than the copy on two cores.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import posixpath
import random
import shlex
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import fsspec
import paramiko
from fsspec.implementations.local import LocalFileSystem
from lwd_interfaces.manifest import sha256_stream

from lwd_fleet.errors import StoreError, StoreUnavailableError

try:
    from botocore import exceptions as botocore_errors
except ImportError:  # without s3fs (and its botocore) there is no s3:// store, so no S3 error to expect
    S3_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = ()
    S3_SETUP_ERRORS: tuple[type[BaseException], ...] = ()
else:
    S3_TRANSIENT_ERRORS = (botocore_errors.ConnectionError, botocore_errors.HTTPClientError)
    # Every other botocore error is a setup error, not an outage: no credentials found, no region.
    S3_SETUP_ERRORS = (botocore_errors.BotoCoreError,)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, paramiko.SSHException, *S3_TRANSIENT_ERRORS)
"""Errors that mean "the store is unreachable right now": worth a reconnect and a retry (botocore's
connection errors, such as an S3 endpoint that refuses connections, are not OSErrors)."""

PERMANENT_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    paramiko.AuthenticationException,
    paramiko.BadHostKeyException,
    FileNotFoundError,
    PermissionError,
)
"""Errors of opening a store that trying again cannot fix (a refused login, a wrong host key, a missing key file)."""

CONNECT_ATTEMPTS = 6
"""Tries to open an sftp store before StoreUnavailableError (waits of about 0.25, 0.5, 1, 2 and 4 s between)."""
CONNECT_DELAY_S = 0.25
"""Wait before the second try to open an sftp store; it doubles each try, times a random 0.5-1 so robots spread."""

S3_QUERY_OPTIONS = ("endpoint_url",)
"""Query parameters an ``s3://`` URL may carry (credentials never: they come from the AWS credential chain)."""

SCHEMES = ("file", "sftp", "ssh", "s3", "memory")
"""URL schemes a store can be opened with (a URL without ``://`` is a local path)."""

_BLOCK = 1 << 20
_COPY_BLOCK = 8 << 20
"""Bytes a local store copies per kernel call, and reads back behind the copy per step of its proof."""
_NO_COPY_RANGE = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)
"""errnos of a ``copy_file_range`` that the kernel does not do between two files (``sendfile`` does)."""
SERVER_SUM_TIMEOUT_S = 300.0
"""Longest wait for the server's ``sha256sum`` of one file before falling back to a read-back."""
PROOF_SERVER = "server sha256sum"
PROOF_READ_BACK = "read-back"
log = logging.getLogger(__name__)
_jitter = random.Random()
"""The connect backoff's own generator: drawing from it never shifts a caller's seeded ``random`` sequence."""


def _fast(stream: Any, size: int | None = None) -> Any:
    """Pipeline writes / prefetch reads on paramiko SFTP files (10x faster on a loopback link); others unchanged."""
    if isinstance(stream, paramiko.SFTPFile):
        if size is None:
            stream.set_pipelined(True)
        else:
            stream.prefetch(size)
    return stream


def _copy_range(source: int, sink: int, start: int, end: int) -> None:
    """Copy bytes ``start:end`` of one open file to the same offsets of another, in the kernel.

    ``copy_file_range`` (which may also share blocks or copy on the server, e.g. NFS); ``sendfile`` where the
    kernel refuses it between these two files (another filesystem on older kernels). Stops early at the
    source's end.
    """
    while start < end:
        try:
            copied = os.copy_file_range(source, sink, end - start, start, start)
        except OSError as error:
            if error.errno not in _NO_COPY_RANGE:
                raise
            os.lseek(sink, start, os.SEEK_SET)
            copied = os.sendfile(sink, source, start, end - start)
        if copied == 0:
            return
        start += copied


def _hash_range(digest: Any, descriptor: int, start: int, end: int, buffer: memoryview) -> None:
    """Read bytes ``start:end`` of an open file into ``digest`` through ``buffer``; stops early at the file's end."""
    while start < end:
        read = os.preadv(descriptor, [buffer[: min(len(buffer), end - start)]], start)
        if read == 0:
            return
        digest.update(buffer[:read])
        start += read


def redact_url(url: str) -> str:
    """The URL with any password and query parameters (key files, tokens) removed, safe to log."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = "?<redacted>" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}" if parts.scheme else url


class FleetStore:
    """Files of the fleet store, addressed by keys relative to the URL's root."""

    def __init__(
        self,
        url: str = "file://./fleet",
        storage_options: dict[str, Any] | None = None,
        create: bool = True,
        connect_attempts: int = CONNECT_ATTEMPTS,
        connect_delay_s: float = CONNECT_DELAY_S,
    ) -> None:
        """Parse the URL and connect; raises StoreUnavailableError when the store cannot be reached.

        An sftp store is tried ``connect_attempts`` times, with backoff from ``connect_delay_s``, before that.
        With ``create=False`` the store's root folder must already exist (StoreError otherwise).
        """
        if connect_attempts < 1:
            raise ValueError(f"connect_attempts must be >= 1, got {connect_attempts}")
        self.url = url
        self.create = create
        self.display_url = redact_url(url)
        self.storage_options = dict(storage_options or {})
        parts = urlsplit(url if "://" in url else f"file://{url}")
        self.protocol = parts.scheme or "file"
        if self.protocol == "file":
            self.root = os.path.abspath(parts.netloc + parts.path)
        elif self.protocol in ("sftp", "ssh"):
            self.root = parts.path or "/"
            options: dict[str, Any] = {"host": parts.hostname, "port": parts.port or 22, "timeout": 10}
            if parts.username:
                options["username"] = parts.username
            if parts.password:
                options["password"] = parts.password
            options.update(dict(parse_qsl(parts.query)))
            options.update(self.storage_options)
            self._sftp_options = options
        elif self.protocol == "s3":
            self.root = f"{parts.netloc}{parts.path}".rstrip("/")
            self._s3_options = self._s3_url_options(parts.netloc, parts.query)
        elif self.protocol == "memory":
            self.root = "/" + f"{parts.netloc}{parts.path}".strip("/")
        if self.protocol not in SCHEMES:
            raise StoreError(f"unsupported store URL scheme {self.protocol!r} in {self.display_url}")
        self.proofs: Counter[str] = Counter()
        self._server_sums = self.protocol in ("sftp", "ssh")
        self.fs = self._open(connect_attempts if self._server_sums else 1, connect_delay_s)

    def _s3_url_options(self, netloc: str, query: str) -> dict[str, Any]:
        """s3fs options of an ``s3://`` URL's query; StoreError for credentials in the URL or an unknown parameter."""
        if "@" in netloc:
            raise StoreError(
                f"store {self.display_url}: an s3:// URL takes no credentials; "
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE instead"
            )
        options = dict(parse_qsl(query))
        unknown = sorted(set(options) - set(S3_QUERY_OPTIONS))
        if unknown:
            raise StoreError(
                f"store {self.display_url}: unsupported s3:// URL parameter(s) {unknown} "
                f"(supported: {', '.join(S3_QUERY_OPTIONS)})"
            )
        return options

    def _open(self, attempts: int, delay_s: float) -> fsspec.AbstractFileSystem:
        """``_connect``, tried up to ``attempts`` times while it fails transiently; the waits double, jittered."""
        for attempt in range(1, attempts + 1):
            try:
                return self._connect(attempt, attempts)
            except StoreUnavailableError as error:
                if attempt == attempts or isinstance(error.__cause__, PERMANENT_CONNECT_ERRORS):
                    raise
                wait = delay_s * 2 ** (attempt - 1) * _jitter.uniform(0.5, 1.0)
                log.info("store %s: %s; try %d/%d in %.2f s", self.display_url, error, attempt + 1, attempts, wait)
                time.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")

    def _connect(self, attempt: int = 1, attempts: int = 1) -> fsspec.AbstractFileSystem:
        """The filesystem, reached once; StoreUnavailableError (naming the tries made) when it cannot be reached."""
        try:
            fs = self._filesystem()
            if self.protocol == "s3":
                self._check_bucket(fs)
            if not self.create and not fs.isdir(self.root):
                raise StoreError(f"store {self.display_url} does not exist")
            return fs
        except ImportError as error:
            raise StoreError(f"store {self.display_url} needs an optional package: {error}") from error
        except TRANSIENT_ERRORS as error:
            tries = f" (try {attempt} of {attempts})" if attempts > 1 else ""
            raise StoreUnavailableError(
                f"cannot reach store {self.display_url}{tries}: {type(error).__name__}: {error}"
            ) from error
        except S3_SETUP_ERRORS as error:
            raise StoreError(f"cannot open store {self.display_url}: {type(error).__name__}: {error}") from error

    def _filesystem(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem of the URL's protocol (a missing ``file://`` root is made when ``create``)."""
        if self.protocol == "file":
            if self.create:
                Path(self.root).mkdir(parents=True, exist_ok=True)
            return LocalFileSystem()
        if self.protocol in ("sftp", "ssh"):
            options = dict(self._sftp_options)
            options["port"] = int(options["port"])
            return fsspec.filesystem("sftp", skip_instance_cache=True, **options)
        if self.protocol == "memory":
            return fsspec.filesystem("memory")
        options = {"use_listings_cache": False, **self._s3_options, **self.storage_options}
        return fsspec.filesystem("s3", skip_instance_cache=True, **options)

    def _check_bucket(self, fs: fsspec.AbstractFileSystem) -> None:
        """Ask the S3 server for the URL's bucket (this is what reaches the endpoint); StoreError when it is missing."""
        bucket = self.root.split("/", 1)[0]
        try:
            fs.info(bucket)
        except FileNotFoundError as error:
            raise StoreError(f"store {self.display_url}: bucket {bucket!r} does not exist") from error

    @property
    def is_object_store(self) -> bool:
        """True for ``s3://``: no rename, no folders (keys imply them), and one PUT is written whole or not at all."""
        return self.protocol == "s3"

    def reconnect(self) -> None:
        """Drop the connection and open a new one (after the server went away)."""
        self.fs = self._connect()

    @property
    def is_local(self) -> bool:
        """True for a ``file://`` store: ``path(key)`` is then a folder or file on this machine."""
        return self.protocol == "file"

    def path(self, key: str) -> str:
        """Full path on the filesystem of a store key."""
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"unsafe store key {key!r}")
        return posixpath.join(self.root, key) if key else self.root

    def _key(self, path: str) -> str:
        """Store key of a full path below the root (inverse of ``path``)."""
        return path[len(self.root.rstrip("/")) + 1 :]

    def exists(self, key: str) -> bool:
        """True when the key exists (file or folder)."""
        return bool(self.fs.exists(self.path(key)))

    def size(self, key: str) -> int | None:
        """Size in bytes of a remote file, None when it does not exist."""
        try:
            return int(self.fs.info(self.path(key))["size"])
        except FileNotFoundError:
            return None

    def sha256(self, key: str, limit: int | None = None) -> str:
        """sha256 of a remote file read back from the store (of its first ``limit`` bytes if given)."""
        path = self.path(key)
        with _fast(self.fs.open(path, "rb"), limit if limit is not None else self.fs.info(path)["size"]) as stream:
            return sha256_stream(stream, limit)[0]

    def read_bytes(self, key: str) -> bytes:
        """Whole content of a small remote file."""
        with self.fs.open(self.path(key), "rb") as stream:
            return stream.read()

    def listdir(self, key: str) -> list[str]:
        """Names of the entries directly under a remote folder (empty when it does not exist)."""
        try:
            entries = self.fs.ls(self.path(key), detail=False)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(str(e).rstrip("/")) for e in entries)

    def glob(self, pattern: str) -> list[str]:
        """Keys matching a glob pattern of keys (``*`` matches within one folder), sorted."""
        return sorted(self._key(path) for path in self.fs.glob(self.path(pattern)))

    def find(self, key: str) -> list[str]:
        """Keys of every file below a remote folder, at any depth, sorted."""
        return sorted(self._key(path) for path in self.fs.find(self.path(key)))

    def makedirs(self, key: str) -> None:
        """Create a remote folder and its parents (nothing to do on an object store, where keys imply folders)."""
        self._makedirs(self.path(key))

    def _makedirs(self, path: str) -> None:
        """``makedirs`` of a full path."""
        if not self.is_object_store:
            self.fs.makedirs(path, exist_ok=True)

    def remove(self, key: str) -> None:
        """Delete a remote file."""
        self.fs.rm(self.path(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write a small remote file so readers never see it half written (temp file, then rename; one PUT on S3)."""
        target = self.path(key)
        if self.is_object_store:
            self.fs.pipe_file(target, data)
            return
        temporary = target + ".tmp"
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        with self.fs.open(temporary, "wb") as stream:
            stream.write(data)
        if self.fs.exists(target):
            self.fs.rm(target)
        self.fs.mv(temporary, target)

    def replace_bytes(self, key: str, data: bytes) -> None:
        """Write a small remote file by renaming a uniquely named temp file over it.

        A reader sees the old content or the new, never no file; concurrent writers never share a temp file.
        On S3 one PUT over the object gives the same guarantees (the last writer wins, as with renames).
        """
        if self.is_object_store:
            self.fs.pipe_file(self.path(key), data)
            return
        folder, name = posixpath.split(self.path(key))
        temporary = posixpath.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
        self.fs.makedirs(folder, exist_ok=True)
        self.fs.pipe_file(temporary, data)
        self.fs.mv(temporary, posixpath.join(folder, name))

    def upload_file(self, local: str | Path, key: str) -> int:
        """Upload a local file, resuming when the remote file is a matching prefix; returns bytes sent.

        A local store copies in the kernel (``copy_file_range``), as ``shutil.copyfile`` does, instead of
        through Python. On S3 an object appears only when its upload is closed: a process killed mid-upload
        leaves none, so that file starts again from byte 0. s3fs appends to a prefix by rewriting the object
        (the prefix copied on the server from 5 MiB on).
        """
        return self._upload(Path(local), key, None)

    def upload_proven(self, local: str | Path, key: str, sha256: str) -> tuple[int, bool]:
        """``upload_file``, then proof that the store's copy has exactly ``sha256``: (bytes sent, proven).

        On a local store the proof is a read-back that runs behind the copy: each block of the copy is read
        back and hashed while the kernel copies the next one, so the sha256 pass (slower than the kernel copy)
        runs on a second core instead of after the copy. Every byte of the copy, the resumed prefix included
        and anything past its expected end, is read back from it after it was written. Elsewhere the proof is
        ``holds``.
        """
        if not self.is_local:
            sent = self.upload_file(local, key)
            return sent, self.holds(key, sha256)
        digest = hashlib.sha256()
        sent = self._upload(Path(local), key, digest)
        if digest.hexdigest() != sha256:
            return sent, False
        self.proofs[PROOF_READ_BACK] += 1
        return sent, True

    def _upload(self, local: Path, key: str, digest: Any | None) -> int:
        """``upload_file``; on a local store ``digest`` (a hashlib object, or None) takes every byte read back."""
        local_size = local.stat().st_size
        remote_size = self.size(key)
        offset = 0
        if remote_size is not None and 0 < remote_size <= local_size:
            with open(local, "rb") as stream:
                local_prefix = sha256_stream(stream, remote_size)[0]
            if self.sha256(key, limit=remote_size) == local_prefix:
                offset = remote_size
        target = self.path(key)
        if self.is_local:
            self._copy_local(local, target, offset, local_size, digest)
        elif offset < local_size:
            self._makedirs(posixpath.dirname(target))
            with open(local, "rb") as source, _fast(self.fs.open(target, "ab" if offset else "wb")) as sink:
                source.seek(offset)
                while block := source.read(_BLOCK):
                    sink.write(block)
        if 0 < offset < local_size:
            log.info("resumed %s at byte %d of %d", key, offset, local_size)
        return local_size - offset

    def _copy_local(self, local: Path, target: str, offset: int, size: int, digest: Any | None) -> None:
        """Copy bytes ``offset:size`` of ``local`` to the same place in ``target`` (which holds the first ``offset``).

        With ``digest``, every byte of ``target`` is read back into it: the prefix first, then each block while
        the next one is copied (in the kernel, on another thread: both release the GIL), then up to the copy's
        actual end. A source shorter than ``size``, or bytes past it, make the digest differ.
        """
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with open(local, "rb", buffering=0) as source, open(target, "r+b" if offset else "w+b", buffering=0) as sink:
            if digest is None:
                for start in range(offset, size, _COPY_BLOCK):
                    _copy_range(source.fileno(), sink.fileno(), start, min(start + _COPY_BLOCK, size))
                return
            buffer = memoryview(bytearray(_COPY_BLOCK))
            _hash_range(digest, sink.fileno(), 0, offset, buffer)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-copy") as copier:
                behind = offset
                for start in range(offset, size, _COPY_BLOCK):
                    end = min(start + _COPY_BLOCK, size)
                    copying = copier.submit(_copy_range, source.fileno(), sink.fileno(), start, end)
                    _hash_range(digest, sink.fileno(), behind, start, buffer)
                    copying.result()
                    behind = start
                _hash_range(digest, sink.fileno(), behind, os.fstat(sink.fileno()).st_size, buffer)

    def holds(self, key: str, sha256: str) -> bool:
        """True when the store's copy of ``key`` has exactly this sha256, proven the cheapest way the store offers.

        On sftp the server hashes the file itself where the account may run ``sha256sum`` over ssh; any other
        answer than ``sha256`` (a refused exec, another digest) is checked again by a read-back, so a mismatch
        is always one the bytes themselves show.
        """
        if self._server_sums and self._server_sha256(key) == sha256:
            self.proofs[PROOF_SERVER] += 1
            return True
        if self.sha256(key) != sha256:
            return False
        self.proofs[PROOF_READ_BACK] += 1
        return True

    def _server_sha256(self, key: str) -> str | None:
        """sha256 of a remote file as the sftp server's ``sha256sum`` reports it; None where it cannot say.

        A server that refuses exec channels or lacks ``sha256sum`` is not asked again on this connection.
        """
        client = getattr(self.fs, "client", None)
        if client is None:
            self._server_sums = False
            return None
        command = f"sha256sum -- {shlex.quote(self.path(key))}"
        try:
            _, stdout, _ = client.exec_command(command, timeout=SERVER_SUM_TIMEOUT_S)
            output = stdout.read()
            status = stdout.channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as error:
            log.info("store %s: no server-side sha256sum (%s); proving copies by read-back", self.display_url, error)
            self._server_sums = False
            return None
        digest = output.split(b" ", 1)[0].decode("ascii", "replace")
        if status == 127 or len(digest) != 64:
            log.info("store %s: server cannot run sha256sum (exit %d); proving by read-back", self.display_url, status)
            self._server_sums = False
            return None
        return digest if status == 0 else None

    def remove_empty_folder(self, key: str) -> None:
        """Delete a remote folder if it exists and holds nothing (cleanup after an abandoned upload)."""
        if self.exists(key) and not self.listdir(key):
            self.fs.rmdir(self.path(key))

    def download_file(self, key: str, local: str | Path) -> None:
        """Copy a remote file to a local path."""
        path = self.path(key)
        with _fast(self.fs.open(path, "rb"), self.fs.info(path)["size"]) as source, open(local, "wb") as sink:
            while block := source.read(_BLOCK):
                sink.write(block)
