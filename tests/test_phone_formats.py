"""Phone formats in (HEIC, AVIF, the iPhone's depth image) and colour and metadata out."""

import io
import struct
import warnings

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import SHARED
from refocus.errors import RefocusError
from refocus.io import load_photo, save_image

PUG = SHARED / "real-phone" / "iphone-portrait-pug.heic"
needs_pug = pytest.mark.skipif(not PUG.is_file(), reason="../shared/real-phone is absent")


def encoded(width: int, height: int, format: str, **options) -> bytes:
    """A random photo encoded as ``format`` (HEIF through pillow-heif's writer, AVIF through Pillow's)."""
    pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format, quality=95, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("format", ["HEIF", "AVIF"])
def test_heic_and_avif_decode_like_other_formats(format):
    photo = load_photo(encoded(128, 64, format))
    assert photo.pixels.shape == (64, 128, 3) and photo.pixels.dtype == np.float32
    assert 0.3 < photo.pixels.mean() < 0.7  # the random photo, not a blank


def heic_claiming(width: int, height: int) -> bytes:
    """A small HEIC whose header (the ``ispe`` box) declares ``width`` x ``height`` pixels."""
    data = bytearray(encoded(128, 64, "HEIF"))  # a multiple of the HEVC block size: no crop box
    at = data.index(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)


def test_a_200_megapixel_heic_is_refused_from_its_header_with_the_usual_sentence():
    with pytest.raises(RefocusError, match="too large") as heic:
        load_photo(heic_claiming(20_000, 10_000))
    png = io.BytesIO()
    Image.new("L", (20_000, 10_000)).save(png, format="PNG")  # what another format answers
    with pytest.raises(RefocusError) as other:
        load_photo(png.getvalue())
    assert str(heic.value) == str(other.value)
    with pytest.raises(RefocusError, match="56.0 MP; the limit is 50.0 MP"):
        load_photo(heic_claiming(8_000, 7_000))


def test_unreadable_files_name_the_new_formats():
    with pytest.raises(RefocusError, match="HEIC or AVIF"):
        load_photo(b"neither a photo nor a container")


@needs_pug
def test_the_iphone_depth_image_is_read_in_metric_disparity():
    photo = load_photo(PUG)
    depth = photo.embedded_depth
    assert (photo.width, photo.height) == (4032, 3024)
    assert depth.source == "iPhone depth (768 x 576, metric)" and depth.metric
    # uniform disparity over [d_min, d_max] = [1.498, 4.383] 1/m, the file's metadata
    assert depth.disparity.min() >= 1.498 - 1e-3 and depth.disparity.max() <= 4.383 + 1e-3
    assert depth.disparity.max() - depth.disparity.min() > 2.0
    assert photo.focal_mm_35 == 26.0


@needs_pug
def test_a_heic_with_a_corrupt_depth_item_still_opens_with_a_warning():
    data = bytearray(PUG.read_bytes())
    data[-20_000:] = bytes(20_000)  # the depth item is stored last in this file; the photo is not
    with pytest.warns(RuntimeWarning, match="depth image cannot be read"):
        photo = load_photo(bytes(data))
    assert photo.embedded_depth is None and photo.pixels.shape == (3024, 4032, 3)


def test_jpeg_and_png_output_keep_the_icc_profile_and_exif_without_gps(tmp_path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Apple", "iPhone 13 Pro", 6
    exif.get_ifd(0x8769)[0x9003] = "2023:02:21 14:33:08"  # DateTimeOriginal
    exif.get_ifd(0x8825)[2] = (55.0, 45.0, 0.0)  # GPSLatitude
    source = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 100, 50)).save(source, format="JPEG", icc_profile=profile, exif=exif)
    photo = load_photo(source.getvalue())
    assert photo.icc_profile == profile
    for name, keep_gps in (("out.jpg", False), ("out.png", False), ("gps.jpg", True)):
        save_image(tmp_path / name, photo.pixels, photo=photo, keep_gps=keep_gps)
        with Image.open(tmp_path / name) as out:
            assert out.format == ("PNG" if name.endswith("png") else "JPEG")
            assert out.info.get("icc_profile") == profile
            written = out.getexif()
            assert written[0x0110] == "iPhone 13 Pro" and written[0x0112] == 1  # upright pixels
            assert written.get_ifd(0x8769)[0x9003] == "2023:02:21 14:33:08"
            assert bool(written.get_ifd(0x8825)) == keep_gps


def test_jpeg_quality_is_honoured_and_bad_names_are_refused(tmp_path):
    pixels = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    small = save_image(tmp_path / "low.jpg", pixels, quality=20).stat().st_size
    large = save_image(tmp_path / "high.jpeg", pixels, quality=98).stat().st_size
    assert large > 2 * small
    with pytest.raises(RefocusError, match=".png, .jpg or .jpeg"):
        save_image(tmp_path / "out.gif", pixels)


@needs_pug
def test_the_iphone_display_p3_profile_survives_to_the_output(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        photo = load_photo(PUG)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(photo.icc_profile))
    assert ImageCms.getProfileDescription(profile).strip() == "Display P3"
    small = photo.pixels[::16, ::16]
    save_image(tmp_path / "out.jpg", small, photo=photo)
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.info["icc_profile"] == photo.icc_profile
        assert out.getexif()[0x0110] == "iPhone 13 Pro"


class StubDepthImage:
    """What pillow-heif hands over for a HEIF depth item: ``info["metadata"]`` and ``to_pillow()``."""

    def __init__(self, samples, metadata):
        self.samples, self.info = samples, {"metadata": metadata}

    def to_pillow(self):
        return Image.fromarray(self.samples)


@pytest.mark.parametrize(
    "metadata, expected_depth_m",
    [
        ({"representation_type": 1, "d_min": 0.25, "d_max": 2.0}, (4.0, 0.5)),  # uniform disparity
        ({"representation_type": 0, "z_near": 0.5, "z_far": 4.0}, (4.0, 0.5)),  # uniform inverse Z
        ({"representation_type": 2, "z_near": 0.5, "z_far": 4.0}, (0.5, 4.0)),  # uniform Z
    ],
)
def test_heif_depth_representations_convert_to_metric_disparity(metadata, expected_depth_m):
    from refocus.depth.embedded import read_heif_depth

    samples = np.zeros((6, 8), np.uint8)
    samples[:, 4:] = 255
    matte = np.full((3, 4), 128, np.uint8)
    info = {
        "depth_images": [StubDepthImage(samples, metadata)],
        "aux": {"urn:com:apple:photo:2018:aux:portraiteffectsmatte": [7],
                "urn:com:apple:photo:2019:aux:semantichairmatte": [8],
                "urn:com:apple:photo:2020:aux:hdrgainmap": [9]},
    }  # fmt: skip
    depth = read_heif_depth(info, lambda aux_id: Image.fromarray(matte))
    assert depth.metric and depth.source == "iPhone depth (8 x 6, metric)"
    np.testing.assert_allclose(1 / depth.disparity[0, [0, -1]], expected_depth_m, rtol=1e-5)
    assert sorted(depth.mattes) == ["hair", "portrait"] and depth.mattes["hair"].max() == pytest.approx(128 / 255)
