"""Decoding photos and depth maps: every legitimate format works, everything else is a clear error."""

import io

import numpy as np
import pytest
from PIL import Image

from refocus.errors import RefocusError
from refocus.io import load_photo, save_depth_png16, save_png
from refocus.user_depth import read_user_depth


def encode(im: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def gradient(width=40, height=30) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)
    rgb = np.stack([np.tile(x, (height, 1)), np.tile(x[::-1], (height, 1)), np.full((height, width), 128)], axis=2)
    return rgb.astype(np.uint8)


def test_rgb_png_round_trips_exactly(tmp_path):
    pixels = gradient()
    path = tmp_path / "a.png"
    Image.fromarray(pixels).save(path)
    image = load_photo(path).pixels
    assert image.dtype == np.float32 and image.shape == (30, 40, 3)
    assert np.array_equal(np.rint(image * 255).astype(np.uint8), pixels)
    save_png(tmp_path / "b.png", image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), pixels)


def test_exif_orientation_is_applied():
    pixels = gradient(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    image = load_photo(encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)).pixels
    assert image.shape == (40, 30, 3)  # upright: portrait


def test_exif_focal_length_is_read():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 85
    photo = load_photo(encode(Image.fromarray(gradient()), "JPEG", exif=exif))
    assert photo.focal_mm_35 == 85.0


@pytest.mark.parametrize(
    "mode",
    ["L", "P", "CMYK", "RGBA", "LA", "I;16", "1"],
)
def test_every_common_mode_becomes_srgb(mode):
    source = Image.fromarray(gradient())
    if mode == "I;16":
        source = Image.fromarray(np.linspace(0, 65535, 30 * 40).reshape(30, 40).astype(np.uint16))
    else:
        source = source.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    image = load_photo(encode(source, fmt)).pixels
    assert image.shape == (30, 40, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    if mode == "I;16":  # the full 16-bit range maps to [0, 1]
        assert image.max() == pytest.approx(1.0, abs=1e-3)


def test_alpha_is_composited_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    assert np.allclose(load_photo(encode(Image.fromarray(rgba, "RGBA"))).pixels, 1.0)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    image = load_photo(data).pixels
    assert image[0, 0, 0] > 0.9 and image[0, 0, 2] < 0.1


def test_one_pixel_and_extreme_aspect_ratios_load():
    assert load_photo(encode(Image.new("RGB", (1, 1)))).pixels.shape == (1, 1, 3)
    assert load_photo(encode(Image.new("RGB", (5000, 1)))).pixels.shape == (1, 5000, 3)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"this is not an image", "not an image"),
        (b"", "empty"),
    ],
)
def test_non_images_are_refused_with_a_sentence(data, message):
    with pytest.raises(RefocusError, match=message):
        load_photo(data)


def test_truncated_image_is_refused():
    data = encode(Image.fromarray(gradient(200, 200)), "JPEG")
    with pytest.raises(RefocusError, match="damaged or truncated"):
        load_photo(data[: len(data) // 2])


def test_pixel_limit_is_checked_before_decoding():
    data = encode(Image.new("RGB", (300, 200)))
    with pytest.raises(RefocusError, match="limit is"):
        load_photo(data, max_pixels=300 * 199)


def test_missing_file(tmp_path):
    with pytest.raises(RefocusError, match="No such file"):
        load_photo(tmp_path / "nope.jpg")


def test_arrays_are_accepted_and_checked():
    assert load_photo(gradient()).pixels.shape == (30, 40, 3)
    with pytest.raises(RefocusError, match="NaN"):
        load_photo(np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(RefocusError, match="shape"):
        load_photo(np.zeros((4, 4, 2), np.uint8))


# -- depth maps (read as the app, the API and the CLI read them) ------------------------------


def read_map(source, size: tuple[int, int], kind: str = "auto"):
    """``read_user_depth`` of ``source`` for a mid-grey photo of ``size`` = (width, height)."""
    width, height = size
    return read_user_depth(source, np.full((height, width, 3), 0.5, np.float32), kind)


def test_depth_png16_round_trip_preserves_order_and_scale(tmp_path):
    disparity = np.linspace(0.1, 2.0, 40 * 30, dtype=np.float32).reshape(30, 40)
    path = save_depth_png16(tmp_path / "d.png", disparity)
    assert Image.open(path).mode.startswith("I;16")
    back = read_map(path, (40, 30)).disparity  # "auto": refocus's own PNG is relative disparity
    assert back.shape == (30, 40) and back.dtype == np.float32
    assert np.all(np.diff(back.ravel()) >= 0)  # same order, brighter = nearer
    assert np.percentile(back, 99) == pytest.approx(1.0, rel=1e-3)


def test_depth_kind_inverts(tmp_path):
    depth_m = np.array([[1.0, 2.0], [4.0, 8.0]], np.float32)
    np.save(tmp_path / "d.npy", depth_m)
    disparity = read_map(tmp_path / "d.npy", (2, 2), "depth").disparity
    assert disparity[0, 0] > disparity[0, 1] > disparity[1, 0] > disparity[1, 1]
    assert disparity[0, 0] / disparity[1, 1] == pytest.approx(8.0)


def test_invalid_depth_values_are_filled_from_neighbours():
    depth = np.array([[1.0, np.nan, 1.0], [1.0, -3.0, np.inf], [2.0, 0.0, 2.0]], np.float32)
    user = read_map(depth, (3, 3), "depth")
    assert np.isfinite(user.disparity).all() and (user.disparity > 0).all()
    assert user.filled_share == pytest.approx(4 / 9)  # NaN, negative, infinite and 0 (no measurement)


def test_all_invalid_depth_is_refused():
    with pytest.raises(RefocusError, match="no valid values"):
        read_map(np.full((3, 3), np.nan), (3, 3))


def test_same_shape_smaller_depth_is_resized_other_shapes_refused():
    assert read_map(np.ones((15, 20)), (40, 30)).disparity.shape == (30, 40)
    with pytest.raises(RefocusError, match="shapes differ"):
        read_map(np.ones((30, 30)), (40, 30))


def test_pickled_npy_is_never_loaded(tmp_path):
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(RefocusError, match="plain numeric"):
        read_map(tmp_path / "evil.npy", (1, 1))


def test_rgb_depth_png_uses_one_channel(tmp_path):
    grey = np.tile(np.arange(10, dtype=np.uint8) * 20, (5, 1))
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)).save(tmp_path / "d.png")
    disparity = read_map(tmp_path / "d.png", (10, 5)).disparity  # "auto": an 8-bit map is disparity
    assert np.all(np.diff(disparity[0]) > 0)
