"""training/setup_data.py against a local HTTP server: download, resume, size checks, errors."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from refocus.errors import RefocusError
from training import setup_data
from training.synthetic_nyu import write_synthetic_nyu

PAYLOAD = bytes(range(256)) * 400  # 102400 bytes


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes) with HTTP Range support, or misbehaves on request."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        self.honour_range = True
        self.truncate = False  # announce the full length, send half, hang up

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class RangeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        wanted = self.headers.get("Range")
        self.server.ranges.append(wanted)
        start = int(wanted.split("=")[1].split("-")[0]) if wanted and self.server.honour_range else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        chunk = body[start:]
        self.wfile.write(chunk[: len(chunk) // 2] if self.server.truncate else chunk)


@pytest.fixture
def server():
    srv = FileServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_downloads_a_file(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = setup_data.download(server.url("/f.bin"), tmp_path / "f.bin", quiet=True)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "f.bin.part").exists()
    assert server.ranges == [None]


def test_resumes_a_partial_download(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:1000])
    dest = setup_data.download(server.url("/f.bin"), tmp_path / "f.bin", quiet=True)
    assert server.ranges == ["bytes=1000-"] and dest.read_bytes() == PAYLOAD


def test_starts_over_when_the_server_ignores_range(server, tmp_path):
    server.files["/f.bin"], server.honour_range = PAYLOAD, False
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes")
    dest = setup_data.download(server.url("/f.bin"), tmp_path / "f.bin", quiet=True)
    assert dest.read_bytes() == PAYLOAD


def test_short_download_is_reported_and_kept_for_resuming(server, tmp_path):
    server.files["/f.bin"], server.truncate = PAYLOAD, True
    with pytest.raises(RefocusError, match="again to resume"):
        setup_data.download(server.url("/f.bin"), tmp_path / "f.bin", quiet=True)
    assert not (tmp_path / "f.bin").exists()
    assert 0 < (tmp_path / "f.bin.part").stat().st_size < len(PAYLOAD)
    server.truncate = False  # the rerun finishes it
    assert setup_data.download(server.url("/f.bin"), tmp_path / "f.bin", quiet=True).read_bytes() == PAYLOAD


def test_too_small_file_is_rejected(server, tmp_path):
    server.files["/f.bin"] = b"<html>moved</html>"
    with pytest.raises(RefocusError, match="expected at least"):
        setup_data.download(server.url("/f.bin"), tmp_path / "f.bin", min_bytes=10_000, quiet=True)


def test_unreachable_server_gets_a_clear_message(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RefocusError, match="Could not reach .* by hand"):
        setup_data.download(f"http://127.0.0.1:{port}/x.mat", tmp_path / "x.mat", timeout=5, quiet=True)


def test_http_errors_are_reported(server, tmp_path):
    with pytest.raises(RefocusError, match="HTTP 404"):
        setup_data.download(server.url("/missing.mat"), tmp_path / "m.mat", quiet=True)


def test_main_fetches_and_checks_both_files(server, tmp_path, monkeypatch, capsys):
    write_synthetic_nyu(tmp_path / "labeled.mat", tmp_path / "splits.mat", n_train=2, n_test=1)
    server.files["/l.mat"] = (tmp_path / "labeled.mat").read_bytes()
    server.files["/s.mat"] = (tmp_path / "splits.mat").read_bytes()
    monkeypatch.setattr(setup_data, "MIN_BYTES", {"nyu_depth_v2_labeled.mat": 1000, "splits.mat": 100})
    argv = ["--data-dir", str(tmp_path / "data"), "--labeled-url", server.url("/l.mat"),
            "--splits-url", server.url("/s.mat"), "--quiet"]
    setup_data.main(argv)
    assert "3 frames, split 2 train / 1 test" in capsys.readouterr().out
    setup_data.main(argv)  # a second run downloads nothing
    assert len(server.ranges) == 2 and "already here" in capsys.readouterr().err


def test_official_addresses_are_the_nyu_site():
    assert setup_data.LABELED_URL == "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
    assert setup_data.SPLITS_URL == "http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat"
