"""Training images/s on a GPU: ganforge's trainer (fp32 and AMP) against a plain PyTorch loop, per family and size.

The plain loop is what a user writes from a paper repo or the PyTorch tutorials, over the *same* family object and
the *same* losses (`family.loss(phase, batch)`: the family's phases and repeat counts, its learning rates, its
penalties at the family's default settings, e.g. StyleGAN's lazy R1), so both sides run the same maths: a DataLoader
over an in-memory float TensorDataset on the host (a generous baseline: no per-item decoding), the batch copied to
the GPU every step, `torch.optim.Adam` with its default (foreach) implementation, NCHW tensors, `loss.item()` every
optimiser step for the loss curve (the tutorial's habit), fp32 (and, in its own column, the same loop under bf16
autocast). ganforge's trainer runs with the family's preset and --channels-last (EMA included),
data resident on the GPU as uint8, fused Adam, one host sync per log interval, and optionally AMP (bf16 where the GPU
has it). All loops of a size are interleaved in short rounds, alternating which runs first; each measurement runs
for about `--seconds` (at least 2 steps) after warm-up steps; the table gives medians of images/s and the medians of
the per-round ratios. `--deadline` (seconds) skips what would start after it; `--markdown FILE` writes the tables.

    python benchmarks/gpu_throughput.py [--families dcgan sngan stylegan biggan progan] [--resolutions 64 128 256]
        [--batch 64] [--seconds 1.0] [--rounds 2] [--device cuda] [--deadline 420] [--markdown FILE] [--extras]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
import warnings
from typing import Any, Callable

import torch

from ganforge.api import resolve_config
from ganforge.config import RunConfig
from ganforge.data import ImageSet
from ganforge.families import DataInfo, create
from train_throughput import ganforge_step, sync  # this folder: the same trainer step and device sync

CLASSES = 10
GANFORGE = {"train.channels_last": True}  # ganforge's runs: --channels-last (the DCGAN preset has it already)


def make_config(family: str, resolution: int, batch: int, steps: int, device: str, amp: bool,
                extra: dict[str, Any] | None = None) -> RunConfig:
    return resolve_config(overrides={
        "model.name": family, "data.resolution": resolution, "train.batch_size": batch, "train.steps": steps,
        "train.device": device, "train.amp": amp, "train.log_every": steps, "train.sample_every": 10 ** 9,
        "train.checkpoint_every": 10 ** 9, **(extra or {}),
    })


def fake_data(resolution: int, n: int = 1024) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, resolution, resolution), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % CLASSES
    return ImageSet(images, labels=labels, classes=[str(i) for i in range(CLASSES)], name="random")


def plain_step(config: RunConfig, data: ImageSet, start: int, amp: bool = False) -> Callable[[], None]:
    """One step of a hand-written loop over the same family and losses (fp32, or bf16 autocast with `amp`)."""
    device = torch.device(config.train.device)
    torch.manual_seed(0)
    family = create(config, DataInfo(3, config.data.resolution, CLASSES)).to(device)
    phases = family.phases()
    optimizers = {p.name: torch.optim.Adam(getattr(family, p.module).parameters(), lr=p.lr, betas=p.betas)
                  for p in phases}
    dataset = torch.utils.data.TensorDataset(data.as_float(), data.labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.train.batch_size, shuffle=True, drop_last=True)
    family.on_step(start)
    dtype = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type) if amp and dtype == torch.float16 else None

    def batches():
        while True:
            for image, label in loader:
                yield {"image": image.to(device), "label": label.to(device)}

    it = batches()
    history: list[float] = []

    def step():
        for phase in phases:
            for _ in range(phase.repeat):
                with torch.autocast(device.type, dtype=dtype, enabled=amp):
                    loss, _ = family.loss(phase.name, next(it))
                optimizers[phase.name].zero_grad()
                (loss if scaler is None else scaler.scale(loss)).backward()
                if scaler is None:
                    optimizers[phase.name].step()
                else:
                    scaler.step(optimizers[phase.name])
                    scaler.update()
                family.after_step(phase.name)
                history.append(loss.item())

    return step


def images_per_second(step: Callable[[], None], seconds: float, batch: int, device: torch.device,
                      warmup: int = 2) -> float:
    """Images/s over about `seconds` (at least 2 steps) after `warmup` steps (cuDNN autotuning, allocator)."""
    for _ in range(warmup):
        step()
    sync(device)
    begin = time.perf_counter()
    step()
    sync(device)
    estimate = time.perf_counter() - begin
    steps = max(2, min(200, round(seconds / max(estimate, 1e-6))))
    sync(device)
    begin = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - begin)


def count_syncs(step: Callable[[], None], device: torch.device) -> tuple[int, list[str]]:
    """Host-device synchronisations in one call of `step` (CUDA's sync debug mode), with where the first happen."""
    if device.type != "cuda":
        return -1, []
    step()
    sync(device)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    sync(device)
    places = []
    for w in caught:
        places.append(f"{w.filename.split('/')[-1]}:{w.lineno}")
    return len(caught), sorted(set(places))[:4]


class Report:
    """Prints markdown rows as they come and keeps the whole table in a file (rewritten after every row)."""

    def __init__(self, path: str | None):
        self.path, self.lines = path, []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)
        if self.path:
            with open(self.path, "w") as f:
                f.write("\n".join(self.lines) + "\n")


