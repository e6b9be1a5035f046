"""One trainer replica for test_ddp.py's sharded-ingest test, launched by ``torch.distributed.run`` on CPU/gloo.

Every rank opens a ``TrainerService`` on the same store and work folder, ingests what is new twice (the second
scan finds nothing), then trains ``UPDATES`` updates through ``run`` (readiness, updates and publish in
lockstep). It writes ``<out>/rank<R>.json``: its buffer's episode keys in order, its ledger, how many frames
it encoded itself and how many it read from the feature cache another rank wrote, and the step reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from conftest import HashEmbedder
from lwd_learner.distributed import DistributedContext
from lwd_learner.trainer import TrainerConfig, TrainerService

UPDATES = 2


def main(store: Path, work: Path, out: Path) -> None:
    torch.set_num_threads(1)
    context = DistributedContext.from_environment()
    config = TrainerConfig(
        store_url=f"file://{store}",
        work_dir=work,
        publish_every=UPDATES,
        batch_size=8,
        agent={"hidden_dim": 32},
        poll_interval=0.01,
    )
    service = TrainerService(config, lambda checkpoint: HashEmbedder(), context)
    added = [service.ingest_new(), service.ingest_new()]
    step = service.run(max_updates=UPDATES)
    service.close()
    log = {
        "world": context.world_size,
        "added": added,
        "keys": service.buffer.episode_keys(),
        "ledger": service.ledger,
        "frames_encoded": service.features.frames_encoded,
        "frames_read": {
            relative: len(service.buffered[entry["key"]].features.frames) for relative, entry in service.ledger.items()
        },
        "feature_disk_hits": service.features.disk_hits,
        "step": step,
    }
    (out / f"rank{context.rank}.json").write_text(json.dumps(log))
    context.barrier()
    context.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
