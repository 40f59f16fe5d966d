"""Autosave for crash recovery. The GUI picks the folder (the platform's cache or state
folder) and when to save; after a crash, `pending()` lists what can be offered back.

Several editors may run at once and share the folder: each holds an operating-system lock
on `<uid>.lock` beside every autosave it writes, so another one never offers (or deletes)
work that is still live. The system drops the lock when the process ends, crash included,
so an abandoned autosave is offered and a reused process number cannot fool the check.
An autosave that cannot be read is never deleted: it can only be moved aside."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

from foi_engine.locks import FileLock, is_abandoned

from .errors import ProjectError
from .model import Document
from .project import _Reader, open_project, read_description, save_project


@dataclass(frozen=True)
class RecoveryItem:
    path: str  # the autosave file
    title: str  # what to show: the project's or the photo's file name
    saved_at: float  # time.time() of the autosave
    project_path: str | None  # the project it belongs to, if it had been saved as one
    error: str | None = None  # set when the autosave cannot be read (it can only be moved aside)


UNREADABLE = "unreadable"  # the subfolder unreadable autosaves are moved to


def _held_elsewhere(lock_path: str) -> bool:
    """True if some live editor holds this lock (this process's other handles included)."""
    return os.path.exists(lock_path) and not is_abandoned(lock_path)


def _plausible_time(value) -> bool:
    """A time.time() value a dialog can show: from 2000 up to a day from now."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 946_684_800 <= value <= time.time() + 86_400)


def _uid(item: RecoveryItem) -> str:
    """The uid of the document a recovery copy was saved from (its file name)."""
    return os.path.splitext(os.path.basename(item.path))[0]


def read_recovery(item: RecoveryItem) -> Document:
    """A recovery copy as a document, touching no lock (the editor claims the copy first,
    then reads it in a worker thread). It is Untitled: the path written inside an autosave
    is not trusted to say where Save may write (item.project_path is only shown to the
    user). It counts as modified; its autosaves keep going to the same recovery file, now
    locked by this editor, until discarded."""
    doc = open_project(item.path)
    doc.project_path = None
    doc.modified = True
    doc.uid = _uid(item)
    return doc


class RecoveryStore:
    def __init__(self, folder: str | os.PathLike):
        self.folder = os.fspath(folder)
        self._locks: dict[str, FileLock] = {}  # uid -> the lock this editor holds

    def path_for(self, doc: Document) -> str:
        return os.path.join(self.folder, f"{doc.uid}.foi")

    def _lock_path(self, uid: str) -> str:
        return os.path.join(self.folder, f"{uid}.lock")

    def _hold(self, uid: str) -> None:
        if uid not in self._locks:
            os.makedirs(self.folder, exist_ok=True)
            self._locks[uid] = FileLock(self._lock_path(uid))

    def _let_go(self, uid: str) -> None:
        lock = self._locks.pop(uid, None)
        if lock is not None:
            lock.release()
            with contextlib.suppress(OSError):
                os.unlink(self._lock_path(uid))

    def autosave(self, doc: Document) -> str:
        """Write the document's recovery copy (atomically); the document stays 'modified'."""
        self._hold(doc.uid)
        title = os.path.basename(doc.project_path or doc.source_path or "") or "Untitled"
        path = self.path_for(doc)
        save_project(doc, path, recovery={"title": title, "project_path": doc.project_path, "saved_at": time.time()})
        return path

    def pending(self) -> list[RecoveryItem]:
        """Recovery copies left behind by editors that are no longer running, newest first."""
        if not os.path.isdir(self.folder):
            return []
        items = []
        for name in os.listdir(self.folder):
            uid, suffix = os.path.splitext(name)
            path = os.path.join(self.folder, name)
            if suffix != ".foi" or not os.path.isfile(path):
                continue
            if uid in self._locks or _held_elsewhere(self._lock_path(uid)):
                continue  # live work of this or another editor
            try:
                reader = _Reader(path)
                with reader.archive:
                    recovery = read_description(reader).get("recovery") or {}
                title = recovery.get("title") if isinstance(recovery.get("title"), str) else name
                saved_at = recovery.get("saved_at")
                if not _plausible_time(saved_at):  # hostile or damaged: the file's own time instead
                    saved_at = os.path.getmtime(path)
                project_path = recovery.get("project_path") if isinstance(recovery.get("project_path"), str) else None
                items.append(RecoveryItem(path, title, float(saved_at), project_path))
            except ProjectError as error:
                items.append(RecoveryItem(path, name, os.path.getmtime(path), None, str(error)))
        return sorted(items, key=lambda item: item.saved_at, reverse=True)

    def claim(self, item: RecoveryItem) -> None:
        """Lock a recovery copy before reading it: no other editor offers it meanwhile."""
        self._hold(_uid(item))

    def unclaim(self, item: RecoveryItem) -> None:
        """Let a claimed copy go again (it could not be opened, or the user kept their work)."""
        self._let_go(_uid(item))

    def recover(self, item: RecoveryItem) -> Document:
        """Claim a recovery copy and open it (see read_recovery); one that cannot be read is
        let go again."""
        self.claim(item)
        try:
            return read_recovery(item)
        except BaseException:
            self.unclaim(item)
            raise

    def discard(self, item: RecoveryItem | Document) -> None:
        """Forget a readable recovery copy (after a clean save or close, or when the user
        declines it). An unreadable one is never deleted: see set_aside."""
        if isinstance(item, RecoveryItem) and item.error is not None:
            raise ProjectError("An autosave that cannot be read is not deleted: move it aside instead.")
        uid = item.uid if isinstance(item, Document) else _uid(item)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_for(item) if isinstance(item, Document) else item.path)
        self._let_go(uid)

    def set_aside(self, item: RecoveryItem) -> str:
        """Move an autosave into the `unreadable` subfolder, where it is kept but no longer
        offered; returns its new path."""
        folder = os.path.join(self.folder, UNREADABLE)
        os.makedirs(folder, exist_ok=True)
        stem, suffix = os.path.splitext(os.path.basename(item.path))
        target, n = os.path.join(folder, stem + suffix), 1
        while os.path.exists(target):
            n += 1
            target = os.path.join(folder, f"{stem}-{n}{suffix}")
        os.replace(item.path, target)
        return target

    def close(self) -> None:
        """Drop every lock this editor holds (its autosaves stay, to be offered next time)."""
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()
