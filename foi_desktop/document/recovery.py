"""Autosave for crash recovery. The GUI picks the folder (the platform's cache or state
folder) and when to save; after a crash, `pending()` lists what can be offered back."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

from .errors import ProjectError
from .model import Document
from .project import _Reader, open_project, read_description, save_project


@dataclass(frozen=True)
class RecoveryItem:
    path: str  # the autosave file
    title: str  # what to show: the project's or the photo's file name
    saved_at: float  # time.time() of the autosave
    project_path: str | None  # the project it belongs to, if it had been saved as one
    error: str | None = None  # set when the autosave cannot be read (offer only to discard it)


class RecoveryStore:
    def __init__(self, folder: str | os.PathLike):
        self.folder = os.fspath(folder)

    def path_for(self, doc: Document) -> str:
        return os.path.join(self.folder, f"{doc.uid}.foi")

    def autosave(self, doc: Document) -> str:
        """Write the document's recovery copy (atomically); the document stays 'modified'."""
        os.makedirs(self.folder, exist_ok=True)
        title = os.path.basename(doc.project_path or doc.source_path or "") or "Untitled"
        path = self.path_for(doc)
        save_project(doc, path, recovery={"title": title, "project_path": doc.project_path, "saved_at": time.time()})
        return path

    def pending(self) -> list[RecoveryItem]:
        """Recovery copies left behind, newest first."""
        if not os.path.isdir(self.folder):
            return []
        items = []
        for name in os.listdir(self.folder):
            if not name.endswith(".foi"):
                continue
            path = os.path.join(self.folder, name)
            try:
                reader = _Reader(path)
                with reader.archive:
                    recovery = read_description(reader).get("recovery") or {}
                title = recovery.get("title") if isinstance(recovery.get("title"), str) else name
                saved_at = recovery.get("saved_at")
                saved_at = saved_at if isinstance(saved_at, (int, float)) else os.path.getmtime(path)
                project_path = recovery.get("project_path") if isinstance(recovery.get("project_path"), str) else None
                items.append(RecoveryItem(path, title, float(saved_at), project_path))
            except ProjectError as error:
                items.append(RecoveryItem(path, name, os.path.getmtime(path), None, str(error)))
        return sorted(items, key=lambda item: item.saved_at, reverse=True)

    def recover(self, item: RecoveryItem) -> Document:
        """Open a recovery copy: it keeps its project path (Save goes back there) and counts as
        modified; its autosaves keep going to the same recovery file until discarded."""
        doc = open_project(item.path)
        doc.project_path = item.project_path
        doc.modified = True
        doc.uid = os.path.splitext(os.path.basename(item.path))[0]
        return doc

    def discard(self, item: RecoveryItem | Document) -> None:
        """Forget a recovery copy (after a clean save or close, or when the user declines it)."""
        path = self.path_for(item) if isinstance(item, Document) else item.path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
