"""Watermark removal with the README's recipe (`ganforge train --model restore`), measured on held-out images.

Tasks:
- cifar: CIFAR-10 test JPEGs (../shared/data/cifar10-test-jpg.tar, 32x32): the first --train images (classes
  interleaved) are watermarked with seed 1 and train; the next --test images, watermarked with seed 2, are held out.
- photos: the bundled photos of scikit-image (`skimage.data`) and scikit-learn (`load_sample_images`), plus (for
  training only, unless --no-extra) the other photos found offline in installed packages (bundled_photos). Training:
  128 px crops every 64 px of the training photos, watermarked with seed 1; held out: non-overlapping 128 px crops
  of three other photos (chelsea, coffee, flower), watermarked with seed 2.

Each task trains a restore preset (--preset; the default one for CIFAR-10, `photos` for the photos; only what is
named in --set differs) on `make-pairs watermark` pairs (--copies marked versions of each training image: 1, or 4
for the photos with a recipe that trains on the pairs as made; the `photos` preset draws fresh marks on the clean
B images every batch, `marks=fresh`), then scores the held-out images with
the same code as `ganforge translate --targets` (PSNR/SSIM against the clean image, RGB, [0, 1], no border crop,
next to the watermarked input's; the share of images whose PSNR rose), plus the PSNR gain at every checkpoint and
a diagnosis of the last one (false alarms, marks found, the gain with a perfect mask, the worst crops).
CPU time is measured with resource.getrusage (this process; single-threaded under OMP_NUM_THREADS=1). Writes
docs/figures/restore_<task>.png (rows: watermarked | restored | predicted mask | clean) and prints a JSON line and
a Markdown row per task.

    OMP_NUM_THREADS=1 python benchmarks/restoration.py --task cifar
    OMP_NUM_THREADS=1 python benchmarks/restoration.py --task photos

`--run RUN` scores an existing run of the task instead of training one (the held-out pairs are made again, same
seed); `--set model.options.K=V` then changes inference-only options of the loaded model (e.g. ensemble, window).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ganforge
from ganforge.data.pairs import make_pairs
from ganforge.families import get as get_family
from ganforge.media import Images, save
from ganforge.media.images import from_picture
from ganforge.translate import paired_scores, read_image, translate_files

ROOT = Path(__file__).resolve().parents[1]
TAR = ROOT.parent / "shared" / "data" / "cifar10-test-jpg.tar"
FIGURES = ROOT / "docs" / "figures"
HELD_OUT_PHOTOS = ("chelsea", "coffee", "flower")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cifar_images(work: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    """The first n_train CIFAR-10 test JPEGs (classes interleaved) and the next n_test, as two folders."""
    with tarfile.open(TAR) as archive:
        archive.extractall(work / "cifar", filter="data")
    files = sorted((work / "cifar").rglob("*.jpg"), key=lambda p: (int(p.stem), p.parent.name))
    folders = work / "train-clean", work / "test-clean"
    for folder, chosen in zip(folders, (files[:n_train], files[n_train:n_train + n_test])):
        folder.mkdir()
        for path in chosen:
            shutil.copy(path, folder / f"{path.parent.name}_{path.stem}.jpg")
    return folders


GRADIO_PHOTOS = ("cheetah.jpg", "cheetah1.jpg", "lion.jpg", "groot.jpeg", "tower.jpg")


def bundled_photos(extra: bool = True) -> dict[str, np.ndarray]:
    """The photos shipped with scikit-image and scikit-learn, RGB uint8, longer side at most 640. With `extra`
    (training only; the held-out photos are the same either way): every other photo found offline in installed
    packages: scikit-image's motorcycle and grey photos (moon, coins, page, text, clock), matplotlib's
    grace_hopper.jpg, and gradio's media photos when gradio (the `ui` extra) is installed."""
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket",
                                                       "immunohistochemistry", "retina", "hubble_deep_field",
                                                       "camera", "brick", "grass", "gravel")}
    photos |= dict(zip(("china", "flower"), load_sample_images().images))
    if extra:
        import matplotlib.cbook

        photos |= {name: getattr(data, name)() for name in ("moon", "coins", "page", "text")}
        photos |= {"motorcycle": data.stereo_motorcycle()[0], "clock": data.clock()}
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            photos["grace_hopper"] = np.asarray(Image.open(handle).convert("RGB"))
        try:
            import importlib.util

            spec = importlib.util.find_spec("gradio")
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            folder = Path(spec.origin).parent / "media_assets" / "images"
            for file in GRADIO_PHOTOS:
                if (folder / file).is_file():
                    photos["gradio_" + Path(file).stem] = np.asarray(Image.open(folder / file).convert("RGB"))
    out = {}
    for name, array in photos.items():
        picture = Image.fromarray(array).convert("RGB")
        if max(picture.size) > 640:
            picture.thumbnail((640, 640), Image.LANCZOS)
        out[name] = np.asarray(picture)
    return out


