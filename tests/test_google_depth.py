"""Google camera depth: GDepth XMP (with Extended XMP) and Dynamic Depth 1.0, written here and read back.

The writers follow the published specifications (Google "GDepth" depth map XMP, Adobe XMP
part 3 for Extended XMP in JPEG, and Dynamic Depth 1.0), independently of the reader.
"""

import base64
import hashlib
import io
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, sharpness
from refocus.depth.google import read_google_depth
from refocus.io import load_photo
from refocus.refocuser import LensSettings, Refocuser

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
CHUNK = 60_000  # Extended XMP bytes per APP1 segment (the segment limit is 65 533)


def scene(width=160, height=120, seed=0):
    """A textured photo (uint8) and its metric depth: a card at 0.5 m on the left, a wall at 4 m."""
    rng = np.random.default_rng(seed)
    photo = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    depth = np.full((height, width), 4.0)
    depth[:, : width // 2] = 0.5
    return photo, depth


def encode_range(depth, near, far, form, bits=8):
    """Depth in metres -> a grey PNG of normalised samples per GDepth/Dynamic Depth ``form``."""
    if form == "RangeLinear":
        normalised = (depth - near) / (far - near)
    else:  # RangeInverse
        normalised = (far * (depth - near)) / (depth * (far - near))
    top = 2**bits - 1
    samples = np.rint(np.clip(normalised, 0, 1) * top).astype(np.uint8 if bits == 8 else np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(samples).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_with_app1(photo, segments, orientation=1):
    """A baseline JPEG of ``photo`` (EXIF ``orientation``) with APP1 ``segments`` inserted right after SOI."""
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo).save(buffer, format="JPEG", quality=95, exif=exif)
    data = buffer.getvalue()
    app1 = b"".join(b"\xff\xe1" + struct.pack(">H", len(s) + 2) + s for s in segments)
    return data[:2] + app1 + data[2:]


def xmp_packet(description_attributes, body=""):
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" {description_attributes}>{body}</rdf:Description></rdf:RDF></x:xmpmeta>'
    ).encode()


def write_gdepth(photo, depth, near, far, form="RangeInverse", units="m", shuffle=True, orientation=1):
    """A GDepth JPEG: Format/Near/Far/Units/Mime in the main XMP, the PNG in Extended XMP chunks."""
    png = encode_range(depth, near, far, form)
    extended = xmp_packet(
        'xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/"',
        f"<GDepth:Data>{base64.b64encode(png).decode()}</GDepth:Data>",
    )
    guid = hashlib.md5(extended).hexdigest().upper().encode()
    main = xmp_packet(
        'xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" xmlns:xmpNote="http://ns.adobe.com/xmp/note/" '
        f'GDepth:Format="{form}" GDepth:Near="{near}" GDepth:Far="{far}" GDepth:Units="{units}" '
        f'GDepth:Mime="image/png" xmpNote:HasExtendedXMP="{guid.decode()}"'
    )
    chunks = [
        EXTENDED_HEADER + guid + struct.pack(">II", len(extended), offset) + extended[offset : offset + CHUNK]
        for offset in range(0, len(extended), CHUNK)
    ]
    if shuffle:
        chunks.reverse()  # readers must order by offset, not by position in the file
    decoy = EXTENDED_HEADER + b"0" * 32 + struct.pack(">II", 10, 0) + b"not ours!!"
    return jpeg_with_app1(photo, [XMP_HEADER + main, decoy, *chunks], orientation)


def write_dynamic_depth(photo, depth, near, far, form="RangeLinear", units="Meters"):
    """A Dynamic Depth 1.0 JPEG: a container directory in XMP, the depth PNG appended after the JPEG."""
    png = encode_range(depth, near, far, form, bits=16)
    confidence = encode_range(np.full_like(depth, near), near, far, "RangeLinear")  # a decoy item
    xmp = xmp_packet(
        'xmlns:Device="http://ns.google.com/photos/dd/1.0/device/" '
        'xmlns:Container="http://ns.google.com/photos/dd/1.0/container/" '
        'xmlns:Item="http://ns.google.com/photos/dd/1.0/item/" '
        'xmlns:Camera="http://ns.google.com/photos/dd/1.0/camera/" '
        'xmlns:DepthMap="http://ns.google.com/photos/dd/1.0/depthmap/"',
        "<Device:Container><Container:Directory><rdf:Seq>"
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" Item:Semantic="Primary" '
        'Item:Length="0" Item:Padding="0"/></rdf:li>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/png" Item:Semantic="Depth" '
        f'Item:Length="{len(png)}" Item:DataURI="android/depthmap"/></rdf:li>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/png" Item:Semantic="ConfidenceMap" '
        f'Item:Length="{len(confidence)}" Item:DataURI="android/confidencemap"/></rdf:li>'
        "</rdf:Seq></Container:Directory></Device:Container>"
        '<Device:Cameras><rdf:Seq><rdf:li rdf:parseType="Resource"><Device:Camera><Camera:DepthMap '
        f'DepthMap:Format="{form}" DepthMap:Near="{near}" DepthMap:Far="{far}" DepthMap:Units="{units}" '
        'DepthMap:MeasureType="OpticalAxis" DepthMap:DepthURI="android/depthmap" '
        'DepthMap:ConfidenceURI="android/confidencemap" DepthMap:ItemSemantic="Depth"/>'
        "</Device:Camera></rdf:li></rdf:Seq></Device:Cameras>",
    )
    return jpeg_with_app1(photo, [XMP_HEADER + xmp]) + png + confidence


