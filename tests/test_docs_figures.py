"""The README's real-photo figure script skips cleanly where ../shared is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs import make_real_photo_figures


def test_real_photo_figures_skip_without_the_shared_photo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(make_real_photo_figures, "HEIC", tmp_path / "missing.heic")
    monkeypatch.setattr(make_real_photo_figures, "REPO", tmp_path)
    make_real_photo_figures.main()
    assert "skipped" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
