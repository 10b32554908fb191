"""NYU loader, augmentation, loss, metrics, training and evaluation of the Eigen network.

Everything runs on tiny synthetic files in NYU's exact layout (``training/synthetic_nyu.py``)
and a tiny-width network; the paper-sized network is only shape-checked in test_eigen.py.
"""

import json
import math
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from refocus.depth.base import DepthResult
from refocus.depth.eigen import EigenDepthNet, load_eigen_depth_model
from refocus.errors import RefocusError
from training import evaluate as evaluate_script
from training import train as train_script
from training.loss import scale_invariant_loss
from training.metrics import (
    METRIC_KEYS,
    align_disparity,
    depth_metrics,
    evaluation_mask,
    markdown_table,
    median_scale,
)
from training.nyu import NYUDepthV2, augment, augment_batch, read_split, sample_augmentations
from training.synthetic_nyu import synthetic_frames, write_nyu_mat, write_splits, write_synthetic_nyu

TINY_ARGS = ["--coarse-channels", "4,8,8,8,8", "--fc-dim", "32", "--fine-channels", "7"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    # On a small shared CI box, OpenMP threads spinning against other processes make the small
    # tensor ops here 10x slower; one thread is faster and deterministic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nyu(tmp_path_factory):
    """A synthetic labeled file (6 frames: 4 train, 2 test) and its splits.mat."""
    root = tmp_path_factory.mktemp("nyu")
    data, splits = root / "nyu_depth_v2_labeled.mat", root / "splits.mat"
    write_synthetic_nyu(data, splits, n_train=4, n_test=2)
    return data, splits


def run_train(nyu, out, *extra):
    data, splits = nyu
    argv = ["--data", str(data), "--splits", str(splits), "--out", str(out), "--workers", "0", "--quiet"]
    return train_script.train(train_script.parse_args(argv + list(extra)))


# --- data ----------------------------------------------------------------------------------


def test_loader_reads_nyu_axis_order_the_right_way_round(tmp_path):
    # Written the way MATLAB v7.3 lays it out, as h5py sees the real file:
    # images[n, channel, column, row], depths[n, column, row].
    images = np.zeros((2, 3, 640, 480), np.uint8)
    images[0, 0, :100, :50] = 255  # red block: columns 0..99, rows 0..49 (wider than tall)
    depths = np.full((2, 640, 480), 3.0, np.float32)
    depths[0, 600:, 400:] = 7.5  # far block at the bottom-right: columns 600.., rows 400..
    with h5py.File(tmp_path / "nyu.mat", "w") as f:
        f["images"], f["depths"] = images, depths
    write_splits(tmp_path / "splits.mat", train=[1], test=[2])

    ds = NYUDepthV2(tmp_path / "nyu.mat", tmp_path / "splits.mat", "train")
    image, depth = ds.read(0)
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    assert depth.shape == (480, 640) and depth.dtype == np.float32
    assert image[:50, :100, 0].min() == 255 and image[50:, :, 0].max() == 0 and image[:, 100:, 0].max() == 0
    assert depth[400:, 600:].min() == 7.5 and depth[:400].max() == 3.0  # metres, as stored


def test_synthetic_writer_round_trips_through_the_loader(tmp_path):
    images, depths = synthetic_frames(3, seed=1)
    write_nyu_mat(tmp_path / "f.mat", images, depths)
    write_splits(tmp_path / "s.mat", train=[3, 1], test=[2])
    ds = NYUDepthV2(tmp_path / "f.mat", tmp_path / "s.mat", "train")
    image, depth = ds.read(0)  # the split's first entry is frame 3 (1-based)
    np.testing.assert_array_equal(image, images[2])
    np.testing.assert_array_equal(depth, depths[2])


def test_official_split_sizes_and_one_based_indices(tmp_path):
    order = np.random.default_rng(0).permutation(np.arange(1, 1450))
    write_splits(tmp_path / "splits.mat", train=order[:795], test=order[795:])
    train, test = read_split(tmp_path / "splits.mat", "train"), read_split(tmp_path / "splits.mat", "test")
    assert len(train) == 795 and len(test) == 654
    assert train[0] == order[0] - 1 and set(train) | set(test) == set(range(1449))
    with pytest.raises(ValueError, match="train' or 'test"):
        read_split(tmp_path / "splits.mat", "val")


def test_dataset_items_have_network_shapes_with_and_without_augmentation(nyu):
    for augmented in (False, True):
        ds = NYUDepthV2(*nyu, "train", augment=augmented)
        assert len(ds) == 4
        item = ds[1]
        assert item["image"].shape == (3, 228, 304) and item["image"].dtype == torch.float32
        assert item["depth"].shape == item["valid"].shape == (1, 228, 304)
        assert item["valid"].dtype == torch.bool and item["valid"].float().mean() > 0.8
        depth = item["depth"][item["valid"]]
        assert 0.7 / 1.5 - 1e-3 <= depth.min() and depth.max() <= 9.5 + 1e-3  # metres (/ scale)
    assert len(NYUDepthV2(*nyu, "test")) == 2


def test_dataset_rejects_wrong_files(nyu, tmp_path):
    with pytest.raises(RefocusError, match="setup_data"):
        NYUDepthV2(tmp_path / "missing.mat", nyu[1])
    write_splits(tmp_path / "s.mat", train=[1, 99], test=[2])
    with pytest.raises(RefocusError, match="frame 99"):
        NYUDepthV2(nyu[0], tmp_path / "s.mat")


def ramp_frame():
    """A halved frame whose depth is a known function of its colour: depth = 1 + 2u + 3v."""
    y, x = torch.meshgrid(torch.arange(240) + 0.5, torch.arange(320) + 0.5, indexing="ij")
    u, v = x / 320, y / 240
    image = torch.stack([0.2 + 0.6 * u, 0.2 + 0.6 * v, torch.full_like(u, 0.5)])
    depth = (1 + 2 * u + 3 * v)[None]
    return image, depth, torch.ones_like(depth, dtype=torch.bool)


@pytest.mark.parametrize("seed", range(4))
def test_augmentation_keeps_image_and_depth_aligned(seed):
    g = torch.Generator().manual_seed(seed)
    params = {
        "scale": 1 + 0.5 * torch.rand(1, generator=g).item(),
        "angle": 10 * torch.rand(1, generator=g).item() - 5,
        "crop": tuple(torch.rand(2, generator=g).tolist()),
        "colour": 0.8 + 0.4 * torch.rand(3, generator=g),
        "flip": seed % 2 == 0,
    }
    image, depth, valid = augment(*ramp_frame(), params)
    assert image.shape == (3, 228, 304) and depth.shape == valid.shape == (1, 228, 304)
    # Undo the colour and the depth scaling, then the depth must follow the colour as before.
    u = (image[0] / params["colour"][0] - 0.2) / 0.6
    v = (image[1] / params["colour"][1] - 0.2) / 0.6
    expected = (1 + 2 * u + 3 * v) / params["scale"]
    # One pixel in from the data's edge (the crop's or the rotation's), bilinear colour and
    # nearest depth both sample real data.
    inside = -torch.nn.functional.max_pool2d(-valid.float(), 3, stride=1, padding=1)[0] > 0.5
    inside[[0, -1], :] = inside[:, [0, -1]] = False
    assert inside.float().mean() > 0.9
    error = (depth[0] - expected)[inside].abs()
    assert error.max() < 0.03, f"depth and image drifted apart by {error.max():.3f} m"


def test_augmentation_flip_scale_and_rotation_borders():
    image, depth, valid = ramp_frame()
    centre = {"scale": 1.0, "angle": 0.0, "crop": (0.5, 0.5), "colour": torch.ones(3), "flip": False}
    plain = augment(image, depth, valid, centre)
    torch.testing.assert_close(plain[0], image[:, 6:234, 8:312])  # the centre crop, exactly
    flipped = augment(image, depth, valid, {**centre, "flip": True})
    torch.testing.assert_close(flipped[0], plain[0].flip(-1))
    torch.testing.assert_close(flipped[1], plain[1].flip(-1))
    zoomed = augment(image, depth, valid, {**centre, "scale": 1.5})
    assert abs(float(zoomed[1][0, 114, 152]) * 1.5 - float(depth[0, 120, 160])) < 0.03  # depth / s
    rotated = augment(image, depth, valid, {**centre, "angle": 5.0})
    assert not rotated[2][0, 0, 0] and not rotated[2][0, -1, -1] and rotated[2][0, 114, 152]


def test_batched_augmentation_matches_one_frame_at_a_time():
    frames = [t[None].repeat(3, *[1] * t.dim()) for t in ramp_frame()]
    frames[0][1] = frames[0][1].flip(-1)  # a different second frame
    params = sample_augmentations(3, torch.Generator().manual_seed(0))
    params["flip"][:2] = torch.tensor([True, False])
    batch = augment_batch(*frames, params)
    for i in range(3):
        one = {"scale": float(params["scale"][i]), "angle": float(params["angle"][i]),
               "crop": tuple(params["crop"][i].tolist()), "colour": params["colour"][i], "flip": bool(params["flip"][i])}
        single = augment(frames[0][i], frames[1][i], frames[2][i], one)
        for b, s in zip(batch, single):
            assert torch.equal(b[i], s)


def test_preloaded_items_match_reads_from_the_file(nyu):
    for augmented in (False, True):
        lazy = NYUDepthV2(*nyu, "train", augment=augmented)
        loaded = NYUDepthV2(*nyu, "train", augment=augmented, preload=True)
        image, depth, valid = loaded.frames
        assert image.shape == (4, 3, 240, 320) and depth.shape == valid.shape == (4, 1, 240, 320)
        assert valid.dtype == torch.bool and NYUDepthV2.preload_bytes(4) == image.nbytes + depth.nbytes + valid.nbytes
        for i in (2, 0):  # the split's order, not the file's
            torch.manual_seed(i)
            a = lazy[i]
            torch.manual_seed(i)
            b = loaded[i]
            assert all(torch.equal(a[k], b[k]) for k in a)


# --- loss and metrics ----------------------------------------------------------------------


def test_scale_invariant_loss_matches_the_formula_on_hand_numbers():
    depth = torch.ones(2, 1, 2, 2)
    log_pred = torch.tensor([[0.1, -0.2], [0.4, 5.0]]).view(1, 1, 2, 2)  # 5.0 is masked out
    log_pred = torch.cat([log_pred, torch.full((1, 1, 2, 2), 0.5)])
    valid = torch.tensor([[True, True], [True, False]]).view(1, 1, 2, 2)
    valid = torch.cat([valid, torch.ones(1, 1, 2, 2, dtype=torch.bool)])
    # Image 1: n=3, sum d = 0.3, sum d^2 = 0.21 -> 0.21/3 - 0.5 * 0.09/9 = 0.065.
    # Image 2: d = 0.5 everywhere -> 0.25 - 0.5 * 0.25 = 0.125. Batch mean: 0.095.
    loss = scale_invariant_loss(log_pred, depth, valid, lam=0.5)
    assert math.isclose(float(loss), 0.095, rel_tol=1e-6)
    # lam = 1 ignores a global scale: image 2 is then a perfect prediction.
    full = scale_invariant_loss(log_pred[1:], depth[1:], valid[1:], lam=1.0)
    assert abs(float(full)) < 1e-7
    with pytest.raises(ValueError, match="B, 1, H, W"):
        scale_invariant_loss(log_pred[:, 0], depth[:, 0], valid[:, 0])


def test_metrics_match_hand_computed_values():
    pred, gt = np.array([1.5, 2.0, 3.5]), np.array([2.0, 2.0, 2.0])
    m = depth_metrics(pred, gt, np.ones(3, bool))
    e = np.log([0.75, 1.0, 1.75])
    assert math.isclose(m["abs_rel"], (0.25 + 0 + 0.75) / 3)
    assert math.isclose(m["sq_rel"], (0.25 / 2 + 0 + 2.25 / 2) / 3)
    assert math.isclose(m["rmse"], math.sqrt((0.25 + 2.25) / 3))
    assert math.isclose(m["rmse_log"], math.sqrt(np.mean(e**2)))
    assert math.isclose(m["log10"], np.mean(np.abs(e)) / math.log(10))
    assert math.isclose(m["silog"], 100 * math.sqrt(np.mean(e**2) - np.mean(e) ** 2))
    # max(p/g, g/p) = 1.333, 1, 1.75 against 1.25, 1.5625, 1.953
    assert (m["delta1"], m["delta2"], m["delta3"]) == (1 / 3, 2 / 3, 1.0)
    assert set(m) == set(METRIC_KEYS)


def test_alignment_recovers_an_affine_disparity_and_median_scaling():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 8.0, (480, 640))
    gt[0, 0] = 40.0  # beyond the 10 m cap
    mask = evaluation_mask(gt)
    assert not mask[0, 0] and not mask[44, 300] and mask[45, 41] and not mask[45, 601]
    assert mask.sum() == (471 - 45) * (601 - 41)
    relative = 3.0 / gt + 0.5  # what an affine-invariant model might say
    relative[~mask] = rng.uniform(0, 100, (~mask).sum())  # outside the mask: ignored by the fit
    aligned = align_disparity(relative, gt, mask)
    np.testing.assert_allclose(aligned[mask], gt[mask], rtol=1e-9)
    m = depth_metrics(aligned, gt, mask)
    assert m["abs_rel"] < 1e-9 and m["delta1"] == 1.0
    np.testing.assert_allclose(median_scale(2.0 * gt, gt, mask)[mask], gt[mask])
    # A negative disparity after alignment is floored: depth stays finite and <= 10 m.
    assert np.all(align_disparity(-relative, gt, mask) <= 10.0)


