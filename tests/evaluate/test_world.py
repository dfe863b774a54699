import random

import pytest

from alignslm_eval.evaluate.world import World, parse_shard, shard_of
from alignslm_eval.io.errors import UserError


def test_shards_are_balanced_by_cost_and_independent_of_order() -> None:
    costs = {f"item{i:03d}": float(1 + (i * 37) % 50) for i in range(200)}
    owners = shard_of(costs, 4)
    shuffled = list(costs.items())
    random.Random(0).shuffle(shuffled)
    assert shard_of(dict(shuffled), 4) == owners
    loads = [sum(c for k, c in costs.items() if owners[k] == r) for r in range(4)]
    assert max(loads) - min(loads) <= max(costs.values())


def test_every_item_goes_to_exactly_one_rank() -> None:
    items = [f"k{i}" for i in range(11)]
    shares = [World(rank=r, size=3).mine(items, key=str, cost=len) for r in range(3)]
    assert sorted(k for share in shares for k in share) == sorted(items)
    assert all(share == sorted(share, key=items.index) for share in shares)  # each keeps the given order
    assert World().mine(items, key=str) == items


def test_shard_flag_is_checked_on_one_line() -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(UserError, match=f"--shard {bad}|--shard '{bad}'"):
            parse_shard(bad)


def test_only_rank_0_of_a_group_or_a_lone_process_writes_final_files() -> None:
    assert World().writes_final_files and World(rank=0, size=2, group=True).writes_final_files
    assert not World(rank=1, size=2, group=True).writes_final_files
    assert not World(rank=0, size=2).writes_final_files  # a --shard job leaves them to the merging run
    assert World(rank=1, size=2, local_rank=1, group=True).device("cuda") == "cuda:1"
    assert World(rank=1, size=2).device("cuda") == "cuda" and World().device("cpu") == "cpu"
