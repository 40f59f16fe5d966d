"""Errors the engine raises, and the one policy for showing any error to a person.

Each message is written for the person using the app: it says what is wrong and what to
do, in one line. Every error class carries the title a dialog shows and the exit code
`foi` returns; `as_foi_error` turns anything else (out of memory, a file that cannot be
written, a bug) into one of them, and `report` is what the CLI, the editor's worker and
its window all use to show an error. Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass


class FoiError(Exception):
    """Base of every error the engine raises on purpose."""

    title = "Cannot do this"
    exit_code = 1


class PhotoError(FoiError):
    """The photo cannot be used (unreadable, too small, too large)."""

    title = "Cannot use this photo"


class InstructionError(FoiError):
    """An instruction is empty, too long, or names a keyword it does not contain."""

    title = "Check the instructions"


class SettingsError(FoiError):
    """A setting is out of range."""

    title = "Check the settings"


class MaskError(FoiError):
    """A mask does not fit the photo."""

    title = "Cannot use this mask"


class ModelError(FoiError):
    """The model cannot be found, read or used."""

    title = "Cannot use this model"


class NotInstructPix2PixError(ModelError):
    """The model loads but is not an InstructPix2Pix model (its UNet lacks 8 input channels)."""


class OutOfMemoryError(FoiError):
    """The device ran out of memory during an edit."""

    title = "Out of memory"


class FileError(FoiError):
    """A file could not be read or written (disk full, no permission, removed meanwhile)."""

    title = "A file could not be read or written"


class Cancelled(FoiError):
    """The run was stopped by its cancel event."""

    title = "Cancelled"
    exit_code = 130  # as a shell reports Ctrl+C


class BusyError(FoiError):
    """The engine was asked to run from inside one of its own runs (a progress callback)."""

    title = "Busy"


class UnexpectedError(FoiError):
    """Something failed that no check foresaw: a bug. The log keeps the details."""

    title = "Something went wrong"


class ServerError(FoiError):
    """A FoI Studio server (`foi serve`) cannot be reached, refused a request, or went away."""

    title = "The server could not do this"


class ServerAuthError(ServerError):
    """The server wants a token and got none, or a wrong one."""

    title = "The server refused the token"


class ServerVersionError(ServerError):
    """The server speaks another version of the protocol than this client."""

    title = "This server is another version"


class ServerGoneError(ServerError):
    """The server stopped answering while a job ran on it."""

    title = "The server stopped answering"


# What an engine run may raise, with as_foi_error's results: the errors a server names in an
# answer and its client raises again (wire.py).
ENGINE_ERRORS = (PhotoError, InstructionError, SettingsError, MaskError, ModelError, NotInstructPix2PixError,
                 OutOfMemoryError, FileError, UnexpectedError, Cancelled, BusyError)


def is_out_of_memory(error: BaseException) -> bool:
    """MemoryError, torch.OutOfMemoryError, or a backend's RuntimeError saying so."""
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def as_foi_error(error: BaseException) -> FoiError:
    """`error` as a FoiError whose message a photographer can act on."""
    if isinstance(error, FoiError):
        return error
    if isinstance(error, MemoryError):
        return OutOfMemoryError("The computer ran out of memory: close other programs or lower the resolution.")
    if type(error).__name__ == "OutOfMemoryError":  # torch's, a RuntimeError
        return OutOfMemoryError("The graphics card ran out of memory: lower the resolution, or close other "
                                "programs using the card, and try again.")
    if is_out_of_memory(error):
        return OutOfMemoryError("The device ran out of memory: lower the resolution and try again.")
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        return FileError(f"Could not read or write a file{where}: {error.strerror or error}. Check that the disk "
                         "has room and that you may write there.")
    return UnexpectedError(f"Something went wrong inside FoI Studio ({type(error).__name__}: {error}). "
                           "The details are in the log.")


@dataclass(frozen=True)
class Report:
    """What a person is shown: a dialog's title and text, or `foi`'s message and exit code."""

    title: str
    message: str
    exit_code: int


def report(error: BaseException, title: str | None = None) -> Report:
    """The one mapping from an exception to what is shown; `title` names what was being
    done ("Could not save") when the caller knows better than the error's class."""
    error = as_foi_error(error)
    return Report(title or error.title, str(error), error.exit_code)
