"""What the user points at: point(s), a box, or a modal mask; validated against the image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amodal3d.errors import UserError


@dataclass
class Prompt:
    """Points are (x, y) pixel coordinates (x right, y down) with labels 1 = object, 0 = not the object.
    ``box`` is (x0, y0, x1, y1). ``mask`` is an (H, W) bool mask of the visible (modal) object."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None

    @classmethod
    def point(cls, x: float, y: float) -> "Prompt":
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
            if not (0 <= x < width and 0 <= y < height):
                raise UserError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
        if self.labels and len(self.labels) != len(self.points):
            raise UserError(f"{len(self.points)} points but {len(self.labels)} labels")
        if self.points and not any(l == 1 for l in (self.labels or [1] * len(self.points))):
            raise UserError("at least one point must be on the object (label 1)")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (x1 > x0 and y1 > y0):
                raise UserError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) must have x1 > x0 and y1 > y0")
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                raise UserError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the {width}x{height} image")

    def point_labels(self) -> np.ndarray:
        return np.asarray(self.labels or [1] * len(self.points), np.int64)

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
