"""Reading photos and depth maps safely, and writing results.

Every way a picture enters refocus (UI upload, API call, CLI argument) goes through
``load_photo``, and every depth map a user gives through ``read_depth_values`` (which
``refocus.user_depth`` builds on), so the size limits and the conversions live in one place.
Anything that cannot be turned into a sensible image raises ``RefocusError`` with a sentence a
user understands.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from refocus.depth.embedded import EmbeddedDepth, read_heif_depth, simulated_f_number
from refocus.depth.google import read_google_depth
from refocus.errors import RefocusError

# HEIC/HEIF (iPhone, Samsung) through pillow-heif; Pillow (>= 11.3) reads AVIF itself. Opening
# only parses the header, so the pixel-count check below still runs before any decoding.
pillow_heif.register_heif_opener(thumbnails=False)
READABLE_FORMATS = "JPEG, PNG, WebP, TIFF, HEIC or AVIF"

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: above every common camera, below a memory hazard
DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # 100 MiB per file
# A user's depth map is scaled so its 99th percentile is 1; a few pixels 1000x nearer than that
# are already blurred by the renderer's cap (the image size), so larger values are clipped.
MAX_RELATIVE_DISPARITY = 1000.0

_EXIF_ORIENTATION, _EXIF_GPS_IFD, _EXIF_IFD = 0x0112, 0x8825, 0x8769
# EXIF orientation -> the transpose that makes the pixels upright (as ``ImageOps.exif_transpose``).
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The PNG text chunk ``save_depth_png16`` writes: its 16-bit values are relative disparity.
DEPTH_PNG_MARKER = ("refocus", "relative disparity")
ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]
DepthKind = Literal["disparity", "depth"]


@dataclass(frozen=True)
class Photo:
    """A decoded photo.

    Attributes:
        pixels: float32 (H, W, 3) sRGB-encoded in [0, 1], upright (EXIF orientation applied).
            The values are the file's own: a Display P3 photo keeps its P3 values (same
            transfer curve as sRGB), and ``icc_profile`` says how to show them.
        focal_mm_35: the camera's 35 mm-equivalent focal length from EXIF, or None.
        embedded_depth: the depth map the file carries (iPhone HEIF, Google GDepth or Dynamic
            Depth), or None.
        icc_profile: the file's RGB ICC profile (bytes), kept for the output, or None (sRGB).
        exif: the file's EXIF block (bytes), kept for the output, or None.
        simulated_f_number: the f-number the phone's portrait mode simulated (Apple
            ``depthBlurEffect:SimulatedAperture``), a good starting aperture; or None.
        subject_area: the camera's subject area (EXIF ``SubjectArea``: where it focused or
            found the subject) as (x0, y0, x1, y1), fractions of the upright frame; or None.
    """

    pixels: np.ndarray
    focal_mm_35: float | None = None
    embedded_depth: EmbeddedDepth | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    simulated_f_number: float | None = None
    subject_area: tuple[float, float, float, float] | None = None

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]


def load_photo(
    source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> Photo:
    """Decode a photo from a path, bytes, a PIL image or an array.

    Handles EXIF orientation, animated files (first frame), grayscale, palette, CMYK, 16-bit and
    alpha images (alpha is composited over white, as a viewer shows it).

    Args:
        source: file path, encoded bytes, ``PIL.Image``, or an array (H, W), (H, W, 3) or
            (H, W, 4), uint8/uint16 or float in [0, 1], sRGB.
        max_pixels: refuse images with more pixels than this (decompression-bomb guard too).
        max_bytes: refuse files larger than this.

    Returns:
        A ``Photo`` whose pixels are float32 (H, W, 3) sRGB in [0, 1].
    """
    if isinstance(source, np.ndarray):
        return Photo(_array_to_srgb(source, max_pixels))
    if isinstance(source, Image.Image):
        return _decode_pil(source, max_pixels)
    data = _read_bytes(source, max_bytes)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns between 1x and 2x its limit; make that an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                photo = _decode_pil(im, max_pixels)
                depth = read_embedded_depth(data, im)
    except RefocusError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        if isinstance(e, UnidentifiedImageError):
            raise RefocusError(f"This file is not an image refocus can read (try {READABLE_FORMATS}).") from e
        raise RefocusError(f"This image is too large (over {max_pixels:,} pixels).") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise RefocusError(f"This image file is damaged or truncated and cannot be decoded ({e}).") from e
    return dataclasses.replace(photo, embedded_depth=depth)


def read_embedded_depth(data: bytes, im: Image.Image) -> EmbeddedDepth | None:
    """The depth map inside an opened file (HEIF auxiliary depth, Google XMP), or None.

    Never fails: a depth part refocus cannot use warns (``RuntimeWarning``) and yields None.
    """
    try:
        depth = _embedded_depth_upright(data, im)
    except Exception as error:  # noqa: BLE001 - the photo must survive whatever its depth part holds
        warnings.warn(f"The file's depth map cannot be read ({error}).", RuntimeWarning, stacklevel=3)
        return None
    if depth is not None:
        width, height = im.size
        if im.format == "JPEG" and im.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8):
            width, height = height, width
        try:
            check_depth_aspect(depth.size, (width, height))
        except RefocusError as error:  # e.g. a map stored unrotated: better no depth than a wrong one
            warnings.warn(f"The file's depth map is not used: {error}", RuntimeWarning, stacklevel=3)
            return None
    return depth


def _embedded_depth_upright(data: bytes, im: Image.Image) -> EmbeddedDepth | None:
    depth = None
    if im.format == "HEIF":
        heif = pillow_heif.open_heif(io.BytesIO(data))  # header only; the depth decodes on demand
        depth = read_heif_depth(heif.info, lambda aux_id: heif.get_aux_image(aux_id).to_pillow())
    elif im.format == "JPEG":
        depth = read_google_depth(data)
        # The map is stored like the JPEG's pixels, before the EXIF rotation that load_photo applies.
        method = _EXIF_TRANSPOSE.get(im.getexif().get(_EXIF_ORIENTATION))
        if depth is not None and method is not None:
            rotated = np.asarray(Image.fromarray(depth.disparity).transpose(method), np.float32)
            depth = dataclasses.replace(depth, disparity=rotated)
    return depth


def _read_bytes(source: str | os.PathLike | bytes, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise RefocusError(f"No such file: {path}")
        if path.stat().st_size > max_bytes:
            raise RefocusError(f"{path.name} is larger than the {max_bytes // 2**20} MiB limit.")
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise RefocusError(f"The file is larger than the {max_bytes // 2**20} MiB limit.")
    if not data:
        raise RefocusError("The file is empty.")
    return data


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise RefocusError("The image has no pixels.")
    if width * height > max_pixels:
        raise RefocusError(
            f"The image is {width} x {height} = {width * height / 1e6:.1f} MP; "
            f"the limit is {max_pixels / 1e6:.1f} MP. Please use a smaller image."
        )


def _decode_pil(im: Image.Image, max_pixels: int) -> Photo:
    _check_size(*im.size, max_pixels)  # before decoding any pixel data
    im.seek(0)  # animated GIF/WebP/APNG: the first frame
    focal = _exif_focal_mm_35(im)
    icc = _rgb_icc_profile(im)
    exif = im.info.get("exif") or None
    aperture = simulated_f_number(im.info.get("xmp") or im.info.get("XML:com.adobe.xmp"))
    subject = exif_subject_area(im)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        pixels = np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0
    elif im.mode in ("I", "F"):
        pixels = _scale_to_unit(np.asarray(im, dtype=np.float64))
    else:
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        # CMYK, YCbCr, palette, 1-bit, grayscale and 48-bit RGB (which Pillow reads as 8-bit) all
        # come out as 8-bit sRGB here.
        pixels = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return Photo(_as_rgb(pixels), focal, icc_profile=icc, exif=exif, simulated_f_number=aperture, subject_area=subject)


def _rgb_icc_profile(im: Image.Image) -> bytes | None:
    """The file's ICC profile when it describes RGB data (a CMYK or grey one cannot be kept)."""
    icc = im.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and len(icc) >= 20 and icc[16:20] == b"RGB " else None


