"""Physics tests of the bokeh renderer: each states a property a real lens has."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from refocus.render import APERTURES, Aperture, NumpyOps, TorchOps, aperture_kernel, linear_to_srgb, render_bokeh, srgb_to_linear
from refocus.errors import RefocusError


def to_linear(x: np.ndarray) -> np.ndarray:
    return srgb_to_linear(torch.from_numpy(x)).numpy()


def to_srgb(x: np.ndarray) -> np.ndarray:
    return linear_to_srgb(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def point_light(size: int = 65, value: float = 0.8) -> np.ndarray:
    img = np.zeros((size, size, 3), np.float32)
    img[size // 2, size // 2] = value
    return img


def flat(size: int, value: float) -> np.ndarray:
    return np.full((size, size), value, np.float32)


# --- point lights ------------------------------------------------------------------------------
def test_point_on_focal_plane_stays_a_point():
    img = point_light()
    out = render_bokeh(img, flat(65, 2.0), 2.0, 30.0)
    np.testing.assert_allclose(out, img, atol=1e-5)


@pytest.mark.parametrize("radius,quality", [(3.0, "default"), (6.0, "default"), (11.0, "default"),
                                            (20.0, "default"), (20.0, "high")])
def test_defocused_point_becomes_a_disc_of_radius_r_with_the_same_energy(radius, quality):
    img = point_light(81)
    out = render_bokeh(img, flat(81, 0.0), 1.0, radius, quality=quality)  # r = strength * |0 - 1|
    lin_in, lin_out = to_linear(img), to_linear(out)
    np.testing.assert_allclose(lin_out.sum(), lin_in.sum(), rtol=0.02)
    lum = lin_out[..., 0]
    measured = np.sqrt((lum > 0.5 * lum.max()).sum() / np.pi)
    assert abs(measured - radius) <= 1.0
    # a disc: flat top (uniform brightness inside), nothing beyond r + 1.5; at default quality
    # radii above 6 px are blurred at 1/s resolution, s = ceil(r / 6), which softens the rim
    # by about 1.5 s
    rim = 1.5 if quality == "high" or radius <= 6 else 1.5 * np.ceil(radius / 6) + 0.5
    yy, xx = np.mgrid[:81, :81] - 40
    rho = np.hypot(xx, yy)
    inner = lum[rho <= radius - 2]
    assert inner.std() < 0.1 * inner.mean()
    assert lum[rho > radius + rim].max() < 0.05 * lum.max()


@pytest.mark.parametrize("shape", APERTURES)
def test_defocused_point_takes_the_aperture_shape(shape):
    img = point_light(41, 0.6)
    out = render_bokeh(img, flat(41, 0.0), 1.0, 5.0, shape=shape, blades=5, rotation=10.0, cats_eye=0.0)
    lin = to_linear(out)[..., 1]
    kernel = aperture_kernel(5.0, Aperture(shape, 5, 10.0, 0.0, 0.0))
    n = kernel.shape[0] // 2
    expected = np.zeros_like(lin)
    expected[20 - n:21 + n, 20 - n:21 + n] = kernel * to_linear(img)[20, 20, 1]
    np.testing.assert_allclose(lin, expected, atol=2e-4)


@pytest.mark.parametrize("shape", APERTURES)
def test_a_light_keeps_a_crisp_rim_when_blurred_at_reduced_resolution(shape):
    """At default quality a radius of 20 px is blurred at 1/4 resolution, which softens the rim
    of a bokeh ball by about 4 px (40-60 % of its brightness off at the rim); a clipped light's
    energy above white is blurred at full resolution, so its ball stays close to the exact one.
    """
    img = point_light(101, 1.0)
    fast = to_linear(render_bokeh(img, flat(101, 0.0), 1.0, 20.0, shape=shape))
    exact = to_linear(render_bokeh(img, flat(101, 0.0), 1.0, 20.0, shape=shape, quality="high"))
    assert np.abs(fast - exact).max() < 0.2 * exact.max()
    assert fast.sum() == pytest.approx(exact.sum(), rel=0.01)


def test_clipped_light_is_given_more_energy_than_it_shows():
    img = point_light(41, 1.0)
    plain = to_linear(render_bokeh(img, flat(41, 0.0), 1.0, 5.0, clipped_gain=1.0)).sum()
    recovered = to_linear(render_bokeh(img, flat(41, 0.0), 1.0, 5.0)).sum()
    assert recovered == pytest.approx(4.0 * plain, rel=0.02)


@pytest.mark.parametrize("backend", [None, TorchOps("cpu")], ids=["numpy", "torch"])
def test_a_clipped_sky_does_not_brighten_the_photo_but_a_small_light_still_glows(backend):
    """Clipped energy belongs to small lights: opening the aperture on a photo with a blown sky
    keeps its mean brightness, while a small clipped lamp below still spreads about 4x the
    energy it shows (a bright bokeh ball).

    Brightness is measured as the mean in linear light, the physical one: a lens only moves
    light, so the linear mean is kept exactly (within 2 %, the issue's bound) unless energy is
    added. The sRGB mean is not a measure of energy: blurring in linear light and encoding
    back raises it by itself wherever bright and dark mix (the encoding is concave, Jensen's
    inequality), here by 1.3 % with no clipped energy at all; a sky given 4x added 8.6 % in
    linear light (5.2 % in sRGB)."""
    img = np.full((120, 160, 3), 0.35, np.float32)
    img[:50] = 1.0  # blown sky
    lamp = np.zeros_like(img)
    lamp[90:93, 80:83] = 1.0  # a 3 x 3 px lamp on the dark ground
    img_lamp = np.where(lamp > 0, lamp, img)
    disparity = np.full((120, 160), 0.2, np.float32)

    def render(image: np.ndarray, gain: float = 4.0) -> np.ndarray:
        return render_bokeh(image, disparity, 1.0, 10.0, clipped_gain=gain, backend=backend)

    out = render(img)
    assert to_linear(out).mean() < 1.02 * to_linear(img).mean()
    assert out.mean() < render(img, gain=1.0).mean() + 1e-3  # no sRGB rise beyond the encoding's

    def lamp_energy(gain: float) -> float:
        return float((to_linear(render(img_lamp, gain)) - to_linear(render(img, gain)))[60:].sum())

    assert lamp_energy(4.0) > 3.0 * lamp_energy(1.0)


# --- uniformity and convolution ---------------------------------------------------------------
@pytest.mark.parametrize("quality", ["preview", "default", "high"])
def test_uniform_image_stays_uniform_at_any_depth(quality):
    rng = np.random.default_rng(0)
    img = np.full((47, 61, 3), 0.4, np.float32)
    disparity = rng.uniform(0, 1, (47, 61)).astype(np.float32)
    out = render_bokeh(img, disparity, 0.5, 40.0, quality=quality)
    np.testing.assert_allclose(out, img, atol=2e-4)  # no darkening at borders or depth edges


@pytest.mark.parametrize("shape", APERTURES)
def test_constant_depth_equals_one_convolution_with_the_kernel(shape):
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 0.9, (50, 60, 3)).astype(np.float32)
    out = render_bokeh(img, flat(1, 0.0).repeat(50, 0).repeat(60, 1), 1.0, 4.3, shape=shape,
                       cats_eye=0.0)
    kernel = aperture_kernel(4.3, Aperture(shape, 6, 0.0, 0.0, 0.0))
    gather = kernel[::-1, ::-1].copy()
    lin = to_linear(img)
    expected = cv2.filter2D(lin, -1, gather, borderType=cv2.BORDER_CONSTANT)
    expected /= cv2.filter2D(np.ones_like(lin), -1, gather, borderType=cv2.BORDER_CONSTANT)
    np.testing.assert_allclose(to_linear(out)[6:-6, 6:-6], expected[6:-6, 6:-6], atol=2e-4)


def test_kernels_conserve_energy_and_stay_within_their_radius():
    for shape in APERTURES:
        for radius in [0.0, 0.3, 0.7, 1.5, 4.0, 9.6]:
            for offset in [(0.0, 0.0), (1.0, -1.0)]:
                k = aperture_kernel(radius, Aperture(shape, 7, 15.0, 0.3, 1.0), offset)
                assert k.min() >= 0 and k.sum() == pytest.approx(1.0, abs=1e-5)
                assert k.shape[0] <= 2 * radius + 2
    disc, poly = aperture_kernel(8.0), aperture_kernel(8.0, Aperture("polygon", 5))
    assert (poly > 0).sum() < (disc > 0).sum()  # blades cut the disc
    assert aperture_kernel(8.0, Aperture("ring"))[8, 8] == 0  # mirror lens: dark centre
    curved = aperture_kernel(8.0, Aperture("polygon", 5, blade_curvature=1.0))
    np.testing.assert_allclose(curved, disc, atol=1e-6)  # fully curved blades = circle
    eye = aperture_kernel(8.0, Aperture("cats_eye", cats_eye=1.0), (1.0, 1.0))
    assert (eye > 0).sum() < 0.8 * (disc > 0).sum()  # clipped towards the corner


# --- occlusion ---------------------------------------------------------------------------------
def edge_scene(size: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Left half red at disparity 1, right half green at disparity 0."""
    img = np.zeros((size, size, 3), np.float32)
    img[:, : size // 2, 0] = 0.9
    img[:, size // 2:, 1] = 0.7
    disparity = np.zeros((size, size), np.float32)
    disparity[:, : size // 2] = 1.0
    return img, disparity


def test_in_focus_foreground_edge_stays_sharp_without_halo():
    img, disparity = edge_scene()
    out = render_bokeh(img, disparity, 1.0, 15.0)  # foreground in focus, background r = 15
    np.testing.assert_allclose(out[:, :30], img[:, :30], atol=1e-5)  # no green crosses the edge
    assert out[:, 30:, 0].max() < 1e-3  # no red halo in the blurred background
    np.testing.assert_allclose(out[:, 30:, 1], 0.7, atol=1e-3)  # background not darkened


def test_defocused_foreground_turns_transparent_and_reveals_background():
    img, disparity = edge_scene()
    out = render_bokeh(img, disparity, 0.0, 10.0)  # background sharp, foreground r = 10
    np.testing.assert_allclose(out[:, 45:], img[:, 45:], atol=1e-3)  # beyond r: untouched
    edge_red, edge_green = to_linear(out)[30, 29:31, 0], to_linear(out)[30, 29:31, 1]
    lin_red, lin_green = to_linear(img)[30, 0, 0], to_linear(img)[30, 59, 1]
    # at the silhouette about half of the lens sees around the foreground
    assert np.all(np.abs(edge_red / lin_red - 0.5) < 0.15)
    assert np.all(np.abs(edge_green / lin_green - 0.5) < 0.15)
    assert out[30, 35, 0] > 0.1  # the foreground spreads over what is behind it


def test_a_defocused_object_whose_depth_varies_keeps_its_energy():
    """A convex object does not hide itself from the lens: whether its centre is a little
    nearer or not, all of its light reaches the sensor (black background, so the output's
    energy is the object's). Its depth layers must not cover each other twice at the rim."""
    yy, xx = np.mgrid[:121, :121] - 60
    rho = np.hypot(xx, yy)
    img = np.zeros((121, 121, 3), np.float32)
    img[rho <= 14] = 0.8
    disparity = np.where(rho <= 14, 1.0, 0.0).astype(np.float32)
    disparity[rho <= 8] = 1.3  # the centre bulges towards the camera: other depth layers
    out = render_bokeh(img, disparity, 0.0, 15.0)
    assert to_linear(out).sum() == pytest.approx(to_linear(img).sum(), rel=0.15)


@pytest.mark.parametrize("backend", [None, TorchOps("cpu")], ids=["numpy", "torch"])
@pytest.mark.parametrize("per_pixel_focus", [False, True], ids=["scalar_focus", "focus_map"])
def test_a_low_resolution_depth_edge_leaves_no_sharp_line_in_the_blur(backend, per_pixel_focus):
    """A phone's or a network's depth map is 8-bit and ~5x smaller than the photo: upsampled,
    its step from a near, defocused bed to the far, defocused wall ramps through the focal
    plane. The pixels on that ramp must not be drawn as an in-focus contour line inside the
    blur: the render's profile across the edge is as smooth as with the exact step (also with
    a per-pixel focus map)."""
    h, w = 60, 160
    x = np.arange(w)[None, :].repeat(h, 0)
    rng = np.random.default_rng(0)
    img = np.where((x < 80)[..., None], np.float32([0.3, 0.25, 0.2]), np.float32([0.8, 0.8, 0.75]))
    img = (img + cv2.GaussianBlur(rng.normal(0, 0.1, (h, w, 3)), (0, 0), 1.0)).clip(0, 1).astype(np.float32)
    step = np.where(x < 80, 4.0, 1.5).astype(np.float32)  # near bed, far wall; focus between
    small = cv2.resize(step, (w // 5, h // 5), interpolation=cv2.INTER_AREA)
    small = np.round((small - 1.5) / 2.5 * 255) / 255 * 2.5 + 1.5  # 8-bit, as a phone stores it
    ramp = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    focus = np.full((h, w), 2.7, np.float32) if per_pixel_focus else 2.7

    def spike(disparity: np.ndarray) -> float:
        profile = render_bokeh(img, disparity, focus, 6.0, backend=backend).mean(axis=(0, 2))  # texture averages out
        return float(np.abs(np.diff(profile, 2))[60:100].max())

    assert spike(ramp) < 2.0 * spike(step)  # was 17x: a dark line at the ramp's in-focus pixels


def high_frequency(srgb: np.ndarray) -> np.ndarray:
    """(H, W) absolute Laplacian of the sRGB luminance: what a sharp edge adds to a render."""
    luma = np.ascontiguousarray(srgb @ np.float32([0.2126, 0.7152, 0.0722]))
    return np.abs(cv2.Laplacian(luma, cv2.CV_32F))


@pytest.mark.parametrize("backend", [None, TorchOps("cpu")], ids=["numpy", "torch"])
def test_small_far_islands_in_a_blurred_surface_leave_no_sharp_fragments(backend):
    """A hole-filled depth map (KITTI's LiDAR covers 18 % of the frame) leaves small islands a
    little farther than the surface around them. Blurred by 16-17 px, two surfaces under 1 px
    of blur apart are one surface for a lens: the islands must not show as sharp fragments
    (they showed as light squares: the bright far sky's fill seen through the nearer layer's
    holes). High-frequency energy at the islands is that of the same scene without them."""
    n = 160
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.random((n, n, 3)).astype(np.float32), (0, 0), 1.0)
    img = 0.1 + 0.3 * (texture - texture.min()) / (texture.max() - texture.min())
    img[:n // 4] = 0.9  # a bright sky far behind the textured surface
    plain = np.full((n, n), 0.30, np.float32)
    plain[:n // 4] = 0.08
    islands = np.zeros((n, n), bool)
    for y in range(n // 4 + 30, n - 20, 17):
        for x in range(20, n - 20, 17):
            size = 2 + (x + y) % 5  # 2 to 6 px
            islands[y:y + size, x:x + size] = True
    disparity = np.where(islands, np.float32(0.27), plain)
    at = cv2.dilate(islands.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    inside = np.zeros((n, n), bool)
    inside[60:-25, 15:-15] = True  # the surface, away from the sky's edge and the frame's

    def render(d: np.ndarray) -> np.ndarray:
        return high_frequency(render_bokeh(img.astype(np.float32), d, 0.9, 27.0, backend=backend))

    with_islands, without = render(disparity), render(plain)
    assert with_islands[at & inside].mean() < 1.5 * with_islands[~at & inside].mean()  # was 12x
    assert with_islands[at & inside].mean() < 1.5 * without[at & inside].mean()


@pytest.mark.parametrize("backend", [NumpyOps(), TorchOps("cpu")], ids=["numpy", "torch"])
def test_only_small_far_islands_within_the_radius_tolerance_are_absorbed(backend):
    """The islands' surroundings take them in; a real depth hole (sky through leaves, blur
    several px larger), a large far region and a slanted surface keep their CoC (but for the
    surface's last ISLAND_RADIUS px before the frame's edge, flattened within the tolerance)."""
    from refocus.render.layers import ISLAND_RADIUS, absorb_far_islands

    h, w = 40, 120
    coc = np.tile(np.linspace(2.0, 30.0, w, dtype=np.float32), (h, 1))  # a slanted floor
    coc[:, :60] = 10.0
    coc[5:9, 5:9] = 10.8  # island: absorbed
    coc[20:24, 5:9] = 17.0  # real hole: kept
    coc[5:35, 30:55] = 10.8  # large far region: kept
    out = backend.to_host(absorb_far_islands(backend, backend.from_input(coc)))
    expected = coc.copy()
    expected[5:9, 5:9] = 10.0
    np.testing.assert_allclose(out[:, :w - ISLAND_RADIUS], expected[:, :w - ISLAND_RADIUS])


@pytest.mark.parametrize("as_array", [np.asarray, torch.from_numpy], ids=["numpy", "torch"])
def test_a_depth_edge_drawn_inside_the_object_snaps_to_the_photos_edge(as_array):
    """A network's foreground often comes out a few pixels too small: its rim, at the
    background's depth, would be drawn sharp around the blurred object. The rim's pixels are
    the foreground's colour, so they take the foreground's disparity; the textured background
    beside them keeps its own (its texture is not mistaken for the foreground's colour)."""
    from refocus.render.depth_edges import snap_depth_edges

    h, w = 40, 60
    x = np.arange(w)[None].repeat(h, 0)
    rng = np.random.default_rng(1)
    background = np.float32([0.55, 0.6, 0.5]) + cv2.GaussianBlur(rng.normal(0, 0.15, (h, w, 3)), (0, 0), 0.7)
    foreground = np.float32([0.75, 0.3, 0.25]) + rng.normal(0, 0.01, (h, w, 3))
    img = np.where((x < 30)[..., None], foreground, background).clip(0, 1).astype(np.float32)
    disparity = np.where(x < 27, 3.0, 1.0).astype(np.float32)  # the map's edge 3 px inside
    out = np.asarray(snap_depth_edges(as_array(disparity), as_array(img), 10.0))
    assert np.all(out[:, 27:30] == 3.0)  # the mean-colour cost left the whole rim behind
    np.testing.assert_array_equal(out[:, 30:], 1.0)
    np.testing.assert_array_equal(out[:, :27], 3.0)


def test_blur_grows_monotonically_with_strength():
    rng = np.random.default_rng(2)
    img = rng.uniform(0, 1, (64, 64, 3)).astype(np.float32)
    disparity = rng.uniform(0, 1, (64, 64)).astype(np.float32)
    detail = [np.abs(np.diff(render_bokeh(img, disparity, 1.5, s), axis=1)).mean()
              for s in [0.0, 1.0, 3.0, 8.0, 20.0]]
    assert all(a > b for a, b in zip(detail, detail[1:]))


def test_focus_range_keeps_a_band_sharp_and_shifts_the_coc():
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 0.9, (40, 40, 3)).astype(np.float32)
    disparity = np.tile(np.linspace(0, 2, 40, dtype=np.float32), (40, 1))
    out = render_bokeh(img, disparity, 1.0, 0.0, focus_range=0.3)
    np.testing.assert_allclose(out, img, atol=1e-5)
    banded = render_bokeh(img, disparity, 1.0, 10.0, focus_range=0.3)
    band = np.abs(disparity - 1.0) <= 0.2  # r = 0 here and far from the band's edges
    np.testing.assert_allclose(banded[band], img[band], atol=1e-5)
    assert np.abs(banded - img)[np.abs(disparity - 1.0) > 0.6].mean() > 0.05
    # r = strength * max(|D - focus| - range, 0): a constant D behaves like a shifted focus
    const = flat(40, 1.5)
    np.testing.assert_allclose(render_bokeh(img, const, 1.0, 10.0, focus_range=0.2),
                               render_bokeh(img, const, 1.2, 10.0), atol=1e-6)


def test_highlight_boost_only_touches_bright_out_of_focus_pixels():
    rng = np.random.default_rng(4)
    img = rng.uniform(0, 0.6, (40, 40, 3)).astype(np.float32)
    img[10, 10] = img[10, 30] = 0.97  # bright pixels, left one in focus
    disparity = np.zeros((40, 40), np.float32)
    disparity[:, :20] = 1.0
    plain = render_bokeh(img, disparity, 1.0, 6.0)
    boosted = render_bokeh(img, disparity, 1.0, 6.0, highlight_boost=2.0, highlight_threshold=0.9)
    np.testing.assert_array_equal(boosted[:, :20], plain[:, :20])  # in focus: untouched
    assert boosted[10, 30:34].mean() > plain[10, 30:34].mean() + 0.02  # defocused highlight brighter
    far_from_light = np.ones((40, 40), bool)
    far_from_light[:22, 22:] = False
    np.testing.assert_array_equal(boosted[far_from_light], plain[far_from_light])
    dark = np.clip(img, 0, 0.6)
    np.testing.assert_array_equal(render_bokeh(dark, disparity, 1.0, 6.0, highlight_boost=3.0),
                                  render_bokeh(dark, disparity, 1.0, 6.0))


# --- array kinds, devices, sizes ---------------------------------------------------------------
def random_scene(h: int, w: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (h, w, 3)).astype(np.float32),
            rng.uniform(0, 1, (h, w)).astype(np.float32))


def test_numpy_and_torch_inputs_agree():
    img, disparity = random_scene(33, 47)
    out_np = render_bokeh(img, disparity, 0.4, 12.0)
    out_t = render_bokeh(torch.from_numpy(img), torch.from_numpy(disparity), 0.4, 12.0)
    assert isinstance(out_np, np.ndarray) and isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), out_np, atol=1e-6)


@pytest.mark.parametrize("shape", APERTURES)
def test_torch_ops_path_matches_opencv_path(shape):
    """The CUDA code path (torch conv/pool/interpolate), run on the CPU, against OpenCV's."""
    img, disparity = random_scene(40, 53)
    cv = render_bokeh(img, disparity, 0.5, 25.0, shape=shape)
    torch_ops = render_bokeh(img, disparity, 0.5, 25.0, shape=shape, backend=TorchOps("cpu"))
    np.testing.assert_allclose(torch_ops, cv, atol=2e-4)


@pytest.mark.parametrize("quality, size", [("preview", (61, 47)), ("high", (61, 47)),
                                           ("default", (150, 210))])
def test_torch_ops_path_matches_opencv_path_at_every_quality(quality, size):
    """The batched torch path at other downsampling factors and layer widths (wide layers
    with a large factor, and 1 px layers at full resolution), on a scene with a sharp
    occluding edge so the fill and the crops matter; at 150 x 210 the fill's pyramid is cut
    short and summarised by its mean (FILL_LEVELS)."""
    img, disparity = random_scene(*size, seed=3)
    disparity[:, 20:] += 1.0
    cv = render_bokeh(img, disparity, 0.9, 20.0, quality=quality)
    torch_ops = render_bokeh(img, disparity, 0.9, 20.0, quality=quality, backend=TorchOps("cpu"))
    np.testing.assert_allclose(torch_ops, cv, atol=2e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("shape", APERTURES)
def test_cpu_and_cuda_agree(shape):
    img, disparity = random_scene(120, 161)
    cpu = render_bokeh(img, disparity, 0.5, 30.0, shape=shape)
    gpu = render_bokeh(torch.from_numpy(img).cuda(), torch.from_numpy(disparity).cuda(), 0.5, 30.0,
                       shape=shape)
    assert gpu.is_cuda
    assert np.abs(gpu.cpu().numpy() - cpu).mean() < 2e-3
    np.testing.assert_allclose(render_bokeh(img, disparity, 0.5, 30.0, shape=shape, device="cuda"),
                               gpu.cpu().numpy(), atol=1e-6)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (7, 1), (3, 5), (17, 31)])
def test_any_size_gives_finite_deterministic_output_in_range(h, w):
    img, disparity = random_scene(h, w)
    out = render_bokeh(img, disparity, 0.5, 25.0, highlight_boost=1.0)
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out, render_bokeh(img, disparity, 0.5, 25.0, highlight_boost=1.0))


# --- bad inputs --------------------------------------------------------------------------------
@pytest.mark.parametrize("args,kwargs,words", [
    ((np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32), 0, 1), {}, "(H, W, 3)"),
    ((np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32), 0, 1), {}, "floating-point"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 5), np.float32), 0, 1), {}, "to match the image"),
    ((np.zeros((4, 4, 3), np.float32), np.full((4, 4), np.nan, np.float32), 0, 1), {}, "NaN"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0, float("nan")), {}, "strength"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0, -1), {}, "at least 0"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), "x", 1), {}, "focus_disparity"),
    (([[0.0]], np.zeros((1, 1), np.float32), 0, 1), {}, "numpy array or a torch tensor"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0, 1), {"shape": "star"}, "disc"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0, 1), {"blades": 2}, "at least 3"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0, 1), {"cats_eye": 2}, "cats_eye"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0, 1), {"quality": "max"}, "quality"),
    ((np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0, 1),
     {"highlight_boost": -1}, "highlight_boost"),
])
def test_bad_inputs_raise_a_clear_value_error(args, kwargs, words):
    with pytest.raises(ValueError, match=None) as info:
        render_bokeh(*args, **kwargs)
    assert isinstance(info.value, RefocusError)
    assert words in str(info.value)


