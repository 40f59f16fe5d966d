"""`foi`: FoI from the terminal.

    foi edit PHOTO -i "make the sky a sunset" -k sky -i "put a hat on him" -k hat -o out.png
    foi locate PHOTO -i "make the sky a sunset" -k sky --masks-dir masks/
    foi serve --host 0.0.0.0 --device cuda:0 --device cuda:1      (docs/SERVER.md)
    foi edit PHOTO -i "make it winter" -o out.png --server https://gpu-box:8765 --token …

-k, -a and -t belong to the -i before them; without -k an instruction acts on the whole image."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from . import setting_options, threads
from .process import end_process
from .catalog import DEFAULT_MODEL, TINY_RANDOM, model_settings
from .errors import Cancelled, FoiError, report
from .settings import check_mask_count
from .evaluation.cli import add_parser as add_eval_parsers

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
LAYERED_SUFFIXES = {".ora", ".psd"}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """A bad option is one `foi:` line saying what to fix, not the whole usage block."""

    def error(self, message):
        self.exit(2, f"foi: {message} (see {self.prog} --help)\n")


class _InstructionPart(argparse.Action):
    """-i opens a new instruction; -k/-a/-t fill in the latest one."""

    def __call__(self, parser, namespace, value, option_string=None):
        items = getattr(namespace, "instructions", None) or []
        part = self.dest.removeprefix("instruction_")
        if part == "text":
            items.append({"text": value})
        elif not items:
            parser.error(f"{option_string} must follow the -i instruction it belongs to")
        elif part in items[-1]:
            parser.error(f"{option_string} given twice for the instruction \"{items[-1]['text']}\"")
        else:
            items[-1][part] = value
        namespace.instructions = items


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photo", help="the photo to edit (it is never changed)")
    parser.add_argument("-i", "--instruction", dest="instruction_text", action=_InstructionPart, metavar="TEXT",
                        help="an instruction; repeat for several (up to 6)")
    parser.add_argument("-k", "--keyword", dest="instruction_keyword", action=_InstructionPart, metavar="WORD",
                        help="the word of the instruction that names where it acts")
    parser.add_argument("-a", "--alpha", dest="instruction_strength", action=_InstructionPart, type=float, metavar="A",
                        help="the instruction's strength α (default 1)")
    parser.add_argument("-t", "--threshold", dest="instruction_threshold", action=_InstructionPart, type=float, metavar="T",
                        help="the instruction's mask threshold τ in [0,1] (default: drawn from 0.4–0.7)")
    parser.add_argument("--seed", type=int, default=0)
    setting_options.add_options(parser)
    parser.add_argument("--model", default=None,
                        help=f"hub id or local folder (default {DEFAULT_MODEL}); 'shapes' for the built-in demo model of "
                             f"coloured shapes; '{TINY_RANDOM}' for a test model; with --server, a name from the "
                             "server's list (default: its first)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the fastest available)")
    parser.add_argument("--precision", default=None, choices=("auto", "float32", "float16"),
                        help="auto (the default): float16 on CUDA, float32 elsewhere")
    parser.add_argument("--masks-dir", type=Path, help="also write each instruction's mask and heat-map here")
    parser.add_argument("--server", metavar="URL",
                        help="run on a FoI Studio server (`foi serve`) at this http:// or https:// address; the "
                             "files are written here as a local run writes them")
    parser.add_argument("--token", help="the server's token (default: the FOI_TOKEN variable)")
    threads.add_option(parser)
    parser.set_defaults(instructions=None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="foi", description="Edit photos with instructions, each where it belongs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    edit = commands.add_parser("edit", help="edit a photo", description="Edit a photo with instructions.")
    _add_common(edit)
    edit.add_argument("-o", "--output", type=Path, required=True,
                      help="the result: .png/.jpg/.webp/.tif, or layered .ora/.psd")
    edit.add_argument("--masks", nargs="+", type=Path, metavar="MASK",
                      help="edit with these masks (one PNG per instruction) instead of finding regions")
    edit.add_argument("--full-resolution", action="store_true",
                      help="write the edit pasted into the photo at its full size (unmasked pixels stay original)")
    edit.add_argument("--no-focus", dest="focus", action="store_false",
                      help="plain InstructPix2Pix: no regions, the instructions act everywhere")
    edit.set_defaults(run=run_edit)
    locate = commands.add_parser("locate", help="find where each instruction acts",
                                 description="Write each instruction's mask and heat-map, without editing.")
    _add_common(locate)
    locate.set_defaults(run=run_locate, focus=True)
    _add_serve(commands)
    add_eval_parsers(commands)
    return parser


def _add_serve(commands) -> None:
    serve = commands.add_parser(
        "serve", help="serve models to other computers (HTTP + WebSocket)",
        description="Run FoI Studio's engines as a server for `foi edit --server` and the editor. It listens on "
                    "127.0.0.1 unless --host says otherwise; any other address needs a token. See docs/SERVER.md.")
    serve.add_argument("--model", action="append", metavar="MODEL",
                       help=f"a model to offer (hub id, local folder, 'shapes', '{TINY_RANDOM}'); repeat for several, "
                            f"the first is the default (default {DEFAULT_MODEL})")
    serve.add_argument("--device", action="append", metavar="DEVICE",
                       help="a device to run on, with its own engine: repeat for several (--device cuda:0 "
                            "--device cuda:1); jobs go to the first free one (default: the fastest available)")
    serve.add_argument("--precision", default="auto", choices=("auto", "float32", "float16"),
                       help="auto: float16 on CUDA, float32 elsewhere")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1: this computer only; 0.0.0.0: every "
                            "network, which needs a token)")
    serve.add_argument("--port", type=int, default=8765, help="the port (default 8765; 0: any free one, printed)")
    serve.add_argument("--token", action="append", metavar="TOKEN",
                       help="the token clients must give; repeat to give each person their own (default: the "
                            "FOI_TOKEN variable; on an address other than 127.0.0.1 one is made and printed)")
    serve.add_argument("--ssl-certfile", type=Path, metavar="PEM", help="TLS certificate (with --ssl-keyfile): https")
    serve.add_argument("--ssl-keyfile", type=Path, metavar="PEM", help="TLS private key")
    serve.add_argument("--max-upload-mb", type=float, default=128,
                       help="the largest request (photo and masks, as sent) in MiB (default 128)")
    serve.add_argument("--max-queued", type=int, default=8, help="jobs one client may have waiting (default 8)")
    serve.add_argument("--keep-results", type=int, default=32,
                       help="finished jobs whose results are kept for their clients to fetch (default 32)")
    serve.add_argument("--keep-minutes", type=float, default=30,
                       help="how long a finished job's result is kept (default 30)")
    threads.add_option(serve)
    serve.set_defaults(run=run_serve)


def run_serve(args) -> int:
    import math

    from .inputs import check_regular_file

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 (any free port) to 65535, not {args.port}")
    for name in ("max_upload_mb", "keep_minutes"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a number above 0, not {value}")
    for name in ("max_queued", "keep_results"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    for path in (args.ssl_certfile, args.ssl_keyfile):
        if path is not None:
            check_regular_file(path, "a PEM file", 1024**2, UsageError)
    args.model = args.model or [DEFAULT_MODEL]
    try:
        from .server import serve  # FastAPI and uvicorn load only here
    except ImportError as error:
        raise UsageError(f"foi serve needs the server's libraries ({error.name} is missing): "
                         "pip install 'foi-studio[server]'") from None

    return serve(args)


def _settings(args, defaults: dict):
    from .settings import EditSettings

    return EditSettings(**{**defaults, **setting_options.given(args), "focus": args.focus})


def _request(args):
    """The instructions, the photo and (for a local run) the settings, all checked before any
    model loads or any byte goes to a server. With --server the settings wait for the
    server's model settings (`_connect`)."""
    from .prompt import find_keyword
    from .settings import Instruction

    if not args.instructions:
        raise UsageError("give at least one instruction with -i")
    if args.server and (args.device is not None or args.precision is not None):
        raise UsageError("--device and --precision choose this computer's device; with --server the server's "
                         "own devices run the model")
    if not args.server and args.token:
        raise UsageError("--token goes with --server")
    instructions = [Instruction(item["text"], item.get("keyword"), item.get("strength", 1.0), item.get("threshold"))
                    for item in args.instructions]
    for instruction in instructions:  # before the (slow) model load
        find_keyword(instruction)
    settings = None if args.server else _settings(args, model_settings(args.model or DEFAULT_MODEL))
    from .photo import WorkingFrame, open_photo  # numpy and PIL: not for a mistyped option

    photo = open_photo(args.photo)
    if settings is not None:
        WorkingFrame.for_photo(photo.size, settings.resolution)  # an unusable shape is refused before the model loads
    return photo, instructions, settings


