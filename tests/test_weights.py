"""Weights on demand (amodal3d.core.download, amodal3d.core.weights), against a local HTTP server: a checksum
mismatch keeps nothing, an interrupted download resumes with a Range request, offline is one line with the manual
path, a cached file needs no network, the hub client reads a local mirror, a non-commercial licence must be
accepted, and weights served locally fill a bench's LPIPS column. Nothing here touches the internet."""

import hashlib
import http.server
import json
import threading
import urllib.parse

import numpy as np
import pytest

from amodal3d.core import weights as hub
from amodal3d.core.download import download
from amodal3d.core.errors import UserError

PAYLOAD = np.random.default_rng(0).bytes(3 * (1 << 20) + 123)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Server:
    """Files by path; ``cut`` paths close the connection after half the bytes on their first GET; every request's
    path and Range header is logged. Also answers the hub client's resolve URLs (``/{repo}/resolve/{rev}/{file}``)."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.log = dict(files), set(), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _lookup(self):
                path = urllib.parse.unquote(self.path.split("?")[0])
                if "/resolve/" in path:
                    repo, _, rest = path.lstrip("/").partition("/resolve/")
                    path = f"/{repo}/{rest.split('/', 1)[1]}"
                return path, server.files.get(path)

            def _headers(self, body: bytes, start: int):
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def do_HEAD(self):
                server.log.append(("HEAD", self.path, None))
                _, body = self._lookup()
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self._headers(body, 0)

            def do_GET(self):
                rng = self.headers.get("Range")
                server.log.append(("GET", self.path, rng))
                path, body = self._lookup()
                if body is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self._headers(body, start)
                if path in server.cut:
                    server.cut.discard(path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("AMODAL3D_CACHE", str(tmp_path / "amodal3d"))
    return tmp_path


def test_download_checks_the_digest_and_a_cached_file_needs_no_network(tmp_path):
    with Server({"/w.pth": PAYLOAD}) as server:
        path = download(f"{server.url}/w.pth", tmp_path / "w.pth", sha256=DIGEST[:8], progress=False)
        assert path.read_bytes() == PAYLOAD
    # the server is gone: the cached file is returned without a request
    assert download(f"{server.url}/w.pth", tmp_path / "w.pth", sha256=DIGEST, progress=False) == path


def test_a_checksum_mismatch_keeps_nothing(tmp_path):
    with Server({"/w.pth": PAYLOAD}) as server, pytest.raises(UserError, match="checksum mismatch.*not kept"):
        download(f"{server.url}/w.pth", tmp_path / "w.pth", sha256="deadbeef", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path):
    with Server({"/w.pth": PAYLOAD}) as server:
        server.cut.add("/w.pth")
        with pytest.raises(UserError, match="bytes kept in .*w.pth.part, a rerun resumes"):
            download(f"{server.url}/w.pth", tmp_path / "w.pth", sha256=DIGEST, progress=False)
        kept = (tmp_path / "w.pth.part").stat().st_size
        assert 0 < kept < len(PAYLOAD)
        path = download(f"{server.url}/w.pth", tmp_path / "w.pth", sha256=DIGEST, progress=False)
    assert path.read_bytes() == PAYLOAD and not (tmp_path / "w.pth.part").exists()
    assert server.log[-1] == ("GET", "/w.pth", f"bytes={kept}-")  # only the rest was asked for


def test_offline_is_one_line_with_the_manual_path(tmp_path):
    with Server({}) as server:
        dead = server.url
    with pytest.raises(UserError) as error:
        download(f"{dead}/vgg16-397923af.pth", tmp_path / "vgg16-397923af.pth", progress=False)
    message = str(error.value)
    assert "\n" not in message and "Offline?" in message and str(tmp_path / "vgg16-397923af.pth") in message


def test_catalog_files_land_in_torch_hubs_cache(caches, monkeypatch):
    entry = hub.find("lpips-alex")
    with Server({"/alexnet-owt-7be5be79.pth": PAYLOAD}) as server:
        remote = hub.Remote(url=f"{server.url}/alexnet-owt-7be5be79.pth", sha256=DIGEST[:8])
        monkeypatch.setattr(hub, "CATALOG", (hub.Weights(entry.name, entry.purpose, entry.licence, entry.size,
                                                         (remote,)),))
        assert hub.cached(hub.find("lpips-alex")) is None
        (path,) = hub.fetch("lpips-alex", progress=False)
    assert path == caches / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert hub.cached(hub.find("lpips-alex")) == [path]


def test_the_hub_client_reads_a_local_mirror_and_licences_are_asked_first(caches, monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; this mirror is local
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with Server({"/cvlab/pix2gestalt-weights/epoch=000005.ckpt": PAYLOAD}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(UserError, match="non-commercial.*--accept-licence"):
            hub.fetch("cvlab/pix2gestalt-weights")
        assert not any(method == "GET" for method, _, _ in server.log)  # nothing downloaded before accepting
        (path,) = hub.fetch("cvlab/pix2gestalt-weights", accept_licence=True)
        assert path.read_bytes() == PAYLOAD and str(caches / "hf") in str(path)
    # the mirror is gone: the hub cache answers
    assert hub.fetch("pix2gestalt") == [path]
    assert hub.cached(hub.find("pix2gestalt")) == [path]
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(UserError, match="cannot download"):
        hub.fetch("pix2gestalt-epoch10", accept_licence=True)


def test_weights_cli_lists_and_names_are_checked(caches, capsys):
    from amodal3d.cli import entrypoint

    assert entrypoint(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("pix2gestalt", "sam-vit-h", "lpips-vgg", "syncdreamer", "clip-vit-large-patch14", "sd2-inpainting"):
        assert name in out
    assert "CC BY-NC" in out and "not downloaded" in out
    assert entrypoint(["weights", "download", "nonsense"]) == 2
    assert "unknown weights 'nonsense'" in capsys.readouterr().err


def test_lpips_fills_in_from_weights_served_locally(caches, monkeypatch, tmp_path):
    """A bench run's LPIPS column is n/a without the backbone and filled once `weights download` got it from a
    server (here a local one serving an AlexNet features state dict in torchvision's key layout)."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from amodal3d.bench import BenchConfig, run_bench
    from tests.synthetic import make_scene_set

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in torchvision.models.alexnet(weights=None).features.state_dict().items()}
    blob = tmp_path / "alex.pth"
    torch.save(state, blob)
    scenes = tmp_path / "scenes"
    make_scene_set(scenes, 1, res=64)
    configs = ["recon/inflate/whole_gt"]

    def bench(out):
        run = run_bench(BenchConfig(scenes=scenes, out=tmp_path / out, recon=["inflate"], configs=configs,
                                    workers=1, lpips_net="alex"), progress=False)
        return run.rows[0]

    assert bench("before").value("lpips") is None
    entry = hub.find("lpips-alex")
    with Server({"/alexnet-owt-7be5be79.pth": blob.read_bytes()}) as server:
        remote = hub.Remote(url=f"{server.url}/alexnet-owt-7be5be79.pth")
        monkeypatch.setattr(hub, "CATALOG", (hub.Weights(entry.name, entry.purpose, entry.licence, entry.size,
                                                         (remote,)),))
        from amodal3d.cli import entrypoint

        assert entrypoint(["weights", "download", "lpips-alex"]) == 0
    lpips = bench("after").value("lpips")
    assert lpips is not None and 0 <= lpips < 1
    assert json.loads((tmp_path / "after" / "bench.json").read_text())
