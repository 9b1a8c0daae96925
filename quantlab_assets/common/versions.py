"""The one content hash: Dagster code versions (a strategy spec, a feature preset, a sweep),
spec hashes and the data and code versions of recorded experiments."""

from __future__ import annotations

import hashlib

HASH_LENGTH = 12  # hex digits kept: short enough to read in the UI, 48 bits against collisions


def content_hash(*parts: str | bytes) -> str:
    """Short SHA-256 of ``parts`` in order (text as UTF-8): equal content, equal hash."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[:HASH_LENGTH]