def measure_cell(family: str, resolution: int, args, device: torch.device) -> dict[str, list[float]]:
    keys = ["plain", "plain_amp", "fp32", "amp"]
    rates: dict[str, list[float]] = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp32, tempfile.TemporaryDirectory() as tmp16:
        data = fake_data(resolution)
        plain = make_config(family, resolution, args.batch, 10 ** 6, args.device, False)
        fp32 = make_config(family, resolution, args.batch, 10 ** 6, args.device, False, GANFORGE)
        amp = make_config(family, resolution, args.batch, 10 ** 6, args.device, True, GANFORGE)
        start = fp32.train.steps - 1  # the last stage of any schedule (progressive growing: full size)
        loops = {"plain": plain_step(plain, data, start), "plain_amp": plain_step(plain, data, start, amp=True),
                 "fp32": ganforge_step(fp32, data, tmp32, start), "amp": ganforge_step(amp, data, tmp16, start)}
        for round_ in range(args.rounds):  # later rounds: the estimating step is the warm-up
            for key in (keys if round_ % 2 == 0 else keys[::-1]):
                rates[key].append(images_per_second(loops[key], args.seconds, args.batch, device,
                                                    warmup=2 if round_ == 0 else 0))
        if args.syncs:
            try:
                rates["syncs"], rates["sync_places"] = count_syncs(loops["amp"], device)
            except Exception as error:  # the count is a diagnostic: never lose the row for it
                print(f"sync count failed: {type(error).__name__}: {error}", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["dcgan", "sngan", "stylegan", "biggan", "progan"])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which nothing starts")
    parser.add_argument("--markdown", default=None, help="also write the tables to this file")
    parser.add_argument("--no-syncs", dest="syncs", action="store_false", help="skip counting host syncs")
    parser.add_argument("--extras", action="store_true", help="then ganforge AMP variants (old StyleGAN maths, NCHW)")
    parser.add_argument("--compile", action="store_true",
                        help="extras: also ganforge AMP with torch.compile of G and D (compiling takes minutes)")
    args = parser.parse_args()
    began = time.perf_counter()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    report = Report(args.markdown)
    report(f"device {args.device} ({name}), torch {torch.__version__}, batch {args.batch}, about {args.seconds:g} s "
           f"x {args.rounds} rounds per loop and size")
    report()
    report("| family | px | plain fp32 img/s | plain AMP img/s | ganforge fp32 img/s | ganforge AMP img/s | "
           "fp32 vs plain fp32 | AMP vs plain fp32 | AMP vs plain AMP | host syncs per ganforge step |")
    report("|---|---|---|---|---|---|---|---|---|---|")
    skipped = []
    for resolution in args.resolutions:  # every family at a size before the next, larger size
        for family in args.families:
            if time.perf_counter() - began > args.deadline:
                skipped.append(f"{family} {resolution}")
                continue
            try:
                rates = measure_cell(family, resolution, args, device)
            except Exception as error:  # report and go on to the next size (e.g. out of memory)
                report(f"| {family} | {resolution} | failed: {type(error).__name__}: "
                       f"{str(error).splitlines()[0][:100]} |||||||||")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            med = {k: statistics.median(rates[k]) for k in ("plain", "plain_amp", "fp32", "amp")}

            def ratio(ours: str, base: str) -> float:
                return statistics.median(o / b for o, b in zip(rates[ours], rates[base]))

            syncs = rates.get("syncs", -1)
            where = f" ({', '.join(rates.get('sync_places', []))})" if syncs and syncs > 0 else ""
            report(f"| {family} | {resolution} | {med['plain']:.0f} | {med['plain_amp']:.0f} | {med['fp32']:.0f} | "
                   f"{med['amp']:.0f} | {ratio('fp32', 'plain'):.2f}x | **{ratio('amp', 'plain'):.2f}x** | "
                   f"{ratio('amp', 'plain_amp'):.2f}x | {syncs if syncs >= 0 else '-'}{where} |")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if skipped:
        report(f"\nnot measured (deadline of {args.deadline:g} s reached): {', '.join(skipped)}")
    if args.extras:
        extras(args, device, report, began)
    report(f"\ntotal {time.perf_counter() - began:.0f} s")


