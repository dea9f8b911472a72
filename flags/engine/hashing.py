"""Unleash's normalised hash: which bucket (1..modulus) an identifier falls in for a group."""

from __future__ import annotations

import mmh3

ROLLOUT_SEED = 0
VARIANT_SEED = 86028157  # Unleash's VARIANT_NORMALIZATION_SEED: variants hash apart from rollout


def normalized_hash(group: str, identifier: str, modulus: int = 100, seed: int = ROLLOUT_SEED):
    """MurmurHash3 (x86, 32-bit, unsigned) of ``"group:identifier"``, then ``% modulus + 1``."""
    return mmh3.hash(f"{group}:{identifier}", seed, signed=False) % modulus + 1
