"""An operating-system file lock that dies with its process.

Used to tell live files from abandoned ones: an autosave an editor is still writing to, a
`.part` file a running write still fills. The system drops the lock when the process
ends, a crash or a kill included, so a lock that can be taken means its owner is gone —
unlike a process number written into a file, which another process may reuse."""

from __future__ import annotations

import os


class FileLock:
    """An exclusive, non-blocking lock on a file, held while this object is open.
    Raises OSError when another open handle holds it (in this process or another)."""

    def __init__(self, path: str | os.PathLike):
        self.handle = open(path, "a+b")  # noqa: SIM115 - kept open: the lock lives as long as it
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self.handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise

    def release(self) -> None:
        self.handle.close()  # closing drops the lock


def is_abandoned(path: str | os.PathLike) -> bool:
    """True if no live handle holds a lock on this existing file."""
    try:
        FileLock(path).release()
    except OSError:
        return False
    return True
