"""A fixed torch thread count for a block of work. How many threads share a float sum sets its order, and so the
bytes of a result or a trained model's weights; the machine's core count must not."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

#: Threads the package's own trainers run on (the demo's LMs, the word recogniser), whatever the core count, so a
#: cache built on any machine holds the same weights. Two, the reference machine's cores, so that the worlds behind
#: the committed tables are the ones built there. Measured: the story world's unit LM and recogniser came out with
#: other weights on 1 thread than on 2.
TRAINING_THREADS = 2


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on `n` intra-op threads (process-wide), restoring the previous count after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
