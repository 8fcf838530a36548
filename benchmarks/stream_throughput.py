"""Streaming vs in-memory data: training throughput, peak memory, and a 256 px smoke run (docs/benchmarks.md).

    python benchmarks/stream_throughput.py folder --n 50000 --size 160 --out /tmp/faces50k
    python benchmarks/stream_throughput.py throughput --folder /tmp/faces2k --resolutions 64 128 --pairs 3
    python benchmarks/stream_throughput.py loader --folder /tmp/faces2k --resolutions 64 128
    python benchmarks/stream_throughput.py memory --folder /tmp/faces50k --resolution 128 --budget 1024
    python benchmarks/stream_throughput.py smoke --model stylegan --resolution 256 --steps 3

Timing on a shared machine: throughput pairs are interleaved (in-memory, streamed, streamed, in-memory, ...) in
one process so both modes see the same load; each reports wall-clock images/s and CPU seconds per image, the
latter counting the DataLoader workers' CPU (read from /proc) as well as the training process's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def make_folder(out: Path, n: int, size: int, seed: int = 0) -> None:
    """`n` smooth random JPEG pictures of `size` px (colour blobs: compressible like photos, unlike noise)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    start = time.process_time()
    for i in range(n):
        folder = out / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        small.resize((size, size), Image.BICUBIC).save(folder / f"{i:06d}.jpg", quality=90)
    print(json.dumps({"folder": str(out), "images": n, "size": size, "cpu_s": round(time.process_time() - start, 1),
                      "mb_on_disk": round(sum(p.stat().st_size for p in out.rglob("*.jpg")) / 2 ** 20, 1)}))


def _worker_cpu(batches) -> float:
    """CPU seconds used so far by the live DataLoader workers of a StreamBatches (0 for in-memory batches)."""
    iterator = getattr(batches, "_iterator", None)
    total = 0.0
    for worker in getattr(iterator, "_workers", []):
        try:
            fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
        except (OSError, IndexError):
            pass
    return total


def _trainer(folder: str, resolution: int, stream: bool, workers: int, out: str):
    from ganforge.api import resolve_config
    from ganforge.data.stream import open_images
    from ganforge.training.trainer import Trainer

    overrides = {"data.source": folder, "data.resolution": resolution, "data.stream": stream, "data.workers": workers,
                 "train.device": "cpu", "train.ema": 0.0, "out": out, "name": f"{resolution}-{stream}"}
    config = resolve_config(overrides=overrides)  # memory-aware defaults: batch 64 at 64 px, 32 at 128 px
    start = time.process_time()
    data = open_images(config.data)
    load_cpu = time.process_time() - start
    return Trainer(config, Path(out) / config.name, quiet=True, data=data), load_cpu


def throughput(folder: str, resolutions: list[int], pairs: int, steps: int, workers: int) -> None:
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        for resolution in resolutions:
            trainers = {}
            for stream in (False, True):
                trainers[stream], load_cpu = _trainer(folder, resolution, stream, workers, out)
                print(json.dumps({"resolution": resolution, "stream": stream, "setup_cpu_s": round(load_cpu, 2),
                                  "images": len(trainers[stream].data)}), flush=True)
                trainers[stream].train_step()  # warm-up (and the workers' start)
            results = {False: [], True: []}
            for pair in range(pairs):
                for stream in ((False, True) if pair % 2 == 0 else (True, False)):
                    trainer = trainers[stream]
                    wall, cpu, workers_cpu = time.perf_counter(), time.process_time(), _worker_cpu(trainer.batches)
                    for _ in range(steps):
                        trainer.train_step()
                    wall = time.perf_counter() - wall
                    cpu = time.process_time() - cpu + _worker_cpu(trainer.batches) - workers_cpu
                    images = steps * trainer.config.train.batch_size
                    results[stream].append((images / wall, cpu / images))
                    print(json.dumps({"resolution": resolution, "pair": pair, "stream": stream,
                                      "img_per_s_wall": round(images / wall, 1),
                                      "cpu_ms_per_img": round(1000 * cpu / images, 2)}), flush=True)
            summary = {}
            for stream, rows in results.items():
                summary["stream" if stream else "memory"] = {
                    "img_per_s_wall": round(sum(r[0] for r in rows) / len(rows), 1),
                    "cpu_ms_per_img": round(1000 * sum(r[1] for r in rows) / len(rows), 2)}
            ratios = [m[0] / s[0] for m, s in zip(results[False], results[True])]
            summary["memory_over_stream_wall_per_pair"] = [round(r, 2) for r in ratios]
            print(json.dumps({"resolution": resolution, "batch_size": trainers[True].config.train.batch_size,
                              "width": trainers[True].config.model.width, **summary}), flush=True)
            del trainers


