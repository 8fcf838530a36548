"""Sample quality per CPU-minute: ganforge's default demo preset against the plain DCGAN tutorial loop.

Both train on the bundled digits for the same wall-clock budget, one after the other, on the same machine.
The tutorial loop is the PyTorch DCGAN tutorial's (batch 128, Adam 2e-4 / 0.5, BCE, no EMA) on the same
ganforge DCGAN networks at the same resolution; ganforge runs `ganforge train` with its defaults. Scores: FID and
KID against all 1,797 digits with ganforge's own 'digits' extractor (never comparable to InceptionV3 FIDs),
plus the share of samples per class from the digits classifier.

    python benchmarks/demo_quality.py [--seconds 240] [--out docs/figures/demo_quality.png]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

import ganforge
from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.families import DataInfo, create
from ganforge.metrics import evaluate_images
from ganforge import media


def tutorial(seconds: float, resolution: int, seed: int = 0) -> tuple[nn.Module, int]:
    """The DCGAN tutorial's loop for `seconds`; returns the generator and the steps done."""
    torch.manual_seed(seed)
    config = apply_overrides(RunConfig(), {"data.resolution": resolution, "model.latent_dim": 100, "model.width": 64})
    family = create(config, DataInfo(1, resolution))
    net_g, net_d = family.generator, family.discriminator
    criterion = nn.BCEWithLogitsLoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = torch.utils.data.TensorDataset(load_images("digits", resolution).as_float())
    loader = torch.utils.data.DataLoader(data, batch_size=128, shuffle=True, drop_last=True)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for (real,) in loader:
            b = real.size(0)
            net_d.zero_grad()
            err_real = criterion(net_d(real), torch.ones(b))
            err_real.backward()
            fake = net_g(torch.randn(b, 100, 1, 1))
            err_fake = criterion(net_d(fake.detach()), torch.zeros(b))
            err_fake.backward()
            opt_d.step()
            net_g.zero_grad()
            criterion(net_d(fake), torch.ones(b)).backward()
            opt_g.step()
            steps += 1
            if time.perf_counter() - start >= seconds:
                break
    return net_g.eval(), steps


def time_budget(seconds: float):
    """A trainer callback that stops training (with a checkpoint) once `seconds` have passed."""
    start = time.perf_counter()

    def check(trainer) -> None:
        if time.perf_counter() - start >= seconds:
            trainer.stop_reason = "time budget"

    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--n", type=int, default=2000, help="samples scored per model")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/demo_quality.png"))
    parser.add_argument("--grid", type=Path, default=None,
                        help="also write 64 samples of the ganforge run alone here (docs/figures/demo_digits.png is "
                             "the full default demo's, not this budgeted run's)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the ganforge run in this folder")
    args = parser.parse_args()
    real = load_images("digits", None).as_float()
    resolution = real.shape[-1]

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        where = {"out": str(args.keep.parent), "name": args.keep.name} if args.keep else {"out": tmp, "name": "demo"}
        run = ganforge.train(quiet=True, callbacks=[time_budget(args.seconds)], train={"steps": 10 ** 6}, **where)
        ours_seconds = time.perf_counter() - start
        model = ganforge.load(run)
        ours = model.sample(args.n, seed=1).tensor
        ours_steps = model.step

    start = time.perf_counter()
    net_g, base_steps = tutorial(args.seconds, resolution)
    base_seconds = time.perf_counter() - start
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        base = torch.cat([net_g(torch.randn(500, 100, 1, 1, generator=g)) for _ in range(args.n // 500)])

    rows = []
    for name, images, steps, seconds in (("tutorial DCGAN loop", base, base_steps, base_seconds),
                                         ("ganforge default preset", ours, ours_steps, ours_seconds)):
        scores = evaluate_images(images, real, metrics="fid,kid,mode_collapse", extractor="digits")
        report = scores["mode_collapse"]
        rows.append((name, steps, seconds, scores["fid"], scores["kid"], report))
    print(f"digits at {resolution} px, {args.seconds:.0f} s budget each, {torch.get_num_threads()} threads")
    print("| loop | steps | wall s | FID (digits extractor) | KID | classes covered | largest class share |")
    print("|---|---|---|---|---|---|---|")
    for name, steps, seconds, fid, kid, report in rows:
        print(f"| {name} | {steps} | {seconds:.0f} | {fid:.2f} | {kid:.4f} | {report.get('classes_covered')} | "
              f"{report.get('largest_class_share', float('nan')):.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    media.save(media.Images(torch.cat([base[:32], ours[:32]]).clamp(-1, 1)), args.out, nrow=16)
    if args.grid:
        media.save(media.Images(ours[:64]), args.grid, nrow=8)
    print(f"grid (top two rows: tutorial, bottom two: ganforge): {args.out}")


if __name__ == "__main__":
    main()
