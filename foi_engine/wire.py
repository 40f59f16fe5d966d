"""What `foi serve` and its clients send each other: JSON, with pictures as base64 PNG or raw
RGB and float maps as base64 little-endian float32. Nothing else: no pickles, no file names, no code.

Both sides use these functions, so a request or a result means the same thing on both; every
decoder checks what it reads (types, sizes, ranges) as if it came from a stranger, because on
the server it does. No torch and no web framework here.

Arrays (masks, grounding maps) travel as one of:
  {"dtype": "bool",    "encoding": "png", "data": …}  8-bit grey PNG, 0 or 255
  {"dtype": "float32", "encoding": "png", "data": …}  8-bit grey PNG, value = level / 255
                                                       (used when that is exact: painted masks)
  {"dtype": "float32", "encoding": "raw", "shape": [h, w], "data": …}  little-endian float32
so every mask and map arrives bit for bit as it left.

Pictures (the photo, an edit's result) travel as base64 PNG text, or as
  {"encoding": "raw", "size": [w, h], "data": …}  8-bit RGB rows, top to bottom
Raw takes 2–4 times a photo's PNG bytes but almost no time (a 4 MP photo: 18 ms, against PNG's
230 ms to encode and 120 ms to decode), so clients send and ask for it where bytes are free:
from a server on their own computer."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import ENGINE_ERRORS, FoiError, InstructionError, MaskError, SettingsError
from .mask_values import as_mask
from .photo import WorkingFrame, photo_from_bytes, prepare_photo, too_many_pixels
from .settings import MAX_INSTRUCTIONS, MAX_SEED, EditSettings, Instruction, check_mask_count, check_request

API_VERSION = 1  # the /v1 routes; a server and a client of different API versions refuse each other
KINDS = ("edit", "locate")
MAX_ARRAY_CELLS = Image.MAX_IMAGE_PIXELS  # a mask or map holds no more cells than a photo may have pixels
# The errors a server may name in an answer; a client raises the same class with the server's text.
ERROR_KINDS = {cls.__name__: cls for cls in ENGINE_ERRORS}


class WireError(FoiError):
    """A request or answer that is not what the protocol says (a bug or a stranger, not a person)."""

    title = "The server and this program do not understand each other"


@dataclass(frozen=True)
class JobRequest:
    """One locate or edit, decoded and checked: what a server queues."""

    kind: str  # "edit" or "locate"
    model: str | None  # a name from the server's list; None: its first
    photo: Image.Image
    instructions: tuple[Instruction, ...]
    settings: EditSettings
    seed: int
    masks: list[np.ndarray] | None = None
    raw_result: bool = False  # the result's picture as raw RGB (the client asked), else PNG


# -- pictures and arrays -------------------------------------------------------------------
# How a photo may travel and its result come back; a server lists these in GET /v1/info (one
# from before "raw" lists none, and a client then sends PNG).
PICTURE_ENCODINGS = ("png", "raw")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text, what: str) -> bytes:
    if not isinstance(text, str):
        raise WireError(f"{what} must be base64 text.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{what} is not valid base64.") from None


def png(image: Image.Image, compress_level: int = 1) -> str:
    """An image as base64 PNG (level 1: a large photo encodes in a fraction of a second)."""
    stream = io.BytesIO()
    image.save(stream, format="PNG", compress_level=compress_level)
    return _b64(stream.getvalue())


def image_from_png(text, what: str, mode: str | tuple[str, ...] = "RGB") -> Image.Image:
    """A base64 PNG, decoded with the photo's own limits (size, decompression bomb)."""
    image = photo_from_bytes(_unb64(text, what), what)
    modes = (mode,) if isinstance(mode, str) else mode
    if image.mode not in modes:
        raise WireError(f"{what} must be a PNG of mode {' or '.join(modes)}, not {image.mode}.")
    return image


def picture_to_json(image: Image.Image, raw: bool) -> str | dict:
    """An RGB picture as base64 PNG text, or raw (see the top of this file)."""
    if not raw:
        return png(image)
    if image.mode != "RGB":
        raise WireError(f"Only RGB pictures travel raw, not {image.mode}.")
    return {"encoding": "raw", "size": list(image.size), "data": _b64(image.tobytes())}


