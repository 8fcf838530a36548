"""Image-to-image demos on CPU: watermark removal and denoising with pix2pix, photo <-> painting with CycleGAN.

Pairs are made from CIFAR-10 test JPEGs (../shared/data/cifar10-test-jpg.tar) with `ganforge.data.pairs`; training
and held-out images are disjoint. Writes docs/figures/i2i_*.png and prints a Markdown table of held-out PSNR/SSIM
(translated vs the clean image, and the degraded input vs the clean image) and the CycleGAN cycle error.

    python benchmarks/image_to_image_demo.py [--tasks watermark,noise,cyclegan] [--watermark-steps 6000]
        [--steps 1500] [--cycle-steps 400]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

import ganforge
from ganforge.data.pairs import make_pairs
from ganforge.translate import paired_scores, translate_files

ROOT = Path(__file__).resolve().parents[1]
TAR = ROOT.parent / "shared" / "data" / "cifar10-test-jpg.tar"
FIGURES = ROOT / "docs" / "figures"


def split_cifar(work: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    """Extract the CIFAR-10 JPEGs; the first n_train per-class-interleaved images train, the next n_test are held out."""
    with tarfile.open(TAR) as archive:
        archive.extractall(work / "cifar", filter="data")
    files = sorted((work / "cifar").rglob("*.jpg"))
    files = sorted(files, key=lambda p: (int(p.stem), p.parent.name))  # interleave the classes
    train, test = work / "train", work / "test"
    for folder, chosen in ((train, files[:n_train]), (test, files[n_train:n_train + n_test])):
        folder.mkdir()
        for path in chosen:
            shutil.copy(path, folder / f"{path.parent.name}_{path.stem}.jpg")
    return train, test


def figure(paths: list[list[Path]], out: Path) -> None:
    """One row per image: the columns of `paths` side by side."""
    from ganforge.data import read_image
    from ganforge.media.images import from_picture

    tiles = [from_picture(read_image(p, "RGB"))[0] for row in zip(*paths) for p in row]
    grid = make_grid(torch.stack(tiles), nrow=len(paths), padding=1, normalize=True, value_range=(-1, 1))
    grid = torch.nn.functional.interpolate(grid[None], scale_factor=3, mode="nearest")[0]
    save_image(grid, out)


# pix2pix settings per paired task (all 32 px, residual output, PatchGAN depth 2, the adversarial term on).
# Watermark removal: the marks touch few pixels and a small net is unsure where they are; L1's optimum there is
# its median, the untouched input, so the L1 run stays the identity; MSE (the conditional mean) removes what
# the net is partly sure of. Wider net, larger batch, lr 1e-3 decayed over the second half.
SETTINGS = {
    "watermark": ({"width": 32, "options": {"pixel_loss": "mse", "pixel_weight": 1e4, "dropout": 0.0,
                                            "decay_start": 0.5}},
                  {"batch_size": 16, "lr_g": 1e-3}),
    "noise": ({"width": 16, "options": {}}, {"batch_size": 8}),
}


def paired_demo(kind: str, train: Path, test: Path, work: Path, steps: int, n_show: int) -> dict:
    make_pairs(kind, train, work / f"{kind}-train", seed=0)
    make_pairs(kind, test, work / f"{kind}-test", seed=1)
    network, settings = SETTINGS[kind]
    options = {"load_size": 32, "d_layers": 2, "residual": True, **network["options"]}
    started = time.time()
    run = ganforge.train(quiet=True, out=str(work / "runs"), name=kind,
                         data={"source": str(work / f"{kind}-train"), "resolution": 32, "flip": True},
                         model={"name": "pix2pix", "width": network["width"], "options": options},
                         train={"steps": steps, "log_every": 50, "sample_every": steps, "checkpoint_every": steps,
                                **settings})
    seconds = time.time() - started
    model = ganforge.load(run)
    inputs = sorted((work / f"{kind}-test" / "A").glob("*.png"))
    outputs = translate_files(model, inputs, work / f"{kind}-out")
    scores = paired_scores(outputs, work / f"{kind}-out", work / f"{kind}-test" / "B", inputs=inputs)
    clean = [work / f"{kind}-test" / "B" / p.name for p in inputs]
    figure([inputs[:n_show], outputs[:n_show], clean[:n_show]], FIGURES / f"i2i_{kind}.png")
    return {"task": kind, "steps": steps, "seconds": seconds, **scores}


def cycle_demo(train: Path, test: Path, work: Path, steps: int, n_show: int) -> dict:
    """Photos (first half of the training images) and paintings of the *other* half: truly unpaired domains."""
    make_pairs("painting", train, work / "paint-pairs", seed=0)
    photos = sorted((work / "paint-pairs" / "A").glob("*.png"))
    half = len(photos) // 2
    for domain, chosen in (("trainA", photos[:half]), ("trainB", photos[half:])):
        (work / "unpaired" / domain).mkdir(parents=True)
        for path in chosen:
            source = path if domain == "trainA" else work / "paint-pairs" / "B" / path.name
            shutil.copy(source, work / "unpaired" / domain / path.name)
    started = time.time()
    run = ganforge.train(quiet=True, out=str(work / "runs"), name="cyclegan",
                         data={"source": str(work / "unpaired"), "resolution": 32, "flip": True},
                         model={"name": "cyclegan", "width": 16,
                                "options": {"load_size": 32, "d_layers": 2, "n_blocks": 3}},
                         train={"steps": steps, "batch_size": 4, "log_every": 20, "sample_every": steps,
                                "checkpoint_every": steps})
    seconds = time.time() - started
    with (run / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    cycle = [float(r["cycle_a"]) + float(r["cycle_b"]) for r in rows if r.get("cycle_a")]
    model = ganforge.load(run)
    make_pairs("painting", test, work / "paint-test", seed=1)
    inputs = sorted((work / "paint-test" / "A").glob("*.png"))
    outputs = translate_files(model, inputs, work / "cycle-out")
    back = translate_files(model, outputs, work / "cycle-back", direction="BtoA")
    scores = paired_scores(outputs, work / "cycle-out", work / "paint-test" / "B", inputs=inputs)
    figure([inputs[:n_show], outputs[:n_show], back[:n_show],
            [work / "paint-test" / "B" / p.name for p in inputs[:n_show]]], FIGURES / "i2i_cyclegan.png")
    return {"task": "photo->painting (CycleGAN, unpaired)", "steps": steps, "seconds": seconds,
            "cycle_first": cycle[0], "cycle_last": cycle[-1], "cycle_min": min(cycle), "log_every": 20, **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="pix2pix steps for denoising")
    parser.add_argument("--watermark-steps", type=int, default=6000, help="pix2pix steps for watermark removal")
    parser.add_argument("--cycle-steps", type=int, default=400)
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--test", type=int, default=200, help="held-out images")
    parser.add_argument("--show", type=int, default=8)
    parser.add_argument("--tasks", default="watermark,noise,cyclegan")
    args = parser.parse_args()
    torch.manual_seed(0)
    FIGURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train, test = split_cifar(work, args.train, args.test)
        results = []
        for task in args.tasks.split(","):
            if task == "cyclegan":
                results.append(cycle_demo(train, test, work, args.cycle_steps, args.show))
            else:
                steps = args.watermark_steps if task == "watermark" else args.steps
                results.append(paired_demo(task, train, test, work, steps, args.show))
            print(results[-1], flush=True)
    print("| task | steps | train s | held-out PSNR input -> output (dB) | SSIM input -> output "
          "| images improved (median gain) | cycle L1 first -> last |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        cycle = f"{r['cycle_first']:.3f} -> {r['cycle_last']:.3f}" if "cycle_first" in r else ""
        improved = f"{r['improved']:.0%} ({r['median_gain']:+.2f} dB)" if "cycle_first" not in r else ""
        print(f"| {r['task']} | {r['steps']} | {r['seconds']:.0f} | {r['input']['psnr']:.2f} -> {r['output']['psnr']:.2f} "
              f"| {r['input']['ssim']:.3f} -> {r['output']['ssim']:.3f} | {improved} | {cycle} |")


if __name__ == "__main__":
    main()
