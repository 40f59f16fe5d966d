"""`foi-desktop --self-check`: prove this installation works, headless, in about a minute.

It goes through the app's own code paths — the resource locator, Qt, the engine thread
(`EngineClient`), the document model — with the tiny random model (no download): open the
bundled sample photo with its two example instructions, Find regions, a 2-step Edit, and a
layered export to a temporary folder. It prints one line per stage with its timing, then
"OK", or the stage that failed and why. A user can paste the output into a problem report;
the bundle's build script runs it to test what it built."""

from __future__ import annotations

import asyncio
import io
import os
import platform
import sys
import tempfile
import time
import traceback
import zipfile
from importlib import metadata
from pathlib import Path

from foi_engine import FoiError  # light: torch loads only with the engine

STAGE_TIMEOUT_S = 300  # a hung model or thread must fail the check, not hang it
# 3 scheduler steps at the default strength 0.8 run K = 2 denoising steps (the img2img rule).
SETTINGS = {"steps": 3, "resolution": 64}
SEED = 0


class CheckFailed(Exception):
    """A stage found something wrong; the message says what."""


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _where(error: BaseException) -> str:
    """The innermost frame, so a report names the failing line without a whole traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno})"


def _choose_platform() -> None:
    """Headless where there is no display (a terminal over SSH, a build machine); otherwise the
    desktop's own platform plugin, which is then checked too."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


class _Report:
    def __init__(self, out):
        self.out = out
        self.stage = "start-up"
        self._start = time.perf_counter()

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def begin(self, stage: str) -> None:
        self.stage, self._start = stage, time.perf_counter()

    def done(self, detail: str) -> None:
        self.line(f"  ok  {self.stage:<13} {detail} ({time.perf_counter() - self._start:.2f} s)")


async def _stages(report: _Report, app, device: str | None) -> None:
    from PIL import Image
    from PySide6.QtGui import QIcon

    from foi_desktop.assets import SAMPLE_INSTRUCTIONS, SAMPLE_PHOTO, resource, resources_dir
    from foi_desktop.document import Document
    from foi_desktop.worker import EngineClient, ModelChoice
    from foi_engine import EditSettings

    report.begin("resources")
    folder = resources_dir()
    if not resource("style.qss").is_file():
        raise CheckFailed(f"the style sheet is missing from {folder}: reinstall FoI Studio.")
    icon = QIcon(str(resource("icons/foi-studio.svg")))
    if icon.isNull() or icon.pixmap(64, 64).isNull():
        raise CheckFailed("the app icon does not load: Qt's SVG support is missing from this installation.")
    report.done(str(folder))

    report.begin("sample photo")
    doc = Document.open_photo(resource(SAMPLE_PHOTO))
    for text, keyword in SAMPLE_INSTRUCTIONS:
        doc.add_layer(text, keyword=keyword)
    doc.settings = EditSettings(**SETTINGS)
    doc.set_seed(SEED, fixed=True)
    width, height = doc.size
    report.done(f"{Path(SAMPLE_PHOTO).name} {width}×{height}, {len(doc.layers)} instructions")

    client = EngineClient()
    try:
        report.begin("model")
        client.set_model(ModelChoice("tiny-random", device=device))
        info = await asyncio.wait_for(client.load(), STAGE_TIMEOUT_S)
        report.done(f"{info.model_name} on {info.device}")

        report.begin("Find regions")
        located = await asyncio.wait_for(
            client.locate(doc.photo, doc.instructions(), doc.settings, doc.seed), STAGE_TIMEOUT_S)
        doc.apply_grounding(located)
        cover = [float((layer.mask > 0).mean()) for layer in doc.layers]
        if any(layer.mask.shape != (height, width) for layer in doc.layers):
            raise CheckFailed("Find regions gave masks that are not at the photo's size.")
        if not all(cover):
            raise CheckFailed("Find regions left an instruction's mask empty.")
        report.done("masks cover " + ", ".join(f"{c:.0%}" for c in cover) + " of the photo")

        steps_seen = []
        client.progress.connect(lambda _job, step, steps, _preview: steps_seen.append((step, steps)))
        report.begin("Edit")
        start = time.perf_counter()
        request = doc.edit_request()
        result = await asyncio.wait_for(client.edit(**request.engine_arguments()), STAGE_TIMEOUT_S)
        seconds = time.perf_counter() - start
        await asyncio.sleep(0)  # let queued progress signals arrive
        entry = doc.add_result(result, request)
        doc.accept_result(entry)
        if result.image.size != result.frame.size:
            raise CheckFailed(f"Edit returned a {result.image.size} image for a {result.frame.size} frame.")
        steps = request.settings.denoising_steps
        if len(steps_seen) != steps or any(total != steps for _step, total in steps_seen):
            raise CheckFailed(f"Edit ran {steps} steps but reported progress {steps_seen}.")
        report.done(f"{steps} steps at {result.frame.size[0]}×{result.frame.size[1]}, "
                    f"{seconds / steps:.2f} s per step")
    finally:
        if not client.shutdown():
            report.line("  (the engine thread did not stop in time)")

    report.begin("export")
    with tempfile.TemporaryDirectory(prefix="foi-self-check-") as folder:
        ora, = doc.export(Path(folder) / "check.ora", entry)
        with zipfile.ZipFile(ora) as archive, Image.open(io.BytesIO(archive.read("mergedimage.png"))) as merged:
            merged.load()
        psd, = doc.export(Path(folder) / "check.psd", entry)
        with Image.open(psd) as flat:
            flat.load()
        if merged.size != doc.size or flat.size != doc.size:
            raise CheckFailed(f"the layered files are {merged.size} and {flat.size}, not the photo's {doc.size}.")
    report.done(".ora and .psd written and read back")


def run_self_check(device: str | None = None, out=None) -> int:
    """Run every stage; 0 when all pass ("OK" printed), 1 with the failing stage named."""
    report = _Report(out or sys.stdout)
    _choose_platform()
    from foi_desktop import __version__

    report.line(f"FoI Studio {__version__} self-check")
    report.line(f"  Python {platform.python_version()} on {platform.platform()}")
    started = time.perf_counter()
    try:
        import qasync
        import torch
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        from foi_desktop.look import create_application

        accelerators = [name for name, ok in (("CUDA", torch.cuda.is_available()),
                                              ("MPS", torch.backends.mps.is_available())) if ok]
        report.line(f"  torch {torch.__version__} ({', '.join(accelerators) or 'CPU only'}), "
                    f"diffusers {_package_version('diffusers')}, transformers {_package_version('transformers')}")
        report.stage = "Qt"
        app = create_application()  # the app's own: style, palette, icon
        report.line(f"  PySide6 {pyside_version}, Qt {qVersion()}, platform {app.platformName()}")
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(_stages(report, app, device))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    except (CheckFailed, Exception) as error:  # noqa: BLE001 - the check reports whatever breaks
        detail = str(error) or type(error).__name__
        if not isinstance(error, (CheckFailed, FoiError)):  # those already say what to do
            detail = f"{type(error).__name__}: {detail}{_where(error)}"
        report.line(f"FAILED at {report.stage}: {detail}")
        return 1
    report.line(f"OK ({time.perf_counter() - started:.1f} s)")
    return 0
