"""Issue 12 through the app: /animate, presets and the focal plane over the API, and the UI's handlers."""

import json

import gradio as gr
import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from conftest import sharpness, textured_scene
from refocus.presets import save_preset
from refocus.refocuser import LensSettings
from refocus.server import Session, pick_point
from test_animate import decode, sharp_left


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pull")
    image, disparity = textured_scene()
    Image.fromarray(image).save(folder / "photo.png")
    np.save(folder / "map.npy", disparity)
    return folder / "photo.png", handle_file(str(folder / "map.npy"))


def animate(client, photo, a, b, **kwargs):
    return client.predict(handle_file(str(photo)), *a, *b, api_name="/animate", **kwargs)


def test_animate_pulls_focus_from_a_to_b_into_a_browser_ready_mp4(client, scene_files):
    photo, depth_map = scene_files
    video, details = animate(client, photo, (40, 60), (120, 60), frames=5, f_number=1.4, depth_map=depth_map)
    codec, pix_fmt, frames = decode(video)
    assert (codec, pix_fmt, len(frames)) == ("h264", "yuv420p", 5) and video.endswith(".mp4")
    assert sharp_left(frames[0]) > 2 and sharp_left(frames[-1]) < 0.5  # sharp at A first, at B last
    assert details["frames"] == 5 and details["depth_source"].startswith("uploaded depth map")


def test_animate_writes_gifs_and_refuses_bad_requests_with_a_sentence(client, scene_files):
    photo, depth_map = scene_files
    gif, _ = animate(client, photo, (40, 60), (120, 60), frames=3, output_format="gif", depth_map=depth_map)
    assert Image.open(gif).n_frames == 3
    for kwargs, message in [
        ({"frames": 1}, "frames must be from 2"),
        ({"output_format": "avi"}, "output format must be one of mp4, webm, gif, webp"),
        ({"fps": 500}, "frame rate"),
        ({"easing": "bounce"}, "Unknown easing"),
    ]:
        with pytest.raises(Exception, match=message):
            animate(client, photo, (40, 60), (120, 60), depth_map=depth_map, **kwargs)


def test_a_preset_sent_with_a_request_replaces_its_lens_arguments(client, scene_files, tmp_path):
    photo, depth_map = scene_files
    preset = save_preset(tmp_path / "wide-open.json", LensSettings(f_number=1.4, shape="6-blade"))
    out, details = client.predict(handle_file(str(photo)), 40, 60, f_number=22, depth_map=depth_map,
                                  preset=handle_file(str(preset)), api_name="/refocus")  # fmt: skip
    assert details["f_number"] == 1.4
    out = np.asarray(Image.open(out).convert("RGB"))
    assert sharpness(out[:, 90:]) < 0.5 * sharpness(out[:, :70])  # f/1.4 blurs the far wall, f/22 would not
    (tmp_path / "bad.json").write_text(json.dumps({"f_number": 1.4, "aperture_blades": 6}))
    with pytest.raises(Exception, match="Unknown preset setting"):
        client.predict(handle_file(str(photo)), 40, 60, preset=handle_file(str(tmp_path / "bad.json")),
                       api_name="/refocus")  # fmt: skip


def test_a_focal_plane_through_three_points_of_a_ramp_keeps_the_whole_ramp_sharp(client, tmp_path):
    image, _ = textured_scene(160, 120)
    ramp = np.repeat(np.linspace(0.2, 1.0, 160, dtype=np.float32)[None, :], 120, axis=0)  # a receding wall
    Image.fromarray(image).save(tmp_path / "photo.png")
    np.save(tmp_path / "ramp.npy", ramp)
    common = dict(f_number=1.4, depth_map=handle_file(str(tmp_path / "ramp.npy")), api_name="/refocus")
    point, _ = client.predict(handle_file(str(tmp_path / "photo.png")), 80, 60, **common)
    plane, _ = client.predict(handle_file(str(tmp_path / "photo.png")), 80, 60,
                              focus_plane="20,20 140,30 80,100", **common)  # fmt: skip
    point, plane = (np.asarray(Image.open(p).convert("RGB")) for p in (point, plane))
    for ends in (slice(0, 30), slice(130, 160)):  # the ends of the ramp, far from the focus point
        assert sharpness(plane[:, ends]) > 0.8 * sharpness(image[:, ends])
        assert sharpness(point[:, ends]) < 0.6 * sharpness(image[:, ends])


