"""errors.similar_unlabeled: pool rows planted like a weak slice rank first; a pool with none gives none high."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import run_check, write_project
from mltriage.checks.analyses.similar import RESEMBLES, fit_slice_model, knn_mistakes
from mltriage.checks.project.config import ProjectError, load_project

CLASSES = ["a", "b", "c"]
REGIONS = ["north", "south", "east", "west"]


def frame(n: int, seed: int, regions=REGIONS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"region": rng.choice(regions, n), "amount": rng.gamma(2.0, 50.0, n).round(2),
                         "score": rng.normal(size=n), "label": rng.choice(CLASSES, n)})


def predictions(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Right 88% of the time, but only half the time in region east; confidence 0.8 (no confident mistake)."""
    rng = np.random.default_rng(seed)
    y = df["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    wrong = rng.random(len(df)) < np.where(df["region"] == "east", 0.5, 0.12)
    pred = np.where(wrong, (y + rng.integers(1, 3, len(df))) % 3, y)
    out = pd.DataFrame({"prediction": [CLASSES[i] for i in pred]})
    for j, c in enumerate(CLASSES):
        out[f"prob_{c}"] = np.where(pred == j, 0.8, 0.1)
    return out


def pool_project(root, pool: pd.DataFrame | None):
    valid = frame(1500, 2)
    extra = '[artifacts]\npredictions = "preds/valid.csv"\n'
    if pool is not None:
        (root / "data").mkdir(parents=True, exist_ok=True)
        pool.to_csv(root / "data" / "pool.csv", index=False)
    write_project(root, frame(400, 1), valid, toml_extra=extra)
    if pool is not None:
        text = (root / "mltriage.toml").read_text().replace("[data]\n", '[data]\nunlabeled = "data/pool.csv"\n', 1)
        (root / "mltriage.toml").write_text(text)
    (root / "preds").mkdir(exist_ok=True)
    predictions(valid, 3).to_csv(root / "preds" / "valid.csv", index=False)
    return root


def test_planted_slice_rows_rank_first_and_a_clean_pool_gives_none(tmp_path):
    clean = frame(300, 5, regions=["north", "south", "west"]).drop(columns="label")
    planted = pd.concat([clean, frame(40, 6, regions=["east"]).drop(columns="label")], ignore_index=True)
    f = run_check(pool_project(tmp_path / "planted", planted), "errors.similar_unlabeled")
    assert f.status == "info", f.title
    east = {t["name"]: t for t in f.evidence["targets"]}["region == 'east'"]
    assert east["resembling"] == 40 and east["separation_auc"] > 0.9
    rows = [dict(zip(f.rows.columns, r)) for r in f.rows.records]
    assert {r["position"] for r in rows[:40]} == set(range(300, 340))
    assert all(r["resembles"] == "region == 'east'" and r["similarity_score"] >= RESEMBLES for r in rows[:40])
    assert f.rows.columns[:2] == ["position", "split"] and "region" in f.rows.columns

    twin = run_check(pool_project(tmp_path / "clean", clean), "errors.similar_unlabeled")
    assert twin.status == "pass" and twin.evidence["resembling_rows"] == 0, twin.title
    assert max(t["best"] for t in twin.evidence["targets"]) < RESEMBLES


def test_without_a_pool_it_is_skipped_saying_what_to_add(tmp_path):
    f = run_check(pool_project(tmp_path, None), "errors.similar_unlabeled")
    assert f.status == "skipped" and "[data] unlabeled" in f.title


def test_a_pool_missing_feature_columns_is_an_error_naming_them(tmp_path):
    pool = frame(50, 5).drop(columns=["label", "score"])
    f = run_check(pool_project(tmp_path, pool), "errors.similar_unlabeled")
    assert f.status == "error" and "score" in f.detail and "[data] unlabeled" in f.detail


@pytest.mark.parametrize("name, expected", [("missing.csv", "does not exist"), ("pool.txt", "not a table file")])
def test_project_file_rejects_a_bad_unlabeled_path(tmp_path, name, expected):
    write_project(tmp_path, frame(20, 1), unlabeled=f"data/{name}")
    if name.endswith(".txt"):
        (tmp_path / "data" / name).write_text("x\n")
    with pytest.raises(ProjectError, match=expected):
        load_project(tmp_path)


# --- the scores, without a project -----------------------------------------------------------------
def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_slice_probability_is_high_near_the_slice_and_low_elsewhere():
    rng = np.random.default_rng(0)
    inside, outside = rng.normal([4, 0, 0], 1, (60, 3)), rng.normal([0, 4, 0], 1, (540, 3))
    model = fit_slice_model(unit(np.r_[inside, outside]), np.r_[np.ones(60, bool), np.zeros(540, bool)])
    near = model.probability(unit(rng.normal([4, 0, 0], 1, (50, 3))) @ model.centroid)
    far = model.probability(unit(rng.normal([0, 4, 0], 1, (50, 3))) @ model.centroid)
    assert model.auc > 0.95 and (near >= model.threshold).mean() > 0.9 and (far >= model.threshold).sum() == 0


def test_knn_mistakes_name_the_confident_mistake_only_where_mistakes_cluster():
    rng = np.random.default_rng(1)
    R = unit(np.r_[rng.normal([5, 0], 0.3, (12, 2)), rng.normal([0, 5], 0.3, (100, 2))])
    wrong = np.r_[np.ones(12, bool), np.zeros(100, bool)]
    wrong[50] = True                                   # a lone mistake among right rows
    confident = wrong.copy()
    share, nearest = knn_mistakes(unit([[5, 0.1], [0.1, 5]]), R, wrong, confident)
    assert share[0] >= 0.9 and 0 <= nearest[0] < 12 and share[1] <= 0.1


# --- tensor projects: the pool is make_dataset("unlabeled"), similarity on the penultimate layer -----------
BLOBS = '''
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

SIZES = {"train": 600, "valid": 300, "unlabeled": 120}


def make_dataset(split):
    if split not in SPLITS:
        raise KeyError(split)
    rng = np.random.default_rng(list(SIZES).index(split))
    y = rng.integers(0, 3, SIZES[split])
    x = rng.normal(0, 1.2, (len(y), 4)) + np.eye(3, 4)[y] * 2.5
    return TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
'''


def tensor_project(root, splits):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(f"SPLITS = {tuple(splits)!r}\n" + BLOBS)
    (root / "mltriage.toml").write_text('[model]\ncode = "train.py"\ndataset = "make_dataset"\nbuild = "build_model"\n'
                                        'lr = 0.01\nepochs = 3\n[budget]\nseconds = 10\n')
    return root


def test_tensor_pool_is_read_through_make_dataset_on_the_penultimate_layer(tmp_path):
    none = run_check(tensor_project(tmp_path / "none", ("train", "valid")), "errors.similar_unlabeled")
    assert none.status == "skipped" and "\"unlabeled\"" in none.title
    f = run_check(tensor_project(tmp_path / "pool", ("train", "valid", "unlabeled")), "errors.similar_unlabeled")
    assert f.status in ("info", "pass"), (f.status, f.title, f.detail)
    assert f.evidence["pool_rows"] == 120 and "last linear layer" in f.evidence["feature_space"]


def test_title_names_only_what_the_pool_resembles():
    from mltriage.checks.steps.errors.similar import SimilarMeasure, similar_verdict

    mistakes_only = SimilarMeasure(pool_rows=500, space="TF-IDF", resembling_rows=13, targets=[
        {"kind": "confident mistake", "name": "mistake row 3", "valid_rows": 1, "resembling": 13, "best": 0.9},
        {"kind": "weak slice", "name": "text contains 'x'", "valid_rows": 40, "resembling": 0, "best": 0.1}])
    both = SimilarMeasure(pool_rows=500, space="TF-IDF", resembling_rows=20, targets=[
        dict(mistakes_only.targets[0]), dict(mistakes_only.targets[1], resembling=7)])
    assert similar_verdict(mistakes_only).title.startswith("13 of 500 pool rows resemble confident mistakes;")
    assert "the weak slices or confident mistakes" in similar_verdict(both).title
