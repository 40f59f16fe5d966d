"""Writes for `foi eval`: atomic (foi_engine.atomic), so a reader — another shard, a crashed
run resumed — never sees half a file; the folder is made on the way."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_write, write_bytes_atomic


def write_text(path: Path, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, text.encode("utf-8"))


def save_image(path: Path, image) -> None:
    """A PIL image as PNG."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as stream:
        image.save(stream, format="PNG")
