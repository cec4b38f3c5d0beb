"""Build the real-photo amodal benchmark: real photographs with exact object masks, each object partly hidden by a
real cut-out from another photograph pasted over it (paper-style), so its whole mask is known exactly.

    .venv/bin/python benchmarks/photos/build_photo_bench.py --out data/photo_bench [--mirrors /work/.mirror]
    .venv/bin/python benchmarks/photos/build_photo_bench.py --out segset --segmentation-set   # clicknet's training set
    .venv/bin/python benchmarks/photos/build_photo_bench.py --out segsal --segmentation-set --salient 1500   # + DUTS

The photos come from public copies in git repositories (fetch them first with the `fetch` tool; nothing is
committed here). Splits are by source dataset, so the held-out split shares no photo, no annotator and no occluder
with the one we look at while developing:

| split | dataset | copy read | licence of the data |
|---|---|---|---|
| dev | GrabCut ground truth (Rother et al. 2004, 50 photos) | SamsungLabs/ritm_interactive_segmentation, refs/pull/9/head | research use (Microsoft Research; no licence file) |
| dev | Berkeley interactive set (McGuinness & O'Connor 2010, masks) on BSDS300 photos (Martin et al. 2001) | masks: same RITM ref; photos: EstellaXinyuZhang/CSC2529_Project | BSDS: non-commercial research |
| dev | DAVIS-345 (frames of DAVIS 2016, Perazzi et al.) | same RITM ref | DAVIS terms: research, non-commercial |
| heldout | COCO_MVal (COCO val2017, 10 instances per category) | same RITM ref | annotations CC BY 4.0; photos under their Flickr licences |
| heldout | Weizmann Horse database (Borenstein & Ullman 2002) | shenshutao/image_segmentation | research use |
| training only (`--salient N`) | DUTS-TR (Wang et al. 2017; ImageNet DET and SUN photos) | Nithurshen/salient-object-detection | research use (the copy's MIT licence covers its code) |

A target is an annotated object that does not touch the photo's border (its annotated extent is then whole); its
occluder is another object of the same split, cut from another photo, scaled to 25-90% of the target's area and
placed across the target's outline until it hides 15-60% of it. The 1-click, 3-click and box prompts are derived
from the visible mask (the visible part's most interior points, its bounding box) and stored in case.json.
Every object in these photos was annotated as it appears: where it was itself partly hidden in the photo, its
"whole" mask is its annotated extent (as in pix2gestalt's synthetic data). None of these sources annotates amodal
extents of naturally occluded objects.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from amodal3d.core.formats.photo_case import write_case
from amodal3d.core.prompts import box_around, interior_points
from amodal3d.data.paste import _placed

MAX_SIDE = 512
RITM = ("SamsungLabs+ritm_interactive_segmentation", "repo", "refs/pull/9/head")
BSDS = ("EstellaXinyuZhang+CSC2529_Project", "repo", "HEAD")
HORSES = ("shenshutao+image_segmentation", "repo", "HEAD")
DUTS = ("Nithurshen+salient-object-detection", "repo", "HEAD")
DUTS_TRAIN = "data/DUTS-TR"
LICENCES = {
    "grabcut": "research use (Microsoft Research GrabCut database; no licence file)",
    "berkeley": "BSDS300 photos: non-commercial research; masks: research use",
    "davis": "DAVIS 2016 terms: research, non-commercial",
    "coco_mval": "COCO annotations CC BY 4.0; photo under its Flickr licence (COCO val2017)",
    "horse": "Weizmann Horse database: research use",
    "duts": "DUTS (Wang et al. 2017): research use",
}
SPLIT = {"grabcut": "dev", "berkeley": "dev", "davis": "dev", "coco_mval": "heldout", "horse": "heldout"}


@dataclass
class Photo:
    dataset: str
    name: str
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool
    provenance: str

    @property
    def key(self) -> str:
        return f"{self.dataset}-{self.name}"


def extract(mirrors: Path, source: tuple[str, str, str], paths: list[str], dest: Path) -> tuple[Path, str]:
    """``paths`` of a fetched mirror at its ref, as files under ``dest``; and the commit read."""
    owner_name, sub, ref = source
    git_dir = mirrors / owner_name / sub
    if (git_dir / ".git").is_dir():
        git_dir = git_dir / ".git"
    if not git_dir.is_dir():
        raise SystemExit(f"{git_dir}: not fetched (fetch github:{owner_name.replace('+', '/')} first)")
    commit = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", ref], check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = dest / f"{owner_name}.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "--git-dir", str(git_dir), "archive", commit, *paths], check=True, stdout=out)
    target = dest / owner_name
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target, commit


def _read(path: Path, grey: bool = False) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{path}: unreadable")
    return image if grey else image[..., ::-1].copy()


def _shrink(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = MAX_SIDE / max(image.shape[:2])
    if scale >= 1.0:
        return image, mask
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    small = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), small


def load_photos(mirrors: Path, work: Path, davis_every: int = 4) -> list[Photo]:
    ritm, ritm_commit = extract(mirrors, RITM, ["datasets/GrabCut", "datasets/Berkeley", "datasets/COCO_MVal",
                                                "notebooks/ritm_interactive_segmentation/datasets/DAVIS"], work)
    bsds, bsds_commit = extract(mirrors, BSDS, ["BSDS300/images"], work)
    horses, horses_commit = extract(mirrors, HORSES, ["weizmann_horse_db/rgb", "weizmann_horse_db/figure_ground"], work)
    at = {"ritm": f"SamsungLabs/ritm_interactive_segmentation@{ritm_commit}",
          "bsds": f"EstellaXinyuZhang/CSC2529_Project@{bsds_commit}",
          "horses": f"shenshutao/image_segmentation@{horses_commit}"}
    photos = []
    for image_path in sorted((ritm / "datasets/GrabCut/data_GT").iterdir()):
        mask = _read(ritm / "datasets/GrabCut/boundary_GT" / f"{image_path.stem}.bmp", grey=True) >= 128
        photos.append(Photo("grabcut", image_path.stem, _read(image_path), mask,
                            f"{at['ritm']}:datasets/GrabCut/data_GT/{image_path.name}"))
    bsds_images = {p.stem: p for p in (bsds / "BSDS300/images").glob("*/*.jpg")}
    for mask_path in sorted((ritm / "datasets/Berkeley/masks").glob("*.png")):
        photo_id = mask_path.stem.rstrip("ab")
        image = _read(bsds_images[photo_id])
        mask = _read(mask_path, grey=True) > 127
        if mask.shape != image.shape[:2]:  # 101087's mask is transposed: not this photo's
            continue
        photos.append(Photo("berkeley", mask_path.stem, image, mask,
                            f"{at['bsds']}:BSDS300/images/*/{photo_id}.jpg + {at['ritm']}:datasets/Berkeley/masks/"
                            f"{mask_path.name}"))
    davis = ritm / "notebooks/ritm_interactive_segmentation/datasets/DAVIS"
    for image_path in sorted((davis / "img").glob("*.jpg"))[::davis_every]:  # neighbours: near-duplicates
        mask = _read(davis / "gt" / f"{image_path.stem}.png", grey=True) > 0
        photos.append(Photo("davis", image_path.stem, _read(image_path), mask,
                            f"{at['ritm']}:notebooks/ritm_interactive_segmentation/datasets/DAVIS/img/{image_path.name}"))
    seen = set()
    for image_path in sorted((ritm / "datasets/COCO_MVal/img").glob("*.jpg")):
        coco_id = image_path.stem.split("_")[-1]
        if coco_id in seen:  # one object per photo
            continue
        mask = _read(ritm / "datasets/COCO_MVal/gt" / f"{image_path.stem}.png", grey=True) > 127
        seen.add(coco_id)
        photos.append(Photo("coco_mval", image_path.stem, _read(image_path), mask,
                            f"{at['ritm']}:datasets/COCO_MVal/img/{image_path.name} (COCO id {int(coco_id)})"))
    for mask_path in sorted((horses / "weizmann_horse_db/figure_ground").glob("*.jpg")):
        mask = _read(mask_path, grey=True) >= 128  # JPEG masks
        image = cv2.resize(_read(horses / "weizmann_horse_db/rgb" / mask_path.name), mask.shape[::-1],
                           interpolation=cv2.INTER_AREA)  # the masks are a slightly smaller copy of each photo
        photos.append(Photo("horse", mask_path.stem, image, mask,
                            f"{at['horses']}:weizmann_horse_db/rgb/{mask_path.name}"))
    shrunk = []
    for photo in photos:
        image, mask = _shrink(photo.image, photo.mask)
        shrunk.append(Photo(photo.dataset, photo.name, image, mask, photo.provenance))
    return shrunk


def is_target(photo: Photo) -> bool:
    """A whole object of a useful size: away from the border, 2-50% of the photo, mostly one piece."""
    mask = photo.mask
    if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
        return False
    return 0.02 <= mask.mean() <= 0.5 and mostly_one_piece(mask)


def mostly_one_piece(mask: np.ndarray) -> bool:
    """The mask's largest connected part holds at least 90% of it."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return count > 1 and stats[1:, cv2.CC_STAT_AREA].max() >= 0.9 * mask.sum()


