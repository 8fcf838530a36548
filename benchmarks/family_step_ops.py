"""PyTorch operations and CPU time per training step of noise-to-image families (the host cost a GPU step pays in
kernel launches), for the ganforge tree on PYTHONPATH: run it on two trees to compare them.

    OMP_NUM_THREADS=1 python benchmarks/family_step_ops.py sngan,stylegan,biggan,progan [STEPS] ['{"r1_every": 1}']

aten operations per step from torch.profiler over 16 steps (so StyleGAN's lazy R1 is counted once in 16), CPU
milliseconds per step (process_time) over STEPS more; 32 px, width 32, batch 16, random data, from a step that is
a multiple of 16 (ProGAN fully grown). docs/benchmarks.md (GPU section) used old tree = `git archive cc8706e`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from ganforge.api import resolve_config
from ganforge.data import ImageSet
from ganforge.training.trainer import Trainer


def main() -> None:
    families = sys.argv[1].split(",")
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    res, width, batch = 32, 32, 16
    for name in families:
        config = resolve_config(overrides={
            "model.name": name, "model.width": width, "data.resolution": res, "train.batch_size": batch,
            "train.device": "cpu", "train.steps": 10 ** 6, "train.log_every": 10 ** 6, "train.sample_every": 10 ** 9,
            "train.checkpoint_every": 10 ** 9, "model.options": options})
        g = torch.Generator().manual_seed(0)
        data = ImageSet(torch.randint(0, 256, (256, 3, res, res), dtype=torch.uint8, generator=g),
                        labels=torch.arange(256) % 10, classes=[str(i) for i in range(10)], name="random")
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(config, tmp, quiet=True, data=data)
            trainer.step = 10 ** 6 - 64

            def step() -> None:
                trainer.train_step()
                trainer.step += 1

            for _ in range(2):
                step()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(16):
                    step()
            ops = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::")) / 16
            begin = time.process_time()
            for _ in range(steps):
                step()
            cpu = (time.process_time() - begin) / steps
            trainer.release()
        print(f"{name}: {ops:.0f} aten ops/step, {cpu * 1000:.0f} CPU-ms/step", flush=True)


if __name__ == "__main__":
    main()