def picture_from_json(value, what: str) -> Image.Image:
    """An RGB picture either way, within the photo's limits: a PNG through its decoder's, raw
    pixels counted against the same limit and their length checked before anything is decoded."""
    if isinstance(value, str):
        return image_from_png(value, what)
    if not isinstance(value, dict) or set(value) != {"encoding", "size", "data"} or value["encoding"] != "raw":
        raise WireError(f"{what} must be base64 PNG text or a raw picture (encoding \"raw\", size, data).")
    if not _is_dimensions(value["size"]):
        raise WireError(f"{what} has an impossible size {value['size']!r}.")
    width, height = value["size"]
    if width * height > Image.MAX_IMAGE_PIXELS:
        raise too_many_pixels(what)
    data, length = value["data"], width * height * 3
    if not isinstance(data, str) or len(data) != 4 * -(-length // 3):  # base64's length, padding included
        raise WireError(f"{what} must be {length} bytes of RGB as base64, as its size {width}×{height} says.")
    pixels = _unb64(data, what)
    if len(pixels) != length:  # the right length of text, but padded short
        raise WireError(f"{what} holds {len(pixels)} bytes, not the {length} its size needs.")
    return Image.frombytes("RGB", (width, height), pixels)


def _is_dimensions(value) -> bool:
    """Two whole numbers of at least 1 (a picture's size, an array's shape)."""
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value))


def array_to_json(array: np.ndarray) -> dict:
    array = np.asarray(array)
    if array.ndim != 2:
        raise WireError(f"Only 2-D arrays travel, not shape {array.shape}.")
    if array.dtype == bool:
        return {"dtype": "bool", "encoding": "png", "data": png(Image.fromarray(array.astype(np.uint8) * 255, "L"))}
    values = array.astype(np.float32)
    levels = np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)
    if np.array_equal(levels.astype(np.float32) / np.float32(255), values):
        return {"dtype": "float32", "encoding": "png", "data": png(Image.fromarray(levels, "L"))}
    return {"dtype": "float32", "encoding": "raw", "shape": list(values.shape),
            "data": _b64(values.astype("<f4").tobytes())}


def array_from_json(value, what: str) -> np.ndarray:
    if not isinstance(value, dict) or set(value) - {"dtype", "encoding", "shape", "data"}:
        raise WireError(f"{what} must be an array object (dtype, encoding, data).")
    dtype, encoding = value.get("dtype"), value.get("encoding")
    if dtype not in ("bool", "float32") or encoding not in ("png", "raw") or (dtype, encoding) == ("bool", "raw"):
        raise WireError(f"{what} has an unknown dtype or encoding ({dtype!r}, {encoding!r}).")
    if encoding == "png":
        levels = np.asarray(image_from_png(value.get("data"), what, "L"))
        return levels >= 128 if dtype == "bool" else levels.astype(np.float32) / np.float32(255)
    shape = value.get("shape")
    if not _is_dimensions(shape) or shape[0] * shape[1] > MAX_ARRAY_CELLS:
        raise WireError(f"{what} has an impossible shape {shape!r}.")
    data = _unb64(value.get("data"), what)
    if len(data) != shape[0] * shape[1] * 4:
        raise WireError(f"{what} holds {len(data)} bytes, not the {shape[0] * shape[1] * 4} its shape needs.")
    return np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(shape)


# -- requests ------------------------------------------------------------------------------
def instruction_to_json(instruction: Instruction) -> dict:
    return dataclasses.asdict(instruction)


def instruction_from_json(value) -> Instruction:
    if not isinstance(value, dict) or "text" not in value or set(value) - {"text", "keyword", "strength", "threshold"}:
        raise WireError("An instruction must be an object with text, and optionally keyword, strength, threshold.")
    return Instruction(value["text"], value.get("keyword"), value.get("strength", 1.0), value.get("threshold"))


def settings_to_json(settings: EditSettings) -> dict:
    return dataclasses.asdict(settings)


