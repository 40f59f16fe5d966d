"""The one error policy: every error a person can reach has a title, a message and an exit
code, and anything else (out of memory, a file, a bug) becomes one of them."""

import errno

import pytest
import torch

from foi_desktop.document.errors import ProjectError
from foi_engine import errors
from foi_engine.errors import (BusyError, Cancelled, FileError, FoiError, InstructionError, MaskError, ModelError,
                               NotInstructPix2PixError, OutOfMemoryError, PhotoError, ServerAuthError, ServerError,
                               ServerGoneError, ServerVersionError, SettingsError, UnexpectedError,
                               as_foi_error, report)
from foi_engine.evaluation.manifest import ManifestError
from foi_engine.layered import ExportError
from foi_engine.scheduler import QueueFullError
from foi_engine.wire import WireError

TABLE = [  # class, dialog title, exit code of `foi`
    (PhotoError, "Cannot use this photo", 1),
    (InstructionError, "Check the instructions", 1),
    (SettingsError, "Check the settings", 1),
    (MaskError, "Cannot use this mask", 1),
    (ModelError, "Cannot use this model", 1),
    (NotInstructPix2PixError, "Cannot use this model", 1),
    (OutOfMemoryError, "Out of memory", 1),
    (FileError, "A file could not be read or written", 1),
    (BusyError, "Busy", 1),
    (UnexpectedError, "Something went wrong", 1),
    (ExportError, "Could not export", 1),
    (ProjectError, "Cannot use this project", 1),
    (ManifestError, "Cannot use this list of photos", 1),
    (ServerError, "The server could not do this", 1),
    (ServerAuthError, "The server refused the token", 1),
    (ServerVersionError, "This server is another version", 1),
    (ServerGoneError, "The server stopped answering", 1),
    (WireError, "The server and this program do not understand each other", 1),
    (QueueFullError, "The server is busy", 1),
    (Cancelled, "Cancelled", 130),
]


@pytest.mark.parametrize("kind, title, code", TABLE)
def test_each_error_has_its_title_and_exit_code(kind, title, code):
    shown = report(kind("what went wrong and what to do"))
    assert (shown.title, shown.message, shown.exit_code) == (title, "what went wrong and what to do", code)


def test_the_table_covers_every_error_class():
    def subclasses(kind):
        for sub in kind.__subclasses__():
            yield sub
            yield from subclasses(sub)

    assert {kind for kind in subclasses(FoiError)} <= {kind for kind, _, _ in TABLE}


def test_no_error_is_also_a_builtin_value_error():
    # One policy: callers catch FoiError, never ValueError, to show a message.
    assert not [kind for kind, _, _ in TABLE if issubclass(kind, (ValueError, TypeError, KeyError))]


@pytest.mark.parametrize("error, kind, words", [
    (MemoryError(), OutOfMemoryError, "computer ran out of memory"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), OutOfMemoryError, "graphics card"),
    (RuntimeError("MPS backend out of memory"), OutOfMemoryError, "lower the resolution"),
    (OSError(errno.ENOSPC, "No space left on device", "/photos/out.png"), FileError, "/photos/out.png"),
    (ValueError("bad"), UnexpectedError, "ValueError: bad"),
])
def test_anything_else_becomes_a_message(error, kind, words):
    converted = as_foi_error(error)
    assert type(converted) is kind and words in str(converted)


def test_a_caller_may_name_what_it_was_doing():
    assert report(OSError(errno.EACCES, "Permission denied", "/x.foi"), title="Could not save").title == "Could not save"
    assert report(MaskError("m")).title == "Cannot use this mask"


def test_out_of_memory_inside_a_run_is_handled_by_the_engine(tiny_engine, photo, monkeypatch):
    from foi_engine import Instruction

    def run(_request):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(tiny_engine, "_run", run)
    with pytest.raises(OutOfMemoryError, match="graphics card"):
        tiny_engine.edit(photo, [Instruction("make the cat a tiger", "cat")])


def test_errors_module_does_not_import_torch():
    assert "torch" not in errors.__dict__


def test_every_error_a_run_can_end_in_crosses_the_wire_as_itself():
    # A server names the class of its engine's error; its client raises the same one again.
    from foi_engine.wire import ERROR_KINDS

    for kind in (PhotoError, InstructionError, SettingsError, MaskError, ModelError, OutOfMemoryError, FileError,
                 UnexpectedError, Cancelled, BusyError):
        assert ERROR_KINDS[kind.__name__] is kind
    assert type(as_foi_error(ValueError("bug"))).__name__ in ERROR_KINDS
