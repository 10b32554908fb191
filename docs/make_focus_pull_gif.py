"""Make the README's focus-pull GIF with the app's own ``/animate`` endpoint, from ``examples/coffee.jpg``.

No depth network's weights ship with refocus, so the depth map is drawn here from the photo's
geometry and uploaded as the user's own map: the table top is a plane (disparity is affine in
image position on any plane; here it rises towards the camera at the bottom right), the saucer
lies on it, and the cup stands above it, nearer than the table beneath. The focus pulls from the
cup's rim to the far end of the table. The app's GIF (600 x 400, its own palette per frame) is
then shrunk for the README: 360 px wide, one 64-colour palette without dithering (a third of the
size; the wood's grain defeats GIF's compression otherwise). Run from the repository root:

    python -m docs.make_focus_pull_gif
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
from gradio_client import Client, handle_file
from PIL import Image, ImageSequence

import app as app_module

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "examples" / "coffee.jpg"  # CC0, see examples/LICENSES.md
OUTPUT = REPO / "docs" / "focus-pull.gif"
RIM, FAR_TABLE = (290, 200), (540, 40)  # focus from (x, y) to (x, y), photo pixels
README_WIDTH, README_COLOURS = 360, 64


def drawn_disparity(width: int, height: int) -> np.ndarray:
    """The coffee photo's depth as relative disparity, float32 (H, W), larger = nearer."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    table = 0.2 + 0.8 * (0.75 * ys / height + 0.25 * xs / width)  # far at the top left

    def ellipse(centre, axes) -> np.ndarray:
        mask = np.zeros((height, width), np.uint8)
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
        return mask.astype(bool)

    saucer = ellipse((278, 232), (203, 155))
    cup = ellipse((290, 112), (118, 94)) | ellipse((285, 195), (108, 80)) | ellipse((228, 268), (30, 38))
    disparity = table.copy()
    disparity[saucer] += 0.03
    disparity[cup] = table[300, 290] + 0.2  # the cup's foot is at about y = 300; it stands nearer
    return cv2.GaussianBlur(disparity, (0, 0), 1.0)  # anti-aliased outlines


def shrink_gif(source: Path, output: Path) -> None:
    """``source`` resized to ``README_WIDTH`` with one ``README_COLOURS`` palette, same timing."""
    with Image.open(source) as gif:
        duration = gif.info["duration"]
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    size = (README_WIDTH, round(frames[0].height * README_WIDTH / frames[0].width))
    frames = [frame.resize(size, Image.Resampling.LANCZOS) for frame in frames]
    palette = frames[len(frames) // 2].quantize(README_COLOURS, dither=Image.Dither.NONE)
    frames = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    frames[0].save(output, save_all=True, append_images=frames[1:], duration=duration, loop=0, optimize=True)


def main() -> None:
    work = Path(tempfile.mkdtemp())
    width, height = Image.open(PHOTO).size
    np.save(work / "coffee-depth.npy", drawn_disparity(width, height))
    demo = app_module.build_demo(app_module.RefocusApp(device="cpu"))
    demo.queue()
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        gif, details = Client(url, verbose=False).predict(
            handle_file(str(PHOTO)), *RIM, *FAR_TABLE, frames=12, f_number=1.4, fps=8,
            depth_map=handle_file(str(work / "coffee-depth.npy")), depth_kind="disparity",
            output_format="gif", api_name="/animate",
        )  # fmt: skip
    finally:
        demo.close()
    shrink_gif(Path(gif), OUTPUT)
    print(f"Wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KiB, {details})")


if __name__ == "__main__":
    main()
