"""Run under torchrun by tests/test_stream_distributed.py: train on streamed images for one epoch and write which
images this process read."""

import json
import os
import sys
from pathlib import Path

import torch

import ganforge

out, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
seen, decoded = [], []


def record(trainer):
    seen.extend(trainer.batches.last_index.tolist())
    decoded.append(trainer.data.records.decoded)


ganforge.train(quiet=True, callbacks=[record], **overrides)
rank = int(os.environ["RANK"])
(out / f"rank{rank}.json").write_text(json.dumps({"seen": seen, "decoded": decoded}))
torch.distributed.destroy_process_group()
