"""Atomic writes: a reader (another shard, a crashed run resumed) never sees half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _replace_with(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _replace_with(path, lambda stream: stream.write(text.encode("utf-8")))


def save_image(path: Path, image) -> None:
    """A PIL image as PNG."""
    _replace_with(path, lambda stream: image.save(stream, format="PNG"))