def test_click_modes_set_the_focus_the_pull_ends_and_three_plane_points():
    session = Session("photo.png", "model", focus=(1.0, 1.0))
    session = pick_point(session, "pull_from", (10.0, 20.0))
    session = pick_point(session, "pull_to", (30.0, 40.0))
    assert (session.focus, session.pull_from, session.pull_to) == ((1.0, 1.0), (10.0, 20.0), (30.0, 40.0))
    for n in range(4):
        session = pick_point(session, "plane", (float(n), 0.0))
    assert session.plane_points == ((3.0, 0.0),)  # a fourth click starts a new plane
    session = pick_point(session, "focus", (5.0, 5.0))
    assert session.focus == (5.0, 5.0) and session.plane_points == () and session.pull_to == (30.0, 40.0)


def handlers(tiny_model_dir):
    import app as app_module

    refocus_app = app_module.RefocusApp(str(tiny_model_dir), device="cpu")
    demo = app_module.build_demo(refocus_app)
    return {fn.name: fn.fn for fn in demo.fns.values()}


def test_switching_the_maps_kind_keeps_the_focus_and_a_phone_aperture_sets_the_slider(tiny_model_dir, tmp_path):
    fns = handlers(tiny_model_dir)
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:depthBlurEffect="http://ns.apple.com/depthBlurEffect/1.0/" '
           b'depthBlurEffect:SimulatedAperture="4.5"/></rdf:RDF></x:xmpmeta>')  # fmt: skip
    image, disparity = textured_scene()
    Image.fromarray(image).save(tmp_path / "p.jpg", xmp=xmp)
    np.save(tmp_path / "d.npy", disparity)
    lens = (2.8, "disc", 0.0, 0.9, 0.0, 0.0)
    depth = [str(tmp_path / "d.npy"), "disparity", "mm", "auto"]
    model = str(tiny_model_dir)
    upload = gr.EventData(None, {})  # an event from the photo box, not from the depth-map upload
    first = fns["on_photo"](None, str(tmp_path / "p.jpg"), model, *depth, *lens, False, upload)
    session, f_number = first[0], first[12]
    assert f_number == 4.5  # where the phone's portrait mode was
    session = pick_point(session, "focus", (40.0, 60.0))
    switched = fns["on_photo"](session, str(tmp_path / "p.jpg"), model, depth[0], "depth", "mm", "auto", *lens,
                               False, upload)  # fmt: skip
    assert switched[0].focus == (40.0, 60.0) and switched[0].depth_kind == "depth"
    assert "relative depth (bright = far)" in switched[4]  # the status line shows how the map is read


def test_preset_download_and_upload_round_trip_the_controls(tiny_model_dir):
    fns = handlers(tiny_model_dir)
    lens = [1.8, "6-blade", 0.5, 0.8, 0.1, 0.2]
    path = fns["on_save_preset"](*lens)
    assert json.loads(open(path).read())["focus_falloff"] == 0.2
    assert fns["on_load_preset"](path) == lens


def test_focus_falloff_is_one_lens_setting_for_the_library_the_cli_and_presets(tmp_path):
    from refocus.errors import RefocusError
    from refocus.refocuser import Refocuser
    from test_cli import run_cli

    image = textured_scene()[0].astype(np.float32) / 255
    ramp = np.repeat(np.linspace(0.2, 1.0, 160, dtype=np.float32)[None, :], 120, axis=0)
    refocuser = Refocuser(load_model=None)
    hard, soft = (refocuser.render(image, ramp, (80, 60), LensSettings(f_number=1.4, focus_range=0.2, focus_falloff=f))
                  for f in (0.0, 0.3))  # fmt: skip
    assert sharpness(soft[:, 100:130]) > 1.2 * sharpness(hard[:, 100:130])  # blur eases in past the band
    with pytest.raises(RefocusError, match="focus falloff must be a number from 0 to 1"):
        LensSettings(focus_falloff=2)
    Image.fromarray(textured_scene()[0]).save(tmp_path / "p.png")
    np.save(tmp_path / "d.npy", ramp)
    result = run_cli(str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--depth-map", str(tmp_path / "d.npy"),
                     "--focus-falloff", "0.25", "--save-preset", str(tmp_path / "p.json"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "p.json").read_text())["focus_falloff"] == 0.25
