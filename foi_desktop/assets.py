"""Where the bundled resources (sample photos, icon, style sheet) live.

In the source tree they are the top-level `resources/` folder; a pip install puts the
same folder inside the package as `foi_desktop.resources` (pyproject's package-dir
mapping), so look there first and fall back to the source tree."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

SAMPLE_PHOTO = "samples/coffee.png"
# Two instructions that show the idea on the sample at once: each acts on its own region.
SAMPLE_INSTRUCTIONS = (
    ("turn the cup into a red cup", "cup"),
    ("make the table marble", "table"),
)


@lru_cache(maxsize=1)
def resources_dir() -> Path:
    spec = importlib.util.find_spec("foi_desktop.resources")
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations)))
        if (installed / "style.qss").is_file():
            return installed
    source_tree = Path(__file__).resolve().parent.parent / "resources"
    if (source_tree / "style.qss").is_file():
        return source_tree
    raise FileNotFoundError("FoI Studio's resources folder is missing: reinstall the application.")


def resource(name: str) -> Path:
    """A bundled file by its path relative to the resources folder."""
    return resources_dir() / name
