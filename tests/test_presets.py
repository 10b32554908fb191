"""Presets: a look saved to JSON and loaded back, with clear errors, through the library and the CLI."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import textured_scene
from refocus.errors import RefocusError
from refocus.presets import load_preset, preset_from_json, save_preset, setting_names
from refocus.refocuser import LensSettings
from test_cli import run_cli


def test_a_preset_round_trips_every_setting(tmp_path):
    settings = LensSettings(f_number=1.8, shape="6-blade", highlight_boost=1.5, highlight_threshold=0.8, focus_range=0.1)
    path = save_preset(tmp_path / "look.json", settings)
    assert load_preset(path) == settings
    saved = json.loads(path.read_text())
    assert saved["refocus_preset"] == 1 and set(saved) - {"refocus_preset"} == set(setting_names())


def test_missing_settings_take_their_defaults():
    assert preset_from_json('{"f_number": 2}') == LensSettings(f_number=2.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"f_numbr": 2}', "Unknown preset setting.*f_numbr.*known: f_number"),
        ('{"f_number": 200}', "f-number must be a number from 0.7 to 64"),
        ('{"f_number": "wide"}', "f-number must be a finite number"),
        ('{"shape": "star"}', "Unknown bokeh shape"),
        ('{"refocus_preset": 2}', "format 2"),
        (" " * 70_000, "at most 64 KiB"),
    ],
)
def test_bad_presets_are_refused_with_a_sentence(text, message):
    with pytest.raises(RefocusError, match=message):
        preset_from_json(text)


def test_a_missing_preset_file_names_the_file(tmp_path):
    with pytest.raises(RefocusError, match="Cannot read the preset.*nope.json"):
        load_preset(tmp_path / "nope.json")


def test_cli_preset_sets_defaults_that_flags_override(tmp_path):
    image, disparity = textured_scene(32, 24)
    Image.fromarray(image).save(tmp_path / "p.png")
    np.save(tmp_path / "d.npy", disparity)
    save_preset(tmp_path / "look.json", LensSettings(f_number=1.8, shape="ring"))
    common = [str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--depth-map", str(tmp_path / "d.npy")]
    result = run_cli(*common, "--preset", str(tmp_path / "look.json"), "--f-number", "4",
                     "--save-preset", str(tmp_path / "used.json"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert load_preset(tmp_path / "used.json") == LensSettings(f_number=4.0, shape="ring")
    (tmp_path / "bad.json").write_text('{"shape": "star"}')
    result = run_cli(*common, "--preset", str(tmp_path / "bad.json"))
    assert result.returncode == 2 and "bad.json" in result.stderr and "Unknown bokeh shape" in result.stderr
