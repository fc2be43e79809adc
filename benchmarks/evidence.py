"""Benchmark the evidence features of issue 18: near-duplicate text search, feature relevance and label
issues on every row.

Near duplicates: --texts synthetic reviews (two to five sentences drawn from a Zipf vocabulary, so common
words repeat as in real text), with --planted near copies (the same sentences in another order, or one word
changed) at known positions. Times analyses/neardup.py find_near_pairs in this process and prints seconds,
the peak RSS, the planted pairs recovered and the other pairs found. Target (issue 18): 200,000 texts in
under 30 s on 2 cores.

Feature relevance: a --rows table with informative and pure-noise columns; prints the seconds of
data.feature_relevance's measurement and which columns it calls noise.

Label issues: --label-rows rows of a synthetic table (20 numeric features, 8 of them informative, a binary
label drawn from a logistic model) with 5% of the training labels flipped at known rows. In a fresh process
each (so each peak RSS is its own): data.label_issues' measurement (analyses/labels.py over every row, the
row table included) on the project, and cleanlab's find_label_issues on 5-fold logistic-regression
out-of-fold probabilities over all rows (scikit-learn defaults, max_iter=500). Both single-threaded
(threadpool_limits(1), n_jobs=1), timed after the table is loaded. Prints recall and precision of the
flipped rows, seconds (medians over --label-repeats alternating runs) and peak RSS. Target (issue 18):
recall >= cleanlab's at no lower precision, in no more of its time (compared: mltriage's scores and sets,
what cleanlab's call computes; the row table it adds is timed too and printed); 1,000,000 rows within the
data step's budget ([budget] seconds, 60 by default).

    python benchmarks/evidence.py [--texts 200000] [--planted 2000] [--rows 100000] [--skip-relevance]
                                  [--label-rows 100000 [--label-rows 1000000]] [--label-repeats 3]
                                  [--skip-near-duplicates]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_texts(n: int, planted: int, seed: int = 0) -> tuple[list[str], list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"word{i}" for i in range(20_000)])
    texts = []
    for _ in range(n):
        k = int(rng.integers(2, 6))
        sentences = [" ".join(vocab[(rng.zipf(1.2, int(rng.integers(4, 12))) - 1) % len(vocab)]) for _ in range(k)]
        texts.append(". ".join(sentences) + ".")
    pairs = []
    for i, src in enumerate(rng.choice(n // 2, planted, replace=False)):
        dst = n // 2 + i
        sentences = [s for s in texts[src].split(". ") if s]
        if i % 2 == 0:
            sentences = sentences[::-1]
        else:
            words = sentences[-1].rstrip(".").split()
            words[-1] = "changed"
            sentences[-1] = " ".join(words)
        texts[dst] = ". ".join(s.rstrip(".") for s in sentences) + "."
        pairs.append((int(src), dst))
    return texts, pairs


def bench_near_duplicates(n: int, planted: int) -> None:
    from mltriage.checks.analyses.neardup import NEAR_JACCARD, find_near_pairs, shingle_sets

    texts, truth = synthetic_texts(n, planted)
    # Planted pairs whose true Jaccard reaches the threshold (a changed word in a short text may not).
    sets = {}

    def jac(i, j):
        a = sets.setdefault(i, set(shingle_sets([texts[i]])[0]))
        b = sets.setdefault(j, set(shingle_sets([texts[j]])[0]))
        return len(a & b) / max(len(a | b), 1)

    reachable = {p for p in truth if jac(*p) >= NEAR_JACCARD}
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    pairs, _ = find_near_pairs(texts, seed=0)
    seconds = time.perf_counter() - t0
    found = {tuple(sorted(p)) for p in pairs.tolist()}
    hit = len({tuple(sorted(p)) for p in reachable} & found)
    print(f"near duplicates: {n:,} texts in {seconds:.1f} s (target < 30 s), peak RSS {peak_rss_mb():.0f} MB "
          f"(before {rss0:.0f} MB)")
    print(f"  planted pairs at Jaccard >= {NEAR_JACCARD}: {len(reachable)} of {len(truth)}; recovered {hit} "
          f"({hit / max(len(reachable), 1):.1%}); other pairs found: {len(found) - hit}")


def bench_relevance(rows: int) -> None:
    import pandas as pd

    from mltriage.checks.steps.data.relevance import relevance_scores

    rng = np.random.default_rng(1)
    X = pd.DataFrame({f"signal{i}": rng.normal(size=rows) for i in range(5)})
    for i in range(15):
        X[f"noise{i}"] = rng.normal(size=rows)
    y = (X.iloc[:, :5].sum(axis=1) + rng.normal(scale=1.0, size=rows) > 0).astype(int).to_numpy()
    t0 = time.perf_counter()
    scores = relevance_scores(X.to_numpy(), y, classification=True, seed=0)
    seconds = time.perf_counter() - t0
    flagged = [X.columns[j] for j in np.flatnonzero(scores.no_signal)]
    print(f"feature relevance: {rows:,} rows x {X.shape[1]} columns in {seconds:.1f} s; no signal: "
          f"{len(flagged)} columns ({sum(c.startswith('noise') for c in flagged)} of 15 noise, "
          f"{sum(c.startswith('signal') for c in flagged)} of 5 signal)")


# --- label issues --------------------------------------------------------------------------------
LABEL_FLIP = 0.05


def label_table(rows: int, seed: int = 0):
    """(train frame, valid frame, flipped train positions): 20 numeric features, 8 informative."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    w = np.zeros(20)
    w[:8] = rng.normal(0.0, 1.5, 8)  # drawn first: the same task at every size
    n = rows + 1_000  # 1,000 clean valid rows, so train is the table as written
    X = rng.normal(size=(n, 20)).astype(np.float32)
    label = (X @ w + rng.logistic(size=n) > 0).astype(np.int64)
    frame = pd.DataFrame(X, columns=[f"x{j:02d}" for j in range(20)])
    frame.insert(0, "row_id", np.arange(n))
    frame["label"] = label
    train, valid = frame.iloc[:rows].reset_index(drop=True), frame.iloc[rows:].reset_index(drop=True)
    flipped = np.sort(rng.choice(rows, int(LABEL_FLIP * rows), replace=False))
    train.loc[flipped, "label"] = 1 - train.loc[flipped, "label"]
    return train, valid, flipped