def _connect(args, photo):
    """The server's engine and the settings (the server's model's own, then the options);
    run after every local check, before the job is sent."""
    from .catalog import is_server_url
    from .photo import WorkingFrame
    from .remote import RemoteEngine, plain_http_warning

    if not is_server_url(args.server):
        raise UsageError(f"--server takes an http:// or https:// address, not {args.server!r}")
    token = args.token or os.environ.get("FOI_TOKEN", "").strip() or None
    warning = plain_http_warning(args.server, token)
    if warning:
        print(f"foi: {warning}", file=sys.stderr)
    engine = RemoteEngine.connect(args.server, token=token, model=args.model)
    settings = _settings(args, engine.model_settings())
    width, height = WorkingFrame.for_photo(photo.size, settings.resolution).size
    info = engine.info()
    print(f"The photo is {photo.width}×{photo.height} pixels; the model works on {width}×{height}.", file=sys.stderr)
    print(f"Sending it to {info.model_name} on {info.device} at {args.server}…", file=sys.stderr)
    return engine, settings


def _check_output(path: Path) -> None:
    if path.suffix.lower() not in IMAGE_SUFFIXES | LAYERED_SUFFIXES:
        raise UsageError(f"cannot write {path.name}: end the name with .png, .jpg, .webp, .tif, .ora or .psd")
    if not path.parent.resolve().is_dir():
        raise UsageError(f"the folder {path.parent} does not exist: create it first")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:
        return False


