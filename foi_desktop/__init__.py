"""FoI Studio's desktop editor (PySide6 + qasync).

`foi_desktop.document` is the Qt-free document model; everything else here is the
Qt view of it plus the worker thread that owns the engine."""

from ._version import version as _version

__version__ = _version()
