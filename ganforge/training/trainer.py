"""The one training loop. It never names a family: phases, losses and generation come from the family."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ganforge import finetune, media
from ganforge.device import resolve_device
from ganforge.config import RunConfig, save_yaml, validate
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, Family, create
from ganforge.families import get as get_family
from ganforge.training import checkpoint as ckpt
from ganforge.training.distributed import Distributed, shard_batches
from ganforge.training.evaluation import PeriodicEvaluation
from ganforge.training.ema import EMA, refresh_norm_stats
from ganforge.training.guard import DivergenceGuard, all_finite, newest_good_checkpoint, weight_norms
from ganforge.training.lock import claim_run_folder
from ganforge.training.signals import stop_on_signals
from ganforge.training.logger import RunLogger, describe, progress_display

GRID_SIZE = 64


def data_info(config: RunConfig, data) -> DataInfo:
    """What the family learns of its data; a data set may add JSON-able `facts` (vocabulary, sample rate...)."""
    return DataInfo(channels=data.channels, resolution=config.data.resolution,
                    n_classes=len(data.classes) if data.labels is not None else 0,
                    facts=dict(getattr(data, "facts", None) or {}))


def make_optimizer(params, lr: float, betas: tuple[float, float], kind: str, device: torch.device):
    params = list(params)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if kind != "adam":
        raise GanforgeError(f"unknown optimizer '{kind}'")
    fused = device.type in ("cuda", "cpu", "mps")
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused)


def to_channels_last(module: nn.Module) -> None:
    """The NHWC layout for every 4-D parameter and buffer (Module.to(memory_format=...) refuses other ranks, e.g.
    a modulated convolution's 5-D weight); the tensors stay the same objects."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.ndim == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)


class Trainer:
    """Trains one family on one data set into a run folder, checkpointing so that any stop can be resumed."""

    def __init__(self, config: RunConfig, run_dir: Path, resume: bool = False, quiet: bool = False,
                 data=None, callbacks: list[Callable[["Trainer"], None]] | None = None):
        validate(config)
        self.config = config
        self.run_dir = Path(run_dir)
        self.quiet = quiet
        self.callbacks = callbacks or []
        train = config.train
        requested = resolve_device(train.device, "train.device")
        self.dist = Distributed.from_env(requested)
        self.device = self.dist.device(requested)
        if self.device.type == "cuda":  # fixed shapes every step: let cuDNN pick its fastest convolution kernels
            torch.backends.cudnn.benchmark = True
        if not self.dist.is_main:
            self.quiet = True
        torch.manual_seed(train.seed)
        self.data = data if data is not None else get_family(config.model.name).load_data(config)
        # resolved from the data (audio and text have none); saved so that load/resume rebuild the same
        if config.data.resolution is None and getattr(self.data, "resolution", None) is not None:
            config.data.resolution = int(self.data.resolution)
        self.family: Family = create(config, data_info(config, self.data))
        self.family.shard = (self.dist.rank, self.dist.world)
        if not resume and self.family.pretrained_generator():
            self._load_pretrained(self.family.pretrained_generator())
        if train.sync_batchnorm:
            self.family.generator = self.dist.sync_batchnorm(self.family.generator)
            self.family.discriminator = self.dist.sync_batchnorm(self.family.discriminator)
        self.family.to(self.device)
        if train.channels_last:
            to_channels_last(self.family)
        self._compiled = False
        if train.compile:
            self.family.generator.compile()
            self.family.discriminator.compile()
            self._compiled = True
        if self.family.conditional and self.data.labels is None:
            raise GanforgeError(f"model {config.model.name} needs class labels, but --data {config.data.source} has none "
                                "(use a folder with one sub-folder per class, or a labelled data set)")
        self.ema = EMA(self.family.generator, train.ema) if train.ema > 0 else None
        if train.init and not resume:  # fine-tuning: another run's weights, fresh optimisers, step 0
            train.init = str(finetune.source_checkpoint(train.init))  # the resolved config names the file
            finetune.initialise(self.family, self.ema and self.ema.module, config.model.name, Path(train.init))
        frozen_names, frozen = finetune.frozen_parameters(self.family.discriminator, train.freeze_d)
        if frozen_names and not self.quiet:
            print(f"FreezeD: discriminator layers {', '.join(frozen_names)} stay as they are", flush=True)
        self.phases = self.family.phases()
        self.optimizers = {
            p.name: make_optimizer((q for q in getattr(self.family, p.module).parameters() if id(q) not in frozen),
                                   p.lr, p.betas, p.optimizer, self.device)
            for p in self.phases
        }
        self.batches = self.data.batches(train.batch_size, self.device, train.seed, config.data.flip)
        if self.dist.active:
            self.batches = shard_batches(self.batches, self.dist.rank, self.dist.shard_size(train.batch_size))
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        grid_rng = torch.Generator().manual_seed(train.seed + 1)
        grid_labels = torch.arange(GRID_SIZE) % max(1, len(self.data.classes)) if self.family.conditional else None
        self.grid_inputs = {k: v.to(self.device) for k, v in
                            self.family.sample_inputs(GRID_SIZE, grid_rng, labels=grid_labels, data=self.data).items()}
        self.step = 0
        self.lr_scale = 1.0
        self.rollbacks = 0
        self._lr_factor = 1.0  # the family's schedule; lr = phase lr * lr_scale (rollbacks) * this
        self.best: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}  # latest scores, for callbacks (e.g. tuning's pruning)
        self._norms_fresh_at: int | None = None  # step at which the EMA's norm statistics were last recomputed
        self.stop_reason: str | None = None
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._drawn = 0  # batches drawn since the last log (for the speed)
        self._finite = torch.ones((), dtype=torch.bool, device=self.device)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.guard = DivergenceGuard(train.divergence)
        self.lock = claim_run_folder(self.run_dir) if self.dist.is_main else None  # only rank 0 writes
        try:
            if resume:
                self.restore(self.checkpoint_dir / "last.safetensors")
            self.logger = RunLogger(self.run_dir, resume_step=self.step if resume else None, enabled=self.dist.is_main)
        except BaseException:
            self.release()
            raise
        self.guard.check(weight_norms(self._networks()))  # the starting norms open the history

    def release(self) -> None:
        """Unlock the run folder for other processes (fit does this when it ends)."""
        if self.lock is not None:
            self.lock.release()

    def _networks(self) -> dict[str, nn.Module]:
        return {p.module: getattr(self.family, p.module) for p in self.phases}

    def _load_pretrained(self, source: str) -> None:
        """Initialise the generator from another run's (e.g. a PSNR-oriented model before GAN fine-tuning)."""
        from ganforge.api import generator_state

        ckpt.load_module(self.family.generator, generator_state(source), "pretrained generator", Path(source))

    # --- precision -----------------------------------------------------------------------------------------
    def _amp_dtype(self) -> torch.dtype | None:
        if not self.config.train.amp:
            return None
        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None  # autocast only where the device supports it well (fp16 on CPU fails or crawls)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # --- the loop ------------------------------------------------------------------------------------------
    def fit(self) -> Path:
        """Train until config.train.steps; returns the run folder. Ctrl-C or SIGTERM stop after a checkpoint."""
        try:
            return self._fit()
        finally:
            self.logger.close()
            self.release()

    def _fit(self) -> Path:
        if not self.quiet:  # also when piped: where the results go is the first thing to know
            print(f"run folder: {self.run_dir}" + (f" (resuming at step {self.step})" if self.step else ""), flush=True)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_yaml(self.config, self.run_dir / "config.yaml")
        # decided by rank 0 alone: another process could otherwise see rank 0's fresh file, skip the save and its
        # barrier, and the processes would then wait in different collectives
        if self.dist.broadcast_object(not (self.checkpoint_dir / "last.safetensors").exists()):
            self.save_checkpoint()
        total = self.config.train.steps
        with stop_on_signals(self), progress_display(self.quiet) as progress:
            task = progress.add_task("train", total=total, completed=self.step, info="")
            window_start, self._drawn, self._overhead = time.perf_counter(), 0, 0.0  # batches drawn
            while self.step < total and self.stop_reason is None:
                if self._compiled:
                    self._first_compiled_step()
                else:
                    self.train_step()
                self.step += 1
                progress.update(task, completed=self.step)
                if self.step % self.config.train.log_every == 0 or self.step == total:
                    if self.dist.any_true(self.stop_reason is not None, self.device):
                        self.stop_reason = self.stop_reason or "stopped by another process"
                    seconds = time.perf_counter() - window_start - self._overhead
                    rate = self._drawn * self.config.train.batch_size / max(seconds, 1e-9)
                    values = self.flush_logs(rate)
                    window_start, self._drawn, self._overhead = time.perf_counter(), 0, 0.0
                    if values is None:
                        continue  # rolled back to the last good checkpoint
                    progress.update(task, info=describe(values))
                    if not self.quiet and not progress.console.is_terminal:
                        progress.console.print(f"step {self.step}/{total} {describe(values)}")
                side_start = time.perf_counter()
                if self.step % self.config.train.sample_every == 0 or self.step == total:
                    self.save_samples()
                if self.step % self.config.train.checkpoint_every == 0 or self.step == total:
                    self.checkpoint_if_finite()
                every = self.config.train.eval_every
                if every and (self.step % every == 0 or self.step == total):
                    self.evaluate()
                for callback in self.callbacks:  # last, so they see this step's checkpoint and scores
                    callback(self)
                self._overhead += time.perf_counter() - side_start
            if self.stop_reason is not None:
                self.checkpoint_if_finite()
                print(f"{self.stop_reason}: stopped at step {self.step} with a checkpoint; "
                      f"continue with: ganforge train --resume {self.run_dir}", flush=True)
        return self.run_dir

    def train_step(self) -> None:
        self.family.on_step(self.step)
        factor = self.family.lr_factor(self.step)
        if factor != self._lr_factor:
            self._lr_factor = factor
            self._apply_lr()
        accum = self.config.train.grad_accum
        micro: list[dict] = []  # the latest accum micro-batches drawn; later phases reuse them
        modules = {p.module for p in self.phases}
        # read every step: a family's schedule may change the repeat counts (0 skips a phase, e.g. pretraining
        # stages); the first phase that runs draws a fresh batch per repeat, later ones reuse the latest
        running = [phase for phase in self.family.phases() if phase.repeat > 0]
        for index, phase in enumerate(running):
            frozen = set(phase.frozen) if phase.frozen is not None else modules - {phase.module}
            for module in modules:
                getattr(self.family, module).requires_grad_(module not in frozen)
            optimizer = self.optimizers[phase.name]
            for _ in range(phase.repeat):
                fresh = index == 0 or not micro
                micro = [] if fresh else micro
                optimizer.zero_grad(set_to_none=True)
                for part in range(accum):  # gradient accumulation: accum micro-batches per optimiser step
                    if fresh:
                        batch = self.batches.next()
                        self._drawn += 1
                        if self.config.train.channels_last:
                            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
                                     for k, v in batch.items()}
                        micro.append(batch)
                    with self.autocast():
                        loss, logs = self.family.loss(phase.name, micro[part])
                    loss = loss / accum  # the mean over accum micro-batches: one batch of accum * batch_size
                    (loss if self.scaler is None else self.scaler.scale(loss)).backward()
                    self._finite &= torch.isfinite(loss.detach())
                    for key, value in logs.items():
                        # a phase's logs are its mean over repeats and micro-batches
                        self._sums[key] = self._sums.get(key, 0.0) + value.float() / (accum * phase.repeat)
                self._average_gradients(optimizer)  # once per optimiser step, after every micro-batch
                if self.scaler is not None:
                    self.scaler.step(optimizer)
                    self.scaler.update()
                else:
                    optimizer.step()
                self.family.after_step(phase.name)
        self._count += 1
        if self.ema is not None:
            self.ema.update(self.family.generator, self.step - self.config.train.ema_start)

    def _first_compiled_step(self) -> None:
        """Run a step with compiled networks; if compilation fails, warn once and continue eagerly."""
        self._compiled = False
        snapshot = {k: v.clone() for k, v in self.family.state_dict().items()}
        try:
            self.train_step()
        except Exception as error:  # compiler or toolchain problems vary by platform
            for module in (self.family.generator, self.family.discriminator):
                module._compiled_call_impl = None
            self.family.load_state_dict(snapshot)
            print(f"warning: torch.compile failed ({type(error).__name__}: {str(error).splitlines()[0][:120]}); "
                  "training without compilation", flush=True)
            self._sums, self._count = {}, 0
            self.train_step()

    def _average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        if self.dist.active:
            self.dist.average_gradients(p for group in optimizer.param_groups for p in group["params"])

    def flush_logs(self, rate: float) -> dict[str, float] | None:
        """Write the averaged losses; on a NaN/inf or exploding loss or weight roll back instead and return None."""
        values = {k: float(v) / max(self._count, 1) for k, v in self._sums.items()}
        diverged = self.guard.check(values | weight_norms(self._networks()))
        if not self.dist.all_true(self._finite & (diverged is None)):
            self.rollback(diverged or "a loss became NaN/inf")
            return None
        values |= {"img_per_s": rate, "lr_scale": self.lr_scale}
        self.logger.scalars(self.step, values)
        self._sums, self._count = {}, 0
        return values

    def rollback(self, reason: str) -> None:
        """Return to the newest good checkpoint with half the learning rate; give up after max_rollbacks."""
        bad_step = self.step
        self.rollbacks += 1
        if self.rollbacks > self.config.train.max_rollbacks:
            raise GanforgeError(
                f"training diverged: {reason} near step {bad_step}, {self.rollbacks} times even after lowering the "
                f"learning rate; the last good checkpoint is kept in {self.checkpoint_dir}")
        rollbacks, lr_scale = self.rollbacks, self.lr_scale * 0.5
        path, tensors, meta, skipped = newest_good_checkpoint(self.checkpoint_dir, self.device)
        self.restore(path, (tensors, meta))
        self.rollbacks, self.lr_scale = rollbacks, lr_scale
        self._apply_lr()
        self._sums, self._count = {}, 0
        self._finite = torch.ones((), dtype=torch.bool, device=self.device)
        self.logger.rewind(self.step)
        self.save_checkpoint()  # the rollback count and learning-rate scale reach the disk now
        if not self.quiet:
            print("".join(f"skipped {why}\n" for why in skipped) + f"{reason} before step {bad_step}: rolled back to "
                  f"{path.name} (step {self.step}), learning rates x{self.lr_scale:g} "
                  f"(rollback {self.rollbacks}/{self.config.train.max_rollbacks})", flush=True)

    def _apply_lr(self) -> None:
        for phase in self.phases:
            for group in self.optimizers[phase.name].param_groups:
                group["lr"] = phase.lr * self.lr_scale * self._lr_factor

    def checkpoint_if_finite(self) -> None:
        """Save, unless a loss or a weight went NaN/inf or exploded since the last check: then roll back instead."""
        diverged = self.guard.check(weight_norms(self._networks()))
        finite = all_finite([self.family] + ([self.ema.module] if self.ema is not None else []))
        if self.dist.all_true(self._finite & finite & (diverged is None)):
            self.save_checkpoint()
        else:
            self.rollback(diverged or "a loss or weight became NaN/inf")

    # --- sampling ------------------------------------------------------------------------------------------
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples: the EMA copy with fresh norm statistics, else the live one."""
        if self.ema is None:
            return self.family.generator
        if self._norms_fresh_at == self.step:  # samples, checkpoint and eval of one step share one refresh
            return self.ema.module
        self._norms_fresh_at = self.step
        inputs_rng = torch.Generator().manual_seed(12345)
        size = self.config.train.batch_size

        def forward(_: int) -> None:
            inputs = self.family.sample_inputs(size, inputs_rng, labels=self._random_labels(size, inputs_rng),
                                               data=self.data)
            self.family.generate(self.ema.module, {k: v.to(self.device) for k, v in inputs.items()})

        refresh_norm_stats(self.ema.module, forward)
        return self.ema.module

    def _random_labels(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        if not self.family.conditional:
            return None
        return torch.randint(0, len(self.data.classes), (n,), generator=rng)

    @torch.no_grad()
    def save_samples(self) -> None:
        if not self.dist.is_main:
            return
        generator = self.sampling_generator()
        was_training = generator.training
        generator.eval()
        with self.autocast():
            output = self.family.generate(generator, self.grid_inputs)
        generator.train(was_training)
        samples = media.wrap(output, self.family.capabilities.modality, labels=self.grid_inputs.get("label"),
                             **self.family.sample_info())
        shown = media.save_preview(samples, self.run_dir / "samples" / f"step_{self.step:06d}")
        self.logger.samples(self.step, "samples", shown)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, batch_size: int = 250) -> torch.Tensor:
        """`n` images in [-1, 1] from the sampling generator (EMA when on), reproducible for `seed`."""
        generator = self.sampling_generator()
        generator.eval()
        rng = torch.Generator().manual_seed(seed)
        out = []
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            inputs = self.family.sample_inputs(size, rng, labels=self._random_labels(size, rng), data=self.data)
            with self.autocast():
                images = self.family.generate(generator, {k: v.to(self.device) for k, v in inputs.items()})
            out.append(images.float().clamp(-1, 1).cpu())
        if generator is self.family.generator:
            generator.train()
        return torch.cat(out)

    def evaluate(self) -> dict[str, float]:
        """Score samples against the training data (on the main process); keep the best checkpoint by the first
        metric."""
        if not self.dist.is_main:
            return {}
        if getattr(self, "_evaluation", None) is None:
            self._evaluation = PeriodicEvaluation(self.config.train, self.data, self.run_dir)
        scores, best = self._evaluation(self.step, lambda n: self.sample(n, seed=self.config.train.seed + 2), self.best)
        self.last_eval = {"step": self.step, **scores}
        self.logger.scalars(self.step, {f"eval/{k}": v for k, v in scores.items()}, table="eval")
        if best is not None:
            self.best = best
            if bool(self._finite):
                self.save_checkpoint("best")
        return scores

    # --- checkpoints ---------------------------------------------------------------------------------------
    def save_checkpoint(self, name: str = "last") -> Path:
        tensors, meta = ckpt.trainer_state(self)
        path = self.checkpoint_dir / f"{name}.safetensors"
        if self.dist.is_main:  # every process holds the same weights; one writes, the others wait for it
            ckpt.save(path, tensors, meta)  # a failed write (disk full...) is one line and keeps the previous file
            if name == "last":
                self._keep_periodic(tensors, meta)
        if name == "last":
            self.dist.barrier()
        return path

    def _keep_periodic(self, tensors: dict, meta: dict) -> None:
        keep = self.config.train.keep_checkpoints
        if keep <= 0 or self.step == 0:
            return
        ckpt.save(self.checkpoint_dir / f"step_{self.step:06d}.safetensors", tensors, meta)
        for old in sorted(self.checkpoint_dir.glob("step_*.safetensors"))[:-keep]:
            with contextlib.suppress(OSError):  # a file that will not go away must not stop training
                old.unlink(missing_ok=True)

    def restore(self, path: Path, loaded: tuple[dict, dict] | None = None) -> None:
        """Load the whole training state (weights, EMA, optimisers, RNG, data position, counters) from `path`
        (or from its already `loaded` tensors and metadata)."""
        tensors, meta = loaded or ckpt.load(path, self.device)
        ckpt.restore_trainer(self, tensors, meta, path)
        self._norms_fresh_at = None  # the EMA weights were just reloaded
