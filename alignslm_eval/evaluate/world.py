"""Which share of the work this process does, and the one sharding rule every stage uses.

A process is one rank of several that `torchrun` (or `accelerate launch`) started and a torch.distributed process
group joins, or one independent job of a `--shard I/N` array (SLURM and the like, with no process group), or the only
process. Every stage splits its items the same way (`World.mine`): deterministically from the item keys, their
costs and the world size, balanced by cost. Each rank appends to logs of its own; the final files are written once,
by rank 0 of a process group after a barrier, or by a later run without `--shard` that reads every shard's logs.
Nothing a rank finished is lost when the world size changes: logs are keyed by item, not by rank.
"""

from __future__ import annotations

import atexit
import functools
import heapq
import os
from datetime import timedelta
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

from alignslm_eval.io.errors import UserError
from alignslm_eval.io.rank_files import own_file

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """`--shard I/N` -> (I, N), 0 <= I < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. 0/4 for the first of four jobs")
    if count < 1 or not 0 <= index < count:
        raise UserError(f"--shard {text}: I must be from 0 to N-1 and N at least 1, e.g. 0/4 ... 3/4")
    return index, count


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    #: True when a torch.distributed process group joins the ranks (torchrun), False for `--shard` jobs
    group: bool = False

    @classmethod
    def from_env(cls, shard: Optional[str] = None) -> "World":
        """The world torchrun's environment describes (joining its process group), or the `--shard` job's."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size > 1:
            if shard is not None:
                raise UserError(f"--shard {shard}: this process is one of {size} torchrun ranks already; shard with "
                                "torchrun or with --shard, not both")
            import torch
            import torch.distributed as dist

            if not dist.is_initialized():
                # gloo carries the barriers (CPU tensors); NCCL, where there are GPUs, the gradients DDP reduces
                # once accelerate (under TRL) takes this group over.
                dist.init_process_group(backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
                atexit.register(dist.destroy_process_group)
            return cls(rank=dist.get_rank(), size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")), group=True)
        if shard is not None:
            index, count = parse_shard(shard)
            return cls(rank=index, size=count)
        return cls()

    @property
    def writes_final_files(self) -> bool:
        """Results, submissions, samples files: rank 0 of a process group, or a lone process; never a shard job."""
        return self.rank == 0 and (self.group or self.size == 1)

    @property
    def label(self) -> str:
        return f"rank {self.rank} of {self.size}" if self.group else f"shard {self.rank}/{self.size}"

    def device(self, device: str) -> str:
        """`cuda` means this rank's own GPU, cuda:LOCAL_RANK, when several ranks share a node."""
        return f"cuda:{self.local_rank}" if device == "cuda" and self.group else device

    def own_file(self, main: Path) -> Path:
        """The file this process writes in place of `main` (`io.rank_files`): one per rank, never shared."""
        return own_file(main, self.rank, self.size)

    def barrier(self) -> None:
        """Wait for every rank. The wait has a group of its own with a long timeout: ranks finish a stage hours
        apart at scale, and a rank that dies is reported by torchrun, not by this timeout."""
        if self.group:
            import torch.distributed as dist

            dist.barrier(group=_wait_group())

    def from_rank0(self, value: T) -> T:
        """Rank 0's `value`, on every rank of a process group (a picklable object; unchanged without a group)."""
        if not self.group:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, group=_wait_group())
        return box[0]

    def rank0_first(self, work: Callable[[], T]) -> T:
        """`work()` on rank 0, then on the others: for a build into a shared cache (the demo) that one rank makes."""
        if self.rank != 0:
            self.barrier()
        out = work()
        if self.rank == 0:
            self.barrier()
        return out

    def mine(self, items: Sequence[T], key: Callable[[T], str], cost: Callable[[T], float] = lambda _: 1.0) -> list[T]:
        """This rank's items, in their given order: `shard_of` over their keys and costs."""
        if self.size == 1:
            return list(items)
        owners = shard_of({key(item): cost(item) for item in items}, self.size)
        return [item for item in items if owners[key(item)] == self.rank]


def shard_of(costs: dict[str, float], size: int) -> dict[str, int]:
    """Key -> rank: the costliest item first to the least loaded rank (ties to the lower rank), so shards are
    balanced by cost and the split depends only on the keys, costs and `size`, never on order or timing."""
    loads = [(0.0, rank) for rank in range(size)]
    owners = {}
    for item_key, item_cost in sorted(costs.items(), key=lambda kv: (-kv[1], kv[0])):
        load, rank = heapq.heappop(loads)
        owners[item_key] = rank
        heapq.heappush(loads, (load + item_cost, rank))
    return owners


#: how long a rank waits at a barrier for the others (a stage's imbalance at scale, not a failure detector)
BARRIER_TIMEOUT = timedelta(hours=24)


@functools.cache
def _wait_group():
    """A gloo group over every rank, made once (collectively, on first use), for barriers alone: the default
    group's timeout stays short for the collectives DDP runs on it."""
    import torch.distributed as dist

    return dist.new_group(backend="gloo", timeout=BARRIER_TIMEOUT)