def settings_from_json(value) -> EditSettings:
    """Every field through EditSettings' own checks (RANGES); unknown names are refused."""
    known = {field.name for field in dataclasses.fields(EditSettings)}
    if not isinstance(value, dict):
        raise SettingsError("The settings must be an object of named values.")
    unknown = sorted(set(value) - known)
    if unknown:
        raise SettingsError(f"Unknown settings: {', '.join(map(str, unknown))}; known are {', '.join(sorted(known))}.")
    return EditSettings(**value)


def frame_to_json(frame: WorkingFrame) -> dict:
    return {"photo_size": list(frame.photo_size), "size": list(frame.size)}


def frame_from_json(value) -> WorkingFrame:
    try:
        photo_size, size = tuple(value["photo_size"]), tuple(value["size"])
        if not all(isinstance(n, int) and n > 0 for n in photo_size + size) or len(photo_size + size) != 4:
            raise ValueError
    except (TypeError, KeyError, ValueError):
        raise WireError("A working frame must name photo_size and size as two positive whole numbers each.") from None
    return WorkingFrame(photo_size, size)


def request_to_json(kind: str, image: Image.Image, instructions, settings: EditSettings, seed: int,
                    masks=None, model: str | None = None, raw: bool = False) -> dict:
    """What a client sends: checked here first, with the same rules the engine applies, so a
    request the engine would refuse is refused before a byte goes out. raw: the photo goes, and
    the result's picture comes back, as raw RGB instead of PNG."""
    instructions = check_request(instructions, settings, seed)
    photo = prepare_photo(image)  # orientation applied and RGB: the engine's first step, made here
    WorkingFrame.for_photo(photo.size, settings.resolution)
    body = {"kind": kind, "model": model, "photo": picture_to_json(photo, raw),
            "instructions": [instruction_to_json(i) for i in instructions],
            "settings": settings_to_json(settings), "seed": int(seed), "masks": None}
    if raw:  # only then: a server from before raw pictures refuses fields it does not know
        body["result_encoding"] = "raw"
    if masks is not None:
        check_mask_count(len(masks), instructions)
        body["masks"] = [array_to_json(as_mask(mask, i)) for i, mask in enumerate(masks)]
    return body


def request_from_json(body) -> JobRequest:
    """A server's reading of a job: everything checked before it is queued."""
    if not isinstance(body, dict):
        raise WireError("A job must be a JSON object.")
    unknown = set(body) - {"kind", "model", "photo", "instructions", "settings", "seed", "masks", "result_encoding"}
    if unknown:
        raise WireError(f"A job does not have the fields {', '.join(sorted(unknown))}.")
    kind = body.get("kind")
    if kind not in KINDS:
        raise WireError(f"A job's kind is edit or locate, not {kind!r}.")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise WireError("A job's model is a name from the server's list.")
    instructions = body.get("instructions")
    if not isinstance(instructions, list):
        raise InstructionError("Write at least one instruction.")
    if len(instructions) > MAX_INSTRUCTIONS:
        raise InstructionError(f"{len(instructions)} instructions is too many for one edit: use at most "
                               f"{MAX_INSTRUCTIONS}.")
    instructions = [instruction_from_json(item) for item in instructions]
    from .prompt import find_keyword

    for instruction in instructions:
        find_keyword(instruction)
    settings = settings_from_json(body.get("settings") or {})
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SettingsError(f"The seed must be a whole number from 0 to 2⁶³−1, not {seed!r}.")
    instructions = check_request(instructions, settings, seed)
    result_encoding = body.get("result_encoding", "png")
    if result_encoding not in ("png", "raw"):
        raise WireError(f"A job's result_encoding is png or raw, not {result_encoding!r}.")
    photo = picture_from_json(body.get("photo"), "The photo")
    WorkingFrame.for_photo(photo.size, settings.resolution)
    masks = body.get("masks")
    if masks is not None:
        if kind != "edit":
            raise WireError("Only an edit takes masks.")
        check_mask_count(len(masks) if isinstance(masks, list) else 0, instructions)
        masks = [array_from_json(mask, f"Mask {i + 1}") for i, mask in enumerate(masks)]
        for i, mask in enumerate(masks):
            if mask.size > photo.width * photo.height:
                raise MaskError(f"Mask {i + 1} is {mask.shape[1]}×{mask.shape[0]} pixels, larger than the photo: "
                                "use a mask of the photo's size.")
            if mask.dtype != bool and not np.isfinite(mask).all():
                raise MaskError(f"Mask {i + 1} has undefined (NaN or infinite) values: repaint or clear it.")
    return JobRequest(kind, model, photo, tuple(instructions), settings, seed, masks, result_encoding == "raw")


