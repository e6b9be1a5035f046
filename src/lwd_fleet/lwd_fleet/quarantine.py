"""The quarantine's vocabulary: the named reasons a stage sets a bad fleet item aside for, and the item's identity.

Every stage that reads fleet data (bag bridge, catalog, trainer ingest, BC pretraining) handles a bad item by
setting it aside under one of these reasons, counting it and going on with the rest; nothing is deleted. The
record of what was set aside is the catalog's ``rejected`` table (:mod:`lwd_fleet.catalog`), keyed by the
manifest digest so the same content is never retried, while a re-upload with new content is looked at again.
"""

from __future__ import annotations

import hashlib

from lwd_interfaces.manifest import Manifest, ManifestError

INVALID_MANIFEST = "invalid_manifest"
CHECKSUM_MISMATCH = "checksum_mismatch"
CORRUPT_BAG = "corrupt_bag"
CORRUPT_CHUNK = "corrupt_chunk"
FOREIGN_BAG = "foreign_bag"
INCOMPLETE = "incomplete"
INVALID_FACTS = "invalid_facts"
MISSING_TOPICS = "missing_topics"
BAD_MESSAGE = "bad_message"
NO_STEPS = "no_steps"
INCONSISTENT_SHAPES = "inconsistent_shapes"
WRONG_JOINT_COUNT = "wrong_joint_count"
NON_FINITE = "non_finite"
NON_INCREASING_STAMPS = "non_increasing_stamps"
DUPLICATE = "duplicate"
UNREADABLE = "unreadable"

REASONS = {
    INVALID_MANIFEST: "the manifest is malformed, of another kind, or lacks the lwd.* facts",
    CHECKSUM_MISMATCH: "a file the manifest lists is missing or fails its size or sha256 check",
    CORRUPT_BAG: "the bag's metadata or storage cannot be read (truncated, damaged, unknown types)",
    CORRUPT_CHUNK: "a compressed storage chunk does not decompress",
    FOREIGN_BAG: "the bag has no LWD episode facts",
    INCOMPLETE: "the episode has no success/failure outcome (interrupted or unlabelled)",
    INVALID_FACTS: "an episode fact has a value the contract does not allow",
    MISSING_TOPICS: "a topic or camera the episode needs has no messages",
    BAD_MESSAGE: "a message does not have the contract's type or layout",
    NO_STEPS: "no control step has every stream it needs",
    INCONSISTENT_SHAPES: "joint, image or object-pose sizes change within the episode",
    WRONG_JOINT_COUNT: "joint states or commands do not have the policy's number of joints",
    NON_FINITE: "joint states or executed actions hold NaN or infinity",
    NON_INCREASING_STAMPS: "executed-command header stamps repeat or go back, which would collapse steps",
    DUPLICATE: "the same content was already ingested under another store path",
    UNREADABLE: "reading the item failed in an unexpected way (the detail names the exception)",
}
"""Every reason name, with what it means (docs and ``lwd store ls --rejected`` use these words)."""


def manifest_identity(manifest_bytes: bytes) -> str:
    """The key an item is quarantined under: its manifest's digest, or the sha256 of bytes that do not parse."""
    try:
        return Manifest.from_json(manifest_bytes).digest
    except ManifestError:
        return hashlib.sha256(manifest_bytes).hexdigest()
