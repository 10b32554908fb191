"""Make the README's real-photo figures: the iPhone portrait refocused through its own depth.

Uses the real iPhone 13 Pro HEIC in ``../shared/real-phone`` (BSD-3-Clause, from the
pillow_heif project) and the depth map it carries, so it works offline. Only small crops are
written; the photo itself stays out of the repository. Run from the repository root:

    python -m docs.make_real_photo_figures

Writes ``docs/phone_before.jpg`` and ``docs/phone_after.jpg`` (600 x 400 crops of the app's
1024 x 768 preview around the dog's head: the photo and its render at f/1.8) and
``docs/seam_after.jpg`` (a 200 x 200 crop of the blurred bed edge, shown at 200 %, where the
renderer before ``refocus/render/depth_edges.py`` drew a 1-px contour line;
``docs/seam_before.jpg`` came from that older renderer, on the same scene and crop, through
``phone_scene`` and ``save_crop``). Where ``../shared`` is absent it says so and writes nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from refocus.io import Photo, load_photo
from refocus.lens import blur_strength
from refocus.refocuser import LensSettings, Refocuser
from refocus.render import render_bokeh

REPO = Path(__file__).resolve().parents[1]
HEIC = REPO.parent / "shared" / "real-phone" / "iphone-portrait-pug.heic"
# In pixels of the 1024 x 768 preview: the dog's head, the wall and the near bed.
PREVIEW_BOX = (400, 340, 600, 400)
# The seam figure is rendered at half the photo's size (2016 x 1512, 3 MP): the blur in pixels
# halves with it, and the render takes seconds instead of a minute on a small CPU.
SCALE = 0.5
FOCUS_FULL = (2350.0, 1850.0)  # the dog's eye, in pixels of the 4032 x 3024 photo
F_NUMBER = 1.8
# Crop box (x, y, width, height) in pixels of the half-size render, and its enlargement.
SEAM_BOX = (1790, 915, 200, 200)  # the edge of the near, strongly blurred bed against the wall
SEAM_ZOOM = 2


@dataclasses.dataclass(frozen=True)
class PhoneScene:
    """The iPhone photo at ``SCALE`` with its embedded depth, ready for ``render_bokeh``.

    Attributes:
        pixels: float32 (H, W, 3) sRGB in [0, 1].
        disparity: float32 (H, W) in 1/m, the phone's map brought to (H, W) edge-aware.
        focus: the disparity at the dog's eye (1/m).
        strength: CoC radius in px per 1/m at f/1.8 on the phone's 26 mm-equivalent lens.
    """

    pixels: np.ndarray
    disparity: np.ndarray
    focus: float
    strength: float


def phone_scene(photo: Photo) -> PhoneScene:
    """Shrink the iPhone ``photo`` to ``SCALE`` and bring its embedded depth to that size."""
    size = (round(photo.width * SCALE), round(photo.height * SCALE))
    small: Photo = dataclasses.replace(photo, pixels=cv2.resize(photo.pixels, size, interpolation=cv2.INTER_AREA))
    refocuser = Refocuser()
    prepared = refocuser.prepare(small, depth_source="embedded")
    focus_xy = (FOCUS_FULL[0] * SCALE, FOCUS_FULL[1] * SCALE)
    return PhoneScene(
        pixels=small.pixels,
        disparity=prepared.depth.disparity,
        focus=refocuser.focus_value(prepared, focus_xy),
        strength=blur_strength(F_NUMBER, size[0], size[1], prepared.focal_px),
    )


def save_crop(image: np.ndarray, box: tuple[int, int, int, int], path: Path, zoom: int = 1) -> None:
    """Write ``box`` of ``image`` (float32 (H, W, 3) sRGB in [0, 1]) as a JPEG, ``zoom`` x larger.

    Enlarged with nearest-neighbour so a 1-px line stays 1 px of the original, only bigger.
    """
    x, y, w, h = box
    crop = Image.fromarray((np.clip(image[y : y + h, x : x + w], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    if zoom != 1:
        crop = crop.resize((w * zoom, h * zoom), Image.NEAREST)
    crop.save(path, quality=92)


def main() -> None:
    if not HEIC.is_file():
        print(f"{HEIC} is missing: skipped (this script needs ../shared/real-phone).")
        return
    photo = load_photo(HEIC)
    docs = REPO / "docs"
    # As the app does it: the file's depth, the preview rendered for a click on the dog's eye.
    refocuser = Refocuser()
    prepared = refocuser.prepare(photo, depth_source="embedded")
    settings = LensSettings(f_number=F_NUMBER)
    preview_after = refocuser.render_preview(prepared, refocuser.preview_lens(prepared, FOCUS_FULL, settings), settings)
    save_crop(prepared.preview, PREVIEW_BOX, docs / "phone_before.jpg")
    save_crop(preview_after, PREVIEW_BOX, docs / "phone_after.jpg")

    scene = phone_scene(photo)
    # What ``Refocuser.render`` does, with the scene's strength and focus made explicit.
    after = render_bokeh(
        scene.pixels, scene.disparity, scene.focus, scene.strength, **LensSettings(f_number=F_NUMBER).render_options()
    )
    save_crop(after, SEAM_BOX, docs / "seam_after.jpg", SEAM_ZOOM)
    print("wrote docs/phone_before.jpg, docs/phone_after.jpg, docs/seam_after.jpg")


if __name__ == "__main__":
    main()
