"""FID speed: ganforge's path vs torchmetrics' own FrechetInceptionDistance, same extractor, same 10k+10k images.

    python benchmarks/fid_speed.py [--n 10000] [--extractor cifar10] [--repeats 3] [--write]

Real: the CIFAR-10 test split (10,000 JPEG images, 32 px); fake: the same images plus gaussian noise (sigma 0.1).
End to end = from image tensors in [-1, 1] to the FID value, feature extraction included. Timings are medians
over --repeats, ganforge and torchmetrics interleaved. --write replaces the '## FID speed' section of
docs/benchmarks.md (other sections are kept).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from ganforge.metrics import evaluate_images, load_extractor
from ganforge.metrics import stats as stats_module
from ganforge.metrics.images import load_images

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADING = "## FID speed"


class Features(nn.Module):
    """The extractor's features as torchmetrics' custom feature module (it needs `num_features`)."""

    def __init__(self, extractor):
        super().__init__()
        self.extractor = extractor
        self.num_features = extractor.num_features

    def forward(self, images):
        return self.extractor(images)[0]


def torchmetrics_fid(extractor, real, fake, batch_size) -> float:
    metric = FrechetInceptionDistance(feature=Features(extractor), normalize=False)
    for start in range(0, len(real), batch_size):
        metric.update(real[start:start + batch_size], real=True)
    for start in range(0, len(fake), batch_size):
        metric.update(fake[start:start + batch_size], real=False)
    return metric.compute().item()


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--extractor", default="cifar10")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    real = load_images(args.data / "cifar10-test-jpg.tar", limit=args.n).images
    g = torch.Generator().manual_seed(0)
    fake = (real + 0.1 * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    other_fake = (real + 0.1 * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    extractor = load_extractor(args.extractor)
    times = {"torchmetrics": [], "cold": [], "repeat": [], "new_fakes": []}
    values = {}
    load_before = os.getloadavg()[0]
    extractor.extract(real[:args.batch_size])  # warm-up, so neither path pays first-call costs
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["GANFORGE_CACHE"] = cache
            stats_module._memory.clear()
            run = lambda f: evaluate_images(f, real, "fid", extractor, batch_size=args.batch_size)["fid"]  # noqa
            steps = [("torchmetrics", lambda: torchmetrics_fid(extractor, real, fake, args.batch_size)),
                     ("cold", lambda: run(fake))]
            steps = steps if repeat % 2 == 0 else steps[::-1]  # alternate who goes first
            steps += [("repeat", lambda: run(fake)), ("new_fakes", lambda: run(other_fake))]
            for key, step in steps:
                seconds, values[key] = timed(step)
                times[key].append(seconds)
        print({k: round(v[-1], 3) for k, v in times.items()}, flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    load = (f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
            "(other jobs inflate seconds)")
    agreement = abs(values["cold"] - values["torchmetrics"]) / values["torchmetrics"]
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
               f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}")
    command = "python " + " ".join(sys.argv)
    rows = [
        ("torchmetrics FrechetInceptionDistance(feature=extractor), update in batches + compute",
         median["torchmetrics"], 1.0),
        ("ganforge evaluate_images, cold cache (features for both sets, stats written)", median["cold"],
         median["torchmetrics"] / median["cold"]),
        ("ganforge, repeat of the same call (both sets' statistics cached)", median["repeat"],
         median["torchmetrics"] / median["repeat"]),
        ("ganforge, new fakes against cached real statistics", median["new_fakes"],
         median["torchmetrics"] / median["new_fakes"]),
    ]
    lines = [HEADING, "",
             f"End-to-end FID for {len(real):,} real vs {len(fake):,} fake 32 px RGB images (CIFAR-10 test split; "
             f"fakes = real + gaussian noise sigma 0.1), extractor `{extractor.name}` "
             f"(sha256 `{extractor.weights_hash}`) in both paths, median of {args.repeats} interleaved runs "
             f"(alternating which path goes first).",
             "", f"- machine: {machine}; {load}", f"- command: `{command}`",
             f"- FID: ganforge {values['cold']:.4f}, torchmetrics {values['torchmetrics']:.4f} "
             f"(relative difference {agreement:.1e})",
             "- per-run speed of the cold ganforge path vs torchmetrics: "
             + ", ".join(f"{t / c:.2f}x" for t, c in zip(times["torchmetrics"], times["cold"])), "",
             "| path | seconds | speed vs torchmetrics |", "|---|---|---|"]
    lines += [f"| {label} | {seconds:.3f} | {ratio:.2f}x |" for label, seconds, ratio in rows]
    lines += ["", "ganforge extracts features once per image set under `torch.inference_mode`, fits the Gaussian in "
              "float64 and takes the Fréchet distance by symmetric eigendecompositions; image sets are keyed by a "
              "sha256 of their content, so a repeat only hashes the tensors. Real statistics persist on disk "
              "(`$GANFORGE_CACHE/stats`), fake statistics in a small in-memory cache."]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(section)


def write_section(section: str) -> None:
    """Replace (or append) only the '## FID speed' section; re-read the file right before writing."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if HEADING in text:
        head, rest = text.split(HEADING, 1)
        tail = rest.split("\n## ", 1)
        text = head + section + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
