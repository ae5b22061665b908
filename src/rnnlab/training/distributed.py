"""Data-parallel training with ``torch.distributed``, set up from the variables torchrun exports.

Every process holds a full copy of the model and trains on its own contiguous shard of each global
batch. Gradients are summed across processes after each rank scaled its loss by its share of the
global element count, so the update equals single-process training on the global batch (up to the
order of floating-point additions). Only rank 0 writes files and logs.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from rnnlab.errors import RnnlabError, first_line


class PeerFailure(RnnlabError):
    """Another process of a data-parallel run stopped (killed, crashed) or cannot be reached."""


@contextmanager
def peer_failures() -> Iterator[None]:
    """Turn the backend's error about a lost peer (gloo's "Connection closed by peer", NCCL's
    errors, a timeout) into one PeerFailure line."""
    try:
        yield
    except RuntimeError as error:  # DistBackendError and gloo's RuntimeError alike
        # without gloo's "[../pair.cc:534] " prefix
        cause = re.sub(r"^\[[^\]]*\]\s*", "", first_line(error))
        cause = cause.split(". ")[0].rstrip(".")  # the first sentence: what happened
        if len(cause) > 100:
            cause = cause[:97] + "..."
        rank = dist.get_rank() if dist.is_initialized() else "?"
        raise PeerFailure(
            f"process {rank} lost contact with the other processes of this data-parallel run "
            f"({cause}): one of them stopped"
        ) from None


@dataclass
class DistributedContext:
    """Where this process stands in a (possibly single-process) data-parallel job.

    Attributes:
        rank: this process's index, 0 .. world_size - 1.
        world_size: number of processes.
        local_rank: index on this machine (selects the GPU).
        owns_group: whether this context created the process group (and destroys it on close).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0)."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, device_type: str) -> DistributedContext:
        """Join the job described by torchrun's RANK / WORLD_SIZE / LOCAL_RANK variables.

        Without those variables (or with WORLD_SIZE 1) this is a single process and nothing is
        initialised. The backend is gloo for CPU training and NCCL for CUDA.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=False)
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(minutes=10),
        )
        return cls(rank, world_size, local_rank, owns_group=True)

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes, in place; returns it."""
        if self.enabled:
            with peer_failures():
                dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_gradients_(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Sum the gradients of ``parameters`` over all processes, in place, in one message."""
        if not self.enabled:
            return
        gradients = [p.grad for p in parameters if p.grad is not None]
        if not gradients:
            return
        flat = torch.cat([gradient.reshape(-1) for gradient in gradients])  # (P,)
        with peer_failures():
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for gradient in gradients:
            size = gradient.numel()
            gradient.copy_(flat[offset : offset + size].view_as(gradient))
            offset += size

    def broadcast_module_(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every other process's ``module``."""
        if not self.enabled:
            return
        with torch.no_grad(), peer_failures():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor, src=0)

    def barrier(self) -> None:
        """Wait until every process reaches this point."""
        if self.enabled:
            with peer_failures():
                dist.barrier()

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" → CUDA when available, else CPU; "cuda" → this process's GPU (ValueError if none)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was requested but CUDA is not available")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")