def test_markdown_table_has_every_metric():
    table = markdown_table({"m": dict.fromkeys(METRIC_KEYS, 0.5)})
    assert all(key in table for key in METRIC_KEYS) and "| m |" in table


# --- training ------------------------------------------------------------------------------


def test_short_training_run_overfits_four_images(nyu, tmp_path):
    summary = run_train(
        nyu, tmp_path / "coarse", "--stage", "coarse", "--max-steps", "40", "--batch-size", "4",
        "--no-augment", "--optimizer", "adam", "--adam-lr", "1e-2", *TINY_ARGS,
    )
    first, last = summary["history"][0][1], summary["history"][-1][1]
    assert summary["steps"] == 40 and summary["parameters"] < 200_000
    assert last < 0.4 * first, f"loss went from {first:.3f} to {last:.3f}"
    model = load_eigen_depth_model(str(tmp_path / "coarse"), device="cpu")  # what the app loads
    assert model.predict(np.zeros((48, 64, 3), np.uint8)).depth.shape == (48, 64)


def test_fine_stage_freezes_coarse_and_resume_continues(nyu, tmp_path):
    coarse_dir, fine_dir = tmp_path / "coarse", tmp_path / "fine"
    run_train(nyu, coarse_dir, "--stage", "coarse", "--max-steps", "2", "--batch-size", "2", *TINY_ARGS)
    coarse = EigenDepthNet.from_pretrained(coarse_dir)

    run_train(nyu, fine_dir, "--stage", "fine", "--init", str(coarse_dir), "--max-steps", "2", "--batch-size", "2")
    fine = EigenDepthNet.from_pretrained(fine_dir)
    assert fine.stage == "fine" and json.loads((fine_dir / "config.json").read_text())["stage"] == "fine"
    for name, tensor in coarse.coarse.state_dict().items():
        assert torch.equal(tensor, fine.coarse.state_dict()[name]), f"coarse {name} moved"
    assert not torch.equal(coarse.fine.conv2[0].weight, fine.fine.conv2[0].weight)

    summary = run_train(nyu, fine_dir, "--stage", "fine", "--resume", "--max-steps", "3", "--batch-size", "2")
    assert summary["steps"] == 3
    assert json.loads((fine_dir / "training_state.json").read_text())["step"] == 3
    with pytest.raises(RefocusError, match="--init"):
        run_train(nyu, tmp_path / "x", "--stage", "fine", "--max-steps", "1")
    with pytest.raises(RefocusError, match="coarse run"):
        run_train(nyu, coarse_dir, "--stage", "fine", "--resume", "--max-steps", "3")


