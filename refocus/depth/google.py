"""Depth in Google camera JPEGs: GDepth XMP and Dynamic Depth 1.0, decoded from their specifications.

**GDepth** (Google Camera "Lens Blur", namespace ``http://ns.google.com/photos/1.0/depthmap/``):
the XMP properties ``GDepth:Format`` (``RangeInverse`` or ``RangeLinear``), ``Near``, ``Far``,
``Units`` and ``Mime``, and the depth image itself base64-encoded in ``GDepth:Data``. Data that
large does not fit one 64 KiB JPEG segment, so it lives in *Extended XMP* (Adobe XMP
specification part 3): APP1 segments headed ``http://ns.adobe.com/xmp/extension/\\0``, then a
32-character GUID, the full length and this chunk's offset (big-endian uint32 each). The main
XMP names the GUID in ``xmpNote:HasExtendedXMP``; chunks are joined by GUID, ordered by offset.

**Dynamic Depth 1.0** (Android, namespaces ``http://ns.google.com/photos/dd/1.0/...``): the main
XMP holds a ``Container:Directory`` listing ``Container:Item`` entries (``Item:Mime``,
``Item:Semantic``, ``Item:Length``, ``Item:Padding``, ``Item:DataURI``); the first item is the
primary JPEG, and every other item's bytes are appended after it, in directory order. The depth
item's meaning is in ``DepthMap:Format``/``Near``/``Far``/``Units`` (``Meters`` is metric).

Both formats store a normalised sample ``d`` in [0, 1]; ``RangeLinear`` means depth
``= Near + d (Far - Near)``, ``RangeInverse`` means ``depth = Far Near / (Far - d (Far - Near))``.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from PIL import Image

from refocus.depth.embedded import EmbeddedDepth, describe, normalised_samples, relative_disparity

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
GDEPTH_NS = "http://ns.google.com/photos/1.0/depthmap/"
XMP_NOTE_NS = "http://ns.adobe.com/xmp/note/"
CONTAINER_NS = "http://ns.google.com/photos/dd/1.0/container/"
ITEM_NS = "http://ns.google.com/photos/dd/1.0/item/"
DEPTHMAP_NS = "http://ns.google.com/photos/dd/1.0/depthmap/"
MAX_DEPTH_PIXELS = 50_000_000  # a depth image larger than any photo is not decoded
_METRES_PER_UNIT = {"m": 1.0, "meters": 1.0, "metres": 1.0, "mm": 1e-3, "millimeters": 1e-3}


def jpeg_app1_segments(data: bytes) -> list[bytes]:
    """Payloads of the APP1 segments of a JPEG's header (up to the first scan), in file order."""
    segments: list[bytes] = []
    if data[:2] != b"\xff\xd8":
        return segments
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more metadata
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == 0xE1:
            segments.append(data[pos + 4 : pos + 2 + length])
        pos += 2 + length
    return segments