def one_object(mask: np.ndarray) -> bool:
    """A salient-object mask that is one object: 3-60% of the photo, mostly one piece."""
    return 0.03 <= mask.mean() <= 0.6 and mostly_one_piece(mask)


def write_salient(mirrors: Path, work: Path, out: Path, count: int, seed: int = 0) -> list[str]:
    """Copy ``count`` DUTS-TR photos whose mask is one object (a seeded pick) into a segmentation set; their
    SOURCES.md lines. The photos are copied as they are, the masks cut at 128 (some edges are anti-aliased)."""
    duts, commit = extract(mirrors, DUTS, [DUTS_TRAIN], work)
    photos, masks = duts / DUTS_TRAIN / "DUTS-TR-Image", duts / DUTS_TRAIN / "DUTS-TR-Mask"
    eligible = []
    for path in sorted(photos.glob("*.jpg")):
        mask = _read(masks / f"{path.stem}.png", grey=True) >= 128
        if one_object(mask):
            eligible.append((path, mask))
    picked = [eligible[i] for i in sorted(np.random.default_rng(seed).permutation(len(eligible))[:count])]
    lines = []
    for path, mask in picked:
        shutil.copyfile(path, out / "images" / f"duts-{path.stem}.jpg")
        cv2.imwrite(str(out / "masks" / f"duts-{path.stem}.png"), mask.astype(np.uint8) * 255)
        lines.append(f"- duts-{path.stem}: Nithurshen/salient-object-detection@{commit}:{DUTS_TRAIN}/DUTS-TR-Image/"
                     f"{path.name}; {LICENCES['duts']}\n")
    return lines


