"""FoI Studio's document model: no Qt here (import-linter enforces it).

docs/ARCHITECTURE.md ("The editor") describes its modules and the contract with the views."""

from .errors import ProjectError
from .events import Event, EventKind, follow
from .model import Document, EditRequest, InstructionLayer, PackedMask, ResultEntry
from .project import open_project, save_project
from .recovery import RecoveryItem, RecoveryStore, read_recovery

__all__ = [
    "Document",
    "EditRequest",
    "Event",
    "EventKind",
    "follow",
    "InstructionLayer",
    "PackedMask",
    "ProjectError",
    "RecoveryItem",
    "RecoveryStore",
    "ResultEntry",
    "open_project",
    "read_recovery",
    "save_project",
]