def read_xmp(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(main XMP packet, reassembled extended XMP packet) of a JPEG; either may be None."""
    main, chunks = None, {}
    for payload in jpeg_app1_segments(data):
        if payload.startswith(XMP_HEADER) and main is None:
            main = payload[len(XMP_HEADER) :]
        elif payload.startswith(EXTENDED_XMP_HEADER):
            body = payload[len(EXTENDED_XMP_HEADER) :]
            if len(body) < 40:
                continue
            guid = body[:32].decode("ascii", "replace")
            total, offset = struct.unpack(">II", body[32:40])
            chunks.setdefault(guid, (total, []))[1].append((offset, body[40:]))
    if main is None:
        return None, None
    guid = _properties(main).get((XMP_NOTE_NS, "HasExtendedXMP"))
    if guid not in chunks:
        return main, None
    total, parts = chunks[guid]
    extended = bytearray(total)
    for offset, part in sorted(parts):
        extended[offset : offset + len(part)] = part[: max(0, total - offset)]
    return main, bytes(extended)


def _parse(packet: bytes) -> ET.Element | None:
    text = packet.split(b"\x00", 1)[0].strip()
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


def _split(tag: str) -> tuple[str, str]:
    namespace, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, name


def _element_properties(element: ET.Element) -> dict[tuple[str, str], str]:
    """(namespace, name) -> value for one element's attributes and its simple child elements."""
    properties = {_split(k): v for k, v in element.attrib.items()}
    for child in element:
        if len(child) == 0 and child.text and child.text.strip():
            properties.setdefault(_split(child.tag), child.text.strip())
    return properties


def _properties(packet: bytes | None) -> dict[tuple[str, str], str]:
    """Every simple XMP property of a packet, from attributes and leaf elements (first wins)."""
    root = _parse(packet) if packet else None
    properties: dict[tuple[str, str], str] = {}
    for element in root.iter() if root is not None else ():
        for key, value in _element_properties(element).items():
            properties.setdefault(key, value)
    return properties


def read_google_depth(data: bytes) -> EmbeddedDepth | None:
    """GDepth or Dynamic Depth from a JPEG's bytes; None when it carries neither.

    A damaged depth part warns (``RuntimeWarning``) and returns None: the photo stays usable.
    """
    try:
        main, extended = read_xmp(data)
        if main is None:
            return None
        if (DEPTHMAP_NS, "Format") in _properties(main) or _parse_items(main):
            return _dynamic_depth(data, main)
        properties = {**_properties(extended), **_properties(main)}
        if (GDEPTH_NS, "Format") in properties or (GDEPTH_NS, "Data") in properties:
            return _gdepth(properties)
    except (ValueError, OSError, KeyError, struct.error, binascii.Error) as error:
        warnings.warn(f"The file's Google depth map cannot be read ({error}); depth will come from a network.",
                      RuntimeWarning, stacklevel=2)
    return None


@dataclass(frozen=True)
class _Range:
    """How normalised samples map to depth: ``RangeLinear`` or ``RangeInverse`` over [near, far]."""

    format: str
    near: float
    far: float
    metres_per_unit: float | None  # None: the range has no absolute unit

    def disparity(self, samples: np.ndarray) -> tuple[np.ndarray, bool]:
        near, far = self.near, self.far
        if not (np.isfinite(near) and np.isfinite(far) and 0 < near < far):
            raise ValueError(f"the depth range Near={near:g}, Far={far:g} is not a range")
        if self.format == "RangeLinear":
            depth = near + samples * (far - near)
        elif self.format == "RangeInverse":
            depth = far * near / (far - samples * (far - near))
        else:
            raise ValueError(f"unknown depth format {self.format!r}")
        disparity = 1.0 / depth
        if self.metres_per_unit is None:
            return relative_disparity(disparity), False
        return (disparity / self.metres_per_unit).astype(np.float32), True


def _range(properties: dict, namespace: str) -> _Range:
    """The ``Format``/``Near``/``Far``/``Units`` properties of one depth-map namespace."""
    numbers = {}
    for name in ("Near", "Far"):
        value = properties.get((namespace, name))
        if value is None:
            raise ValueError(f"the depth map has no {name}")
        numbers[name] = float(value)
    units = properties.get((namespace, "Units"), "").strip().lower()
    form = properties.get((namespace, "Format"), "RangeInverse")
    return _Range(form, numbers["Near"], numbers["Far"], _METRES_PER_UNIT.get(units))


def _decode_depth_image(encoded: bytes) -> np.ndarray:
    """A PNG/JPEG depth image -> float64 samples in [0, 1] (size checked before decoding)."""
    with Image.open(io.BytesIO(encoded)) as im:
        if im.size[0] * im.size[1] > MAX_DEPTH_PIXELS:
            raise ValueError(f"the depth image is {im.size[0]} x {im.size[1]} pixels, too large")
        if im.mode not in ("L", "I;16", "I;16B", "I;16L"):
            im = im.convert("L")
        return normalised_samples(np.asarray(im))


def _gdepth(properties: dict) -> EmbeddedDepth:
    encoded = base64.b64decode(properties.get((GDEPTH_NS, "Data"), ""), validate=False)
    if not encoded:
        raise ValueError("GDepth:Data is missing")
    disparity, metric = _range(properties, GDEPTH_NS).disparity(_decode_depth_image(encoded))
    return EmbeddedDepth(disparity, metric, describe("Google GDepth", disparity, metric))


def _parse_items(main: bytes) -> list[dict[str, str]]:
    """The Dynamic Depth container directory: one dict of Item properties per item, in order."""
    root = _parse(main)
    if root is None:
        return []
    items = []
    for element in root.iter(f"{{{CONTAINER_NS}}}Item"):
        items.append({name: v for (ns, name), v in _element_properties(element).items() if ns == ITEM_NS})
    return items


def _dynamic_depth(data: bytes, main: bytes) -> EmbeddedDepth | None:
    items = _parse_items(main)
    properties = _properties(main)
    depth_uri = properties.get((DEPTHMAP_NS, "DepthURI"))
    # The appended items end the file: walk back from the end (each item's Padding follows it).
    end, offsets = len(data), {}
    for index in range(len(items) - 1, 0, -1):
        end -= int(items[index].get("Padding", 0))
        length = int(items[index]["Length"])
        if not 0 < length <= end:
            raise ValueError("the container directory does not match the file's length")
        offsets[index] = (end - length, end)
        end -= length
    chosen = [i for i in offsets if depth_uri and items[i].get("DataURI") == depth_uri]
    chosen = chosen or [i for i in offsets if items[i].get("Semantic") == "Depth"]
    if not chosen:
        return None
    start, stop = offsets[chosen[0]]
    disparity, metric = _range(properties, DEPTHMAP_NS).disparity(_decode_depth_image(data[start:stop]))
    return EmbeddedDepth(disparity, metric, describe("Dynamic Depth", disparity, metric))