@pytest.mark.parametrize("form", ["RangeInverse", "RangeLinear"])
def test_gdepth_round_trips_through_extended_xmp(form):
    photo, depth = scene(400, 300)  # a PNG large enough to need several extended chunks
    photo_noise = np.random.default_rng(3).random(depth.shape) * 0.2  # a varied map, not two values
    depth = depth + photo_noise
    data = write_gdepth(photo, depth, near=0.4, far=5.0, form=form)
    assert data.count(EXTENDED_HEADER) >= 3
    read = read_google_depth(data)
    assert read.metric and read.source == "Google GDepth depth (400 x 300, metric)"
    # 8-bit samples: depth within one quantisation step of the written depth
    step = 4.6 / 255 if form == "RangeLinear" else 4.0**2 * (1 / 0.4 - 1 / 5.0) / 255
    np.testing.assert_allclose(1.0 / read.disparity, depth, atol=step)


def test_the_depth_map_turns_with_the_exif_orientation():
    photo, depth = scene()  # near card on the left of the stored pixels
    loaded = load_photo(write_gdepth(photo, depth, 0.3, 6.0, orientation=6))  # shown turned 90 degrees clockwise
    assert loaded.pixels.shape == (160, 120, 3) and loaded.embedded_depth.disparity.shape == (160, 120)
    assert loaded.embedded_depth.disparity[10, 60] == pytest.approx(2.0, rel=0.01)  # the card is now on top
    assert loaded.embedded_depth.disparity[150, 60] == pytest.approx(1 / 4.0, rel=0.05)  # the wall at 4 m below it


def test_gdepth_in_millimetres_and_without_units():
    photo, depth = scene()
    in_mm = read_google_depth(write_gdepth(photo, depth * 1000, near=400, far=5000, units="mm"))
    np.testing.assert_allclose(1.0 / in_mm.disparity, depth, rtol=0.02)
    relative = read_google_depth(write_gdepth(photo, depth, near=0.4, far=5.0, units=""))
    assert not relative.metric and "relative" in relative.source
    assert relative.disparity[0, 0] > 5 * relative.disparity[0, -1]  # still near = larger


def test_dynamic_depth_round_trips_the_appended_item():
    photo, depth = scene()
    data = write_dynamic_depth(photo, depth, near=0.3, far=6.0)
    read = read_google_depth(data)
    assert read.metric and read.source == "Dynamic Depth depth (160 x 120, metric)"
    np.testing.assert_allclose(1.0 / read.disparity, depth, atol=6.0 / 65535 * 2)
    # the primary JPEG is still the photo, the appended items do not disturb it
    np.testing.assert_array_equal(load_photo(data).pixels, load_photo(jpeg_with_app1(photo, [])).pixels)


def test_damaged_google_depth_warns_and_keeps_the_photo():
    photo, depth = scene()
    data = write_dynamic_depth(photo, depth, near=0.3, far=6.0)
    with pytest.warns(RuntimeWarning, match="Google depth map cannot be read"):
        at = data.index(b"\x89PNG")  # the appended depth item: overwrite its start
        loaded = load_photo(data[:at] + bytes(200) + data[at + 200 :])
    assert loaded.embedded_depth is None and loaded.pixels.shape == (120, 160, 3)
    assert read_google_depth(jpeg_with_app1(photo, [])) is None


@pytest.mark.parametrize("writer", [write_gdepth, write_dynamic_depth])
def test_google_jpegs_refocus_through_their_embedded_depth(writer):
    photo, depth = scene()
    loaded = load_photo(writer(photo, depth, 0.3, 6.0))

    def no_model(*args, **kwargs):
        raise AssertionError("the network must not be used when the file carries depth")

    refocuser = Refocuser(load_model=no_model)
    prepared = refocuser.prepare(loaded)
    assert prepared.depth_source.startswith("embedded ") and prepared.depth.is_metric
    rendered = refocuser.render_full(loaded, prepared, (120, 60), LensSettings(f_number=1.4))
    assert sharpness(rendered[:, 90:]) > 2 * sharpness(rendered[:, :70])  # the far wall is in focus


def test_cli_reports_embedded_depth_and_writes_jpeg(tmp_path):
    photo, depth = scene()
    (tmp_path / "gdepth.jpg").write_bytes(write_gdepth(photo, depth, 0.3, 6.0))
    result = subprocess.run(
        [sys.executable, "-m", "refocus", str(tmp_path / "gdepth.jpg"), "-o", str(tmp_path / "out.jpg"),
         "--focus", "40,60", "--f-number", "2", "--depth-model", "no-such-model"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Depth: embedded Google GDepth depth (160 x 120, metric)" in result.stdout
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    forced = subprocess.run(
        [sys.executable, "-m", "refocus", str(tmp_path / "gdepth.jpg"), "-o", str(tmp_path / "o.png"),
         "--depth-source", "model", "--depth-model", "no-such-model"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert forced.returncode == 2 and "Traceback" not in forced.stderr  # the model was asked for
