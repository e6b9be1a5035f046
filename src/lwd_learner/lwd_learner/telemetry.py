"""Training telemetry: TensorBoard scalars plus a status JSON that ``lwd train status`` prints.

Every figure the trainer reports (losses, τ statistics, value entropy, updates/s,
buffer composition, last published version) is written both as a TensorBoard
scalar under ``<log_dir>/tensorboard`` and into ``<log_dir>/status.json``
(rewritten atomically, so a reader never sees half a file). The status also counts
the episodes ingest set aside, by quarantine reason (``quarantine``), and says how fast
ingest goes (``ingest_frames_per_s``, of the current or last store scan) and how many
episodes it has found but not ingested yet (``ingest_backlog``).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

STATUS_NAME = "status.json"


class Telemetry:
    """Writes scalars to TensorBoard event files and the latest figures to a status JSON."""

    def __init__(self, log_dir: str | Path, enabled: bool = True) -> None:
        self.log_dir = Path(log_dir)
        self.enabled = enabled
        self._writer: SummaryWriter | None = None
        self._status: dict[str, Any] = {}
        if enabled:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(log_dir=str(self.log_dir / "tensorboard"))

    def record(
        self, step: int, metrics: dict[str, float], buffer_composition: dict[str, int], updates_per_s: float
    ) -> None:
        """Log one update's metrics, the buffer's composition and the update rate at ``step``."""
        if not self.enabled:
            return
        assert self._writer is not None
        scalars = {f"train/{name}": float(value) for name, value in metrics.items()}
        scalars.update({f"buffer/{name}": float(count) for name, count in buffer_composition.items()})
        scalars["perf/updates_per_s"] = float(updates_per_s)
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, step)
        self._status.update(
            {
                "step": step,
                "metrics": {name: _json_number(value) for name, value in metrics.items()},
                "buffer": dict(buffer_composition),
                "updates_per_s": _json_number(updates_per_s),
            }
        )
        self.write_status()

    def record_ingest(self, step: int, frames_per_s: float, backlog: int) -> None:
        """Log the ingest rate (frames/s) and backlog (episodes found, not yet ingested) at update ``step``."""
        if not self.enabled:
            return
        assert self._writer is not None
        self._writer.add_scalar("ingest/frames_per_s", float(frames_per_s), step)
        self._writer.add_scalar("ingest/backlog", float(backlog), step)
        self._status.update({"ingest_frames_per_s": _json_number(frames_per_s), "ingest_backlog": int(backlog)})
        self.write_status()

    def update_status(self, **fields: Any) -> None:
        """Set status fields that are not per-update scalars (state, published version, episodes, errors)."""
        if not self.enabled:
            return
        self._status.update(fields)
        self.write_status()

    def write_status(self) -> None:
        """Rewrite status.json atomically with the current figures and a wall-clock stamp."""
        body = dict(self._status, updated_at=time.time())
        path = self.log_dir / STATUS_NAME
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)

    def flush(self) -> None:
        """Flush pending TensorBoard events to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _json_number(value: float) -> float | str:
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def read_status(log_dir: str | Path) -> dict[str, Any]:
    """The trainer's last status JSON; FileNotFoundError naming the path when there is none yet."""
    path = Path(log_dir) / STATUS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no trainer status at {path}: has `lwd train serve` run with this --work-dir?")
    return json.loads(path.read_text())


def format_status(status: dict[str, Any]) -> str:
    """Human-readable lines of a status JSON: state, step, rate, episodes set aside by reason, buffer, metrics, the
    canary monitor's last decision."""
    lines = [
        f"state: {status.get('state', 'unknown')}",
        f"step: {status.get('step', 0)}",
        f"updates/s: {_short(status.get('updates_per_s', 0))}",
        f"published: {status.get('published_version') or '-'}",
        f"episodes: {status.get('episodes_ingested', 0)} ingested, {status.get('episodes_skipped', 0)} skipped",
        f"ingest: {_short(status.get('ingest_frames_per_s', 0.0))} frames/s, backlog {status.get('ingest_backlog', 0)}",
    ]
    held = status.get("quarantine", {})
    if held:
        lines.append("quarantine: " + ", ".join(f"{reason} {count}" for reason, count in sorted(held.items())))
    buffer = status.get("buffer", {})
    if buffer:
        lines.append("buffer: " + ", ".join(f"{name} {count}" for name, count in sorted(buffer.items())))
    shares = status.get("batch_shares", {})
    if shares:
        lines.append("batch shares: " + ", ".join(f"{name} {share:.0%}" for name, share in sorted(shares.items())))
    for name, value in sorted(status.get("metrics", {}).items()):
        lines.append(f"  {name}: {_short(value)}")
    if status.get("canary"):
        lines.append(f"canary: {status['canary']}")
    if status.get("error"):
        lines.append(f"error: {status['error']}")
    return "\n".join(lines)
