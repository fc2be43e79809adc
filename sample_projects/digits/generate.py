"""Generate the data for the `digits` sample project from scikit-learn's bundled 8x8 digits.

Deterministic (fixed seed, no download):

    python generate.py            # writes buggy/data/*.csv and fixed/data/*.csv

The 1,797 images are exported the way our scanner pipeline stores them: 8-bit grey levels
0-255 in columns p0..p63 (row-major), label in `digit`, an `image_id` for bookkeeping.
Stratified split 60 / 20 / 20; train also gets 150 augmented copies (the same image with lighter
ink), as the team's augmentation script does.  Both variants share every pixel value; in the
buggy variant the augmentation script wrote the labels of the augmented rows out of step with
their images (see buggy/bugs.toml).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 7
N_AUGMENTED = 150
HERE = Path(__file__).resolve().parent
PIXELS = [f"p{i}" for i in range(64)]


def jitter(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Brightness/contrast augmentation: scale the ink by 0.75-0.95, keep the background."""
    return np.clip(np.rint(image * rng.uniform(0.75, 0.95)), 0, 255).astype(np.int64)


def frame(images: np.ndarray, labels: np.ndarray, ids: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(images.reshape(len(images), 64).astype(np.int64), columns=PIXELS)
    df.insert(0, "image_id", ids)
    df["digit"] = labels.astype(np.int64)
    return df


def main() -> None:
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    # 0-16 grey levels -> 8-bit 0-255, as the scanner exports them
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.int64)
    labels = digits.target.astype(np.int64)
    ids = np.array([f"img{i:05d}" for i in range(len(labels))])

    idx = np.arange(len(labels))
    train_idx, rest_idx = train_test_split(idx, test_size=0.4, stratify=labels, random_state=SEED)
    valid_idx, test_idx = train_test_split(rest_idx, test_size=0.5, stratify=labels[rest_idx],
                                           random_state=SEED)

    # augmentation: 150 training images re-exported with lighter ink (brightness/contrast jitter)
    src = np.sort(rng.choice(train_idx, size=N_AUGMENTED, replace=False))
    aug_images = np.stack([jitter(rng, images[i]) for i in src])
    aug_labels = labels[src]
    aug_ids = [f"aug{k:05d}" for k in range(N_AUGMENTED)]

    train_images = np.concatenate([images[train_idx], aug_images])
    train_ids = list(ids[train_idx]) + aug_ids
    order = rng.permutation(len(train_images))

    def write(variant: str, aug_lab: np.ndarray) -> None:
        out = HERE / variant / "data"
        out.mkdir(parents=True, exist_ok=True)
        train_labels = np.concatenate([labels[train_idx], aug_lab])
        train = frame(train_images, train_labels, train_ids).iloc[order]
        train.to_csv(out / "train.csv", index=False)
        frame(images[valid_idx], labels[valid_idx], list(ids[valid_idx])).to_csv(out / "valid.csv", index=False)
        frame(images[test_idx], labels[test_idx], list(ids[test_idx])).to_csv(out / "test.csv", index=False)

    write("fixed", aug_labels)
    # Buggy: the augmentation script collected labels in a list that started one step late, so each
    # augmented image carries the label of the *next* source image (almost always a different digit).
    write("buggy", np.roll(aug_labels, -1))


if __name__ == "__main__":
    main()
