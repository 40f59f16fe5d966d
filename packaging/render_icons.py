"""Render the app icon (resources/icons/foi-studio.svg) to the PNG sizes desktops use, plus the
Windows .ico and macOS .icns the bundle needs. Run after changing the SVG:

    QT_QPA_PLATFORM=offscreen python3 packaging/render_icons.py

PNGs go to resources/icons/hicolor/<n>x<n>/apps/foi-studio.png (the freedesktop icon theme
layout, so a Linux install copies the tree as is). Qt's SVG renderer draws each size from the
vector, so small sizes stay sharp instead of being shrunk from one large bitmap."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
SVG = ICONS / "foi-studio.svg"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def png_path(size: int) -> Path:
    return ICONS / "hicolor" / f"{size}x{size}" / "apps" / "foi-studio.png"


def _save_atomic(path: Path, save) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def render() -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG} is not a valid SVG")

    def draw(size: int) -> QImage:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        return image

    written = []
    for size in SIZES:
        path = png_path(size)
        _save_atomic(path, lambda tmp, image=draw(size): image.save(tmp, "PNG") or _fail(tmp))
        written.append(path)
    # macOS wants up to 1024 px (512 @2x); Pillow builds the .ico and .icns from one large image.
    with tempfile.TemporaryDirectory() as folder:
        draw(1024).save(f"{folder}/1024.png", "PNG") or _fail(f"{folder}/1024.png")
        largest = Image.open(f"{folder}/1024.png").convert("RGBA")
        largest.load()
    ico, icns = ICONS / "foi-studio.ico", ICONS / "foi-studio.icns"
    _save_atomic(ico, lambda tmp: largest.save(tmp, "ICO", sizes=[(s, s) for s in ICO_SIZES]))
    _save_atomic(icns, lambda tmp: largest.save(tmp, "ICNS"))
    return written + [ico, icns]


def _fail(tmp: str) -> None:
    raise OSError(f"Qt could not write {tmp}")


if __name__ == "__main__":
    for path in render():
        print(path.relative_to(ROOT))
