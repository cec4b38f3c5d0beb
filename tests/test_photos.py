"""Real-photo benchmark format and `bench --photos`; occluder prompts and confinement; several prompts together."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from amodal3d.bench.photos import ESTIMATED_BASELINE, OCCLUDER_BASELINE, photo_configs
from amodal3d.bench.runner import BenchConfig, run_bench
from amodal3d.cli import entrypoint
from amodal3d.completion import complete
from amodal3d.completion.baselines import convex_hull_mask
from amodal3d.core.errors import UserError
from amodal3d.core.formats.photo_case import PhotoCase, find_cases, write_case
from amodal3d.core.io import write_png
from amodal3d.core.prompts import InputConfig, Prompt
from amodal3d.data.examples import CARD_BOX, coffee_cup_prompts, occluded_coffee_cup

BUILDER = Path(__file__).resolve().parents[1] / "benchmarks" / "photos" / "build_photo_bench.py"
ERROR_PARTS = BUILDER.with_name("bench_error_parts.py")


def _disc_case(folder: Path, split: str, shift: int = 0) -> dict:
    """A red disc (the object) on a textured background, a band across its middle under a blue bar (the occluder)."""
    rng = np.random.default_rng(shift)
    h, w = 96, 128
    yy, xx = np.mgrid[:h, :w]
    amodal = (yy - 48) ** 2 + (xx - 60 - shift) ** 2 < 26 ** 2
    occluder = (xx >= 58 + shift) & (xx < 70 + shift) & (yy > 10) & (yy < 86)
    image = 0.6 + 0.1 * rng.random((h, w, 3)).astype(np.float32)
    image[amodal] = (0.8, 0.3, 0.2)
    image[occluder] = (0.1, 0.2, 0.9)
    visible = amodal & ~occluder
    ys, xs = np.nonzero(visible)
    meta = {"split": split, "dataset": "synthetic", "source": "test", "licence": "test",
            "hidden_fraction": float((amodal & occluder).sum() / amodal.sum()),
            "prompts": {"click1": [[50.0 + shift, 48.0]], "click3": [[50.0 + shift, 48.0], [45.0 + shift, 35.0],
                                                                     [45.0 + shift, 60.0]],
                        "box": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]}}
    write_case(folder, image, visible, amodal, occluder, meta)
    return {"amodal": amodal, "visible": visible, "occluder": occluder}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("photo_cases")
    truth = {}
    for split, shift in (("dev", 0), ("dev", 4), ("heldout", 2)):
        name = f"{split}/case_{shift}"
        truth[name] = _disc_case(root / name, split, shift)
    return root, truth


def test_a_case_reads_back_as_written(cases):
    root, truth = cases
    case = PhotoCase.open(root / "dev" / "case_0")
    assert case.split == "dev" and case.image.shape == (96, 128, 3)
    assert np.array_equal(case.amodal, truth["dev/case_0"]["amodal"])
    assert np.array_equal(case.modal, truth["dev/case_0"]["visible"])
    assert np.array_equal(case.occluder, truth["dev/case_0"]["occluder"])
    assert [c.name for c in find_cases(root, "heldout")] == ["heldout/case_2"]
    with pytest.raises(UserError, match="no photo cases of split heldout"):
        find_cases(root / "dev", "heldout")
    with pytest.raises(ValueError, match="split"):
        write_case(root / "x", case.image, case.modal, case.amodal, case.occluder, {"split": "train"})


def test_photo_bench_scores_the_baselines_exactly_and_resumes(cases, tmp_path):
    root, truth = cases
    config = BenchConfig(photos=root, out=tmp_path / "b", completion=["classical"],
                         configs=["mask/modal/*", "mask/hull/*", f"mask/{OCCLUDER_BASELINE}/*",
                                  f"mask/{ESTIMATED_BASELINE}/*", "mask/classical/modal_gt*"])
    run = run_bench(config, progress=False)
    assert len(run.rows) == 3 * (4 + 4 + 3 * 3) and run.new_rows == len(run.rows)
    by = {(r.scene, r.config): r for r in run.rows}
    for name, t in truth.items():
        modal = by[(name, "mask/modal/modal_gt")].value("mask_iou")
        assert modal == pytest.approx(t["visible"].sum() / t["amodal"].sum())
        # the disc's hidden part lies under the bar: the hull within visible + occluder finds most of it
        hull_occluder = by[(name, f"mask/{OCCLUDER_BASELINE}/modal_gt+occluder")].value("mask_iou")
        assert hull_occluder > modal
        # the blue bar is unlike the grey background around the disc: the estimate finds it
        estimated = by[(name, f"mask/{ESTIMATED_BASELINE}/modal_gt")].value("mask_iou")
        assert estimated == pytest.approx(hull_occluder, abs=0.02)
        confined = by[(name, "mask/classical/modal_gt+occluder")].value("mask_iou")
        assert confined >= by[(name, "mask/classical/modal_gt")].value("mask_iou") - 1e-9
        # one click finds the piece of the disc it is on (the bar splits the visible part in two)
        assert 0.5 < by[(name, "mask/modal/click1")].value("visible_iou") < 0.8
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert "## dev" in summary and "## heldout" in summary and "| modal_gt | modal | 2 |" in summary
    again = run_bench(config, progress=False)
    assert again.new_rows == 0 and len(again.rows) == len(run.rows)
    with pytest.raises(UserError, match="other settings"):
        run_bench(BenchConfig(photos=root, out=tmp_path / "b", completion=["classical"], seed=3), progress=False)
    only = run_bench(BenchConfig(photos=root, out=tmp_path / "h", completion=["classical"], split="heldout",
                                 configs=["mask/modal/modal_gt"]), progress=False)
    assert [r.target for r in only.rows] == ["heldout"]


def test_photo_configs_offer_the_occluder_baseline_only_with_an_occluder():
    ids = {c.id for c in photo_configs(["classical"])}
    assert f"mask/{OCCLUDER_BASELINE}/modal_gt+occluder" in ids and f"mask/{OCCLUDER_BASELINE}/modal_gt" not in ids
    assert f"mask/{ESTIMATED_BASELINE}/modal_gt" in ids and f"mask/{ESTIMATED_BASELINE}/modal_gt+occluder" not in ids
    assert {"mask/classical/click1", "mask/classical/click3", "mask/classical/box"} <= ids


def test_bench_needs_scenes_or_photos(tmp_path):
    with pytest.raises(UserError, match="--scenes DIR .* or --photos DIR"):
        run_bench(BenchConfig(out=tmp_path / "o"), progress=False)


def test_the_amodal_mask_stays_within_visible_and_occluder(cases):
    case = PhotoCase.open(cases[0] / "dev" / "case_0")
    free = complete(case.image, Prompt(mask=case.modal), "classical", samples=2, estimate_occluder=False)
    confined = complete(case.image, Prompt(mask=case.modal), "classical", samples=2, occluder_mask=case.occluder)
    allowed = case.modal | case.occluder
    assert not (confined.amodal_mask & ~allowed).any() and all(not (m & ~allowed).any() for m in confined.masks)
    assert (confined.amodal_mask & ~allowed).sum() <= (free.amodal_mask & ~allowed).sum()
    assert (confined.modal_mask == case.modal).all() and confined.occluder == "given"
    estimated = complete(case.image, Prompt(mask=case.modal), "classical", samples=2, estimate_occluder=True)
    assert estimated.occluder == "estimated" and free.occluder == "none"
    assert not (estimated.amodal_mask & ~(case.modal | estimated.occluder_mask)).any()
    # the estimate is the bar near the disc (and nothing of the background)
    hull_gap = convex_hull_mask(case.modal) & ~case.modal
    assert (estimated.occluder_mask & hull_gap).sum() >= 0.9 * (hull_gap & case.occluder).sum()
    assert not (estimated.occluder_mask & ~case.occluder).any()


def test_an_occluder_click_is_segmented_and_kept_out_of_the_object():
    image, _ = occluded_coffee_cup()
    cup, card = coffee_cup_prompts()
    done = complete(image, cup, "classical", samples=2, occluder_mask=card)
    x, y = (int(v) for v in card.points[0])
    assert not done.modal_mask[y, x]  # the card is not part of the visible cup
    assert done.amodal_mask[y, x]  # but the cup continues under it
    assert not done.modal_mask[250, 385]  # nor is the card's red lower half, the cup's own colour
    cx, cy = (int(v) for v in cup.points[0])
    assert done.modal_mask[cy, cx] and done.modal_mask.mean() > 0.3  # cup and saucer, not a sliver
    with pytest.raises(UserError, match="^occluder: point"):
        complete(image, cup, "classical", samples=1, occluder_mask=Prompt.point(9999, 5))


def test_several_points_negative_points_and_a_box_make_one_prompt(tmp_path):
    image, _ = occluded_coffee_cup()
    path = tmp_path / "cup.png"
    write_png(path, image)
    given = InputConfig(image=path, point=[(235, 150), (200, 230)], neg_point=[(20, 20)], box=(75, 15, 482, 392),
                        occluder_point=[(370, 150)]).load()
    assert given.prompt.points == [(235, 150), (200, 230), (20, 20)] and given.prompt.point_labels().tolist() == [1, 1, 0]
    assert given.prompt.box == (75, 15, 482, 392) and given.occluder.points == [(370, 150)]
    out = tmp_path / "c"
    assert entrypoint(["complete", "--image", str(path), "--point", "235", "150", "--point", "200", "230",
                       "--neg-point", "20", "20", "--box", "75", "15", "482", "392", "--occluder-point", "370", "150",
                       "--occluder-box", *map(str, CARD_BOX), "--samples", "1", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]["input"]
    assert saved["point"] == [[235.0, 150.0], [200.0, 230.0]] and saved["occluder_point"] == [[370.0, 150.0]]
    assert saved["occluder_box"] == list(CARD_BOX)
    boxed = InputConfig(image=path, point=[(235, 150)], occluder_box=CARD_BOX).load().occluder
    assert boxed.box == CARD_BOX and boxed.points == []
    halved = InputConfig(image=path, point=[(235, 150)], occluder_box=CARD_BOX, max_side=300).load().occluder
    assert halved.box == tuple(v / 2 for v in CARD_BOX)  # on the downscaled working image
    done = complete(image, Prompt.point(235, 150), "classical", samples=1, occluder_mask=Prompt(box=CARD_BOX))
    assert done.occluder == "given" and not done.modal_mask[150, 370] and done.amodal_mask[150, 370]
    with pytest.raises(UserError, match="not both"):
        InputConfig(image=path, occluder_point=[(1, 1)], occluder_mask=path, point=[(5, 5)]).load()
    with pytest.raises(UserError, match="not both"):
        InputConfig(image=path, occluder_box=(1, 1, 9, 9), occluder_mask=path, point=[(5, 5)]).load()
    with pytest.raises(UserError, match="^occluder: box"):
        InputConfig(image=path, point=[(5, 5)], occluder_box=(700, 1, 900, 9)).load()


def test_the_builder_pastes_an_occluder_hiding_a_known_part():
    builder = runpy.run_path(str(BUILDER), run_name="builder")
    h, w = 120, 160
    yy, xx = np.mgrid[:h, :w]
    target = builder["Photo"]("t", "a", np.full((h, w, 3), 100, np.uint8), (yy - 60) ** 2 + (xx - 80) ** 2 < 900, "")
    square = np.zeros((80, 80), bool)
    square[10:70, 10:70] = True
    occluder = builder["Photo"]("o", "b", np.full((80, 80, 3), 200, np.uint8), square, "")
    image, placed = builder["paste"](target, occluder, np.random.default_rng(0))
    hidden = (placed & target.mask).sum() / target.mask.sum()
    assert 0.15 <= hidden <= 0.6 and (image[placed] == 200).all() and (image[~placed] == 100).all()
    points = builder["interior_points"](target.mask & ~placed, 3)
    assert len(points) == 3 and all((target.mask & ~placed)[int(y), int(x)] for x, y in points)
    assert builder["is_target"](target) and not builder["is_target"](occluder)  # the square fills over half its photo


def test_the_builder_takes_a_salient_mask_only_when_it_is_one_object():
    one_object = runpy.run_path(str(BUILDER), run_name="builder")["one_object"]
    yy, xx = np.mgrid[:100, :100]
    disc = (yy - 50) ** 2 + (xx - 30) ** 2 < 15 ** 2  # 7% of the photo
    twin = (yy - 50) ** 2 + (xx - 75) ** 2 < 15 ** 2
    speck = (yy - 90) ** 2 + (xx - 90) ** 2 < 2 ** 2
    assert one_object(disc) and one_object(disc | speck)
    assert not one_object(disc | twin)  # two objects: one click could mean either
    assert not one_object(np.ones_like(disc)) and not one_object(disc & (yy < 40))  # too large, too small


def test_error_parts_split_a_known_answer_by_where_it_goes_wrong():
    error_parts = runpy.run_path(str(ERROR_PARTS), run_name="parts")["error_parts"]
    whole = np.zeros((10, 10), bool)
    whole[:, :6] = True  # 60 px, the right 20 hidden
    occluder = np.zeros_like(whole)
    occluder[:, 4:8] = True
    visible = whole & ~occluder
    answer_visible = visible.copy()
    answer_visible[:, 0] = False  # 10 visible px missed
    answer = answer_visible | occluder  # the hidden 20 found, 20 extra on the occluder
    answer[0, 9] = True  # and 1 on the background
    parts = error_parts(visible, whole, occluder, answer_visible, answer)
    union = 81
    assert np.allclose(parts, (30 / 40, 50 / union, 10 / union, 0, 20 / union, 1 / union))


def test_the_example_cup_comes_out_as_a_cup_on_its_saucer():
    """The demo's example as its user knows it (round, shot from 50 degrees above): a wide thin saucer under a
    narrower, taller cup, not the inflated slab the unknown elevation gives."""
    pytest.importorskip("torch")
    from amodal3d.data.examples import COFFEE_CUP_ELEVATION
    from recon.pipeline import make_inputs, whole_view
    from recon.priors import PriorConfig, candidates

    image, _ = occluded_coffee_cup()
    cup, card = coffee_cup_prompts()
    done = complete(image, cup, "amodalnet", samples=4, occluder_mask=card)  # as the demo runs it
    view = make_inputs(whole_view(done.samples[0], done.amodal_mask), elevation_deg=COFFEE_CUP_ELEVATION).view
    voxels = PriorConfig().resolution  # the demo's grid
    occupancy = candidates(view.mask, view.camera, voxels, ("revolution",))["revolution"].occupancy
    layers = np.flatnonzero(occupancy.any((0, 1)))  # occupied heights, bottom up
    radius = np.array([np.sqrt(occupancy[..., k].sum() / np.pi) for k in layers])  # voxels, per layer
    saucer, body = radius[: max(1, len(layers) // 6)].max(), np.median(radius[len(layers) // 3:])
    # the saucer sticks out under the cup: 2.00 measured on the demo's grid (1.77 on 64 voxels, where it was 1.43
    # while GrabCut took the box's outside as background and lost the saucer's dark rim)
    assert saucer > 1.45 * body
    # and it is thin: 9% of the heights measured; 54% (a drum as wide as the saucer, half the cup's height) when the
    # canvas was framed around the user's box, which the ratio above did not see
    assert (radius > 1.3 * body).mean() < 0.25
    assert len(layers) > 0.8 * body  # the cup stands up: not a flat disc