def _scores(mask, flipped) -> dict:
    truth = np.zeros(len(mask), dtype=bool)
    truth[flipped] = True
    return {"recall": float(mask[truth].mean()), "precision": float(truth[mask].mean()) if mask.any() else 0.0,
            "flagged": int(mask.sum())}


def _label_worker_mltriage(rows: int) -> dict:
    from mltriage.checks.engine.context import RunContext
    from mltriage.checks.project.config import load_project
    from mltriage.checks.steps.data.labels import _measure_label_issues
    from mltriage.checks.analyses.labels import label_issue_analysis

    train, valid, flipped = label_table(rows)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train.to_parquet(root / "train.parquet", index=False)
        valid.to_parquet(root / "valid.parquet", index=False)
        (root / "mltriage.toml").write_text('[data]\ntrain = "train.parquet"\nvalid = "valid.parquet"\n'
                                            'target = "label"\nignore = ["row_id"]\n')
        del train, valid
        ctx = RunContext(load_project(root))
        ctx.prepare()
        ctx.y("train"), ctx.X("train")  # loaded before the clock starts, as cleanlab gets its arrays
        _import_label_libraries()       # the worker imports a check's `imports` before running it
        rss0 = peak_rss_mb()
        t0 = time.perf_counter()
        analysis = label_issue_analysis(ctx)  # scores and sets: what cleanlab's side computes
        t1 = time.perf_counter()
        m = _measure_label_issues(ctx)        # + the row table and the rest of the finding's measurement
        seconds = time.perf_counter() - t0
        out = {"seconds": seconds, "analysis_seconds": t1 - t0, "rss_before": rss0, "rss": peak_rss_mb(),
               "model": m.model, "rows_examined": m.rows_examined, "choice": analysis.oof.choice,
               "row_table": len(m.rows) if m.rows is not None else 0, **_scores(analysis.mask, flipped)}
        out["precision_set"] = _scores(analysis.confident, flipped)
        return out


def _import_label_libraries() -> None:
    import cleanlab.count  # noqa: F401
    import cleanlab.filter  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.model_selection  # noqa: F401


