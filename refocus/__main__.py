"""Command line: ``python -m refocus INPUT -o OUTPUT --focus X,Y --f-number N``.

The same library calls as the app; a bad input prints one sentence and exits with status 2.
``--focus-to`` makes a focus-pull animation; several inputs (files, folders, globs) or an
output ending in ``/`` make a batch, where a failed photo is reported and the exit status is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import sys

from tqdm import tqdm

from refocus.animate import ANIMATION_EXTENSIONS, EASINGS, FocusPull, make_focus_pull
from refocus.batch import expand_inputs, refocus_many
from refocus.errors import RefocusError
from refocus.focus import FocusTarget, fit_focus_plane
from refocus.io import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    READABLE_FORMATS,
    Photo,
    load_photo,
    save_depth_png16,
    save_image,
)
from refocus.presets import load_preset, save_preset, setting_names
from refocus.refocuser import DEPTH_SOURCES, SHAPES, LensSettings, PreparedPhoto, Refocuser
from refocus.user_depth import USER_DEPTH_KINDS, read_user_depth

CENTRE = FocusTarget(50.0, 50.0, relative=True)
DEFAULT_F_NUMBER = 2.8  # without --f-number and without an aperture recorded by the phone


def parse_focus(text: str) -> FocusTarget:
    """``"X,Y"`` in pixels, ``"X%,Y%"`` of the width and height, or ``"auto"``."""
    try:
        return FocusTarget.parse(text)
    except RefocusError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_focus_plane(text: str) -> list[FocusTarget]:
    """``"X1,Y1 X2,Y2 X3,Y3"`` (pixels or percent) -> three focus targets."""
    targets = [parse_focus(point) for point in text.split()]
    if len(targets) != 3 or any(t.auto for t in targets):
        raise argparse.ArgumentTypeError(f'expected three points "X1,Y1 X2,Y2 X3,Y3"; got {text[:80]!r}')
    return targets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m refocus",
        description="Render a photo with a shallow depth of field, focused where you say.",
    )
    parser.add_argument("input", nargs="+",
                        help=f"the photo ({READABLE_FORMATS}); several, folders or globs for a batch")
    parser.add_argument("-o", "--output", required=True,
                        help="the refocused photo: .png, or .jpg/.jpeg (with the input's colour profile and EXIF, "
                             "orientation reset, GPS dropped unless --keep-gps); an animation (.mp4, .webm, .gif, "
                             ".webp) with --focus-to; a folder (ending in /) for a batch")  # fmt: skip
    parser.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality, 1-100")
    parser.add_argument("--keep-gps", action="store_true", help="keep the photo's GPS position in the output")
    parser.add_argument("--focus", type=parse_focus,
                        help="where to focus: X,Y in pixels, X%%,Y%% of the width and height, or auto (the subject); "
                             "default: the centre")  # fmt: skip
    parser.add_argument("--f-number", type=float,
                        help="aperture, e.g. 1.4 (blurry) to 22 (sharp); default: the f-number the phone's "
                             f"portrait mode recorded (iPhone), else {DEFAULT_F_NUMBER:g}")
    parser.add_argument("--shape", choices=list(SHAPES), default="disc", help="bokeh shape")
    parser.add_argument("--focus-range", type=float, default=0.0, help="share of the depth range kept sharp, 0-1")
    parser.add_argument("--focus-falloff", type=float, default=0.0,
                        help="share of the depth range over which blur eases in past the sharp band, 0-1 "
                             "(0: the hard edge of a real lens)")  # fmt: skip
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
    parser.add_argument("--focus-plane", type=parse_focus_plane, metavar='"X1,Y1 X2,Y2 X3,Y3"',
                        help="keep the plane through three points sharp (tilt-shift) instead of one depth")  # fmt: skip
    parser.add_argument("--preset", help="a preset JSON file whose settings replace the defaults (flags still win)")
    parser.add_argument("--save-preset", metavar="FILE", help="also write the lens settings used as a preset")
    pull = parser.add_argument_group("focus pull (animation)")
    pull.add_argument("--focus-to", type=parse_focus, action="append", metavar="X,Y",
                      help="pull the focus from --focus to here; repeat for a path of points")  # fmt: skip
    pull.add_argument("--frames", type=int, default=24, help="number of frames (default 24)")
    pull.add_argument("--fps", type=float, default=12.0, help="frames per second (default 12)")
    pull.add_argument("--f-number-to", type=float, help="f-number at the last frame (an aperture ramp)")
    pull.add_argument("--easing", choices=list(EASINGS), default="ease-in-out", help="how the focus speeds up and slows down")
    pull.add_argument("--full-resolution", action="store_true",
                      help="frames at the photo's size (default: the preview's, long edge 1024)")  # fmt: skip
    return parser


def is_batch(args: argparse.Namespace) -> bool:
    """Many photos: several inputs, a folder or glob, or an output that names a folder."""
    return (
        len(args.input) > 1
        or any(os.path.isdir(item) or not os.path.exists(item) and glob.has_magic(item) for item in args.input)
        or args.output.endswith(("/", os.sep))
        or os.path.isdir(args.output)
    )


def run_batch(args: argparse.Namespace, settings: LensSettings) -> int:
    """Refocus every input into the folder ``args.output``; 1 when any photo failed."""
    one_photo = {"--depth-map": args.depth_map, "--save-depth": args.save_depth, "--focus-to": args.focus_to,
                 "--focus-plane": args.focus_plane}  # fmt: skip
    for flag, value in one_photo.items():
        if value:
            raise RefocusError(f"{flag} applies to one photo; a batch takes the same settings for every photo.")
    sources = expand_inputs(args.input)
    refocuser = Refocuser(args.depth_model, args.device)
    failed = 0
    results = refocus_many(refocuser, sources, args.output, args.focus or CENTRE, settings,
                           max_pixels=args.max_image_pixels)  # fmt: skip
    for result in tqdm(results, total=len(sources), unit="photo"):
        if not result.ok:
            failed += 1
            tqdm.write(f"refocus: {result.source}: {result.error}", file=sys.stderr)
    print(f"Wrote {len(sources) - failed} of {len(sources)} photos to {args.output}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.preset:  # the preset's settings become the defaults; flags given still win
            parser.set_defaults(**dataclasses.asdict(load_preset(args.preset)))
            args = parser.parse_args(argv)
        chosen = {name: getattr(args, name) for name in setting_names() if getattr(args, name, None) is not None}
        settings = LensSettings(**{"f_number": DEFAULT_F_NUMBER, **chosen})
        if args.save_preset:
            save_preset(args.save_preset, settings)
        if is_batch(args):
            return run_batch(args, settings)
        photo = load_photo(args.input[0], max_pixels=args.max_image_pixels)
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
        disparity = prepared.depth.disparity
        if args.save_depth:
            save_depth_png16(args.save_depth, disparity)
        focus = (args.focus or CENTRE).point_in(disparity, prepared.subject_area)
        if args.focus_to:
            return write_focus_pull(args, refocuser, photo, prepared, focus, settings)
        if args.output.lower().endswith(ANIMATION_EXTENSIONS):
            raise RefocusError(f"An animation ({args.output}) needs --focus-to X,Y, where the focus moves to.")
        plane = None
        if args.focus_plane:
            plane = fit_focus_plane(disparity, [target.point_in(disparity) for target in args.focus_plane])
        image = refocuser.render_full(photo, prepared, focus, settings, focus_plane=plane)
        save_image(args.output, image, photo=photo, quality=args.jpeg_quality, keep_gps=args.keep_gps)
    except (RefocusError, OSError) as e:
        print(f"refocus: error: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {args.output} ({photo.width} x {photo.height}, f/{settings.f_number:g}, focus {focus[0]:g},{focus[1]:g})")
    return 0


def write_focus_pull(args: argparse.Namespace, refocuser: Refocuser, photo: Photo, prepared: PreparedPhoto,
                     focus: tuple[float, float], settings: LensSettings) -> int:  # fmt: skip
    """The ``--focus-to`` branch of ``main``: render and encode the animation, one bar step a frame."""
    points = (focus, *(target.point_in(prepared.depth.disparity) for target in args.focus_to))
    pull = FocusPull(points, frames=args.frames, easing=args.easing, f_number_to=args.f_number_to)
    with tqdm(total=pull.frames, unit="frame") as bar:
        make_focus_pull(refocuser, photo, prepared, pull, settings, args.output, fps=args.fps,
                        full_resolution=args.full_resolution, progress=lambda done, total: bar.update(1))  # fmt: skip
        per_frame = bar.format_dict["elapsed"] / pull.frames
    print(f"Wrote {args.output} ({pull.frames} frames at {args.fps:g} fps, {per_frame:.2f} s per frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
