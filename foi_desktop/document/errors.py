"""Errors of the document model, each with a one-line message for the person using the app."""

from foi_engine import FoiError


class ProjectError(FoiError):
    """A project file cannot be read or written (damaged, hostile, from a newer version)."""

    title = "Cannot use this project"