def test_data_pipelines_device_workers_and_no_preload(nyu, tmp_path):
    # The device pipeline (preloaded split, batched augmentation) runs on the CPU too.
    summary = run_train(nyu, tmp_path / "a", "--stage", "coarse", "--max-steps", "3", "--batch-size", "2",
                        "--augment-on", "device", *TINY_ARGS)
    assert summary["steps"] == 3 and "batched augmentation" in summary["pipeline"] and math.isfinite(summary["loss"])
    summary = run_train(nyu, tmp_path / "b", "--stage", "coarse", "--epochs", "1", "--batch-size", "2",
                        "--no-preload", *TINY_ARGS)
    assert summary["steps"] == 2 and "h5py" in summary["pipeline"]  # 4 frames, 2 batches per epoch
    with pytest.raises(RefocusError, match="preload"):
        run_train(nyu, tmp_path / "c", "--stage", "coarse", "--max-steps", "1", "--augment-on", "device", "--no-preload")


def test_paper_learning_rates_per_layer(tmp_path):
    args = train_script.build_parser().parse_args(
        ["--data", "d", "--splits", "s", "--stage", "coarse", "--out", str(tmp_path)] + TINY_ARGS
    )
    optimizer = train_script.build_optimizer(train_script.build_model(args), args)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert [g["lr"] for g in optimizer.param_groups] == [0.001, 0.1]
    args.stage = "fine"
    fine = train_script.build_optimizer(EigenDepthNet(coarse_channels=[4, 8, 8, 8, 8], fc_dim=32), args)
    assert [g["lr"] for g in fine.param_groups] == [0.001, 0.01, 0.001]


