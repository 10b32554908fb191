"""Command line: ``python -m refocus INPUT -o OUTPUT --focus X,Y --f-number N``.

The same library calls as the app; a bad input prints one sentence and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from refocus.errors import RefocusError
from refocus.io import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    READABLE_FORMATS,
    load_photo,
    save_depth_png16,
    save_image,
)
from refocus.refocuser import DEPTH_SOURCES, SHAPES, LensSettings, Refocuser
from refocus.user_depth import USER_DEPTH_KINDS, read_user_depth

DEFAULT_F_NUMBER = 2.8  # without --f-number and without an aperture recorded by the phone


def parse_focus(text: str) -> tuple[float, float]:
    """``"X,Y"`` in pixels of the input image -> (x, y)."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in pixels, e.g. 640,360; got {text!r}") from None
    return x, y


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m refocus",
        description="Render a photo with a shallow depth of field, focused where you say.",
    )
    parser.add_argument("input", help=f"the photo ({READABLE_FORMATS})")
    parser.add_argument("-o", "--output", required=True,
                        help="where to write the refocused photo: .png, or .jpg/.jpeg (with the input's "
                             "colour profile and EXIF, orientation reset, GPS dropped unless --keep-gps)")
    parser.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality, 1-100")
    parser.add_argument("--keep-gps", action="store_true", help="keep the photo's GPS position in the output")
    parser.add_argument("--focus", type=parse_focus, help="X,Y pixel to focus on (default: the centre)")
    parser.add_argument("--f-number", type=float,
                        help="aperture, e.g. 1.4 (blurry) to 22 (sharp); default: the f-number the phone's "
                             f"portrait mode recorded (iPhone), else {DEFAULT_F_NUMBER:g}")
    parser.add_argument("--shape", choices=list(SHAPES), default="disc", help="bokeh shape")
    parser.add_argument("--focus-range", type=float, default=0.0, help="share of the depth range kept sharp, 0-1")
    parser.add_argument("--highlight-boost", type=float, default=0.0, help="extra glow of blurred highlights, 0-4")
    parser.add_argument("--highlight-threshold", type=float, default=0.9, help="brightness counted as highlight")
    depth = parser.add_mutually_exclusive_group()
    depth.add_argument("--depth-model", help="alias, Hugging Face hub id or local directory")
    depth.add_argument("--depth-map", help="use this depth map (PNG, TIFF or .npy) instead of a network")
    parser.add_argument("--depth-kind", choices=list(USER_DEPTH_KINDS), default="auto",
                        help="what --depth-map holds: disparity (relative, bright = near), depth (relative, "
                             "bright = far), metric (depth in --depth-unit); auto: a 16-bit PNG is metric "
                             "millimetres, anything else relative disparity")
    parser.add_argument("--depth-unit", help="for metric maps: m, cm, mm (default) or metres per value, e.g. 1/256")
    parser.add_argument("--depth-source", choices=list(DEPTH_SOURCES), default="auto",
                        help="auto: --depth-map, else the depth the photo carries (iPhone HEIC, Google "
                             "GDepth / Dynamic Depth JPEG), else the model; embedded or model force one")
    parser.add_argument("--save-depth", help="also write the depth as a 16-bit PNG here")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = LensSettings(
            f_number=DEFAULT_F_NUMBER if args.f_number is None else args.f_number,
            shape=args.shape,
            highlight_boost=args.highlight_boost,
            highlight_threshold=args.highlight_threshold,
            focus_range=args.focus_range,
        )
        photo = load_photo(args.input, max_pixels=args.max_image_pixels)
        if args.f_number is None and photo.simulated_f_number is not None:
            # the aperture the phone's portrait mode rendered with, as the photographer saw it
            settings = dataclasses.replace(settings, f_number=photo.simulated_f_number)
        depth_map, interpretation = None, ""
        if args.depth_map:
            user = read_user_depth(args.depth_map, photo.pixels, args.depth_kind, args.depth_unit)
            depth_map, interpretation = user.disparity, f" ({user.interpretation})"
        refocuser = Refocuser(args.depth_model, args.device)
        prepared = refocuser.prepare(photo, depth_map, depth_source=args.depth_source)
        print(f"Depth: {prepared.depth_source}{interpretation}")
        focus = args.focus or (photo.width / 2, photo.height / 2)
        image = refocuser.render_full(photo, prepared, focus, settings)
        save_image(args.output, image, photo=photo, quality=args.jpeg_quality, keep_gps=args.keep_gps)
        if args.save_depth:
            save_depth_png16(args.save_depth, prepared.depth.disparity)
    except (RefocusError, OSError) as e:
        print(f"refocus: error: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {args.output} ({photo.width} x {photo.height}, f/{settings.f_number:g}, focus {focus[0]:g},{focus[1]:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
