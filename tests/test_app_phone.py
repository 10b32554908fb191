"""Issue 10 through the app's API (gradio_client): phone formats, the depth's source, maps in their units, JPEG out."""

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageCms

from browser import launch_app
from conftest import SHARED, sharpness, textured_scene
from test_google_depth import scene, write_gdepth

PUG = SHARED / "real-phone" / "iphone-portrait-pug.heic"


@pytest.fixture(scope="module")
def offline_client():
    """The app with no depth model installed (the hub is offline and the name is unknown)."""
    import app as app_module

    refocus_app = app_module.RefocusApp("no-such-model", device="cpu", max_image_pixels=13_000_000)
    with launch_app(refocus_app) as url:
        yield Client(url, verbose=False)


def refocus_call(client, photo, **kwargs):
    return client.predict(handle_file(str(photo)), api_name="/refocus", **kwargs)


@pytest.mark.parametrize("format", ["HEIF", "AVIF"])
def test_heic_and_avif_photos_refocus_with_an_uploaded_map(client, tmp_path, format):
    image, disparity = textured_scene()
    Image.fromarray(image).save(tmp_path / f"photo.{format.lower()}", format=format, quality=95)
    Image.fromarray((disparity * 255).astype(np.uint8)).save(tmp_path / "map.png")
    out, details = refocus_call(client, tmp_path / f"photo.{format.lower()}", x=40, y=60, f_number=1.4,
                                depth_map=handle_file(str(tmp_path / "map.png")))  # fmt: skip
    out = np.asarray(Image.open(out).convert("RGB"))
    assert out.shape == (120, 160, 3)
    assert sharpness(out[:, :70]) > 2 * sharpness(out[:, 90:])  # the clicked near half stays sharp
    # an 8-bit map is read as relative disparity, and the answer says so
    assert details["depth_source"].startswith("uploaded depth map (relative disparity")


def test_embedded_depth_works_with_no_model_installed_and_the_model_can_be_chosen(offline_client, client, tmp_path):
    photo, depth = scene()
    path = tmp_path / "gdepth.jpg"
    path.write_bytes(write_gdepth(photo, depth, 0.3, 6.0))
    out, details = refocus_call(offline_client, path, x=120, y=60, f_number=1.4)
    assert details["depth_source"] == "embedded Google GDepth depth (160 x 120, metric)"
    assert details["model"] is None
    out = np.asarray(Image.open(out).convert("RGB"))
    assert sharpness(out[:, 90:]) > 2 * sharpness(out[:, :70])  # the far wall clicked is in focus
    with pytest.raises(Exception, match="no-such-model"):  # asked for, the missing model is named
        refocus_call(offline_client, path, x=120, y=60, depth_source="model")
    _, details = refocus_call(client, path, x=120, y=60, depth_source="model")
    assert details["depth_source"].startswith("model:")
    image, _ = textured_scene()
    Image.fromarray(image).save(tmp_path / "plain.png")
    with pytest.raises(Exception, match="carries no depth map"):
        refocus_call(client, tmp_path / "plain.png", x=1, y=1, depth_source="embedded")


def test_a_16_bit_map_is_read_as_millimetres_and_the_answer_shows_the_range(client, tmp_path):
    image, _ = textured_scene()
    Image.fromarray(image).save(tmp_path / "photo.png")
    millimetres = np.full((120, 160), 9800, np.uint16)
    millimetres[:, :80] = 700
    millimetres[:40, :48] = 0  # no measurement (10 % of the map): filled from the photo, and counted
    Image.fromarray(millimetres).save(tmp_path / "nyu.png")
    map_file = handle_file(str(tmp_path / "nyu.png"))
    _, details = refocus_call(client, tmp_path / "photo.png", x=40, y=60, depth_map=map_file)
    assert "metric depth in millimetres: 0.7 m to 9.8 m; 10% of pixels had no value" in details["depth_source"]
    _, as_metres = refocus_call(client, tmp_path / "photo.png", x=40, y=60, depth_map=map_file,
                                depth_kind="metric", depth_unit="1/256")  # fmt: skip
    assert "units of 1/256 m: 2.7 m to 38.3 m" in as_metres["depth_source"]  # a wrong choice is visible


def test_jpeg_download_keeps_colour_profile_and_exif_and_gps_only_on_request(client, tmp_path):
    image, disparity = textured_scene()
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0110] = "iPhone 13 Pro"
    exif.get_ifd(0x8825)[2] = (55.0, 45.0, 0.0)  # GPSLatitude
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=95, icc_profile=profile, exif=exif)
    np.save(tmp_path / "map.npy", disparity)
    for keep_gps in (False, True):
        out, _ = refocus_call(client, tmp_path / "photo.jpg", x=40, y=60, output_format="jpeg", jpeg_quality=80,
                              keep_gps=keep_gps, depth_map=handle_file(str(tmp_path / "map.npy")))  # fmt: skip
        with Image.open(out) as written:
            assert written.format == "JPEG" and out.endswith(".jpg")
            assert written.info["icc_profile"] == profile
            assert written.getexif()[0x0110] == "iPhone 13 Pro"
            assert bool(written.getexif().get_ifd(0x8825)) == keep_gps


@pytest.mark.skipif(not PUG.is_file(), reason="../shared/real-phone is absent")
def test_the_iphone_heic_pulls_focus_offline_through_the_api(offline_client):
    # /animate renders at the preview's size: the 12 MP photo's decoding and depth are what is
    # tested here, in seconds (a full-size /refocus of it takes half a minute on a loaded CPU)
    out, details = offline_client.predict(handle_file(str(PUG)), 2350, 1850, 500, 400, frames=2, f_number=16,
                                          output_format="gif", api_name="/animate")  # fmt: skip
    assert details["depth_source"] == "embedded iPhone depth (768 x 576, metric)"
    with Image.open(out) as gif:
        assert gif.n_frames == 2 and gif.size == (1024, 768)
