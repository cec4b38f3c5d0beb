"""Amodal dataset readers (COCOA, COCO-style COCOA-cls / D2S, KINS both releases), COCO RLE, and `bench-amodal` with
pix2gestalt's protocol switches: fixture files written in each format, with IoUs known by construction."""

import json

import cv2
import numpy as np
import pytest

from amodal3d.bench.amodal import (
    BenchAmodalConfig,
    instance_rows,
    method_summary,
    run_bench_amodal,
)
from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from amodal3d.core.formats.rle import mask_to_rle, rle_to_mask, segmentation_to_mask
from amodal3d.core.io import write_png
from amodal3d.data.amodal_datasets import read_amodal_dataset

H, W = 60, 80
BOX = [[50, 10, 75, 10, 75, 50, 50, 50]]  # a card in front, (50..75) x (10..50)
DISC_CENTRE, DISC_RADIUS = (40, 30), 18


def _disc() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, DISC_CENTRE, DISC_RADIUS, 1, -1)
    return mask.astype(bool)


def _disc_polygon() -> list:
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    xs, ys = DISC_CENTRE[0] + DISC_RADIUS * np.cos(angles), DISC_CENTRE[1] + DISC_RADIUS * np.sin(angles)
    return [np.stack([xs, ys], 1).ravel().round(2).tolist()]


def _polygons(mask: np.ndarray) -> list:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1).astype(float).tolist() for c in contours]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """An image with a disc partly behind a card, and the same annotation in every format."""
    root = tmp_path_factory.mktemp("amodal")
    amodal = segmentation_to_mask(_disc_polygon(), H, W)
    card = segmentation_to_mask(BOX, H, W)
    visible = amodal & ~card
    image = np.full((H, W, 3), 0.85, np.float32)
    image[amodal] = (0.8, 0.2, 0.1)
    image[card] = (0.2, 0.3, 0.8)
    (root / "images").mkdir()
    write_png(root / "images" / "a.png", image)
    images = [{"id": 7, "file_name": "a.png", "height": H, "width": W}]
    categories = [{"id": 1, "name": "disc"}, {"id": 2, "name": "card"}]
    files = {
        "cocoa": {"images": [{"id": 7, "file_name": "a.png"}], "annotations": [{
            "image_id": 7, "id": 1, "size": [H, W], "depth_constraint": "1-2", "regions": [
                {"segmentation": BOX[0], "name": "card", "order": 1, "area": float(card.sum()), "isStuff": 0,
                 "occlude_rate": 0.0},
                {"segmentation": _disc_polygon()[0], "name": "disc", "order": 2, "area": float(amodal.sum()),
                 "isStuff": 0, "occlude_rate": float(1 - visible.sum() / amodal.sum()),
                 "visible_mask": mask_to_rle(visible), "invisible_mask": mask_to_rle(amodal & ~visible)},
                {"segmentation": [0, 0, 79, 0, 79, 5, 0, 5], "name": "sky", "order": 3, "area": 480.0,
                 "isStuff": 1, "occlude_rate": 0.0}]}]},
        "coco": {"images": images, "categories": categories, "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "segmentation": _disc_polygon(), "iscrowd": 0,
             "visible_mask": mask_to_rle(visible), "invisible_mask": mask_to_rle(amodal & ~visible)},
            {"id": 2, "image_id": 7, "category_id": 2, "segmentation": mask_to_rle(card, compressed=False),
             "visible_mask": BOX, "iscrowd": 0}]},
        "kins": {"images": images, "categories": categories, "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "segmentation": _disc_polygon(),
             "inmodal_seg": mask_to_rle(visible), "inmodal_bbox": [22, 12, 28, 36], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 2, "segmentation": BOX, "inmodal_seg": BOX, "iscrowd": 0}]},
        "kins_2020": {"images": images, "categories": categories, "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "a_segm": _disc_polygon(), "i_segm": _polygons(visible),
             "a_bbox": [22, 12, 36, 36], "i_bbox": [22, 12, 28, 36], "oco_id": 1, "ico_id": 2},
            {"id": 2, "image_id": 7, "category_id": 2, "a_segm": BOX, "i_segm": BOX, "ico_id": 1}]},
    }
    for name, data in files.items():
        (root / f"{name}.json").write_text(json.dumps(data))
    ratio = visible.sum() / amodal.sum()
    return root, amodal, visible, card, float(ratio)


def test_compressed_rle_round_trips_and_matches_pycocotools():
    rng = np.random.default_rng(0)
    for trial in range(50):
        h, w = rng.integers(1, 40, 2)
        mask = rng.random((h, w)) < rng.random()
        rle = mask_to_rle(mask)
        assert np.array_equal(rle_to_mask(rle["counts"], h, w), mask)
        assert np.array_equal(rle_to_mask(mask_to_rle(mask, compressed=False)["counts"], h, w), mask)
    coco = pytest.importorskip("pycocotools.mask")
    for trial in range(50):
        h, w = rng.integers(1, 40, 2)
        mask = rng.random((h, w)) < rng.random()
        theirs = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert mask_to_rle(mask)["counts"] == theirs["counts"].decode()
        assert np.array_equal(rle_to_mask(theirs["counts"], h, w), coco.decode(theirs).astype(bool))


@pytest.mark.parametrize("name, kind", [("cocoa", "cocoa"), ("coco", "coco"), ("kins", "kins"),
                                        ("kins_2020", "kins")])
