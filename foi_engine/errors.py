"""Errors the engine raises. Each message is written for the person using the app:
it says what is wrong and what to do, in one line."""


class FoiError(Exception):
    """Base of every error the engine raises on purpose."""


class PhotoError(FoiError):
    """The photo cannot be used (unreadable, too small, too large)."""


class InstructionError(FoiError):
    """An instruction is empty, too long, or names a keyword it does not contain."""


class SettingsError(FoiError, ValueError):
    """A setting is out of range."""


class MaskError(FoiError):
    """A mask does not fit the photo."""


class ModelError(FoiError):
    """The model cannot be found, read or used."""


class NotInstructPix2PixError(ModelError):
    """The model loads but is not an InstructPix2Pix model (its UNet lacks 8 input channels)."""


class OutOfMemoryError(FoiError):
    """The device ran out of memory during an edit."""


class Cancelled(FoiError):
    """The run was stopped by its cancel event."""


class BusyError(FoiError):
    """The engine was asked to run from inside one of its own runs (a progress callback)."""


class ServerError(FoiError):
    """A FoI Studio server (`foi serve`) cannot be reached, refused a request, or went away."""


class ServerAuthError(ServerError):
    """The server wants a token and got none, or a wrong one."""


class ServerVersionError(ServerError):
    """The server speaks another version of the protocol than this client."""


class ServerGoneError(ServerError):
    """The server stopped answering while a job ran on it."""
