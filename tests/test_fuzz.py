"""Property tests (hypothesis): the renderer and the decoders either work or say why, never crash.

What ``render_bokeh`` accepts (its checks, documented here as the fuzzed contract): numpy arrays
or torch tensors of any floating dtype (float16/32/64, converted to float32), image (H, W, 3)
with H, W >= 1 (values outside [0, 1] are clipped), disparity (H, W) finite. Integer arrays,
non-finite values, wrong shapes and out-of-range options raise ``RefocusError`` (a ValueError)
with a sentence. The output is float32 (H, W, 3), finite, in [0, 1].

The decoders (``load_photo``, ``read_user_depth``) are fed arbitrary arrays and bytes, and valid
JPEG, PNG, GIF, WebP and TIFF files with bytes flipped or cut off: each input is decoded or
refused with ``RefocusError``; no other exception escapes.
"""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from refocus.render import render_bokeh
from refocus.errors import RefocusError
from refocus.io import MAX_RELATIVE_DISPARITY, load_photo
from refocus.user_depth import METRIC_DEPTH_RANGE_M, USER_DEPTH_KINDS, read_user_depth

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FLOAT_DTYPES = st.sampled_from([np.float16, np.float32, np.float64])
sides = st.integers(1, 12)
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)


def finite_floats(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def check_rendered(out, shape) -> None:
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == (*shape, 3)
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


# -- the renderer -------------------------------------------------------------------------------


@st.composite
def scenes(draw, disparity_elements=finite_floats(-1e6, 1e6)):
    h, w = draw(sides), draw(sides)
    image = draw(hnp.arrays(draw(FLOAT_DTYPES), (h, w, 3), elements=finite_floats(-0.5, 1.5)))
    disparity = draw(hnp.arrays(draw(FLOAT_DTYPES), (h, w), elements=disparity_elements))
    return image, disparity


@FUZZ
@given(
    scene=scenes(),
    focus=finite_floats(-1e6, 1e6),
    strength=st.one_of(finite_floats(0, 1e3), st.sampled_from([0.0, 1e-30, 1e6, 1e30, 3e38])),
    shape=st.sampled_from(["disc", "polygon", "ring", "cats_eye"]),
    boost=finite_floats(0, 10),
    focus_range=st.one_of(finite_floats(0, 1e3), st.just(1e30)),
    quality=st.sampled_from(["preview", "default"]),
)
def test_render_bokeh_output_is_finite_in_range_and_the_right_shape(scene, focus, strength, shape, boost,
                                                                     focus_range, quality):  # fmt: skip
    image, disparity = scene
    assume(np.isfinite(image).all() and np.isfinite(disparity).all())  # float16 can overflow to inf
    out = render_bokeh(image, disparity, focus, strength, shape=shape, highlight_boost=boost,
                       focus_range=focus_range, quality=quality)  # fmt: skip
    check_rendered(out, disparity.shape)


EXTREMES = [0.0, 1.0, -3e38, 3e38, 1e-45]


@FUZZ
@given(
    disparity=hnp.arrays(np.float32, st.tuples(sides, sides), elements=st.sampled_from(EXTREMES)),
    focus=st.sampled_from([0.0, -3e38, 3e38]),
    strength=st.sampled_from([0.0, 1.0, 3e38]),
)
def test_render_bokeh_survives_float32_extremes(disparity, focus, strength):
    # focus - disparity overflowing to inf with strength 0 is the known bug below
    assume(strength > 0 or np.isfinite(np.float32(focus) - disparity).all())
    image = np.full((*disparity.shape, 3), 0.5, np.float32)
    check_rendered(render_bokeh(image, disparity, focus, strength), disparity.shape)


def test_render_bokeh_zero_strength_with_overflowing_disparity_difference():
    disparity = np.array([[-3e38, 0.0]], np.float32)
    out = render_bokeh(np.full((1, 2, 3), 0.5, np.float32), disparity, 3e38, 0.0)
    check_rendered(out, disparity.shape)


@FUZZ
@given(
    scene=scenes(disparity_elements=st.one_of(finite_floats(-10, 10), st.sampled_from([np.nan, np.inf, -np.inf]))),
    focus=any_float,
    strength=any_float,
)
def test_render_bokeh_with_nan_inf_or_negative_inputs_renders_or_refuses(scene, focus, strength):
    image, disparity = scene
    try:
        out = render_bokeh(image, disparity, focus, strength)
    except ValueError as e:  # RefocusError is a ValueError
        assert str(e) and "Traceback" not in str(e)
        return
    check_rendered(out, disparity.shape)
    assert np.isfinite(disparity.astype(np.float32)).all() and np.isfinite(focus) and strength >= 0


@FUZZ
@given(
    image=hnp.arrays(
        st.sampled_from([np.uint8, np.int32, np.float32, np.float64, np.bool_]),
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    disparity=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)),
)
def test_render_bokeh_refuses_wrong_dtypes_and_shapes_with_a_value_error(image, disparity):
    try:
        out = render_bokeh(image, disparity, 0.5, 5.0)
    except ValueError:
        return
    check_rendered(out, disparity.shape)


