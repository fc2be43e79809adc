"""data.label_issues scores every labelled training row out of fold (issue 18 item 7): recall- and
precision-oriented sets, and the flagged rows as a RowTable, most suspicious first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import context_for, run_check, write_project

ROW_COLUMNS_TAIL = ["given_label", "suggested_label", "is_label_issue", "label_score", "in_confident_set"]


def linear_table(n: int, seed: int = 0, flip: float = 0.08, xor: bool = False):
    """(train, valid, flipped train positions): a clear binary task (linear, or an XOR of two signs that no
    linear model can read) with an id column and `flip` of the training labels flipped at known rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 200, 4))
    score = X[:, 0] * X[:, 1] if xor else X[:, 0] + X[:, 1] - 0.5 * X[:, 2]
    keep = np.abs(score) > 0.3  # a margin: the planted flips are the only wrong labels
    X, score = X[keep], score[keep]
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df.insert(0, "row_id", [f"r{i:05d}" for i in range(len(df))])
    df["label"] = np.where(score > 0, "yes", "no")
    cut = len(df) - 200
    train, valid = df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
    flipped = np.sort(rng.choice(len(train), int(flip * len(train)), replace=False))
    train.loc[flipped, "label"] = np.where(train.loc[flipped, "label"] == "yes", "no", "yes")
    return train, valid, flipped


@pytest.fixture
def small_caps(monkeypatch):
    """The large-data path on a small table: the pilot beyond 300 rows, folds fitted on at most 400 rows,
    held-out rows scored 128 at a time."""
    import mltriage.checks.analyses.labels as labels

    monkeypatch.setattr(labels, "LABEL_ISSUE_SAMPLE", 300)
    monkeypatch.setattr(labels, "FIT_ROWS", 400)
    monkeypatch.setattr(labels, "SCORE_CHUNK", 128)
    monkeypatch.setattr(labels, "PILOT_ROWS", 400)
    return labels


def _ctx(tmp_path, train, valid, **kw):
    return context_for(write_project(tmp_path, train, valid, ignore=["row_id"], **kw))


def test_every_row_is_scored_out_of_fold_with_capped_chunked_fits(tmp_path, small_caps):
    train, valid, flipped = linear_table(1500)
    ctx = _ctx(tmp_path, train, valid)
    oof = small_caps.label_model(ctx)
    assert len(oof.positions) == len(train) and not np.isnan(small_caps.oof_probabilities(ctx)).any()
    assert oof.fit_rows == 400 and oof.model == "logistic regression", (oof.model, oof.choice)
    assert set(oof.choice) == {"logistic regression", "histogram gradient boosting"}
    analysis = small_caps.label_issue_analysis(ctx)
    mask, confident = analysis.mask, analysis.confident
    assert mask.shape == confident.shape == (len(train),) and not (confident & ~mask).any()
    truth = np.zeros(len(train), dtype=bool)
    truth[flipped] = True
    assert mask[truth].mean() > 0.8 and truth[mask].mean() > 0.6, (mask[truth].mean(), truth[mask].mean())
    assert truth[confident].mean() >= truth[mask].mean() and truth[confident].mean() > 0.8


def test_pilot_picks_boosting_where_the_boundary_is_not_linear(tmp_path, small_caps):
    train, valid, flipped = linear_table(1800, seed=1, xor=True)
    ctx = _ctx(tmp_path, train, valid)
    oof = small_caps.label_model(ctx)
    assert oof.model == "histogram gradient boosting", oof.choice
    assert oof.choice["histogram gradient boosting"] < oof.choice["logistic regression"]
    mask = small_caps.label_issue_mask(ctx)
    assert np.isin(flipped, np.flatnonzero(mask)).mean() > 0.6


