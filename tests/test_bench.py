"""`amodal3d bench`: configurations, the results log, kill -9 and resume, process pool and Ray engines, the tables
and the HTML report (opened in headless Chromium when it is installed)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from amodal3d.bench import BenchConfig, run_bench, select_configs
from amodal3d.bench.results import ResultsLog, Row
from amodal3d.bench.summary import bucket_of, mask_table, recon_table
from amodal3d.completion import DEFAULT_METHOD
from amodal3d.core.errors import UserError
from amodal3d.core.outputs import prepare_resumable
from tests.synthetic import make_scene_set

FAST = ["mask/*", "recon/prior/completion_gt/*"]  # 7 rows per scene, one reconstruction each (the default's)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_scenes")
    make_scene_set(root, 3)
    return root


@pytest.fixture(scope="module")
def reference(scenes, tmp_path_factory):
    """An uninterrupted in-process run (the rows every other engine and resumed run must reproduce)."""
    return run_bench(BenchConfig(scenes=scenes, out=tmp_path_factory.mktemp("ref"), configs=FAST, workers=1), progress=False)


def metric_view(rows):
    keys = ("mask_iou", "chamfer", "volume_iou", "psnr", "ssim", "input_mask_iou")
    rows = [Row.from_json(r) if isinstance(r, dict) else r for r in rows]
    return {r.key: tuple(round(r.value(k), 9) for k in keys if r.value(k) is not None) for r in rows}


def test_config_ids_follow_the_paper_rows():
    ids = [c.id for c in select_configs(["classical"], ["inflate"])]
    assert len(ids) == len(set(ids)) == 12
    assert ids[:3] == ["mask/modal/modal_gt", "mask/hull/modal_gt", "mask/classical/modal_gt"]
    assert [i for i in ids if i.startswith("recon/")] == [
        "recon/inflate/all_foreground", "recon/inflate/modal_est", "recon/inflate/completion_est/classical",
        "recon/inflate/modal_gt", "recon/inflate/completion_gt/classical", "recon/inflate/whole_gt"]
    assert [c.id for c in select_configs(["classical"], ["inflate"], ["recon/*/whole_gt"])] == [
        "recon/inflate/whole_gt"]
    with pytest.raises(UserError, match="matches no configuration"):
        select_configs(["classical"], ["inflate"], ["nothing/*"])
    with pytest.raises(UserError, match="baseline"):
        select_configs(["hull"], ["inflate"])


def test_results_log_cuts_a_torn_line_and_never_duplicates(tmp_path):
    path = tmp_path / "results.jsonl"
    log = ResultsLog(path)
    assert log.add(Row("a", "x", "mask", "modal_gt", values={"mask_iou": 0.1}))
    assert not log.add(Row("a", "x", "mask", "modal_gt", values={"mask_iou": 0.2}))
    with open(path, "a") as f:
        f.write('{"scene": "b", "config": "x", "mask_iou"')  # killed mid-write
    again = ResultsLog(path)
    assert [r.value("mask_iou") for r in again.rows] == [0.1] and path.read_text().endswith("\n")
    assert again.add(Row("b", "x", "mask", "modal_gt", values={"mask_iou": 0.3}))
    assert [json.loads(line)["mask_iou"] for line in path.read_text().splitlines()] == [0.1, 0.3]


def test_bench_rows_tables_and_report(reference, scenes):
    rows = reference.rows
    assert len(rows) == 3 * 7 and not reference.failures
    by = {r.key: r for r in rows}
    for scene in ("scene_0000", "scene_0001", "scene_0002"):
        modal, hull = by[(scene, "mask/modal/modal_gt")], by[(scene, "mask/hull/modal_gt")]
        expected = 1.0 - modal.occlusion  # the visible mask is inside the whole: IoU = visible fraction
        assert modal.value("mask_iou") == pytest.approx(expected, abs=1e-6)
        assert 0 < hull.value("mask_iou") <= 1
        recon = by[(scene, f"recon/prior/completion_gt/{DEFAULT_METHOD}")]
        assert 0 < recon.value("chamfer") < 0.5 and 0 < recon.value("volume_iou") <= 1 and recon.value("psnr") > 5
        assert recon.value("lpips") is None and "LPIPS unavailable" in recon.lpips_unavailable
        assert (reference.out / recon.artifact).is_file()
    table = {(t["input"], t["completion"]): t for t in mask_table(rows)}
    assert table[("modal_gt", "modal")]["mask_iou"] == pytest.approx(
        np.mean([by[(s, "mask/modal/modal_gt")].value("mask_iou") for s in ("scene_0000", "scene_0001", "scene_0002")]))
    assert [t["input"] for t in recon_table(rows)] == ["completion_gt"]
    md = (reference.out / "summary.md").read_text()
    assert "Table 1" in md and f"| modal_gt | {DEFAULT_METHOD} | 3 |" in md and "LPIPS n/a" in md
    csv = (reference.out / "summary.csv").read_text().splitlines()
    assert csv[0].startswith("table,recon,input,completion,bucket,n,mask_iou")
    page = (reference.out / "report.html").read_text()
    assert page.count("<table") == 3 and page.count("<svg") >= 2 and 'class="sortable"' in page
    for src in ("scene_0000/input.png", f"work/scene_0000/completions/{DEFAULT_METHOD}-modal_gt/amodal_mask.png"):
        assert src in page
    assert bucket_of(0.3) == "20-50%" and bucket_of(0.8) == "50-80%" and bucket_of(0.1) == "other"


def test_rerun_is_a_no_op_and_other_settings_are_refused(reference, scenes):
    again = run_bench(BenchConfig(scenes=scenes, out=reference.out, configs=FAST, workers=1), progress=False)
    assert again.new_rows == 0 and len(again.rows) == len(reference.rows)
    with pytest.raises(UserError, match="other settings"):
        run_bench(BenchConfig(scenes=scenes, out=reference.out, configs=FAST, seed=5, workers=1), progress=False)


def test_kill_9_then_resume_gives_the_uninterrupted_rows(reference, scenes, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "amodal3d", "bench", "--scenes", str(scenes), "--out", str(out), "--workers", "1",
           "--configs", *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 9:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(results.read_text().splitlines())
    assert 9 <= written < len(reference.rows), "the run was not interrupted part-way"
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == len({(r["scene"], r["config"]) for r in lines}) == len(reference.rows)
    assert metric_view(lines) == metric_view(reference.rows)


def test_process_pool_gives_the_same_rows(reference, scenes, tmp_path):
    run = run_bench(BenchConfig(scenes=scenes, out=tmp_path / "pool", configs=FAST, workers=2), progress=False)
    assert not run.failures
    assert metric_view(run.rows) == metric_view(reference.rows)


def test_ray_on_a_local_instance_gives_the_same_rows(reference, scenes, tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra amodal3d[ray]")
    run = run_bench(BenchConfig(scenes=scenes, out=tmp_path / "ray", configs=["mask/*"], workers=1, ray="local", limit=2),
                    progress=False)
    assert not run.failures and len(run.rows) == 2 * 6
    expected = {k: v for k, v in metric_view(reference.rows).items() if k[1].startswith("mask/") and
                k[0] in ("scene_0000", "scene_0001")}
    assert metric_view(run.rows) == expected


def test_a_failing_row_is_reported_and_retried(scenes, tmp_path):
    out = prepare_resumable(tmp_path / "fail", "bench")  # an earlier run's folder with a corrupt cached stage
    work = out / "work" / "scene_0000"
    work.mkdir(parents=True)
    (work / "modal_est.png").write_bytes(b"not a png")  # a corrupt cached stage
    run = run_bench(BenchConfig(scenes=scenes, out=out, configs=["mask/modal/*"], workers=1, limit=1), progress=False)
    assert [f["config"] for f in run.failures] == ["mask/modal/modal_est"]
    assert (out / "failures.jsonl").is_file() and len(run.rows) == 1
    (work / "modal_est.png").unlink()
    again = run_bench(BenchConfig(scenes=scenes, out=out, configs=["mask/modal/*"], workers=1, limit=1), progress=False)
    assert not again.failures and again.new_rows == 1 and not (out / "failures.jsonl").exists()


def test_a_new_metric_is_one_spec_and_appears_in_every_table(reference, monkeypatch):
    from dataclasses import replace

    from amodal3d.bench.report import report_html
    from amodal3d.bench.summary import csv_text, markdown
    from metrics import specs

    fscore = specs.MetricSpec("fscore", "F@0.05", 3, True, (specs.RECON_TABLE,), "F-score at 0.05")
    monkeypatch.setattr(specs, "METRICS", specs.METRICS + (fscore,))
    rows = [replace(r, values={**r.values, "fscore": 0.625}) if r.table == specs.RECON_TABLE else r
            for r in reference.rows]
    assert "| F@0.05 |" in markdown(rows) and "| 0.625 |" in markdown(rows)
    assert csv_text(rows).splitlines()[0].endswith(",fscore")
    assert report_html(rows, reference.out).count("F@0.05") == 2  # Tables 3-4 and all rows


def test_cli_errors_are_one_line(tmp_path, scenes):
    from amodal3d.cli import entrypoint

    assert entrypoint(["bench", "--scenes", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert entrypoint(["bench", "--scenes", str(scenes), "--out", str(tmp_path / "o"),
                       "--completion", "nonsense"]) == 2


def test_report_screenshot_in_headless_chromium(reference):
    from amodal3d.bench.screenshot import find_browser, screenshot
    from benchmarks.bench_end_to_end import check_screenshot

    if find_browser() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    png = screenshot(reference.out / "report.html", reference.out / "report.png", height=1600)
    check = check_screenshot(png)
    assert check["ok"], check
