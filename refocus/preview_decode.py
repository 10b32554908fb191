"""Decode a photo at the size the first preview needs; the full decode waits until it is needed.

A 12 MP JPEG takes about 0.4 s to decode on a 2-core CPU, and its float32 pixels (144 MB) take
more time again to shrink and to hash; the preview shows 1024 px and the depth network sees
518 px. JPEG stores 8 x 8 blocks of frequencies, so libjpeg can decode at 1/2, 1/4 or 1/8 of the
size for a fraction of the cost (Pillow's ``Image.draft``). ``load_draft_photo`` does that and
keeps the file's bytes, so the full decode runs once, when a full-resolution render or the
16-bit depth download asks for it. Other formats are decoded in full, as ``load_photo`` does.
"""

from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from refocus.cache import OnDemand
from refocus.depth.embedded import EmbeddedDepth
from refocus.errors import RefocusError
from refocus.io import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Photo, exif_subject_area, load_photo, read_embedded_depth

# EXIF orientations that turn the stored image by 90 degrees (width and height swap).
_TRANSPOSED = {5, 6, 7, 8}


@dataclass(frozen=True)
class DraftPhoto:
    """A photo decoded at reduced size, with its full-resolution decode on demand.

    Attributes:
        draft: the photo decoded at reduced size, upright; its long edge is at least the size
            asked for (or the full size, when that is smaller).
        width, height: the full photo's size in pixels, upright.
        full: the full decode (``load_photo`` of the same bytes), made on first ``get()``.
    """

    draft: Photo
    width: int
    height: int
    full: OnDemand[Photo]

    @property
    def focal_mm_35(self) -> float | None:
        return self.draft.focal_mm_35

    @property
    def embedded_depth(self) -> EmbeddedDepth | None:
        """The depth map the file carries (Google GDepth / Dynamic Depth), as ``Photo``'s."""
        return self.draft.embedded_depth

    @property
    def simulated_f_number(self) -> float | None:
        return self.draft.simulated_f_number

    @property
    def subject_area(self) -> tuple[float, float, float, float] | None:
        return self.draft.subject_area  # fractions of the frame: the same at any decode size


def load_draft_photo(
    source: str | os.PathLike | bytes,
    long_edge: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DraftPhoto | Photo:
    """Decode a JPEG at the smallest 1/2^k size whose long edge is still >= ``long_edge``.

    Args:
        source: a file path or the file's bytes.
        long_edge: the long edge, in pixels, the caller needs (the preview's).
        max_pixels, max_bytes: the limits of ``load_photo``, applied to the full photo.

    Returns:
        A ``DraftPhoto`` for a JPEG larger than twice ``long_edge``; otherwise the full decode,
        a ``Photo``, exactly as ``load_photo`` returns it.

    Raises:
        RefocusError: as ``load_photo`` (unreadable, damaged, too large).
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file() or path.stat().st_size > max_bytes:
            return load_photo(path, max_pixels=max_pixels, max_bytes=max_bytes)  # its message
        data = path.read_bytes()
    size = _jpeg_size(data)
    if size is None or max(size) < 2 * long_edge or size[0] * size[1] > max_pixels:
        return load_photo(data, max_pixels=max_pixels, max_bytes=max_bytes)
    width, height = size
    with Image.open(io.BytesIO(data)) as im:
        if im.getexif().get(0x0112) in _TRANSPOSED:
            width, height = height, width
        subject = exif_subject_area(im)  # in the stored size's pixels: before the draft
        scale = long_edge / max(im.size)
        # Pillow picks the largest reduction whose result is still at least the requested size.
        im.draft("RGB", (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))))
        try:
            draft = load_photo(im, max_pixels=max_pixels)
            draft = dataclasses.replace(draft, embedded_depth=read_embedded_depth(data, im), subject_area=subject)
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise RefocusError(f"This image file is damaged or truncated and cannot be decoded ({e}).") from e
    full_bytes = width * height * 3 * 4  # float32 RGB once decoded
    return DraftPhoto(draft, width, height, OnDemand(lambda: load_photo(data, max_pixels=max_pixels), full_bytes))


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as stored, when ``data`` is a JPEG Pillow can open; else None."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size if im.format == "JPEG" else None
    except Exception:  # noqa: BLE001 - not a JPEG, or broken: load_photo gives the user's message
        return None