def _label_worker_cleanlab(rows: int) -> dict:
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    train, _, flipped = label_table(rows)
    X = train[[c for c in train.columns if c.startswith("x")]].to_numpy(dtype=np.float32)
    y = train["label"].to_numpy()
    del train
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    with threadpool_limits(1):
        p = cross_val_predict(LogisticRegression(max_iter=500), X, y, method="predict_proba",
                              cv=StratifiedKFold(5, shuffle=True, random_state=0))
        mask = find_label_issues(y, p, n_jobs=1)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_before": rss0, "rss": peak_rss_mb(), **_scores(mask, flipped)}


def bench_labels(rows: int, repeats: int) -> None:
    """Alternates fresh cleanlab and mltriage processes `repeats` times; seconds are medians (a shared
    machine's load moves single timings by half)."""
    import statistics

    runs: dict[str, list] = {"cleanlab": [], "mltriage": []}
    for _ in range(repeats):
        for method in runs:
            command = [sys.executable, __file__, "--label-worker", method, "--label-rows", str(rows)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"label issues ({method}) failed:\n{done.stderr[-2000:]}")
                return
            runs[method].append(json.loads(done.stdout.strip().splitlines()[-1]))
    c, m = runs["cleanlab"][-1], runs["mltriage"][-1]
    for key in ("seconds", "analysis_seconds", "rss"):
        for method, r in (("cleanlab", c), ("mltriage", m)):
            if key in r:
                r[key] = statistics.median(x[key] for x in runs[method])
    print(f"label issues: {rows:,} rows, {LABEL_FLIP:.0%} flipped (median of {repeats} runs each)")
    print(f"  cleanlab find_label_issues on 5-fold LR: recall {c['recall']:.4f} precision {c['precision']:.4f} "
          f"({c['flagged']:,} flagged) in {c['seconds']:.2f} s, peak RSS {c['rss']:.0f} MB "
          f"(before {c['rss_before']:.0f})")
    print(f"  mltriage data.label_issues ({m['model']}, {m['rows_examined']:,} rows scored): recall-oriented set "
          f"recall {m['recall']:.4f} precision {m['precision']:.4f} ({m['flagged']:,} flagged) in "
          f"{m['seconds']:.2f} s ({m['analysis_seconds']:.2f} s for the scores and sets), peak RSS "
          f"{m['rss']:.0f} MB (before {m['rss_before']:.0f}); row table {m['row_table']:,} rows")
    ps = m["precision_set"]
    print(f"  mltriage precision-oriented set: recall {ps['recall']:.4f} precision {ps['precision']:.4f} "
          f"({ps['flagged']:,} rows); model pilot log loss: {m['choice']}")
    se_r = (c["recall"] * (1 - c["recall"]) / (LABEL_FLIP * rows)) ** 0.5
    se_p = (c["precision"] * (1 - c["precision"]) / max(c["flagged"], 1)) ** 0.5
    print(f"  differences (mltriage - cleanlab): recall {m['recall'] - c['recall']:+.4f}, precision "
          f"{m['precision'] - c['precision']:+.4f} (one standard error: {se_r:.4f}, {se_p:.4f})")
    ok = m["recall"] >= c["recall"] and m["precision"] >= c["precision"] and m["analysis_seconds"] <= c["seconds"]
    print(f"  target (recall >= cleanlab's at no lower precision, scores and sets in no more of its time): "
          f"{'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200_000)
    parser.add_argument("--planted", type=int, default=2_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-relevance", action="store_true")
    parser.add_argument("--skip-near-duplicates", action="store_true")
    parser.add_argument("--label-rows", type=int, action="append", default=None,
                        help="rows of the label-issue table (repeat for several sizes)")
    parser.add_argument("--label-repeats", type=int, default=3)
    parser.add_argument("--label-worker", choices=("mltriage", "cleanlab"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.label_worker:  # one measurement in this fresh process, as a JSON line for bench_labels
        worker = _label_worker_mltriage if args.label_worker == "mltriage" else _label_worker_cleanlab
        print(json.dumps(worker(args.label_rows[0])))
        return
    if not args.skip_near_duplicates:
        bench_near_duplicates(args.texts, args.planted)
    if not args.skip_relevance:
        bench_relevance(args.rows)
    for rows in args.label_rows or []:
        bench_labels(rows, args.label_repeats)


if __name__ == "__main__":
    main()
