"""Stable hashing, the source of every seeded random choice in preprocessing.

Python's built-in `hash` of a string changes from process to process, so it
cannot make a distributed job reproducible. Every random decision here (the
split, negatives, neighbour samples) is instead a pure function of the seed and
the ids involved, which makes a job give the same output on any runner, with
any bundling, on any number of workers.
"""

from __future__ import annotations

import hashlib

_TWO_64 = float(2**64)


def hash64(seed: int, *parts: str) -> int:
    """Returns a 64-bit hash of the seed and the parts.

    Args:
      seed: The job's seed.
      *parts: Strings that name what is being decided.

    Returns:
      An integer in [0, 2**64).
    """
    data = "\x1f".join((str(seed), *parts)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def uniform(seed: int, *parts: str) -> float:
    """Returns a number in [0, 1) that is uniform over seeds and parts."""
    return hash64(seed, *parts) / _TWO_64
