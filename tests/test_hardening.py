"""Hardening (issue 5): hostile inputs, bounded resources, safe loading, file access.

Each bad input goes through the faces users have: the public API (gradio_client against a
server on 127.0.0.1), the CLI (a subprocess) and the library. A bad request gets one sentence
back and the server keeps answering valid requests.
"""

import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from conftest import REPO, textured_scene
from refocus.errors import RefocusError
from refocus.io import load_photo
from refocus.refocuser import LensSettings, Refocuser
from refocus.server import launch_options
from refocus.user_depth import read_user_depth


# -- inputs -----------------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * (width + 1) * 4)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def legit_photos(folder: Path) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Legitimate but awkward photos, each with the upright size it must render at."""
    rgb = Image.fromarray(textured_scene(48, 32)[0])
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to view": the upright photo is portrait
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    sixteen = Image.fromarray((np.linspace(0, 65535, 48 * 32).reshape(32, 48)).astype(np.uint16))
    return {
        "cmyk-jpeg": (save(rgb.convert("CMYK"), folder / "cmyk.jpg"), (48, 32)),
        "palette-png": (save(rgb.convert("P"), folder / "palette.png"), (48, 32)),
        "palette-transparent": (save(rgb.convert("P"), folder / "palette-t.png", transparency=0), (48, 32)),
        "16-bit-grey-png": (save(sixteen, folder / "grey16.png"), (48, 32)),
        "rgba-png": (save(rgb.convert("RGBA"), folder / "rgba.png"), (48, 32)),
        "grey-jpeg": (save(rgb.convert("L"), folder / "grey.jpg"), (48, 32)),
        "exif-rotated-jpeg": (save(rgb, folder / "rotated.jpg", exif=exif), (32, 48)),
        "animated-gif": (save(frames[0], folder / "anim.gif", save_all=True, append_images=frames[1:]), (48, 32)),
        "animated-webp": (save(frames[0], folder / "anim.webp", save_all=True, append_images=frames[1:]), (48, 32)),
        "1x1": (save(Image.new("RGB", (1, 1), (200, 10, 10)), folder / "one.png"), (1, 1)),
        "1x5000": (save(Image.new("RGB", (1, 5000), (9, 99, 199)), folder / "strip.png"), (1, 5000)),
        "5000x1": (save(Image.new("RGB", (5000, 1), (9, 99, 199)), folder / "row.png"), (5000, 1)),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hardening")
    image, disparity = textured_scene(64, 48)
    Image.fromarray(image).save(folder / "photo.png")
    np.save(folder / "depth.npy", disparity)
    bad = {
        "text.png": b"this is not an image",
        "empty.png": b"",
        "truncated.png": (folder / "photo.png").read_bytes()[:200],
        "bomb.png": png_header_only(100_000, 100_000),
        "huge.png": png_header_only(2500, 2000),  # 5 MP: over the test server's 4 MP limit
        "fake.jpg": b"\xff\xd8\xff\xe0" + os.urandom(300),
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    depth_maps = {
        "nan.npy": np.full((48, 64), np.nan),
        "inf.npy": np.full((48, 64), np.inf),
        "negative.npy": -np.ones((48, 64)),
        "wrong-size.npy": np.ones((10, 10)),
        "complex.npy": np.ones((48, 64), complex),
        "rgb2.npy": np.ones((48, 64, 2)),
        "constant.npy": np.full((48, 64), 3.0),
        "some-nan.npy": np.where(disparity > 0.5, np.nan, disparity),
        "huge-values.npy": disparity.astype(np.float64) * 1e300,
        "denormal-depth.npy": np.where(disparity > 0.5, 1e-320, 1.0),
    }
    for name, values in depth_maps.items():
        np.save(folder / name, values)
    np.save(folder / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (folder / "bomb-depth.png").write_bytes(png_header_only(40_000, 30_000))
    return folder


def refocus_call(client, photo, **kwargs):
    kwargs.setdefault("x", 10)
    kwargs.setdefault("y", 10)
    return client.predict(handle_file(str(photo)), api_name="/refocus", **kwargs)


def still_serving(client, files) -> None:
    png, details = refocus_call(client, files / "photo.png", depth_map=handle_file(str(files / "depth.npy")))
    assert Image.open(png).size == (64, 48) and details["width"] == 64


# -- 1. legitimate photos render, everywhere ---------------------------------------------------


def test_awkward_but_legitimate_photos_render_through_the_api(client, files, tmp_path):
    for name, (path, size) in legit_photos(tmp_path).items():
        png, details = refocus_call(client, path, x=0, y=0, f_number=1.4)
        out = Image.open(png)
        assert out.size == size, name
        assert (details["width"], details["height"]) == size, name


def test_tiny_and_extreme_aspect_photos_get_depth_from_the_network(tiny_model_dir):
    refocuser = Refocuser(str(tiny_model_dir), "cpu")
    for width, height in [(1, 1), (1, 5000), (5000, 1), (3, 1), (2, 2), (400, 3)]:
        photo = load_photo(np.full((height, width, 3), 128, np.uint8))
        prepared = refocuser.prepare(photo)
        assert prepared.depth.disparity.shape == (height, width)
        assert np.isfinite(prepared.depth.disparity).all()
        image = refocuser.render_full(photo, prepared, (width - 1, height - 1), LensSettings(f_number=1.0))
        assert image.shape == (height, width, 3) and np.isfinite(image).all()


# -- 1. bad inputs: one sentence, and the server keeps serving ---------------------------------


@pytest.mark.parametrize(
    "file, message",
    [
        ("text.png", "not an image"),
        ("empty.png", "empty"),
        ("truncated.png", "damaged or truncated"),
        ("fake.jpg", "damaged or truncated|not an image"),
        ("bomb.png", "too large"),
        ("huge.png", "limit is 4.0 MP"),
    ],
)
def test_bad_photo_files_are_refused_with_a_sentence(client, files, file, message):
    with pytest.raises(Exception, match=message) as refused:
        refocus_call(client, files / file)
    assert "Traceback" not in str(refused.value)
    still_serving(client, files)


NOT_A_NUMBER = "finite number"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"f_number": 0}, "f-number must be a number from 0.7 to 64"),
        ({"f_number": -2}, "f-number"),
        ({"f_number": 1e300}, "f-number"),
        ({"f_number": "wide open"}, NOT_A_NUMBER),
        ({"f_number": None}, NOT_A_NUMBER),
        ({"x": "left"}, NOT_A_NUMBER),
        ({"x": -1}, "outside the image"),
        ({"x": 64}, "outside the image"),
        ({"y": 1e12}, "outside the image"),
        ({"shape": "triangle"}, "Unknown bokeh shape"),
        ({"shape": ["disc"]}, "Unknown bokeh shape"),
        ({"shape": "x" * 10_000}, "Unknown bokeh shape"),
        ({"highlight_boost": -1}, "highlight boost"),
        ({"highlight_threshold": 0}, "highlight threshold"),
        ({"focus_range": 2}, "focus range"),
        ({"depth_kind": "banana"}, "kind must be one of auto, disparity, depth, metric"),
        ({"depth_source": "banana"}, "depth source must be one of auto, embedded, model"),
        ({"focus_falloff": -0.5}, "focus falloff"),
        ({"output_format": "bmp"}, "output format must be png or jpeg"),
        ({"jpeg_quality": 0}, "JPEG quality must be from 1 to 100"),
        ({"focus_plane": "1,1 2,2"}, "exactly three points"),
    ],
)
def test_bad_numbers_and_names_are_refused_with_a_sentence(client, files, kwargs, message):
    kwargs = {"depth_map": handle_file(str(files / "depth.npy")), **kwargs}
    with pytest.raises(Exception, match=message) as refused:
        refocus_call(client, files / "photo.png", **kwargs)
    assert len(str(refused.value)) < 400  # a sentence, not an echo of the request
    still_serving(client, files)