def test_finding_carries_the_flagged_rows_most_suspicious_first(tmp_path, small_caps):
    train, valid, flipped = linear_table(1500, seed=2)
    f = run_check(_ctx(tmp_path, train, valid), "data.label_issues")
    assert f.status != "pass", (f.status, f.title)
    rows = f.rows
    assert rows is not None and rows.columns[:3] == ["position", "split", "row_id"]
    assert rows.columns[-5:] == ROW_COLUMNS_TAIL and {"a", "b", "c"} <= set(rows.columns)
    table = pd.DataFrame(rows.records, columns=rows.columns)
    assert rows.total == len(table) == f.evidence["flagged"] == f.evidence["recall_set"]["rows"]
    assert table["is_label_issue"].all() and int(table["in_confident_set"].sum()) == f.evidence["precision_set"]["rows"]
    # sorted: the precision-oriented set first, then by self-confidence (cleanlab's label quality), lowest first
    key = list(zip(~table["in_confident_set"], table["label_score"]))
    assert key == sorted(key)
    assert (table["row_id"] == train["row_id"].iloc[table["position"]].to_numpy()).all()
    given = train["label"].iloc[table["position"]].to_numpy()
    assert (table["given_label"] == given).all() and (table["suggested_label"] != given).mean() > 0.9
    top = table["position"].head(len(flipped) // 2)
    assert np.isin(top, flipped).mean() > 0.9
    assert "Recall-oriented set" in f.detail and "Precision-oriented set" in f.detail


def test_text_rows_show_the_text(tmp_path):
    rng = np.random.default_rng(4)
    good = ["great value and works well", "love it, works perfectly", "excellent build quality overall"]
    bad = ["broke after two days of use", "terrible, would not buy again", "poor quality and slow delivery"]
    label = rng.choice(["pos", "neg"], 700)
    text = [f"{rng.choice(good if lab == 'pos' else bad)} item {i}" for i, lab in enumerate(label)]
    df = pd.DataFrame({"row_id": [f"t{i}" for i in range(700)], "text": text, "label": label})
    train, valid = df.iloc[:560].reset_index(drop=True), df.iloc[560:].reset_index(drop=True)
    flipped = rng.choice(560, 40, replace=False)
    train.loc[flipped, "label"] = np.where(train.loc[flipped, "label"] == "pos", "neg", "pos")
    f = run_check(_ctx(tmp_path, train, valid, text=["text"]), "data.label_issues")
    table = pd.DataFrame(f.rows.records, columns=f.rows.columns)
    assert list(table.columns[:4]) == ["position", "split", "row_id", "text"]
    assert (table["text"] == train["text"].iloc[table["position"]].to_numpy()).all()
    assert np.isin(table["position"].head(20), flipped).mean() > 0.9


def test_budget_spent_scores_a_small_sample(tmp_path, monkeypatch):
    import mltriage.checks.analyses.labels as labels

    monkeypatch.setattr(labels, "LABEL_ISSUE_SMALL_SAMPLE", 300)
    train, valid, _ = linear_table(1000, seed=3)
    ctx = _ctx(tmp_path, train, valid)
    ctx.budget.used = ctx.budget.seconds  # an earlier check spent the training budget
    oof = labels.label_model(ctx)
    assert len(oof.positions) == 300 and np.isnan(labels.oof_probabilities(ctx)).any(axis=1).sum() == len(train) - 300
    f = run_check(ctx, "data.label_issues")
    assert "sample of 300" in f.detail


def test_confident_learning_sets_on_known_probabilities():
    from mltriage.checks.analyses.labels import CONFIDENT_P_GIVEN, confident_learning_sets

    rng = np.random.default_rng(5)
    n, k = 3000, 3
    truth = rng.integers(0, k, n)
    p = np.full((n, k), 0.05)
    p[np.arange(n), truth] = 0.9
    p[:300] = rng.dirichlet(np.ones(k), 300)  # ambiguous rows: no confident verdict either way
    labels = truth.copy()
    wrong = np.arange(300, 450)               # clear rows with a wrong label
    labels[wrong] = (labels[wrong] + 1) % k
    flags, confident, self_confidence = confident_learning_sets(labels, p / p.sum(1, keepdims=True))
    assert flags[wrong].all() and not flags[450:].any() and not (confident & ~flags).any()
    assert confident[wrong].mean() > 0.95 and np.allclose(self_confidence[wrong], 0.05)
    # ambiguous rows the recall-oriented set takes in mostly stay out of the precision-oriented one
    assert flags[:300].sum() > 0 and confident[:300].sum() < 0.5 * flags[:300].sum()
    low = (self_confidence < CONFIDENT_P_GIVEN) & flags
    assert confident[low].all()


def test_off_diagonal_rows_are_cleanlabs():
    from cleanlab.count import compute_confident_joint

    from mltriage.checks.analyses.labels import _off_diagonal

    rng = np.random.default_rng(6)
    for k in (2, 4):
        p = rng.dirichlet(np.ones(k) * 0.7, 2000)
        labels = np.where(rng.random(2000) < 0.8, p.argmax(1), rng.integers(0, k, 2000))
        _, indices = compute_confident_joint(labels, p, return_indices_of_off_diagonals=True)
        assert np.array_equal(np.flatnonzero(_off_diagonal(labels, p)), np.sort(indices))



def wide_table(n: int, width: int, signal: float, seed: int = 0):
    """(train, valid): `width` numeric columns of which only the first decides the label, through a logistic
    link of slope `signal`: a weak signal, most labels are coin flips of a correct process, none is an error."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, width))
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(width)])
    df["label"] = np.where(rng.random(n) < 1 / (1 + np.exp(-signal * X[:, 0])), "yes", "no")
    cut = int(0.8 * n)
    return df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)


def wide_flipped_table(n: int, width: int, flip: float, seed: int = 1):
    """(train, valid, flipped train positions): linear_table's clear task (three informative columns and a
    margin) in `width` columns, with `flip` of the training labels flipped."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, width))
    score = X[:, 0] + X[:, 1] - 0.5 * X[:, 2]
    keep = np.abs(score) > 0.3
    df = pd.DataFrame(X[keep], columns=[f"f{j}" for j in range(width)])
    df["label"] = np.where(score[keep] > 0, "yes", "no")
    cut = int(0.8 * len(df))
    train, valid = df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
    flipped = np.sort(rng.choice(len(train), int(flip * len(train)), replace=False))
    train.loc[flipped, "label"] = np.where(train.loc[flipped, "label"] == "yes", "no", "yes")
    return train, valid, flipped


