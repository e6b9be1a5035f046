"""Exceptions of lwd_logger: each names one kind of failure so callers can react to it precisely.

Fleet store errors (upload, channel, publication) are lwd_fleet's, in :mod:`lwd_fleet.errors`.
"""

from __future__ import annotations


class LoggerError(RuntimeError):
    """Base class of every lwd_logger error."""


class RecorderError(LoggerError):
    """An episode event arrived in a state where it cannot be honoured (e.g. end without start)."""


class RecordingFailedError(LoggerError):
    """Writing the open episode failed (a full disk, an I/O error): closed as incomplete, flushed data kept."""


class SpoolFullError(LoggerError):
    """The local spool is over its quota: no new episode may start until uploads free space."""


class BagError(LoggerError):
    """A bag folder cannot be read: missing metadata.yaml, corrupt or truncated storage, unknown types."""


class CorruptChunkError(BagError):
    """A compressed chunk (or file) of a bag's storage does not decompress: the bytes were damaged after writing."""


class PlaybackError(BagError):
    """A bag cannot be played as asked: bad rate, offset, namespace or remap, unknown topic, missing message type."""
