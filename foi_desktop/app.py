"""`foi-desktop [PHOTO] [--model ID|FOLDER|tiny-random] [--device ...]`: start the editor.

The app runs on qasync's event loop (so window code can await the engine worker); an
unexpected error anywhere is logged and shown as a message, never as a traceback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from logging.handlers import RotatingFileHandler

from foi_engine import FoiError, threads
from foi_engine.process import end_process

from . import __version__
from .look import create_application  # noqa: F401 - the app's entry points and tests build it from here

log = logging.getLogger("foi_desktop")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="foi-desktop",
        description="FoI Studio: edit a photo with plain-language instructions, each applied only where it "
                    "belongs. With no photo, a sample opens with two example instructions.")
    parser.add_argument("photo", nargs="?", help="a photo (JPEG, HEIC, PNG, TIFF, WebP) or a .foi project to open")
    parser.add_argument("--model", help='hub id, local model folder, or "tiny-random" (random weights, no download;'
                                        " for trying the app)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: the best available)")
    threads.add_option(parser)
    parser.add_argument("--version", action="version", version=f"FoI Studio {__version__}")
    parser.add_argument("--self-check", action="store_true",
                        help="check this installation without a window (tiny model, sample photo) and exit")
    return parser.parse_args(argv)


def setup_logging() -> str:
    from .preferences import log_folder

    folder = log_folder()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "foi-desktop.log")
    handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return path


def install_excepthook(log_path: str) -> None:
    """Uncaught errors (in slots, timers, coroutines) become a dialog and a log entry."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.error("Unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        if QApplication.instance() is not None:
            QMessageBox.warning(
                QApplication.activeWindow(), "Something went wrong",
                f"FoI Studio hit an unexpected problem ({value}). Your work is still open; save it to be safe.\n\n"
                f"Details were written to {log_path}.")

    sys.excepthook = hook

    def loop_handler(loop, context):
        error = context.get("exception")
        if error is not None:
            hook(type(error), error, error.__traceback__)
        else:
            log.error("Event loop: %s", context.get("message"))

    asyncio.get_event_loop().set_exception_handler(loop_handler)


# Libraries Qt's X11 platform plugin loads and many Linux installs lack: without them Qt
# aborts with a message no photographer can act on.
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1",
                 "xkbcommon-x11": "libxkbcommon-x11-0"}


def missing_system_libraries() -> list[str]:
    """Debian/Ubuntu package names of the X11 libraries Qt needs and cannot find (Linux with
    an X display only; Wayland and offscreen need none of them)."""
    import ctypes.util

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY") or platform not in ("", "xcb"):
        return []
    if os.environ.get("WAYLAND_DISPLAY") and not platform:
        return []
    return [package for library, package in XCB_LIBRARIES.items() if ctypes.util.find_library(library) is None]


FIRST_SIZE = (1500, 920)
FRAME_ROOM = (16, 64)  # the window manager's border, title bar and placement, outside the size we set


def first_size(available):
    """The window's size at start: roomy, but never larger than the screen's free area (a
    1366 × 768 laptop would otherwise lose the instructions panel off its right edge)."""
    from PySide6.QtCore import QSize

    return QSize(min(FIRST_SIZE[0], available.width() - FRAME_ROOM[0]),
                 min(FIRST_SIZE[1], available.height() - FRAME_ROOM[1]))


def create_window(args: argparse.Namespace):
    """The main window with the photo open (a project opens once the loop runs), or the sample."""
    from .preferences import load_preferences
    from .window import MainWindow

    window = MainWindow(load_preferences(), model_override=args.model, device_override=args.device,
                        threads_override=args.threads)
    window.resize(first_size(window.screen().availableGeometry().size()))
    if args.photo:
        window.open_path(os.path.abspath(args.photo))
    if window.doc is None and window.opening is None:
        window.open_sample()
    return window


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        threads.apply(args.threads, leave_free=1)  # before anything imports torch
    except FoiError as error:
        print(f"foi-desktop: {error}", file=sys.stderr)
        return 2
    if args.self_check:
        from .selfcheck import run_self_check

        return run_self_check(device=args.device)
    missing = missing_system_libraries()
    if missing:
        print("foi-desktop: the window cannot open: this computer lacks system libraries Qt needs. Install them "
              f"with:\n  sudo apt install {' '.join(missing)}\n(Fedora: sudo dnf install xcb-util-cursor "
              "xcb-util-wm xcb-util-keysyms libxkbcommon-x11)", file=sys.stderr)
        return 1
    import qasync

    app = create_application()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    log_path = setup_logging()
    install_excepthook(log_path)
    window = create_window(args)
    window.show()
    if args.photo is None:
        window.offer_recovery()
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    with loop:
        loop.run_until_complete(closed.wait())
    # By now the window has stopped the engine thread, dropped its autosave and saved the
    # preferences: nothing is left for the interpreter's teardown to do but take seconds.
    end_process(0)


if __name__ == "__main__":
    sys.exit(main())
