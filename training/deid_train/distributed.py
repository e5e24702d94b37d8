"""Training on several processes under torchrun: DistributedDataParallel, NCCL on CUDA, gloo on CPU.

    torchrun --nproc_per_node 2 -m deid_train.cli train --shard DIR --batch-size 64 ...

`--batch-size` is the global (effective) batch: each of the W ranks computes its own batch_size / W rows of every
global batch (its shard of the step) and DDP averages the gradients, so a step on W ranks is the step one process
takes at the same global batch, with the same learning rate. Every rank draws the random numbers of the whole
global batch from the same seeded RNG (batch indices, flips, distortions, strengths, mixup weights, robustness
transforms: cheap next to the networks) and keeps its rows; the RNG state is therefore the same on every rank,
and rank 0's checkpoint resumes on any number of ranks. Only rank 0 writes (logs, samples, checkpoints).
Without torchrun's environment (RANK, WORLD_SIZE) everything here is the single-process no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, global_batch: int) -> slice:
        """This rank's rows of a global batch."""
        per_rank = global_batch // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)


def ranks_from_environment() -> Ranks:
    """torchrun's RANK / WORLD_SIZE / LOCAL_RANK, or one process."""
    if "WORLD_SIZE" not in os.environ:
        return Ranks()
    return Ranks(int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))


def start(ranks: Ranks, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, gloo on CPU); each rank gets its local GPU. Returns the device."""
    if not ranks.is_distributed:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop(ranks: Ranks) -> None:
    import torch.distributed as dist

    if ranks.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around `module` (its gradients averaged over the ranks), or the module itself."""
    if not ranks.is_distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def mean_over_ranks(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The average of a (detached) tensor over the ranks: a batch statistic of the global batch."""
    if not ranks.is_distributed:
        return value
    import torch.distributed as dist

    total = value.detach().clone()
    dist.all_reduce(total)
    return total / ranks.world_size


def any_rank(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """True when `flag` is true on any rank (so that every rank stops at the same step)."""
    if not ranks.is_distributed:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier(ranks: Ranks) -> None:
    if ranks.is_distributed:
        import torch.distributed as dist

        dist.barrier()
