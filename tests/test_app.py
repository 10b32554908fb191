"""The app end to end: launched on 127.0.0.1 and driven through gradio_client, as users' scripts do."""

import json

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from conftest import sharpness, textured_scene


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    image, disparity = textured_scene()
    Image.fromarray(image).save(folder / "photo.png")
    Image.fromarray((disparity * 255).astype(np.uint8)).save(folder / "disparity.png")
    return folder / "photo.png", folder / "disparity.png"


def refocus_call(client, photo, **kwargs):
    return client.predict(handle_file(str(photo)), api_name="/refocus", **kwargs)


def test_importing_the_app_loads_no_model(tiny_model_dir):
    import app as app_module

    refocus_app = app_module.RefocusApp(str(tiny_model_dir))
    app_module.build_demo(refocus_app)
    assert not refocus_app.refocuser().model_loaded


def test_status_answers(client):
    status = client.predict(api_name="/status")
    status = json.loads(status) if isinstance(status, str) else status
    assert {"model", "device", "cuda_available", "versions"} <= set(status)
    assert "gradio" in status["versions"]


def test_refocus_keeps_the_clicked_half_sharp_and_blurs_the_other(client, scene_files):
    photo, depth_map = scene_files
    original = np.asarray(Image.open(photo))
    for x, sharp_side in [(40, slice(0, 70)), (120, slice(90, 160))]:
        png, details = refocus_call(
            client, photo, x=x, y=60, f_number=1.4, depth_map=handle_file(str(depth_map)), depth_kind="disparity"
        )
        out = Image.open(png)
        assert out.format == "PNG" and out.size == (160, 120)
        out = np.asarray(out.convert("RGB"))
        blurry_side = slice(90, 160) if sharp_side.start == 0 else slice(0, 70)
        assert sharpness(out[:, sharp_side]) > 0.8 * sharpness(original[:, sharp_side])
        assert sharpness(out[:, blurry_side]) < 0.5 * sharpness(original[:, blurry_side])
        assert details["width"] == 160 and details["height"] == 120


def test_refocus_with_the_depth_network(server, client, scene_files):
    refocus_app, _ = server
    photo, _ = scene_files
    png, _ = refocus_call(client, photo, x=10, y=10, f_number=2.0, shape="6-blade")
    assert Image.open(png).size == (160, 120)
    assert refocus_app.refocuser().model_loaded


def test_depth_endpoint_returns_a_16_bit_png_at_the_photo_size(client, scene_files):
    photo, _ = scene_files
    depth = Image.open(client.predict(handle_file(str(photo)), api_name="/depth"))
    assert depth.mode.startswith("I;16") and depth.size == (160, 120)
    assert np.ptp(np.asarray(depth)) > 0


def test_depth_is_computed_once_per_photo(server, client, scene_files, monkeypatch):
    refocus_app, _ = server
    photo, _ = scene_files
    refocus_call(client, photo, x=5, y=5)
    model = refocus_app.refocuser().model
    calls = []
    original_predict = type(model).predict
    monkeypatch.setattr(type(model), "predict", lambda self, image: calls.append(1) or original_predict(self, image))
    refocus_call(client, photo, x=100, y=50, f_number=4.0)
    client.predict(handle_file(str(photo)), api_name="/depth")
    assert calls == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x": 500, "y": 10}, "outside the image"),
        ({"x": 10, "y": 10, "f_number": 0}, "f-number"),
        ({"x": 10, "y": 10, "f_number": 1e9}, "f-number"),  # (JSON cannot carry NaN)
        ({"x": 10, "y": 10, "shape": "triangle"}, "Unknown bokeh shape"),
        ({"x": 10, "y": 10, "focus_range": -1}, "focus range"),
    ],
)
def test_bad_requests_get_a_sentence_and_the_server_keeps_serving(client, scene_files, kwargs, message):
    photo, _ = scene_files
    with pytest.raises(Exception, match=message):
        refocus_call(client, photo, **kwargs)
    png, _ = refocus_call(client, photo, x=10, y=10)  # still serving
    assert Image.open(png).size == (160, 120)