def loader(folder: str, resolutions: list[int], batches: int, batch_size: int, pairs: int) -> None:
    """Data alone: images/s that each source delivers (no training), interleaved in pairs; CPU includes workers."""
    import torch

    from ganforge.config import DataConfig
    from ganforge.data import load_images
    from ganforge.data.stream import open_source

    torch.set_num_threads(1)
    for resolution in resolutions:
        start = time.process_time()
        memory = load_images(folder, resolution)
        load_cpu = time.process_time() - start
        sources = {"memory": memory} | {f"stream-{w}w": open_source(DataConfig(source=folder, resolution=resolution,
                                                                               workers=w)) for w in (0, 2)}
        rows = {name: [] for name in sources}
        for pair in range(pairs):
            for name in (list(sources) if pair % 2 == 0 else list(sources)[::-1]):
                stream = sources[name].batches(batch_size, torch.device("cpu"), seed=pair)
                stream.next()  # the workers' start is not timed
                wall, cpu, workers_cpu = time.perf_counter(), time.process_time(), _worker_cpu(stream)
                for _ in range(batches):
                    stream.next()
                wall = time.perf_counter() - wall
                cpu = time.process_time() - cpu + _worker_cpu(stream) - workers_cpu
                rows[name].append((batches * batch_size / wall, 1000 * cpu / (batches * batch_size)))
                del stream
        print(json.dumps({"resolution": resolution, "images": len(memory), "memory_load_cpu_s": round(load_cpu, 1),
                          **{name: {"img_per_s_wall": round(sum(r[0] for r in v) / len(v)),
                                    "cpu_ms_per_img": round(sum(r[1] for r in v) / len(v), 3)}
                             for name, v in rows.items()}}), flush=True)


MEMORY_WORKER = r"""
import json, resource, sys, tempfile, time
folder, resolution, stream, workers, steps, budget, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", \
    int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
import torch
torch.set_num_threads(1)
from ganforge.api import resolve_config
with tempfile.TemporaryDirectory() as out:
    from ganforge.data.stream import open_images, StreamSet
    from ganforge.training.trainer import Trainer
    overrides = {"data.source": folder, "data.resolution": resolution, "data.stream": stream, "data.workers": workers,
                 "data.memory_budget_mb": budget, "train.device": "cpu", "train.ema": 0.0, "model.width": 16,
                 "out": out, "name": "m"}
    if limit != "none":
        overrides["data.limit"] = int(limit)
    config = resolve_config(overrides=overrides)
    def status(pid, key):
        line = next(l for l in open(f"/proc/{pid}/status") if l.startswith(key))
        return int(line.split()[1]) / 1024
    imports_mb = status("self", "VmRSS:")
    start = time.process_time()
    data = open_images(config.data)
    open_cpu = time.process_time() - start
    trainer = Trainer(config, out + "/m", quiet=True, data=data)
    cpu = time.process_time()
    for _ in range(steps):
        trainer.train_step()
    step_cpu = (time.process_time() - cpu) / steps
    streamed = isinstance(data, StreamSet)
    decoded_mb = data.decoded_mb if streamed else data.images.numel() / 2 ** 20
    workers_peak = [status(w.pid, "VmHWM:") for w in getattr(getattr(trainer.batches, "_iterator", None),
                                                             "_workers", [])]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": len(data), "resolution": resolution, "streamed": streamed, "workers": workers,
                      "batch_size": config.train.batch_size, "decoded_set_mb": round(decoded_mb, 1),
                      "budget_mb": budget, "rss_after_imports_mb": round(imports_mb), "peak_rss_main_mb": round(own),
                      "peak_rss_workers_mb": [round(w) for w in workers_peak],
                      "open_cpu_s": round(open_cpu, 1), "step_cpu_s": round(step_cpu, 2), "steps": steps}))
"""