def test_a_weak_signal_in_many_columns_is_not_called_label_errors(tmp_path):
    """300 columns, 960 training rows, one weakly informative column: the label model fits the noise and
    rejects 60 correct labels with p < 0.05 ('warn: 6.2% look mislabelled' before). Its out-of-fold log
    loss is worse than the class frequencies', so no label is judged."""
    train, valid = wide_table(1200, 300, signal=1.0)
    finding = run_check(context_for(write_project(tmp_path, train, valid)), "data.label_issues")
    assert finding.status == "info" and finding.title.startswith("labels not judged"), finding.title
    ev = finding.evidence
    assert ev["oof_log_loss"] >= ev["class_frequency_log_loss"] and ev["flagged_confident"] >= 10, ev


def test_flipped_labels_in_many_columns_are_still_found(tmp_path):
    """The twin: a clear task in the same 300 columns with 10% of the training labels flipped. The label
    model beats the class frequencies, and the flips are judged."""
    from mltriage.checks.analyses.labels import label_issue_mask

    train, valid, flipped = wide_flipped_table(1500, 300, flip=0.10)
    ctx = context_for(write_project(tmp_path, train, valid))
    finding = run_check(ctx, "data.label_issues")
    assert finding.status in ("warn", "fail"), (finding.status, finding.title)
    assert finding.evidence["oof_log_loss"] < finding.evidence["class_frequency_log_loss"]
    assert np.isin(flipped, np.flatnonzero(label_issue_mask(ctx))).mean() > 0.6


def test_label_verdict_is_capped_only_when_the_model_does_no_better_than_the_base_rate():
    from mltriage.checks.steps.data.labels import LabelIssueMeasure, _label_issues_verdict

    def measure(log_loss, design="dense"):
        return LabelIssueMeasure(rows_examined=1000, flagged=300, flagged_confident=150, train_rows=1000,
                                 labelled=1000, model="logistic regression", features="numeric columns",
                                 oof_accuracy=0.8, per_class={"a": {"rows": 500, "flagged": 150, "noise_rate": 0.3}},
                                 design=design, log_loss=log_loss, prior_log_loss=0.693)

    assert _label_issues_verdict(measure(0.5)).status == "fail"
    assert _label_issues_verdict(measure(0.693)).status == "info"
    assert _label_issues_verdict(measure(0.9, "sparse")).title.startswith("labels not judged")
    assert _label_issues_verdict(measure(None)).status == "fail"  # no loss measured: judged as before
    # the project's own network's features (tensor projects): judged whatever the loss (see the check)
    assert _label_issues_verdict(measure(0.9, "embedding")).status == "fail"
