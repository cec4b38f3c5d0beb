"""What the user points at: point(s), a box, or a modal mask; validated against the image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np

from amodal3d.core.config import REPEATABLE
from amodal3d.core.errors import UserError
from amodal3d.core.io import MAX_SIDE

MIN_BOX_SIDE = 4.0  # pixels: GrabCut and SAM need a few pixels inside a box to model the object


def interior_points(mask: np.ndarray, count: int) -> list[list[float]]:
    """``count`` clicks a careful user would give on ``mask``: its most interior point, then the most interior point
    away from the clicks so far (distance transform, clicks' neighbourhoods removed). The photo benchmark's prompts."""
    left = mask.astype(np.uint8)
    points = []
    for _ in range(count):
        distance = cv2.distanceTransform(np.pad(left, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        if distance.max() <= 0:
            break
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        points.append([float(x), float(y)])
        cv2.circle(left, (int(x), int(y)), max(3, int(distance.max() * 1.5)), 0, -1)
    return points


def box_around(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the box just around ``mask``'s pixels."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


@dataclass
class Prompt:
    """Points are (x, y) pixel coordinates (x right, y down) with labels 1 = object, 0 = not the object.
    ``box`` is (x0, y0, x1, y1). ``mask`` is an (H, W) bool mask of the visible (modal) object."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None

    @classmethod
    def point(cls, x: float, y: float) -> Prompt:
        return cls(points=[(float(x), float(y))], labels=[1])

    @property
    def kind(self) -> str:
        return "mask" if self.mask is not None else "box" if self.box is not None else "points"

    def validate(self, height: int, width: int) -> None:
        """Raise :class:`UserError` for a prompt that cannot be used on an image of this size."""
        given = sum([bool(self.points), self.box is not None, self.mask is not None])
        if given == 0:
            raise UserError("no prompt: give a point (--point X Y), a box (--box X0 Y0 X1 Y1) or a mask (--mask M)")
        if self.mask is not None:
            if given > 1:
                raise UserError("give either a mask or points/box, not both")
            if self.mask.shape != (height, width):
                raise UserError(f"mask is {self.mask.shape[1]}x{self.mask.shape[0]} but the image is {width}x{height}")
            if not self.mask.any():
                raise UserError("the mask is empty: it must mark the visible part of the object")
        for x, y in self.points:
            if not (np.isfinite(x) and np.isfinite(y)):
                raise UserError(f"point ({x:g}, {y:g}) is not a pair of finite numbers")
            if not (0 <= x < width and 0 <= y < height):
                raise UserError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
        if self.labels and len(self.labels) != len(self.points):
            raise UserError(f"{len(self.points)} points but {len(self.labels)} labels")
        if self.points and self.box is None and not any(l == 1 for l in (self.labels or [1] * len(self.points))):
            raise UserError("at least one point must be on the object (label 1), or give a box around it")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            shown = f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g})"
            if not np.isfinite(self.box).all():
                raise UserError(f"{shown}: coordinates must be finite numbers")
            if not (x1 > x0 and y1 > y0):
                raise UserError(f"{shown} must have x1 > x0 and y1 > y0")
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                raise UserError(f"{shown} is outside the {width}x{height} image")
            cx0, cy0, cx1, cy1 = self.clipped_box(width, height)
            if min(cx1 - cx0, cy1 - cy0) < MIN_BOX_SIDE:
                raise UserError(f"{shown} is {cx1 - cx0:g}x{cy1 - cy0:g} px inside the image; draw a box of at least "
                                f"{MIN_BOX_SIDE:g}x{MIN_BOX_SIDE:g} px")

    def clipped_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The box clipped to the image [0, width] x [0, height]."""
        x0, y0, x1, y1 = self.box
        return max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)

    def inside_box(self, width: int, height: int) -> np.ndarray:
        """(height, width) bool: the pixels inside the box (the box rounded to whole pixels, clipped to the image)."""
        x0, y0, x1, y1 = [round(v) for v in self.clipped_box(width, height)]
        inside = np.zeros((height, width), bool)
        inside[y0:y1, x0:x1] = True
        return inside

    def scaled(self, scale: float, size: tuple[int, int] | None = None) -> Prompt:
        """The prompt on the image resized by ``scale`` (points and box scaled; a mask resized to ``size`` (W, H))."""
        from amodal3d.core.io import resize_mask

        if scale == 1.0 and (self.mask is None or size is None or self.mask.shape[::-1] == tuple(size)):
            return self
        return Prompt(points=[(x * scale, y * scale) for x, y in self.points], labels=list(self.labels),
                      box=None if self.box is None else tuple(v * scale for v in self.box),
                      mask=None if self.mask is None else resize_mask(self.mask, size))

    def point_labels(self) -> np.ndarray:
        return np.asarray(self.labels or [1] * len(self.points), np.int64)

    @property
    def object_points(self) -> list[tuple[float, float]]:
        """The points on the object (label 1)."""
        return [p for p, label in zip(self.points, self.point_labels()) if label == 1]

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind}
        if self.points:
            out["points"] = [list(p) for p in self.points]
            out["labels"] = self.point_labels().tolist()
        if self.box is not None:
            out["box"] = list(self.box)
        if self.mask is not None:
            out["mask_pixels"] = int(self.mask.sum())
        return out


@dataclass
class InputConfig:
    """What `complete` and `run` work on: a photo with its prompts, or a rendered scene."""

    image: Path | None = None
    """Input photo (PNG, JPEG, ...; EXIF orientation applied)."""
    point: Annotated[list[tuple[float, float]], REPEATABLE] = field(default_factory=list)
    """A pixel (X Y) on the visible part of the object; repeat the flag for more points."""
    neg_point: Annotated[list[tuple[float, float]], REPEATABLE] = field(default_factory=list)
    """A pixel (X Y) that is not the object (background or an occluder); repeatable."""
    box: tuple[float, float, float, float] | None = None
    """A box (X0 Y0 X1 Y1) around the visible part (with points too, if you like)."""
    mask: Path | None = None
    """A mask image of the visible part, same size as the image (inside = above half its maximum: 0/1, 0/255 and
    16-bit masks work)."""
    occluder_point: Annotated[list[tuple[float, float]], REPEATABLE] = field(default_factory=list)
    """A pixel (X Y) on what hides the object; repeatable. The occluder is segmented like the object, and the whole
    object is looked for only under it."""
    occluder_box: tuple[float, float, float, float] | None = None
    """A box (X0 Y0 X1 Y1) around what hides the object (with --occluder-point too, if you like)."""
    occluder_mask: Path | None = None
    """A mask image of what hides the object (instead of --occluder-point / --occluder-box; with --scene and none of
    these, the scene's own occluder mask is used)."""
    amodal3r_mask: Path | None = None
    """Amodal3R's three-level mask of the image instead of the other prompts: grey (188) the visible object, black
    (0) the occluded area, white (255) the background."""
    scene: Path | None = None
    """A rendered scene folder instead: its input.png and modal_mask.png are the image and prompt (with `run`, the
    mesh lands in the scene's frame and is scored)."""
    max_side: int = MAX_SIDE
    """Working resolution: a photo whose longer side is larger is downscaled while it is decoded (the masks are
    also written at the photo's own size)."""

    def paths(self) -> list[Path | None]:
        """The files and folders this input reads (an output must not replace them)."""
        return [self.image, self.mask, self.occluder_mask, self.amodal3r_mask, self.scene]

    def load(self) -> PromptedInput:
        """The image at working resolution with the prompts moved onto it; UserError for a bad combination."""
        from amodal3d.core.io import load_image, read_mask

        if (self.occluder_point or self.occluder_box is not None) and self.occluder_mask is not None:
            raise UserError("give --occluder-point / --occluder-box or --occluder-mask, not both")
        if self.scene is not None:
            from amodal3d.core.formats import scene as fmt

            if any((self.image, self.point, self.neg_point, self.box, self.mask)):
                raise UserError("--scene takes its image and visible mask from the scene: give no --image or prompt")
            scene = fmt.Scene.open(self.scene)
            image = scene.image(fmt.INPUT)
            size = (image.shape[1], image.shape[0])
            occluder = self._occluder(size, size)
            if occluder is None and (self.scene / fmt.OCCLUDER_MASK).is_file():
                occluder = Prompt(mask=scene.mask(fmt.OCCLUDER_MASK))
            return PromptedInput(image, Prompt(mask=scene.mask(fmt.MODAL_MASK)), {"scene": str(self.scene)}, size,
                                 occluder)
        if self.image is None:
            raise UserError("give --image IMG with a prompt, or --scene DIR")
        if self.amodal3r_mask is not None:
            return self._load_amodal3r()
        if self.mask is not None and (self.point or self.neg_point or self.box is not None):
            raise UserError("give either --mask or points/box, not both")
        if self.mask is None and not self.point and self.box is None:
            raise UserError("give a prompt: --point X Y (repeatable, with --neg-point X Y), --box X0 Y0 X1 Y1, or "
                            "--mask M")
        loaded = load_image(self.image, self.max_side)
        if self.mask is not None:
            prompt = Prompt(mask=read_mask(self.mask, loaded.original_size))
        else:
            prompt = Prompt(points=[*map(tuple, self.point), *map(tuple, self.neg_point)],
                            labels=[1] * len(self.point) + [0] * len(self.neg_point), box=self.box)
        prompt.validate(loaded.original_size[1], loaded.original_size[0])
        working = loaded.pixels.shape[1], loaded.pixels.shape[0]
        occluder = self._occluder(loaded.original_size, working)
        if occluder is not None:
            occluder = occluder.scaled(loaded.scale, working)
        source = {"image": str(self.image)}
        if loaded.scale != 1.0:
            source.update(original_size=list(loaded.original_size), working_scale=loaded.scale)
        return PromptedInput(loaded.pixels, prompt.scaled(loaded.scale, working), source, loaded.original_size,
                             occluder)

    def _load_amodal3r(self) -> PromptedInput:
        from amodal3d.core.formats.amodal3r import read_amodal3r_mask
        from amodal3d.core.io import load_image

        if any((self.point, self.neg_point, self.box is not None, self.mask, self.occluder_point,
                self.occluder_box is not None, self.occluder_mask)):
            raise UserError("--amodal3r-mask holds the visible object and the occluded area: give no other prompt")
        loaded = load_image(self.image, self.max_side)
        visible, occluded = read_amodal3r_mask(self.amodal3r_mask)
        if visible.shape[::-1] != tuple(loaded.original_size):
            raise UserError(f"the Amodal3R mask is {visible.shape[1]}x{visible.shape[0]} but the image is "
                            f"{loaded.original_size[0]}x{loaded.original_size[1]}")
        working = loaded.pixels.shape[1], loaded.pixels.shape[0]
        occluder = Prompt(mask=occluded).scaled(loaded.scale, working) if occluded.any() else None
        source = {"image": str(self.image), "amodal3r_mask": str(self.amodal3r_mask)}
        return PromptedInput(loaded.pixels, Prompt(mask=visible).scaled(loaded.scale, working), source,
                             loaded.original_size, occluder)

    def _occluder(self, original_size: tuple[int, int], working: tuple[int, int]) -> Prompt | None:
        from amodal3d.core.io import read_mask

        if self.occluder_mask is not None:
            prompt = Prompt(mask=read_mask(self.occluder_mask, original_size))
        elif self.occluder_point or self.occluder_box is not None:
            prompt = Prompt(points=[tuple(p) for p in self.occluder_point], labels=[1] * len(self.occluder_point),
                            box=self.occluder_box)
        else:
            return None
        try:
            prompt.validate(original_size[1], original_size[0])
        except UserError as error:
            raise UserError(f"occluder: {error}") from None
        return prompt


@dataclass
class PromptedInput:
    """A loaded input: the image at working resolution, the prompt on it, where they came from (for the output's
    json), the user's original size (W, H) and a prompt (points, box or mask) on the occluder, if given."""

    image: np.ndarray
    prompt: Prompt
    source: dict
    original_size: tuple[int, int]
    occluder: Prompt | None = None
