"""What the app remembers between runs (QSettings, in the platform's config folder):
where runs happen (this computer, or a server with its address, token and model), the model, device
and precision, the run settings, the seed mode, recent files and the folder Open starts in."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from PySide6.QtCore import QSettings, QStandardPaths

from foi_engine import EditSettings, threads
from foi_engine.catalog import DEFAULT_MODEL
MAX_RECENT = 10
RUN_SETTINGS = ("steps", "strength", "image_guidance", "text_guidance", "gamma", "resolution")


ENGINES = ("local", "server")  # where runs happen: this computer, or a `foi serve` server


@dataclass
class Preferences:
    engine: str = "local"  # one of ENGINES
    server_url: str = ""  # http(s)://host:port of `foi serve`
    server_token: str = ""  # the token it printed ("": none, as on this computer's own 127.0.0.1)
    server_model: str = ""  # a name from the server's list ("": the server's first)
    model: str = DEFAULT_MODEL
    device: str = "auto"  # "auto", "cpu", "cuda", "mps"
    precision: str = "auto"  # "auto", "float32", "float16"
    # The run settings a user sets; their defaults are the engine's (the paper's).
    steps: int = EditSettings.steps
    strength: float = EditSettings.strength
    image_guidance: float = EditSettings.image_guidance
    text_guidance: float = EditSettings.text_guidance
    gamma: int = EditSettings.gamma
    resolution: int = EditSettings.resolution
    threads: int = 0  # CPU threads; 0: automatic (foi_engine.threads)
    fixed_seed: bool = False
    seed: int = 0
    recent: list[str] = field(default_factory=list)
    open_folder: str = ""  # where the last photo or project was opened from: Open starts there

    def edit_settings(self, base: EditSettings | None = None, names=RUN_SETTINGS) -> EditSettings:
        """These values (the run settings named) over base's other fields (raises SettingsError
        when invalid)."""
        return dataclasses.replace(base or EditSettings(), **{name: getattr(self, name) for name in names})

    def take_settings(self, settings: EditSettings) -> None:
        for name in RUN_SETTINGS:
            setattr(self, name, getattr(settings, name))

    def add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        self.recent = [path] + [p for p in self.recent if p != path][: MAX_RECENT - 1]


def _store() -> QSettings:
    return QSettings("FoI Studio", "FoI Studio")


def load_preferences() -> Preferences:
    store, defaults = _store(), Preferences()
    values = {}
    for item in dataclasses.fields(Preferences):
        default = getattr(defaults, item.name)
        raw = store.value(item.name, default)
        try:
            if isinstance(default, bool):
                value = raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1")
            elif isinstance(default, list):
                value = [str(p) for p in (raw if isinstance(raw, list) else [raw] if raw else [])]
            else:
                value = type(default)(raw)
        except (TypeError, ValueError):
            value = default  # a hand-edited or old config never stops the app
        values[item.name] = value
    preferences = Preferences(**values)
    if not 0 <= preferences.threads <= threads.MAX_THREADS:
        preferences.threads = 0
    if preferences.engine not in ENGINES:
        preferences.engine = "local"
    try:
        preferences.edit_settings()
    except Exception:  # noqa: BLE001 - invalid stored run settings: fall back to the defaults
        preferences.take_settings(EditSettings())
    return preferences


def save_preferences(preferences: Preferences) -> None:
    store = _store()
    for item in dataclasses.fields(Preferences):
        store.setValue(item.name, getattr(preferences, item.name))
    store.sync()


def recovery_folder() -> str:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return os.path.join(base or os.path.expanduser("~/.foi-studio"), "recovery")


def log_folder() -> str:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return os.path.join(base or os.path.expanduser("~/.foi-studio"), "logs")