EXTRAS = [  # (family, px, what, config overrides): ganforge AMP with one speed-up turned back
    ("stylegan", 64, "R1 every step, grouped modulated conv (the previous default)",
     {"model.options": {"r1_every": 1, "modconv": "grouped"}}),
    ("stylegan", 64, "R1 every step, activation-modulated conv", {"model.options": {"r1_every": 1}}),
    ("stylegan", 64, "NCHW (channels_last off)", {"train.channels_last": False}),
    ("sngan", 64, "NCHW (channels_last off)", {"train.channels_last": False}),
    ("sngan", 64, "joint critic pass on (issue 19's default; off since issue 20)",
     {"model.options": {"joint_critic": "on"}}),
    ("stylegan", 256, "R1 every step, grouped modulated conv (the previous default)",
     {"model.options": {"r1_every": 1, "modconv": "grouped"}}),
]


COMPILED = [(family, px, "torch.compile of G and D (`--compile`; compiled in the warm-up steps)",
             {"train.compile": True}) for family, px in [("dcgan", 64), ("sngan", 64), ("stylegan", 64), ("biggan", 64)]]


def extras(args, device: torch.device, report: Report, began: float) -> None:
    report("\n| family | px | ganforge AMP variant | img/s | the default AMP img/s | default / variant |")
    report("|---|---|---|---|---|---|")
    for family, resolution, what, extra in EXTRAS + (COMPILED if args.compile else []):
        if resolution not in args.resolutions or family not in args.families:
            continue
        if time.perf_counter() - began > args.deadline:
            report(f"| {family} | {resolution} | {what} | not measured (deadline) |||")
            continue
        try:
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                data = fake_data(resolution)
                default = make_config(family, resolution, args.batch, 10 ** 6, args.device, True, GANFORGE)
                variant = make_config(family, resolution, args.batch, 10 ** 6, args.device, True, GANFORGE | extra)
                start = default.train.steps - 1
                loops = [ganforge_step(default, data, a, start), ganforge_step(variant, data, b, start)]
                rates: list[list[float]] = [[], []]
                for round_ in range(args.rounds):
                    for i in ((0, 1) if round_ % 2 == 0 else (1, 0)):
                        rates[i].append(images_per_second(loops[i], args.seconds, args.batch, device))
        except Exception as error:
            report(f"| {family} | {resolution} | {what} | failed: {type(error).__name__}: "
                   f"{str(error).splitlines()[0][:100]} |||")
            continue
        ratio = statistics.median(d / v for d, v in zip(*rates))
        report(f"| {family} | {resolution} | {what} | {statistics.median(rates[1]):.0f} | "
               f"{statistics.median(rates[0]):.0f} | {ratio:.2f}x |")
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
