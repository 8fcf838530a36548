"""Data-parallel training on torch.distributed, launched by torchrun (gloo on CPU, NCCL on CUDA).

Gradients are averaged explicitly after each phase's backward (one flat all-reduce per phase) instead of
wrapping G and D in DistributedDataParallel: GAN phases freeze one network while the other trains and run a
network's forward in one phase and its backward in the next, which is exactly DDP's unused-parameter /
"reduction not finished" trap. Averaging the same gradients by hand is the same maths with no such trap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ganforge.errors import GanforgeError


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> "Distributed":
        """The process group torchrun describes in the environment (a no-op single process otherwise). The backend
        follows the device the run trains on (NCCL for CUDA, gloo for the CPU: `train.device cpu` on a GPU machine
        is a CPU group); `device` None means CUDA where it is available."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        state = cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
            backend = "nccl" if cuda and dist.is_nccl_available() else "gloo"
            if backend == "nccl":
                gpus = torch.cuda.device_count()
                if state.local_rank >= gpus:
                    raise GanforgeError(
                        f"torchrun started more processes on this node than it has GPUs (LOCAL_RANK "
                        f"{state.local_rank}, {gpus} GPU(s)): use --nproc-per-node {gpus}, or train.device cpu")
                torch.cuda.set_device(state.local_rank)
            dist.init_process_group(backend)
        return state

    def device(self, requested: torch.device) -> torch.device:
        """Each process uses its own GPU (LOCAL_RANK); CPU processes share the CPU."""
        if self.active and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def shard_size(self, global_batch: int) -> int:
        if global_batch % self.world:
            raise GanforgeError(f"train.batch_size {global_batch} (the global batch) must be divisible by the "
                                f"{self.world} processes")
        return global_batch // self.world

    def average_gradients(self, params) -> None:
        """All-reduce and average the gradients of `params` across processes in one flat buffer."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def all_true(self, flag: torch.Tensor) -> bool:
        """Whether `flag` (a bool tensor) holds on every process."""
        if not self.active:
            return bool(flag)
        value = flag.to(torch.int32).reshape(1).clone()
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def any_true(self, flag: bool, device: torch.device) -> bool:
        if not self.active:
            return flag
        value = torch.tensor([int(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast_object(self, value):
        """Rank 0's `value` on every process."""
        if not self.active:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def sync_batchnorm(self, module: torch.nn.Module) -> torch.nn.Module:
        if not self.active:
            return module
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)


def shard_batches(batches, rank: int, size: int):
    """This process's slice of each global batch: a source that can read only its slice (`shard(rank, size)`,
    e.g. streamed images) does so; any other is drawn whole and sliced."""
    own = getattr(batches, "shard", None)
    return own(rank, size) if own is not None else ShardedBatches(batches, rank, size)


class ShardedBatches:
    """This process's slice of each global batch: every process draws the same global batch (same seed), so
    together they see exactly what one process would."""

    def __init__(self, batches, rank: int, size: int):
        self.batches, self.start, self.size = batches, rank * size, size

    def next(self) -> dict[str, torch.Tensor]:
        return {k: v[self.start:self.start + self.size] for k, v in self.batches.next().items()}

    def state_dict(self) -> dict:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state)
