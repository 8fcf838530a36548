"""Run under torchrun by tests/test_distributed.py: train, then save this rank's weights for comparison."""

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import ganforge
from ganforge.training import checkpoint as ckpt

out, overrides, resume = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None
captured = {}


def capture(trainer):
    if trainer.step == trainer.config.train.steps:
        captured.update(ckpt.prefixed("family", trainer.family.state_dict()))


run = ganforge.train(resume=resume, quiet=True, callbacks=[capture], **overrides)
rank = int(os.environ["RANK"])
save_file({k: v.contiguous() for k, v in captured.items()}, str(out / f"rank{rank}.safetensors"))
torch.distributed.destroy_process_group()