def _exif_focal_mm_35(im: Image.Image) -> float | None:
    try:
        value = im.getexif().get_ifd(0x8769).get(0xA405)  # Exif IFD, FocalLengthIn35mmFilm
        value = float(value) if value is not None else None
    except Exception:  # noqa: BLE001 - broken EXIF must never stop a photo from loading
        return None
    return value if value and math.isfinite(value) and 1 <= value <= 2000 else None


# Smallest subject area kept, as a share of the frame's width and height: a smaller one (a
# face far away) holds too few depth pixels for auto focus to find regions in.
MIN_SUBJECT_SHARE = 0.05


def exif_subject_area(im: Image.Image) -> tuple[float, float, float, float] | None:
    """EXIF ``SubjectArea`` (tag 0x9214) as (x0, y0, x1, y1) fractions of the upright frame.

    The tag holds a rectangle (centre x, centre y, width, height), a circle (centre, diameter)
    or a point (ignored: no extent) in the stored image's pixels; phones write the area they
    focused on. The box is turned with the EXIF orientation as ``ImageOps.exif_transpose``
    turns the pixels. Call it before ``Image.draft``, which changes ``im.size``.
    """
    try:
        exif = im.getexif()
        area = [float(v) for v in exif.get_ifd(0x8769).get(0x9214) or ()]
        orientation = int(exif.get(0x0112) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF must never stop a photo from loading
        return None
    width, height = im.size
    if len(area) == 4:
        (cx, cy, w, h) = area
    elif len(area) == 3:
        (cx, cy, w), h = area, area[2]
    else:
        return None
    x0, x1 = np.clip([(cx - w / 2) / width, (cx + w / 2) / width], 0.0, 1.0)
    y0, y1 = np.clip([(cy - h / 2) / height, (cy + h / 2) / height], 0.0, 1.0)
    if not (x1 - x0 >= MIN_SUBJECT_SHARE and y1 - y0 >= MIN_SUBJECT_SHARE):
        return None
    if orientation in (2, 3):  # mirrored left-right (2), turned 180 (3)
        x0, x1 = 1.0 - x1, 1.0 - x0
    if orientation in (3, 4):  # turned 180 (3), mirrored top-bottom (4)
        y0, y1 = 1.0 - y1, 1.0 - y0
    if orientation in (5, 6, 7, 8):  # turned by 90 degrees: x and y swap
        (x0, x1), (y0, y1) = (y0, y1), (x0, x1)
        if orientation in (6, 7):  # (x, y) -> (H - y, ...): the new x runs against the old y
            x0, x1 = 1.0 - x1, 1.0 - x0
        if orientation in (7, 8):  # (..., W - x): the new y runs against the old x
            y0, y1 = 1.0 - y1, 1.0 - y0
    return float(x0), float(y0), float(x1), float(y1)


def _scale_to_unit(values: np.ndarray) -> np.ndarray:
    """High-bit-depth integer or float grey images: map [0, max] to [0, 1]."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    top = values.max()
    if top <= 1.0:
        return np.clip(values, 0, 1).astype(np.float32)
    scale = 65535.0 if top <= 65535 else top
    return np.clip(values / scale, 0, 1).astype(np.float32)


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _array_to_srgb(array: np.ndarray, max_pixels: int) -> np.ndarray:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise RefocusError(f"Expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}.")
    _check_size(array.shape[1], array.shape[0], max_pixels)
    if array.dtype == np.uint8:
        pixels = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        pixels = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise RefocusError("The image contains NaN or infinite values.")
        pixels = np.clip(array, 0.0, 1.0).astype(np.float32)
    else:
        raise RefocusError(f"Unsupported image dtype {array.dtype}; use uint8, uint16 or float in [0, 1].")
    if pixels.ndim == 3 and pixels.shape[2] == 4:  # composite over white
        alpha = pixels[:, :, 3:]
        pixels = pixels[:, :, :3] * alpha + (1.0 - alpha)
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return _as_rgb(pixels)


def relative_disparity_of(values: np.ndarray, kind: DepthKind) -> np.ndarray:
    """A finite, non-negative map without units -> float32 relative disparity (99th percentile 1).

    Args:
        values: float64 (h, w), finite, >= 0 (> 0 for ``"depth"``).
        kind: ``"disparity"`` (larger = nearer) or ``"depth"`` (larger = farther).

    Returns:
        float32 (h, w) in [0, ``MAX_RELATIVE_DISPARITY``], larger = nearer.
    """
    # Scale in float64 before anything else: a map of 1e300s or of denormals is legal input but
    # overflows float32 (or 1 / value) and would reach the renderer as infinities.
    values = values / values.max() if values.max() > 0 else values
    with np.errstate(divide="ignore", over="ignore"):
        disparity = 1.0 / np.maximum(values, 1e-300) if kind == "depth" else values
    scale = np.percentile(disparity, 99)
    if not (np.isfinite(scale) and scale > 0):
        scale = disparity.max() if 0 < disparity.max() < np.inf else 1.0
    return np.clip(disparity / scale, 0.0, MAX_RELATIVE_DISPARITY).astype(np.float32)


def read_depth_values(source: str | os.PathLike | bytes | np.ndarray, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A user's depth map file (PNG, TIFF, .npy) or array as a 2-D real array, dtype as stored.

    Raises ``RefocusError`` for unreadable, oversized (checked from the header) or non-2-D maps.
    """
    if isinstance(source, np.ndarray):
        values = source
    else:
        data = _read_bytes(source, max_bytes)
        if data[:6] == b"\x93NUMPY":
            try:
                values = np.load(io.BytesIO(data), allow_pickle=False)  # never unpickle user files
            except (ValueError, EOFError, OSError) as e:
                raise RefocusError(f"This .npy file cannot be read as a plain numeric array ({e}).") from e
        else:
            _check_depth_file_size(data, max_pixels)  # before OpenCV allocates the pixels
            # OpenCV keeps 16-bit and float TIFF/PNG values as they are; Pillow would not for RGB.
            try:
                values = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            except cv2.error:
                values = None
            if values is None:
                raise RefocusError("The depth map is not a PNG, TIFF or .npy file refocus can read.")
    if values.ndim >= 2 and values.shape[0] * values.shape[1] > max_pixels:
        raise RefocusError(f"The depth map is too large; the limit is {max_pixels / 1e6:.1f} MP.")
    if values.ndim == 3 and values.shape[2] in (1, 3, 4):
        values = values[:, :, 0]  # a grey map saved as RGB: the channels are equal
    if values.ndim != 2 or values.size == 0:
        raise RefocusError(f"A depth map must be a single-channel 2-D image, got shape {values.shape}.")
    if not (np.issubdtype(values.dtype, np.number) and not np.iscomplexobj(values)):
        raise RefocusError(f"A depth map must hold real numbers, got dtype {values.dtype}.")
    return values


def _check_depth_file_size(data: bytes, max_pixels: int) -> None:
    """Refuse an image file whose header declares more than ``max_pixels`` (a compressed bomb)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # judged below
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Image.DecompressionBombError:  # far beyond Pillow's own limit, which is above ours
        raise RefocusError(f"The depth map is too large; the limit is {max_pixels / 1e6:.1f} MP.") from None
    except Exception:  # noqa: BLE001 - not for Pillow to judge: OpenCV decodes it or refuses it
        return
    if width * height > max_pixels:
        raise RefocusError(
            f"The depth map is {width} x {height} = {width * height / 1e6:.1f} MP; "
            f"the limit is {max_pixels / 1e6:.1f} MP."
        )


def check_depth_aspect(map_size: tuple[int, int], photo_size: tuple[int, int]) -> None:
    """Refuse a depth map (w, h) whose aspect ratio differs from the photo's (width, height) by > 1 %."""
    (w, h), (width, height) = map_size, photo_size
    if abs(w / h - width / height) > 0.01 * (width / height):
        raise RefocusError(
            f"The depth map is {w} x {h} pixels but the photo is {width} x {height}; "
            "their shapes differ, so the map cannot belong to this photo."
        )


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write float32 (H, W, 3) sRGB in [0, 1] as an 8-bit PNG. Returns the path."""
    return save_image(path, image, format="PNG")


DEFAULT_JPEG_QUALITY = 92  # visually lossless for photos, a third of the PNG's size
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def save_image(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    photo: Photo | None = None,
    format: str | None = None,
    quality: int = DEFAULT_JPEG_QUALITY,
    keep_gps: bool = False,
) -> Path:
    """Write a rendered photo as an 8-bit PNG or JPEG, with the source photo's colour and metadata.

    Colour: the pixels stay in the input's colour space and the input's RGB ICC profile is
    embedded (a Display P3 iPhone photo stays P3 and is tagged P3); without one, sRGB (untagged).
    Metadata: the input's EXIF is kept (camera, lens, date) with the orientation reset to 1, since
    the pixels are already upright, and without GPS position unless ``keep_gps``.

    Args:
        path: output file; its suffix (.png, .jpg, .jpeg) picks the format unless ``format``
            ("PNG" or "JPEG") is given.
        image: float32 (H, W, 3) in [0, 1], in the photo's colour encoding.
        photo: the ``Photo`` the image was rendered from (for ICC profile and EXIF), or None.
        quality: JPEG quality, 1 to 100.
        keep_gps: keep the EXIF GPS block (where the photo was taken).

    Returns:
        The path written.
    """
    path = Path(path)
    format = format or _FORMATS.get(path.suffix.lower())
    if format not in ("PNG", "JPEG"):
        raise RefocusError(f"Cannot write {path.name}: use a .png, .jpg or .jpeg file name.")
    if not 1 <= quality <= 100:
        raise RefocusError(f"The JPEG quality must be from 1 to 100, got {quality}.")
    pixels = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
    options: dict = {"quality": int(quality)} if format == "JPEG" else {}
    if photo is not None and photo.icc_profile:
        options["icc_profile"] = photo.icc_profile
    if photo is not None and photo.exif:
        try:
            options["exif"] = _output_exif(photo.exif, keep_gps)
        except Exception as error:  # noqa: BLE001 - EXIF a camera wrote badly must not cost the render
            warnings.warn(f"The photo's EXIF is damaged and is not copied ({error}).", RuntimeWarning, stacklevel=2)
    Image.fromarray(pixels).save(path, format=format, **options)
    return path


def _output_exif(exif_bytes: bytes, keep_gps: bool) -> bytes:
    """The input's EXIF for an output file: orientation 1, no thumbnail, GPS only on request."""
    exif = Image.Exif()
    exif.load(exif_bytes)
    exif.get_ifd(_EXIF_IFD)  # loaded IFDs are written back by ``tobytes``
    exif[_EXIF_ORIENTATION] = 1
    if keep_gps:
        exif.get_ifd(_EXIF_GPS_IFD)
    else:
        exif.pop(_EXIF_GPS_IFD, None)
    return exif.tobytes()


def disparity_to_uint16(disparity: np.ndarray) -> np.ndarray:
    """Disparity (H, W) -> uint16 (H, W), min..max mapped to 0..65535 (brighter = nearer)."""
    low, high = float(np.min(disparity)), float(np.max(disparity))
    span = high - low if high > low else 1.0
    return np.rint((disparity - low) / span * 65535.0).astype(np.uint16)


def save_depth_png16(path: str | os.PathLike, disparity: np.ndarray) -> Path:
    """Write disparity as a 16-bit grey PNG (0 = farthest, 65535 = nearest). Returns the path.

    ``refocus.user_depth.read_user_depth`` reads it back as relative disparity (kind "auto").
    """
    path = Path(path)
    marker = PngImagePlugin.PngInfo()
    marker.add_text(DEPTH_PNG_MARKER[0], DEPTH_PNG_MARKER[1])  # so kind "auto" reads it back as disparity
    Image.fromarray(disparity_to_uint16(disparity)).save(path, format="PNG", pnginfo=marker)
    return path


def colorize_disparity(disparity: np.ndarray) -> np.ndarray:
    """A colour picture of disparity for people: uint8 (H, W, 3) RGB, near = bright (inferno)."""
    grey = (disparity_to_uint16(disparity) >> 8).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
