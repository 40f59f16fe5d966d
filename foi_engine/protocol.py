"""The one interface every engine offers, whether it runs here or on a server.

`FoiEngine` (engine.py) runs the model in this process; `RemoteEngine` (remote.py) sends each
request to a `foi serve` server and turns its answer back into the same result objects. The
editor and the command line hold an `Engine` and never ask which one it is; `open_engine`
picks the implementation from the user's choice: a model name or folder, or a server's URL.

No torch here: importing this module (or remote.py) loads no model library."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .settings import EditSettings, Instruction

if TYPE_CHECKING:
    from PIL import Image

    from .results import EditResult, LocateResult

# on_step(step, steps, preview): step counts from 0; preview is a small PIL image or None.
StepCallback = Callable[[int, int, "Image.Image | None"], None]



class JobKind(str, enum.Enum):
    """What a job asks of an engine (the server's and the editor's jobs alike)."""

    LOCATE = "locate"  # Find regions
    EDIT = "edit"


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

@dataclass(frozen=True)
class EngineInfo:
    """What an engine is: shown in the editor's status bar and by `foi serve`."""

    model_name: str
    device: str  # "cpu", "cuda:0"…; for a remote engine, the server's device(s)
    version: str  # FoI Studio's version where the model runs
    max_tokens: int  # the model's text length, SOT and EOT included
    random_weights: bool  # the tiny test model: its pictures are noise
    server: str | None = None  # the server's URL for a remote engine, None for a local one


@runtime_checkable
class Engine(Protocol):
    def info(self) -> EngineInfo:
        """The model, device and version; cheap to call again."""
        ...

    def count_tokens(self, instructions: Sequence[Instruction]) -> int:
        """Tokens the composite instruction uses (SOT and EOT included); safe during a run."""
        ...

    def locate(self, image: "Image.Image", instructions, settings: EditSettings = EditSettings(),
               seed: int = 0) -> "LocateResult":
        """Grounding maps and masks from the first step alone."""
        ...

    def edit(self, image: "Image.Image", instructions, settings: EditSettings = EditSettings(), seed: int = 0,
             masks=None, on_step: StepCallback | None = None,
             cancel: threading.Event | None = None) -> "EditResult":
        """The edited picture; masks=None finds the regions in this run. Raises Cancelled
        within one step of `cancel` being set."""
        ...


def open_engine(choice: str, device: str | None = None, precision: str = "auto", progress=None,
                token: str | None = None, model: str | None = None, cancel: threading.Event | None = None) -> Engine:
    """A model name or folder loads here (device, precision and progress apply); a server URL
    (http:// or https://) connects to `foi serve` there, with its token, and uses `model` from
    the server's list (None: the server's first), giving up (Cancelled) once `cancel` is set.
    Either way the result is an `Engine`."""
    from .catalog import is_server_url

    if is_server_url(choice):
        from .remote import RemoteEngine

        return RemoteEngine.connect(choice, token=token, model=model, cancel=cancel)
    from .engine import FoiEngine

    return FoiEngine.from_pretrained(choice, device=device, precision=precision, progress=progress)
