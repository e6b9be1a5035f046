"""The parameters of ``trainer_node``, declared once (see :mod:`lwd_interfaces.parameters`)."""

from __future__ import annotations

from lwd_fleet.canary import CanaryRule
from lwd_fleet.layout import CATALOG_NAME
from lwd_interfaces.parameters import Parameter, ParameterTable

TRAINER_NODE = ParameterTable(
    "trainer_node",
    [
        Parameter("store_url", "file://./fleet", "fsspec URL of the fleet store (file://, sftp://, s3://)"),
        Parameter("work_dir", "runs/trainer", "caches, resume checkpoints, telemetry (TensorBoard + status.json)"),
        Parameter("pretrained", "", "policy folder or store version; '' = what the channel serves now"),
        Parameter("channel", "stable", "stable channel: moved to each published version, or by canary promotion"),
        Parameter("signing_key", "", "release private key that signs each published policy ('' = unsigned)"),
        Parameter("publish_every", 100, "M: updates between published checkpoints", 1, 10**9),
        Parameter("batch_size", 64, "transitions per update", 1, 65536),
        Parameter("buffer_capacity", 200_000, "transitions held by the replay buffer", 1, 10**9),
        Parameter("mix_demo", 0.25, "replay share of demonstrations", 0.0, 1.0),
        Parameter("mix_autonomous", 0.5, "replay share of autonomous steps", 0.0, 1.0),
        Parameter("mix_intervention", 0.25, "replay share of intervention steps", 0.0, 1.0),
        Parameter(
            "clone_mix_demo", 0.0, "cloning batch share of demonstrations (all 0: clone the main batch)", 0.0, 1.0
        ),
        Parameter("clone_mix_autonomous", 0.0, "cloning batch share of autonomous steps", 0.0, 1.0),
        Parameter("clone_mix_intervention", 0.0, "cloning batch share of intervention steps", 0.0, 1.0),
        Parameter("max_oversample", 4.0, "bound on a category's batch share / buffer share (1: uniform)", 1.0, 1e9),
        Parameter("scan_every", 50, "updates between store scans while training", 1, 10**9),
        Parameter("poll_interval", 5.0, "store scan period while the buffer is empty [s]", 0.1, 3600.0),
        Parameter("n_step", 1, "n of the n-step critic targets (1 online)", 1, 1000),
        Parameter("agent_json", "{}", "AgentConfig overrides as JSON, e.g. '{\"lam\": 0.3}'"),
        Parameter("seed", 0, "training seed", 0, 2**31 - 1),
        Parameter("catalog", "", f"SQLite episode catalog; '' = <work_dir>/{CATALOG_NAME}"),
        Parameter("ingest_workers", 0, "processes that verify and decode new episodes (0: the trainer's own)", 0, 64),
        Parameter("canary_channel", "", "publish to this channel first and run the canary monitor; '' = off"),
        Parameter("canary_window", CanaryRule.window, "labelled episodes per version before a decision", 1, 10**6),
        Parameter("canary_margin", CanaryRule.margin, "success-rate margin of a rollback (0.05 = 5 points)", 0.0, 0.99),
        Parameter("language_model", "", "sentence-transformers folder; '' = the policy's (default MiniLM)"),
        Parameter("updates_per_tick", 10, "service ticks per timer callback", 1, 10000),
        Parameter("tick_period", 0.05, "timer period [s]", 0.001, 60.0),
    ],
)