# -- the photo decoder --------------------------------------------------------------------------


@FUZZ
@given(
    array=hnp.arrays(
        st.sampled_from([np.uint8, np.uint16, np.int16, np.float16, np.float32, np.float64, np.bool_, np.complex64]),
        st.one_of(
            hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=6),
            st.tuples(st.integers(0, 6), st.integers(0, 6), st.sampled_from([1, 2, 3, 4, 5])),
            hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3),
        ),
    )
)
def test_load_photo_from_any_array_decodes_or_refuses(array):
    try:
        photo = load_photo(array)
    except RefocusError:
        return
    pixels = photo.pixels
    assert pixels.dtype == np.float32 and pixels.shape == (*array.shape[:2], 3)
    assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1


@FUZZ
@given(data=st.binary(max_size=400))
def test_load_photo_from_random_bytes_refuses_cleanly(data):
    try:
        load_photo(data)
    except RefocusError:
        pass


def encoded_samples() -> dict[str, bytes]:
    """Small valid files of every format the decoders meet, with EXIF where the format has it."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0xA405] = 50
    samples = {}
    for fmt, image, kwargs in [
        ("JPEG", rgb, {"exif": exif, "quality": 80}),
        ("PNG", rgb.convert("RGBA"), {}),
        ("PNG", Image.fromarray((rng.random((12, 16)) * 65535).astype(np.uint16)), {}),
        ("GIF", rgb.convert("P"), {"save_all": True, "append_images": [rgb.convert("P").rotate(90)]}),
        ("WEBP", rgb, {"exif": exif, "quality": 80}),
        ("TIFF", rgb.convert("CMYK"), {}),
        ("TIFF", Image.fromarray(rng.random((12, 16)).astype(np.float32)), {}),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **kwargs)
        samples[f"{fmt}-{image.mode}"] = buffer.getvalue()
    return samples


SAMPLES = encoded_samples()


@st.composite
def mutated_files(draw):
    name = draw(st.sampled_from(sorted(SAMPLES)))
    data = bytearray(SAMPLES[name])
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return name, bytes(data)


def test_the_unmutated_samples_decode():
    for name, data in SAMPLES.items():
        assert load_photo(data).pixels.shape[2] == 3, name


@settings(max_examples=300, deadline=None)
@given(sample=mutated_files())
def test_mutated_image_files_decode_or_refuse_with_refocus_error(sample):
    _, data = sample
    try:
        pixels = load_photo(data, max_pixels=1_000_000).pixels
    except RefocusError:
        return
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and np.isfinite(pixels).all()


# -- the depth-map decoder ------------------------------------------------------------------


def grey_photo(width: int, height: int) -> np.ndarray:
    """The photo a depth map is read for (``read_user_depth`` fills and upsamples guided by it)."""
    return np.full((height, width, 3), 0.5, np.float32)


@FUZZ
@given(
    values=hnp.arrays(
        st.sampled_from([np.uint8, np.uint16, np.int32, np.float16, np.float32, np.float64]),
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
        elements={"allow_nan": True, "allow_infinity": True},
    ),
    kind=st.sampled_from(USER_DEPTH_KINDS),
    stretch=st.sampled_from([1, 2]),
)
def test_user_depth_is_finite_bounded_and_photo_sized_or_refused(values, kind, stretch):
    height, width = values.shape
    try:
        disparity = read_user_depth(values, grey_photo(width * stretch, height * stretch), kind).disparity
    except RefocusError:
        return
    assert disparity.shape == (height * stretch, width * stretch) and disparity.dtype == np.float32
    assert np.isfinite(disparity).all()
    # Relative maps are scaled to at most MAX_RELATIVE_DISPARITY; metric ones are 1/m of at least 1 cm.
    assert disparity.min() >= 0 and disparity.max() <= max(MAX_RELATIVE_DISPARITY, 1 / METRIC_DEPTH_RANGE_M[0])


DEPTH_SAMPLES = {name: data for name, data in SAMPLES.items() if name.startswith(("PNG-I", "TIFF-F", "PNG-RGBA"))}


@settings(max_examples=150, deadline=None)
@given(sample=mutated_files().filter(lambda s: s[0] in DEPTH_SAMPLES), kind=st.sampled_from(USER_DEPTH_KINDS))
def test_mutated_depth_files_decode_or_refuse_with_refocus_error(sample, kind):
    _, data = sample
    try:
        disparity = read_user_depth(data, grey_photo(16, 12), kind).disparity
    except RefocusError:
        return
    assert disparity.shape == (12, 16) and np.isfinite(disparity).all()


@pytest.mark.parametrize("data", [b"\x93NUMPY", b"\x93NUMPY\x01\x00\xff\xff", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'"])
def test_broken_npy_headers_are_refused(data):
    with pytest.raises(RefocusError):
        read_user_depth(data, grey_photo(4, 3))
