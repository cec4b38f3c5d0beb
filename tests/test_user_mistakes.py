"""The promise to users: a mistake gets one clear line and a non-zero exit, nothing half-written stays on disk, and
nothing we did not write is ever deleted or overwritten. One group per kind of mistake found by the fault probe
(`benchmarks/fault_probe.py`)."""

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from amodal3d.core.io import load_image, read_mask
from amodal3d.core.outputs import MARKER, atomic_dir, check_output, clean_stale, output_kind
from amodal3d.core.prompts import Prompt
from tests.synthetic import make_scene_set

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None, env=None):
    """The installed command in a fresh process: (exit code, non-empty stderr lines)."""
    proc = subprocess.run([sys.executable, "-m", "amodal3d", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.strip()]


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def user_folder(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine\n")
    (folder / "sub" / "a.txt").write_text("also mine\n")
    return folder


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    make_scene_set(root, 1, res=64)
    return root


# 1 ------------------------------------------------------------------------------------------------ data loss


def test_out_is_the_current_folder_or_the_photos_folder_or_a_scene(photo, scenes, tmp_path, monkeypatch, capsys):
    photos = user_folder(tmp_path / "photos")
    (photos / "holiday.png").write_bytes(photo.read_bytes())
    before = files_of(photos)
    monkeypatch.chdir(photos / "sub")
    assert entrypoint(["run", "../holiday.png", "--point", "60", "50", "--out", "."]) == 2
    monkeypatch.chdir(tmp_path)
    assert entrypoint(["run", "photos/holiday.png", "--point", "60", "50", "--out", "photos"]) == 2
    scene = scenes / "scene_0000"
    scene_files = files_of(scene)
    assert entrypoint(["run", "--scene", str(scene), "--out", str(scene)]) == 2
    assert entrypoint(["run", "--scene", str(scene), "--out", str(scene / "inside")]) == 2
    assert entrypoint(["bench", "--scenes", str(scenes), "--out", str(scenes)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 5 and all(line.startswith("amodal3d: error: ") for line in err)
    assert "current folder" in err[0] and "holds the input" in err[1] and "scene" in err[3]
    assert files_of(photos) == before and files_of(scene) == scene_files


@pytest.mark.parametrize("command", [
    ["complete", "--image", "{photo}", "--point", "60", "50"],
    ["reconstruct", "--image", "{photo}"],
    ["make-pairs", "--scenes", "{scenes}"],
    ["render-scenes", "--num", "1"],
    ["bench", "--scenes", "{scenes}"],
    ["demo"],
])
def test_no_command_writes_into_a_folder_it_did_not_write(command, photo, scenes, tmp_path, capsys):
    out = user_folder(tmp_path / "docs")
    before = files_of(out)
    args = [a.format(photo=photo, scenes=scenes) for a in command] + ["--out", str(out)]
    assert entrypoint(args) == 2
    assert "did not write" in capsys.readouterr().err
    assert files_of(out) == before


def test_overwrite_replaces_only_our_own_earlier_output(photo, tmp_path, capsys):
    out = tmp_path / "o"
    assert entrypoint(["complete", "--image", str(photo), "--point", "60", "50", "--out", str(out)]) == 0
    assert output_kind(out) == "complete"
    first = files_of(out)
    assert entrypoint(["complete", "--image", str(photo), "--point", "60", "50", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and files_of(out) == first
    assert entrypoint(["complete", "--image", str(photo), "--point", "60", "50", "--seed", "3", "--out", str(out),
                       "--overwrite"]) == 0
    assert json.loads((out / "completion.json").read_text())["seed"] == 3
    assert entrypoint(["run", "--image", str(photo), "--point", "60", "50", "--out", str(out), "--overwrite"]) == 2
    assert "not of `run`" in capsys.readouterr().err  # a completion folder is not a run's to replace
    docs = user_folder(tmp_path / "docs")
    assert entrypoint(["complete", "--image", str(photo), "--point", "60", "50", "--out", str(docs),
                       "--overwrite"]) == 2
    assert (docs / "notes.txt").read_text() == "mine\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_addon_build_never_overwrites_a_file_it_did_not_write(tmp_path, capsys):
    theirs = tmp_path / "report.zip"
    theirs.write_bytes(b"the user's zip")
    assert entrypoint(["addon", "build", "--out", str(theirs)]) == 2
    assert theirs.read_bytes() == b"the user's zip"
    ours = tmp_path / "addon.zip"
    assert entrypoint(["addon", "build", "--out", str(ours)]) == 0
    assert entrypoint(["addon", "build", "--out", str(ours)]) == 2
    assert entrypoint(["addon", "build", "--out", str(ours), "--overwrite"]) == 0
    assert entrypoint(["addon", "build", "--out", str(user_folder(tmp_path / "o9"))]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "not a Blender add-on zip" in err[0] and "is a folder" in err[2]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".tmp-*"))


# 2 ------------------------------------------------------------------------------------------ atomic replacement

_REPLACER = """
import sys, time
from pathlib import Path
from amodal3d.core.outputs import atomic_dir
out, version, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
with atomic_dir(out, "run", replace=True) as tmp:
    for i in range(count):
        (tmp / f"{i:05d}.txt").write_text(version)
"""


def _versions(out: Path) -> set:
    return {p.read_text() for p in out.glob("*.txt")}


def test_kill_9_during_replacement_leaves_the_old_or_the_new_output_whole(tmp_path):
    out, count = tmp_path / "o", 3000
    with atomic_dir(out, "run") as tmp:
        for i in range(count):
            (tmp / f"{i:05d}.txt").write_text("v0")
    def replacer(version):
        proc = subprocess.Popen([sys.executable, "-c", _REPLACER, str(out), version, str(count)],
                                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        proc.stdout.readline()
        return proc, time.perf_counter()

    proc, start = replacer("v1")  # uninterrupted: how long a replacement takes
    proc.wait()
    whole = time.perf_counter() - start
    assert _versions(out) == {"v1"}
    seen = set()
    fractions = [0.05, *np.linspace(0.3, 1.2, 10)]  # from mid-write to about when the swap is done
    while fractions:
        fraction = fractions.pop(0)
        version = f"v{len(seen) + len(fractions) + 2}-{fraction:.2f}"
        proc, start = replacer(version)
        time.sleep(max(0.0, fraction * whole - (time.perf_counter() - start)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        versions = _versions(out)
        assert len(versions) == 1 and len(list(out.glob("*.txt"))) == count, (fraction, versions)
        seen |= versions
        clean_stale(out)  # what the next run does first
        assert not [p for p in tmp_path.iterdir() if p.name != "o"]
        if not fractions and len(seen) < 2 and fraction < 20:  # a slower machine: kill later until one lands after
            fractions.append(fraction * 1.5)
    assert len(seen) >= 2, seen  # some kills hit before the swap, some after it


def test_a_kill_between_the_two_renames_of_the_fallback_swap_is_undone(tmp_path):
    out = tmp_path / "o"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True)
    dead = int(finished.stdout)
    aside = tmp_path / f".old-o-{dead}-0123abcd"  # the old output renamed aside, the new one not yet in
    with atomic_dir(aside, "run") as tmp:
        (tmp / "mesh.glb").write_text("old")
    stale_tmp = tmp_path / f".tmp-o-{dead}-89abcdef"
    stale_tmp.mkdir()
    (stale_tmp / "half.png").write_text("half")
    not_ours = tmp_path / ".tmp-o-notes"
    not_ours.mkdir()
    clean_stale(out)
    assert (out / "mesh.glb").read_text() == "old" and not aside.exists() and not stale_tmp.exists()
    assert not_ours.exists()


def test_a_resumed_output_clears_what_killed_runs_left_inside_it(tmp_path):
    from amodal3d.core.outputs import prepare_resumable

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    out = prepare_resumable(tmp_path / "bench", "bench")
    (out / "work" / "scene_0000").mkdir(parents=True)
    stale = out / "work" / "scene_0000" / f".tmp-modal_est.png-{dead}-0a1b2c3d.png"
    stale.write_bytes(b"half a png")
    live = out / "work" / "scene_0000" / f".tmp-other.png-{os.getpid()}-0a1b2c3d.png"  # a running writer's
    live.write_bytes(b"being written")
    scene_tmp = out / f".tmp-scene_0003-{dead}-deadbeef"
    scene_tmp.mkdir()
    (scene_tmp / "input.png").write_bytes(b"half")
    prepare_resumable(out, "bench")
    assert not stale.exists() and not scene_tmp.exists() and live.exists()


def test_the_fallback_swap_replaces_whole(tmp_path, monkeypatch):
    from amodal3d.core import outputs

    out = tmp_path / "o"
    with atomic_dir(out, "run") as tmp:
        (tmp / "a.txt").write_text("old")
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    with atomic_dir(out, "run", replace=True) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


# 3 ---------------------------------------------------------------------------------------------- safe loading


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"model": _RunsCode(marker)}, path, pickle_module=pickle)
    return path


def test_a_sam_checkpoint_that_runs_code_is_refused_in_one_line(photo, tmp_path):
    marker = tmp_path / "ran"
    ckpt = _malicious(tmp_path / "sam_vit_b.pth", marker)
    code, err = cli("complete", "--image", photo, "--point", "60", "50", "--sam-checkpoint", ckpt, "--out",
                    tmp_path / "o", env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    assert code == 2 and len(err) == 1 and "refusing to load" in err[0] and "posix.system" in err[0], err
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_a_real_sam_checkpoint_loads_through_our_loader(tmp_path):
    import torch

    from amodal3d.segmenters.sam import build_sam

    torch.manual_seed(0)
    model = build_sam("vit_b")
    torch.save(model.state_dict(), tmp_path / "sam.pth")
    loaded = build_sam("vit_b", tmp_path / "sam.pth")
    name, tensor = next(iter(model.state_dict().items()))
    assert torch.equal(loaded.state_dict()[name], tensor)


def test_a_weights_folder_with_an_unsafe_bin_is_refused_before_the_library_opens_it(tmp_path):
    from amodal3d.completion.diffusion import load_component

    folder = tmp_path / "weights"
    (folder / "unet").mkdir(parents=True)
    marker = tmp_path / "ran"
    _malicious(folder / "unet" / "diffusion_pytorch_model.bin", marker)
    opened = []
    with pytest.raises(UserError, match="refusing to load .*posix.system"):
        load_component(lambda *a, **k: opened.append(a), str(folder), "the model")
    assert not opened and not marker.exists()


def test_lpips_backbone_goes_through_the_safe_loader(tmp_path):
    from metrics.lpips import load_lpips

    backbone = _malicious(tmp_path / "vgg16.pth", tmp_path / "ran")
    with pytest.raises(UserError, match="refusing to load"):
        load_lpips("vgg", backbone)
    assert not (tmp_path / "ran").exists()


# 4 ------------------------------------------------------------------------------------------- concurrent bench


def test_two_benches_on_one_folder_the_second_is_refused(scenes, tmp_path):
    out = tmp_path / "b"
    args = [sys.executable, "-m", "amodal3d", "bench", "--scenes", str(scenes), "--out", str(out), "--configs",
            "mask/*", "recon/inflate/whole_gt", "--recon", "inflate", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    lines = [line for line in refused.splitlines() if line.strip()]
    assert len(lines) == 1 and "in use by another bench run" in lines[0]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    keys = [(r["scene"], r["config"]) for r in rows]
    assert len(keys) == len(set(keys)) == 7  # 6 mask rows + 1 reconstruction row, each once
    assert not list(out.rglob(".tmp-*"))


# 5 ------------------------------------------------------------------------------------------------ big photos


def test_a_large_photo_is_downscaled_while_decoding_and_masks_come_back_full_size(tmp_path, capsys):
    big = np.full((1800, 2400, 3), 235, np.uint8)
    big[500:1300, 700:1500] = (200, 40, 40)
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=92)
    loaded = load_image(tmp_path / "big.jpg", max_side=600)
    assert loaded.pixels.shape == (450, 600, 3) and loaded.original_size == (2400, 1800)
    assert loaded.scale == pytest.approx(0.25)
    out = tmp_path / "o"
    assert entrypoint(["complete", "--image", str(tmp_path / "big.jpg"), "--point", "1100", "900", "--max-side",
                       "600", "--out", str(out)]) == 0
    meta = json.loads((out / "completion.json").read_text())
    assert meta["input_size"] == [600, 450] and meta["original_size"] == [2400, 1800]
    full = read_mask(out / "amodal_mask_fullres.png")
    assert full.shape == (1800, 2400)
    truth = np.zeros((1800, 2400), bool)
    truth[500:1300, 700:1500] = True
    assert (full & truth).sum() / (full | truth).sum() > 0.95


def test_a_decompression_bomb_is_one_line_before_any_decoding(tmp_path, capsys):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)  # claims 3.6 gigapixels, holds almost nothing
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                        + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    start = time.perf_counter()
    assert entrypoint(["complete", "--image", str(tmp_path / "bomb.png"), "--point", "5", "5", "--out",
                       str(tmp_path / "o")]) == 2
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "decompression bomb" in err[0]


# 6 ---------------------------------------------------------------------------------------------------- boxes


@pytest.mark.parametrize("box, message", [
    ((50, 50, 50.5, 50.5), "at least 4x4"),
    ((0, 0, float("inf"), 1e300), "finite"),
    ((float("nan"), 0, 5, 5), "finite"),
    ((300, 300, 400, 400), "outside"),
    ((50, 50, 40, 60), "x1 > x0"),
])
def test_bad_boxes_are_one_clear_line(box, message):
    with pytest.raises(UserError, match=message):
        Prompt(box=box).validate(96, 128)


@pytest.mark.parametrize("box", [(0, 0, 128, 96), (-1e300, -5, 1e300, 1e9), (30, 20, 100, 80)])
def test_whole_image_huge_and_plain_boxes_segment(box):
    from amodal3d.segmenters import modal_mask

    image = np.ones((96, 128, 3), np.float32)
    image[30:70, 40:90] = (0.8, 0.2, 0.2)
    mask = modal_mask(image, Prompt(box=box)).mask
    truth = np.zeros((96, 128), bool)
    truth[30:70, 40:90] = True
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8


# 7 --------------------------------------------------------------------------------------------- image formats


def test_sixteen_bit_palette_and_transparent_images(tmp_path):
    deep = np.full((32, 48), 20000, np.uint16)
    deep[8:24, 8:40] = 60000
    Image.fromarray(deep).save(tmp_path / "deep.png")
    grey = load_image(tmp_path / "deep.png").pixels
    assert grey[0, 0, 0] == pytest.approx(20000 / 65535, abs=1e-4)
    assert grey[16, 16, 1] == pytest.approx(60000 / 65535, abs=1e-4)

    palette = Image.new("P", (32, 32))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 16, 32))
    palette.info["transparency"] = 1  # index 1 (blue) is transparent
    palette.save(tmp_path / "palette.png", transparency=1)
    loaded = load_image(tmp_path / "palette.png")
    np.testing.assert_allclose(loaded.pixels[5, 25], (1, 0, 0))
    np.testing.assert_allclose(loaded.pixels[5, 5], (1, 1, 1))  # transparent: on white

    Image.fromarray(np.zeros((16, 16, 4), np.uint8)).save(tmp_path / "clear.png")
    with pytest.raises(UserError, match="fully transparent"):
        load_image(tmp_path / "clear.png")


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((40, 60, 3), np.uint8)  # as the sensor wrote it: landscape, red block at the top left
    stored[:10, :10] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # show rotated 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.original_size == (40, 60) and loaded.pixels.shape == (60, 40, 3)
    assert loaded.pixels[3, 36, 0] > 0.8 and loaded.pixels[3, 3, 0] < 0.2  # the block is now at the top right
    small = load_image(tmp_path / "phone.jpg", max_side=30)
    assert small.pixels.shape == (30, 20, 3) and small.original_size == (40, 60)


# 8 ------------------------------------------------------------------------------------- mistakes, not bugs


def test_output_paths_that_cannot_be_written(photo, tmp_path, capsys):
    (tmp_path / "result.txt").write_text("mine\n")
    args = ["run", str(photo), "--point", "60", "50", "--out"]
    assert entrypoint([*args, str(tmp_path / "result.txt")]) == 2
    assert entrypoint([*args, str(tmp_path / "result.txt" / "sub")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "is an existing file" in err[0] and "is a file, so no folder" in err[1]
    assert (tmp_path / "result.txt").read_text() == "mine\n"
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        target = locked / "o"
    else:
        target = Path("/sys/amodal3d_out")  # root may write anywhere but on a read-only file system
        if os.access("/sys", os.W_OK) and Path("/sys").stat().st_mode & 0o222 and _can_write("/sys"):
            pytest.skip("no read-only folder on this machine")
    with pytest.raises(UserError, match="cannot write"):
        check_output(target, "run")


def _can_write(folder) -> bool:
    try:
        os.mkdir(Path(folder) / "amodal3d_probe")
    except OSError:
        return False
    os.rmdir(Path(folder) / "amodal3d_probe")
    return True


def test_eval_on_a_broken_mesh_is_a_user_error(scenes, tmp_path, capsys):
    (tmp_path / "bad.ply").write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                                      "property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
                                      "end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    assert entrypoint(["eval", "--scene", str(scenes / "scene_0000"), "--mesh", str(tmp_path / "bad.ply")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "bad.ply" in err[0]


# 9 --------------------------------------------------------------------------------------------- one line only


def test_warnings_and_argument_errors_are_one_line(scenes, photo, tmp_path):
    (tmp_path / "inf.obj").write_text("v 0 0 0\nv inf 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\nf 1 2 4\nf 2 3 4\n")
    code, err = cli("eval", "--scene", scenes / "scene_0000", "--mesh", tmp_path / "inf.obj")
    assert code == 2 and len(err) == 1 and "non-finite" in err[0], err
    code, err = cli("run", photo, "--pointt", "1", "2", "--out", tmp_path / "o")
    assert code == 2 and len(err) == 1 and "did you mean --point?" in err[0], err
    code, err = cli("run", photo, "--point", "a", "b", "--out", tmp_path / "o")
    assert code == 2 and len(err) == 1 and "bad value for --point: 'a b'" in err[0], err
    code, err = cli("bench")
    assert code == 2 and err == ["amodal3d: error: missing --out (see amodal3d bench --help)"], err
    code, err = cli("bench", "--out", tmp_path / "b")
    assert code == 2 and len(err) == 1 and "give --scenes DIR (rendered scenes) or --photos DIR" in err[0], err
    help_text = subprocess.run([sys.executable, "-m", "amodal3d", "run", "--help"], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert help_text.returncode == 0 and "--point" in help_text.stdout and "--overwrite" in help_text.stdout


# 10 --------------------------------------------------------------------------------------------------- minor


def test_minor_cases(photo, scenes, tmp_path, capsys):
    ones = np.zeros((96, 128), np.uint8)
    ones[30:70, 40:90] = 1
    Image.fromarray(ones).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").sum() == 40 * 50
    assert entrypoint(["complete", "--image", str(photo), "--mask", str(tmp_path / "m.png"), "--out",
                       str(tmp_path / "c")]) == 0
    assert entrypoint(["bench", "--scenes", str(scenes), "--out", str(tmp_path / "b"), "--limit", "0"]) == 2
    Image.fromarray(np.full((1, 1, 4), 255, np.uint8)).save(tmp_path / "px.png")
    assert entrypoint(["reconstruct", "--image", str(tmp_path / "px.png"), "--out", str(tmp_path / "r")]) == 2
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    assert entrypoint(["eval", "--scene", str(scenes / "scene_0000"), "--mesh", str(tmp_path / "nan.obj")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "--limit must be at least 1" in err[0] and "too small" in err[1] and "non-finite" in err[2]
    assert not (tmp_path / "b").exists() and not (tmp_path / "r").exists()