def _check_writes(outputs: list[Path], photo: Path, masks=()) -> None:
    """Every file this run will write, checked before it runs: none may be one of its
    inputs (the photo, a mask) or another of its outputs, and each one's folder must be
    writable."""
    inputs = [(photo, "the photo itself")] + [(Path(mask), f"the mask {mask}") for mask in masks]
    for n, path in enumerate(outputs):
        for source, what in inputs:
            if _same_file(path, source):
                raise UsageError(f"{path} would replace {what}: choose another name or folder")
        for other in outputs[:n]:
            if _same_file(path, other):
                raise UsageError(f"this run would write {path} twice (as the result and as a mask, or as two "
                                 "masks): choose another name or folder")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # a folder still to be created: its nearest existing parent
        if not folder.is_dir():
            raise UsageError(f"{folder} is a file, not a folder: choose another folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write into {folder}: choose a folder you may write to")


def _load_engine(args, photo, settings):
    from .engine import FoiEngine
    from .photo import WorkingFrame

    width, height = WorkingFrame.for_photo(photo.size, settings.resolution).size
    print(f"The photo is {photo.width}×{photo.height} pixels; the model works on {width}×{height}.", file=sys.stderr)
    model = args.model or DEFAULT_MODEL
    print(f"Loading the model {model}…", file=sys.stderr)
    return FoiEngine.from_pretrained(model, device=args.device, precision=args.precision or "auto",
                          progress=_download_progress())


def _download_progress():
    """A terminal bar for the one-time model download (bytes)."""
    from tqdm import tqdm

    bar = None

    def progress(done, total, text):
        nonlocal bar
        if not total:
            return
        if bar is None:
            bar = tqdm(total=total, desc=text, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        bar.total = total
        bar.update(done - bar.n)

    return progress


def _progress(total_text: str):
    from tqdm import tqdm

    bar = None

    def on_step(i, total, preview):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=total_text, unit="step", file=sys.stderr, leave=False)
        bar.update(1)
        if i + 1 == total:
            bar.close()

    return on_step


def _read_masks(paths):
    import numpy as np

    from .mask_values import levels_as_mask
    from .photo import mask_levels, open_photo

    return [levels_as_mask(np.asarray(mask_levels(open_photo(path)))) for path in paths]


def run_edit(args) -> int:
    _check_output(args.output)
    photo, instructions, settings = _request(args)
    planned = [args.output] + (mask_paths(args.masks_dir, instructions) if args.masks_dir else [])
    _check_writes(planned, Path(args.photo), args.masks or ())
    masks = _read_masks(args.masks) if args.masks else None
    if masks is not None:
        check_mask_count(len(masks), instructions)  # before any model loads
    if args.server:
        engine, settings = _connect(args, photo)
    else:
        engine = _load_engine(args, photo, settings)
    result = engine.edit(photo, instructions, settings, seed=args.seed, masks=masks, on_step=_progress("Editing"))
    _write_result(args, photo, result)
    if args.masks_dir and result.grounding is not None:
        write_masks(args.masks_dir, result.grounding)
    label = " (random weights: the image is noise)" if result.random_weights else ""
    print(f"Wrote {args.output}{label}")
    return 0


