"""FoI Studio's version, the same whether run from the source tree, a PyInstaller bundle or
a pip install; the editor, `foi` and `foi serve` all report it. The source tree and the bundle
carry pyproject.toml beside the packages (the bundle spec copies it in), and it wins there, so a
stale installed copy cannot mislabel a checkout; an installed wheel answers from its metadata."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "foi-studio"


def version() -> str:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        with pyproject.open("rb") as stream:
            project = tomllib.load(stream).get("project", {})
        if project.get("name") == DISTRIBUTION and project.get("version"):
            return str(project["version"])
    except (OSError, tomllib.TOMLDecodeError):
        pass
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
