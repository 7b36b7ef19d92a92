"""Train / validation / test by conversation: a conversation's examples never straddle splits."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")


def parse_ratios(text: str) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` as three non-negative fractions summing to 1 (ValueError otherwise)."""
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(f"--split {text!r}: three non-negative fractions summing to 1, e.g. 0.9,0.05,0.05")
    return parts[0], parts[1], parts[2]


class Splitter:
    """Assigns each conversation to a split from a hash of (seed, conversation id): deterministic,
    independent of order and of which other conversations are exported."""

    def __init__(self, ratios: tuple[float, float, float], seed: int) -> None:
        self.bounds = (ratios[0], ratios[0] + ratios[1])
        self.seed = seed
        self._cache: dict[int, str] = {}

    def __call__(self, conversation_id: int) -> str:
        found = self._cache.get(conversation_id)
        if found is None:
            found = self._cache[conversation_id] = self._assign(conversation_id)
            if len(self._cache) > 4096:
                self._cache.clear()
        return found

    def _assign(self, conversation_id: int) -> str:
        digest = hashlib.blake2b(f"{self.seed}:{conversation_id}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        if u < self.bounds[0]:
            return "train"
        return "validation" if u < self.bounds[1] else "test"