def run_locate(args) -> int:
    if args.masks_dir is None:
        raise UsageError("say where to write the masks with --masks-dir")
    photo, instructions, settings = _request(args)
    _check_writes(mask_paths(args.masks_dir, instructions), Path(args.photo))
    if args.server:
        engine, settings = _connect(args, photo)
    else:
        engine = _load_engine(args, photo, settings)
    grounding = engine.locate(photo, instructions, settings, seed=args.seed)
    for path in write_masks(args.masks_dir, grounding):
        print(f"Wrote {path}")
    return 0


def save_image(path: Path, image) -> None:
    """Write a plain image atomically, in the format its name asks for."""
    from PIL import Image

    from .atomic import atomic_write

    image_format = Image.registered_extensions()[path.suffix.lower()]
    options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
    with atomic_write(path) as stream:
        image.save(stream, format=image_format, **options)


def _write_result(args, photo, result) -> None:
    """Layered files and the full-resolution composite at the photo's size; plain images as
    the model made them, at the working size."""
    import dataclasses

    import numpy as np

    from . import layered
    from .photo import PhotoMetadata, prepare_photo

    kind = args.output.suffix.lower().lstrip(".")
    if kind not in ("ora", "psd") and not args.full_resolution:
        save_image(args.output, result.image)
        return
    if result.masks is None:  # focus off: every instruction acted on the whole image
        whole = np.ones(result.frame.size[::-1], dtype=np.float32)
        result = dataclasses.replace(result, masks=[whole] * len(result.instructions))
    edit = layered.edit_from_result(prepare_photo(photo), result, result.model_name, source=PhotoMetadata.of(photo))
    layered.write_layered(args.output, kind if kind in ("ora", "psd") else "full", edit)


def heat_map(values):
    """A float map in [0,1] as a dark-blue → red → yellow image."""
    import numpy as np
    from PIL import Image

    anchors = np.array([[0, 0, 64], [32, 0, 160], [200, 30, 60], [255, 140, 0], [255, 255, 160]], dtype=float)
    position = np.clip(values, 0, 1) * (len(anchors) - 1)
    low = np.floor(position).astype(int).clip(0, len(anchors) - 2)
    weight = (position - low)[..., None]
    colours = anchors[low] * (1 - weight) + anchors[low + 1] * weight
    return Image.fromarray(colours.round().astype(np.uint8), "RGB")


def mask_paths(folder: Path, instructions) -> list[Path]:
    """The files write_masks writes for these instructions: each one's mask, then heat-map."""
    from .layered import file_slug

    return [folder / f"{i + 1}-{file_slug(instruction.text, 'instruction')}-{suffix}.png"
            for i, instruction in enumerate(instructions) for suffix in ("mask", "heatmap")]


def write_masks(folder: Path, grounding) -> list[Path]:
    """Each instruction's mask and heat-map, at the working size, as PNGs."""
    from PIL import Image

    from .mask_values import as_levels

    folder.mkdir(parents=True, exist_ok=True)
    paths = iter(mask_paths(folder, grounding.instructions))
    size = grounding.frame.size
    for mask, values in zip(grounding.masks, grounding.maps):
        save_image(next(paths), Image.fromarray(as_levels(mask), "L").resize(size, Image.Resampling.NEAREST))
        save_image(next(paths), heat_map(values).resize(size, Image.Resampling.NEAREST))
    return mask_paths(folder, grounding.instructions)


def _stop(signum, frame):
    raise KeyboardInterrupt  # a kill is a Ctrl+C: half-written outputs are removed on the way out


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        threads.apply(getattr(args, "threads", 0))  # before anything imports torch
        return args.run(args)
    except UsageError as error:
        parser.exit(2, f"foi: {error}\n")
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM: files being written are left as they were
        print("foi: stopped.", file=sys.stderr)
        return Cancelled.exit_code
    except (FoiError, OSError, MemoryError) as error:
        shown = report(error)
        print(f"foi: {shown.message}", file=sys.stderr)
        return shown.exit_code
    finally:
        signal.signal(signal.SIGTERM, previous)


def console() -> NoReturn:
    """The `foi` command: main(), then exit without the interpreter's teardown (process.py)."""
    end_process(main())


if __name__ == "__main__":
    console()
