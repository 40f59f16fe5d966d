"""Layered exports of an edit: OpenRaster (.ora), Photoshop (.psd), PNG with mask PNGs, and the
full-resolution composite. Plain PIL + numpy: no torch, no Qt, so the CLI and the desktop app
share it.

Resolution. Every layered file is written at the PHOTO's full resolution, not at the ~512 px
working size: a person opens it in GIMP, Krita or Photoshop to keep working on their photo, and
a file smaller than the photo would silently throw away its pixels. The original is the bottom
layer, untouched. The model's result only covers the working frame's centre crop, so it is
upscaled (Lanczos) into that crop box and placed there with the layer's x/y offset; outside the
box there is only the original. Masks given at the photo's size are used as they are; masks at
any other size (the engine's grounding or working-size masks) are taken to cover the crop box
and resized bilinearly into it, 0 outside.

Blending. A mask's own alpha is the weight of the result over the photo, so its edge is as
soft as the mask (Feather in the editor softens it); nothing else blurs it. Where the crop box
ends inside the photo (the sides of a photo whose shape the working size does not match), the
result stops and the photo goes on: there every mask fades linearly to 0 over `feather` photo
pixels, so an edit reaching that edge thins out instead of ending in a seam.

Stack, top to bottom:
  one hidden colour layer per mask ("<instruction> — mask", the mask as alpha, 50 % opacity),
  one visible edited-region layer per instruction (named exactly as the instruction: the
  upscaled result with that instruction's blend weight as alpha), the last instruction on top,
  the whole upscaled result, hidden ("FoI result"),
  the original photo ("Original").
So the file opens looking like the edit with every pixel outside the masks the original's.

The result. `composite_full_resolution` is that visible stack flattened (the weights combined as
stacked layers combine them, 1 − Π(1 − aᵢ)); it is the .ora's and the .psd's merged image, the
JPEG/TIFF/WebP export, and what the desktop canvas shows. Pixels where every mask is 0 are the
original's bit for bit.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import struct
import unicodedata
import zipfile
from enum import StrEnum
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image, PngImagePlugin

from .atomic import atomic_write
from .errors import FoiError
from .mask_values import as_levels, levels_as_mask
from .photo import PhotoMetadata, WorkingFrame

class ExportKind(StrEnum):
    """What an export writes (a str, so "ora" given by a script reads the same)."""

    ORA = "ora"  # OpenRaster: layers for GIMP and Krita
    PSD = "psd"  # Photoshop layers
    PNG = "png"  # the result at the working size, plus one mask PNG per instruction
    FULL = "full"  # the full-resolution composite in the photo's format


KINDS = tuple(ExportKind)
ORA_MIMETYPE = b"image/openraster"
THUMBNAIL_SIDE = 256
COLOUR_LAYER_OPACITY = 0.5
# The layers' colours, in order: the editor's tints and the exports' layer colours.
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60))
# PNG level 3 encodes a 24-Mpx layer about three times faster than the default 6, files ~10 % larger.
PNG_LEVEL = 3


class ExportError(FoiError):
    """An export cannot be written (unknown kind, unwritable place); the message says why."""

    title = "Could not export"


@dataclass(frozen=True)
class MaskLayer:
    """One instruction's region: its name (the instruction text), mask and display colour.

    mask: 2-D array; float/bool in [0, 1] or uint8 in 0..255; at the photo's size (after EXIF
    rotation) or any other size covering the working frame's crop box."""

    name: str
    mask: np.ndarray
    color: tuple[int, int, int] = (230, 25, 75)