@pytest.mark.parametrize(
    "depth_map, message",
    [
        ("nan.npy", "no valid values"),
        ("inf.npy", "no valid values"),
        ("negative.npy", "no valid values"),
        ("wrong-size.npy", "shapes differ"),
        ("complex.npy", "real numbers"),
        ("rgb2.npy", "single-channel"),
        ("pickled.npy", "plain numeric array"),
        ("bomb-depth.png", "limit is"),
        ("text.png", "not a PNG, TIFF or .npy"),
    ],
)
def test_bad_depth_maps_are_refused_with_a_sentence(client, files, depth_map, message):
    with pytest.raises(Exception, match=message):
        refocus_call(client, files / "photo.png", depth_map=handle_file(str(files / depth_map)))
    still_serving(client, files)


@pytest.mark.parametrize("depth_map", ["constant.npy", "some-nan.npy", "huge-values.npy", "denormal-depth.npy"])
def test_odd_but_usable_depth_maps_render(client, files, depth_map):
    kind = "depth" if depth_map.startswith("denormal") else "disparity"
    png, _ = refocus_call(client, files / "photo.png", depth_map=handle_file(str(files / depth_map)), depth_kind=kind)
    out = np.asarray(Image.open(png))
    assert out.shape == (48, 64, 3)


def test_usable_depth_maps_come_out_finite_and_bounded(files):
    photo = load_photo(files / "photo.png")
    for name in ["constant.npy", "some-nan.npy", "huge-values.npy", "denormal-depth.npy"]:
        for kind in ("disparity", "depth", "metric"):
            disparity = read_user_depth(files / name, photo.pixels, kind).disparity
            assert disparity.shape == (48, 64) and disparity.dtype == np.float32
            assert np.isfinite(disparity).all() and disparity.min() >= 0 and disparity.max() <= 1000