def test_tensorboard_is_optional(nyu, tmp_path):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(RefocusError, match="pip install tensorboard"):
            run_train(nyu, tmp_path, "--stage", "coarse", "--max-steps", "1", "--tensorboard", str(tmp_path / "tb"), *TINY_ARGS)
    else:
        pytest.skip("tensorboard is installed here")


def test_train_runs_from_the_command_line(nyu, tmp_path):
    data, splits = nyu
    command = [
        sys.executable, "-m", "training.train", "--data", str(data), "--splits", str(splits), "--stage", "coarse",
        "--out", str(tmp_path / "cli"), "--max-steps", "1", "--batch-size", "2", "--workers", "1", *TINY_ARGS,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=train_script.__file__.rsplit("/training/", 1)[0])
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "cli" / "model.safetensors").is_file()
    assert "loss" in done.stderr  # the progress bar's running loss / the summary line


def test_train_main_returns_an_exit_status(nyu, tmp_path, capsys):
    data, splits = nyu
    argv = ["--data", str(data), "--splits", str(splits), "--out", str(tmp_path), "--workers", "0", "--quiet"]
    assert train_script.main([*argv, "--stage", "fine", "--max-steps", "1"]) == 1
    assert "error: --stage fine needs --init" in capsys.readouterr().err
    assert train_script.main([*argv, "--stage", "coarse", "--max-steps", "1", "--batch-size", "2", *TINY_ARGS]) == 0