def test_bad_files_get_a_sentence(client, scene_files, tmp_path):
    photo, _ = scene_files
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(Exception, match="not an image"):
        refocus_call(client, tmp_path / "notes.png", x=1, y=1)
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(tmp_path / "square.png")
    with pytest.raises(Exception, match="shapes differ"):
        refocus_call(client, photo, x=1, y=1, depth_map=handle_file(str(tmp_path / "square.png")))


def test_clicks_on_the_photo_and_on_the_smaller_preview_focus_the_same_photo_pixel(tiny_model_dir, tmp_path):
    import gradio as gr

    import app as app_module
    from refocus.server import Session

    refocus_app = app_module.RefocusApp(str(tiny_model_dir), device="cpu")
    demo = app_module.build_demo(refocus_app)
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    on_click = next(fn.fn for fn in demo.fns.values() if fn.name == "on_click")
    path = tmp_path / "wide.png"
    Image.fromarray(textured_scene(1600, 800)[0]).save(path)  # the preview is 1024 x 512: scale 0.64
    session = Session(str(path), refocus_app.default_model)
    refocus_app.prepared(session)  # as the upload did
    controls = ("focus", 2.8, "disc", 0.0, 0.9, 0.0, 0.0, False)  # click mode, the lens controls, tint

    def click(target, index, page_click=None):
        return on_click(session, *controls, page_click, gr.SelectData(blocks[target], {"index": index, "value": None}))

    on_photo = click("photo", [800, 400])
    on_preview = click("result", [512, 256])
    # The page's own record of the latest click (fractions of the picture) wins over Gradio's.
    on_page = click("result", [0, 0], {"fx": 0.5, "fy": 0.5, "seq": 3})
    assert on_photo[0].focus == on_preview[0].focus == on_page[0].focus == (800.0, 400.0)
    assert on_page[-1] == {"fx": 0.5, "fy": 0.5, "seq": 3}  # the marker answers click 3
    assert on_preview[0].timings is session.timings  # the session keeps one record of its timings


def test_an_edit_mask_keeps_the_painted_half_sharp_through_the_api(client, scene_files, tmp_path):
    photo, depth_map = scene_files
    original = np.asarray(Image.open(photo))
    mask = np.zeros((120, 160), np.uint8)
    mask[:, :60] = 255  # the near card, out of focus when the far wall (x = 120) is focused
    Image.fromarray(mask).save(tmp_path / "mask.png")
    depth = handle_file(str(depth_map))
    plain, _ = refocus_call(client, photo, x=120, y=60, f_number=1.4, depth_map=depth)
    edited, _ = refocus_call(
        client, photo, x=120, y=60, f_number=1.4, depth_map=depth, edit_mask=handle_file(str(tmp_path / "mask.png"))
    )
    card = slice(0, 50)
    assert sharpness(np.asarray(Image.open(plain).convert("RGB"))[:, card]) < 0.5 * sharpness(original[:, card])
    assert sharpness(np.asarray(Image.open(edited).convert("RGB"))[:, card]) > 0.8 * sharpness(original[:, card])
    with pytest.raises(Exception, match="brush mode"):
        refocus_call(client, photo, x=1, y=1, edit_mask=handle_file(str(tmp_path / "mask.png")), edit_mode="smudge")


