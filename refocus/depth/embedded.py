"""Depth maps that phones store inside the photo file, read into one small record.

Three containers are read:

- **iPhone / HEIF** (``read_heif_depth``): the auxiliary depth image of the primary image
  (ISO/IEC 23008-12, ``urn:mpeg:hevc:2015:auxid:2``), as ``pillow-heif`` exposes it in
  ``info["depth_images"]``. Its *depth representation info* says how a sample maps to depth:
  ``representation_type`` 0 = uniform inverse Z, 1 = uniform disparity, 2 = uniform Z
  (ISO/IEC 23008-2, depth representation SEI), with ``d_min``/``d_max`` (disparity) or
  ``z_near``/``z_far`` (Z). Apple writes uniform disparity in 1/m, so the map is metric.
  Apple's portrait effects matte and semantic mattes (hair, skin, teeth, glasses, sky) are
  auxiliary images too (``info["aux"]``) and are kept as alpha mattes in [0, 1].
- **Google GDepth** and **Dynamic Depth 1.0** JPEGs: see ``refocus.depth.google``.

Every reader returns None when the file has no depth, and warns (``RuntimeWarning``) instead of
failing when the depth part is damaged: the photo itself is still usable with network depth.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from refocus.depth.base import DepthResult

# ISO/IEC 23008-2 depth representation types, as libheif numbers them.
UNIFORM_INVERSE_Z, UNIFORM_DISPARITY, UNIFORM_Z = 0, 1, 2
# Apple's auxiliary image types whose name says they are mattes (portrait effects, semantic).
_MATTE_URN = re.compile(r"aux:(portraiteffectsmatte|semantic(\w+)matte)$")


@dataclass(frozen=True)
class EmbeddedDepth:
    """A depth map read from the photo file.

    Attributes:
        disparity: float32 (h, w), finite, >= 0, larger = nearer; in 1/m when ``metric``,
            else relative (99th percentile 1). Usually smaller than the photo (iPhone: 768 x 576
            for a 4032 x 3024 photo), same aspect ratio.
        metric: True when the file gives an absolute scale (iPhone disparity, metric ranges).
        source: what the UI and the CLI print, e.g. ``"iPhone depth (768 x 576, metric)"``.
        mattes: name -> float32 (mh, mw) alpha in [0, 1] (``"portrait"``, ``"hair"``, ``"skin"``,
            ...), at the matte's own resolution; empty when the file has none.
    """

    disparity: np.ndarray
    metric: bool
    source: str
    mattes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the depth map in pixels."""
        return self.disparity.shape[1], self.disparity.shape[0]


def describe(kind: str, disparity: np.ndarray, metric: bool) -> str:
    """The label users see: ``"<kind> depth (W x H, metric|relative)"``."""
    h, w = disparity.shape
    return f"{kind} depth ({w} x {h}, {'metric' if metric else 'relative'})"


def normalised_samples(values: np.ndarray) -> np.ndarray:
    """Integer depth samples (uint8 or uint16) -> float64 in [0, 1] (full code range = 1)."""
    values = np.asarray(values)
    if values.ndim == 3:
        values = values[:, :, 0]  # a grey map stored with equal channels
    top = float(np.iinfo(values.dtype).max) if np.issubdtype(values.dtype, np.integer) else 1.0
    return np.clip(values.astype(np.float64) / top, 0.0, 1.0)


def relative_disparity(disparity: np.ndarray) -> np.ndarray:
    """Scale a disparity map without a unit so that its 99th percentile is 1 (``DepthResult``)."""
    scale = float(np.percentile(disparity, 99))
    return (disparity / scale if scale > 0 else disparity).astype(np.float32)


