"""Training images/s: ganforge's trainer against the plain PyTorch DCGAN tutorial loop, same nets, same batch.

The baseline is the canonical loop of the PyTorch DCGAN tutorial (BCE on D(real) and D(G(z).detach()), then
D(G(z)) for G), reading batches from a DataLoader over an in-memory TensorDataset (a generous baseline: no
per-item decoding). Both run the same ganforge DCGAN networks (batch norm in G and D, latent 100, width 64, RGB),
interleaved in rounds so that machine noise hits both alike; the best round of each is reported.

    python benchmarks/train_throughput.py [--resolutions 32 64] [--steps 20] [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn as nn

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


def tutorial_loop(config: RunConfig, data: ImageSet, steps: int) -> float:
    """The PyTorch DCGAN tutorial's training loop; returns images/s."""
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

    for _ in range(2):  # warm-up
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * 64 / (time.perf_counter() - start)


def ganforge_loop(config: RunConfig, data: ImageSet, steps: int, tmp: str) -> float:
    """ganforge's Trainer.train_step (EMA update included); returns images/s."""
    trainer = Trainer(config, tmp, quiet=True, data=data)
    for _ in range(2):
        trainer.train_step()
        trainer.step += 1
    sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
        trainer.step += 1
    float(trainer._finite)  # the loop's one host sync per log interval
    sync(trainer.device)
    return steps * 64 / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    print("| resolution | tutorial img/s | ganforge img/s | ratio |")
    print("|---|---|---|---|")
    for resolution in args.resolutions:
        config = make_config(resolution, args.steps, args.device, args.amp)
        data = fake_data(resolution)
        base, ours = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                base.append(tutorial_loop(config, data, args.steps))
                ours.append(ganforge_loop(config, data, args.steps, tmp))
        print(f"| {resolution} | {max(base):.1f} | {max(ours):.1f} | {max(ours) / max(base):.2f}x |", flush=True)


if __name__ == "__main__":
    main()