# -- results -------------------------------------------------------------------------------
def _thresholds_to_json(values) -> list:
    return [None if v is None else float(v) for v in values]


def locate_to_json(result) -> dict:
    return {"kind": "locate", "maps": [array_to_json(np.asarray(m, dtype=np.float32)) for m in result.maps],
            "masks": [array_to_json(np.asarray(m, dtype=bool)) for m in result.masks],
            "thresholds": _thresholds_to_json(result.thresholds), "factor": int(result.factor),
            "frame": frame_to_json(result.frame),
            "instructions": [instruction_to_json(i) for i in result.instructions], "seed": int(result.seed)}


def locate_from_json(value):
    from .results import LocateResult

    try:
        maps = [array_from_json(m, "A grounding map") for m in value["maps"]]
        masks = [array_from_json(m, "A grounding mask") for m in value["masks"]]
        thresholds = [None if t is None else float(t) for t in value["thresholds"]]
        return LocateResult(maps, masks, thresholds, int(value["factor"]), frame_from_json(value["frame"]),
                            tuple(instruction_from_json(i) for i in value["instructions"]), int(value["seed"]))
    except (KeyError, TypeError, ValueError) as error:
        raise WireError(f"The server's answer is not a locate result ({error}).") from None


def edit_to_json(result, raw: bool = False) -> dict:
    return {"kind": "edit", "image": picture_to_json(result.image, raw),
            "masks": None if result.masks is None else [array_to_json(np.asarray(m)) for m in result.masks],
            "grounding": None if result.grounding is None else locate_to_json(result.grounding),
            "settings": settings_to_json(result.settings), "seed": int(result.seed),
            "frame": frame_to_json(result.frame),
            "instructions": [instruction_to_json(i) for i in result.instructions],
            "model_name": str(result.model_name), "random_weights": bool(result.random_weights)}


def edit_from_json(value):
    from .results import EditResult

    try:
        frame = frame_from_json(value["frame"])
        image = picture_from_json(value["image"], "The result")
        if image.size != frame.size:
            raise ValueError(f"a {image.width}×{image.height} picture for a {frame.size[0]}×{frame.size[1]} frame")
        masks = value["masks"]
        masks = None if masks is None else [array_from_json(m, "A mask") for m in masks]
        grounding = None if value["grounding"] is None else locate_from_json(value["grounding"])
        return EditResult(image, masks, grounding, settings_from_json(value["settings"]), int(value["seed"]), frame,
                          tuple(instruction_from_json(i) for i in value["instructions"]), str(value["model_name"]),
                          bool(value["random_weights"]))
    except (KeyError, TypeError, ValueError) as error:
        raise WireError(f"The server's answer is not an edit result ({error}).") from None


def result_to_json(result, raw: bool = False) -> dict:
    """raw: an edit's picture as raw RGB (a locate result has none)."""
    from .results import EditResult

    return edit_to_json(result, raw) if isinstance(result, EditResult) else locate_to_json(result)


def result_from_json(value):
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind == "edit":
        return edit_from_json(value)
    if kind == "locate":
        return locate_from_json(value)
    raise WireError("The server's answer is neither an edit nor a locate result.")


def error_from_json(kind, message, default: type[FoiError]) -> FoiError:
    """The error a server named, as the same class here (unknown names: `default`)."""
    text = message if isinstance(message, str) and message else "The server gave no reason."
    return ERROR_KINDS.get(kind, default)(text)