def photo_crops(work: Path, size: int = 128, extra: bool = True) -> tuple[Path, Path]:
    """128 px crops: every 64 px of the training photos; non-overlapping ones of the held-out photos."""
    from PIL import Image

    folders = work / "train-clean", work / "test-clean"
    for folder in folders:
        folder.mkdir()
    for name, array in bundled_photos(extra).items():
        held = name in HELD_OUT_PHOTOS
        step = size if held else size // 2
        h, w = array.shape[:2]
        for top in range(0, h - size + 1, step):
            for left in range(0, w - size + 1, step):
                crop = array[top:top + size, left:left + size]
                Image.fromarray(crop).save(folders[held] / f"{name}_{top:03d}_{left:03d}.png")
    return folders


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of [-1, 1] images, RGB, [0, 1] range, as metrics.pixel scores them."""
    mse = ((x - y) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def stack(paths: list[Path]) -> torch.Tensor:
    return torch.cat([from_picture(read_image(p, "RGB")) for p in paths])


def load(path: Path, options: dict | None = None):
    """ganforge.load, then `options` (model.options keys) replacing the run's own (inference-only ones, such as
    ensemble and window: the network is the run's)."""
    model = ganforge.load(path)
    if options:
        model.set_options(options)
    return model


def gain_curve(run: Path, inputs: list[Path], clean: list[Path], options: dict | None = None
               ) -> dict[int, tuple[float, float]]:
    """Mean held-out PSNR gain (dB) and share of images improved at every kept checkpoint (8-bit outputs)."""
    x, y = stack(inputs), stack(clean)
    before = psnr(x, y)
    curve = {}
    for path in sorted((run / "checkpoints").glob("step_*.safetensors")) + [run / "checkpoints" / "last.safetensors"]:
        model = load(path, options)
        with torch.no_grad():
            out = torch.cat([model.family.translate(model.generator, x[i:i + 256]) for i in range(0, len(x), 256)])
        out = ((out + 1) * 127.5).round() / 127.5 - 1  # as a written 8-bit image would be
        gain = psnr(out, y) - before
        curve[int(model.step)] = (round(float(gain.mean()), 3), round(float((gain > 0).float().mean()), 3))
    return curve


def diagnose(model, inputs: list[Path], clean: list[Path], worst: int = 6) -> dict:
    """Where the held-out loss comes from: the share of unmarked pixels the mask changes (false alarms) and of
    marked pixels it finds, the gain of the output kept only on the truly marked pixels ("perfect_mask": the marks
    the mask missed stay unrepaired), of one pass's residual applied with the true mask (the repair alone), of the
    clean pixels wherever one pass's mask fires (a perfect repair of what is found), and the worst crops."""
    x, y = stack(inputs), stack(clean)
    with torch.no_grad():
        out, mask = model.family.restore(model.generator, x)
    out = ((out + 1) * 127.5).round() / 127.5 - 1
    truth = (x != y).any(1, keepdim=True)
    fired = mask > 0
    oracle = torch.where(truth, out, x)
    before = psnr(x, y)
    gain, oracle_gain = psnr(out, y) - before, psnr(oracle, y) - before
    order = gain.argsort()[:worst].tolist()
    with torch.no_grad():  # one pass: the repair given the true mask, and a perfect repair of the pixels found
        residual, _, single = model.family._run(model.generator, x)
    true_mask = ((x + truth * residual).clamp(-1, 1) + 1).mul(127.5).round() / 127.5 - 1
    true_mask_gain = psnr(true_mask, y) - before
    repair_gain = psnr(torch.where(single > 0, y, x), y) - before
    return {"false_alarm_share": round(float((fired & ~truth).sum() / (~truth).sum()), 4),
            "true_mask_gain": round(float(true_mask_gain.mean()), 3),
            "perfect_repair_of_found_gain": round(float(repair_gain.mean()), 3),
            "marks_found_share": round(float((fired & truth).sum() / truth.sum().clamp_min(1)), 4),
            "perfect_mask_gain": round(float(oracle_gain.mean()), 3),
            "perfect_mask_improved": round(float((oracle_gain > 0).float().mean()), 3),
            "worst": [(inputs[i].stem, round(float(gain[i]), 2)) for i in order]}


def figure(model, inputs: list[Path], clean: list[Path], out: Path, zoom: int, worst: int = 0) -> None:
    """Rows of held-out images: watermarked | restored | predicted mask | clean; with `worst`, the that many images
    whose PSNR gain is lowest instead of the first ones."""
    x, y = stack(inputs), stack(clean)
    if worst:
        with torch.no_grad():
            out_8bit = ((model.family.translate(model.generator, x) + 1) * 127.5).round() / 127.5 - 1
        order = (psnr(out_8bit, y) - psnr(x, y)).argsort()[:worst]
        x, y = x[order], y[order]
    with torch.no_grad():
        restored, mask = model.family.restore(model.generator, x)
    tiles = torch.stack([x, restored, (mask * 2 - 1).expand_as(x), y], 1).flatten(0, 1)
    save(Images(tiles), out, zoom=zoom, nrow=4)


