"""`amodal3d run --images DIR --prompts FILE`: one run folder per photo, summary.csv and index.html, prompts from JSON
or CSV (or the salient-object box), resumable after kill -9 without redoing finished photos, bad inputs one line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from amodal3d.batch import input_for, read_prompts
from amodal3d.cli import entrypoint
from amodal3d.core.io import write_png
from amodal3d.core.prompts import InputConfig

FAST = ["--recon", "inflate", "--inflate.resolution", "48", "--samples", "2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three 96x72 photos, each a coloured blob partly hidden by a grey bar."""
    folder = tmp_path_factory.mktemp("photos")
    yy, xx = np.mgrid[:72, :96]
    for i, name in enumerate(("a.png", "b.png", "c.jpg")):
        image = np.full((72, 96, 3), 0.9, np.float32)
        blob = (xx - 40 - 5 * i) ** 2 / 400 + (yy - 36) ** 2 / 225 < 1
        image[blob] = (0.8, 0.2 + 0.2 * i, 0.1)
        image[30:42, 50:90] = 0.4
        write_png(folder / name, image)
    return folder


def test_json_and_csv_prompts_read_the_same(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"a.png": {"point": [[40, 36], [35, 30]], "box": [10, 10, 70, 60],
                                                           "occluder_point": [[60, 36]],
                                                           "occluder_box": [50, 30, 90, 42]},
                                                 "b.png": {"mask": "m/b.png", "neg_point": [[90, 5]]}}))
    (tmp_path / "p.csv").write_text("file,point,neg_point,box,mask,occluder_point,occluder_box\n"
                                    "a.png,40 36; 35 30,,10 10 70 60,,60 36,50 30 90 42\n"
                                    "b.png,,90 5,,m/b.png,,\n")
    assert read_prompts(tmp_path / "p.json") == read_prompts(tmp_path / "p.csv")
    given = input_for(Path("a.png"), read_prompts(tmp_path / "p.csv")["a.png"], InputConfig(), None)
    assert given.occluder_box == (50, 30, 90, 42) and given.occluder_point == [(60, 36)]


def test_a_folder_of_photos_runs_once_each_and_resumes_after_kill_9(photos, tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"a.png": {"point": [[40, 36]]}, "b.png": {"box": [15, 15, 70, 60]}}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "amodal3d", "run", "--images", str(photos), "--prompts", str(prompts), "--out",
           str(out), *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "a").is_dir():
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the second photo is in flight (or not started)
    proc.wait()
    assert (out / "a" / "mesh.glb").is_file()
    first = (out / "a" / "run.json").stat().st_mtime_ns
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 of 3 photos done" in done.stdout
    assert (out / "a" / "run.json").stat().st_mtime_ns == first  # not redone
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("file,status,seconds,faces") and len(rows) == 4
    assert all(",done," in row for row in rows[1:])
    page = (out / "index.html").read_text()
    for stem in ("a", "b", "c"):
        assert f'href="{stem}/index.html"' in page and (out / stem / "mesh.glb").is_file()
    # c.jpg had no prompt: the salient-object box, recorded in its config
    config = json.loads((out / "c" / "config.json").read_text())["config"]
    assert config["input"]["box"] == pytest.approx([4.8, 3.6, 91.2, 68.4])


def test_batch_mistakes_are_one_line(photos, tmp_path, capsys):
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"missing.png": {"point": [[1, 1]]}}))
    assert entrypoint(["run", "--images", str(photos), "--prompts", str(prompts), "--out", str(tmp_path / "o")]) == 2
    assert "not in" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert entrypoint(["run", "--images", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no photos" in capsys.readouterr().err
    assert entrypoint(["run", "--images", str(photos), "--image", str(photos / "a.png"), "--out",
                       str(tmp_path / "o")]) == 2
    assert "not both" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{nope")
    assert entrypoint(["run", "--images", str(photos), "--prompts", str(tmp_path / "bad.json"), "--out",
                       str(tmp_path / "o")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_ray_tasks_give_the_same_runs_as_one_process(photos, tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra amodal3d[ray]")
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"a.png": {"point": [[40, 36]]}, "b.png": {"box": [15, 15, 70, 60]}}))
    common = ["run", "--images", str(photos), "--prompts", str(prompts), *FAST]
    assert entrypoint([*common, "--out", str(tmp_path / "one")]) == 0
    assert entrypoint([*common, "--out", str(tmp_path / "ray"), "--ray", "local"]) == 0
    for stem in ("a", "b", "c"):
        one, ray = (json.loads((tmp_path / o / stem / "run.json").read_text()) for o in ("one", "ray"))
        assert ray["faces"] == one["faces"] and ray["recon_method"] == one["recon_method"]
    assert entrypoint([*common, "--out", str(tmp_path / "x"), "--ray", "local", "--workers", "2"]) == 2
