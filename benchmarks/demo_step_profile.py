"""Where the default demo's time goes: one training step and everything the trainer does around it.

Builds the Trainer of `ganforge train` (or of `--preset NAME`, plus any `--set key=value`), warms it up, then
times in CPU seconds (`time.process_time`, this process alone, so other jobs on the machine do not count):
the training step itself (D and G phases), the EMA update, the EMA's batch-norm statistics refresh, a sample
grid, a checkpoint, a log flush (losses, weight norms, divergence guard, CSV and TensorBoard) and an
evaluation; then scales each by how often the run's config does it, giving each part's share of the whole run.

    OMP_NUM_THREADS=1 python benchmarks/demo_step_profile.py [--preset paper] [--steps 200] [--set train.ema=0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ganforge.api import resolve_config
from ganforge.training.trainer import Trainer


def cpu_seconds(action, repeats: int) -> float:
    """Mean CPU seconds of `action()` over `repeats` calls."""
    start = time.process_time()
    for _ in range(repeats):
        action()
    return (time.process_time() - start) / repeats


def parse_sets(items: list[str]) -> dict:
    import yaml

    return {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in items)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--steps", type=int, default=200, help="training steps timed")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="key=value config override")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        config = resolve_config(overrides={"model.preset": args.preset, "train.device": "cpu", "out": tmp,
                                           "name": "profile", **parse_sets(args.sets)})
        train = config.train
        trainer = Trainer(config, Path(tmp) / "profile", quiet=True)
        trainer.save_checkpoint()
        for _ in range(20):  # warm-up (allocator, oneDNN kernels)
            trainer.train_step()
            trainer.step += 1
        step_total = cpu_seconds(lambda: (trainer.train_step(), setattr(trainer, "step", trainer.step + 1)),
                                 args.steps)
        parts = {"training step (D + G, EMA update included)": (step_total, train.steps)}
        if trainer.ema is not None:
            ema = cpu_seconds(lambda: trainer.ema.update(trainer.family.generator, trainer.step), args.steps)
            parts["  of which EMA update"] = (ema, train.steps)

            def refresh():
                trainer._norms_fresh_at = None
                trainer.sampling_generator()

            events = len(set(range(train.sample_every, train.steps + 1, train.sample_every))
                         | set(range(train.checkpoint_every, train.steps + 1, train.checkpoint_every))
                         | ({train.steps}))
            parts["EMA batch-norm refresh"] = (cpu_seconds(refresh, 5), events)
        # the rest with the refresh already done this step (it is timed above)
        trainer.sampling_generator()
        parts["sample grid (PNG + TensorBoard)"] = (cpu_seconds(trainer.save_samples, 5), train.steps // train.sample_every)
        parts["checkpoint (safetensors, last + step_N)"] = (cpu_seconds(trainer.checkpoint_if_finite, 5),
                                                            train.steps // train.checkpoint_every)

        def flush():
            trainer._count = 1
            trainer._sums = {"d_loss": torch.tensor(0.5), "g_loss": torch.tensor(1.0)}
            trainer.flush_logs(1000.0)

        parts["log flush (norms, guard, CSV, TensorBoard)"] = (cpu_seconds(flush, 20), train.steps // train.log_every)
        if train.eval_every:
            parts["evaluation"] = (cpu_seconds(trainer.evaluate, 1), train.steps // train.eval_every)
        trainer.logger.close()
        trainer.release()
    total = sum(seconds * count for name, (seconds, count) in parts.items() if not name.startswith("  "))
    print(f"preset {args.preset}: {train.steps} steps, batch {train.batch_size}, width {config.model.width}, "
          f"{torch.get_num_threads()} thread(s); CPU seconds")
    print("| part | CPU ms each | times per run | CPU s per run | share |")
    print("|---|---:|---:|---:|---:|")
    for name, (seconds, count) in parts.items():
        print(f"| {name} | {seconds * 1e3:.2f} | {count} | {seconds * count:.1f} | {seconds * count / total:.1%} |")
    print(f"| total | | | {total:.1f} | |")


if __name__ == "__main__":
    main()
