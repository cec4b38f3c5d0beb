"""The core install (`pip install amodal3d`, no extras) runs the CPU path; a missing extra is one line naming it.
Simulated here by hiding the extras' packages from the import system (a fresh venv with only the core is measured
in the README)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from amodal3d.core.optional import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = sorted({*EXTRAS, "segment_anything"})

_WITHOUT_EXTRAS = """
import sys
hidden = set(sys.argv[1].split(","))

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None

sys.meta_path.insert(0, Hide())
from amodal3d.cli import entrypoint
code = entrypoint(sys.argv[2:])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in hidden)
print("leaked:", ",".join(leaked))
sys.exit(code)
"""


def without_extras(*args, cwd):
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_EXTRAS, ",".join(HIDDEN), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc.returncode, proc.stdout, [line for line in proc.stderr.splitlines() if line.strip()]


def test_the_cpu_path_runs_without_any_extra(photo, tmp_path):
    code, out, err = without_extras("run", photo, "--point", "60", "50", "--recon", "prior", "--out", tmp_path / "run",
                                    cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "run" / "mesh.glb").is_file() and (tmp_path / "run" / "index.html").is_file()
    assert "leaked: \n" in out  # no hidden package was imported
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["segmenter"] == "grabcut" and info["completion_method"] == "classical"  # the networks need torch


def test_a_missing_extra_is_one_line_naming_it(photo, tmp_path):
    code, _, err = without_extras("complete", "--image", photo, "--point", "60", "50", "--completion", "pix2gestalt",
                                  "--pix2gestalt.weights", tmp_path, "--out", tmp_path / "c", cwd=tmp_path)
    assert code == 2 and len(err) == 1 and "pip install 'amodal3d[diffusion]'" in err[0], err
    code, _, err = without_extras("render-scenes", "--num", "1", "--out", tmp_path / "s", cwd=tmp_path)
    assert code == 2 and len(err) == 1 and "pip install 'amodal3d[render]'" in err[0], err
    code, _, err = without_extras("complete", "--image", photo, "--point", "60", "50", "--sam-checkpoint", photo,
                                  "--out", tmp_path / "d", cwd=tmp_path)
    assert code == 2 and len(err) == 1 and "amodal3d[sam]" in err[0], err
    code, _, err = without_extras("complete", "--image", photo, "--point", "60", "50", "--segment-with", "clicknet",
                                  "--out", tmp_path / "e", cwd=tmp_path)
    assert code == 2 and len(err) == 1 and "pip install 'amodal3d[diffusion]'" in err[0], err
    code, _, err = without_extras("app", "--port", "0", cwd=tmp_path)
    assert code == 2 and len(err) == 1 and "pip install 'amodal3d[app]'" in err[0], err


def test_bench_without_extras_reports_lpips_unavailable_with_the_extra(tmp_path):
    from tests.synthetic import make_scene_set

    make_scene_set(tmp_path / "scenes", 1, res=64)
    code, out, err = without_extras("bench", "--scenes", tmp_path / "scenes", "--out", tmp_path / "b", "--workers", "1",
                                    "--configs", "mask/*", "recon/prior/whole_gt", cwd=tmp_path)
    assert code == 0, err
    assert "LPIPS n/a: LPIPS unavailable: LPIPS needs the optional package 'torch'" in out
    assert "amodal3d[diffusion]" in out