def cutout(photo: Photo) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(photo.mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return photo.image[y0:y1, x0:x1], photo.mask[y0:y1, x0:x1]


def paste(target: Photo, occluder: Photo, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """(occluded image, occluder mask) hiding 15-60% of the target, or None when 40 placements fail."""
    rgb, mask = cutout(occluder)
    h, w = target.mask.shape
    boundary = np.argwhere(target.mask & ~cv2.erode(target.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool))
    for _ in range(40):
        scale = np.sqrt(rng.uniform(0.25, 0.9) * target.mask.sum() / mask.sum())
        size = (max(2, round(mask.shape[1] * scale)), max(2, round(mask.shape[0] * scale)))
        if max(size) > 2 * max(h, w):
            continue
        small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5
        cy, cx = boundary[rng.integers(len(boundary))]
        cy += int(rng.uniform(-0.25, 0.25) * size[1])
        cx += int(rng.uniform(-0.25, 0.25) * size[0])
        pixels, placed = _placed(small_rgb, small_mask, (h, w), cx - size[0] // 2, cy - size[1] // 2)
        hidden = (placed & target.mask).sum() / target.mask.sum()
        if 0.15 <= hidden <= 0.6:
            return np.where(placed[..., None], pixels.astype(np.uint8), target.image), placed
    return None


def training_pairs(photos: list[Photo], per_photo: int, rng: np.random.Generator):
    """Whole/part training pairs (pix2gestalt's layout) from the dev split only: each dev target hidden ``per_photo``
    times by other dev cut-outs; the whole object is the photo's own pixels on white. Held-out photos never enter."""
    from amodal3d.data.pairs import Pair

    pool = [p for p in photos if SPLIT[p.dataset] == "dev" and is_target(p)]
    for target in pool:
        photo_id = target.name.rstrip("ab")
        others = [p for p in pool if p.key != target.key and p.name.rstrip("ab") != photo_id]
        for _ in range(per_photo):
            pasted = paste(target, others[rng.integers(len(others))], rng)
            if pasted is None:
                continue
            image, occluder_mask = pasted
            whole = np.where(target.mask[..., None], target.image, 255).astype(np.float32) / 255
            yield Pair(image.astype(np.float32) / 255, whole, target.mask, target.mask & ~occluder_mask,
                       {"dataset": target.dataset, "photo": target.name,
                        "occlusion_ratio": float((occluder_mask & target.mask).sum() / target.mask.sum())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-per-dataset", type=int, default=120)
    parser.add_argument("--pairs", action="store_true",
                        help="write training pairs (amodal3d train --pairs OUT) from the dev split instead of cases")
    parser.add_argument("--per-photo", type=int, default=8, help="with --pairs: occluded variants per dev photo")
    parser.add_argument("--segmentation-set", action="store_true",
                        help="write every dev photo with its object mask (amodal3d train-segmenter --photos OUT), "
                             "all DAVIS frames, instead of cases")
    parser.add_argument("--salient", type=int, default=0, metavar="N",
                        help="with --segmentation-set: also N DUTS-TR photos whose mask is one object")
    parser.add_argument("--backgrounds", action="store_true",
                        help="write the dev photos themselves (amodal3d make-pairs --backgrounds OUT) instead of cases")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out}: exists and is not empty")
    with tempfile.TemporaryDirectory() as work:
        photos = load_photos(args.mirrors, Path(work), davis_every=1 if args.segmentation_set else 4)
        if args.segmentation_set:
            for folder in ("images", "masks"):
                (args.out / folder).mkdir(parents=True, exist_ok=True)
            salient = write_salient(args.mirrors, Path(work), args.out, args.salient) if args.salient else []
    rng = np.random.default_rng(args.seed)
    if args.pairs:
        from amodal3d.data.pairs import write_pairs

        count = write_pairs(training_pairs(photos, args.per_photo, rng), args.out, overwrite=False,
                            config={"builder": "build_photo_bench.py --pairs", "seed": args.seed,
                                    "per_photo": args.per_photo, "split": "dev"})
        print(f"{count} training pairs from dev photos in {args.out}")
        return
    if args.segmentation_set:
        dev = [p for p in photos if SPLIT[p.dataset] == "dev" and p.mask.sum() >= 400]
        for photo in dev:
            cv2.imwrite(str(args.out / "images" / f"{photo.key}.jpg"), photo.image[..., ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(args.out / "masks" / f"{photo.key}.png"), photo.mask.astype(np.uint8) * 255)
        (args.out / "SOURCES.md").write_text("".join(f"- {p.key}: {p.provenance}; {LICENCES[p.dataset]}\n"
                                                     for p in dev) + "".join(salient))
        print(f"{len(dev)} dev photos and {len(salient)} DUTS photos with masks in {args.out}")
        return
    if args.backgrounds:
        args.out.mkdir(parents=True, exist_ok=True)
        seen = {}
        for photo in photos:
            if SPLIT[photo.dataset] == "dev":
                seen.setdefault(f"{photo.dataset}-{photo.name.rstrip('ab')}", photo.image)
        for name, image in seen.items():
            cv2.imwrite(str(args.out / f"{name}.jpg"), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        print(f"{len(seen)} dev photos in {args.out}")
        return
    counts: dict[str, int] = {}
    for split in ("dev", "heldout"):
        pool = [p for p in photos if SPLIT[p.dataset] == split and is_target(p)]
        by_dataset: dict[str, list[Photo]] = {}
        for photo in pool:
            by_dataset.setdefault(photo.dataset, []).append(photo)
        for dataset, targets in by_dataset.items():
            chosen = [targets[i] for i in sorted(rng.permutation(len(targets))[:args.max_per_dataset])]
            for target in chosen:
                photo_id = target.name.rstrip("ab") if dataset == "berkeley" else target.name
                others = [p for p in pool if p.key != target.key and not
                          (p.dataset == dataset and p.name.rstrip("ab") == photo_id)]
                occluder = others[rng.integers(len(others))]
                pasted = paste(target, occluder, rng)
                if pasted is None:
                    continue
                image, occluder_mask = pasted
                visible = target.mask & ~occluder_mask
                name = f"{dataset}-{target.name}"
                digest = hashlib.sha256(image.tobytes()).hexdigest()[:16]
                write_case(args.out / split / name, image, visible, target.mask, occluder_mask, {
                    "split": split, "dataset": dataset, "source": target.provenance,
                    "licence": LICENCES[dataset], "occluder_source": occluder.provenance,
                    "occluder_licence": LICENCES[occluder.dataset],
                    "hidden_fraction": round(float((occluder_mask & target.mask).sum() / target.mask.sum()), 4),
                    "prompts": {"click1": interior_points(visible, 1), "click3": interior_points(visible, 3),
                                "box": list(box_around(visible))},
                    "image_sha256_16": digest, "builder_seed": args.seed})
                counts[f"{split}/{dataset}"] = counts.get(f"{split}/{dataset}", 0) + 1
    for key, count in sorted(counts.items()):
        print(f"{key}: {count} cases")
    print(f"{sum(counts.values())} cases in {args.out}")


if __name__ == "__main__":
    main()