def read_heif_depth(info: dict, aux_reader=None) -> EmbeddedDepth | None:
    """The depth image (and mattes) of a HEIF primary image opened by ``pillow-heif``.

    Args:
        info: the ``info`` dict of the Pillow image ``pillow-heif`` opened (``depth_images``,
            ``aux``).
        aux_reader: ``aux_id -> PIL.Image`` for the mattes (``HeifFile.get_aux_image(id)
            .to_pillow()``), or None to skip them.

    Returns:
        The depth, or None when there is none or it cannot be decoded (then with a warning).
    """
    images = info.get("depth_images") or []
    if not images:
        return None
    try:
        depth_image = images[0]
        metadata = depth_image.info.get("metadata") or {}
        samples = normalised_samples(np.asarray(depth_image.to_pillow()))
        disparity, metric = _heif_disparity(samples, metadata)
    except Exception as error:  # noqa: BLE001 - a damaged depth item must not lose the photo
        warnings.warn(f"The file's depth image cannot be read ({error}); depth will come from a network.",
                      RuntimeWarning, stacklevel=2)
        return None
    mattes = _heif_mattes(info.get("aux") or {}, aux_reader) if aux_reader else {}
    return EmbeddedDepth(disparity, metric, describe("iPhone", disparity, metric), mattes)


def _heif_disparity(samples: np.ndarray, metadata: dict) -> tuple[np.ndarray, bool]:
    """Normalised samples in [0, 1] -> (float32 disparity, metric?) per the representation info."""
    kind = metadata.get("representation_type", UNIFORM_DISPARITY)
    d_min, d_max = metadata.get("d_min"), metadata.get("d_max")
    z_near, z_far = metadata.get("z_near"), metadata.get("z_far")
    if kind in (UNIFORM_INVERSE_Z, UNIFORM_Z) and _positive(z_near, z_far):
        if kind == UNIFORM_Z:
            z = z_near + samples * (z_far - z_near)
            disparity = 1.0 / np.maximum(z, 1e-6)
        else:
            disparity = 1.0 / z_far + samples * (1.0 / z_near - 1.0 / z_far)
        return np.maximum(disparity, 0).astype(np.float32), True
    if kind == UNIFORM_DISPARITY and _positive(d_min, d_max) and d_max > d_min:
        return (d_min + samples * (d_max - d_min)).astype(np.float32), True
    # No usable range: the samples still order the scene (bright = near for disparity and
    # inverse Z, far for Z), which is a relative map.
    disparity = 1.0 - samples if kind == UNIFORM_Z else samples
    return relative_disparity(disparity + 1e-3), False


def _positive(*values) -> bool:
    return all(isinstance(v, (int, float)) and np.isfinite(v) and v > 0 for v in values)


def _heif_mattes(aux: dict, aux_reader) -> dict[str, np.ndarray]:
    mattes: dict[str, np.ndarray] = {}
    for urn, ids in aux.items():
        match = _MATTE_URN.search(urn)
        if not match or not ids:
            continue
        name = match.group(2) or "portrait"
        try:
            mattes[name] = normalised_samples(np.asarray(aux_reader(ids[0]))).astype(np.float32)
        except Exception as error:  # noqa: BLE001 - a damaged matte is dropped, not fatal
            warnings.warn(f"The file's {name} matte cannot be read ({error}).", RuntimeWarning, stacklevel=3)
    return mattes


def simulated_f_number(xmp: bytes | str | None) -> float | None:
    """Apple's ``depthBlurEffect:SimulatedAperture`` from XMP: the f-number the phone rendered."""
    if not xmp:
        return None
    text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp
    match = re.search(r"SimulatedAperture(?:=\"|>)\s*([0-9.]+)", text)
    if not match:
        return None
    value = float(match.group(1))
    return value if 0.7 <= value <= 64 else None


def embedded_depth_result(embedded: EmbeddedDepth, photo_pixels: np.ndarray, preview: bool = False) -> DepthResult:
    """The embedded map at the photo's resolution, its edges following the photo's.

    Args:
        embedded: the file's depth (any size with the photo's aspect ratio).
        photo_pixels: float32 (H, W, 3) sRGB in [0, 1], the guide.
        preview: True for a preview: the faster road (``upsample_disparity_for_preview``).

    Returns:
        A ``DepthResult`` (H, W); ``depth`` in metres when the map is metric.
    """
    from refocus.depth.upsample import upsample_disparity, upsample_disparity_for_preview

    upsample = upsample_disparity_for_preview if preview else upsample_disparity
    disparity = upsample(embedded.disparity, photo_pixels)
    depth = 1.0 / np.maximum(disparity, 1e-6) if embedded.metric else None
    return DepthResult(disparity, depth)
