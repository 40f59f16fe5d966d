"""From whatever the user opened to the RGB photo the model sees.

`prepare_photo` applies EXIF orientation and converts any mode to 8-bit RGB;
`WorkingFrame` is IP2P's working size and the centre crop that reaches it
(docs/ALGORITHM.md §2 "The photo and the working frame"), so masks and results can be
mapped between the photo and the working frame in both directions."""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import PhotoError
from .inputs import check_regular_file, unreachable

MIN_SIDE = 64

# HEIC/HEIF (every iPhone's default) opens through pillow-heif's Pillow opener, registered once,
# here, where every photo, mask and project photo is decoded: Pillow's own checks (file size,
# pixel limit, damaged data) then hold for it as for JPEG. Thumbnails, depth maps and auxiliary
# images are never used, so never decoded.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


MAX_PHOTO_FILE_BYTES = 1024**3  # a 24 MP 16-bit TIFF is 150 MB


def open_photo(path: str | os.PathLike) -> Image.Image:
    """Read a photo file into memory, refusing what is not a usable image."""
    name = os.path.basename(os.fspath(path))
    check_regular_file(path, "a photo", MAX_PHOTO_FILE_BYTES, PhotoError)
    return _decode(path, name)


def photo_from_bytes(data: bytes, name: str = "The photo", formats=("PNG",)) -> Image.Image:
    """An image sent as bytes (to `foi serve`), through the same limits as a file: its size,
    the decompression-bomb check, and only the formats named (PNG: what clients send)."""
    if len(data) > MAX_PHOTO_FILE_BYTES:
        raise PhotoError(f"{name} is {len(data) / 1024**2:,.0f} MiB, larger than a photo can be "
                         f"(at most {MAX_PHOTO_FILE_BYTES / 1024**2:,.0f} MiB).")
    return _decode(io.BytesIO(data), name, formats)


def too_many_pixels(name: str) -> PhotoError:
    """Pillow's decompression-bomb limit, refused as an error (also for raw pixels from a client)."""
    return PhotoError(f"{name} is too large to open safely (over {Image.MAX_IMAGE_PIXELS:,} pixels): "
                      "scale it down first.")


def _decode(source, name: str, formats=None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as image:
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(name) from None
    except UnidentifiedImageError:
        if formats:
            raise PhotoError(f"{name} is not a {' or '.join(formats)} image.") from None
        raise PhotoError(f"{name} is not an image file FoI Studio can read (try JPEG, PNG, HEIC, TIFF or WebP).") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = unreachable(error, name, "a photo") if isinstance(error, OSError) else None
        raise PhotoError(reason or f"{name} is damaged or incomplete and cannot be read ({error}).") from None
    return image


@dataclass(frozen=True)
class PhotoMetadata:
    """What a full-resolution export carries over from the photo's file.

    format: Pillow's name for the file's format ("JPEG", "PNG", "HEIF"…), None for a pasted
    picture; exif: the file's EXIF without its Orientation (the photo is turned upright when
    opened, so a viewer must not turn it again) and without its thumbnail (of the unedited
    photo); icc_profile: the file's colour profile when it describes RGB (the photo is RGB once
    opened: a grey or CMYK profile would misdescribe it)."""

    format: str | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None

    @classmethod
    def of(cls, image: Image.Image) -> "PhotoMetadata":
        """From an image as `open_photo` returns it (before `prepare_photo`)."""
        icc = image.info.get("icc_profile")
        rgb_icc = icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " else None
        return cls(image.format, _upright_exif(image.info.get("exif")), rgb_icc)


def _upright_exif(raw) -> bytes | None:
    """The EXIF block written again without Orientation (Pillow writes no thumbnail). A block
    Pillow cannot read is left out: it must not stop the photo from opening."""
    if not raw:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data": what cannot be read is left out
            exif = Image.Exif()
            exif.load(raw)
            exif.pop(ExifTags.Base.Orientation, None)
            return exif.tobytes() if len(exif) else None
    except Exception:  # noqa: BLE001 - PIL raises many kinds on damaged EXIF
        return None


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, whatever the mode: grey, palette, CMYK, 16-bit, float.
    Transparency is composited over white, so hidden pixels never show."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def mask_levels(image: Image.Image) -> Image.Image:
    """A mask file's image as 8-bit grey ('L'): its alpha if it is transparent somewhere,
    else its grey levels, 16-bit scaled (not clipped: 50 % grey is 0.5 at any depth)."""
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return alpha
    return to_rgb(image).convert("L")


def prepare_photo(image: Image.Image) -> Image.Image:
    """EXIF orientation applied, then RGB. Never changes the caller's image."""
    if not isinstance(image, Image.Image):
        raise PhotoError(f"Expected a picture, got {type(image).__name__}.")
    oriented = ImageOps.exif_transpose(image)
    rgb = to_rgb(oriented)
    if min(rgb.size) < MIN_SIDE:
        raise PhotoError(
            f"The photo is {rgb.width}×{rgb.height} pixels; each side needs at least {MIN_SIDE}: "
            "use a larger photo."
        )
    return rgb


MAX_ASPECT = 8  # a panorama of 8:1 still works at 512×64; longer strips are refused


def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """IP2P's rule (edit_cli.py), in Python floats exactly as written there."""
    factor = resolution / max(width, height)
    factor = math.ceil(min(width, height) * factor / 64) * 64 / min(width, height)
    new_width = int((width * factor) // 64) * 64
    new_height = int((height * factor) // 64) * 64
    return new_width, new_height


def fit_box(source: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, float, float]:
    """The crop box (in source pixels) that `ImageOps.fit(source, target)` resizes from."""
    width, height = source
    source_ratio = width / height
    target_ratio = target[0] / target[1]
    if source_ratio == target_ratio:
        crop_width, crop_height = width, height
    elif source_ratio >= target_ratio:
        crop_width, crop_height = target_ratio * height, height
    else:
        crop_width, crop_height = width, width / target_ratio
    left = (width - crop_width) * 0.5
    top = (height - crop_height) * 0.5
    return (left, top, left + crop_width, top + crop_height)


@dataclass(frozen=True)
class WorkingFrame:
    """Where the working image sits in the (oriented) photo."""

    photo_size: tuple[int, int]  # (w, h) of the photo after EXIF rotation
    size: tuple[int, int]  # (w', h') the model works at

    @classmethod
    def for_photo(cls, photo_size: tuple[int, int], resolution: int) -> "WorkingFrame":
        """Refuses shapes the model cannot serve: IP2P's rule keeps the short side at least
        64 px, so a 64×30000 strip would be worked on at full length (a huge, slow run)."""
        width, height = photo_size
        if max(width, height) > MAX_ASPECT * min(width, height):
            raise PhotoError(f"The photo is {width}×{height} pixels, more than {MAX_ASPECT} times longer one way "
                             f"than the other: crop it to at most {MAX_ASPECT}:1 first.")
        return cls(tuple(photo_size), working_size(*photo_size, resolution))

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The part of the photo the working image shows (float photo pixels)."""
        return fit_box(self.photo_size, self.size)

    @property
    def pixel_box(self) -> tuple[int, int, int, int]:
        """`box` rounded to whole photo pixels, for pasting back."""
        return tuple(int(round(v)) for v in self.box)

    def fit(self, image: Image.Image, method=Image.Resampling.LANCZOS) -> Image.Image:
        """Bring a photo-sized image to the working frame (no resampling when sizes match)."""
        return ImageOps.fit(image, self.size, method=method)