def test_missing_image_is_a_sentence(client, files):
    with pytest.raises(Exception, match="No image file was sent"):
        client.predict(None, 1, 1, api_name="/refocus")
    still_serving(client, files)


def test_preview_focus_outside_the_photo_names_the_photo_size(files):
    photo = load_photo(files / "photo.png")
    refocuser = Refocuser()
    prepared = refocuser.prepare(photo, read_user_depth(files / "depth.npy", photo.pixels, "disparity").disparity)
    with pytest.raises(RefocusError, match="outside the image, which is 64 x 48"):
        refocuser.preview_lens(prepared, (-3, 5), LensSettings())


# -- the CLI ----------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "refocus", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_cli_renders_a_1x5000_strip_with_the_network(tmp_path, tiny_model_dir):
    Image.new("RGB", (1, 5000), (9, 99, 199)).save(tmp_path / "strip.png")
    result = run_cli(tmp_path / "strip.png", "-o", tmp_path / "out.png", "--depth-model", tiny_model_dir, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out.png").size == (1, 5000)


def test_cli_bad_numbers_and_files_exit_2_with_one_sentence(tmp_path, files):
    photo, depth = files / "photo.png", files / "depth.npy"
    for args, message in [
        ([photo, "--depth-map", depth, "--f-number", "nan"], "f-number must be a finite number"),
        ([photo, "--depth-map", depth, "--f-number", "0"], "f-number must be a number from 0.7"),
        ([photo, "--depth-map", depth, "--focus", "nan,3"], "focus x must be a finite number"),
        ([photo, "--depth-map", depth, "--focus", "64,3"], "outside the image"),
        ([photo, "--depth-map", files / "bomb-depth.png"], "limit is"),
        ([files / "bomb.png", "--depth-map", depth], "too large"),
    ]:
        result = run_cli(*args, "-o", tmp_path / "o.png")
        assert result.returncode == 2, (args, result.stderr)
        assert re.search(message, result.stderr) and "Traceback" not in result.stderr, (args, result.stderr)


# -- 2. resource bounds -------------------------------------------------------------------------


class ConstantDepth:
    name, licence, device = "constant", "none", "cpu"

    def predict(self, image):
        from refocus.depth.base import DepthResult

        return DepthResult(np.ones(image.shape[:2], np.float32))


def test_depth_and_prepared_caches_stay_within_their_byte_bound():
    budget = 6 << 20  # a prepared 320 x 240 photo counts 2.7 MB (its preview, map and their reuse)
    refocuser = Refocuser("constant", cache_bytes=budget, load_model=lambda *a, **k: ConstantDepth())
    rng = np.random.default_rng(0)
    photos = [load_photo(rng.integers(0, 255, (240, 320, 3), np.uint8)) for _ in range(12)]
    for photo in photos:
        refocuser.prepare(photo)
        assert refocuser.cache.nbytes <= budget // 2 and refocuser._prepared.nbytes <= budget // 2
    assert 0 < len(refocuser.cache) < 12 and 0 < len(refocuser._prepared) < 12  # older ones were evicted
    assert refocuser.prepare(photos[-1]) is refocuser.prepare(photos[-1])  # the latest is still cached


def test_session_state_expires_heavy_work_is_one_at_a_time_and_files_expire(tiny_model_dir):
    import app as app_module

    refocus_app = app_module.RefocusApp(str(tiny_model_dir))
    demo = app_module.build_demo(refocus_app)
    states = [b for b in demo.blocks.values() if type(b).__name__ == "State"]
    assert states and all(s.time_to_live == app_module.SESSION_TTL_S for s in states)
    assert demo.delete_cache is not None  # Gradio's copies of uploads and outputs expire too
    heavy = {"refocus_api", "depth_api", "on_photo", "on_full_resolution"}
    fns = {fn.name: fn for fn in demo.fns.values()}
    assert heavy <= set(fns)
    for name in heavy:
        assert (fns[name].concurrency_id, fns[name].concurrency_limit) == ("gpu", 1), name


def test_old_output_files_are_removed(tiny_model_dir):
    import app as app_module

    refocus_app = app_module.RefocusApp(str(tiny_model_dir))
    old = refocus_app.outputs.new_file("old.png")
    old.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(old.parent, (an_hour_ago, an_hour_ago))
    fresh = refocus_app.outputs.new_file("fresh.png")
    assert not old.parent.exists() and fresh.parent.exists()


def test_output_folder_is_removed_at_exit(tiny_model_dir):
    script = "import app; a = app.RefocusApp(); a.outputs.new_file('x.png').write_bytes(b'x'); print(a.outputs.folder)"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not Path(result.stdout.strip().splitlines()[-1]).exists()


def test_launch_queues_bounded_and_serves_only_the_examples(monkeypatch):
    import gradio as gr

    import app as app_module
    from refocus.io import DEFAULT_MAX_BYTES

    launched = {}
    monkeypatch.setattr(app_module.RefocusApp, "try_load_default_model", lambda self: None)
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: launched.update(demo=self, **kwargs))
    app_module.main(["--port", "7999", "--queue-size", "9"])
    demo = launched.pop("demo")
    assert demo._queue.max_size == 9
    assert launched["allowed_paths"] == [str(app_module.EXAMPLES_DIR)]
    assert launched["max_file_size"] == DEFAULT_MAX_BYTES
    assert launched["server_name"] == "127.0.0.1"