@dataclass(frozen=True)
class LayeredEdit:
    """Everything a layered export needs, as plain data.

    photo: the oriented 8-bit RGB photo at full resolution (`prepare_photo` output);
    result: the engine's RGB result at the working size (`frame.size`);
    metadata: JSON-able dict (instructions, keywords, strengths, thresholds, settings, seed,
    model, random_weights; see `metadata_for`);
    feather: how far, in photo pixels, every mask fades out towards a crop-box edge that lies
    inside the photo (see the module's "Blending"); None = `default_feather(frame)`;
    source: the photo file's format, EXIF and colour profile, which the full-resolution export keeps."""

    photo: Image.Image
    result: Image.Image
    frame: WorkingFrame
    layers: Sequence[MaskLayer]
    metadata: dict = field(default_factory=dict)
    feather: float | None = None
    source: PhotoMetadata = PhotoMetadata()

    def __post_init__(self):
        if tuple(self.photo.size) != tuple(self.frame.photo_size):
            raise ExportError(f"The photo is {self.photo.size}, the frame expects {self.frame.photo_size}")
        if tuple(self.result.size) != tuple(self.frame.size):
            raise ExportError(f"The result is {self.result.size}, the frame's working size is {self.frame.size}")

    @cached_property
    def _render(self) -> "_Rendered":
        return _Rendered(self)


def default_feather(frame: WorkingFrame) -> float:
    """Four working-size pixels, in photo pixels: a fade the eye takes for a soft edge, short
    enough to keep the edit near the crop box's edge."""
    left, _, right, _ = frame.box
    return 4.0 * (right - left) / frame.size[0]


def metadata_for(instructions, settings, seed: int, model: str, random_weights: bool) -> dict:
    """The metadata dict from engine objects (`Instruction`s and `EditSettings`)."""
    return {
        "software": "FoI Studio",
        "instructions": [i.text for i in instructions],
        "keywords": [i.keyword for i in instructions],
        "strengths": [i.strength for i in instructions],
        "thresholds": [i.threshold for i in instructions],
        "settings": dataclasses.asdict(settings),
        "seed": int(seed),
        "model": model,
        "random_weights": bool(random_weights),
    }


def edit_from_result(photo: Image.Image, result, model: str, colors=None, feather=None,
                     source: PhotoMetadata = PhotoMetadata()) -> LayeredEdit:
    """A LayeredEdit from an engine `EditResult` (used by the CLI): the masks the run used,
    named after its instructions. `photo` is the prepared full-resolution photo."""
    colors = colors or [PALETTE[n % len(PALETTE)] for n in range(len(result.instructions))]
    layers = [
        MaskLayer(instruction.text, mask, tuple(color))
        for instruction, mask, color in zip(result.instructions, result.masks, colors)
    ]
    metadata = metadata_for(result.instructions, result.settings, result.seed, model, result.random_weights)
    return LayeredEdit(photo, result.image, result.frame, layers, metadata, feather, source)


