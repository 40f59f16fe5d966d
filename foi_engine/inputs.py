"""Checks on a file the user names, before a byte of it is read.

A path can name a folder, a FIFO that blocks forever, /dev/zero that never ends, or a
symbolic link to one of those; none of them is a photo, a mask, a project or a manifest."""

from __future__ import annotations

import os
import stat

MiB = 1024**2


def check_regular_file(path: str | os.PathLike, what: str, max_bytes: int, error: type[Exception]) -> int:
    """The file's size, or `error` with a sentence naming the file and what to do."""
    name = os.path.basename(os.fspath(path)) or os.fspath(path)
    try:
        info = os.stat(path)  # follows links: the check is on what would be read
    except OSError as problem:
        reason = unreachable(problem, name, what) or f"{name} cannot be read ({problem.strerror or problem})."
        raise error(reason) from None
    if stat.S_ISDIR(info.st_mode):
        raise error(_a_folder(name, what))
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{name} is not a regular file (a device, pipe or socket), so it is not {what}: choose a file.")
    if info.st_size > max_bytes:
        raise error(f"{name} is {info.st_size / MiB:,.0f} MiB, larger than {what} can be "
                    f"(at most {max_bytes / MiB:,.0f} MiB).")
    return info.st_size


def unreachable(problem: OSError, name: str, what: str) -> str | None:
    """The sentence for an error that says the file `name` cannot be reached (gone, a folder, not
    permitted): the same whether the check above met it or the reading after it (the file changed
    in between). None for any other error: what is wrong with the file itself is the reader's to say."""
    if isinstance(problem, FileNotFoundError):
        return f"{name}: no such file. Check the path and try again."
    if isinstance(problem, IsADirectoryError):
        return _a_folder(name, what)
    if isinstance(problem, PermissionError):
        return f"{name} cannot be read: check its permissions."
    return None


def _a_folder(name: str, what: str) -> str:
    return f"{name} is a folder, not {what}: choose a file."
