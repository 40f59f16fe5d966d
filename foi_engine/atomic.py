"""Atomic file writes: a file FoI Studio writes is either the complete new file or the old
one (or absent), never half-written — also when the disk fills, the process is killed or the
writer raises. The temporary file lives in the destination's folder so `os.replace` is a rename
on one file system; it is fsynced before the rename and the folder after it."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from .locks import FileLock, is_abandoned

# Read once at import: os.umask can only be read by setting it, which is not thread-safe later.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary temporary file next to `path`; on a clean exit it replaces `path`.

    On any exception the temporary file is removed and `path` is left as it was. The
    temporary file is locked while it is written, so `.part` files that a killed writer left
    behind for the same name can be told apart from live ones and are removed. Replacing a
    file keeps its permissions (a private 0600 file stays private)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    # POSIX locks are advisory; Windows' would block our own writes, so there parts stay.
    locking = os.name != "nt"
    if locking:
        _remove_abandoned_parts(folder, prefix)
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=folder)
    os.close(handle)
    try:
        lock = FileLock(temporary) if locking else None
        try:
            with open(temporary, "r+b") as stream:
                yield stream
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, _mode_for(path))
            os.replace(temporary, path)
        finally:
            if lock is not None:
                lock.release()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _mode_for(path: str) -> int:
    """The replaced file's permissions, or those a plain open() would give a new file
    (mkstemp makes it 0600)."""
    try:
        info = os.stat(path)
    except OSError:
        return 0o666 & ~_UMASK
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else 0o666 & ~_UMASK


def _remove_abandoned_parts(folder: str, prefix: str) -> None:
    """Temporary files of earlier writes to the same name whose writer is gone."""
    try:
        names = [name for name in os.listdir(folder) if name.startswith(prefix) and name.endswith(".part")]
    except OSError:
        return
    for name in names:
        part = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if os.path.isfile(part) and not os.path.islink(part) and is_abandoned(part):
                os.unlink(part)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows), and harmless to skip.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