def test_each_format_reads_the_same_objects(dataset, name, kind):
    root, amodal, visible, card, _ = dataset
    found, instances = read_amodal_dataset(root / f"{name}.json")
    assert found == kind
    objects = {i.category: i for i in instances}
    assert {"disc", "card"} <= set(objects)
    disc_amodal, disc_visible = objects["disc"].masks()
    assert np.array_equal(disc_amodal, amodal) and np.array_equal(disc_visible, visible)
    card_amodal, card_visible = objects["card"].masks()
    assert np.array_equal(card_amodal, card) and np.array_equal(card_visible, card)
    assert all(i.image_file == "a.png" and (i.height, i.width) == (H, W) for i in instances)


def test_an_annotation_without_its_masks_is_one_line(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}],
            "annotations": [{"id": 1, "image_id": 1, "segmentation": [[0, 0, 3, 0, 3, 3]], "inmodal_seg": []},
                            {"id": 2, "image_id": 1, "inmodal_seg": []}]}
    (tmp_path / "k.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="annotation 1 has no segmentation or a_segm"):
        read_amodal_dataset(tmp_path / "k.json")


def test_a_file_of_no_known_format_is_one_line(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"images": [], "annotations": [{"bbox": [1, 2, 3, 4]}]}))
    with pytest.raises(UserError, match="unknown amodal annotation format"):
        read_amodal_dataset(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{")
    with pytest.raises(UserError, match="cannot read"):
        read_amodal_dataset(tmp_path / "y.json")


def test_bench_amodal_gives_the_known_baseline_numbers_and_resumes(dataset, tmp_path, capsys):
    root, *_, ratio = dataset
    args = ["bench-amodal", "--annotations", str(root / "cocoa.json"), "--images", str(root / "images"),
            "--out", str(tmp_path / "b"), "--completion", "classical", "--samples", "2"]
    assert entrypoint(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert {r["category"] for r in rows} == {"disc", "card"}  # the stuff region (sky) is left out
    modal = {r["category"]: r for r in rows if r["completion"] == "modal"}
    assert modal["card"]["mask_iou"] == 1.0 and modal["card"]["invisible_iou"] is None  # nothing hidden
    assert modal["disc"]["mask_iou"] == pytest.approx(ratio) and modal["disc"]["invisible_iou"] == 0.0
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert f"| modal | 2 | 1 | {100 * (1 + ratio) / 2:.1f} | 0.0 |" in summary
    bucket = "0-20%" if 1 - ratio < 0.2 else "20-50%"
    assert f"| {bucket} | modal | 1 |" in summary and "vote: majority" in summary and "best_of: 1" in summary
    capsys.readouterr()
    assert entrypoint(args) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("0 new row(s)")
    assert entrypoint([*args[:-2], "--samples", "3"]) == 2  # other settings: refused, not mixed
    assert "other settings" in capsys.readouterr().err


class _Completed:
    def __init__(self, masks):
        self.masks = masks


def test_the_protocol_switches_change_the_numbers_as_they_should(dataset, monkeypatch):
    """K = 3 samples; trial with seed s gives the whole disc in sample k when (s + k) % 3 == 0, else only its
    visible part. Majority: the visible part in every trial; union: the whole disc in every trial; first: the
    whole disc in trial 0 only."""
    from amodal3d.completion import frontend

    root, amodal, visible, _, ratio = dataset
    monkeypatch.setattr(frontend, "complete", lambda image, prompt, completer, config, seed, **_: _Completed(
        [amodal if (seed + k) % 3 == 0 else visible for k in range(config.samples)]))
    _, instances = read_amodal_dataset(root / "coco.json")
    disc = next(i for i in instances if i.category == "disc")
    image = np.zeros((H, W, 3), np.float32)

    def summary(vote, best_of):
        config = BenchAmodalConfig(root / "coco.json", root / "images", root / "unused", completion=["fake"],
                                   vote=vote, best_of=best_of)
        config.completion_config.samples = 3
        rows = instance_rows(disc, image, config, set(), completer_of=lambda name: None)
        return method_summary(rows, "fake")

    assert summary("majority", 1)["miou_mean"] == pytest.approx(ratio)
    assert summary("union", 1)["miou_mean"] == pytest.approx(1.0)
    first = summary("first", 3)
    assert first["trials"] == 3
    assert first["miou_mean"] == pytest.approx((1 + 2 * ratio) / 3)
    assert first["miou_best"] == pytest.approx(1.0) and first["miou_oracle"] == pytest.approx(1.0)
    assert first["miou_inv_best"] == pytest.approx(1.0)
    assert summary("majority", 3)["miou_best"] == pytest.approx(ratio)  # best of 3 cannot beat a fixed answer


def test_segmenter_visible_masks_csv_and_workers(dataset, tmp_path):
    import csv

    root = dataset[0]
    for visible in ("box", "click"):
        config = BenchAmodalConfig(root / "coco.json", root / "images", tmp_path / visible, visible=visible,
                                   completion=[], workers=2)
        run = run_bench_amodal(config, progress=False)
        assert len(run.rows) == 4  # 2 objects x (modal, hull)
        assert all(0 < r.value("visible_iou") <= 1 for r in run.rows)
        with open(tmp_path / visible / "summary.csv") as f:
            rows = list(csv.DictReader(f))
        modal = next(r for r in rows if r["group"] == "all" and r["value"] == "mean_trial" and r["method"] == "modal")
        assert modal["miou_inv"] == "0.0"  # zero is written as zero, not left blank


def test_run_bench_amodal_mistakes_are_one_line(dataset, tmp_path):
    root = dataset[0]
    with pytest.raises(UserError, match="not a folder"):
        run_bench_amodal(BenchAmodalConfig(root / "coco.json", tmp_path / "nope", tmp_path / "o"))
    with pytest.raises(UserError, match="unknown completion"):
        run_bench_amodal(BenchAmodalConfig(root / "coco.json", root / "images", tmp_path / "o", completion=["x"]))
    assert not (tmp_path / "o").exists()
