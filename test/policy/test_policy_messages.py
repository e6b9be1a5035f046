"""Message conversions used by policy_node, checked against the real lwd_msgs definitions."""

from __future__ import annotations

import numpy as np
import pytest
from lwd_interfaces import lwd_typestore
from lwd_policy.blending import Chunk
from lwd_policy.messages import action_chunk_msg, stamp_seconds


def test_action_chunk_msg_serializes_as_lwd_msgs_action_chunk() -> None:
    store = lwd_typestore()
    chunk_type = store.types["lwd_msgs/msg/ActionChunk"]
    actions = np.arange(20 * 14, dtype=np.float64).reshape(20, 14) / 100
    chunk = Chunk(7, 3, actions, "v000012", 0.0123, 1.5)
    message = action_chunk_msg(chunk, 0.02, round(chunk.stamp * 1e9))
    decoded = store.deserialize_cdr(store.serialize_cdr(message, chunk_type.__msgtype__), chunk_type.__msgtype__)
    assert (decoded.horizon, decoded.action_dim, decoded.chunk_id) == (20, 14, 7)
    assert decoded.policy_version == "v000012" and decoded.inference_latency == pytest.approx(0.0123)
    np.testing.assert_allclose(decoded.actions.reshape(20, 14), actions, rtol=1e-6)
    assert stamp_seconds(decoded.header.stamp.sec, decoded.header.stamp.nanosec) == pytest.approx(1.5)