def parse_sets(items: list[str]) -> dict:
    tree: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        tree.setdefault(section, {})[name] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("cifar", "photos"), default="cifar")
    parser.add_argument("--train", type=int, default=5000, help="cifar: training images")
    parser.add_argument("--test", type=int, default=1000, help="cifar: held-out images")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="for the held-out gain curve")
    parser.add_argument("--preset", help="restore preset (default: default for cifar, photos for photos)")
    parser.add_argument("--copies", type=int, help="marked copies of each training image (default 1; 4 for photos "
                        "when the preset trains on the pairs as made rather than fresh marks)")
    parser.add_argument("--no-extra", dest="extra", action="store_false",
                        help="photos: train on the 10 photos of scikit-image/scikit-learn only (the first sessions' "
                        "set), not also the other photos found offline")
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. train.steps=2000")
    parser.add_argument("--show", type=int, default=6)
    parser.add_argument("--work", help="keep the pairs and the run here (default: a temporary folder)")
    parser.add_argument("--run", help="score this existing run (trained on the task's pairs) instead of training")
    args = parser.parse_args()
    torch.manual_seed(0)
    FIGURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        started, cpu = time.time(), cpu_seconds()
        train, test = (cifar_images(work, args.train, args.test) if args.task == "cifar"
                       else photo_crops(work, extra=args.extra))
        overrides = parse_sets(args.set)
        preset = args.preset or ("default" if args.task == "cifar" else "photos")
        recipe = get_family("restore").recipe(preset)
        fresh = ({**recipe.get("model", {}).get("options", {}), **overrides.get("model", {}).get("options", {})}
                 .get("marks") == "fresh")
        copies = args.copies or (1 if args.task == "cifar" or fresh else 4)
        if not args.run:
            make_pairs("watermark", train, work / "pairs-train", seed=1, copies=copies)
        make_pairs("watermark", test, work / "pairs-test", seed=2)
        pairs_cpu = cpu_seconds() - cpu
        train_section = {"log_every": 100, "sample_every": 10 ** 9, "checkpoint_every": args.checkpoint_every,
                         "keep_checkpoints": 100} | overrides.pop("train", {})
        cpu = cpu_seconds()
        options = {key.split(".", 1)[1]: value for key, value in overrides.get("model", {}).items()
                   if key.startswith("options.")} if args.run else None
        if args.run:  # scored as trained, with only the inference options of --set changed
            run, train_cpu = Path(args.run), 0.0
        else:
            run = ganforge.train(quiet=True, out=str(work / "runs"), name=f"restore-{args.task}",
                                 data={"source": str(work / "pairs-train")} | overrides.pop("data", {}),
                                 model={"name": "restore", "preset": preset} | overrides.pop("model", {}),
                                 train=train_section)
            train_cpu = cpu_seconds() - cpu
        model = load(run, options)
        inputs = sorted((work / "pairs-test" / "A").glob("*.png"))
        clean = [work / "pairs-test" / "B" / p.name for p in inputs]
        cpu = cpu_seconds()
        outputs = translate_files(model, inputs, work / "restored")
        scores = paired_scores(outputs, work / "restored", work / "pairs-test" / "B", inputs=inputs)
        translate_cpu = cpu_seconds() - cpu
        curve = {} if args.run else gain_curve(run, inputs, clean, options)  # a scored run's curve: its own results
        diagnosis = diagnose(model, inputs, clean)
        zoom = 3 if args.task == "cifar" else 1
        figure(model, inputs[:args.show], clean[:args.show], FIGURES / f"restore_{args.task}.png", zoom)
        figure(model, inputs, clean, FIGURES / f"restore_{args.task}_worst.png", zoom, args.show)
        config = model.config
        result = {"task": args.task, "n_train": len(list((work / "pairs-train" / "A").glob("*.png"))),
                  "scored_run": args.run,
                  "n_test": len(inputs), "preset": preset, "copies": copies, "resolution": config.data.resolution,
                  "steps": config.train.steps,
                  "batch_size": config.train.batch_size, "width": config.model.width, "options": config.model.options,
                  "cpu_s": {"pairs": round(pairs_cpu), "train": round(train_cpu), "translate": round(translate_cpu)},
                  "wall_s": round(time.time() - started), "curve": curve, "diagnosis": diagnosis,
                  **scores}
    print(json.dumps(result), flush=True)
    gain = result["output"]["psnr"] - result["input"]["psnr"]
    print("| task | train / held-out images | crop, batch, steps | train CPU min | held-out PSNR input -> output "
          "(gain) | SSIM input -> output | images improved (median gain) |")
    print(f"| {args.task} | {result['n_train']} / {result['n_test']} | {result['resolution']} px, "
          f"{result['batch_size']}, {result['steps']} | {train_cpu / 60:.1f} | {result['input']['psnr']:.2f} -> "
          f"{result['output']['psnr']:.2f} dB ({gain:+.2f}) | {result['input']['ssim']:.3f} -> "
          f"{result['output']['ssim']:.3f} | {result['improved']:.0%} ({result['median_gain']:+.2f} dB) |")


if __name__ == "__main__":
    main()
