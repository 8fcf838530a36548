"""Super-resolution demo: short CPU training of SRResNet (x2, x4), SRGAN and ESRGAN (x4) on scikit-image photos,
scored on held-out images (scikit-image 'chelsea', scikit-learn's two photos, 100 CIFAR-10 test images) with
Y-channel PSNR / SSIM next to bicubic, and a side-by-side figure.

    OMP_NUM_THREADS=2 python benchmarks/superres_demo.py --out runs/sr-demo --steps 400

Writes runs/sr-demo/scores.json, a markdown table on stdout, and docs/figures/sr_x4_comparison.png.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ganforge
from ganforge.data.degrade import bicubic_downscale, bicubic_upscale, quantize
from ganforge.data.sr import SKIMAGE_PHOTOS, skimage_photos
from ganforge.metrics.superres import evaluate_sr, mod_crop
from ganforge.tiling import tiled
from ganforge.upscale import load_upscaler

ROOT = Path(__file__).resolve().parents[1]
CIFAR_TAR = ROOT.parent / "shared" / "data" / "cifar10-test-jpg.tar"
HELD_OUT_PHOTO = "chelsea"


def save(image: torch.Tensor, path: Path) -> None:
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)


def training_folder(folder: Path) -> Path:
    """scikit-image's RGB photos except the held-out one, as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(*skimage_photos(3)):
        if name != HELD_OUT_PHOTO:
            save(image, folder / f"{name}.png")
    return folder


def held_out() -> dict[str, list[torch.Tensor]]:
    from sklearn.datasets import load_sample_images

    images, names = skimage_photos(3)
    photos = [images[names.index(HELD_OUT_PHOTO)]]
    photos += [torch.from_numpy(np.array(a)).permute(2, 0, 1).contiguous() for a in load_sample_images().images]
    sets = {"photos (chelsea, china, flower)": photos}
    if CIFAR_TAR.exists():
        cifar = []
        with tarfile.open(CIFAR_TAR) as tar:
            for member in sorted(m.name for m in tar.getmembers() if m.name.endswith((".jpg", ".png"))):
                if int(Path(member).stem) < 10:  # the first 10 of each class
                    data = tar.extractfile(member).read()
                    cifar.append(torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB")))
                                 .permute(2, 0, 1).contiguous())
        sets["CIFAR-10 test (100 images, 32 px)"] = cifar
    return sets


def train(out: Path, name: str, model: str, scale: int, resolution: int, steps: int, data: Path, **options):
    run = out / name
    if (run / "checkpoints" / "last.safetensors").exists():
        return run, 0.0
    started = time.perf_counter()
    ganforge.train(quiet=True, **{
        "model.name": model, "data.source": str(data), "data.resolution": resolution, "data.flip": True,
        "model.width": 32, "train.batch_size": 16, "train.steps": steps, "train.lr_g": 2e-4, "train.lr_d": 2e-4,
        "train.log_every": 50, "train.sample_every": steps, "train.checkpoint_every": steps, "train.seed": 0,
        "out": str(out), "name": name,
        **{f"model.options.{k}": v for k, v in {"scale": scale, "blocks": 4, "residual": True, **options}.items()}})
    return run, time.perf_counter() - started


def figure(runs: dict[str, Path], path: Path, scale: int = 4, box=(60, 170, 96)) -> None:
    """LR (nearest), bicubic, each model and the ground truth on a crop of the held-out photo."""
    images, names = skimage_photos(3)
    hr = mod_crop(images[names.index(HELD_OUT_PHOTO)], scale).float().div(255)[None]
    top, left, size = box
    hr = hr[..., top:top + size, left:left + size]
    lr = quantize(bicubic_downscale(hr, scale))
    panels = {"LR (nearest)": torch.nn.functional.interpolate(lr, scale_factor=scale, mode="nearest"),
              "bicubic": bicubic_upscale(lr, scale).clamp(0, 1)}
    for label, run in runs.items():
        network, _, _ = load_upscaler(run)
        panels[label] = tiled(network, lr * 2 - 1, tile=0, overlap=0, scale=scale).add(1).div(2).clamp(0, 1)
    panels["ground truth"] = hr
    from PIL import ImageDraw

    zoom = 2
    tile = size * zoom
    canvas = Image.new("RGB", (len(panels) * (tile + 4), tile + 18), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, image) in enumerate(panels.items()):
        array = (image[0].permute(1, 2, 0) * 255).round().byte().numpy()
        canvas.paste(Image.fromarray(array).resize((tile, tile), Image.NEAREST), (i * (tile + 4), 18))
        draw.text((i * (tile + 4) + 2, 3), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sr-demo"))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "sr_x4_comparison.png")
    args = parser.parse_args()
    data = training_folder(args.out / "train-hr")
    steps = args.steps
    plan = [  # name, model, scale, crop, steps, options
        ("srresnet-x2", "srresnet", 2, 32, steps, {}),
        ("srresnet-x4", "srresnet", 4, 64, steps, {}),
        # GAN fine-tuning from the PSNR model; no VGG weights offline, so pixel + adversarial only (see docs)
        ("srgan-x4", "srgan", 4, 64, steps // 4, {"pretrained": str(args.out / "srresnet-x4"), "perceptual": "none",
                                                   "pixel_weight": 1.0}),
        ("esrgan-x4", "esrgan", 4, 64, steps // 2, {"growth": 16, "pretrain_steps": steps // 4, "perceptual": "none",
                                               "pixel_weight": 1.0}),
    ]
    tests = held_out()
    results = {}
    for name, model, scale, crop, n, options in plan:
        run, seconds = train(args.out, name, model, scale, crop, n, data, **options)
        network, _, _ = load_upscaler(run)
        results[name] = {"train_seconds": round(seconds, 1), "steps": n}
        for label, images in tests.items():
            scores = evaluate_sr(lambda lr: tiled(network, lr, tile=128, overlap=16, scale=scale), images, scale)
            scores.pop("images")
            results[name][label] = scores
        print(f"{name}: trained {n} steps in {seconds:.0f} s", flush=True)
    (args.out / "scores.json").write_text(json.dumps(results, indent=1))
    print("\n| model | scale | held-out set | n | Y-PSNR model | Y-PSNR bicubic | Y-SSIM model | Y-SSIM bicubic |")
    print("|---|---|---|---|---|---|---|---|")
    for name, entry in results.items():
        for label in tests:
            s = entry[label]
            print(f"| {name} | x{s['scale']} | {label} | {s['n']} | {s['psnr']:.2f} | {s['bicubic_psnr']:.2f} | "
                  f"{s['ssim']:.4f} | {s['bicubic_ssim']:.4f} |")
    figure({"SRResNet": args.out / "srresnet-x4", "SRGAN": args.out / "srgan-x4", "ESRGAN": args.out / "esrgan-x4"},
           args.figure)
    print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
