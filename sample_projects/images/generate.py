"""Generate the image folders of the `images` sample project from scikit-learn's bundled digits.

Deterministic (fixed seed, no download):

    python generate.py            # writes buggy/data/ and fixed/data/ next to this file
    python generate.py OUT        # writes OUT/buggy/data/ and OUT/fixed/data/ instead

Each of the 1,797 8x8 grey digits is rendered the way the form scanner's crops look: upsampled to
28x28, placed with a small random shift on a 32x32 card, coloured with a per-image paper colour
and ink colour, plus a little sensor noise, and saved as an RGB PNG in ImageFolder layout
`data/{train,valid,test}/<digit>/<image id>.png`.  Stratified split 60 / 20 / 20 by source image
(every image appears in exactly one split).  Both variants hold the same pixels; in the buggy
variant the labelling tool filed 15% of the training images under a wrong digit (buggy/bugs.toml).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 11
SIZE, GLYPH, MAX_SHIFT = 32, 28, 2
NOISE_SD = 4.0            # grey levels; scanner noise, keeps the cards from being flat colour
MISFILED_SHARE = 0.15     # buggy variant: training images filed under a wrong digit
HERE = Path(__file__).resolve().parent


LUMA = np.array([0.299, 0.587, 0.114])   # ITU-R BT.601 luma weights
MIN_CONTRAST = 90.0                       # luma difference paper - ink, in grey levels


def colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A light paper colour and an ink colour of any hue that is clearly darker in luma.

    The ink's channels are drawn independently (a green pen can be brighter than the paper in
    the green channel), so the three channels of a card are not copies of one another."""
    paper = rng.uniform(150, 255, size=3)
    while True:
        ink = rng.uniform(0, 255, size=3)
        if LUMA @ (paper - ink) >= MIN_CONTRAST:
            return paper, ink


def render(rng: np.random.Generator, digit8: np.ndarray) -> np.ndarray:
    """One 8x8 grey digit (0-16) as a (32, 32, 3) uint8 colour card."""
    glyph = Image.fromarray((digit8 * (255.0 / 16.0)).astype(np.float32), mode="F")
    ink_amount = np.asarray(glyph.resize((GLYPH, GLYPH), Image.BILINEAR)) / 255.0
    canvas = np.zeros((SIZE, SIZE), dtype=np.float64)
    top, left = (SIZE - GLYPH) // 2 + rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=2)
    canvas[top:top + GLYPH, left:left + GLYPH] = np.clip(ink_amount, 0.0, 1.0)
    paper, ink = colours(rng)
    rgb = paper + canvas[..., None] * (ink - paper)
    rgb += rng.normal(0.0, NOISE_SD, size=rgb.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def misfile(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """The buggy labelling: a random 15% of the labels replaced by a different, random digit."""
    wrong = labels.copy()
    picked = rng.choice(len(labels), size=int(round(MISFILED_SHARE * len(labels))), replace=False)
    wrong[picked] = (labels[picked] + rng.integers(1, 10, size=len(picked))) % 10
    return wrong


def write_split(folder: Path, images: list[np.ndarray], labels: np.ndarray, ids: list[str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True)
    for image, label, image_id in zip(images, labels, ids):
        Image.fromarray(image, mode="RGB").save(folder / str(int(label)) / f"{image_id}.png")


def main(out: Path = HERE) -> None:
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    labels = digits.target.astype(np.int64)
    cards = [render(rng, d) for d in digits.images]
    ids = [f"img{i:05d}" for i in range(len(labels))]

    idx = np.arange(len(labels))
    train_idx, rest_idx = train_test_split(idx, test_size=0.4, stratify=labels, random_state=SEED)
    valid_idx, test_idx = train_test_split(rest_idx, test_size=0.5, stratify=labels[rest_idx],
                                           random_state=SEED)
    misfiled = misfile(rng, labels[train_idx])

    for variant in ("fixed", "buggy"):
        data = Path(out) / variant / "data"
        train_labels = misfiled if variant == "buggy" else labels[train_idx]
        for split, chosen, split_labels in (("train", train_idx, train_labels),
                                            ("valid", valid_idx, labels[valid_idx]),
                                            ("test", test_idx, labels[test_idx])):
            write_split(data / split, [cards[i] for i in chosen], split_labels, [ids[i] for i in chosen])


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
