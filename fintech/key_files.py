"""Writing key and certificate files: created exclusively with their mode, or replaced whole in one rename."""

from __future__ import annotations

import os
import tempfile
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


def file_replace(path: Path, data: bytes, *, mode: int) -> None:
    """Replace `path` in one rename with a file created at `mode`: a reader (nginx, requests, a verifier) never
    sees half a file, and a key is never readable by others, not even for a moment. The directory must exist."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