def test_brush_strokes_edit_the_depth_survive_focus_changes_and_undo(tiny_model_dir, tmp_path):
    import app as app_module
    from refocus.server import Session

    refocus_app = app_module.RefocusApp(str(tiny_model_dir), device="cpu")
    demo = app_module.build_demo(refocus_app)
    fns = {fn.name: fn.fn for fn in demo.fns.values()}
    image, disparity = textured_scene(320, 240)
    Image.fromarray(image).save(tmp_path / "photo.png")
    np.save(tmp_path / "depth.npy", disparity)
    session = Session(str(tmp_path / "photo.png"), refocus_app.default_model, str(tmp_path / "depth.npy"))
    refocus_app.prepared(session)
    session.focus = (280.0, 120.0)  # the far wall
    layer = np.zeros((240, 320, 4), np.uint8)
    layer[:, :150, 3] = 255  # painted over the near card
    lens = (1.4, "disc", 0.0, 0.9, 0.0, 0.0, False)  # the lens controls, then "tint what is in focus"

    outputs = fns["on_stroke"](session, {"background": None, "layers": [layer]}, "keep-sharp", 1.0, 0.0, *lens)
    edited_session, preview = outputs[0], outputs[1]
    assert len(edited_session.strokes) == 1
    assert sharpness(preview[:, :140]) > 0.8 * sharpness(image[:, :140])  # kept sharp, focus elsewhere
    depth16 = np.asarray(Image.open(outputs[6]))
    assert np.ptp(depth16[:, :140]) < 0.05 * 65535  # the download holds the edited (flattened) depth

    refocused = fns["on_controls"](edited_session, *lens)  # another change
    assert sharpness(refocused[1][:, :140]) > 0.8 * sharpness(image[:, :140])
    undone = fns["on_strokes"](edited_session, "all but last", *lens)
    assert undone[0].strokes == () and sharpness(undone[1][:, :140]) < 0.5 * sharpness(image[:, :140])


def test_a_tabs_events_start_from_the_session_its_earlier_events_left(tiny_model_dir, tmp_path):
    import gradio as gr

    import app as app_module
    from refocus.refocuser import LensSettings
    from refocus.server import Session

    refocus_app = app_module.RefocusApp(str(tiny_model_dir), device="cpu")
    demo = app_module.build_demo(refocus_app)
    fns = {fn.name: fn.fn for fn in demo.fns.values()}
    result = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "result")
    Image.fromarray(textured_scene(320, 240)[0]).save(tmp_path / "photo.png")
    session = Session(str(tmp_path / "photo.png"), refocus_app.default_model)
    refocus_app.prepared(session)
    session.history = session.history.reset((session.focus, LensSettings(2.8)))
    lens = ("disc", 0.0, 0.9, 0.0, 0.0, False)  # the lens controls after the f-number, then the tint
    tab = gr.Request(session_hash="tab")
    click = {"fx": 0.75, "fy": 0.5, "seq": 1}

    # Gradio hands both events the session as it was before either (the click's mousedown applied
    # the typed f-number): the second must still start from the session the first left.
    select = gr.SelectData(result, {"index": [0, 0], "value": None})
    clicked = fns["on_click"](session, "focus", 1.4, *lens, click, select, request=tab)
    changed = fns["on_controls"](session, 1.4, *lens, request=tab)
    assert clicked[0].focus == changed[0].focus == (240.0, 120.0), "the click was lost"
    # The f-number came with the click: the second event's same values add no undo step.
    undone = fns["on_undo"](session, False, request=tab)
    assert undone[0].focus == session.focus and undone[6] == 2.8
    redone = fns["on_redo"](session, False, request=tab)
    assert redone[0].focus == (240.0, 120.0) and redone[6] == 1.4
    # Another tab keeps its own session.
    assert fns["on_controls"](session, 8.0, *lens, request=gr.Request(session_hash="other"))[0].focus == session.focus
    # Gradio may start one tab's events out of order (a queue per listener, taken in random
    # order): a click sent before a change of the f-number, but run after it, keeps the newer f-number.
    tab = gr.Request(session_hash="late click")
    fns["on_controls"](session, 8.0, *lens, 2, request=tab)  # sent second, at the page's second action
    late = fns["on_click"](session, "focus", 1.4, *lens, {**click, "stamp": 1}, select, request=tab)
    assert late[0].focus == (240.0, 120.0) and late[0].history.current[1].f_number == 8.0
