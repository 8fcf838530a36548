"""Peak memory of a few training steps at batch 64 for every family present, each in a fresh process.

On CUDA it reports torch.cuda.max_memory_allocated; on CPU the growth of the process's peak resident set over
its state after start-up (data loaded, model built), which includes the allocator's caching.

    python benchmarks/peak_memory.py [--families dcgan wgan-gp ...] [--resolution 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORKER = r"""
import json, resource, sys, tempfile, torch
from ganforge.api import resolve_config
from ganforge.training.trainer import Trainer
name, resolution, device, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
overrides = {"model.name": name, "train.batch_size": 64, "train.device": device, "data.resolution": resolution}
if name in ("pix2pix", "cyclegan", "srresnet", "srgan", "esrgan"):
    overrides["data.source"] = sys.argv[5]
if name in ("srgan", "esrgan"):
    overrides["model.options.perceptual"] = "ganforge"  # VGG19 weights are not available offline
config = resolve_config(overrides=overrides)
config.train.batch_size = 64
with tempfile.TemporaryDirectory() as tmp:
    trainer = Trainer(config, tmp, quiet=True)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(steps):
        trainer.train_step()
        trainer.step += 1
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    params = sum(p.numel() for p in trainer.family.parameters())
print(json.dumps({"family": name, "peak_mib": peak, "params": params}))
"""


def main() -> None:
    from ganforge.families import available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=None)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--paired-data", default="", help="a paired/HR image folder for translation and SR families")
    args = parser.parse_args()
    families = args.families or [f for f in available() if f not in ("pix2pix", "cyclegan", "srresnet", "srgan", "esrgan")
                                 or args.paired_data]
    print(f"batch 64, {args.resolution} px, {args.steps} steps, device {args.device}")
    print("| family | parameters | peak memory (MiB) |")
    print("|---|---|---|")
    for name in families:
        result = subprocess.run([sys.executable, "-c", WORKER, name, str(args.resolution), args.device,
                                 str(args.steps), args.paired_data], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"| {name} | failed: {result.stderr.strip().splitlines()[-1][:80]} | |")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"| {name} | {row['params'] / 1e6:.2f} M | {row['peak_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
