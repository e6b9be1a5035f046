"""Exceptions of lwd_fleet: each names one kind of fleet-store failure so callers can react to it precisely.

``FleetError`` is the base of them all; the recorder's and bag reader's errors stay in lwd_logger.
"""

from __future__ import annotations


class FleetError(RuntimeError):
    """Base class of every lwd_fleet error."""


class StoreError(FleetError):
    """The fleet store refused an operation or holds data that fails verification."""


class StoreUnavailableError(StoreError):
    """The fleet store stayed unreachable after every retry."""


class PolicyVerificationError(StoreError):
    """A policy version downloaded from the store does not match its manifest."""


class PublishError(FleetError):
    """A policy version could not be published, or the store already holds different content under its name."""


class SignatureError(PolicyVerificationError):
    """A policy version is not signed by a trusted release key: unsigned, unknown or revoked key, or changed since."""


class ReleaseKeyError(FleetError):
    """A release key, public key or revocation list file is missing, unreadable, malformed or unsafe."""
