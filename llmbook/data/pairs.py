"""Train / validation / test splits of (source, target) pairs, shared by every sequence-to-sequence corpus."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ParallelSplits:
    """Train / validation / test lists of (source, target) pairs, and a checksum of the split."""

    train: list[tuple[str, str]]
    validation: list[tuple[str, str]]
    test: list[tuple[str, str]]

    @property
    def checksum(self) -> str:
        """SHA-256 (first 16 hex digits) of the three splits, to detect any change in data or split."""
        h = hashlib.sha256()
        for name in ("train", "validation", "test"):
            for source, target in getattr(self, name):
                h.update(f"{name}\t{source}\t{target}\n".encode())
        return h.hexdigest()[:16]