# -- 3. safe loading and file access ---------------------------------------------------------


def source_files():
    for folder in ["refocus", "training", "benchmarks", "docs"]:
        yield from (REPO / folder).rglob("*.py")
    yield from REPO.glob("*.py")  # app.py and its handler and API modules


def test_no_unsafe_deserialisation_or_remote_code_in_the_sources():
    for path in source_files():
        text = path.read_text()
        assert "trust_remote_code=True" not in text, path
        assert "allow_pickle=True" not in text, path
        assert not re.search(r"\bpickle\.loads?\(", text), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)


def test_the_api_offers_no_model_or_path_argument(client):
    info = client.view_api(return_format="dict", print_info=False)
    names = {p["parameter_name"] for e in info["named_endpoints"].values() for p in e["parameters"]}
    assert not names & {"model", "model_spec", "depth_model", "path", "device"}, names


def test_the_ui_model_choice_is_limited_to_the_operators_list(tiny_model_dir):
    import app as app_module

    refocus_app = app_module.RefocusApp(str(tiny_model_dir), model_choices=[])
    for hostile in ["/etc", str(REPO), "attacker/evil-model", "../../tmp/x"]:
        with pytest.raises(RefocusError, match="Unknown depth model"):
            refocus_app.refocuser(hostile)
    assert refocus_app._refocusers == {}


