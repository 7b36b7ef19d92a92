"""Exact and near-duplicate removal: the first example seen is kept, later copies are counted."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from agent.errors import MissingExtra

_WORD = re.compile(r"\w+", re.UNICODE)


def normalised(text: str) -> str:
    """Case and whitespace folded: copies that differ only in those count as exact duplicates
    (``str.split`` splits on the same Unicode whitespace as ``\\s+``, several times faster)."""
    return " ".join(text.casefold().split())


class Deduper:
    """``mode`` exact (hash of the normalised text), near (exact plus MinHash LSH), or none."""

    def __init__(self, mode: str, threshold: float = 0.85, num_perm: int = 64) -> None:
        self.mode = mode
        self.threshold = threshold
        self.num_perm = num_perm
        self._seen: set[bytes] = set()
        self._lsh: Any = None
        self._count = 0

    def duplicate(self, text: str) -> str | None:
        """Why ``text`` is a duplicate of an earlier one ('exact duplicate' / 'near duplicate'), or None
        (and it is remembered)."""
        if self.mode == "none":
            return None
        norm = normalised(text)
        key = hashlib.blake2b(norm.encode(), digest_size=16).digest()
        if key in self._seen:
            return "exact duplicate"
        self._seen.add(key)
        if self.mode == "near" and self._near(norm):
            return "near duplicate"
        return None

    def _near(self, norm: str) -> bool:
        signature = self._signature(norm)
        if self._lsh is None:
            self._lsh = _lsh(self.threshold, self.num_perm)
        if self._lsh.query(signature):
            return True
        self._count += 1
        self._lsh.insert(str(self._count), signature)
        return False

    def _signature(self, norm: str) -> Any:
        datasketch = _datasketch()
        words = _WORD.findall(norm)
        shingles = {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))} or {norm}
        minhash = datasketch.MinHash(num_perm=self.num_perm, seed=1)
        minhash.update_batch([s.encode() for s in shingles])
        return minhash


def _datasketch() -> Any:
    try:
        import datasketch  # type: ignore[import-untyped]
    except ModuleNotFoundError:
        raise MissingExtra("near-duplicate removal needs the optional [harvest] extra (module datasketch "
                           "is not installed): pip install 'epistemic-engine[harvest]'") from None
    return datasketch


def _lsh(threshold: float, num_perm: int) -> Any:
    return _datasketch().MinHashLSH(threshold=threshold, num_perm=num_perm)
