"""Batch: many photos, one setting; depth once per photo; a failed photo named, the rest finished."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import sharpness, textured_scene
from refocus.batch import expand_inputs, output_paths, refocus_many
from refocus.errors import RefocusError
from refocus.focus import FocusTarget
from refocus.refocuser import LensSettings, Refocuser
from test_cli import run_cli
from test_refocuser import CountingModel


def photo_folder(tmp_path, names=("a.jpg", "b.png")):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed, name in enumerate(names):
        image, _ = textured_scene(80, 60, seed=seed)
        Image.fromarray(image).save(folder / name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_inputs_from_folders_globs_and_paths(tmp_path):
    folder = photo_folder(tmp_path)
    assert expand_inputs([str(folder)]) == [folder / "a.jpg", folder / "b.png", folder / "broken.jpg"]
    assert expand_inputs([str(folder / "*.png"), "missing.jpg"]) == [folder / "b.png", Path("missing.jpg")]
    assert expand_inputs([str(folder / "*.png"), str(folder / "b.png")]) == [folder / "b.png"]  # duplicates dropped
    with pytest.raises(RefocusError, match="No files match"):
        expand_inputs([str(folder / "*.gif")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RefocusError, match="holds no photos"):
        expand_inputs([str(tmp_path / "empty")])


def test_outputs_keep_names_apart_when_stems_clash(tmp_path):
    sources = [tmp_path / "x" / "a.jpg", tmp_path / "y" / "a.png", tmp_path / "z" / "a.jpg", Path("A.tif"), Path("a-2.tif")]
    assert [p.name for p in output_paths(sources, tmp_path)] == ["a.png", "a-2.png", "a-3.png", "A-4.png", "a-2-2.png"]


def test_batch_predicts_depth_once_per_photo_and_reports_a_failure_by_name(tmp_path):
    folder = photo_folder(tmp_path)
    _, disparity = textured_scene(80, 60)
    model = CountingModel(disparity)
    refocuser = Refocuser(load_model=lambda spec, device: model)
    results = list(refocus_many(refocuser, expand_inputs([str(folder)]), tmp_path / "out", FocusTarget(auto=True),
                                LensSettings(f_number=1.4)))  # fmt: skip
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].source.name == "broken.jpg" and "not an image" in results[2].error
    assert model.calls == 2
    for result in results[:2]:
        rendered = np.asarray(Image.open(result.output))
        assert sharpness(rendered[:, 5:35]) > 2 * sharpness(rendered[:, 45:75])  # auto focus: the near card


def test_cli_batch_finishes_the_others_and_exits_non_zero(tmp_path, tiny_model_dir):
    folder = photo_folder(tmp_path)
    out = tmp_path / "out"
    result = run_cli(str(folder), "-o", f"{out}/", "--focus", "50%,40%", "--depth-model", str(tiny_model_dir), "--device", "cpu")
    assert result.returncode == 1
    assert "broken.jpg" in result.stderr and "3/3" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert "Wrote 2 of 3 photos" in result.stdout and "1 failed" in result.stdout
    result = run_cli(str(folder / "a.jpg"), str(folder / "*.png"), "-o", str(tmp_path / "out2"), "--focus", "auto",
                     "--depth-model", str(tiny_model_dir), "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["a.png", "b.png"]


def test_cli_batch_refuses_one_photo_options(tmp_path):
    folder = photo_folder(tmp_path)
    result = run_cli(str(folder), "-o", str(tmp_path / "out/"), "--depth-map", str(folder / "a.jpg"))
    assert result.returncode == 2 and "--depth-map applies to one photo" in result.stderr