@pytest.fixture(scope="module")
def hardened_server(tiny_model_dir):
    """The app launched with ``launch_options`` as ``python app.py`` does, but 1 MB uploads."""
    import app as app_module

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refocus_app = app_module.RefocusApp(str(tiny_model_dir), device="cpu")
    demo = app_module.build_demo(refocus_app)
    demo.queue(max_size=8)
    options = {**launch_options("127.0.0.1", port, [app_module.EXAMPLES_DIR]), "max_file_size": 1_000_000}
    demo.launch(prevent_thread_lock=True, quiet=True, **options)
    yield refocus_app, f"http://127.0.0.1:{port}"
    demo.close()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_only_the_examples_are_served_over_http(hardened_server):
    refocus_app, url = hardened_server
    secret = refocus_app.outputs.new_file("secret.png")
    secret.write_bytes(b"x")
    for path in ["/etc/passwd", "/proc/self/environ", REPO / "app.py", REPO / "refocus" / "io.py", "app.py",
                 "../../../etc/passwd", "%2Fetc%2Fpasswd", REPO / "examples" / ".." / "app.py", secret]:  # fmt: skip
        assert http_status(f"{url}/gradio_api/file={path}") in (403, 404), path
    example = next((REPO / "examples").glob("*.jpg"))
    assert http_status(f"{url}/gradio_api/file={example}") == 200


def raw_refocus(url: str, image: dict, *numbers) -> str:
    """POST /gradio_api/call/refocus without gradio_client (as a hostile script would).

    ``numbers`` replace x, y, f_number; Python's json writes NaN and Infinity literals, which
    gradio_client refuses to send but a script can.
    """
    numbers = [*numbers, 1, 1, 2.8][:3] if numbers else [1, 1, 2.8]
    # A raw call sends every argument (gradio_client fills in the defaults; a raw caller must).
    rest = ["disc", 0.0, 0.9, 0.0, None, "disparity", "", "auto", 0.0, "", "png", 92, False, None, None, "keep-sharp"]
    body = json.dumps({"data": [image, *numbers, *rest]}).encode()
    request = urllib.request.Request(f"{url}/gradio_api/call/refocus", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/refocus/{event_id}", timeout=60) as response:
        return response.read().decode()


def test_api_callers_cannot_make_the_server_read_its_own_files_or_urls(hardened_server, files):
    _, url = hardened_server
    for path in ["/etc/passwd", str(REPO / "app.py"), str(next((REPO / "examples").glob("*.jpg"))),
                 f"{url}/gradio_api/file={REPO / 'app.py'}", "http://169.254.169.254/latest/meta-data"]:  # fmt: skip
        answer = raw_refocus(url, {"path": path, "meta": {"_type": "gradio.FileData"}})
        assert "event: error" in answer and "root:" not in answer and "import" not in answer, path
    client = Client(url, verbose=False)
    still_serving(client, files)


def test_nan_and_infinity_sent_as_json_literals_are_refused(hardened_server, files):
    import httpx

    _, url = hardened_server
    with open(files / "photo.png", "rb") as f:
        uploaded = httpx.post(f"{url}/gradio_api/upload", files={"files": ("photo.png", f)}, timeout=30).json()
    image = {"path": uploaded[0], "orig_name": "photo.png", "meta": {"_type": "gradio.FileData"}}
    for numbers, message in [
        ((float("nan"), 1), "focus x must be a finite number"),
        ((1, float("inf")), "focus y must be a finite number"),
        ((1, 1, float("nan")), "f-number must be a finite number"),
        ((1, 1, float("-inf")), "f-number must be a finite number"),
    ]:
        assert message in raw_refocus(url, image, *numbers), numbers
    assert "event: complete" in raw_refocus(url, image, 5, 5, 2.8)


def test_uploads_over_the_size_limit_are_refused(hardened_server, files, tmp_path):
    _, url = hardened_server
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(64, 48) + os.urandom(1_100_000))
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="(?i)too large|exceeds|maximum"):
        refocus_call(client, big)
    still_serving(client, files)
