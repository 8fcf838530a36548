"""Training images/s on a GPU: ganforge's trainer (fp32 and AMP) against a plain PyTorch loop, per family and size.

The plain loop is what a user writes from a paper repo or the PyTorch tutorials, over the *same* family object and
the *same* losses (`family.loss(phase, batch)`, the family's phases and repeat counts, the family's learning rates):
a DataLoader over an in-memory float TensorDataset on the host (a generous baseline: no per-item decoding), the
batch copied to the GPU every step, `torch.optim.Adam` with its default (foreach) implementation, fp32, and
`loss.item()` every step for the loss curve (the tutorial's habit). ganforge's trainer runs with the family's preset,
EMA included, data resident on the GPU, fused Adam, one host sync per log interval, and optionally AMP (bf16 where the
GPU has it). Both loops are interleaved in short rounds, alternating which runs first; the table gives medians of
images/s and the median of the per-round ratios.

    python benchmarks/gpu_throughput.py [--families dcgan sngan stylegan biggan] [--resolutions 64 128 256]
                                         [--batch 64] [--steps 20] [--rounds 3] [--device cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from typing import Callable

import torch

from ganforge.api import resolve_config
from ganforge.config import RunConfig
from ganforge.data import ImageSet
from ganforge.families import DataInfo, create
from train_throughput import ganforge_step, sync  # this folder: the same trainer step and device sync

CLASSES = 10


def make_config(family: str, resolution: int, batch: int, steps: int, device: str, amp: bool) -> RunConfig:
    return resolve_config(overrides={
        "model.name": family, "data.resolution": resolution, "train.batch_size": batch, "train.steps": steps,
        "train.device": device, "train.amp": amp, "train.log_every": steps, "train.sample_every": 10 ** 9,
        "train.checkpoint_every": 10 ** 9,
    })


def fake_data(resolution: int, n: int = 1024) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, resolution, resolution), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % CLASSES
    return ImageSet(images, labels=labels, classes=[str(i) for i in range(CLASSES)], name="random")


def plain_step(config: RunConfig, data: ImageSet, start: int) -> Callable[[], None]:
    """One step of a hand-written loop over the same family and losses."""
    device = torch.device(config.train.device)
    torch.manual_seed(0)
    family = create(config, DataInfo(3, config.data.resolution, CLASSES)).to(device)
    phases = family.phases()
    optimizers = {p.name: torch.optim.Adam(getattr(family, p.module).parameters(), lr=p.lr, betas=p.betas)
                  for p in phases}
    dataset = torch.utils.data.TensorDataset(data.as_float(), data.labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.train.batch_size, shuffle=True, drop_last=True)
    family.on_step(start)

    def batches():
        while True:
            for image, label in loader:
                yield {"image": image.to(device), "label": label.to(device)}

    it = batches()
    history: list[float] = []

    def step():
        for phase in phases:
            for _ in range(phase.repeat):
                loss, _ = family.loss(phase.name, next(it))
                optimizers[phase.name].zero_grad()
                loss.backward()
                optimizers[phase.name].step()
                family.after_step(phase.name)
                history.append(loss.item())

    return step


def images_per_second(step: Callable[[], None], steps: int, batch: int, device: torch.device) -> float:
    for _ in range(3):  # warm-up (cuDNN autotuning, allocator)
        step()
    sync(device)
    begin = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["dcgan", "sngan", "stylegan", "biggan"])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {args.device} ({name}), torch {torch.__version__}, batch {args.batch}, {args.steps} steps x "
          f"{args.rounds} rounds", flush=True)
    print("| family | px | plain fp32 img/s | ganforge fp32 img/s | ganforge AMP img/s | fp32 ratio | AMP ratio |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for family in args.families:
        for resolution in args.resolutions:
            rates: dict[str, list[float]] = {"plain": [], "fp32": [], "amp": []}
            try:
                with tempfile.TemporaryDirectory() as tmp32, tempfile.TemporaryDirectory() as tmp16:
                    data = fake_data(resolution)
                    fp32 = make_config(family, resolution, args.batch, 10 ** 6, args.device, False)
                    amp = make_config(family, resolution, args.batch, 10 ** 6, args.device, True)
                    start = fp32.train.steps - 1  # the last stage of any schedule (progressive growing: full size)
                    loops = {"plain": plain_step(fp32, data, start), "fp32": ganforge_step(fp32, data, tmp32, start),
                             "amp": ganforge_step(amp, data, tmp16, start)}
                    for round_ in range(args.rounds):
                        order = list(loops) if round_ % 2 == 0 else list(loops)[::-1]
                        for key in order:
                            rates[key].append(images_per_second(loops[key], args.steps, args.batch, device))
            except Exception as error:  # report and go on to the next size (e.g. out of memory)
                print(f"| {family} | {resolution} | failed: {type(error).__name__}: {str(error).splitlines()[0][:100]} |||||",
                      flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            ratio = {k: statistics.median(o / b for o, b in zip(rates[k], rates["plain"])) for k in ("fp32", "amp")}
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(f"| {family} | {resolution} | {med['plain']:.0f} | {med['fp32']:.0f} | {med['amp']:.0f} | "
                  f"{ratio['fp32']:.2f}x | **{ratio['amp']:.2f}x** |", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
