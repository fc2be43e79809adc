"""Generate the data for the `tabular` sample project from scikit-learn's bundled breast cancer set.

Deterministic (fixed seed, no download):

    python generate.py            # writes buggy/data/*.csv and fixed/data/*.csv

The 569 biopsy records (30 cell-nucleus measurements each, from the Wisconsin diagnostic
data) are dressed up as a hospital export: a `patient_id`, the `hospital` that took the sample,
the `visit_date` (YYYYMMDD as a number), the patient's `age` (synthetic, mildly related to the
diagnosis) and the label `diagnosis` (benign / malignant).  Stratified split 60 / 20 / 20.

The buggy export differs in the ways listed in buggy/bugs.toml (a billing code column,
missing lab values for one hospital, a re-calibrated measurement in the validation batch and
a training file sorted by diagnosis); everything else is identical.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

SEED = 11
HERE = Path(__file__).resolve().parent
HOSPITALS = ["north", "central", "riverside"]


def build() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    bc = load_breast_cancer()
    names = [n.replace(" ", "_") for n in bc.feature_names]
    df = pd.DataFrame(bc.data, columns=names).round(5)
    # sklearn codes 0 = malignant, 1 = benign
    diagnosis = np.where(bc.target == 0, "malignant", "benign")
    n = len(df)
    malignant = diagnosis == "malignant"
    age = np.where(malignant, rng.normal(58, 11, n), rng.normal(50, 12, n))
    start = dt.date(2019, 1, 1).toordinal()
    days = np.sort(rng.integers(0, 4 * 365, n))  # patients registered over four years
    visit = [int(dt.date.fromordinal(start + int(d)).strftime("%Y%m%d")) for d in days]
    order = rng.permutation(n)  # registration order is unrelated to the record order
    out = pd.DataFrame({
        "patient_id": 104_201 + np.arange(n),
        "hospital": rng.choice(HOSPITALS, size=n, p=[0.45, 0.35, 0.20]),
        "visit_date": visit,
    })
    body = df.iloc[order].reset_index(drop=True)
    out["age"] = np.clip(np.rint(age[order]), 25, 90).astype(np.int64)
    out = pd.concat([out, body], axis=1)
    out["diagnosis"] = diagnosis[order]
    # the billing system's ICD-10 code, assigned *after* pathology confirmed the diagnosis
    mal = out["diagnosis"].eq("malignant").to_numpy()
    code = np.where(mal, rng.choice(["C50.9", "C50.4", "C50.8"], size=n, p=[0.7, 0.2, 0.1]),
                    rng.choice(["D24.9", "N60.1", "N60.2"], size=n, p=[0.6, 0.25, 0.15]))
    pending = rng.random(n) < 0.03
    code[pending] = "R92.8"  # "abnormal finding, pending"
    out.insert(4, "diagnosis_code", code)
    return out


def main() -> None:
    df = build()
    rng = np.random.default_rng(SEED + 1)
    idx = np.arange(len(df))
    train_idx, rest = train_test_split(idx, test_size=0.4, stratify=df["diagnosis"], random_state=SEED)
    valid_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=df["diagnosis"].iloc[rest],
                                           random_state=SEED)
    splits = {"train": df.iloc[train_idx], "valid": df.iloc[valid_idx], "test": df.iloc[test_idx]}

    for name, part in splits.items():
        fixed = part.drop(columns=["diagnosis_code"])
        (HERE / "fixed" / "data").mkdir(parents=True, exist_ok=True)
        fixed.to_csv(HERE / "fixed" / "data" / f"{name}.csv", index=False)

        buggy = part.copy()
        # riverside's lab system did not export worst_concave_points
        buggy.loc[buggy["hospital"].eq("riverside"), "worst_concave_points"] = np.nan
        if name == "valid":
            # the validation batch was measured after the imaging software update, which reports
            # texture on a different grey-level scale (about 40% higher)
            buggy["mean_texture"] = (buggy["mean_texture"] * 1.4 + rng.normal(0, 0.3, len(buggy))).round(2)
        if name == "train":
            buggy = buggy.sort_values(["diagnosis", "patient_id"], kind="stable")
        (HERE / "buggy" / "data").mkdir(parents=True, exist_ok=True)
        buggy.to_csv(HERE / "buggy" / "data" / f"{name}.csv", index=False)


if __name__ == "__main__":
    main()
