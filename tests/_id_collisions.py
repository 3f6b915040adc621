"""Real 64-bit collisions of :func:`compress_gate._id_hash.hash_ids`, and the birthday search that finds them.

The hash of a 3-character id is ``mix(mix(mix(H0 ^ c0) ^ c1) ^ c2 ^ ...)`` (the formula of
:mod:`compress_gate.metrics.poisson_bootstrap`); ``mix`` is a bijection, so two ids collide when
their states after two characters differ only in the low 21 bits, which the third characters'
code points (< 2^21) can cancel: ``c2 ^ c2' = s ^ s'``. A birthday search for equal high 43 bits
among ~1.8 * 10^7 two-character prefixes finds several such pairs (~16 expected) in seconds.
:data:`COLLIDING_PAIRS` holds pairs that :func:`find_collisions` found (tests check they still
collide); the slow test finds new ones itself.
"""

from __future__ import annotations

import numpy as np

from compress_gate._id_hash import _H0, mix

#: Pairs of distinct ids with one 64-bit hash, found by :func:`find_collisions`.
COLLIDING_PAIRS = (
    ("\U000c0b19e!", "\U000b11b9o\U00109ac8"),
    ("\U0010b65cl!", "\U000bddd8e\U000dc716"),
    ("\U00084e17c\U00050000", "\uebf1e\U00106171"),
)

_LOW = 21                                            # bits a code point can cancel


def _allowed(codes: np.ndarray) -> np.ndarray:
    """Code points that make a printable, storable id character: no controls, no surrogates."""
    return (codes > 0x20) & ((codes < 0x7F) | (codes > 0x9F)) & ((codes < 0xD800) | (codes > 0xDFFF)) & \
        (codes <= 0x10FFFF)


def find_collisions(n_second: int = 16, limit: int = 4) -> list[tuple[str, str]]:
    """Up to ``limit`` pairs of distinct 3-character ids whose 64-bit hashes are equal.

    A birthday search over ``n_second`` × (code points) two-character prefixes for states equal
    in the high 43 bits; the third characters then cancel the low 21 bits (c2 ^ c2' = s ^ s').

    Memory: about 0.6 GB at ``n_second = 16`` (1.8 * 10^7 uint64 states, sorted)."""
    first = np.arange(0x21, 0x110000, dtype=np.uint64)
    first = first[_allowed(first)]
    second = np.arange(0x61, 0x61 + n_second, dtype=np.uint64)
    with np.errstate(over="ignore"):
        after_one = mix(_H0 ^ first)
        states = np.concatenate([mix(after_one ^ c) for c in second])   # entry k: (first[k % n], second[k // n])
    high = states >> np.uint64(_LOW)
    order = np.argsort(high)
    equal = np.flatnonzero(high[order][1:] == high[order][:-1])
    thirds = np.arange(0x21, 1 << _LOW)
    pairs = []
    for k in equal[:limit]:
        a, b = int(order[k]), int(order[k + 1])
        delta = int((states[a] ^ states[b]) & np.uint64((1 << _LOW) - 1))
        good = thirds[_allowed(thirds) & _allowed(thirds ^ delta)]
        if not good.size:
            continue
        n = first.size
        left = chr(int(first[a % n])) + chr(int(second[a // n])) + chr(int(good[0]))
        right = chr(int(first[b % n])) + chr(int(second[b // n])) + chr(int(good[0]) ^ delta)
        pairs.append((left, right))
    return pairs
