"""A bundled example photo with a partly hidden object, built from scikit-image's sample data (no download, no
binary in the repository): the espresso cup of ``skimage.data.coffee()`` (CC0, Rachel Michetti) with a card-shaped
cut-out of ``skimage.data.astronaut()`` (public domain, NASA) pasted over its right side."""

from __future__ import annotations

import cv2
import numpy as np

from amodal3d.data.paste import _placed

COFFEE_CUP_POINT = (235.0, 150.0)  # a pixel on the cup's visible left side
SAUCER_POINTS = ((120.0, 150.0), (300.0, 370.0))  # its far left and near rim: the saucer is the table's red
COFFEE_CUP_BOX = (75.0, 15.0, 482.0, 392.0)  # around the visible cup and saucer
CARD_POINT = (370.0, 150.0)  # a pixel on the pasted card that hides the cup's right side
SPOON_POINT = (348.0, 305.0)  # the spoon on the saucer, below the card: it hides the saucer too
CARD_BOX = (295.0, 55.0, 455.0, 330.0)  # around the card and the spoon (the card's red lower half is the cup's colour)
# What the example's user knows of the shot, as SyncDreamer's users give the elevation: the camera looks down at about
# 50 degrees (the saucer's outline is an ellipse whose axes are in the ratio 0.79 = sin 52 degrees) and a cup on its
# saucer is round, so it is reconstructed as a surface of revolution (``--recon revolution --elevation 50``).
COFFEE_CUP_ELEVATION = 50.0
COFFEE_CUP_RECON = "revolution"


def occluded_coffee_cup() -> tuple[np.ndarray, tuple[float, float]]:
    """(image (400, 600, 3) float in [0, 1], the (x, y) point prompt on the partly hidden cup)."""
    from skimage import data

    photo = data.coffee().astype(np.float32) / 255.0
    card = cv2.resize(data.astronaut()[40:360, 120:330], (150, 230), interpolation=cv2.INTER_AREA)
    card = card.astype(np.float32) / 255.0
    corners = np.array([[0, 0], [149, 0], [149, 229], [0, 229]], np.float32)
    mask = np.zeros(card.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.approxPolyDP(corners.astype(np.int32), 1, True), 1)
    rotation = cv2.getRotationMatrix2D((75, 115), -12, 1.0)
    card = cv2.warpAffine(card, rotation, (150, 230), borderValue=(0, 0, 0))
    mask = cv2.warpAffine(mask, rotation, (150, 230), flags=cv2.INTER_NEAREST).astype(bool)
    rgb, placed = _placed(card, mask, photo.shape[:2], 300, 60)
    shadow = cv2.GaussianBlur(np.roll(placed, (8, 8), axis=(0, 1)).astype(np.float32), (0, 0), 6)
    image = photo * (1.0 - 0.45 * shadow[..., None])
    image[placed] = rgb[placed]
    return np.clip(image, 0.0, 1.0), COFFEE_CUP_POINT


def coffee_cup_prompts():
    """The prompts a user gives the example: (a box around the cup and saucer with a click on the cup and two on
    the saucer; clicks on the card and the spoon in front of them with a box around both). The same as ``--point
    235 150 --point 120 150 --point 300 370 --box 75 15 482 392 --occluder-point 370 150 --occluder-point 348 305
    --occluder-box 295 55 455 330``."""
    from amodal3d.core.prompts import Prompt

    points = [COFFEE_CUP_POINT, *SAUCER_POINTS]
    return (Prompt(points=points, labels=[1] * len(points), box=COFFEE_CUP_BOX),
            Prompt(points=[CARD_POINT, SPOON_POINT], labels=[1, 1], box=CARD_BOX))
