"""Ending a process that has loaded a model, without the wait."""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn


def end_process(code: int) -> NoReturn:
    """Exit now, skipping the interpreter's teardown: freeing torch's, diffusers' and
    transformers' objects module by module takes a second or more after the work is done,
    with nothing left to save. The exit handlers still run, as at any exit (logging flushes
    its files, PySide ends Qt properly), and the standard streams are flushed."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