def kind_for_path(path: str | os.PathLike) -> ExportKind:
    """The export kind a file name asks for: .ora, .psd, .png (result + masks); JPEG/TIFF/WebP
    get the full-resolution composite."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    kinds = {".ora": ExportKind.ORA, ".psd": ExportKind.PSD, ".png": ExportKind.PNG, ".jpg": ExportKind.FULL,
             ".jpeg": ExportKind.FULL, ".tif": ExportKind.FULL, ".tiff": ExportKind.FULL, ".webp": ExportKind.FULL}
    if suffix not in kinds:
        raise ExportError(
            f"Cannot tell what to write from {os.path.basename(os.fspath(path))!r}: "
            "use .ora, .psd, .png, .jpg, .tif or .webp."
        )
    return kinds[suffix]


def write_layered(path: str | os.PathLike, kind: ExportKind | str, edit: LayeredEdit) -> list[str]:
    """Write `edit` as `kind` (an ExportKind or its name) to `path`; returns every file written."""
    writers = {ExportKind.ORA: write_ora, ExportKind.PSD: write_psd, ExportKind.PNG: write_png,
               ExportKind.FULL: write_composite}
    if kind not in writers:
        raise ExportError(f"Unknown export kind {kind!r}: choose one of {', '.join(KINDS)}.")
    try:
        written = writers[kind](path, edit)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ExportError(f"Could not write {os.path.basename(os.fspath(path))}: {reason}.") from error
    return written if isinstance(written, list) else [os.fspath(path)]


# ----------------------------------------------------------------------------------------------
# Rendering shared by every format


class _Rendered:
    """The full-resolution pieces of an edit, computed once per LayeredEdit."""

    def __init__(self, edit: LayeredEdit):
        self.edit = edit
        self.box = edit.frame.pixel_box
        left, top, right, bottom = self.box
        self.box_size = (right - left, bottom - top)
        self.feather = default_feather(edit.frame) if edit.feather is None else float(edit.feather)

    @cached_property
    def upscaled(self) -> Image.Image:
        """The result resized into the crop box."""
        result = self.edit.result.convert("RGB")
        if result.size == self.box_size:
            return result
        return result.resize(self.box_size, Image.Resampling.LANCZOS)

    @cached_property
    def alphas(self) -> list[Image.Image]:
        """Each mask as an 'L' image at the photo's size."""
        return [mask_to_photo(layer.mask, self.edit.frame) for layer in self.edit.layers]

    def _edge_ramp(self, start: int, end: int, limit: int) -> np.ndarray:
        """Weights along one side of the box (pixel centres): 1, falling linearly to 0 over
        `feather` pixels towards an end that lies inside the photo (0 < end < limit)."""
        centres = np.arange(end - start, dtype=np.float32) + np.float32(0.5)
        ramp = np.ones(end - start, np.float32)
        if self.feather > 0:
            if start > 0:
                ramp = np.minimum(ramp, centres / np.float32(self.feather))
            if end < limit:
                ramp = np.minimum(ramp, (end - start - centres) / np.float32(self.feather))
        return ramp

    @cached_property
    def ramps(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(down, across) edge weights of the box, or None where nothing fades."""
        left, top, right, bottom = self.box
        width, height = self.edit.photo.size
        down, across = self._edge_ramp(top, bottom, height), self._edge_ramp(left, right, width)
        return None if down.min() == 1 and across.min() == 1 else (down, across)

    def _weight_in_box(self, alpha: Image.Image) -> Image.Image:
        crop = alpha.crop(self.box)
        if self.ramps is None:
            return crop
        down, across = self.ramps
        faded = np.asarray(crop, np.float32) * down[:, None] * across[None, :]
        return Image.fromarray(np.rint(faded).astype(np.uint8), "L")

    @cached_property
    def region_alphas(self) -> list[Image.Image]:
        """Each mask's blend weight inside the crop box (box-sized 'L'): its alpha, faded out
        towards the box's edges inside the photo."""
        return [self._weight_in_box(alpha) for alpha in self.alphas]

    @cached_property
    def union_alpha(self) -> Image.Image:
        """The region alphas combined as their stacked layers combine them, 1 − Π(1 − aᵢ)
        (box-sized 'L'): 0 only where every mask is 0, 255 wherever one is."""
        if len(self.region_alphas) == 1:
            return self.region_alphas[0]
        clear = np.ones(self.box_size[::-1], np.float32)
        for alpha in self.region_alphas:
            clear *= 1 - np.asarray(alpha, np.float32) / np.float32(255)
        return Image.fromarray(np.rint((1 - clear) * 255).astype(np.uint8), "L")

    def region_layer(self, n: int) -> tuple[Image.Image, int, int]:
        """Instruction n's edited region: RGBA trimmed to its alpha, and its x, y."""
        rgba = self.upscaled.copy()
        rgba.putalpha(self.region_alphas[n])
        return _trimmed(rgba, self.box[0], self.box[1])

    def colour_layer(self, n: int) -> tuple[Image.Image, int, int]:
        rgba = Image.new("RGBA", self.edit.photo.size, tuple(self.edit.layers[n].color) + (255,))
        rgba.putalpha(self.alphas[n])
        return _trimmed(rgba, 0, 0)

    @cached_property
    def composite(self) -> Image.Image:
        """The visible stack flattened: the photo with the upscaled result pasted through
        `union_alpha` (see `composite_full_resolution`)."""
        photo = self.edit.photo.copy()
        photo.paste(self.upscaled, self.box[:2], self.union_alpha)
        return photo


def mask_to_photo(mask, frame: WorkingFrame) -> Image.Image:
    """A mask as an 'L' image (0..255) at the photo's size: photo-sized masks as they are,
    others resized bilinearly into the crop box with 0 outside."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ExportError(f"A mask must be a 2-D array, not of shape {array.shape}.")
    width, height = frame.photo_size
    if array.shape == (height, width):
        return Image.fromarray(as_levels(array), "L")
    left, top, right, bottom = frame.pixel_box
    floats = Image.fromarray(levels_as_mask(array), "F")
    inside = floats.resize((right - left, bottom - top), Image.Resampling.BILINEAR)
    photo = Image.new("L", (width, height), 0)
    photo.paste(Image.fromarray(as_levels(np.asarray(inside)), "L"), (left, top))
    return photo


def _trimmed(rgba: Image.Image, x: int, y: int) -> tuple[Image.Image, int, int]:
    """Crop an RGBA layer to its visible pixels (an empty one becomes 1×1 transparent)."""
    bbox = rgba.getchannel("A").getbbox()
    if bbox is None:
        return Image.new("RGBA", (1, 1), (0, 0, 0, 0)), x, y
    return rgba.crop(bbox), x + bbox[0], y + bbox[1]


def composite_full_resolution(edit: LayeredEdit) -> Image.Image:
    """The result, at the photo's size: the original with the upscaled edit blended in through
    the masks (see the module's "Blending"); outside the crop box, and wherever every mask is 0,
    the original's pixels exactly. Made once per LayeredEdit and shared: do not draw on it."""
    return edit._render.composite


# ----------------------------------------------------------------------------------------------
# Writers


def _png_bytes(image: Image.Image, pnginfo=None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=PNG_LEVEL, pnginfo=pnginfo)
    return buffer.getvalue()


def _layer_name(text: str) -> str:
    """An instruction as a layer name: control characters (which XML cannot hold, and which
    the editor's text field can be pasted) become spaces."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)


def _layer_stack(edit: LayeredEdit):
    """(name, rgba-or-rgb image, x, y, visible, opacity) from top to bottom."""
    render = edit._render
    stack = []
    for n in reversed(range(len(edit.layers))):
        image, x, y = render.colour_layer(n)
        stack.append((f"{_layer_name(edit.layers[n].name)} — mask", image, x, y, False, COLOUR_LAYER_OPACITY))
    for n in reversed(range(len(edit.layers))):
        image, x, y = render.region_layer(n)
        stack.append((_layer_name(edit.layers[n].name), image, x, y, True, 1.0))
    stack.append(("FoI result", render.upscaled, render.box[0], render.box[1], False, 1.0))
    stack.append(("Original", edit.photo, 0, 0, True, 1.0))
    return stack


def write_ora(path: str | os.PathLike, edit: LayeredEdit) -> None:
    """OpenRaster: `mimetype` first and stored, stack.xml, one PNG per layer under data/,
    mergedimage.png and Thumbnails/thumbnail.png; FoI's metadata in foi/metadata.json."""
    width, height = edit.photo.size
    xml_lines, members = [], []
    for n, (name, image, x, y, visible, opacity) in enumerate(_layer_stack(edit)):
        source = f"data/layer{n:03d}.png"
        xml_lines.append(
            f"  <layer src={quoteattr(source)} name={quoteattr(name)} x=\"{x}\" y=\"{y}\" "
            f"visibility=\"{'visible' if visible else 'hidden'}\" opacity=\"{opacity:.3f}\" "
            f"composite-op=\"svg:src-over\"/>"
        )
        members.append((source, image))
    stack_xml = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f"<image version=\"0.0.5\" w=\"{width}\" h=\"{height}\" xres=\"72\" yres=\"72\">\n"
        " <stack>\n" + "\n".join(xml_lines) + "\n </stack>\n</image>\n"
    )
    merged = composite_full_resolution(edit)
    thumbnail = merged.copy()
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    with atomic_write(path) as stream, zipfile.ZipFile(stream, "w") as archive:
        mimetype = zipfile.ZipInfo("mimetype")
        mimetype.compress_type = zipfile.ZIP_STORED
        archive.writestr(mimetype, ORA_MIMETYPE)
        archive.writestr("stack.xml", stack_xml, compress_type=zipfile.ZIP_DEFLATED)
        # PNG is already compressed: store it rather than deflate it a second time.
        for source, image in members:
            archive.writestr(source, _png_bytes(image), compress_type=zipfile.ZIP_STORED)
        archive.writestr("mergedimage.png", _png_bytes(merged), compress_type=zipfile.ZIP_STORED)
        archive.writestr("Thumbnails/thumbnail.png", _png_bytes(thumbnail), compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "foi/metadata.json", json.dumps(edit.metadata, indent=2), compress_type=zipfile.ZIP_DEFLATED
        )


def _xmp_packet(metadata: dict) -> bytes:
    description = escape(" ".join(metadata.get("instructions", [])))
    payload = escape(json.dumps(metadata))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:foi="https://foi-studio.invalid/ns/1.0/">'
        "<xmp:CreatorTool>FoI Studio</xmp:CreatorTool>"
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt></dc:description>'
        f"<foi:metadata>{payload}</foi:metadata>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode("utf-8")


def write_psd(path: str | os.PathLike, edit: LayeredEdit) -> None:
    """Photoshop document with the same layers as the .ora; the merged image as its composite
    and FoI's metadata as XMP (dc:description = the instructions, foi:metadata = JSON)."""
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import Resource
    from psd_tools.psd.image_resources import ImageResource

    psd = PSDImage.frompil(composite_full_resolution(edit))
    for name, image, x, y, visible, opacity in reversed(_layer_stack(edit)):
        layer = PixelLayer.frompil(image.convert("RGBA"), psd, name, top=y, left=x)
        layer.visible = visible
        layer.opacity = int(round(opacity * 255))
        psd.append(layer)
    psd.image_resources[Resource.XMP_METADATA] = ImageResource(
        key=Resource.XMP_METADATA, data=_xmp_packet(edit.metadata)
    )
    with atomic_write(path) as stream:
        psd.save(stream)
        _put_merged_image(stream, composite_full_resolution(edit))


def _put_merged_image(stream, image: Image.Image) -> None:
    """Make a written PSD's merged image `image`, uncompressed. psd-tools flattens the layers
    itself when it saves, a level off the composite here and there; every export must hold
    the same pixels. The merged image is the file's last section, after the header and three
    length-prefixed sections (colour mode data, image resources, layers and masks)."""
    from psd_tools.constants import Compression
    from psd_tools.psd.header import FileHeader
    from psd_tools.psd.image_data import ImageData

    stream.seek(0)
    header = FileHeader.read(stream)
    for length_format in (">I", ">I", ">Q" if header.version == 2 else ">I"):
        (length,) = struct.unpack(length_format, stream.read(struct.calcsize(length_format)))
        stream.seek(length, io.SEEK_CUR)
    merged = ImageData(Compression.RAW)
    merged.set_data([band.tobytes() for band in image.split()], header)
    stream.truncate()
    merged.write(stream)


def _png_info(metadata: dict) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Software", "FoI Studio")
    info.add_itxt("Description", " ".join(metadata.get("instructions", [])))
    info.add_itxt("foi:metadata", json.dumps(metadata))
    info.add_itxt("foi:settings", json.dumps(metadata.get("settings", {})))
    info.add_itxt("foi:seed", str(metadata.get("seed", "")))
    info.add_itxt("foi:instructions", json.dumps(metadata.get("instructions", [])))
    return info


SLUG_LENGTH = 40


def file_slug(text: str, empty: str) -> str:
    """An instruction as part of a file name: its words in lower-case ASCII letters and digits
    (accents dropped: café → cafe) joined by hyphens, at most SLUG_LENGTH characters, cut
    between words; only a first word longer than that is cut, to keep the limit. `empty` when
    nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > SLUG_LENGTH:
        end = slug.rfind("-", 0, SLUG_LENGTH + 1)  # a hyphen just past the limit ends a whole word too
        slug = slug[:end] if end > 0 else slug[:SLUG_LENGTH]
    return slug or empty


def mask_file_names(path: str | os.PathLike, edit: LayeredEdit) -> list[str]:
    """Where write_png puts each mask: beside the PNG, `<stem>.mask-<n>-<slug>.png`."""
    stem = os.path.splitext(os.fspath(path))[0]
    return [f"{stem}.mask-{n}-{file_slug(layer.name, 'mask')}.png" for n, layer in enumerate(edit.layers, start=1)]


def write_png(path: str | os.PathLike, edit: LayeredEdit) -> list[str]:
    """The engine's result as it came out (working size, no resampling) with the metadata in
    PNG text chunks, and one grayscale mask PNG per instruction at the same size, so each mask
    lies exactly over the result."""
    written = [os.fspath(path)]
    with atomic_write(path) as stream:
        edit.result.convert("RGB").save(stream, "PNG", pnginfo=_png_info(edit.metadata))
    for alpha, mask_path in zip(edit._render.alphas, mask_file_names(path, edit)):
        working = edit.frame.fit(alpha, Image.Resampling.BOX)
        with atomic_write(mask_path) as stream:
            working.save(stream, "PNG")
        written.append(mask_path)
    return written


# The full-resolution export's format follows the photo's: a PNG stays PNG, a JPEG stays JPEG.
# A HEIC photo becomes JPEG (what every program reads); a pasted picture, or a format FoI
# Studio does not write (BMP, GIF), becomes PNG, which loses nothing. Pillow opens many
# phones' JPEGs as MPO (a JPEG with a second picture inside).
FULL_SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "HEIF": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp"}
JPEG_QUALITY = 95
MAX_JPEG_EXIF_BYTES = 65533  # one APP1 segment: a HEIC's longer EXIF is left out of a JPEG


def full_suffix(source: PhotoMetadata) -> str:
    """The file ending the full-resolution export takes by default for this photo."""
    return FULL_SUFFIXES.get(source.format, ".png")


def write_composite(path: str | os.PathLike, edit: LayeredEdit) -> None:
    """The full-resolution composite, in the format of the file name's extension (PNG keeps
    the metadata in text chunks; JPEG at quality 95), carrying the photo's EXIF and colour
    profile (`edit.source`)."""
    image = composite_full_resolution(edit)
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    options = {}
    if edit.source.icc_profile:
        options["icc_profile"] = edit.source.icc_profile
    if edit.source.exif:
        options["exif"] = edit.source.exif
    if suffix == ".png":
        options.update(format="PNG", pnginfo=_png_info(edit.metadata), compress_level=PNG_LEVEL)
    elif suffix in (".jpg", ".jpeg"):
        if len(options.get("exif", b"")) > MAX_JPEG_EXIF_BYTES:
            del options["exif"]
        options.update(format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    elif suffix in (".tif", ".tiff"):
        options.update(format="TIFF", compression="tiff_deflate")
    elif suffix == ".webp":
        options.update(format="WEBP", lossless=True)
    else:
        raise ExportError(f"Write the composite as .png, .jpg, .tif or .webp, not {suffix or 'no extension'}.")
    with atomic_write(path) as stream:
        image.save(stream, **options)
