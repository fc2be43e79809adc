"""The rows behind the data step's findings (issue 18): on a planted defect each check's RowTable names
exactly the planted rows (positions, texts, the partner rows), and on the clean twin it has none."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from helpers import context_for, run_check, write_project
from test_data_checks import _reverse_sentences, _two_sentence_reviews, clean_frame, splits


def table(finding) -> list[dict]:
    """The finding's rows as dicts; they must survive the worker's JSON messages."""
    assert finding.rows is not None, (finding.status, finding.title)
    json.dumps(finding.to_dict(with_rows=True))
    return [dict(zip(finding.rows.columns, r)) for r in finding.rows.records]


def with_ids(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return df.assign(row_id=[f"{prefix}{i:04d}" for i in range(len(df))])


@pytest.fixture(scope="module")
def table_splits():
    return splits(clean_frame())


@pytest.fixture(scope="module")
def clean_ctx(tmp_path_factory, table_splits):
    train, valid = table_splits
    return context_for(write_project(tmp_path_factory.mktemp("clean"), with_ids(train, "t"), with_ids(valid, "v"),
                                     ignore=["row_id"]))


@pytest.mark.parametrize("check_id", ["data.missing_values", "data.duplicates", "data.split_overlap",
                                      "data.outliers"])
def test_clean_twin_has_no_rows(clean_ctx, check_id):
    f = run_check(clean_ctx, check_id)
    assert f.status == "pass" and f.rows is None, (f.status, f.title)


def test_missing_value_rows_name_the_rows_and_their_columns(tmp_path, table_splits):
    train, valid = table_splits
    train = with_ids(train, "t")
    train.loc[[3, 7, 11], "x3"] = np.nan
    train.loc[7, "colour"] = np.nan
    train.loc[5, "label"] = np.nan
    f = run_check(context_for(write_project(tmp_path, train, with_ids(valid, "v"), ignore=["row_id"])),
                  "data.missing_values")
    rows = table(f)
    assert f.status == "fail" and f.rows.total == 4
    # the row without a label first, then the most cells missing
    assert [(r["position"], r["split"], r["row_id"]) for r in rows] == \
        [(5, "train", "t0005"), (7, "train", "t0007"), (3, "train", "t0003"), (11, "train", "t0011")]
    assert [r["missing_columns"] for r in rows] == ["label", "x3, colour", "x3", "x3"]
    assert [r["n_missing"] for r in rows] == [1, 2, 1, 1] and [r["is_missing_label"] for r in rows][:2] == [True, False]


def test_duplicate_rows_give_groups_copies_and_contradictions(tmp_path, table_splits):
    train, valid = table_splits
    n = len(train)
    flipped = train.iloc[:3].copy()
    flipped["label"] = np.where(flipped["label"] == "yes", "no", "yes")
    planted = pd.concat([train, train.iloc[[10, 11]], flipped], ignore_index=True)
    f = run_check(context_for(write_project(tmp_path, planted, valid)), "data.duplicates")
    rows = table(f)
    assert f.status == "fail"
    assert {r["position"] for r in rows} == {0, 1, 2, n + 2, n + 3, n + 4, 10, 11, n, n + 1}
    assert {r["position"] for r in rows if r["is_conflicting_label"]} == {0, 1, 2, n + 2, n + 3, n + 4}
    assert {r["position"] for r in rows if r["is_duplicate"]} == {n, n + 1}   # the copies; first copies listed too
    group = {r["position"]: r["duplicate_group"] for r in rows}
    assert group[10] == group[n] != group[11] == group[n + 1] and group[0] == group[n + 2]
    assert rows[0]["is_conflicting_label"]                                      # contradictions first
    first = next(r for r in rows if r["position"] == 10)
    assert first["x1"] == pytest.approx(train["x1"].iloc[10]) and first["label"] == train["label"].iloc[10]


def test_split_overlap_rows_name_the_matching_train_rows(tmp_path, table_splits):
    train, valid = table_splits
    leaky = pd.concat([valid, train.iloc[[4, 8, 15]]], ignore_index=True)
    f = run_check(context_for(write_project(tmp_path, train, leaky)), "data.split_overlap")
    rows = table(f)
    assert [(r["position"], r["split"]) for r in rows] == [(len(valid) + k, "valid") for k in range(3)]
    assert [r["train_positions"] for r in rows] == [[4], [8], [15]]
    assert all(r["match"] == "same row" and r["is_overlap"] for r in rows)


def test_outlier_rows_name_the_far_values(tmp_path, table_splits):
    from mltriage.checks.steps.data import leakage
    from mltriage.checks.steps.data._common import outlier_rows

    train, valid = table_splits
    train = train.copy()
    train.loc[[4, 9, 30], "x3"] = [-999.0, -999.0, 5000.0]
    ctx = context_for(write_project(tmp_path, train, valid))
    m = leakage._measure_outliers(ctx)
    rows = [dict(zip(t.columns, r)) for t in [outlier_rows(ctx, list(m.per_col), leakage._robust_z,
                                                           leakage.OUTLIER_Z)] for r in t.records]
    assert [(r["position"], r["feature"], r["value"]) for r in rows] == \
        [(30, "x3", 5000.0), (4, "x3", -999.0), (9, "x3", -999.0)]           # the farthest first
    assert all(r["outlier_score"] > leakage.OUTLIER_Z for r in rows)
    if hasattr(leakage, "outlier_rows"):                                     # the check attaches them
        assert [r["position"] for r in table(run_check(ctx, "data.outliers"))] == [30, 4, 9]


# --- texts: near duplicates and text hygiene ----------------------------------------------------------
@pytest.fixture(scope="module")
def review_splits():
    return splits(_two_sentence_reviews(400))


def test_clean_reviews_have_no_rows(tmp_path, review_splits):
    ctx = context_for(write_project(tmp_path, *review_splits, text=["text"]))
    for check_id in ("data.duplicates", "data.split_overlap", "data.text_quality"):
        f = run_check(ctx, check_id)
        assert f.status == "pass" and f.rows is None, (check_id, f.status, f.title)


def test_near_duplicate_rows_within_a_split_and_across(tmp_path, review_splits):
    train, valid = review_splits
    n = len(train)
    flipped = train.iloc[:4].copy()          # the same two sentences in reverse order, the other label
    flipped["text"] = flipped["text"].map(_reverse_sentences)
    flipped["label"] = np.where(flipped["label"] == "pos", "neg", "pos")
    planted = pd.concat([train, flipped], ignore_index=True)
    leaky = valid.copy()
    leaky.loc[:2, "text"] = train["text"].iloc[10:13].map(_reverse_sentences).to_numpy()
    ctx = context_for(write_project(tmp_path, planted, leaky, text=["text"]))

    rows = table(run_check(ctx, "data.duplicates"))
    assert {(r["split"], r["position"]) for r in rows} == {("train", p) for p in [0, 1, 2, 3, n, n + 1, n + 2, n + 3]}
    partner = {r["position"]: r["near_partner_position"] for r in rows}
    assert all(partner[p] == n + p and partner[n + p] == p for p in range(4))
    for r in rows:
        assert r["is_near_conflict"] and r["near_duplicate_score"] == 1.0 and r["duplicate_group"] is None
        assert r["text"] == planted["text"].iloc[r["position"]]                      # the actual texts
        assert r["near_partner_text"] == planted["text"].iloc[r["near_partner_position"]]
        assert r["label"] != r["near_partner_label"]

    rows = table(run_check(ctx, "data.split_overlap"))
    assert [(r["split"], r["position"]) for r in rows] == [("valid", 0), ("valid", 1), ("valid", 2)]
    assert [r["train_positions"] for r in rows] == [[10], [11], [12]]
    assert [r["train_text"] for r in rows] == train["text"].iloc[10:13].tolist()
    assert all(r["match"] == "near text" and r["is_near_overlap"] and r["near_duplicate_score"] == 1.0 for r in rows)


def test_text_quality_rows_name_each_problem(tmp_path, review_splits):
    train, valid = review_splits
    train = train.copy()
    train.loc[4, "text"] = train.loc[4, "text"].replace("w", "\u00c3\u00a9w", 1)   # UTF-8 read as Latin-1
    train.loc[9, "text"] = "   "
    train.loc[12, "text"] = train.loc[12, "text"].replace(" ", " \x07", 1)
    train.loc[15, "text"] = " ".join(f"w{i}" for i in range(400)) + "."
    f = run_check(context_for(write_project(tmp_path, train, valid, text=["text"])), "data.text_quality")
    rows = table(f)
    assert [(r["position"], r["problem"]) for r in rows] == \
        [(4, "encoding damage"), (9, "empty"), (12, "odd characters"), (15, "length outlier")]
    assert rows[0]["text"] == train.loc[4, "text"] and rows[2]["text"] == train.loc[12, "text"]
    assert len(rows[3]["text"]) == 500 and rows[3]["length"] == len(train.loc[15, "text"])  # cut for reading


# --- tensor projects ----------------------------------------------------------------------------------
def test_tensor_rows_name_the_items(tmp_path):
    from test_tensor_data import image_project, token_project
    from mltriage.checks.steps.data import tensors as T

    clean = image_project(tmp_path)
    for fn in (T.tensor_missing_values, T.tensor_duplicates, T.tensor_split_overlap):
        assert fn(clean).rows is None

    rows = table(T.tensor_missing_values(image_project(tmp_path, "nan")))
    assert [(r["split"], r["position"]) for r in rows] == [("train", 3), ("valid", 3)]

    rows = table(T.tensor_duplicates(image_project(tmp_path, "conflict")))   # train item i shows item 10+i's image
    assert {r["position"] for r in rows} == set(range(20)) and all(r["is_conflicting_label"] for r in rows)
    assert {r["position"] for r in rows if r["is_duplicate"]} == set(range(10, 20))
    group = {r["position"]: r["duplicate_group"] for r in rows}
    assert all(group[i] == group[10 + i] for i in range(10)) and len(set(group.values())) == 10

    rows = table(T.tensor_split_overlap(image_project(tmp_path, "leak")))     # valid item i is train item i
    assert [(r["split"], r["position"], r["train_positions"]) for r in rows] == [("valid", i, [i]) for i in range(10)]

    assert run_check(token_project(tmp_path), "data.token_ids").rows is None
    ctx = token_project(tmp_path, "big_ids")
    f = run_check(ctx, "data.token_ids")
    rows = table(f)
    expected = [(name, i) for name in ("train", "valid") for i in range(len(ctx.tensor_split(name)))
                if int(ctx.tensor_split(name).item(i)[0].max()) >= 60]
    assert [(r["split"], r["position"]) for r in rows] == expected
    assert all(r["max_id"] >= 60 == r["num_embeddings"] for r in rows)


# --- the pure parts -------------------------------------------------------------------------------------
def test_duplicate_flags_and_matching_positions():
    from mltriage.checks.analyses.rowkeys import duplicate_flags, matching_positions

    keys = np.array([5, 6, 5, 7, 6, 5], dtype=np.uint64)
    flags = duplicate_flags(keys, np.array([0, 1, 0, 0, 0, 0]))
    assert flags["is_duplicate"].tolist() == [False, False, True, False, False, True]
    assert flags["in_duplicate"].tolist() == [True, False, True, False, False, True]
    assert flags["is_conflicting_label"].tolist() == [False, True, False, False, True, False]
    assert flags["group"].tolist() == [0, 1, 0, -1, 1, 0]
    assert matching_positions(np.array([6, 9, 5]), keys, limit=2) == [[1, 4], [], [0, 2]]


def test_item_columns_of_content_hashes():
    from mltriage.checks.analyses.rowkeys import item_duplicate_columns, item_overlap_columns

    hashes = [b"a" * 16, b"b" * 16, b"a" * 16, b"c" * 16, b"b" * 16]
    cols = item_duplicate_columns(hashes, [0, 1, 0, 1, 2])
    assert cols["position"] == [0, 2, 1, 4] and cols["duplicate_group"] == [0, 0, 1, 1]
    assert cols["is_duplicate"] == [False, True, False, True]
    assert cols["is_conflicting_label"] == [False, False, True, True]
    over = item_overlap_columns(hashes, [b"c" * 16, b"z" * 16, b"b" * 16], [0, 1, 0, 1, 2], [1, 0, 2])
    assert over["position"] == [0, 2] and over["train_positions"] == [[3], [1, 4]] and over["train_label"] == [1, 1]


def test_row_tables_cut_texts_keep_ids_and_count_every_row(monkeypatch):
    from mltriage.checks import findings
    from mltriage.checks.steps.data._common import ROW_TEXT, split_rows, stack_rows

    frame = pd.DataFrame({"doc": ["d1", "d2", "d3"], "text": ["x" * 2000, None, "short"], "y": [1.5, np.nan, 2]})
    ctx = SimpleNamespace(splits={"train": frame, "valid": frame}, config=SimpleNamespace(ignore=["doc"]))
    part = split_rows(ctx, "train", [2, 0], ["text", "y"], {"is_thing": [True, False]})
    assert part == {"position": [2, 0], "split": ["train", "train"], "doc": ["d3", "d1"],
                    "text": ["short", "x" * (ROW_TEXT - 1) + "…"], "y": [2.0, 1.5], "is_thing": [True, False]}
    other = split_rows(ctx, "valid", [1], ["text", "y"], {"score": [0.5]})
    t = stack_rows([part, other])
    assert t.columns == ["position", "split", "doc", "text", "y", "is_thing", "score"]
    assert t.records[2] == [1, "valid", "d2", None, None, None, 0.5] and t.total == 3
    assert stack_rows([split_rows(ctx, "train", [])]) is None
    ctx.file_rows = {"train": np.array([7, 3, 5])}        # a held-out valid split: the file's rows too
    assert split_rows(ctx, "train", [2, 0])["file_row"] == [5, 7] and "file_row" not in other
    monkeypatch.setattr(findings, "ROWS_KEPT", 2)
    assert len(stack_rows([split_rows(ctx, "train", [0, 1, 2])], total=3)) == 2
