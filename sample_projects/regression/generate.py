"""Generate the data for the `regression` sample project from scikit-learn's bundled diabetes set.

Deterministic (fixed seed, no download):

    python generate.py            # writes buggy/data/*.csv and fixed/data/*.csv

442 patients, ten baseline measurements in their original units (scaled=False) and the
disease progression one year later (`progression`, roughly 25-346).  A `patient_id` is added
for bookkeeping.  Random split 60 / 20 / 20.  Both variants get identical files: every bug of
this project is in the code or the configuration.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

SEED = 5
HERE = Path(__file__).resolve().parent
# sklearn's s1..s6 blood serum measurements under the names the clinic uses
NAMES = {"age": "age", "sex": "sex", "bmi": "bmi", "bp": "bp", "s1": "tc", "s2": "ldl",
         "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"}


def main() -> None:
    data = load_diabetes(scaled=False)
    df = pd.DataFrame(data.data, columns=[NAMES[n] for n in data.feature_names])
    df["ltg"] = df["ltg"].round(4)
    for col in ["age", "sex", "tc", "hdl", "glu"]:
        df[col] = df[col].round().astype(np.int64)
    df.insert(0, "patient_id", [f"D{1000 + i}" for i in range(len(df))])
    df["progression"] = data.target.astype(np.int64)

    idx = np.arange(len(df))
    train_idx, rest = train_test_split(idx, test_size=0.4, random_state=SEED)
    valid_idx, test_idx = train_test_split(rest, test_size=0.5, random_state=SEED)
    splits = {"train": train_idx, "valid": valid_idx, "test": test_idx}
    for variant in ("fixed", "buggy"):
        out = HERE / variant / "data"
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in splits.items():
            df.iloc[rows].to_csv(out / f"{name}.csv", index=False)
    y = df["progression"].iloc[train_idx]
    print(f"train target: mean {y.mean():.1f}, std {y.std(ddof=0):.1f}, range {y.min()}-{y.max()}")


if __name__ == "__main__":
    main()
