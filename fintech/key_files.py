"""Writing a key file once: created exclusively with its mode, never overwritten, safe against a racing process."""

from __future__ import annotations

import os
from pathlib import Path


def key_file_create(path: Path, data: bytes, *, mode: int = 0o600) -> bool:
    """Create `path` holding `data`; False (and nothing written) if it exists already, e.g. another process won."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return True
