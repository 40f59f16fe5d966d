"""The run settings as command-line options, one definition for `foi edit`/`foi locate` and
`foi eval`. An option left out stays None on the parsed arguments: the model's own setting
(a bundled model's foi_settings.json) applies, else the paper's."""

from __future__ import annotations

from .settings import EditSettings

# What each option sets; its help names EditSettings' default.
OPTIONS = {
    "steps": (int, "denoising steps"),
    "strength": (float, "how much of the photo is re-imagined, (0, 1]"),
    "image_guidance": (float, "s_I: faithfulness to the photo"),
    "text_guidance": (float, "s_T: faithfulness to the text"),
    "resolution": (int, "working size of the long side"),
    "gamma": (int, "γ: how sharply a region's edge is drawn, eq. 2"),
    "grounding_factor": (int, "read regions from the attention layers this many times smaller than the latent"),
}


def add_options(parser, names=tuple(OPTIONS)) -> None:
    """--steps, --strength, --image-guidance… for the settings named."""
    defaults = EditSettings()
    for name in names:
        kind, text = OPTIONS[name]
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=f"{text} (default {getattr(defaults, name)})")


def given(args, names=tuple(OPTIONS)) -> dict:
    """The settings the command line set (of those named)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
