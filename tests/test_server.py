"""The server's shared state: sessions keep their own timings, shared state is built once."""

import subprocess
import sys
import threading
import time

from PIL import Image

from conftest import REPO, textured_scene
from refocus import server
from refocus.refocuser import LensSettings
from refocus.server import RefocusApp, Session


def test_each_session_sees_only_its_own_timings(tiny_model_dir, tmp_path):
    app = RefocusApp(str(tiny_model_dir), device="cpu")
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"photo{seed}.png"
        Image.fromarray(textured_scene(96, 64, seed=seed)[0]).save(path)
        paths.append(str(path))
    first, second = (Session(path, app.default_model, focus=(20.0, 30.0)) for path in paths)

    app.render_preview(first, LensSettings(f_number=2.0))
    assert first.timings.depth_s is not None and first.timings.render_s is not None
    assert second.timings.depth_s is None and second.timings.render_s is None
    assert "last render" in app.status_line(first.model, first.timings)
    assert "last render" not in app.status_line(second.model, second.timings)

    seen = (first.timings.depth_s, first.timings.render_s)
    app.render_preview(second, LensSettings(f_number=2.0))
    assert second.timings.render_s is not None
    assert (first.timings.depth_s, first.timings.render_s) == seen  # another session's work
    assert app.status()["last_render_s"] == second.timings.render_s  # /status: the server's last


def test_a_session_finds_its_photo_in_the_cache_without_decoding_it_again(tiny_model_dir, tmp_path, monkeypatch):
    app = RefocusApp(str(tiny_model_dir), device="cpu")
    path = tmp_path / "photo.png"
    Image.fromarray(textured_scene(96, 64)[0]).save(path)
    session = Session(str(path), app.default_model)
    prepared = app.prepared(session)
    assert session.key == prepared.key

    monkeypatch.setattr(app, "load", lambda *args: (_ for _ in ()).throw(AssertionError("decoded again")))
    assert app.prepared(session) is prepared


def test_the_refocuser_of_a_model_is_built_once_under_concurrent_first_requests(monkeypatch):
    built = []

    class SlowRefocuser:
        def __init__(self, *args, **kwargs):
            time.sleep(0.05)  # wide open for a race without the lock
            built.append(self)

    monkeypatch.setattr(server, "Refocuser", SlowRefocuser)
    app = RefocusApp("some-model", model_choices=[])
    results = []
    threads = [threading.Thread(target=lambda: results.append(app.refocuser())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and all(r is built[0] for r in results)


def test_output_files_get_folders_of_their_own():
    outputs = server.OutputFiles()
    a, b = outputs.new_file("x.png"), outputs.new_file("x.png")
    assert a.name == b.name == "x.png" and a.parent != b.parent
    assert a.parent.parent == b.parent.parent == outputs.folder
    assert a.parent.is_dir() and b.parent.is_dir()


def test_the_server_module_does_not_import_gradio():
    script = "import sys, refocus.server; print(sorted(m for m in sys.modules if m.split('.')[0] == 'gradio'))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_tab_sessions_make_one_tabs_events_wait_for_each_other_but_never_another_tabs():
    tabs = server.TabSessions(ttl_s=3600)
    order = []

    def event(tab: str, name: str, hold_s: float) -> None:
        with tabs.hold(tab) as record:
            order.append(f"{name} starts on {record.session}")
            time.sleep(hold_s)
            record.session = name
            order.append(f"{name} ends")

    first = threading.Thread(target=event, args=("a", "click", 0.5))
    first.start()
    time.sleep(0.1)
    other_tab = threading.Thread(target=event, args=("b", "other", 0.0))
    same_tab = threading.Thread(target=event, args=("a", "control", 0.0))
    other_tab.start(), same_tab.start()
    other_tab.join(), same_tab.join(), first.join()
    assert order.index("other ends") < order.index("click ends"), "another tab waited"
    assert order.index("control starts on click") > order.index("click ends")


def test_tab_sessions_forget_tabs_unused_for_their_time_to_live():
    tabs = server.TabSessions(ttl_s=0.05)
    with tabs.hold("a") as record:
        record.session = "kept"
    time.sleep(0.1)
    with tabs.hold("b"):  # any event sweeps
        pass
    with tabs.hold("a") as record:
        assert record.session is None