# --- evaluation ----------------------------------------------------------------------------


def test_evaluate_end_to_end_writes_the_metric_keys(nyu, tmp_path, capsys):
    torch.manual_seed(0)
    EigenDepthNet(stage="fine", coarse_channels=[4, 8, 8, 8, 8], fc_dim=32).save_pretrained(tmp_path / "model")
    data, splits = nyu
    out = tmp_path / "results" / "eigen.json"
    results = evaluate_script.run(evaluate_script.build_parser().parse_args(
        ["--data", str(data), "--splits", str(splits), "--model", str(tmp_path / "model"),
         "--json", str(out), "--device", "cpu", "--quiet"]
    ))
    written = json.loads(out.read_text())
    assert set(METRIC_KEYS) <= set(written) and written["n_images"] == 2 and written["is_metric"]
    assert all(math.isfinite(written[k]) for k in METRIC_KEYS)
    assert written == json.loads(json.dumps(results))
    printed = capsys.readouterr().out
    assert "| abs_rel" in printed and "Eigen crop" in printed


class PerfectRelativeModel:
    """A stand-in relative model that knows the truth up to an affine map of disparity."""

    name, licence, device = "oracle", "none", "cpu"

    def __init__(self, dataset):
        self.truth = {dataset.read(i)[0].tobytes(): dataset.read(i)[1] for i in range(len(dataset))}

    def predict(self, image):
        return DepthResult(disparity=(5.0 / self.truth[image.tobytes()] + 2.0).astype(np.float32))


def test_evaluate_aligns_relative_models(nyu):
    dataset = NYUDepthV2(*nyu, "test", augment=False)
    results = evaluate_script.evaluate(PerfectRelativeModel(dataset), dataset, quiet=True, limit=1)
    assert not results["is_metric"] and results["n_images"] == 1
    assert results["abs_rel"] < 1e-5 and results["delta1"] == 1.0


def test_push_to_hub_failure_is_explained(nyu, tmp_path):
    # conftest sets HF_HUB_OFFLINE=1, so the upload must fail fast with a readable reason.
    with pytest.raises(RefocusError, match="Could not push to the hub repo 'someone/eigen'"):
        run_train(nyu, tmp_path, "--stage", "coarse", "--max-steps", "1", "--push-to-hub", "someone/eigen", *TINY_ARGS)
    assert (tmp_path / "model.safetensors").is_file()  # the local checkpoint is written first
