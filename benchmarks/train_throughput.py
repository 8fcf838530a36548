"""Training images/s: ganforge's trainer against the plain PyTorch DCGAN tutorial loop, same nets, same batch.

The baseline is the canonical loop of the PyTorch DCGAN tutorial (BCE on D(real) and D(G(z).detach()), then
D(G(z)) for G), reading batches from a DataLoader over an in-memory TensorDataset (a generous baseline: no
per-item decoding). Both run the same ganforge DCGAN networks (batch norm in G and D, latent 100, width 64, RGB),
interleaved in short rounds (alternating which runs first) so that machine noise hits both alike; the ratio
reported is the median of the per-round ratios, with its quartiles, and the img/s columns are medians.
The work columns count each loop's floating-point operations per step (FlopCounterMode) and the rate each
achieves, against a float32 matrix product's rate measured in the same run.

    python benchmarks/train_throughput.py [--resolutions 32 64] [--steps 10] [--rounds 12] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from ganforge.api import resolve_config
from ganforge.config import RunConfig
from ganforge.data import ImageSet
from ganforge.families import DataInfo, create
from ganforge.training.trainer import Trainer


def make_config(resolution: int, steps: int, device: str, amp: bool) -> RunConfig:
    """ganforge's DCGAN preset (channels-last among others) at the tutorial's sizes."""
    return resolve_config(overrides={
        "data.resolution": resolution, "model.latent_dim": 100, "model.width": 64, "train.batch_size": 64,
        "train.steps": steps, "train.device": device, "train.amp": amp, "train.ema": 0.999,
        "train.log_every": steps, "train.sample_every": 10 ** 9, "train.checkpoint_every": 10 ** 9,
    })


def fake_data(resolution: int, n: int = 2048) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (n, 3, resolution, resolution), dtype=torch.uint8, generator=g), name="random")


def tutorial_step(config: RunConfig, data: ImageSet) -> Callable[[], None]:
    """One iteration of the PyTorch DCGAN tutorial's training loop."""
    device = torch.device(config.train.device)
    torch.manual_seed(0)
    family = create(config, DataInfo(3, config.data.resolution))
    net_g, net_d = family.generator.to(device), family.discriminator.to(device)
    criterion = nn.BCEWithLogitsLoss()  # = Sigmoid in D + BCELoss, numerically safer
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    dataset = torch.utils.data.TensorDataset(data.as_float())
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, drop_last=True)
    nz = config.model.latent_dim

    def batches():
        while True:
            yield from loader

    it = batches()

    def step():
        (real,) = next(it)
        real = real.to(device)
        b = real.size(0)
        net_d.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        err_real = criterion(net_d(real).view(-1), label)
        err_real.backward()
        noise = torch.randn(b, nz, 1, 1, device=device)
        fake = net_g(noise)
        label.fill_(0.0)
        err_fake = criterion(net_d(fake.detach()).view(-1), label)
        err_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        label.fill_(1.0)
        err_g = criterion(net_d(fake).view(-1), label)
        err_g.backward()
        opt_g.step()

    return step


def ganforge_step(config: RunConfig, data: ImageSet, tmp: str, start: int = 0) -> Callable[[], None]:
    """One call of ganforge's Trainer.train_step (EMA update included), from step `start` on."""
    trainer = Trainer(config, tmp, quiet=True, data=data)
    trainer.step = start

    def step():
        trainer.train_step()
        trainer.step += 1
        if trainer.step % config.train.log_every == 0:
            float(trainer._finite)  # the loop's one host sync per log interval

    return step


def images_per_second(step: Callable[[], None], steps: int, device: torch.device) -> float:
    for _ in range(2):  # warm-up
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * 64 / (time.perf_counter() - start)


def flops_per_step(step: Callable[[], None]) -> float:
    """Floating-point operations of one step as PyTorch's FlopCounterMode counts them (convolutions and
    matrix products, forward and backward, only the gradients actually computed)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large float32 matrix product on `device`: the practical ceiling of the convolutions."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    device = torch.device(args.device)
    peak = matmul_peak(device)
    print(f"float32 matrix-product peak: {peak / 1e9:.0f} GFLOP/s")
    print("| resolution | tutorial img/s | ganforge img/s | ratio (quartiles) | GFLOP/step tutorial / ganforge | "
          "work ratio | GFLOP/s tutorial / ganforge (share of peak) |")
    print("|---|---|---|---|---|---|---|")
    for resolution in args.resolutions:
        config = make_config(resolution, args.steps, args.device, args.amp)
        data = fake_data(resolution)
        base, ours = [], []
        with tempfile.TemporaryDirectory() as tmp:
            tutorial, trainer = tutorial_step(config, data), ganforge_step(config, data, tmp)
            work = flops_per_step(tutorial), flops_per_step(trainer)
            for round_ in range(args.rounds):  # alternate which goes first, so slow drifts hit both alike
                pair = [(base, tutorial), (ours, trainer)][::1 if round_ % 2 == 0 else -1]
                for rates, step in pair:
                    rates.append(images_per_second(step, args.steps, device))
        ratios = sorted(o / b for o, b in zip(ours, base))
        low, mid, high = (ratios[round(q * (len(ratios) - 1))] for q in (0.25, 0.5, 0.75))
        flops = [w * statistics.median(r) / 64 for w, r in zip(work, (base, ours))]
        print(f"| {resolution} | {statistics.median(base):.1f} | {statistics.median(ours):.1f} | **{mid:.2f}x** "
              f"({low:.2f}-{high:.2f}) | {work[0] / 1e9:.2f} / {work[1] / 1e9:.2f} | {work[0] / work[1]:.2f}x "
              f"| {flops[0] / 1e9:.0f} ({flops[0] / peak:.0%}) / {flops[1] / 1e9:.0f} ({flops[1] / peak:.0%}) |",
              flush=True)


if __name__ == "__main__":
    main()