def memory(folder: str, resolution: int, budget: float, steps: int, workers: int, limits: list[str]) -> None:
    """Peak memory of a few training steps, each setting in a fresh process: streamed (the whole folder, over the
    budget) and in memory (subsets under it), so the in-memory growth with the data size is visible. Peak resident
    sets: the training process's ru_maxrss and each live worker's VmHWM (which counts pages shared with the training
    process after fork, torch's libraries included)."""
    for limit, stream in [("none", "0")] + [(limit, "0") for limit in limits]:
        bud = budget if limit == "none" else 1e9  # the subsets stay in memory whatever their size
        result = subprocess.run([sys.executable, "-c", MEMORY_WORKER, folder, str(resolution), stream,
                                 str(workers), str(steps), str(bud), limit], capture_output=True, text=True,
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
        print(result.stdout.strip() or result.stderr[-2000:], flush=True)


def smoke(model: str, resolution: int, steps: int, batch: int | None, width: int | None, extra: list[str]) -> None:
    """A few training steps of `model` at `resolution` on random pictures: shapes, finiteness, CPU time."""
    import torch
    import yaml

    from ganforge.api import resolve_config
    from ganforge.training.trainer import Trainer

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        make_folder(Path(out) / "pics", 64, resolution)
        overrides = {"model.name": model, "data.source": str(Path(out) / "pics"), "data.resolution": resolution,
                     "train.device": "cpu", "train.steps": steps, "train.sample_every": steps,
                     "train.checkpoint_every": steps, "train.log_every": 1, "out": out, "name": "run"}
        overrides |= {"train.batch_size": batch} if batch else {}
        overrides |= {"model.width": width} if width else {}
        overrides |= {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in extra)}
        config = resolve_config(overrides=overrides)
        trainer = Trainer(config, Path(out) / "run", quiet=True)
        start = time.process_time()
        trainer.fit()
        cpu = time.process_time() - start
        rows = (Path(out) / "run" / "metrics.csv").read_text().splitlines()
        last = dict(zip(rows[0].split(","), rows[-1].split(",")))
        grid = sorted((Path(out) / "run" / "samples").glob("*.png"))[-1]
        from PIL import Image

        with Image.open(grid) as picture:
            size = picture.size
        params = sum(p.numel() for p in trainer.family.parameters())
        print(json.dumps({"model": model, "resolution": resolution, "batch_size": config.train.batch_size,
                          "width": config.model.width, "params_m": round(params / 1e6, 1), "steps": steps,
                          "cpu_s_per_step": round(cpu / steps, 1), "sample_grid_px": size, "set": extra,
                          "last_losses": {k: v for k, v in last.items() if "loss" in k}}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("folder")
    p.add_argument("--n", type=int, default=50000)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--out", required=True)
    p = commands.add_parser("throughput")
    p.add_argument("--folder", required=True)
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p = commands.add_parser("loader")
    p.add_argument("--folder", required=True)
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--pairs", type=int, default=2)
    p = commands.add_parser("memory")
    p.add_argument("--folder", required=True)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--budget", type=float, default=1024)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limits", nargs="*", default=["2500", "10000"], help="in-memory subsets to compare")
    p = commands.add_parser("smoke")
    p.add_argument("--model", default="stylegan")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], help="more config overrides KEY=VALUE")
    args = parser.parse_args()
    if args.command == "folder":
        make_folder(Path(args.out), args.n, args.size)
    elif args.command == "throughput":
        throughput(args.folder, args.resolutions, args.pairs, args.steps, args.workers)
    elif args.command == "loader":
        loader(args.folder, args.resolutions, args.batches, args.batch_size, args.pairs)
    elif args.command == "memory":
        memory(args.folder, args.resolution, args.budget, args.steps, args.workers, args.limits)
    else:
        smoke(args.model, args.resolution, args.steps, args.batch, args.width, args.set)


if __name__ == "__main__":
    main()