# --- the shape table and the backends ----------------------------------------------------------
def test_every_user_facing_shape_renders_with_its_options():
    from refocus.render import SHAPES

    assert list(SHAPES) == ["disc", "5-blade", "6-blade", "8-blade", "cats-eye", "ring"]
    img, disparity = random_scene(24, 31)
    for name, options in SHAPES.items():
        assert options["shape"] in APERTURES, name
        out = render_bokeh(img, disparity, 0.5, 8.0, **options)
        assert out.shape == img.shape and np.isfinite(out).all()


def test_cpu_render_leaves_torch_threads_alone(monkeypatch):
    """No process-wide setting is changed per render: the CPU backend runs no torch op."""
    def refuse(*_):
        raise AssertionError("render_bokeh changed torch's thread count")

    monkeypatch.setattr(torch, "set_num_threads", refuse)
    img, disparity = random_scene(30, 40)
    assert render_bokeh(img, disparity, 0.5, 12.0).shape == (30, 40, 3)
    out = render_bokeh(torch.from_numpy(img), torch.from_numpy(disparity), 0.5, 12.0)
    assert isinstance(out, torch.Tensor)


# --- tilted focal plane and focus falloff ------------------------------------------------------
def ramp_scene(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A textured plane receding from left (disparity 1, near) to right (0, far)."""
    img, _ = random_scene(h, w, seed=11)
    return img, np.tile(np.linspace(1.0, 0.0, w, dtype=np.float32), (h, 1))


def test_focal_plane_through_three_points_of_a_ramp_keeps_the_whole_ramp_sharp():
    img, ramp = ramp_scene()
    h, w = ramp.shape
    # the plane D = a x + b y + c through three points the user clicked on the ramp
    points = [(5, 4), (60, 10), (30, 40)]
    a, b, c = np.linalg.solve([[x, y, 1.0] for x, y in points], [ramp[y, x] for x, y in points])
    yy, xx = np.mgrid[0:h, 0:w]
    plane = (a * xx + b * yy + c).astype(np.float32)
    np.testing.assert_allclose(render_bokeh(img, ramp, plane, 40.0), img, atol=1e-4)
    # one focus disparity for the whole frame blurs most of the ramp
    assert np.abs(render_bokeh(img, ramp, 0.5, 40.0) - img).mean() > 0.05


def test_per_pixel_focus_equal_everywhere_is_the_scalar_focus():
    img, disparity = random_scene(40, 50)
    scalar = render_bokeh(img, disparity, 0.4, 15.0)
    np.testing.assert_array_equal(render_bokeh(img, disparity, np.full((40, 50), 0.4, np.float32), 15.0), scalar)
    as_torch = render_bokeh(torch.from_numpy(img), torch.from_numpy(disparity), torch.full((40, 50), 0.4), 15.0)
    np.testing.assert_allclose(as_torch.numpy(), scalar, atol=1e-6)


@pytest.mark.parametrize("focus, words", [(np.zeros((3, 3), np.float32), "to match the image"),
                                          (np.full((4, 4), np.inf, np.float32), "infinite")])
def test_bad_focus_maps_raise_a_clear_value_error(focus, words):
    with pytest.raises(RefocusError, match=words):
        render_bokeh(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), focus, 1.0)


def test_focus_falloff_zero_is_the_hard_band_and_larger_falloff_eases_the_blur_in():
    from refocus.render.backends import NumpyOps
    from refocus.render.layers import signed_coc

    img, ramp = ramp_scene()
    hard = render_bokeh(img, ramp, 0.5, 30.0, focus_range=0.1)
    np.testing.assert_array_equal(render_bokeh(img, ramp, 0.5, 30.0, focus_range=0.1, focus_falloff=0.0), hard)
    soft = render_bokeh(img, ramp, 0.5, 30.0, focus_range=0.1, focus_falloff=0.2)
    # just past the band's edge (|D - 0.5| = 0.1 .. 0.2) the soft render is sharper ...
    edge = (np.abs(ramp - 0.5) > 0.12) & (np.abs(ramp - 0.5) < 0.2)
    assert np.abs(soft - img)[edge].mean() < 0.5 * np.abs(hard - img)[edge].mean()
    # ... and the CoC has no kink there: it starts quadratically and tends to the lens's slope
    d = np.full((1, 400), 0.5, np.float32)  # wide enough that no CoC reaches the cap (long edge)
    d[0, :5] = [0.5, 0.6, 0.61, 5.5, 10.5]
    coc = np.abs(signed_coc(NumpyOps(), d, 0.5, 30.0, 0.1, 0.2)[0])
    assert coc[0] == coc[1] == 0.0
    assert 0.0 < coc[2] < 30.0 * 0.01 * 0.1  # far below the hard band's 0.3 px
    assert abs((coc[4] - coc[3]) / 5.0 - 30.0) < 0.1  # linear growth at the lens's rate far out


def test_focus_falloff_must_be_non_negative():
    with pytest.raises(RefocusError, match="focus_falloff"):
        render_bokeh(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 0.0, 1.0, focus_falloff=-1)


def test_layers_composited_at_reduced_resolution_match_the_full_resolution_render():
    """A receding floor (every layer a band across the frame, blurs up to 20 px, so runs of
    layers at 1/2 ... 1/4 meet at run boundaries) renders as the exact, all-full-resolution
    quality does: no blocks or steps from compositing at reduced resolution."""
    rng = np.random.default_rng(5)
    h, w = 96, 128
    stripes = 0.5 + 0.3 * np.sin(np.arange(w) / 3.0)[None, :, None] * np.ones((h, 1, 3))
    img = np.clip(stripes + rng.normal(0, 0.05, (h, w, 3)), 0, 0.9).astype(np.float32)
    disparity = np.repeat(np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None], w, 1)
    fast = render_bokeh(img, disparity, 0.5, 40.0)
    exact = render_bokeh(img, disparity, 0.5, 40.0, quality="high")
    assert np.abs(fast - exact).mean() < 0.006
    assert np.abs(fast - exact).max() < 0.08


def test_a_cats_eye_on_a_strip_thinner_than_its_downsampling_renders():
    """The padding of a reduced-resolution crop can lie past the frame (a 1-px-high strip blurred
    at 1/3): it takes the frame edge's cat's-eye kernel (found by hypothesis: it returned None)."""
    out = render_bokeh(np.full((1, 7, 3), 0.5, np.float32), np.zeros((1, 7), np.float32), 1.0, 7.0, shape="cats_eye")
    assert out.shape == (1, 7, 3) and np.isfinite(out).all()


@pytest.mark.parametrize("backend", [np.asarray, torch.from_numpy], ids=["numpy", "torch"])
def test_colour_conversions_follow_the_srgb_formula_and_encode_into_the_unit_range(backend):
    """srgb_to_linear and linear_to_srgb (computed in place, with scaled thresholds) match the
    IEC 61966-2-1 formulas evaluated in float64; the encoding clips to [0, 1] and turns NaN into 0
    (render_bokeh relies on it for its output). An image's rows take OpenCV's masked copy, a
    1-D array numpy's where."""
    x = np.linspace(0.0, 1.0, 100_001)[None]
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    np.testing.assert_allclose(np.asarray(srgb_to_linear(backend(x.astype(np.float32)))), linear, atol=1e-6)
    np.testing.assert_allclose(np.asarray(linear_to_srgb(backend(x.astype(np.float32)))), srgb, atol=1e-6)
    odd = np.array([np.nan, np.inf, -np.inf, -0.5, 2.0], np.float32)
    np.testing.assert_array_equal(np.asarray(linear_to_srgb(backend(odd))) > 0.999, [False, True, False, False, True])
    assert np.asarray(linear_to_srgb(backend(odd)))[[0, 2, 3]].tolist() == [0.0, 0.0, 0.0]
